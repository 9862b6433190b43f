//! The broker's state: locked or unlocked, the cached role sessions and EKS
//! tokens, counters, and the rules for when to ask 1Password or STS again.
//!
//! Everything secret hangs off one [`Unlocked`] value behind an `Arc`;
//! locking drops it, and with it every key, session and token (requests in
//! flight finish with their own reference, then it is wiped).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use pctl_protocol::{
    AuditRecord, ClientEnv, ClusterInfo, Counters, Credentials, EksToken, ErrorKind, ErrorReply,
    Profiles, RoleStatus, Status, TokenStatus,
};

use crate::audit::Audit;
use crate::aws::{self, Aws, AwsError, Session};
use crate::config::{Config, ConfigError, RoleConfig};
use crate::onepassword::{self, OpError};
use crate::secret::LockedString;

/// An EKS token is minted only from a role session with at least this much
/// left: STS accepts the presigned URL for 15 minutes after signing.
pub const TOKEN_SESSION_MIN: Duration = Duration::from_secs(16 * 60);

/// A cached token is handed out until this long before its expiry.
const TOKEN_REUSE_MARGIN: Duration = Duration::from_secs(60);

/// Who asked, as the kernel reported it.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    pub exe: Option<String>,
}

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
}

impl LockReason {
    fn as_str(self) -> &'static str {
        match self {
            LockReason::Never => "never unlocked",
            LockReason::Manual => "pctl lock",
            LockReason::Idle => "idle",
            LockReason::Lifetime => "lifetime",
        }
    }
}

/// A request failure, as sent to the client.
#[derive(Debug, Clone)]
pub struct Failure(pub ErrorKind, pub String);

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure(ErrorKind::Config, e.0)
    }
}
impl From<OpError> for Failure {
    fn from(e: OpError) -> Self {
        Failure(ErrorKind::Op, e.to_string())
    }
}
impl From<AwsError> for Failure {
    fn from(e: AwsError) -> Self {
        Failure(ErrorKind::Aws, e.0)
    }
}
impl From<Failure> for ErrorReply {
    fn from(f: Failure) -> Self {
        ErrorReply {
            kind: f.0,
            message: f.1,
        }
    }
}

type Slot<T> = Arc<tokio::sync::Mutex<Option<T>>>;
type Slots<K, T> = Mutex<HashMap<K, Slot<T>>>;

/// The single-flight slot for `key`, created empty on first use.
fn slot<K: std::hash::Hash + Eq, T>(slots: &Slots<K, T>, key: K) -> Slot<T> {
    slots
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default()
        .clone()
}

/// The filled slots that no request is updating right now (for `status`).
fn settled<K: Clone, T, R>(slots: &Slots<K, T>, mut view: impl FnMut(K, &T) -> R) -> Vec<R> {
    let all: Vec<(K, Slot<T>)> = slots
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    all.into_iter()
        .filter_map(|(k, slot)| slot.try_lock().ok()?.as_ref().map(|t| view(k, t)))
        .collect()
}

/// Secrets and caches of one unlock.
struct Unlocked {
    at: SystemTime,
    at_instant: Instant,
    idle_lock: Duration,
    max_unlock: Duration,
    account_id: String,
    /// The identity AssumeRole is called with: the MFA session, or the user keys.
    base: Session,
    roles: Slots<String, Arc<RoleSession>>,
    tokens: Slots<(String, String), CachedToken>,
}

struct RoleSession {
    arn: String,
    session: Session,
}

struct CachedToken {
    token: LockedString,
    expiration: SystemTime,
}

struct VaultState {
    unlocked: Option<Arc<Unlocked>>,
    reason: LockReason,
    last_use: Instant,
    /// Bumped on every lock, so an unlock that raced a lock is discarded.
    epoch: u64,
}

struct ConfigCache {
    stamp: Option<(SystemTime, u64)>,
    loaded: Result<Arc<Config>, ConfigError>,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    op_calls: AtomicU64,
    get_session_token: AtomicU64,
    assume_role: AtomicU64,
    eks_tokens_minted: AtomicU64,
    describe_cluster: AtomicU64,
    refused_peers: AtomicU64,
}

/// The daemon's state. Cheap to share (`Arc<Broker>`).
pub struct Broker {
    config_path: PathBuf,
    config: Mutex<ConfigCache>,
    state: Mutex<VaultState>,
    unlock_flight: tokio::sync::Mutex<()>,
    aws: Aws,
    stats: Stats,
    audit: Audit,
    /// The 30-second TOTP step of the last one-time password sent to STS.
    /// AWS refuses a code twice, so an unlock in the same step waits for the
    /// next code. Only the step number is kept, never the code.
    last_totp_step: Mutex<Option<u64>>,
}

fn now_rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    dt.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Broker {
    /// A locked broker reading `config_path` and auditing to `audit_log`.
    pub fn new(config_path: PathBuf, audit_log: Option<PathBuf>) -> Self {
        Broker {
            config_path,
            config: Mutex::new(ConfigCache {
                stamp: None,
                loaded: Err(ConfigError("config not loaded yet".into())),
            }),
            state: Mutex::new(VaultState {
                unlocked: None,
                reason: LockReason::Never,
                last_use: Instant::now(),
                epoch: 0,
            }),
            unlock_flight: tokio::sync::Mutex::new(()),
            aws: Aws::default(),
            stats: Stats::default(),
            audit: Audit::new(audit_log),
            last_totp_step: Mutex::new(None),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, VaultState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current config, re-read when the file changed.
    pub fn config(&self) -> Result<Arc<Config>, ConfigError> {
        let meta = std::fs::metadata(&self.config_path).ok();
        let stamp = meta.and_then(|m| Some((m.modified().ok()?, m.len())));
        let mut cache = self.config.lock().unwrap_or_else(|p| p.into_inner());
        if cache.stamp.is_none() || cache.stamp != stamp {
            cache.loaded = Config::load(&self.config_path).map(Arc::new);
            cache.stamp = stamp;
            if let Err(e) = &cache.loaded {
                tracing::warn!("{e}");
            }
        }
        cache.loaded.clone()
    }

    /// Counts a connection refused for its peer UID.
    pub fn count_refused_peer(&self) {
        self.stats.refused_peers.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request.
    pub fn count_request(&self) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn audit(
        &self,
        peer: &Peer,
        issued: &str,
        role: Option<&str>,
        cluster: Option<&str>,
        exp: Option<SystemTime>,
        cached: bool,
    ) {
        self.audit.record(AuditRecord {
            time: now_rfc3339(SystemTime::now()),
            pid: peer.pid,
            uid: peer.uid,
            exe: peer.exe.clone(),
            issued: issued.into(),
            role: role.map(Into::into),
            cluster: cluster.map(Into::into),
            expiration: exp.map(now_rfc3339),
            cached,
        });
    }

    /// Drops every secret. `pctl lock` passes [`LockReason::Manual`].
    pub fn lock(&self, reason: LockReason) {
        let dropped = {
            let mut st = self.state();
            st.reason = reason;
            st.epoch += 1;
            st.unlocked.take()
        };
        drop(dropped);
        self.aws.reset();
        crate::secret::scrub_stack();
        tracing::info!("locked ({}): secrets and sessions dropped", reason.as_str());
    }

    /// Locks when the idle or lifetime limit has passed. Called by a timer.
    pub fn enforce_limits(&self) {
        let reason = {
            let st = self.state();
            let Some(u) = &st.unlocked else { return };
            if u.at_instant.elapsed() >= u.max_unlock {
                Some(LockReason::Lifetime)
            } else if st.last_use.elapsed() >= u.idle_lock {
                Some(LockReason::Idle)
            } else {
                None
            }
        };
        if let Some(r) = reason {
            self.lock(r);
        }
    }

    /// Reads 1Password now (explicit `pctl unlock`), replacing any unlock.
    pub async fn unlock(&self, env: &ClientEnv, peer: &Peer) -> Result<(), Failure> {
        let _flight = self.unlock_flight.lock().await;
        self.do_unlock(env, peer).await.map(drop)
    }

    /// The unlocked state, unlocking on demand unless locked by `pctl lock`.
    async fn unlocked(
        &self,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<Arc<Unlocked>, Failure> {
        {
            let mut st = self.state();
            st.last_use = Instant::now();
            if let Some(u) = &st.unlocked {
                return Ok(u.clone());
            }
            if st.reason == LockReason::Manual {
                return Err(locked_failure());
            }
        }
        // One unlock at a time; whoever waited gets the winner's result.
        let _flight = self.unlock_flight.lock().await;
        {
            let st = self.state();
            if let Some(u) = &st.unlocked {
                return Ok(u.clone());
            }
            if st.reason == LockReason::Manual {
                return Err(locked_failure());
            }
        }
        let Some(env) = env else {
            return Err(needs_env());
        };
        self.do_unlock(env, peer).await
    }

    async fn do_unlock(&self, env: &ClientEnv, peer: &Peer) -> Result<Arc<Unlocked>, Failure> {
        let cfg = self.config()?;
        let epoch = self.state().epoch;
        self.wait_for_fresh_totp().await;
        self.stats.op_calls.fetch_add(1, Ordering::Relaxed);
        tracing::info!("reading 1Password item (op item get)");
        let mut item =
            onepassword::read_item(&cfg.onepassword, &env.0, cfg.daemon.op_timeout).await;
        if matches!(&item, Err(e) if e.transient()) {
            self.stats.op_calls.fetch_add(1, Ordering::Relaxed);
            item = onepassword::read_item(&cfg.onepassword, &env.0, cfg.daemon.op_timeout).await;
        }
        let onepassword::ItemSecrets {
            access_key_id,
            secret_access_key,
            account_id,
            mfa,
        } = item.inspect_err(|e| tracing::warn!("unlock failed: {e}"))?;
        let user = Session {
            access_key_id: access_key_id.expose().to_string(),
            secret_access_key,
            session_token: None,
            expiration: SystemTime::now() + Duration::from_secs(100 * 365 * 86400),
        };
        let base = match &mfa {
            None => user,
            Some(mfa) => {
                self.stats.get_session_token.fetch_add(1, Ordering::Relaxed);
                let step = totp_step(SystemTime::now());
                let session = self
                    .aws
                    .mfa_session(
                        &cfg.region,
                        &user,
                        &mfa.serial,
                        &mfa.code,
                        cfg.daemon.mfa_session,
                    )
                    .await;
                *self
                    .last_totp_step
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(step);
                session.inspect_err(|e| tracing::warn!("unlock failed: {e}"))?
            }
        };
        let u = Arc::new(Unlocked {
            at: SystemTime::now(),
            at_instant: Instant::now(),
            idle_lock: cfg.daemon.idle_lock,
            max_unlock: cfg.daemon.max_unlock,
            account_id,
            base,
            roles: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        });
        drop(mfa);
        {
            let mut st = self.state();
            if st.epoch != epoch {
                return Err(Failure(
                    ErrorKind::Locked,
                    "pctl was locked while 1Password was being read: run `pctl unlock`".into(),
                ));
            }
            st.unlocked = Some(u.clone());
            st.last_use = Instant::now();
        }
        tracing::info!(
            "unlocked{}",
            if u.base.session_token.is_some() {
                " with an MFA session"
            } else {
                ""
            }
        );
        self.audit(peer, "unlock", None, None, Some(u.at + u.max_unlock), false);
        Ok(u)
    }

    /// Waits for the next TOTP step when the last code was sent in this one.
    async fn wait_for_fresh_totp(&self) {
        let Some(last) = *self
            .last_totp_step
            .lock()
            .unwrap_or_else(|p| p.into_inner())
        else {
            return;
        };
        let now = SystemTime::now();
        if totp_step(now) > last {
            return;
        }
        let next = SystemTime::UNIX_EPOCH
            + Duration::from_secs((last + 1) * 30)
            + Duration::from_millis(500);
        let wait = next
            .duration_since(now)
            .unwrap_or_default()
            .min(Duration::from_secs(31));
        tracing::info!(
            "waiting {}s for a fresh one-time password (AWS refuses a code twice)",
            wait.as_secs()
        );
        tokio::time::sleep(wait).await;
    }

    /// The cached session of `role` with at least `min_left` to live,
    /// assuming the role when needed. Concurrent callers share one AssumeRole.
    async fn role_session(
        &self,
        u: &Unlocked,
        cfg: &Config,
        role: &RoleConfig,
        min_left: Duration,
    ) -> Result<(Arc<RoleSession>, bool), Failure> {
        let slot = slot(&u.roles, role.key.clone());
        let mut guard = slot.lock().await;
        if let Some(s) = &*guard {
            if s.session.remaining(SystemTime::now()) > min_left {
                return Ok((s.clone(), true));
            }
        }
        let arn = role.arn(&u.account_id);
        self.stats.assume_role.fetch_add(1, Ordering::Relaxed);
        let session = self
            .aws
            .assume_role(
                &cfg.region,
                &u.base,
                &arn,
                &role.session_name,
                role.duration,
            )
            .await?;
        if session.remaining(SystemTime::now()) <= min_left {
            return Err(Failure(
                ErrorKind::Aws,
                format!("STS gave role {arn} a session shorter than {}: raise roles.{}.duration or the role's MaxSessionDuration", humantime::format_duration(min_left), role.key),
            ));
        }
        let rs = Arc::new(RoleSession { arn, session });
        *guard = Some(rs.clone());
        Ok((rs, false))
    }

    /// Refresh margin for credentials handed to clients: a quarter of the
    /// session, at most 15 minutes, so SDKs never get nearly expired keys.
    fn credentials_margin(role: &RoleConfig) -> Duration {
        (role.duration / 4).min(Duration::from_secs(15 * 60))
    }

    /// Role credentials for credential_process, `pctl env` and `pctl exec`.
    pub async fn credentials(
        &self,
        role: &str,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<Credentials, Failure> {
        let cfg = self.config()?;
        let role = cfg.role(Some(role))?;
        let u = self.unlocked(env, peer).await?;
        let (rs, cached) = self
            .role_session(&u, &cfg, role, Self::credentials_margin(role))
            .await?;
        self.audit(
            peer,
            "credentials",
            Some(&role.key),
            None,
            Some(rs.session.expiration),
            cached,
        );
        Ok(Credentials {
            access_key_id: rs.session.access_key_id.clone(),
            secret_access_key: rs.session.secret_access_key.expose().to_string(),
            session_token: rs
                .session
                .session_token
                .as_ref()
                .map(|t| t.expose().to_string())
                .unwrap_or_default(),
            expiration: now_rfc3339(rs.session.expiration),
            region: cfg.region.clone(),
        })
    }

    /// An EKS token for a configured cluster, from cache when it has more
    /// than a minute left.
    pub async fn eks_token(
        &self,
        cluster: &str,
        role: Option<&str>,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<EksToken, Failure> {
        let cfg = self.config()?;
        let (c, role) = cfg.cluster_and_role(cluster, role)?;
        let u = self.unlocked(env, peer).await?;
        let slot = slot(&u.tokens, (c.key.clone(), role.key.clone()));
        let mut guard = slot.lock().await;
        let now = SystemTime::now();
        if let Some(t) = &*guard {
            if t.expiration > now + TOKEN_REUSE_MARGIN {
                self.audit(
                    peer,
                    "eks_token",
                    Some(&role.key),
                    Some(&c.key),
                    Some(t.expiration),
                    true,
                );
                return Ok(EksToken {
                    token: t.token.expose().to_string(),
                    expiration: now_rfc3339(t.expiration),
                });
            }
        }
        let (rs, _) = self.role_session(&u, &cfg, role, TOKEN_SESSION_MIN).await?;
        let now = SystemTime::now();
        let token = aws::eks_token(
            &rs.session,
            &c.region,
            &aws::sts_endpoint(&c.region),
            &c.name,
            now,
        )?;
        let expiration = now + aws::TOKEN_LIFETIME;
        self.stats.eks_tokens_minted.fetch_add(1, Ordering::Relaxed);
        self.audit(
            peer,
            "eks_token",
            Some(&role.key),
            Some(&c.key),
            Some(expiration),
            false,
        );
        let reply = EksToken {
            token: token.clone(),
            expiration: now_rfc3339(expiration),
        };
        *guard = Some(CachedToken {
            token: LockedString::from_string(token),
            expiration,
        });
        Ok(reply)
    }

    /// Endpoint and CA of a configured cluster.
    pub async fn describe_cluster(
        &self,
        cluster: &str,
        role: Option<&str>,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<ClusterInfo, Failure> {
        let cfg = self.config()?;
        let (c, role) = cfg.cluster_and_role(cluster, role)?;
        let u = self.unlocked(env, peer).await?;
        let (rs, _) = self
            .role_session(&u, &cfg, role, Self::credentials_margin(role))
            .await?;
        self.stats.describe_cluster.fetch_add(1, Ordering::Relaxed);
        let (endpoint, ca, arn) = self
            .aws
            .describe_cluster(&c.region, &rs.session, &c.name)
            .await?;
        self.audit(
            peer,
            "describe_cluster",
            Some(&role.key),
            Some(&c.key),
            None,
            false,
        );
        Ok(ClusterInfo {
            key: c.key.clone(),
            name: c.name.clone(),
            role: role.key.clone(),
            region: c.region.clone(),
            endpoint,
            certificate_authority_data: ca,
            arn,
        })
    }

    /// Configured roles and clusters.
    pub fn profiles(&self) -> Result<Profiles, Failure> {
        let cfg = self.config()?;
        Ok(Profiles {
            region: cfg.region.clone(),
            roles: cfg.roles.keys().cloned().collect(),
            clusters: cfg.clusters.keys().cloned().collect(),
        })
    }

    /// What `pctl status` shows. Never a secret.
    pub fn status(&self) -> Status {
        let (unlocked, reason, idle) = {
            let st = self.state();
            (st.unlocked.clone(), st.reason, st.last_use.elapsed())
        };
        let mut roles = Vec::new();
        let mut tokens = Vec::new();
        let mut locks_at = None;
        if let Some(u) = &unlocked {
            let idle_left = u.idle_lock.saturating_sub(idle);
            let life_left = u.max_unlock.saturating_sub(u.at_instant.elapsed());
            locks_at = Some(now_rfc3339(SystemTime::now() + idle_left.min(life_left)));
            roles = settled(&u.roles, |role, s| RoleStatus {
                role,
                arn: s.arn.clone(),
                expiration: now_rfc3339(s.session.expiration),
            });
            tokens = settled(&u.tokens, |(cluster, role), t| TokenStatus {
                cluster,
                role,
                expiration: now_rfc3339(t.expiration),
            });
            roles.sort_by(|a, b| a.role.cmp(&b.role));
            tokens.sort_by(|a, b| (&a.cluster, &a.role).cmp(&(&b.cluster, &b.role)));
        }
        let s = &self.stats;
        Status {
            version: pctl_protocol::VERSION.into(),
            pid: std::process::id(),
            locked: unlocked.is_none(),
            lock_reason: unlocked.is_none().then(|| reason.as_str().to_string()),
            unlocked_at: unlocked.as_ref().map(|u| now_rfc3339(u.at)),
            locks_at,
            config: self.config_path.display().to_string(),
            op_path: None,
            mfa_session_expires: None,
            mlock: crate::platform::mlock_failure().map(str::to_string),
            roles,
            tokens,
            counters: Counters {
                requests: s.requests.load(Ordering::Relaxed),
                op_calls: s.op_calls.load(Ordering::Relaxed),
                get_session_token: s.get_session_token.load(Ordering::Relaxed),
                assume_role: s.assume_role.load(Ordering::Relaxed),
                eks_tokens_minted: s.eks_tokens_minted.load(Ordering::Relaxed),
                describe_cluster: s.describe_cluster.load(Ordering::Relaxed),
                refused_peers: s.refused_peers.load(Ordering::Relaxed),
            },
            recent: self.audit.recent(),
        }
    }
}

fn totp_step(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 30
}

/// The request must unlock and carried no 1Password environment.
fn needs_env() -> Failure {
    Failure(
        ErrorKind::NeedsEnv,
        "1Password must be read: resend the request with the 1Password environment".into(),
    )
}

fn locked_failure() -> Failure {
    Failure(
        ErrorKind::Locked,
        "pctl is locked (by `pctl lock`): run `pctl unlock`".into(),
    )
}
