//! What `pctl status` shows, put together from the vault, the issuer and
//! the counters. Never a secret.

use std::sync::atomic::{AtomicU64, Ordering};

use pctl_protocol::{
    AuditRecord, Counters, IdentityStatus, RoleOrigin, RoleStatus, Status, TokenStatus,
};

use crate::clock::{rfc3339, Clock};
use crate::config::{IdentityConfig, DEFAULT_IDENTITY};
use crate::vault::Snapshot;

/// Counts the broker keeps itself (unlocking and issuance count their own).
#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub describe_cluster: AtomicU64,
    pub refused_peers: AtomicU64,
}

/// One identity's part of `status`.
pub struct IdentityPart {
    pub name: String,
    /// `None` when the identity is no longer configured.
    pub config: Option<IdentityConfig>,
    pub vault: Snapshot,
    pub op_reads: u64,
    pub get_session_token: u64,
    /// An `sso` identity's device authorization waits for the user.
    pub sign_in_pending: bool,
}

/// Everything `status` reports, gathered by the broker.
pub struct Parts<'a> {
    pub identities: Vec<IdentityPart>,
    pub config: String,
    pub roles: Vec<RoleStatus>,
    pub tokens: Vec<TokenStatus>,
    pub stats: &'a Stats,
    pub op_calls: u64,
    pub get_session_token: u64,
    pub assume_role: u64,
    pub eks_tokens_minted: u64,
    pub recent: Vec<AuditRecord>,
    pub role_origins: Vec<RoleOrigin>,
}

fn identity(p: &IdentityPart, clock: &dyn Clock) -> IdentityStatus {
    let u = &p.vault.unlocked;
    let locked = u.is_none();
    let c = p.config.as_ref();
    IdentityStatus {
        name: p.name.clone(),
        item: c.map(|c| c.onepassword.item.clone()).unwrap_or_default(),
        vault: c.map(|c| c.onepassword.vault.clone()).unwrap_or_default(),
        account: c.and_then(|c| c.onepassword.account.clone()),
        // "none" once an unlock showed the item has no MFA serial (what
        // `pctl init` said), else where the code comes from
        mfa: match p.vault.mfa {
            Some(false) => IdentityStatus::NO_MFA,
            _ => c.map(|c| c.mfa.as_str()).unwrap_or("item"),
        }
        .to_string(),
        locked,
        lock_reason: locked.then(|| p.vault.reason.as_str().to_string()),
        unlocked_at: u.as_ref().map(|u| rfc3339(u.at)),
        locks_at: p.vault.left.map(|l| rfc3339(clock.now() + l)),
        // the `op` that ran; an IAM Identity Center identity ran none (its start URL is
        // in `sso`)
        op_path: p
            .vault
            .origin
            .clone()
            .filter(|_| c.is_none_or(|c| c.sso.is_none())),
        mfa_session_expires: u.as_ref().and_then(|u| u.mfa_expires).map(rfc3339),
        op_reads: p.op_reads,
        get_session_token: p.get_session_token,
        last_unlock_failure: p.vault.last_failure.clone(),
        waiting: crate::prompt::waiting_for(&p.name),
        sso: c.and_then(|c| c.sso.as_ref()).map(|sso| {
            let signed = u.as_ref().and_then(|u| u.sso.as_ref());
            let state = signed.map(|s| s.token_state());
            pctl_protocol::SsoIdentityStatus {
                start_url: sso.start_url.clone(),
                region: sso.region.clone(),
                signed_in: signed.is_some(),
                token_expires: state.map(|(at, _)| rfc3339(at)),
                refresh_available: state.is_some_and(|(_, r)| r),
                sign_in_pending: p.sign_in_pending,
            }
        }),
    }
}

/// Builds the reply. The top-level lock fields describe the first unlocked
/// identity (the default one first), or the default identity when all are
/// locked; `identities` has each.
pub fn build(p: Parts<'_>, clock: &dyn Clock) -> Status {
    let identities: Vec<IdentityStatus> = p.identities.iter().map(|i| identity(i, clock)).collect();
    let first = |locked: bool| {
        identities
            .iter()
            .filter(|i| i.locked == locked)
            .min_by_key(|i| i.name != DEFAULT_IDENTITY)
    };
    let main = first(false).or_else(|| first(true)).cloned();
    let locked = main.as_ref().is_none_or(|m| m.locked);
    Status {
        version: pctl_protocol::VERSION.into(),
        pid: std::process::id(),
        locked,
        lock_reason: if locked {
            Some(
                main.as_ref()
                    .and_then(|m| m.lock_reason.clone())
                    .unwrap_or_else(|| "never unlocked".into()),
            )
        } else {
            None
        },
        unlocked_at: main.as_ref().and_then(|m| m.unlocked_at.clone()),
        locks_at: main.as_ref().and_then(|m| m.locks_at.clone()),
        config: p.config,
        op_path: main
            .as_ref()
            .and_then(|m| m.op_path.clone())
            .or_else(|| identities.iter().find_map(|i| i.op_path.clone())),
        mfa_session_expires: main.as_ref().and_then(|m| m.mfa_session_expires.clone()),
        mlock: crate::platform::mlock_failure().map(str::to_string),
        roles: p.roles,
        tokens: p.tokens,
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
        identities,
        role_origins: p.role_origins,
        setup_differs: None,
    }
}
