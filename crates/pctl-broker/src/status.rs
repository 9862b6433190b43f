//! What `pctl status` shows, put together from the vault, the issuer and
//! the counters. Never a secret.

use std::sync::atomic::{AtomicU64, Ordering};

use pctl_protocol::{AuditRecord, Counters, RoleStatus, Status, TokenStatus};

use crate::clock::{rfc3339, Clock};
use crate::vault::Snapshot;

/// Counts the broker keeps itself (unlocking and issuance count their own).
#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub describe_cluster: AtomicU64,
    pub refused_peers: AtomicU64,
}

/// Everything `status` reports, gathered by the broker.
pub struct Parts<'a> {
    pub vault: Snapshot,
    pub config: String,
    pub roles: Vec<RoleStatus>,
    pub tokens: Vec<TokenStatus>,
    pub stats: &'a Stats,
    pub op_calls: u64,
    pub get_session_token: u64,
    pub assume_role: u64,
    pub eks_tokens_minted: u64,
    pub recent: Vec<AuditRecord>,
}

/// Builds the reply.
pub fn build(p: Parts<'_>, clock: &dyn Clock) -> Status {
    let u = &p.vault.unlocked;
    let locked = u.is_none();
    Status {
        version: pctl_protocol::VERSION.into(),
        pid: std::process::id(),
        locked,
        lock_reason: locked.then(|| p.vault.reason.as_str().to_string()),
        unlocked_at: u.as_ref().map(|u| rfc3339(u.at)),
        locks_at: p.vault.left.map(|l| rfc3339(clock.now() + l)),
        config: p.config,
        op_path: p.vault.origin.clone(),
        mfa_session_expires: u.as_ref().and_then(|u| u.mfa_expires).map(rfc3339),
        mlock: crate::platform::mlock_failure().map(str::to_string),
        roles: if locked { Vec::new() } else { p.roles },
        tokens: if locked { Vec::new() } else { p.tokens },
        counters: Counters {
            requests: p.stats.requests.load(Ordering::Relaxed),
            op_calls: p.op_calls,
            get_session_token: p.get_session_token,
            assume_role: p.assume_role,
            eks_tokens_minted: p.eks_tokens_minted,
            describe_cluster: p.stats.describe_cluster.load(Ordering::Relaxed),
            refused_peers: p.stats.refused_peers.load(Ordering::Relaxed),
        },
        recent: p.recent,
    }
}
