//! IAM Identity Center as an identity source (`source = "sso"`).
//!
//! Signing in is the OIDC device authorization (RFC 8628): RegisterClient
//! (a public client), StartDeviceAuthorization, then CreateToken polled at
//! `interval`, 5 s slower after each `slow_down`, until the user approves,
//! denies or the code expires. The poll runs in its own task, so a client
//! that goes away does not cancel it, and every request of the identity
//! waits on the same one ([`SignIns`]): ten cold requests, one sign-in.
//!
//! What it yields, [`SignedIn`] ([`signed_in`]), hangs off the vault's
//! `Unlocked`: the client registration (its secret), the access token and
//! the refresh token, each in a [`LockedString`]. Lock, idle lock and the maximum
//! unlock time drop it with the rest of the unlock; a pending sign-in is
//! aborted (its registration and device code dropped). Nothing is written
//! to `~/.aws/sso/cache` or anywhere else.

pub mod signed_in;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pctl_protocol::{ErrorKind, SignInPrompt};
use tokio::sync::{oneshot, watch};

use crate::aws::sso::{DeviceAuth, Registration, SsoApi, TokenError};
use crate::aws::{AwsError, Session};
use crate::clock::Clock;
use crate::config::{DaemonConfig, SsoConfig};
use crate::failure::Failure;
use crate::secret::LockedString;
use crate::vault::{Unlocked, Vault};

pub use signed_in::SignedIn;

/// Polls of one device authorization at most (bounded by its expiry too).
const MAX_POLLS: usize = 10_000;
/// RFC 8628: each `slow_down` adds this to the polling interval.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

type Outcome = Option<Result<(), Failure>>;

struct Pending {
    prompt: SignInPrompt,
    done: watch::Receiver<Outcome>,
    task: tokio::task::AbortHandle,
    /// Ends the sign-in with this failure ([`SignIns::abandon`]).
    abandon: Option<oneshot::Sender<Failure>>,
}

#[derive(Default)]
struct State {
    serial: u64,
    pending: Option<Pending>,
    /// How the last device authorization ended, for a late waiter.
    last: Option<(u64, Result<(), Failure>)>,
}

/// One identity's device authorizations: at most one at a time.
pub struct SignIns {
    api: Arc<SsoApi>,
    /// Held while starting one, so concurrent starters join it.
    starting: tokio::sync::Mutex<()>,
    state: Arc<Mutex<State>>,
    /// Device authorizations started.
    pub started: AtomicU64,
    /// A sign-in completed that the broker has not audited yet.
    unaudited: Arc<AtomicBool>,
}

impl Default for SignIns {
    fn default() -> Self {
        SignIns {
            api: Arc::new(SsoApi::default()),
            starting: tokio::sync::Mutex::new(()),
            state: Arc::new(Mutex::new(State::default())),
            started: AtomicU64::new(0),
            unaudited: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// What a sign-in needs besides the SSO settings.
pub struct SignInContext<'a> {
    pub identity: &'a str,
    pub sso: &'a SsoConfig,
    pub daemon: &'a DaemonConfig,
    pub vault: Arc<Vault>,
    pub clock: Arc<dyn Clock>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SignIns {
    /// The serial of the device authorization in progress, if any.
    pub fn pending(&self) -> Option<u64> {
        lock(&self.state).pending.as_ref().map(|p| p.prompt.serial)
    }

    /// The device authorization in progress, if any, as a joiner sees it
    /// (`started: false`): its public parts only.
    pub fn pending_prompt(&self) -> Option<SignInPrompt> {
        lock(&self.state).pending.as_ref().map(|p| SignInPrompt {
            started: false,
            ..p.prompt.clone()
        })
    }

    /// Whether a sign-in completed since the last call (for the audit log).
    pub fn take_unaudited(&self) -> bool {
        self.unaudited.swap(false, Ordering::AcqRel)
    }

    /// Starts a device authorization, or joins the one in progress.
    pub async fn start(&self, cx: SignInContext<'_>) -> Result<SignInPrompt, Failure> {
        let _starting = self.starting.lock().await;
        if let Some(p) = &lock(&self.state).pending {
            return Ok(SignInPrompt {
                started: false,
                ..p.prompt.clone()
            });
        }
        let region = cx.sso.region.clone();
        let epoch = cx.vault.epoch();
        let reg = self
            .api
            .register_client(&region, &cx.sso.scopes)
            .await
            .map_err(|e| named(cx.identity, e))?;
        let dev = self
            .api
            .start_device_authorization(&region, &reg, &cx.sso.start_url)
            .await
            .map_err(|e| named(cx.identity, e))?;
        self.started.fetch_add(1, Ordering::Relaxed);
        let mut st = lock(&self.state);
        st.serial += 1;
        let prompt = SignInPrompt {
            identity: cx.identity.to_string(),
            start_url: cx.sso.start_url.clone(),
            serial: st.serial,
            verification_uri: dev.verification_uri.clone(),
            verification_uri_complete: dev.verification_uri_complete.clone(),
            user_code: dev.user_code.clone(),
            expires_in: dev.expires_in.as_secs(),
            started: true,
        };
        tracing::info!(
            "identity {}: IAM Identity Center sign-in started for {} (code {})",
            cx.identity,
            cx.sso.start_url,
            dev.user_code
        );
        let (tx, rx) = watch::channel(None);
        let job = Job {
            identity: cx.identity.to_string(),
            start_url: cx.sso.start_url.clone(),
            region,
            api: self.api.clone(),
            vault: cx.vault,
            clock: cx.clock,
            epoch,
            idle_lock: cx.daemon.idle_lock,
            max_unlock: cx.daemon.max_unlock,
        };
        let state = self.state.clone();
        let unaudited = self.unaudited.clone();
        let serial = st.serial;
        let (abandon, abandoned) = oneshot::channel::<Failure>();
        let task = tokio::spawn(async move {
            // abandoned: the registration and the device code go with `run`
            let r = tokio::select! {
                r = job.run(reg, dev) => r,
                Ok(why) = abandoned => Err(why),
            };
            if r.is_ok() {
                unaudited.store(true, Ordering::Release);
            }
            let mut st = lock(&state);
            if st
                .pending
                .as_ref()
                .is_some_and(|p| p.prompt.serial == serial)
            {
                st.pending = None;
            }
            st.last = Some((serial, r.clone()));
            drop(st);
            let _ = tx.send(Some(r));
        });
        st.pending = Some(Pending {
            prompt: prompt.clone(),
            done: rx,
            task: task.abort_handle(),
            abandon: Some(abandon),
        });
        Ok(prompt)
    }

    /// Waits for the device authorization `serial` to end.
    pub async fn wait(&self, serial: u64) -> Result<(), Failure> {
        let (mut rx, expires) = {
            let st = lock(&self.state);
            match (&st.pending, &st.last) {
                (Some(p), _) if p.prompt.serial == serial => {
                    (p.done.clone(), Duration::from_secs(p.prompt.expires_in))
                }
                (_, Some((s, r))) if *s == serial => return r.clone(),
                _ => {
                    return Err(Failure(
                        ErrorKind::Locked,
                        "that IAM Identity Center sign-in is no longer in progress (pctl was \
                         locked meanwhile): retry"
                            .into(),
                    ))
                }
            }
        };
        let waited = tokio::time::timeout(
            expires + Duration::from_secs(60),
            rx.wait_for(Option::is_some),
        )
        .await;
        match waited {
            Ok(Ok(v)) => v.clone().unwrap_or(Ok(())),
            Ok(Err(_)) => Err(crate::failure::locked_meanwhile()),
            Err(_) => Err(Failure(
                ErrorKind::Unavailable,
                "the IAM Identity Center sign-in did not end in time: retry".into(),
            )),
        }
    }

    /// Ends the device authorization `serial`, if still in progress, with
    /// `why` for every waiter (the user cancelled it): nothing is kept.
    pub fn abandon(&self, serial: u64, why: Failure) {
        let tx = {
            let mut st = lock(&self.state);
            st.pending
                .as_mut()
                .filter(|p| p.prompt.serial == serial)
                .and_then(|p| p.abandon.take())
        };
        if let Some(tx) = tx {
            let _ = tx.send(why);
        }
    }

    /// Aborts a sign-in in progress (lock): its registration and device
    /// code are dropped with the task.
    pub fn cancel(&self) {
        let p = {
            let mut st = lock(&self.state);
            st.last = None;
            st.pending.take()
        };
        if let Some(p) = p {
            p.task.abort();
        }
        self.api.reset();
    }
}

fn named(identity: &str, e: AwsError) -> Failure {
    Failure(ErrorKind::Aws, format!("identity {identity}: {}", e.0))
}

/// One device authorization being polled.
struct Job {
    identity: String,
    start_url: String,
    region: String,
    api: Arc<SsoApi>,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
    epoch: u64,
    idle_lock: Duration,
    max_unlock: Duration,
}

impl Job {
    fn ended(&self, what: &str) -> Failure {
        Failure(
            ErrorKind::Aws,
            format!(
                "identity {} ({}): the IAM Identity Center sign-in {what}: run `pctl unlock \
                 --identity {}` to sign in again",
                self.identity, self.start_url, self.identity
            ),
        )
    }

    async fn run(self, reg: Registration, dev: DeviceAuth) -> Result<(), Failure> {
        let polled = poll_for_tokens(dev.interval, dev.expires_in, || {
            self.api.poll_device(&self.region, &reg, &dev)
        })
        .await;
        let tokens = match polled {
            Ok(tokens) => tokens,
            Err(TokenError::Denied) => {
                tracing::warn!("identity {}: sign-in denied", self.identity);
                return Err(self.ended("was denied"));
            }
            Err(TokenError::Invalid(code)) => {
                return Err(self.ended(&format!("was refused ({code})")))
            }
            Err(TokenError::Other(m)) => {
                return Err(Failure(
                    ErrorKind::Aws,
                    format!("identity {}: {m}", self.identity),
                ))
            }
            // poll_for_tokens ends these itself
            Err(TokenError::Pending | TokenError::SlowDown | TokenError::Expired) => None,
        };
        drop(dev);
        let Some(tokens) = tokens else {
            tracing::warn!("identity {}: sign-in expired", self.identity);
            return Err(self.ended("expired before it was approved"));
        };
        let signed = SignedIn::new(
            self.identity.clone(),
            self.start_url.clone(),
            self.region.clone(),
            self.api.clone(),
            reg,
            tokens,
        );
        let u = Unlocked {
            name: self.identity.clone(),
            epoch: self.epoch,
            serial: 0,
            at: self.clock.now(),
            at_boot: self.clock.boot(),
            idle_lock: self.idle_lock,
            max_unlock: self.max_unlock,
            account_id: String::new(),
            user_key_id: String::new(),
            // GetRoleCredentials sessions carry the Identity Center user's name already
            session_name: None,
            caller_arn: None,
            base: Session {
                access_key_id: String::new(),
                secret_access_key: LockedString::new(""),
                session_token: None,
                expiration: self.clock.now() + Duration::from_secs(100 * 365 * 86400),
            },
            mfa_expires: None,
            origin: Some(format!("IAM Identity Center {}", self.start_url)),
            sso: Some(Arc::new(signed)),
        };
        match self.vault.install(u, self.clock.as_ref()) {
            Some(_) => {
                tracing::info!(
                    "identity {} signed in to IAM Identity Center",
                    self.identity
                );
                Ok(())
            }
            None => Err(crate::failure::locked_meanwhile()),
        }
    }
}

/// RFC 8628 §3.4–3.5: polls the token endpoint (`poll`, one CreateToken)
/// every `interval` (at least a second), five seconds slower after each
/// `slow_down`, until it answers something other than
/// `authorization_pending` or `slow_down`, or `expires_in` has passed.
/// `Ok(None)`: the device code expired before the user approved.
async fn poll_for_tokens<T, F, Fut>(
    interval: Duration,
    expires_in: Duration,
    mut poll: F,
) -> Result<Option<T>, TokenError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, TokenError>>,
{
    let deadline = tokio::time::Instant::now() + expires_in;
    let mut interval = interval.max(Duration::from_secs(1));
    for _ in 0..MAX_POLLS {
        tokio::time::sleep(interval).await;
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        match poll().await {
            Ok(t) => return Ok(Some(t)),
            Err(TokenError::Pending) => {}
            Err(TokenError::SlowDown) => interval += SLOW_DOWN_STEP,
            Err(TokenError::Expired) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::Config;

    const SSO: &str = r#"region = "us-east-1"
[identities.corp]
source = "sso"
start_url = "https://example.awsapps.com/start"
sso_region = "eu-west-1"
"#;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("/cfg/config.toml"), text).map_err(|e| e.0)
    }

    #[test]
    fn sso_identity_and_role_parse_with_default_scope() {
        let c = parse(&format!(
            "{SSO}[roles.dev]\nidentity = \"corp\"\naccount_id = \"123456789012\"\nrole_name = \"Dev\"\n"
        ))
        .unwrap();
        let s = c.identities["corp"].sso.as_ref().unwrap();
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.scopes, vec!["sso:account:access".to_string()]);
        let r = c.roles["dev"].sso.as_ref().unwrap();
        assert_eq!(
            (r.account_id.as_str(), r.role_name.as_str()),
            ("123456789012", "Dev")
        );
        assert_eq!(c.roles["dev"].arn(""), "arn:aws:iam::123456789012:role/Dev");
    }

    #[test]
    fn sso_mistakes_are_one_line_naming_the_key() {
        let cases = [
            (SSO.replace("source = \"sso\"\n", ""), "for source = \"sso\""),
            (SSO.replace("\"sso\"", "\"okta\""), "identities.corp.source"),
            (SSO.replace("https://example.awsapps.com/start", "example"), "start_url"),
            (SSO.replace("eu-west-1", "mars"), "sso_region"),
            (format!("{SSO}item = \"x\"\n"), "remove item"),
            (
                format!("{SSO}[roles.dev]\nidentity = \"corp\"\nname = \"Dev\"\n"),
                "account_id and role_name",
            ),
            (
                format!("{SSO}[roles.dev]\nidentity = \"corp\"\naccount_id = \"12\"\nrole_name = \"Dev\"\n"),
                "roles.dev.account_id",
            ),
            (
                format!("{SSO}[roles.dev]\nidentity = \"corp\"\naccount_id = \"123456789012\"\n"),
                "roles.dev.role_name",
            ),
        ];
        for (text, want) in cases {
            let e = parse(&text).unwrap_err();
            assert!(e.contains(want), "{want:?} not in {e:?}");
            assert!(!e.contains('\n'), "{e:?}");
        }
        // a 1Password identity's role may not name an SSO account
        let op = "region = \"us-east-1\"\n[onepassword]\nitem = \"i\"\nvault = \"v\"\n\
                  [roles.a]\naccount_id = \"123456789012\"\nrole_name = \"Dev\"\n";
        assert!(parse(op).unwrap_err().contains("reads 1Password"));
    }

    /// Moved from tests/e2e/test_sso.py (test_slow_down_adds_five_seconds,
    /// which waited 6 s of wall-clock time for the slowed-down poll): each
    /// `slow_down` adds 5 s to the interval, and no poll comes sooner than
    /// the interval in force (the stand-in counted those as `too_early`).
    /// Paused time: the instants are exact.
    #[tokio::test(start_paused = true)]
    async fn slow_down_adds_five_seconds_to_the_interval() {
        use super::TokenError::{Pending, SlowDown};
        let start = tokio::time::Instant::now();
        let answers = std::sync::Mutex::new(
            vec![Pending, SlowDown, Pending, SlowDown]
                .into_iter()
                .map(Err)
                .chain([Ok("tokens")])
                .collect::<std::collections::VecDeque<_>>(),
        );
        let at = std::sync::Mutex::new(Vec::new());
        let got = super::poll_for_tokens(Duration::from_secs(1), Duration::from_secs(600), || {
            at.lock().unwrap().push(start.elapsed().as_secs_f64());
            let answer = answers.lock().unwrap().pop_front().unwrap();
            async move { answer }
        })
        .await;
        assert_eq!(got, Ok(Some("tokens")));
        // 1 s, 1 s, then slow_down: 6 s, 6 s, slow_down again: 11 s
        assert_eq!(*at.lock().unwrap(), [1.0, 2.0, 8.0, 14.0, 25.0]);
    }

    /// An interval of 0 is polled every second; polling stops at the device
    /// code's expiry (no poll after it) and at the first refusal.
    #[tokio::test(start_paused = true)]
    async fn polls_at_least_a_second_apart_until_expiry_or_refusal() {
        use super::TokenError;
        let start = tokio::time::Instant::now();
        let at = std::sync::Mutex::new(Vec::new());
        let got: Result<Option<()>, _> =
            super::poll_for_tokens(Duration::ZERO, Duration::from_millis(4500), || {
                at.lock().unwrap().push(start.elapsed().as_secs_f64());
                async { Err(TokenError::Pending) }
            })
            .await;
        assert_eq!(got, Ok(None));
        assert_eq!(*at.lock().unwrap(), [1.0, 2.0, 3.0, 4.0]);
        for end in [
            TokenError::Denied,
            TokenError::Invalid("InvalidGrantException".into()),
        ] {
            let polls = std::sync::atomic::AtomicUsize::new(0);
            let got: Result<Option<()>, _> =
                super::poll_for_tokens(Duration::from_secs(1), Duration::from_secs(600), || {
                    polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let e = end.clone();
                    async move { Err(e) }
                })
                .await;
            assert_eq!(got, Err(end));
            assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 1);
        }
        let got: Result<Option<()>, _> =
            super::poll_for_tokens(Duration::from_secs(1), Duration::from_secs(600), || async {
                Err(TokenError::Expired)
            })
            .await;
        assert_eq!(got, Ok(None));
    }
}
