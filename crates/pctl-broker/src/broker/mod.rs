//! The broker: the API the server calls. It wires the pieces together and
//! owns none of their rules: [`crate::identity`] (one vault, unlocker and
//! issuer per identity), [`crate::vault`] (locked/unlocked, limits),
//! [`crate::source`] (1Password, MFA code), [`crate::issue`] (caches,
//! single-flight, refresh-ahead), [`crate::aws`] (STS, EKS) and
//! [`crate::status`].
//!
//! This file holds the struct and the path every request shares: the
//! config, looked at once per request ([`crate::config::ConfigCache`]) and
//! passed down as one `Arc<Config>`; the limits and the lock of one
//! identity; the unlocked identity (unlocking on demand, audited); the
//! role's spec; and the audit of what was issued. One `impl Broker` block
//! per concern lives beside it: [`credentials`], [`eks`], [`login`]
//! (console), [`sso`] (Identity Center sign-in), [`unlock`] (`pctl lock`,
//! `pctl unlock`), [`rotate`], [`status`] and [`doctor`]. They use this
//! file only, never each other, and this file uses none of them.
//!
//! Every request first enforces the idle and lifetime limits (boot clock),
//! and checks the vault epoch before it audits or answers: a `pctl lock`
//! that lands mid-request means nothing is issued.

mod credentials;
mod discover;
mod doctor;
mod eks;
mod login;
mod rotate;
mod sso;
mod status;
mod unlock;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pctl_protocol::{AuditRecord, ClientEnv, ErrorKind};

use crate::audit::Audit;
use crate::aws::sts::{SdkSts, Sts};
use crate::aws::{Sdk, OPERATION_TIMEOUT};
use crate::clock::{rfc3339, Clock, SystemClock};
use crate::config::{Config, ConfigCache, ConfigError, RoleConfig};
use crate::failure::locked_meanwhile;
use crate::identity::{Identities, Identity};
use crate::issue::RoleSpec;
use crate::source::onepassword::OnePassword;
use crate::source::CredentialSource;
use crate::status::Stats;
use crate::unlock::OnUnlock;
use crate::vault::{InUse, Unlocked};

pub use crate::failure::Failure;
pub use crate::issue::TOKEN_SESSION_MIN;
pub use crate::peer::Peer;
pub use crate::vault::LockReason;

/// What `pctl login` asks for.
pub struct ConsoleRequest<'a> {
    pub role: &'a str,
    pub region: Option<&'a str>,
    pub path: Option<&'a str>,
    pub destination: Option<&'a str>,
    /// Answer a one-shot loopback link to the URL ([`crate::oneshot`]).
    pub redirect: bool,
    /// `--duration`: the role session's and console session's length.
    pub duration: Option<std::time::Duration>,
}

/// The parts a broker is built from; tests swap in fakes.
pub struct Parts {
    pub clock: Arc<dyn Clock>,
    pub source: Arc<dyn CredentialSource>,
    pub sts: Arc<dyn Sts>,
}

/// The daemon's state. Cheap to share (`Arc<Broker>`).
pub struct Broker {
    pub(crate) config_path: PathBuf,
    config: ConfigCache,
    pub(crate) clock: Arc<dyn Clock>,
    identities: Identities,
    sdk: Arc<Sdk>,
    stats: Stats,
    pub(crate) audit: Arc<Audit>,
}

impl Broker {
    /// A locked broker reading `config_path` and auditing to `audit_log`.
    pub fn new(config_path: PathBuf, audit_log: Option<PathBuf>) -> Self {
        let sdk = Arc::new(Sdk::default());
        let parts = Parts {
            clock: Arc::new(SystemClock),
            source: Arc::new(OnePassword::default()),
            sts: Arc::new(SdkSts::new(sdk.clone())),
        };
        Self::with_parts(config_path, audit_log, parts, sdk)
    }

    /// A locked broker built from the given parts.
    pub fn with_parts(
        config_path: PathBuf,
        audit_log: Option<PathBuf>,
        parts: Parts,
        sdk: Arc<Sdk>,
    ) -> Self {
        Broker {
            config_path,
            config: ConfigCache::default(),
            identities: Identities::new(parts.clock.clone(), parts.source, parts.sts),
            clock: parts.clock,
            sdk,
            stats: Stats::default(),
            audit: Arc::new(Audit::new(audit_log)),
        }
    }

    /// The current config, re-read when the file or an included file
    /// changed (content, owner or mode), and at every call while it is
    /// refused (the fix may be in a directory's mode or an include). This
    /// is the request's one freshness check: each request calls it once
    /// and passes the `Arc<Config>` down.
    pub fn config(&self) -> Result<Arc<Config>, ConfigError> {
        let (loaded, reloaded) = self.config.current(&self.config_path);
        if let (true, Ok(cfg)) = (reloaded, &loaded) {
            self.lock_removed(cfg);
        }
        loaded
    }

    /// How many times the config's files were checked for changes (one per
    /// request that reads the config).
    pub fn config_checks(&self) -> u64 {
        self.config.checks()
    }

    /// The longest a request may run (`None` while the config is refused):
    /// two `op` runs (one retry), a wait for a fresh one-time password, and
    /// the STS/EKS calls after it. The server's per-request timeout uses
    /// this, so it never cuts short an `op_timeout` the config accepts. It
    /// reads the config as last loaded, without a look at its files (the
    /// request itself makes that one); only while the config is refused
    /// does it look again, as the fix may have just landed.
    pub fn request_limit(&self) -> Option<Duration> {
        let cfg = match self.config.last() {
            Some(c) => c,
            None => self.config().ok()?,
        };
        Some(limit_for(cfg.daemon.op_timeout))
    }

    /// [`Broker::request_limit`], or the limit for the default
    /// `op_timeout` while the config is refused.
    pub fn request_timeout(&self) -> Duration {
        self.request_limit()
            .unwrap_or_else(|| limit_for(Duration::from_secs(120)))
    }

    /// Counts a connection refused for its peer UID.
    pub fn count_refused_peer(&self) {
        self.stats.refused_peers.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request.
    pub fn count_request(&self) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, peer: &Peer, issued: &str, what: Issued<'_>) -> AuditRecord {
        record(self.clock.as_ref(), peer, issued, what)
    }

    /// Audits an issuance made under `u`, unless a lock came in between:
    /// then nothing is audited and the request fails.
    fn issue(
        &self,
        id: &Identity,
        u: &Unlocked,
        peer: &Peer,
        issued: &str,
        what: Issued<'_>,
    ) -> Result<(), Failure> {
        if !id.vault.is_current(u.epoch) {
            return Err(locked_meanwhile());
        }
        self.sso_audit(id, u, peer);
        self.audit.record(self.record(peer, issued, what));
        Ok(())
    }

    /// The unlocked state of the identity `role` is assumed from,
    /// unlocking it on demand unless locked by `pctl lock`, and the guard
    /// that keeps the idle limit off it until the request ends.
    async fn unlocked(
        &self,
        cfg: &Arc<Config>,
        role: &crate::config::RoleConfig,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<(Arc<Identity>, Arc<Unlocked>, InUse), Failure> {
        self.enforce_limits();
        let id = self.identities.get(&role.identity);
        let in_use = id.vault.in_use(self.clock.clone());
        let on_fresh = || self.on_unlock(&id, peer);
        let unlocked = matches!(id.vault.current(self.clock.as_ref()), Ok(Some(_)));
        let (ask, _waiting) = match unlocked {
            true => (None, None),
            false => {
                let state = crate::prompt::UnlockState {
                    running: id.unlocker.running(),
                    sso_pending: id.unlocker.sso.pending_prompt(),
                };
                crate::prompt::before_unlock(cfg, role, state, env, peer)?
            }
        };
        let u = id
            .unlocker
            .on_demand_asking(cfg, env, ask, on_fresh)
            .await
            .map_err(|f| {
                if cfg.identities.len() > 1
                    && !matches!(
                        f.0,
                        ErrorKind::NeedsEnv | ErrorKind::NeedsMfaCode | ErrorKind::NeedsSignIn
                    )
                {
                    Failure(f.0, format!("identity {}: {}", id.name, f.1))
                } else {
                    f
                }
            })?;
        self.sso_audit(&id, &u, peer);
        Ok((id, u, in_use))
    }

    /// Audits what an `sso` identity did since the last request: a
    /// completed sign-in (with the start URL) and token refreshes. Never a token.
    fn sso_audit(&self, id: &Identity, u: &Unlocked, peer: &Peer) {
        let Some(signed) = &u.sso else { return };
        let who = format!("identity {}", id.name);
        if id.unlocker.sso.take_unaudited() {
            id.issuer.clear();
            let mut rec = self.record(
                peer,
                "sso sign-in",
                Issued {
                    expiration: Some(u.at + u.lifetime()),
                    ..Issued::default()
                },
            );
            rec.role = Some(who.clone());
            self.audit.record_with(rec, u.origin.as_deref());
        }
        for _ in 0..signed.take_refreshes().min(100) {
            let mut rec = self.record(peer, "sso refresh", Issued::default());
            rec.role = Some(who.clone());
            self.audit.record_with(rec, u.origin.as_deref());
        }
    }

    /// After a load: an identity the config no longer defines is locked
    /// (its secrets and sessions dropped, an unlock under way refused),
    /// logged and audited; only a config that defines it again can unlock it.
    fn lock_removed(&self, cfg: &Config) {
        for id in self.identities.all() {
            if cfg.identities.contains_key(&id.name) {
                continue;
            }
            let snap = id.vault.snapshot(self.clock.as_ref());
            if snap.reason == LockReason::Removed && snap.unlocked.is_none() {
                continue;
            }
            let held = snap.unlocked.is_some();
            drop(snap);
            self.lock_one(&id, LockReason::Removed);
            if held {
                tracing::warn!(
                    "identity {} is no longer in the config {}: locked, its secrets dropped",
                    id.name,
                    cfg.path.display()
                );
                let mut rec = self.record(&Peer::default(), "lock", Issued::default());
                rec.role = Some(format!("identity {}: removed from the config", id.name));
                self.audit.record(rec);
            }
        }
    }

    fn lock_one(&self, id: &Identity, reason: LockReason) {
        id.unlocker.sso.cancel();
        crate::guard::forget_unclaimed();
        let dropped = id.vault.lock(reason);
        id.issuer.clear();
        drop(dropped);
        self.sdk.reset();
        crate::secret::scrub_stack();
        tracing::info!(
            "identity {} locked ({}): secrets and sessions dropped",
            id.name,
            reason.as_str()
        );
    }

    /// The identities `cfg` defines (and any still holding state from an
    /// earlier config), created on first use.
    fn known_identities(&self, cfg: Option<&Config>) -> Vec<Arc<Identity>> {
        if let Some(cfg) = cfg {
            for name in cfg.identities.keys() {
                self.identities.get(name);
            }
        }
        self.identities.all()
    }

    /// Locks when the idle, lifetime or MFA-session limit has passed (boot
    /// clock: suspended time counts). Called by a timer and at the start of
    /// every request.
    pub fn enforce_limits(&self) {
        for id in self.identities.all() {
            if let Some(r) = id.vault.expired(self.clock.as_ref()) {
                self.lock_one(&id, r);
            }
        }
    }

    /// What a fresh unlock does once installed, in the unlock's own task
    /// (so also when the request that started it went away): what the
    /// previous unlock built is keyed by its identity and will never be
    /// asked for again (drop it), and the unlock is audited, to the peer
    /// that started it, with the `op` that ran.
    fn on_unlock(&self, id: &Arc<Identity>, peer: &Peer) -> OnUnlock {
        let (issuer, audit, clock) = (id.issuer.clone(), self.audit.clone(), self.clock.clone());
        let peer = peer.clone();
        Box::new(move |u: &Arc<Unlocked>| {
            issuer.clear();
            let rec = record(
                clock.as_ref(),
                &peer,
                "unlock",
                Issued {
                    expiration: Some(u.at + u.lifetime()),
                    ..Issued::default()
                },
            );
            audit.record_with(rec, u.origin.as_deref());
        })
    }

    fn role_spec(cfg: &Config, role: &crate::config::RoleConfig, u: &Unlocked) -> RoleSpec {
        RoleSpec {
            key: role.key.clone(),
            arn: role.arn(&u.account_id),
            // an explicit session_name wins; else the person (unlock.rs)
            session_name: role
                .session_name
                .clone()
                .or_else(|| u.session_name.clone())
                .unwrap_or_else(|| "pctl".into()),
            duration: role.duration,
            region: role.region.clone().unwrap_or_else(|| cfg.region.clone()),
            sso: role
                .sso
                .as_ref()
                .map(|s| (s.account_id.clone(), s.role_name.clone())),
            // validated acyclic: the recursion ends at the chain's root
            source: role
                .source_role
                .as_ref()
                .and_then(|s| cfg.roles.get(s))
                .map(|r| Box::new(Self::role_spec(cfg, r, u))),
            extras: crate::aws::sts::AssumeExtras {
                external_id: role.external_id.clone(),
                source_identity: role.source_identity.clone(),
                tags: role
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                transitive_tags: role.transitive_tags.clone(),
            },
            confirm: crate::guard::confirm_needed(cfg, role),
        }
    }
}

/// The request limit for an `op_timeout`.
fn limit_for(op_timeout: Duration) -> Duration {
    op_timeout * 2 + Duration::from_secs(31) + OPERATION_TIMEOUT * 3 + Duration::from_secs(10)
}

/// An audit record of `peer` being issued `issued`, now.
impl Broker {
    /// Before a session of `role` is made: when the role needs a yes
    /// ([`crate::guard::confirm_needed`]) and `cached` says no session would be reused,
    /// the user is asked ([`crate::guard::confirm`]) and the answer audited. The turn
    /// returned is held until the session is made, so a request that
    /// waited for it finds the session cached.
    pub(crate) async fn break_glass(
        &self,
        cfg: &Config,
        role: &RoleConfig,
        env: Option<&ClientEnv>,
        peer: &Peer,
        cached: impl Fn() -> bool,
    ) -> Result<Option<crate::guard::Turn>, Failure> {
        if !crate::guard::confirm_needed(cfg, role) {
            return Ok(None);
        }
        let t = crate::guard::turn(&role.key).await;
        if cached() {
            return Ok(None);
        }
        let answer = crate::guard::confirm(cfg, role, peer, env).await;
        let what = match &answer {
            Ok(how) => Some(("confirm", how.clone())),
            Err(f) if f.0 == ErrorKind::Refused => Some(("denied", f.1.clone())),
            Err(_) => None,
        };
        if let Some((issued, how)) = what {
            self.audit.record(pctl_protocol::AuditRecord {
                time: crate::clock::rfc3339(self.clock.now()),
                pid: peer.pid,
                uid: peer.uid,
                exe: peer.exe.clone(),
                issued: issued.into(),
                role: Some(format!("{}: {how}", role.key)),
                cluster: None,
                expiration: None,
                cached: false,
            });
        }
        answer.map(|_| Some(t))
    }
}

fn record(clock: &dyn Clock, peer: &Peer, issued: &str, what: Issued<'_>) -> AuditRecord {
    AuditRecord {
        time: rfc3339(clock.now()),
        pid: peer.pid,
        uid: peer.uid,
        exe: peer.exe.clone(),
        issued: issued.into(),
        role: what.role.map(Into::into),
        cluster: what.cluster.map(Into::into),
        expiration: what.expiration.map(rfc3339),
        cached: what.cached,
    }
}

/// What an audit record says was issued.
#[derive(Default)]
struct Issued<'a> {
    role: Option<&'a str>,
    cluster: Option<&'a str>,
    expiration: Option<SystemTime>,
    cached: bool,
}
