//! What the daemon shows: `pctl status` and the configured profiles.

use std::sync::atomic::Ordering;

use pctl_protocol::{Profiles, Status};

use super::{Broker, Failure};
use crate::identity::Identity;
use crate::status;

impl Broker {
    /// Configured roles and clusters.
    pub fn profiles(&self) -> Result<Profiles, Failure> {
        let cfg = self.config()?;
        Ok(Profiles {
            region: cfg.region.clone(),
            roles: cfg.roles.keys().cloned().collect(),
            clusters: cfg.clusters.keys().cloned().collect(),
            cluster_roles: cfg
                .clusters
                .values()
                .map(|c| (c.key.clone(), c.role.clone()))
                .collect(),
            identities: cfg.identities.keys().cloned().collect(),
        })
    }

    /// What `pctl status` shows. Never a secret.
    pub fn status(&self) -> Status {
        self.enforce_limits();
        // As `doctor` does: `mlock` then says whether secret pages can be
        // locked even before the first secret arrives.
        crate::platform::probe_mlock();
        let cfg = self.config().ok();
        let ids = self.known_identities(cfg.as_deref());
        let sum = |f: &dyn Fn(&Identity) -> u64| ids.iter().map(|i| f(i)).sum::<u64>();
        let identities = ids
            .iter()
            .map(|id| {
                let (op_reads, get_session_token) = id.unlocker.counts();
                status::IdentityPart {
                    name: id.name.clone(),
                    config: cfg
                        .as_ref()
                        .and_then(|c| c.identities.get(&id.name).cloned()),
                    vault: id.vault.snapshot(self.clock.as_ref()),
                    op_reads,
                    get_session_token,
                }
            })
            .collect();
        status::build(
            status::Parts {
                identities,
                config: self.config_path.display().to_string(),
                roles: ids.iter().flat_map(|i| i.issuer.role_statuses()).collect(),
                tokens: ids.iter().flat_map(|i| i.issuer.token_statuses()).collect(),
                stats: &self.stats,
                op_calls: self.identities.source_runs(),
                get_session_token: sum(&|i| i.unlocker.counts().1),
                assume_role: sum(&|i| i.issuer.stats.assume_role.load(Ordering::Relaxed)),
                eks_tokens_minted: sum(&|i| {
                    i.issuer.stats.eks_tokens_minted.load(Ordering::Relaxed)
                }),
                recent: self.audit.recent(),
                role_origins: cfg
                    .map(|c| {
                        c.roles
                            .values()
                            .map(|r| pctl_protocol::RoleOrigin {
                                role: r.key.clone(),
                                identity: r.identity.clone(),
                                file: r.file.clone(),
                                arn: match &r.arn {
                                    Some(a) => Some(a.clone()),
                                    None => ids
                                        .iter()
                                        .find(|i| i.name == r.identity)
                                        .and_then(|i| {
                                            i.vault.snapshot(self.clock.as_ref()).unlocked
                                        })
                                        .map(|u| r.arn(&u.account_id)),
                                },
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            self.clock.as_ref(),
        )
    }
}
