//! Unlocking: one attempt at a time reads the credential source, turns the
//! MFA code into a base session (GetSessionToken) and installs the result
//! in the vault. Requests that come while an attempt runs all get its
//! answer, failure included: one dismissed 1Password prompt is one prompt.
//!
//! The attempt runs in its own task ([`crate::flight`]): a request that
//! goes away meanwhile (an SDK that timed out, a client killed mid-unlock)
//! does not kill the `op` it started, and the next request joins the same
//! attempt. What a fresh unlock must do besides (drop what the previous
//! unlock built, audit it) runs in that task too, so it happens even when
//! nobody is left waiting.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pctl_protocol::{ClientEnv, ErrorKind};

use crate::aws::sts::Sts;
use crate::aws::Session;
use crate::clock::{rfc3339, Clock};
use crate::config::Config;
use crate::config::MfaMode;
use crate::failure::{needs_env, needs_mfa_code, Failure};
use crate::flight::{Flight, Outcome};
use crate::secret::LockedString;
use crate::source::mfa::{self, NeverTwice};
use crate::source::{CredentialSource, Mfa};
use crate::vault::{Unlocked, Vault};

/// What `status` says an identity waits for while its unlock waits for
/// the next 30-second TOTP step (AWS takes each code once).
pub const NEXT_CODE: &str = "the next one-time password (AWS takes each code once)";

/// What to do after a fresh unlock was installed (runs in the attempt's
/// task, once, whoever is still waiting).
pub type OnUnlock = Box<dyn FnOnce(&Arc<Unlocked>) + Send>;

/// Runs unlock attempts, one at a time.
pub struct Unlocker {
    inner: Arc<Inner>,
    flight: Flight<Arc<Unlocked>>,
    /// `source = "sso"`: the device authorizations of this identity.
    pub sso: crate::source::sso::SignIns,
}

struct Inner {
    /// The identity this unlocker reads (a key of `[identities]`).
    name: String,
    clock: Arc<dyn Clock>,
    vault: Arc<Vault>,
    source: Arc<dyn CredentialSource>,
    sts: Arc<dyn Sts>,
    never_twice: NeverTwice,
    /// Source reads started for this identity.
    reads: AtomicU64,
    get_session_token: AtomicU64,
}

impl Unlocker {
    pub fn new(
        name: &str,
        clock: Arc<dyn Clock>,
        vault: Arc<Vault>,
        source: Arc<dyn CredentialSource>,
        sts: Arc<dyn Sts>,
    ) -> Self {
        Unlocker {
            inner: Arc::new(Inner {
                name: name.to_string(),
                clock,
                vault,
                source,
                sts,
                never_twice: NeverTwice::default(),
                reads: AtomicU64::new(0),
                get_session_token: AtomicU64::new(0),
            }),
            flight: Flight::default(),
            sso: Default::default(),
        }
    }

    /// Source reads (`op item get` per unlock) and GetSessionToken calls
    /// of this identity so far, for `status`.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.inner.reads.load(Ordering::Relaxed),
            self.inner.get_session_token.load(Ordering::Relaxed),
        )
    }

    /// `op` runs of the shared source (all identities), for `status`.
    pub fn source_runs(&self) -> u64 {
        self.inner.source.runs()
    }

    /// The unlocked state, unlocking on demand (with `env`; without it the
    /// client is asked to resend, [`needs_env`]) unless locked by `pctl lock`.
    /// A request that comes while an unlock runs joins it (even without
    /// `env`). `on_fresh` makes what a fresh unlock runs afterwards.
    pub async fn on_demand(
        &self,
        cfg: &Arc<Config>,
        env: Option<&ClientEnv>,
        on_fresh: impl FnOnce() -> OnUnlock,
    ) -> Result<Arc<Unlocked>, Failure> {
        self.on_demand_asking(cfg, env, None, on_fresh).await
    }

    /// Whether an unlock attempt runs now.
    pub fn running(&self) -> bool {
        self.flight.running()
    }

    /// [`Unlocker::on_demand`]; with `ask`, an `mfa = "prompt"` identity
    /// asks its code through pinentry (the client has no terminal)
    /// instead of answering [`needs_mfa_code`].
    pub async fn on_demand_asking(
        &self,
        cfg: &Arc<Config>,
        env: Option<&ClientEnv>,
        ask: Option<crate::prompt::Ask>,
        on_fresh: impl FnOnce() -> OnUnlock,
    ) -> Result<Arc<Unlocked>, Failure> {
        let inner = &self.inner;
        // Before the checks below: a lock after them makes the install fail.
        let epoch = inner.vault.epoch();
        if let Some(u) = inner.vault.current(inner.clock.as_ref())? {
            return Ok(u);
        }
        if let Some(sso) = &cfg.identity(&inner.name)?.sso {
            return self.signed_in(sso).await;
        }
        let asking = ask.is_some();
        // Asked under the flight's lock, when no attempt runs.
        let ready = || match inner.vault.current(inner.clock.as_ref()) {
            Ok(Some(u)) => Some(Ok(u)),
            Err(f) => Some(Err(f)),
            Ok(None) => match cfg.identity(&inner.name) {
                Err(e) => Some(Err(e.into())),
                Ok(i) if i.mfa == MfaMode::Prompt && !asking => {
                    Some(Err(needs_mfa_code(&inner.name, "")))
                }
                Ok(_) if env.is_none() => Some(Err(needs_env())),
                Ok(_) => None,
            },
        };
        let start = || {
            // `ready` answered None, so `env` is there.
            let env = env.cloned().unwrap_or_default();
            self.attempt_asking(epoch, cfg.clone(), env, None, ask, on_fresh())
        };
        self.flight.run(ready, start).await.0
    }

    /// Reads the source now (`pctl unlock`), replacing any unlock; a call
    /// that comes while another attempt runs gets that attempt's answer.
    pub async fn now(
        &self,
        cfg: &Arc<Config>,
        env: &ClientEnv,
        mfa_code: Option<&str>,
        on_fresh: impl FnOnce() -> OnUnlock,
    ) -> Result<(), Failure> {
        if let Some(sso) = &cfg.identity(&self.inner.name)?.sso {
            // A sign-in lasts until lock: `pctl unlock` only signs in when needed.
            if let Ok(Some(_)) = self.inner.vault.current(self.inner.clock.as_ref()) {
                return Ok(());
            }
            return self.signed_in(sso).await.map(drop);
        }
        let epoch = self.inner.vault.epoch();
        let start = || {
            let code = mfa_code.map(LockedString::new);
            self.attempt_asking(epoch, cfg.clone(), env.clone(), code, None, on_fresh())
        };
        self.flight.run(|| None, start).await.0.map(drop)
    }

    /// An `sso` identity's unlock: the sign-in in progress when there is
    /// one, else the client is asked to start one ([`needs_sign_in`]).
    ///
    /// [`needs_sign_in`]: crate::failure::needs_sign_in
    async fn signed_in(&self, sso: &crate::config::SsoConfig) -> Result<Arc<Unlocked>, Failure> {
        let inner = &self.inner;
        if let Some(serial) = self.sso.pending() {
            self.sso.wait(serial).await?;
            if let Ok(Some(u)) = inner.vault.current(inner.clock.as_ref()) {
                return Ok(u);
            }
        }
        Err(crate::failure::needs_sign_in(
            &inner.name,
            &sso.start_url,
            "",
        ))
    }

    /// One attempt, as a task of its own will run it. It installs its
    /// unlock only while the vault is still at `epoch`.
    /// With `ask` and no `code`, an `mfa = "prompt"` identity's code is
    /// asked through pinentry first, in the attempt's task (one window for
    /// every request that joins it).
    fn attempt_asking(
        &self,
        epoch: u64,
        cfg: Arc<Config>,
        env: ClientEnv,
        code: Option<LockedString>,
        ask: Option<crate::prompt::Ask>,
        on_fresh: OnUnlock,
    ) -> impl Future<Output = Outcome<Arc<Unlocked>>> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            let code = match (code, ask) {
                (Some(c), _) => Some(c),
                (None, Some(ask)) if cfg.identity(&inner.name)?.mfa == MfaMode::Prompt => {
                    Some(ask.code(&cfg, &inner.name, &env).await?)
                }
                (None, _) => None,
            };
            let u = inner
                .read(epoch, &cfg, &env, code.as_ref().map(LockedString::expose))
                .await
                .inspect_err(|f| {
                    // kept for status, doctor and the locked message
                    if !matches!(f.0, ErrorKind::NeedsEnv | ErrorKind::NeedsMfaCode) {
                        inner.vault.set_failure(&f.1);
                    }
                })?;
            on_fresh(&u);
            Ok(u)
        }
    }
}

impl Inner {
    async fn read(
        &self,
        epoch: u64,
        cfg: &Config,
        env: &ClientEnv,
        typed: Option<&str>,
    ) -> Result<Arc<Unlocked>, Failure> {
        let identity = cfg.identity(&self.name)?;
        if identity.mfa == MfaMode::Prompt {
            // The code was typed for this unlock: check it before reading the item.
            let Some(code) = typed else {
                return Err(needs_mfa_code(&self.name, ""));
            };
            if !mfa::is_code(code) {
                return Err(needs_mfa_code(&self.name, ": the code must be 6 digits"));
            }
            if let Some(wait) = self.never_twice.wait(self.clock.now()) {
                return Err(needs_mfa_code(
                    &self.name,
                    &format!(
                        ": AWS takes a code once and one was sent in this 30-second step; \
                         type the next code (in {}s)",
                        wait.as_secs().max(1)
                    ),
                ));
            }
        } else if let Some(wait) = self.never_twice.wait(self.clock.now()) {
            tracing::info!(
                "waiting {}s for a fresh one-time password (AWS refuses a code twice)",
                wait.as_secs()
            );
            // `pctl status` (and the prompt) says why this unlock takes up to 30 s.
            let _waiting = crate::prompt::waiting(&self.name, NEXT_CODE);
            tokio::time::sleep(wait).await;
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let read = self
            .source
            .read(identity, cfg, env)
            .await
            .inspect_err(|e| {
                tracing::warn!("unlock of identity {} failed: {}", self.name, e.message);
                self.vault.set_origin(e.origin.clone());
            })?;
        let secrets = read.secrets;
        let user = Session {
            access_key_id: secrets.access_key_id.expose().to_string(),
            secret_access_key: secrets.secret_access_key,
            session_token: None,
            expiration: self.clock.now() + Duration::from_secs(100 * 365 * 86400),
        };
        let code = match (&identity.mfa, secrets.mfa) {
            (_, None) => None,
            (MfaMode::Item, Some(m)) => Some(m),
            (MfaMode::Prompt, Some(m)) => Some(Mfa {
                serial: m.serial,
                code: LockedString::new(typed.unwrap_or_default()),
            }),
            (MfaMode::Process(argv), Some(m)) => {
                let code = mfa::run_command(argv, env, cfg.daemon.op_timeout)
                    .await
                    .map_err(|e| {
                        let msg = format!("identity {}: {e}", self.name);
                        tracing::warn!("unlock failed: {msg}");
                        Failure(ErrorKind::Op, msg)
                    })?;
                Some(Mfa {
                    serial: m.serial,
                    code,
                })
            }
        };
        // Who the key belongs to (GetCallerIdentity with the user's key, in
        // parallel with GetSessionToken): the default role session name.
        let who = self.sts.caller_arn(&cfg.region, &user);
        let (base, mfa_expires, arn) = match code {
            None => {
                let arn = who.await;
                (user, None, arn)
            }
            Some(mfa) => {
                self.get_session_token.fetch_add(1, Ordering::Relaxed);
                let sent = self.clock.now();
                let (session, arn) = tokio::join!(
                    self.sts.get_session_token(
                        &cfg.region,
                        &user,
                        &mfa.serial,
                        &mfa.code,
                        cfg.daemon.mfa_session,
                    ),
                    who
                );
                self.never_twice.sent(sent);
                let s = session.inspect_err(|e| tracing::warn!("unlock failed: {e}"))?;
                let exp = s.expiration;
                (s, Some(exp), arn)
            }
        };
        let u = Unlocked {
            name: self.name.clone(),
            epoch,
            serial: 0,
            at: self.clock.now(),
            at_boot: self.clock.boot(),
            idle_lock: cfg.daemon.idle_lock,
            max_unlock: cfg.daemon.max_unlock,
            account_id: secrets.account_id,
            user_key_id: secrets.access_key_id.expose().to_string(),
            session_name: arn.as_deref().and_then(session_name_of),
            caller_arn: arn,
            base,
            mfa_expires,
            origin: read.origin,
            sso: None,
        };
        let Some(u) = self.vault.install(u, self.clock.as_ref()) else {
            return Err(Failure(
                ErrorKind::Locked,
                "pctl was locked while 1Password was being read: run `pctl unlock`".into(),
            ));
        };
        tracing::info!(
            "identity {} unlocked{}",
            self.name,
            if u.mfa_expires.is_some() {
                " with an MFA session"
            } else {
                ""
            }
        );
        if let Some(exp) = u.mfa_expires {
            if u.lifetime() < u.max_unlock {
                tracing::info!(
                    "STS granted an MFA session until {}: pctl unlocks again before then",
                    rfc3339(exp)
                );
            }
        }
        Ok(u)
    }
}

/// The role session name for the caller `arn` names: the IAM user's name
/// (`arn:aws:iam::ACCOUNT:user/PATH/NAME`), `root` for the account's root
/// user, the session's name for an assumed role or federated user. Any
/// character outside RoleSessionName's set becomes `-`; a 1-character name
/// is prefixed with `pctl-`, a long one cut at 64.
pub fn session_name_of(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let name = match resource.split_once('/') {
        Some((_, rest)) => rest.rsplit('/').next().unwrap_or_default(),
        None if resource == "root" => "root",
        None => return None,
    };
    let mut name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        return None;
    }
    if name.len() < 2 {
        name = format!("pctl-{name}");
    }
    pctl_protocol::names::is_session_name(&name).then_some(name)
}

#[cfg(test)]
mod session_name_tests {
    use super::*;

    #[test]
    fn names_the_person() {
        let n = |a| session_name_of(a);
        assert_eq!(
            n("arn:aws:iam::123456789012:user/alice").as_deref(),
            Some("alice")
        );
        assert_eq!(
            n("arn:aws:iam::123456789012:user/division/team/bob.smith@example.com").as_deref(),
            Some("bob.smith@example.com")
        );
        assert_eq!(n("arn:aws:iam::123456789012:root").as_deref(), Some("root"));
        assert_eq!(
            n("arn:aws-us-gov:sts::123456789012:assumed-role/Dev/carol").as_deref(),
            Some("carol")
        );
        assert_eq!(
            n("arn:aws:iam::123456789012:user/x").as_deref(),
            Some("pctl-x")
        );
        assert_eq!(n("arn:aws:iam::1:user/a b!").as_deref(), Some("a-b-"));
        let long = format!("arn:aws:iam::1:user/{}", "d".repeat(80));
        assert_eq!(n(&long).map(|s| s.len()), Some(64));
        assert_eq!(n("not an arn"), None);
        assert_eq!(n("arn:aws:iam::1:user/"), None);
    }
}
