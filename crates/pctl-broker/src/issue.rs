//! Issuance: role sessions and EKS tokens, cached by what built them,
//! built once for all concurrent askers ([`crate::flight`]: failures shared
//! too, and the STS call runs to its end in its own task even when the
//! request that started it goes away), and refreshed ahead in the
//! background while they are in use.
//!
//! A session is keyed by (role ARN, session name, duration, base identity)
//! and a token by (cluster name, region, role ARN, base identity): after a
//! config edit the next request simply misses the cache, and nothing built
//! for the old config is handed out.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use pctl_protocol::{ErrorKind, RoleStatus, TokenStatus};

use crate::aws::sts::Sts;
use crate::aws::{eks, Session};
use crate::clock::{rfc3339, Clock};
use crate::failure::{locked_meanwhile, Failure};
use crate::flight::{Flight, Outcome, Via};
use crate::secret::LockedString;
use crate::vault::{Unlocked, Vault};

/// An EKS token is minted only from a role session with at least this much
/// left: STS accepts the presigned URL for 15 minutes after signing.
pub const TOKEN_SESSION_MIN: Duration = Duration::from_secs(16 * 60);

/// A cached token is handed out until this long before its expiry.
pub const TOKEN_REUSE_MARGIN: Duration = Duration::from_secs(60);

/// Background refreshes happen this long before a request would refresh.
const REFRESH_LEAD: Duration = Duration::from_secs(120);

/// Longest single sleep of a refresh task, so it notices a lock or a
/// suspend (which stops tokio's timers but not the wall clock) soon.
const REFRESH_TICK: Duration = Duration::from_secs(30);

/// A role as the config describes it, resolved against the account.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    /// The config key (`[roles.KEY]`), for messages and `status`.
    pub key: String,
    pub arn: String,
    pub session_name: String,
    pub duration: Duration,
    pub region: String,
    /// An `sso` identity's role: (account ID, role name) for GetRoleCredentials.
    pub sso: Option<(String, String)>,
    /// A chained role: assumed with this role's session.
    pub source: Option<Box<RoleSpec>>,
    /// ExternalId, SourceIdentity, session tags.
    pub extras: crate::aws::sts::AssumeExtras,
}

impl RoleSpec {
    /// Refresh margin for credentials handed to clients: a quarter of the
    /// session, at most 15 minutes, so SDKs never get nearly expired keys.
    pub fn credentials_margin(&self) -> Duration {
        (self.duration / 4).min(Duration::from_secs(15 * 60))
    }
}

/// An EKS cluster as the config describes it.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub key: String,
    pub name: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    role_arn: String,
    session_name: String,
    duration: Duration,
    identity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    cluster: String,
    region: String,
    role_arn: String,
    identity: String,
}

/// A cached role session.
pub struct RoleSession {
    /// The key of the role whose request built it (other roles with the
    /// same ARN, session name and duration are served from it too).
    pub role_key: String,
    pub arn: String,
    pub session_name: String,
    pub duration: Duration,
    pub session: Session,
}

/// A cached EKS token.
pub struct CachedToken {
    pub cluster_key: String,
    pub role_key: String,
    pub token: LockedString,
    pub expiration: SystemTime,
}

/// One cached value and the single flight that builds it.
struct Entry<V> {
    value: Mutex<Option<Arc<V>>>,
    /// Builds run in their own task and store what they built themselves,
    /// so a request that goes away does not cancel or waste an STS call.
    /// `None` answers a background refresh that failed: not shown to the
    /// requests that joined it, they build for themselves.
    flight: Flight<Option<Arc<V>>>,
    /// Asked for since the last background refresh.
    used: AtomicBool,
    /// A refresh task runs for this entry.
    refreshing: AtomicBool,
}

impl<V> Default for Entry<V> {
    fn default() -> Self {
        Entry {
            value: Mutex::new(None),
            flight: Flight::default(),
            used: AtomicBool::new(false),
            refreshing: AtomicBool::new(false),
        }
    }
}

impl<V: Send + Sync + 'static> Entry<V> {
    fn settled(&self) -> Option<Arc<V>> {
        self.value.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `build`, storing what it built in this entry.
    fn build_and_store<F>(
        self: &Arc<Self>,
        build: F,
    ) -> impl std::future::Future<Output = Outcome<Option<Arc<V>>>> + Send + 'static
    where
        F: std::future::Future<Output = Result<V, Failure>> + Send + 'static,
    {
        let entry = self.clone();
        async move {
            let v = Arc::new(build.await?);
            *entry.value.lock().unwrap_or_else(|p| p.into_inner()) = Some(v.clone());
            Ok(Some(v))
        }
    }

    /// The value when `fresh`, else built once for every concurrent caller.
    /// Returns it and how it was obtained.
    async fn get<B, F>(
        self: &Arc<Self>,
        fresh: impl Fn(&V) -> bool,
        build: B,
    ) -> Result<(Arc<V>, Via), Failure>
    where
        B: Fn() -> F,
        F: std::future::Future<Output = Result<V, Failure>> + Send + 'static,
    {
        self.used.store(true, Ordering::Relaxed);
        // A second round only after joining a background refresh that failed.
        for _ in 0..2 {
            let ready = || self.settled().filter(|v| fresh(v)).map(|v| Ok(Some(v)));
            let (r, via) = self
                .flight
                .run(ready, || self.build_and_store(build()))
                .await;
            if let Some(v) = r? {
                return Ok((v, via));
            }
        }
        Err(Failure(
            ErrorKind::Aws,
            "STS failed to renew this session in the background: retry".into(),
        ))
    }

    /// Rebuilds in the background through the same flight, so a refresh
    /// and a request never both call STS. A failed refresh keeps the old
    /// value (still valid) and is not shown to requests.
    async fn refresh<F>(self: &Arc<Self>, build: F) -> Result<(), Failure>
    where
        F: std::future::Future<Output = Result<V, Failure>> + Send + 'static,
    {
        let entry = self.clone();
        let attempt = move || async move {
            match entry.build_and_store(build).await {
                Ok(v) => Ok(v),
                Err(f) => {
                    tracing::warn!("background refresh failed (requests will retry): {}", f.1);
                    Ok(None)
                }
            }
        };
        match self.flight.run(|| None, attempt).await.0? {
            Some(_) => Ok(()),
            None => Err(Failure(ErrorKind::Aws, "background refresh failed".into())),
        }
    }
}

struct Cache<K, V> {
    map: Mutex<HashMap<K, Arc<Entry<V>>>>,
}

impl<K: Hash + Eq + Clone, V: Send + Sync + 'static> Cache<K, V> {
    fn new() -> Self {
        Cache {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn entry(&self, k: &K) -> Arc<Entry<V>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(k.clone())
            .or_default()
            .clone()
    }

    fn clear(&self) {
        let old = std::mem::take(&mut *self.map.lock().unwrap_or_else(|p| p.into_inner()));
        drop(old);
    }

    fn values(&self) -> Vec<Arc<V>> {
        let entries: Vec<_> = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        entries.iter().filter_map(|e| e.settled()).collect()
    }
}

/// Counters of the calls issuance made.
#[derive(Default)]
pub struct IssueStats {
    pub assume_role: AtomicU64,
    pub eks_tokens_minted: AtomicU64,
    pub background_refreshes: AtomicU64,
    pub sso_role_credentials: AtomicU64,
}

/// Builds, caches and refreshes role sessions and EKS tokens.
pub struct Issuer {
    sts: Arc<dyn Sts>,
    clock: Arc<dyn Clock>,
    vault: Arc<Vault>,
    sessions: Cache<SessionKey, RoleSession>,
    tokens: Cache<TokenKey, CachedToken>,
    pub stats: IssueStats,
    jitter: std::collections::hash_map::RandomState,
}

impl Issuer {
    pub fn new(sts: Arc<dyn Sts>, clock: Arc<dyn Clock>, vault: Arc<Vault>) -> Self {
        Issuer {
            sts,
            clock,
            vault,
            sessions: Cache::new(),
            tokens: Cache::new(),
            stats: IssueStats::default(),
            jitter: Default::default(),
        }
    }

    /// Drops every cached session and token (the vault was locked).
    pub fn clear(&self) {
        self.sessions.clear();
        self.tokens.clear();
    }

    /// A session of `role` with more than `min_left` to live (boxed: a
    /// chained role's session is built through its source's).
    pub fn role_session<'a>(
        self: &'a Arc<Self>,
        u: &'a Arc<Unlocked>,
        role: &'a RoleSpec,
        min_left: Duration,
    ) -> crate::BoxFuture<'a, Result<(Arc<RoleSession>, bool), Failure>> {
        Box::pin(self.role_session_inner(u, role, min_left))
    }

    async fn role_session_inner(
        self: &Arc<Self>,
        u: &Arc<Unlocked>,
        role: &RoleSpec,
        min_left: Duration,
    ) -> Result<(Arc<RoleSession>, bool), Failure> {
        let key = SessionKey {
            role_arn: role.arn.clone(),
            session_name: role.session_name.clone(),
            duration: role.duration,
            identity: u.identity(),
        };
        let entry = self.sessions.entry(&key);
        let clock = self.clock.clone();
        let build = || {
            let (this, u, role) = (self.clone(), u.clone(), role.clone());
            async move { this.assume(&u, &role, min_left).await }
        };
        let (rs, via) = entry
            .get(|s| s.session.remaining(clock.now()) > min_left, build)
            .await?;
        if via != Via::Ready {
            self.refresh_session_ahead(&entry, u, role);
        }
        Ok((rs, via != Via::Started))
    }

    async fn assume(
        self: &Arc<Self>,
        u: &Arc<Unlocked>,
        role: &RoleSpec,
        min_left: Duration,
    ) -> Result<RoleSession, Failure> {
        if u.base.remaining(self.clock.now()) < Duration::from_secs(60) {
            return Err(Failure(
                ErrorKind::Locked,
                "the MFA session has ended: retry, pctl unlocks again".into(),
            ));
        }
        let session = match (&role.sso, &u.sso) {
            _ if role.source.is_some() => {
                let src = role.source.as_deref().expect("checked");
                // a chain is assumed through its source's cache
                let (from, _) = self.role_session(u, src, src.credentials_margin()).await?;
                self.stats.assume_role.fetch_add(1, Ordering::Relaxed);
                self.sts
                    .assume_role(
                        &role.region,
                        &from.session,
                        &role.arn,
                        &role.session_name,
                        role.duration.min(Duration::from_secs(3600)),
                        &role.extras,
                    )
                    .await?
            }
            (Some((account, name)), Some(signed)) => {
                self.stats.sso_role_credentials.fetch_add(1, Ordering::Relaxed);
                signed.role_session(account, name).await?
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(Failure(
                    ErrorKind::Config,
                    format!(
                        "role {} and its identity disagree on IAM Identity Center: set account_id and role_name exactly for roles of an sso identity",
                        role.key
                    ),
                ))
            }
            (None, None) => {
                self.stats.assume_role.fetch_add(1, Ordering::Relaxed);
                self.sts
                    .assume_role(
                        &role.region,
                        &u.base,
                        &role.arn,
                        &role.session_name,
                        role.duration,
                        &role.extras,
                    )
                    .await?
            }
        };
        if !self.vault.is_current(u.epoch) {
            return Err(locked_meanwhile());
        }
        if session.remaining(self.clock.now()) <= min_left {
            return Err(Failure(
                ErrorKind::Aws,
                format!(
                    "STS gave role {} a session shorter than {}: raise roles.{}.duration or the role's MaxSessionDuration",
                    role.arn,
                    humantime::format_duration(min_left),
                    role.key
                ),
            ));
        }
        Ok(RoleSession {
            role_key: role.key.clone(),
            arn: role.arn.clone(),
            session_name: role.session_name.clone(),
            duration: role.duration,
            session,
        })
    }

    /// An EKS token for `cluster` as `role`, from cache while it has more
    /// than [`TOKEN_REUSE_MARGIN`] left.
    pub async fn eks_token(
        self: &Arc<Self>,
        u: &Arc<Unlocked>,
        cluster: &ClusterSpec,
        role: &RoleSpec,
    ) -> Result<(Arc<CachedToken>, bool), Failure> {
        let key = TokenKey {
            cluster: cluster.name.clone(),
            region: cluster.region.clone(),
            role_arn: role.arn.clone(),
            identity: u.identity(),
        };
        let entry = self.tokens.entry(&key);
        let clock = self.clock.clone();
        let build = || {
            let (this, u, cluster, role) = (self.clone(), u.clone(), cluster.clone(), role.clone());
            async move { this.mint(&u, &cluster, &role).await }
        };
        let (t, via) = entry
            .get(|t| t.expiration > clock.now() + TOKEN_REUSE_MARGIN, build)
            .await?;
        if via != Via::Ready {
            self.refresh_token_ahead(&entry, u, cluster, role);
        }
        Ok((t, via != Via::Started))
    }

    async fn mint(
        self: &Arc<Self>,
        u: &Arc<Unlocked>,
        cluster: &ClusterSpec,
        role: &RoleSpec,
    ) -> Result<CachedToken, Failure> {
        let (rs, _) = self.role_session(u, role, TOKEN_SESSION_MIN).await?;
        let now = self.clock.now();
        let token = eks::eks_token(
            &rs.session,
            &cluster.region,
            &eks::sts_endpoint(&cluster.region),
            &cluster.name,
            now,
        )?;
        if !self.vault.is_current(u.epoch) {
            return Err(locked_meanwhile());
        }
        self.stats.eks_tokens_minted.fetch_add(1, Ordering::Relaxed);
        Ok(CachedToken {
            cluster_key: cluster.key.clone(),
            role_key: role.key.clone(),
            token: LockedString::from_string(token),
            expiration: now + eks::TOKEN_LIFETIME,
        })
    }

    /// When to refresh a value expiring at `exp`, `lead` before requests
    /// would, minus up to 60 s of jitter; never in the first half of what
    /// is left, so a short-lived value cannot make a busy loop.
    fn refresh_at(&self, exp: SystemTime, lead: Duration, salt: &impl Hash) -> SystemTime {
        let now = self.clock.now();
        let left = exp.duration_since(now).unwrap_or_default();
        let jitter = Duration::from_millis(self.jitter.hash_one((salt, now)) % 60_000);
        let want = exp.checked_sub(lead + REFRESH_LEAD + jitter).unwrap_or(now);
        want.max(now + left / 2)
    }

    fn refresh_session_ahead(
        self: &Arc<Self>,
        entry: &Arc<Entry<RoleSession>>,
        u: &Arc<Unlocked>,
        role: &RoleSpec,
    ) {
        let lead = role.credentials_margin().max(TOKEN_SESSION_MIN);
        let role = role.clone();
        self.spawn_refresh(
            entry,
            u,
            lead,
            move |this, u| {
                let role = role.clone();
                Box::pin(async move { this.assume(&u, &role, role.credentials_margin()).await })
            },
            |s: &RoleSession| s.session.expiration,
        );
    }

    fn refresh_token_ahead(
        self: &Arc<Self>,
        entry: &Arc<Entry<CachedToken>>,
        u: &Arc<Unlocked>,
        cluster: &ClusterSpec,
        role: &RoleSpec,
    ) {
        let (cluster, role) = (cluster.clone(), role.clone());
        self.spawn_refresh(
            entry,
            u,
            TOKEN_REUSE_MARGIN,
            move |this, u| {
                let (cluster, role) = (cluster.clone(), role.clone());
                Box::pin(async move { this.mint(&u, &cluster, &role).await })
            },
            |t: &CachedToken| t.expiration,
        );
    }

    /// One task per entry in use: sleeps until shortly before the value
    /// would be refreshed by a request, and refreshes it if someone asked
    /// for it since the last refresh; stops when nobody did, on lock, or
    /// when the entry is gone. Holds only weak references, so a lock frees
    /// every secret at once.
    fn spawn_refresh<V, B>(
        self: &Arc<Self>,
        entry: &Arc<Entry<V>>,
        u: &Arc<Unlocked>,
        lead: Duration,
        build: B,
        expiry: fn(&V) -> SystemTime,
    ) where
        V: Send + Sync + 'static,
        B: Fn(Arc<Self>, Arc<Unlocked>) -> crate::BoxFuture<'static, Result<V, Failure>>
            + Send
            + 'static,
    {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if entry.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        // The request that built it does not count as a later use.
        entry.used.store(false, Ordering::Relaxed);
        let (this, entry, u) = (
            Arc::downgrade(self),
            Arc::downgrade(entry),
            Arc::downgrade(u),
        );
        rt.spawn(async move {
            while let Some(exp) = current_expiry(&entry, expiry) {
                let Some(at) = this.upgrade().map(|t| t.refresh_at(exp, lead, &exp)) else {
                    break;
                };
                if !sleep_until(&this, &u, at).await {
                    break;
                }
                let (Some(t), Some(e), Some(un)) = (this.upgrade(), entry.upgrade(), u.upgrade())
                else {
                    break;
                };
                if !t.vault.is_current(un.epoch) || !e.used.swap(false, Ordering::Relaxed) {
                    break;
                }
                t.stats.background_refreshes.fetch_add(1, Ordering::Relaxed);
                if e.refresh(build(t.clone(), un)).await.is_err() {
                    // Requests will build it themselves when it runs low.
                    e.used.store(true, Ordering::Relaxed);
                    break;
                }
            }
            if let Some(e) = entry.upgrade() {
                e.refreshing.store(false, Ordering::Release);
            }
        });
    }

    /// Cached role sessions, for `status`: one line under each name
    /// `names` gives a session, or under the key of the role that built it
    /// when `names` gives none.
    pub fn role_statuses(&self, names: &dyn Fn(&RoleSession) -> Vec<String>) -> Vec<RoleStatus> {
        let now = self.clock.now();
        let mut v: Vec<RoleStatus> = self
            .sessions
            .values()
            .into_iter()
            .filter(|s| s.session.expiration > now)
            .flat_map(|s| {
                let mut keys = names(&s);
                if keys.is_empty() {
                    keys.push(s.role_key.clone());
                }
                keys.into_iter().map(move |role| RoleStatus {
                    role,
                    arn: s.arn.clone(),
                    expiration: rfc3339(s.session.expiration),
                })
            })
            .collect();
        v.sort_by(|a, b| (&a.role, &a.arn).cmp(&(&b.role, &b.arn)));
        v
    }

    /// Cached tokens, for `status`.
    pub fn token_statuses(&self) -> Vec<TokenStatus> {
        let now = self.clock.now();
        let mut v: Vec<TokenStatus> = self
            .tokens
            .values()
            .into_iter()
            .filter(|t| t.expiration > now)
            .map(|t| TokenStatus {
                cluster: t.cluster_key.clone(),
                role: t.role_key.clone(),
                expiration: rfc3339(t.expiration),
            })
            .collect();
        v.sort_by(|a, b| (&a.cluster, &a.role).cmp(&(&b.cluster, &b.role)));
        v
    }
}

/// When the entry's value expires, or `None` when the entry or its value
/// is gone.
fn current_expiry<V: Send + Sync + 'static>(
    entry: &Weak<Entry<V>>,
    expiry: fn(&V) -> SystemTime,
) -> Option<SystemTime> {
    let e = entry.upgrade()?;
    let v = e.settled();
    v.as_deref().map(expiry)
}

/// Sleeps until wall-clock `at` in short steps; false when the issuer or
/// the unlock went away meanwhile.
async fn sleep_until(this: &Weak<Issuer>, u: &Weak<Unlocked>, at: SystemTime) -> bool {
    loop {
        let Some(t) = this.upgrade() else {
            return false;
        };
        match u.upgrade() {
            Some(un) if t.vault.is_current(un.epoch) => {}
            _ => return false,
        }
        let now = t.clock.now();
        drop(t);
        let Ok(left) = at.duration_since(now) else {
            return true;
        };
        if left.is_zero() {
            return true;
        }
        tokio::time::sleep(left.min(REFRESH_TICK)).await;
    }
}
