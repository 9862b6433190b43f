//! An IAM Identity Center sign-in started for a client without a terminal
//! (kubectl, terraform or an SDK run by an IDE): the client can at most
//! open a browser, so the daemon shows the rest on the desktop.
//!
//! - A notification names the identity, the requesting program and the
//!   user code to confirm in the browser (and the URL when no browser
//!   opens).
//! - When the client cannot open a browser (or with `[daemon]
//!   sso_pinentry = "always"`), a pinentry window (`CONFIRM`) shows the
//!   verification URL and the code, for the user to open by hand. Its
//!   Cancel abandons the sign-in: every waiter gets one line and nothing
//!   is kept. The window closes by itself when the sign-in ends. With no
//!   pinentry to show it and no browser, no sign-in starts (or one the
//!   pinentry failed to show is abandoned): the client gets the one line
//!   to run `pctl unlock` in a terminal. `sso_pinentry = "never"`: the
//!   notification alone, naming the URL too.
//!
//! - A client without a terminal that joins a sign-in another client
//!   started (its request waits for it) gets the notification too, with
//!   the URL and the code: once per sign-in per requesting program (its
//!   name, not its pid, so kubectl run ten times by an IDE, or an SDK
//!   retrying at the credential endpoint, is told once). The window stays
//!   the starter's: one per sign-in.
//!
//! Only the device authorization's public parts are shown: the URL and
//! the user code, which signs nobody in by itself (it is bound to the
//! device code the daemon keeps and must be confirmed by the signed-in
//! user in the browser). Never a token or the client secret.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pctl_protocol::{ClientEnv, ErrorKind, SignInPrompt};

use super::{notify, pinentry};
use crate::config::{Config, IdentityConfig, SsoPinentry};
use crate::failure::Failure;
use crate::peer::Requester;
use crate::source::sso::SignIns;

/// How a sign-in reaches a client without a terminal.
pub struct Approval {
    env: ClientEnv,
    opener: bool,
    /// The program behind the request.
    who: Requester,
    /// The pinentry that shows the URL and the code, when one is needed.
    window: Option<PathBuf>,
}

impl Approval {
    /// Before a device authorization starts: what will show it. `Err`
    /// (one line, nothing started) when the client can neither open a
    /// browser nor has a pinentry to show the URL in.
    pub fn prepare(
        cfg: &Config,
        ic: &IdentityConfig,
        env: ClientEnv,
        opener: bool,
        who: Requester,
    ) -> Result<Approval, Failure> {
        let find = || pinentry::find(cfg.daemon.pinentry.as_deref(), &env);
        let window = match (cfg.daemon.sso_pinentry, opener) {
            (SsoPinentry::Never, _) => None,
            (SsoPinentry::Auto, true) => None,
            (SsoPinentry::Auto, false) => Some(find().map_err(|why| cannot_show(ic, &why))?),
            // the browser opens anyway: a missing pinentry only costs the window
            (SsoPinentry::Always, _) => match find() {
                Ok(p) => Some(p),
                Err(why) if opener => {
                    tracing::info!("identity {}: no sign-in window: {why}", ic.name);
                    None
                }
                Err(why) => return Err(cannot_show(ic, &why)),
            },
        };
        Ok(Approval {
            env,
            opener,
            who,
            window,
        })
    }

    /// After it started: the notification, and the pinentry window in the
    /// background until the user cancels it or the sign-in ends. `owner`
    /// holds the identity's sign-ins (`sso` reaches them) for as long as the
    /// window is open.
    pub fn show<O: Send + Sync + 'static>(
        self,
        ic: &IdentityConfig,
        prompt: &SignInPrompt,
        owner: Arc<O>,
        sso: fn(&O) -> &SignIns,
    ) {
        let minutes = prompt.expires_in.div_ceil(60);
        let body = if self.opener {
            format!(
                "{} asked for identity {}: confirm the code {} in the browser (valid for {minutes} min)",
                self.who.shown, ic.name, prompt.user_code
            )
        } else {
            format!(
                "{} asked for identity {}: open {} and confirm the code {} (valid for {minutes} min)",
                self.who.shown, ic.name, prompt.verification_uri, prompt.user_code
            )
        };
        first_time(&ic.name, prompt.serial, &self.who.key);
        notify::show(TITLE, &body, &self.env);
        let Some(path) = self.window else {
            return;
        };
        let desc = format!(
            "{who} asked for identity {name} ({start}), which must sign in to IAM Identity Center.\n\n\
             Open {uri} in a browser and confirm the code\n\n    {code}\n\n\
             (or open {complete}). The code is valid for {minutes} min; this window closes when \
             the sign-in ends. Cancel abandons the sign-in.",
            who = self.who.shown,
            name = ic.name,
            start = ic.sso.as_ref().map(|s| s.start_url.as_str()).unwrap_or("-"),
            uri = prompt.verification_uri,
            code = prompt.user_code,
            complete = prompt.verification_uri_complete,
        );
        let pin = pinentry::Pinentry::new(
            path,
            &self.env,
            Duration::from_secs(prompt.expires_in.max(1)),
        );
        let serial = prompt.serial;
        let name = ic.name.clone();
        let opener = self.opener;
        tokio::spawn(async move {
            let sso = sso(&owner);
            // signed in, denied, expired or locked: the window goes
            let ended = async {
                let _ = sso.wait(serial).await;
            };
            let asked = pin.choose_until(
                "pctl: IAM Identity Center sign-in",
                &desc,
                ("OK", "Cancel sign-in"),
                ended,
            );
            match asked.await {
                None | Some(Ok(true)) | Some(Err(pinentry::PinError::TimedOut)) => {}
                Some(Ok(false)) | Some(Err(pinentry::PinError::Cancelled)) => {
                    tracing::info!("identity {name}: sign-in cancelled in pinentry");
                    sso.abandon(serial, cancelled(&name));
                }
                Some(Err(pinentry::PinError::Failed(why))) => {
                    tracing::warn!(
                        "identity {name}: the pinentry could not show the sign-in: {why}"
                    );
                    if !opener {
                        sso.abandon(serial, not_shown(&name, &why));
                    }
                }
            }
        });
    }
}

const TITLE: &str = "pctl: sign in to IAM Identity Center";

/// A client without a terminal joined the sign-in `prompt` of `identity`
/// that another started: the notification, once per sign-in per program.
pub fn joined(identity: &str, prompt: &SignInPrompt, who: &Requester, env: &ClientEnv) {
    let first = first_time(identity, prompt.serial, &who.key);
    tracing::info!(
        "identity {identity}: {} joins the IAM Identity Center sign-in{}",
        who.shown,
        if first { "" } else { " (told of it already)" }
    );
    if !first {
        return;
    }
    let body = format!(
        "{} waits for identity {identity} to sign in (started for another program): open {} \
         and confirm the code {}",
        who.shown, prompt.verification_uri, prompt.user_code
    );
    notify::show(TITLE, &body, env);
}

/// Programs told of a sign-in: (identity, its sign-in's serial, program).
static TOLD: Mutex<Vec<(String, u64, String)>> = Mutex::new(Vec::new());

/// Programs told of one sign-in at most; more get no notification.
const TOLD_PER_SIGN_IN: usize = 32;

/// Whether `program` is told of sign-in `serial` of `identity` for the
/// first time (and notes it). An identity's older sign-ins are forgotten.
fn first_time(identity: &str, serial: u64, program: &str) -> bool {
    let mut told = TOLD.lock().unwrap_or_else(|p| p.into_inner());
    told.retain(|(i, s, _)| i != identity || *s == serial);
    let mine = told.iter().filter(|(i, _, _)| i == identity);
    if mine.clone().any(|(_, _, p)| p == program) || mine.count() >= TOLD_PER_SIGN_IN {
        return false;
    }
    told.push((identity.to_string(), serial, program.to_string()));
    true
}

/// No way to show the sign-in: nothing starts.
fn cannot_show(ic: &IdentityConfig, why: &str) -> Failure {
    Failure(
        ErrorKind::Unavailable,
        format!(
            "identity {name} must sign in to IAM Identity Center and the client has no terminal \
             and no browser opener: {why}; or run `pctl unlock --identity {name}` in a terminal, \
             then retry",
            name = ic.name
        ),
    )
}

fn not_shown(identity: &str, why: &str) -> Failure {
    Failure(
        ErrorKind::Unavailable,
        format!(
            "identity {identity} must sign in to IAM Identity Center and the client has no \
             terminal and no browser opener: the pinentry could not show the sign-in ({why}), so \
             it was abandoned and nothing was kept: run `pctl unlock --identity {identity}` in a \
             terminal, then retry"
        ),
    )
}

fn cancelled(identity: &str) -> Failure {
    Failure(
        ErrorKind::Refused,
        format!(
            "identity {identity}: the IAM Identity Center sign-in was cancelled in pinentry, \
             nothing was kept: retry to sign in again (or run `pctl unlock --identity {identity}`)"
        ),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_program_is_told_of_a_sign_in_once() {
        use super::first_time;
        assert!(first_time("told-test", 1, "kubectl"));
        assert!(!first_time("told-test", 1, "kubectl"));
        assert!(first_time("told-test", 1, "terraform"));
        assert!(first_time("told-other", 1, "kubectl"));
        // a new sign-in: told again
        assert!(first_time("told-test", 2, "kubectl"));
        assert!(!first_time("told-test", 2, "kubectl"));
        for n in 0..super::TOLD_PER_SIGN_IN {
            first_time("told-many", 1, &format!("p{n}"));
        }
        assert!(!first_time("told-many", 1, "one-more"));
    }
}
