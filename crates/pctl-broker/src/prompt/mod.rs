//! Reaching the user when the requesting client has no terminal: a
//! [`pinentry`] window (the Assuan protocol gpg-agent and rbw use) for a
//! typed MFA code or a break-glass confirmation, a desktop [`notify`]
//! when an unlock starts, an IAM Identity Center [`sign_in`] shown on the
//! desktop, and what each identity waits for now (`status`, `pctl prompt`).

pub mod notify;
pub mod pinentry;
pub mod sign_in;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use pctl_protocol::ClientEnv;
use zeroize::Zeroizing;

use crate::config::{Config, MfaMode, RoleConfig};
use crate::failure::{needs_mfa_code, Failure};
use crate::peer::{Peer, Requester};
use crate::secret::LockedString;

/// How an unlock asks for a typed MFA code when the client has no terminal.
#[derive(Debug, Clone)]
pub struct Ask {
    configured: Option<PathBuf>,
    desc: String,
}

impl Ask {
    /// The code, typed in pinentry, in locked memory. Cancelled, timed out
    /// or no pinentry: one line (what to do instead), nothing kept.
    pub async fn code(
        &self,
        cfg: &Config,
        identity: &str,
        env: &ClientEnv,
    ) -> Result<LockedString, Failure> {
        let fail = |why: String| {
            needs_mfa_code(identity, &format!(" and the client has no terminal: {why}"))
        };
        let path = pinentry::find(self.configured.as_deref(), env).map_err(fail)?;
        let _waiting = waiting(identity, "an MFA code in pinentry");
        let pin = pinentry::Pinentry::new(path, env, cfg.daemon.op_timeout);
        let typed = pin
            .get_pin("pctl: MFA code", &self.desc, "MFA code:")
            .await
            .map_err(|e| fail(pin_error(&e, cfg)))?;
        // authenticator apps show codes grouped (`123 456`)
        let digits: Zeroizing<String> = Zeroizing::new(
            typed
                .expose()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect(),
        );
        if !crate::source::mfa::is_code(&digits) {
            return Err(fail("the code typed in pinentry is not 6 digits".into()));
        }
        Ok(LockedString::new(&digits))
    }
}

/// Where a locked identity's unlock stands when a request needs it.
#[derive(Debug, Clone)]
pub struct UnlockState {
    /// An unlock attempt is under way (the request will join it).
    pub running: bool,
    /// The IAM Identity Center sign-in under way, if any (a terminal-less
    /// client joining it is told on its desktop).
    pub sso_pending: Option<pctl_protocol::SignInPrompt>,
}

/// Before a request unlocks `role`'s identity on demand: marks what the
/// identity waits for (`status`, `pctl prompt`), tells the desktop when a
/// client without a terminal starts an unlock (a 1Password window may pop
/// up), and for an `mfa = "prompt"` identity and such a client says to ask
/// the code through pinentry; such a client joining the IAM Identity
/// Center sign-in another started is told of it ([`sign_in::joined`]),
/// after a round trip for its display variables when it sent none.
/// Only for an identity that is not unlocked (the caller checks, so a warm
/// request reads no more than its vault).
pub fn before_unlock(
    cfg: &Config,
    role: &RoleConfig,
    state: UnlockState,
    env: Option<&ClientEnv>,
    peer: &Peer,
) -> Result<(Option<Ask>, Option<Waiting>), Failure> {
    let Ok(ic) = cfg.identity(&role.identity) else {
        return Ok((None, None));
    };
    let no_terminal = peer.caller.as_ref().is_some_and(|c| !c.terminal);
    let typed = ic.mfa == MfaMode::Prompt;
    let who = Requester::of(peer);
    // a client without a terminal joining a sign-in another started: told
    // once, on its desktop (it needs its display variables for that)
    if let (true, Some(prompt)) = (no_terminal && ic.sso.is_some(), state.sso_pending) {
        let env = env.ok_or_else(crate::failure::needs_env)?;
        sign_in::joined(&ic.name, &prompt, &who, env);
    }
    let who = who.shown;
    let ask = (no_terminal && typed && ic.sso.is_none()).then(|| Ask {
        configured: cfg.daemon.pinentry.clone(),
        desc: format!(
            "{who} asked for role {}: type the MFA code of identity {} (its device: the item's MFA serial)",
            role.key, ic.name
        ),
    });
    let running = state.running;
    if env.is_none() && !running {
        // answered at once (the client resends with its environment)
        return Ok((ask, None));
    }
    let what = if ic.sso.is_some() {
        "IAM Identity Center sign-in"
    } else if ask.is_some() {
        "an MFA code in pinentry"
    } else if typed {
        "an MFA code"
    } else {
        "1Password approval"
    };
    let w = waiting(&ic.name, what);
    // an `sso` identity's sign-in says so itself (sign_in)
    let op = ic.sso.is_none();
    if let (true, false, false, true, Some(env)) = (no_terminal, running, typed, op, env) {
        notify::show(
            &format!("pctl: unlocking identity {}", ic.name),
            &format!(
                "{who} asked for role {}: approve 1Password if it asks",
                role.key
            ),
            env,
        );
    }
    Ok((ask, Some(w)))
}

/// One phrase for a dialog that gave no answer.
pub fn pin_error(e: &pinentry::PinError, cfg: &Config) -> String {
    pin_error_after(e, cfg.daemon.op_timeout)
}

/// [`pin_error`] for a dialog that had `timeout` (daemon.op_timeout).
pub fn pin_error_after(e: &pinentry::PinError, timeout: std::time::Duration) -> String {
    match e {
        pinentry::PinError::Cancelled => "cancelled in pinentry".into(),
        pinentry::PinError::TimedOut => format!(
            "pinentry got no answer within {}s (daemon.op_timeout)",
            timeout.as_secs()
        ),
        pinentry::PinError::Failed(why) => why.clone(),
    }
}

/// What each identity waits for from the user now; the count of waits, so
/// nested or concurrent waits end with the last one.
static WAITING: Mutex<BTreeMap<String, (String, usize)>> = Mutex::new(BTreeMap::new());

/// While alive, `status` says the identity waits for `what`.
pub struct Waiting {
    identity: String,
    /// What the identity waited for before this wait (said again when
    /// this one ends inside an outer one).
    before: String,
}

/// Marks `identity` as waiting for the user (`what`: "1Password approval",
/// "an MFA code in pinentry", ...) until the returned guard is dropped.
pub fn waiting(identity: &str, what: &str) -> Waiting {
    let mut map = WAITING.lock().unwrap_or_else(|p| p.into_inner());
    let e = map
        .entry(identity.to_string())
        .or_insert_with(|| (String::new(), 0));
    let before = std::mem::replace(&mut e.0, what.to_string());
    e.1 += 1;
    Waiting {
        identity: identity.to_string(),
        before,
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut map = WAITING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = map.get_mut(&self.identity) {
            e.1 -= 1;
            if e.1 == 0 {
                map.remove(&self.identity);
            } else if !self.before.is_empty() {
                e.0 = std::mem::take(&mut self.before);
            }
        }
    }
}

/// What `identity` waits for now, if anything.
pub fn waiting_for(identity: &str) -> Option<String> {
    WAITING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(identity)
        .map(|e| e.0.clone())
}

#[cfg(test)]
mod tests {
    #[test]
    fn waiting_lasts_as_long_as_its_last_guard() {
        let a = super::waiting("w-test", "1Password approval");
        let b = super::waiting("w-test", "an MFA code in pinentry");
        assert_eq!(
            super::waiting_for("w-test").as_deref(),
            Some("an MFA code in pinentry")
        );
        drop(b);
        // the outer wait is said again when the inner one ends
        assert_eq!(
            super::waiting_for("w-test").as_deref(),
            Some("1Password approval")
        );
        drop(a);
        assert_eq!(super::waiting_for("w-test"), None);
    }
}
