//! The vault: locked or unlocked, the epoch that every lock bumps, the idle
//! and lifetime limits (on the boot clock, so suspend counts), and the
//! unlocked secrets themselves.
//!
//! Everything secret of one unlock hangs off one [`Unlocked`] behind an
//! `Arc`; locking drops the vault's reference and bumps the epoch, so a
//! request still holding one sees [`Vault::is_current`] turn false and
//! issues nothing.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::aws::Session;
use crate::clock::Clock;
use crate::failure::{locked, Failure};

/// The vault locks this long before the MFA session ends, so no role is
/// assumed with a session about to expire; the next request unlocks anew.
pub const MFA_MARGIN: Duration = Duration::from_secs(120);

/// Why the broker holds no secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    /// Not unlocked since start: unlocks on demand.
    Never,
    /// `pctl lock`: stays locked until `pctl unlock`.
    Manual,
    /// Idle timer: unlocks on demand.
    Idle,
    /// Maximum unlock lifetime: unlocks on demand.
    Lifetime,
    /// The MFA session (GetSessionToken) ended: unlocks on demand.
    MfaSession,
    /// `pctl rotate` replaced the key: unlocks on demand with the new one.
    Rotated,
    /// The config no longer defines the identity: its secrets are dropped
    /// at the load that noticed; it unlocks again only if defined again.
    Removed,
}

impl LockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LockReason::Never => "never unlocked",
            LockReason::Manual => "pctl lock",
            LockReason::Idle => "idle",
            LockReason::Lifetime => "lifetime",
            LockReason::MfaSession => "MFA session ended",
            LockReason::Rotated => "key rotated",
            LockReason::Removed => "removed from the config",
        }
    }
}

/// Secrets of one unlock.
pub struct Unlocked {
    /// The identity (a key of `[identities]`) these secrets are of.
    pub name: String,
    /// The vault epoch this unlock belongs to.
    pub epoch: u64,
    /// Which unlock of this daemon this is (set by [`Vault::install`]).
    pub serial: u64,
    pub at: SystemTime,
    /// Boot-clock time of the unlock.
    pub at_boot: Duration,
    pub idle_lock: Duration,
    pub max_unlock: Duration,
    pub account_id: String,
    /// The IAM user's access key ID (the one in 1Password).
    pub user_key_id: String,
    /// The role session name of roles without `session_name`: the IAM
    /// user's name (GetCallerIdentity at unlock), so CloudTrail shows who
    /// assumed a role. None: not learnt (`pctl` is used).
    pub session_name: Option<String>,
    /// The IAM user's ARN (GetCallerIdentity at unlock), when learnt.
    pub caller_arn: Option<String>,
    /// The identity AssumeRole is called with: the MFA session, or the user keys.
    pub base: Session,
    /// When the MFA session ends (what STS granted, not what was asked).
    pub mfa_expires: Option<SystemTime>,
    /// What the source ran (`op` path).
    pub origin: Option<String>,
    /// An `sso` identity's sign-in (registration and tokens); its role
    /// sessions come from GetRoleCredentials, not from `base`.
    pub sso: Option<Arc<crate::source::sso::signed_in::SignedIn>>,
}

impl Unlocked {
    /// A name for the base identity, for cache keys: the identity's name
    /// and this unlock, unique per unlock.
    pub fn identity(&self) -> String {
        format!("{}:{}#{}", self.name, self.base.access_key_id, self.serial)
    }

    /// How long after unlocking the vault must lock: `max_unlock`, or
    /// earlier when the MFA session ends first.
    pub fn lifetime(&self) -> Duration {
        match self.mfa_expires {
            Some(end) => {
                let mfa = end
                    .duration_since(self.at)
                    .unwrap_or_default()
                    .saturating_sub(MFA_MARGIN);
                self.max_unlock.min(mfa)
            }
            None => self.max_unlock,
        }
    }

    fn limit_reason(&self) -> LockReason {
        if self.lifetime() < self.max_unlock {
            LockReason::MfaSession
        } else {
            LockReason::Lifetime
        }
    }
}

struct State {
    unlocked: Option<Arc<Unlocked>>,
    reason: LockReason,
    /// Boot-clock time of the last request (its start, or its end once
    /// no request holds the vault in use).
    last_use: Duration,
    /// Requests running now ([`InUse`]): the idle limit waits for them.
    in_use: u32,
    epoch: u64,
    /// Unlocks installed so far.
    unlocks: u64,
    /// What the last unlock ran, kept across locks for `status`.
    origin: Option<String>,
    /// Whether the last unlock made an MFA session (the item has an MFA
    /// serial), kept across locks for `status`; `None` before the first.
    mfa: Option<bool>,
    /// Why the last unlock attempt failed; cleared by the next unlock.
    last_failure: Option<String>,
}

/// A consistent view for `status`.
pub struct Snapshot {
    pub unlocked: Option<Arc<Unlocked>>,
    pub reason: LockReason,
    /// Time left before the idle or lifetime limit locks.
    pub left: Option<Duration>,
    pub origin: Option<String>,
    /// Whether the last unlock made an MFA session; `None` before the first.
    pub mfa: Option<bool>,
    /// Why the last unlock attempt failed, if it did (and none succeeded since).
    pub last_failure: Option<String>,
}

/// A request holding its identity's vault in use ([`Vault::in_use`]).
pub struct InUse {
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
}

impl Drop for InUse {
    fn drop(&mut self) {
        let mut st = self.vault.state();
        st.in_use = st.in_use.saturating_sub(1);
        st.last_use = self.clock.boot();
    }
}

/// The locked/unlocked state machine.
pub struct Vault {
    state: Mutex<State>,
}

impl Vault {
    pub fn new(clock: &dyn Clock) -> Self {
        Vault {
            state: Mutex::new(State {
                unlocked: None,
                reason: LockReason::Never,
                last_use: clock.boot(),
                in_use: 0,
                epoch: 0,
                unlocks: 0,
                origin: None,
                mfa: None,
                last_failure: None,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current epoch (bumped by every lock).
    pub fn epoch(&self) -> u64 {
        self.state().epoch
    }

    /// Whether nothing locked the vault since `epoch`.
    pub fn is_current(&self, epoch: u64) -> bool {
        self.state().epoch == epoch
    }

    /// The unlocked secrets for a request (counts as use), `None` when an
    /// unlock is needed, or `Locked` after `pctl lock`.
    pub fn current(&self, clock: &dyn Clock) -> Result<Option<Arc<Unlocked>>, Failure> {
        let mut st = self.state();
        match &st.unlocked {
            Some(u) => {
                let u = u.clone();
                st.last_use = clock.boot();
                Ok(Some(u))
            }
            None if st.reason == LockReason::Manual => Err(locked(st.last_failure.as_deref())),
            None => Ok(None),
        }
    }

    /// Marks a request as running until the returned guard drops: the
    /// idle limit does not lock under it (a slow STS call or a break-glass
    /// confirmation is use, not idleness), and its idle time counts from
    /// the request's end. The lifetime and MFA-session limits still apply.
    pub fn in_use(self: &Arc<Self>, clock: Arc<dyn Clock>) -> InUse {
        let mut st = self.state();
        st.in_use += 1;
        st.last_use = clock.boot();
        InUse {
            vault: self.clone(),
            clock,
        }
    }

    /// Which limit has passed at the clock's time, if any.
    pub fn expired(&self, clock: &dyn Clock) -> Option<LockReason> {
        let st = self.state();
        let u = st.unlocked.as_ref()?;
        let now = clock.boot();
        if now.saturating_sub(u.at_boot) >= u.lifetime() {
            Some(u.limit_reason())
        } else if st.in_use == 0 && now.saturating_sub(st.last_use) >= u.idle_lock {
            Some(LockReason::Idle)
        } else {
            None
        }
    }

    /// Locks: bumps the epoch and hands back the secrets for the caller to drop.
    pub fn lock(&self, reason: LockReason) -> Option<Arc<Unlocked>> {
        let mut st = self.state();
        st.reason = reason;
        st.epoch += 1;
        st.unlocked.take()
    }

    /// Installs a fresh unlock made in `u.epoch`; refused when a lock
    /// happened meanwhile.
    pub fn install(&self, mut u: Unlocked, clock: &dyn Clock) -> Option<Arc<Unlocked>> {
        let mut st = self.state();
        if st.epoch != u.epoch {
            return None;
        }
        st.unlocks += 1;
        u.serial = st.unlocks;
        st.origin = u.origin.clone();
        st.mfa = Some(u.mfa_expires.is_some());
        st.last_failure = None;
        let u = Arc::new(u);
        st.unlocked = Some(u.clone());
        st.last_use = clock.boot();
        Some(u)
    }

    /// Records what an unlock attempt ran, even when it failed.
    pub fn set_origin(&self, origin: Option<String>) {
        if origin.is_some() {
            self.state().origin = origin;
        }
    }

    /// Records why an unlock attempt failed (one line, never a secret).
    pub fn set_failure(&self, why: &str) {
        self.state().last_failure = Some(why.to_string());
    }

    pub fn snapshot(&self, clock: &dyn Clock) -> Snapshot {
        let st = self.state();
        let left = st.unlocked.as_ref().map(|u| {
            let now = clock.boot();
            let idle = match st.in_use {
                0 => u.idle_lock.saturating_sub(now.saturating_sub(st.last_use)),
                _ => u.idle_lock,
            };
            let life = u.lifetime().saturating_sub(now.saturating_sub(u.at_boot));
            idle.min(life)
        });
        Snapshot {
            unlocked: st.unlocked.clone(),
            reason: st.reason,
            left,
            origin: st.origin.clone(),
            mfa: st.mfa,
            last_failure: st.last_failure.clone(),
        }
    }
}
