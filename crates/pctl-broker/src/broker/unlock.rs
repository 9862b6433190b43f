//! `pctl lock` and `pctl unlock` (the limits, the lock of one identity and
//! what a fresh unlock does live in the shared path, [`super`]).

use pctl_protocol::{ClientEnv, ErrorKind};

use super::{Broker, Failure, LockReason, Peer};

impl Broker {
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
}
