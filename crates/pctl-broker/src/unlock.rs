//! Unlocking: one attempt at a time reads the credential source, turns the
//! MFA code into a base session (GetSessionToken) and installs the result
//! in the vault. Requests queued behind an attempt all get its answer,
//! failure included: one dismissed 1Password prompt is one prompt.

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
use crate::secret::LockedString;
use crate::source::mfa::{self, NeverTwice};
use crate::source::{CredentialSource, Mfa};
use crate::vault::{Unlocked, Vault};

/// How an unlocked state was obtained.
pub struct Unlock {
    pub unlocked: Arc<Unlocked>,
    /// This call read the source (the caller audits it and drops what the
    /// previous unlock built).
    pub fresh: bool,
}

/// Runs unlock attempts, one at a time.
pub struct Unlocker {
    /// The identity this unlocker reads (a key of `[identities]`).
    name: String,
    clock: Arc<dyn Clock>,
    vault: Arc<Vault>,
    source: Arc<dyn CredentialSource>,
    sts: Arc<dyn Sts>,
    never_twice: NeverTwice,
    /// Held for the length of an attempt; keeps that attempt's failure.
    flight: tokio::sync::Mutex<Option<Failure>>,
    /// Completed attempts: a waiter that saw N and finds more got its
    /// answer from the attempt it queued behind.
    attempts: AtomicU64,
    /// Source reads started for this identity.
    reads: AtomicU64,
    get_session_token: AtomicU64,
    /// `source = "sso"`: the device authorizations of this identity.
    pub sso: crate::source::sso::SignIns,
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
            name: name.to_string(),
            clock,
            vault,
            source,
            sts,
            never_twice: NeverTwice::default(),
            flight: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            get_session_token: AtomicU64::new(0),
            sso: Default::default(),
        }
    }

    /// Source reads (`op item get` per unlock) and GetSessionToken calls
    /// of this identity so far, for `status`.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.get_session_token.load(Ordering::Relaxed),
        )
    }

    /// `op` runs of the shared source (all identities), for `status`.
    pub fn source_runs(&self) -> u64 {
        self.source.runs()
    }

    /// The unlocked state, unlocking on demand (with `env`; without it the
    /// client is asked to resend, [`needs_env`]) unless locked by `pctl lock`.
    pub async fn on_demand(
        &self,
        cfg: &Config,
        env: Option<&ClientEnv>,
    ) -> Result<Unlock, Failure> {
        let shared = |u| Unlock {
            unlocked: u,
            fresh: false,
        };
        if let Some(u) = self.vault.current(self.clock.as_ref())? {
            return Ok(shared(u));
        }
        if let Some(sso) = &cfg.identity(&self.name)?.sso {
            return self.signed_in(sso).await.map(shared);
        }
        let seen = self.attempts.load(Ordering::Acquire);
        let mut flight = self.flight.lock().await;
        if let Some(u) = self.vault.current(self.clock.as_ref())? {
            return Ok(shared(u));
        }
        if self.attempts.load(Ordering::Acquire) != seen {
            if let Some(f) = &*flight {
                return Err(f.clone());
            }
        }
        if cfg.identity(&self.name)?.mfa == MfaMode::Prompt {
            return Err(needs_mfa_code(&self.name, ""));
        }
        let Some(env) = env else {
            return Err(needs_env());
        };
        self.attempt(&mut flight, cfg, env, None).await
    }

    /// Reads the source now (`pctl unlock`), replacing any unlock; a call
    /// that queued behind another attempt gets that attempt's answer.
    pub async fn now(
        &self,
        cfg: &Config,
        env: &ClientEnv,
        mfa_code: Option<&str>,
    ) -> Result<Option<Unlock>, Failure> {
        if let Some(sso) = &cfg.identity(&self.name)?.sso {
            // A sign-in lasts until lock: `pctl unlock` only signs in when needed.
            if let Ok(Some(_)) = self.vault.current(self.clock.as_ref()) {
                return Ok(None);
            }
            return self.signed_in(sso).await.map(|_| None);
        }
        let seen = self.attempts.load(Ordering::Acquire);
        let mut flight = self.flight.lock().await;
        if self.attempts.load(Ordering::Acquire) != seen {
            if let Some(f) = &*flight {
                return Err(f.clone());
            }
            if let Ok(Some(_)) = self.vault.current(self.clock.as_ref()) {
                return Ok(None);
            }
        }
        self.attempt(&mut flight, cfg, env, mfa_code)
            .await
            .map(Some)
    }

    /// An `sso` identity's unlock: the sign-in in progress when there is
    /// one, else the client is asked to start one ([`needs_sign_in`]).
    async fn signed_in(&self, sso: &crate::config::SsoConfig) -> Result<Arc<Unlocked>, Failure> {
        if let Some(serial) = self.sso.pending() {
            self.sso.wait(serial).await?;
            if let Ok(Some(u)) = self.vault.current(self.clock.as_ref()) {
                return Ok(u);
            }
        }
        Err(crate::failure::needs_sign_in(
            &self.name,
            &sso.start_url,
            "",
        ))
    }

    async fn attempt(
        &self,
        flight: &mut Option<Failure>,
        cfg: &Config,
        env: &ClientEnv,
        mfa_code: Option<&str>,
    ) -> Result<Unlock, Failure> {
        let r = self.read(cfg, env, mfa_code).await;
        *flight = r.as_ref().err().cloned();
        self.attempts.fetch_add(1, Ordering::Release);
        r.map(|u| Unlock {
            unlocked: u,
            fresh: true,
        })
    }

    async fn read(
        &self,
        cfg: &Config,
        env: &ClientEnv,
        typed: Option<&str>,
    ) -> Result<Arc<Unlocked>, Failure> {
        let epoch = self.vault.epoch();
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
        let (base, mfa_expires) = match code {
            None => (user, None),
            Some(mfa) => {
                self.get_session_token.fetch_add(1, Ordering::Relaxed);
                let sent = self.clock.now();
                let session = self
                    .sts
                    .get_session_token(
                        &cfg.region,
                        &user,
                        &mfa.serial,
                        &mfa.code,
                        cfg.daemon.mfa_session,
                    )
                    .await;
                self.never_twice.sent(sent);
                let s = session.inspect_err(|e| tracing::warn!("unlock failed: {e}"))?;
                let exp = s.expiration;
                (s, Some(exp))
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
