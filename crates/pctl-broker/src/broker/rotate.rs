//! `pctl rotate`: a new access key for an identity, then a fresh unlock.

use pctl_protocol::{ClientEnv, ErrorKind};

use super::{Broker, Failure, Issued, LockReason, Peer};

impl Broker {
    /// `pctl rotate`: replaces the identity's access key ([`crate::rotate`]),
    /// then locks it and unlocks again with the new key (waiting for a
    /// fresh one-time password; a `prompt` identity unlocks at its next use).
    pub async fn rotate(
        &self,
        identity: Option<&str>,
        env: &ClientEnv,
        peer: &Peer,
    ) -> Result<pctl_protocol::Rotation, Failure> {
        let cfg = self.config()?;
        let name = match identity {
            Some(n) => cfg.identity(n)?.name.clone(),
            None if cfg.identities.len() == 1 => {
                cfg.identities.keys().next().cloned().unwrap_or_default()
            }
            None => {
                return Err(Failure(
                    ErrorKind::Config,
                    format!(
                        "several identities are configured ({}): pass --identity",
                        cfg.identities
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
        };
        let id_cfg = cfg.identity(&name)?;
        self.enforce_limits();
        let id = self.identities.get(&name);
        let u = match id_cfg.mfa {
            crate::config::MfaMode::Prompt => id
                .vault
                .current(self.clock.as_ref())?
                .ok_or_else(|| crate::failure::needs_mfa_code(&name, ""))?,
            _ => {
                let on_fresh = || self.on_unlock(&id, peer);
                id.unlocker.on_demand(&cfg, Some(env), on_fresh).await?
            }
        };
        let audit = |what: &str, keys: &str| {
            let mut rec = self.record(peer, what, Issued::default());
            rec.role = Some(format!("identity {name}: {keys}"));
            self.audit.record(rec);
        };
        let rotation = crate::rotate::Rotate {
            sdk: &self.sdk,
            cfg: &cfg,
            identity: id_cfg,
            env,
            base: &u.base,
            old: &u.user_key_id,
            audit: &audit,
        }
        .run()
        .await?;
        drop(u);
        self.lock_one(&id, LockReason::Rotated);
        if id_cfg.mfa != crate::config::MfaMode::Prompt {
            let on_fresh = || self.on_unlock(&id, peer);
            id.unlocker.now(&cfg, env, None, on_fresh).await?;
        }
        Ok(rotation)
    }
}
