//! What the daemon shows: `pctl status` and the configured profiles.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use pctl_protocol::{Profiles, Status};

use super::{Broker, Failure};
use crate::config::RoleConfig;
use crate::identity::Identity;
use crate::issue::RoleSession;
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
                    sign_in_pending: id.unlocker.sso.pending().is_some(),
                }
            })
            .collect();
        // Each identity's account (from its unlock), for roles configured
        // by name: their ARN is known only once it is unlocked.
        let accounts: BTreeMap<&str, String> = ids
            .iter()
            .filter_map(|i| {
                let u = i.vault.snapshot(self.clock.as_ref()).unlocked?;
                Some((i.name.as_str(), u.account_id.clone()))
            })
            .collect();
        let arn_of = |r: &RoleConfig| match &r.arn {
            Some(a) => Some(a.clone()),
            None => accounts.get(r.identity.as_str()).map(|a| r.arn(a)),
        };
        // A cached session is shown under the configured role that built
        // it; one built by a request that names no configured role (an
        // `eks token --role-arn` for a cluster not in the config, a role
        // since removed) under each configured role it serves (same
        // identity, ARN, session name and duration): one line per role,
        // not the role without its session plus a line for the ARN.
        let roles = ids
            .iter()
            .flat_map(|i| {
                let names = |s: &RoleSession| -> Vec<String> {
                    let configured = cfg.iter().any(|c| {
                        c.roles
                            .get(&s.role_key)
                            .is_some_and(|r| r.identity == i.name)
                    });
                    if configured {
                        return Vec::new(); // its builder's key
                    }
                    cfg.iter()
                        .flat_map(|c| c.roles.values())
                        .filter(|r| {
                            r.identity == i.name
                                && r.session_name.as_ref().is_none_or(|n| *n == s.session_name)
                                && r.duration == s.duration
                                && arn_of(r).as_deref() == Some(s.arn.as_str())
                        })
                        .map(|r| r.key.clone())
                        .collect()
                };
                i.issuer.role_statuses(&names)
            })
            .collect();
        let role_origins = cfg
            .iter()
            .flat_map(|c| c.roles.values())
            .map(|r| pctl_protocol::RoleOrigin {
                role: r.key.clone(),
                identity: r.identity.clone(),
                file: r.file.clone(),
                arn: arn_of(r),
            })
            .collect();
        status::build(
            status::Parts {
                identities,
                config: self.config_path.display().to_string(),
                roles,
                tokens: ids.iter().flat_map(|i| i.issuer.token_statuses()).collect(),
                stats: &self.stats,
                op_calls: self.identities.source_runs(),
                get_session_token: sum(&|i| i.unlocker.counts().1),
                assume_role: sum(&|i| i.issuer.stats.assume_role.load(Ordering::Relaxed)),
                eks_tokens_minted: sum(&|i| {
                    i.issuer.stats.eks_tokens_minted.load(Ordering::Relaxed)
                }),
                recent: self.audit.recent(),
                role_origins,
            },
            self.clock.as_ref(),
        )
    }
}
