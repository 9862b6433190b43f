//! Lock, unlock and the limits: `pctl lock`, `pctl unlock`, the idle,
//! lifetime and MFA-session limits, identities the config no longer
//! defines, and what a fresh unlock does once installed.

use std::sync::Arc;

use pctl_protocol::{ClientEnv, ErrorKind};

use super::{record, Broker, Failure, Issued, LockReason, Peer};
use crate::config::Config;
use crate::identity::Identity;
use crate::unlock::OnUnlock;
use crate::vault::Unlocked;

impl Broker {
    /// After a load: an identity the config no longer defines is locked
    /// (its secrets and sessions dropped, an unlock under way refused),
    /// logged and audited; only a config that defines it again can unlock it.
    pub(super) fn lock_removed(&self, cfg: &Config) {
        for id in self.identities.all() {
            if cfg.identities.contains_key(&id.name) {
                continue;
            }
            let snap = id.vault.snapshot(self.clock.as_ref());
            if snap.reason == LockReason::Removed && snap.unlocked.is_none() {
                continue;
            }
            let held = snap.unlocked.is_some();
            drop(snap);
            self.lock_one(&id, LockReason::Removed);
            if held {
                tracing::warn!(
                    "identity {} is no longer in the config {}: locked, its secrets dropped",
                    id.name,
                    cfg.path.display()
                );
                let mut rec = self.record(&Peer::default(), "lock", Issued::default());
                rec.role = Some(format!("identity {}: removed from the config", id.name));
                self.audit.record(rec);
            }
        }
    }

    /// Drops every identity's secrets. `pctl lock` passes [`LockReason::Manual`].
    pub fn lock(&self, reason: LockReason) {
        let cfg = self.config().ok();
        for id in self.known_identities(cfg.as_deref()) {
            self.lock_one(&id, reason);
        }
    }

    /// Drops one identity's secrets (`None`: every identity's).
    pub fn lock_identity(&self, name: Option<&str>, reason: LockReason) -> Result<(), Failure> {
        match name {
            None => self.lock(reason),
            Some(n) => {
                // Configured, or held from an earlier config.
                let cfg = self.config()?;
                let id = match (cfg.identity(n), self.identities.find(n)) {
                    (Ok(_), _) => self.identities.get(n),
                    (Err(_), Some(id)) => id,
                    (Err(e), None) => return Err(e.into()),
                };
                self.lock_one(&id, reason);
            }
        }
        Ok(())
    }

    pub(super) fn lock_one(&self, id: &Identity, reason: LockReason) {
        id.unlocker.sso.cancel();
        let dropped = id.vault.lock(reason);
        id.issuer.clear();
        drop(dropped);
        self.sdk.reset();
        crate::secret::scrub_stack();
        tracing::info!(
            "identity {} locked ({}): secrets and sessions dropped",
            id.name,
            reason.as_str()
        );
    }

    /// The identities `cfg` defines (and any still holding state from an
    /// earlier config), created on first use.
    pub(super) fn known_identities(&self, cfg: Option<&Config>) -> Vec<Arc<Identity>> {
        if let Some(cfg) = cfg {
            for name in cfg.identities.keys() {
                self.identities.get(name);
            }
        }
        self.identities.all()
    }

    /// Locks when the idle, lifetime or MFA-session limit has passed (boot
    /// clock: suspended time counts). Called by a timer and at the start of
    /// every request.
    pub fn enforce_limits(&self) {
        for id in self.identities.all() {
            if let Some(r) = id.vault.expired(self.clock.as_ref()) {
                self.lock_one(&id, r);
            }
        }
    }

    /// Reads 1Password now (explicit `pctl unlock`), replacing any unlock:
    /// of `identity`, or of every configured identity (each is tried; the
    /// failures are reported together, one line each).
    pub async fn unlock(
        &self,
        identity: Option<&str>,
        env: &ClientEnv,
        mfa_code: Option<&str>,
        peer: &Peer,
    ) -> Result<(), Failure> {
        let cfg = self.config()?;
        let names: Vec<String> = match identity {
            Some(n) => vec![cfg.identity(n)?.name.clone()],
            None => cfg.identities.keys().cloned().collect(),
        };
        let mut failed: Vec<Failure> = Vec::new();
        for name in names {
            let id = self.identities.get(&name);
            let on_fresh = || self.on_unlock(&id, peer);
            match id.unlocker.now(&cfg, env, mfa_code, on_fresh).await {
                Ok(()) => {}
                // the client signs in, then sends the unlock again
                Err(f) if f.0 == ErrorKind::NeedsSignIn => return Err(f),
                Err(f) if cfg.identities.len() > 1 && f.0 != ErrorKind::NeedsMfaCode => {
                    failed.push(Failure(f.0, format!("identity {name}: {}", f.1)))
                }
                Err(f) => failed.push(f),
            }
        }
        match failed.len() {
            0 => Ok(()),
            1 => Err(failed.remove(0)),
            _ => Err(Failure(
                failed[0].0,
                failed
                    .iter()
                    .map(|f| f.1.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }

    /// What a fresh unlock does once installed, in the unlock's own task
    /// (so also when the request that started it went away): what the
    /// previous unlock built is keyed by its identity and will never be
    /// asked for again (drop it), and the unlock is audited, to the peer
    /// that started it, with the `op` that ran.
    pub(super) fn on_unlock(&self, id: &Arc<Identity>, peer: &Peer) -> OnUnlock {
        let (issuer, audit, clock) = (id.issuer.clone(), self.audit.clone(), self.clock.clone());
        let peer = peer.clone();
        Box::new(move |u: &Arc<Unlocked>| {
            issuer.clear();
            let rec = record(
                clock.as_ref(),
                &peer,
                "unlock",
                Issued {
                    expiration: Some(u.at + u.lifetime()),
                    ..Issued::default()
                },
            );
            audit.record_with(rec, u.origin.as_deref());
        })
    }
}
