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
    /// A break-glass role (`confirm = true`, here or up its chain): every
    /// new session is confirmed by the user, so none is made ahead of a
    /// request ([`crate::guard`]).
    pub confirm: bool,
}

/// Chained role sessions (AssumeRole with a role's session) last at most this.
pub const CHAINED_MAX: Duration = Duration::from_secs(3600);
/// AssumeRole's shortest session.
pub const ASSUME_MIN: Duration = Duration::from_secs(15 * 60);
/// AssumeRole's longest session (the role's MaxSessionDuration may be less).
pub const ASSUME_MAX: Duration = Duration::from_secs(12 * 3600);

/// A request's own session settings (`--duration`, `--region`, as
/// aws-vault has them), over the role's configured ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub duration: Option<Duration>,
    pub region: Option<String>,
}

impl RoleSpec {
    /// This role with the request's `o` applied: the region checked, the
    /// duration clamped to what AWS allows for how the session is made
    /// (a chain: 15m..1h; AssumeRole: 15m..12h; Identity Center's
    /// GetRoleCredentials: its permission set decides, so no duration is
    /// asked for). Returns the one line to show when the duration asked
    /// for is not the one used.
    pub fn with_overrides(mut self, o: &Overrides) -> Result<(RoleSpec, Option<String>), Failure> {
        if let Some(r) = &o.region {
            pctl_protocol::names::check_region(r)
                .map_err(|e| Failure(ErrorKind::BadRequest, format!("--region: {e}")))?;
            self.region = r.clone();
        }
        let Some(want) = o.duration else {
            return Ok((self, None));
        };
        let shown = |d: Duration| humantime::format_duration(d).to_string();
        if self.sso.is_some() {
            let note = format!(
                "--duration {}: role {} gets its session from IAM Identity Center \
                 (GetRoleCredentials), whose permission set sets its length: using that",
                shown(want),
                self.key
            );
            return Ok((self, Some(note)));
        }
        let (lo, hi, why) = if self.source.is_some() {
            (
                ASSUME_MIN,
                CHAINED_MAX,
                "a chained role (source_role): AWS allows 15m to 1h",
            )
        } else {
            (
                ASSUME_MIN,
                ASSUME_MAX,
                "AssumeRole allows 15m to 12h (or less: the role's MaxSessionDuration)",
            )
        };
        let got = want.clamp(lo, hi);
        self.duration = got;
        let note = (got != want).then(|| {
            format!(
                "--duration {}: role {} is {why}: using {}",
                shown(want),
                self.key,
                shown(got)
            )
        });
        Ok((self, note))
    }

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

/// What a role session was built from: everything in its [`RoleSpec`]
/// that changes the session STS (or Identity Center) gives, the source
/// role's whole key for a chain, and the base identity. A request with
/// another duration, region, source role, external ID, source identity or
/// tags never gets a session built without them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    role_arn: String,
    session_name: String,
    duration: Duration,
    region: String,
    sso: Option<(String, String)>,
    source: Option<Box<SessionKey>>,
    extras: crate::aws::sts::AssumeExtras,
    identity: String,
}

impl SessionKey {
    fn of(role: &RoleSpec, identity: &str) -> Self {
        SessionKey {
            role_arn: role.arn.clone(),
            session_name: role.session_name.clone(),
            duration: role.duration,
            region: role.region.clone(),
            sso: role.sso.clone(),
            source: role
                .source
                .as_deref()
                .map(|s| Box::new(SessionKey::of(s, identity))),
            extras: role.extras.clone(),
            identity: identity.to_string(),
        }
    }
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
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // the key is cloned only for a new entry, not at every warm request
        if let Some(e) = map.get(k) {
            return e.clone();
        }
        map.entry(k.clone()).or_default().clone()
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

    /// Whether a session of `role` with more than `min_left` to live is
    /// cached (a request would not make a new one).
    pub fn has_session(&self, u: &Unlocked, role: &RoleSpec, min_left: Duration) -> bool {
        let key = SessionKey::of(role, &u.identity());
        let now = self.clock.now();
        self.sessions
            .entry(&key)
            .settled()
            .is_some_and(|s| s.session.remaining(now) > min_left)
    }

    /// Whether a token for `cluster` as `role` is cached and reusable.
    pub fn has_token(&self, u: &Unlocked, cluster: &ClusterSpec, role: &RoleSpec) -> bool {
        let key = TokenKey {
            cluster: cluster.name.clone(),
            region: cluster.region.clone(),
            role_arn: role.arn.clone(),
            identity: u.identity(),
        };
        let now = self.clock.now();
        self.tokens
            .entry(&key)
            .settled()
            .is_some_and(|t| t.expiration > now + TOKEN_REUSE_MARGIN)
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
        let key = SessionKey::of(role, &u.identity());
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
                        role.duration.min(CHAINED_MAX),
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
        if role.confirm {
            return;
        }
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
        if role.confirm {
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: &str) -> RoleSpec {
        RoleSpec {
            key: key.into(),
            arn: format!("arn:aws:iam::123456789012:role/{key}"),
            session_name: "pctl".into(),
            duration: Duration::from_secs(3600),
            region: "us-east-1".into(),
            sso: None,
            source: None,
            extras: Default::default(),
            confirm: false,
        }
    }

    fn hours(h: u64) -> Option<Duration> {
        Some(Duration::from_secs(h * 3600))
    }

    #[test]
    fn durations_are_clamped_to_what_aws_allows_for_the_session_kind() {
        let o = |duration| Overrides {
            duration,
            region: None,
        };
        let (s, note) = spec("a").with_overrides(&o(hours(8))).unwrap();
        assert_eq!((s.duration, note), (Duration::from_secs(8 * 3600), None));
        let (s, note) = spec("a").with_overrides(&o(hours(13))).unwrap();
        assert_eq!(s.duration, ASSUME_MAX);
        assert!(note.unwrap().contains("using 12h"));
        let (s, note) = spec("a")
            .with_overrides(&o(Some(Duration::from_secs(60))))
            .unwrap();
        assert_eq!(s.duration, ASSUME_MIN);
        assert!(!note.unwrap().contains('\n'));
        let mut chained = spec("c");
        chained.source = Some(Box::new(spec("a")));
        let (s, note) = chained.with_overrides(&o(hours(2))).unwrap();
        assert_eq!(s.duration, CHAINED_MAX);
        assert!(note.unwrap().contains("chained"));
        let mut sso = spec("s");
        sso.sso = Some(("123456789012".into(), "Dev".into()));
        let (s, note) = sso.with_overrides(&o(hours(2))).unwrap();
        assert_eq!(s.duration, Duration::from_secs(3600));
        assert!(note.unwrap().contains("permission set"));
        let bad = Overrides {
            duration: None,
            region: Some("Mars".into()),
        };
        assert_eq!(
            spec("a").with_overrides(&bad).unwrap_err().0,
            ErrorKind::BadRequest
        );
    }

    /// A session is cached by everything that built it: another external
    /// ID, source role, region or duration is another session.
    #[test]
    fn session_keys_hold_what_built_the_session() {
        let base = spec("c");
        let k = |s: &RoleSpec| SessionKey::of(s, "id");
        let mut x = base.clone();
        x.extras.external_id = Some("ext".into());
        assert_ne!(k(&base), k(&x));
        let mut from_a = base.clone();
        from_a.source = Some(Box::new(spec("a")));
        let mut from_b = base.clone();
        from_b.source = Some(Box::new(spec("b")));
        assert_ne!(k(&from_a), k(&from_b));
        assert_ne!(k(&base), k(&from_a));
        let mut r = base.clone();
        r.region = "eu-west-1".into();
        assert_ne!(k(&base), k(&r));
        let mut d = base.clone();
        d.duration = Duration::from_secs(900);
        assert_ne!(k(&base), k(&d));
        assert_eq!(k(&base), k(&base.clone()));
    }
}
