//! The broker: the API the server calls. It wires the pieces together and
//! owns none of their rules: [`crate::identity`] (one vault, unlocker and
//! issuer per identity), [`crate::vault`] (locked/unlocked, limits),
//! [`crate::source`] (1Password, MFA code), [`crate::issue`] (caches,
//! single-flight, refresh-ahead), [`crate::aws`] (STS, EKS) and
//! [`crate::status`].
//!
//! Every request first enforces the idle and lifetime limits (boot clock),
//! and checks the vault epoch before it audits or answers: a `pctl lock`
//! that lands mid-request means nothing is issued.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pctl_protocol::{AuditRecord, ClientEnv, ClusterInfo, Credentials, EksToken, Profiles, Status};

use crate::audit::Audit;
use crate::aws::sts::{SdkSts, Sts};
use crate::aws::{eks, Sdk, OPERATION_TIMEOUT};
use crate::clock::{rfc3339, Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::failure::locked_meanwhile;
use crate::identity::{Identities, Identity};
use crate::issue::{ClusterSpec, RoleSpec};
use crate::source::onepassword::OnePassword;
use crate::source::CredentialSource;
use crate::status::{self, Stats};
use crate::unlock::OnUnlock;
use crate::vault::Unlocked;
use pctl_protocol::ErrorKind;

pub use crate::failure::Failure;
pub use crate::issue::TOKEN_SESSION_MIN;
pub use crate::vault::LockReason;

/// Who asked, as the kernel reported it.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    pub exe: Option<String>,
    /// What the client said it can do for its user ([`pctl_protocol::Caller`]);
    /// `None`: nothing said (prompts then go back to the client as before).
    pub caller: Option<pctl_protocol::Caller>,
    /// The peer is the program itself (a credential endpoint's requester),
    /// not a `pctl` client run by it ([`crate::guard`]).
    pub direct: bool,
    /// The request starts a credential endpoint: `allowed_programs` is
    /// checked at each of the endpoint's requests instead.
    pub serving: bool,
}

/// What identifies one version of a file: modification and change times
/// (a `chmod` or `chown` changes the latter), length, device and inode (a
/// file renamed over it); of a directory: its owner, mode, device and inode
/// (not its times, which every file saved beside the config changes).
type Stamp = Option<(SystemTime, i64, i64, u64, u64, u64)>;

fn stamp_of(p: &std::path::Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((
        m.modified().ok()?,
        m.ctime(),
        m.ctime_nsec(),
        m.len(),
        m.dev(),
        m.ino(),
    ))
}

/// The stamps of the config, each include, and the directories holding them.
fn stamps(config: &std::path::Path, includes: &[PathBuf]) -> Vec<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let mut files = vec![config];
    files.extend(includes.iter().map(PathBuf::as_path));
    let mut out: Vec<Stamp> = files.iter().map(|p| stamp_of(p)).collect();
    let mut dirs: Vec<&std::path::Path> = files.iter().filter_map(|p| p.parent()).collect();
    dirs.dedup();
    out.extend(dirs.iter().map(|d| {
        let m = std::fs::metadata(d).ok()?;
        Some((
            SystemTime::UNIX_EPOCH,
            i64::from(m.uid()),
            i64::from(m.mode()),
            0,
            m.dev(),
            m.ino(),
        ))
    }));
    out
}

struct ConfigCache {
    /// Stamps of the config and each included file.
    stamp: Vec<Stamp>,
    loaded: Result<Arc<Config>, ConfigError>,
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
    config: Mutex<ConfigCache>,
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
            config: Mutex::new(ConfigCache {
                stamp: Vec::new(),
                loaded: Err(ConfigError("config not loaded yet".into())),
            }),
            identities: Identities::new(parts.clock.clone(), parts.source, parts.sts),
            clock: parts.clock,
            sdk,
            stats: Stats::default(),
            audit: Arc::new(Audit::new(audit_log)),
        }
    }

    /// The current config, re-read when the file or an included file
    /// changed (content, owner or mode), and at every call while it is
    /// refused (the fix may be in a directory's mode or an include).
    pub fn config(&self) -> Result<Arc<Config>, ConfigError> {
        let (loaded, reloaded) = {
            let mut cache = self.config.lock().unwrap_or_else(|p| p.into_inner());
            let includes = match &cache.loaded {
                Ok(c) => c.includes.as_slice(),
                Err(_) => &[],
            };
            let mut stamp = stamps(&self.config_path, includes);
            let stale = cache.loaded.is_err()
                || cache.stamp.first().is_none_or(Option::is_none)
                || cache.stamp != stamp;
            if stale {
                let before = cache.loaded.as_ref().err().cloned();
                cache.loaded = Config::load(&self.config_path).map(Arc::new);
                if let Ok(c) = &cache.loaded {
                    stamp = stamps(&self.config_path, &c.includes);
                }
                cache.stamp = stamp;
                match &cache.loaded {
                    // Said once, not at every request while it stays so.
                    Err(e) if before.as_ref() != Some(e) => tracing::warn!("{e}"),
                    _ => {}
                }
            }
            (cache.loaded.clone(), stale)
        };
        if let (true, Ok(cfg)) = (reloaded, &loaded) {
            self.lock_removed(cfg);
        }
        loaded
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

    /// The longest a request may run: two `op` runs (one retry), a wait for
    /// a fresh one-time password, and the STS/EKS calls after it. The
    /// server's per-request timeout uses this, so it never cuts short an
    /// `op_timeout` the config accepts.
    pub fn request_timeout(&self) -> Duration {
        let op = self
            .config()
            .map(|c| c.daemon.op_timeout)
            .unwrap_or(Duration::from_secs(120));
        op * 2 + Duration::from_secs(31) + OPERATION_TIMEOUT * 3 + Duration::from_secs(10)
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

    /// Drops every identity's secrets. `pctl lock` passes [`LockReason::Manual`].
    pub fn lock(&self, reason: LockReason) {
        for id in self.known_identities() {
            self.lock_one(&id, reason);
        }
    }

    /// Drops one identity's secrets (`None`: every identity's).
    pub fn lock_identity(&self, name: Option<&str>, reason: LockReason) -> Result<(), Failure> {
        match name {
            None => self.lock(reason),
            Some(n) => {
                // Configured, or held from an earlier config.
                let cfg = self.config()?;
                let id = match (cfg.identity(n), self.identities.find(n)) {
                    (Ok(_), _) => self.identities.get(n),
                    (Err(_), Some(id)) => id,
                    (Err(e), None) => return Err(e.into()),
                };
                self.lock_one(&id, reason);
            }
        }
        Ok(())
    }

    fn lock_one(&self, id: &Identity, reason: LockReason) {
        id.unlocker.sso.cancel();
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

    /// The configured identities (and any still holding state from an
    /// earlier config), created on first use.
    fn known_identities(&self) -> Vec<Arc<Identity>> {
        if let Ok(cfg) = self.config() {
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

    /// Reads 1Password now (explicit `pctl unlock`), replacing any unlock:
    /// of `identity`, or of every configured identity (each is tried; the
    /// failures are reported together, one line each).
    pub async fn unlock(
        &self,
        identity: Option<&str>,
        env: &ClientEnv,
        mfa_code: Option<&str>,
        peer: &Peer,
    ) -> Result<(), Failure> {
        let cfg = self.config()?;
        let names: Vec<String> = match identity {
            Some(n) => vec![cfg.identity(n)?.name.clone()],
            None => cfg.identities.keys().cloned().collect(),
        };
        let mut failed: Vec<Failure> = Vec::new();
        for name in names {
            let id = self.identities.get(&name);
            let on_fresh = || self.on_unlock(&id, peer);
            match id.unlocker.now(&cfg, env, mfa_code, on_fresh).await {
                Ok(()) => {}
                // the client signs in, then sends the unlock again
                Err(f) if f.0 == ErrorKind::NeedsSignIn => return Err(f),
                Err(f) if cfg.identities.len() > 1 && f.0 != ErrorKind::NeedsMfaCode => {
                    failed.push(Failure(f.0, format!("identity {name}: {}", f.1)))
                }
                Err(f) => failed.push(f),
            }
        }
        match failed.len() {
            0 => Ok(()),
            1 => Err(failed.remove(0)),
            _ => Err(Failure(
                failed[0].0,
                failed
                    .iter()
                    .map(|f| f.1.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }

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

    /// The unlocked state of the identity `role` is assumed from,
    /// unlocking it on demand unless locked by `pctl lock`.
    async fn unlocked(
        &self,
        cfg: &Arc<Config>,
        role: &crate::config::RoleConfig,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<(Arc<Identity>, Arc<Unlocked>), Failure> {
        self.enforce_limits();
        let id = self.identities.get(&role.identity);
        let on_fresh = || self.on_unlock(&id, peer);
        let (ask, _waiting) =
            crate::prompt::before_unlock(cfg, role, &id, self.clock.as_ref(), env, peer);
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
        Ok((id, u))
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

    /// The `sso` identity named, or the only one.
    fn sso_identity<'c>(
        cfg: &'c Config,
        identity: Option<&str>,
    ) -> Result<&'c crate::config::IdentityConfig, Failure> {
        let ssos: Vec<_> = cfg
            .identities
            .values()
            .filter(|i| i.sso.is_some())
            .collect();
        let i = match identity {
            Some(n) => cfg.identity(n)?,
            None if ssos.len() == 1 => ssos[0],
            None if ssos.is_empty() => {
                return Err(Failure(
                    ErrorKind::Config,
                    format!(
                        "no identity in {} signs in with IAM Identity Center: add [identities.NAME] with source = \"sso\", start_url and sso_region",
                        cfg.path.display()
                    ),
                ))
            }
            None => {
                return Err(Failure(
                    ErrorKind::Config,
                    format!(
                        "several sso identities are configured ({}): pass --identity",
                        ssos.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
        };
        if i.sso.is_none() {
            return Err(Failure(
                ErrorKind::Config,
                format!(
                    "identity {} reads 1Password, it does not sign in with IAM Identity Center",
                    i.name
                ),
            ));
        }
        Ok(i)
    }

    /// Starts (or joins) the device authorization of an `sso` identity.
    pub async fn sign_in(&self, identity: &str) -> Result<pctl_protocol::SignInPrompt, Failure> {
        let cfg = self.config()?;
        let ic = Self::sso_identity(&cfg, Some(identity))?;
        let sso = ic.sso.as_ref().expect("checked");
        self.enforce_limits();
        let id = self.identities.get(&ic.name);
        id.unlocker
            .sso
            .start(crate::source::sso::SignInContext {
                identity: &ic.name,
                sso,
                daemon: &cfg.daemon,
                vault: id.vault.clone(),
                clock: self.clock.clone(),
            })
            .await
    }

    /// Waits for the device authorization `serial` of `identity` to end.
    pub async fn sign_in_wait(
        &self,
        identity: &str,
        serial: u64,
        peer: &Peer,
    ) -> Result<(), Failure> {
        let cfg = self.config()?;
        let ic = Self::sso_identity(&cfg, Some(identity))?;
        let id = self.identities.get(&ic.name);
        id.unlocker.sso.wait(serial).await?;
        if let Ok(Some(u)) = id.vault.current(self.clock.as_ref()) {
            self.sso_audit(&id, &u, peer);
        }
        Ok(())
    }

    /// `pctl sso roles`: every account x role of an `sso` identity.
    pub async fn sso_roles(
        &self,
        identity: Option<&str>,
        peer: &Peer,
    ) -> Result<Vec<pctl_protocol::SsoRole>, Failure> {
        let cfg = self.config()?;
        let ic = Self::sso_identity(&cfg, identity)?;
        self.enforce_limits();
        let id = self.identities.get(&ic.name);
        let on_fresh = || self.on_unlock(&id, peer);
        let u = id.unlocker.on_demand(&cfg, None, on_fresh).await?;
        self.sso_audit(&id, &u, peer);
        let signed = u.sso.clone().ok_or_else(|| {
            Failure(
                ErrorKind::Locked,
                "the identity was locked meanwhile: retry".into(),
            )
        })?;
        let roles = signed.roles().await?;
        self.sso_audit(&id, &u, peer);
        Ok(roles)
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
            session_name: role.session_name.clone(),
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

    /// Role credentials for credential_process, `pctl env` and `pctl exec`.
    pub async fn credentials(
        &self,
        role: &str,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<Credentials, Failure> {
        let cfg = self.config()?;
        let role = cfg.role(Some(role))?;
        crate::guard::check_program(&cfg, role, peer)?;
        let (id, u) = self.unlocked(&cfg, role, env, peer).await?;
        let spec = Self::role_spec(&cfg, role, &u);
        let margin = spec.credentials_margin();
        let _turn = self
            .break_glass(&cfg, role, env, peer, || {
                id.issuer.has_session(&u, &spec, margin)
            })
            .await?;
        let (rs, cached) = id.issuer.role_session(&u, &spec, margin).await?;
        self.issue(
            &id,
            &u,
            peer,
            "credentials",
            Issued {
                role: Some(&role.key),
                expiration: Some(rs.session.expiration),
                cached,
                ..Issued::default()
            },
        )?;
        Ok(Credentials {
            access_key_id: rs.session.access_key_id.clone(),
            secret_access_key: rs.session.secret_access_key.expose().to_string(),
            session_token: rs
                .session
                .session_token
                .as_ref()
                .map(|t| t.expose().to_string())
                .unwrap_or_default(),
            expiration: rfc3339(rs.session.expiration),
            region: spec.region.clone(),
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
        self.token_for(&cfg, c, role, env, peer).await
    }

    /// An EKS token for the cluster `aws eks get-token`'s flags name
    /// ([`crate::get_token`]): a configured one (main file or include), or
    /// one the config does not list, cached like [`Broker::eks_token`]'s
    /// (by cluster name, region and role ARN).
    pub async fn eks_token_flags(
        &self,
        cluster: Option<&str>,
        role: Option<&str>,
        flags: &pctl_protocol::GetTokenFlags,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<EksToken, Failure> {
        use crate::get_token::{resolve, Target};
        let cfg = self.config()?;
        match resolve(&cfg, cluster, role, flags)? {
            Target::Configured { cluster, role } => {
                let (c, role) = cfg.cluster_and_role(&cluster, role.as_deref())?;
                self.token_for(&cfg, c, role, env, peer).await
            }
            Target::AdHoc(adhoc) => {
                let (c, role) = cfg.adhoc_cluster(&adhoc)?;
                self.token_for(&cfg, &c, &role, env, peer).await
            }
        }
    }

    /// A token for `c` assumed through `role`: from the cache, or minted.
    async fn token_for(
        &self,
        cfg: &Arc<Config>,
        c: &crate::config::ClusterConfig,
        role: &crate::config::RoleConfig,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<EksToken, Failure> {
        crate::guard::check_program(cfg, role, peer)?;
        let (id, u) = self.unlocked(cfg, role, env, peer).await?;
        let spec = Self::role_spec(cfg, role, &u);
        let cluster = ClusterSpec {
            key: c.key.clone(),
            name: c.name.clone(),
            region: c.region.clone(),
        };
        let _turn = self
            .break_glass(cfg, role, env, peer, || {
                id.issuer.has_token(&u, &cluster, &spec)
                    || id.issuer.has_session(&u, &spec, TOKEN_SESSION_MIN)
            })
            .await?;
        let (t, cached) = id.issuer.eks_token(&u, &cluster, &spec).await?;
        self.issue(
            &id,
            &u,
            peer,
            "eks_token",
            Issued {
                role: Some(&role.key),
                cluster: Some(&c.key),
                expiration: Some(t.expiration),
                cached,
            },
        )?;
        Ok(EksToken {
            token: t.token.expose().to_string(),
            expiration: rfc3339(t.expiration),
        })
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
        crate::guard::check_program(&cfg, role, peer)?;
        let (id, u) = self.unlocked(&cfg, role, env, peer).await?;
        let spec = Self::role_spec(&cfg, role, &u);
        let margin = spec.credentials_margin();
        let _turn = self
            .break_glass(&cfg, role, env, peer, || {
                id.issuer.has_session(&u, &spec, margin)
            })
            .await?;
        let (rs, _) = id.issuer.role_session(&u, &spec, margin).await?;
        self.stats.describe_cluster.fetch_add(1, Ordering::Relaxed);
        let (endpoint, ca, arn) =
            eks::describe_cluster(&self.sdk, &c.region, &rs.session, &c.name).await?;
        self.issue(
            &id,
            &u,
            peer,
            "describe_cluster",
            Issued {
                role: Some(&role.key),
                cluster: Some(&c.key),
                ..Issued::default()
            },
        )?;
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
        let ids = self.known_identities();
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

    /// A console sign-in URL for `role`'s session, from the federation
    /// endpoint of the role's partition, or (`redirect`) a one-shot
    /// loopback link to it. The audit line says `console_login` and the
    /// role; the URL itself is never logged.
    pub async fn console_login(
        &self,
        req: ConsoleRequest<'_>,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<pctl_protocol::ConsoleLogin, Failure> {
        use crate::aws::federation;
        let cfg = self.config()?;
        let role = cfg.role(Some(req.role))?;
        crate::guard::check_program(&cfg, role, peer)?;
        let (id, u) = self.unlocked(&cfg, role, env, peer).await?;
        let spec = Self::role_spec(&cfg, role, &u);
        let _turn = self
            // a console sign-in is always a new session
            .break_glass(&cfg, role, env, peer, || false)
            .await?;
        let bad = |m: String| Failure(pctl_protocol::ErrorKind::BadRequest, m);
        let partition = federation::Partition::from_arn(&spec.arn).map_err(bad)?;
        let region = req.region.unwrap_or(&cfg.region);
        let destination =
            federation::destination(partition, region, req.path, req.destination).map_err(bad)?;
        let endpoint = federation::endpoint(
            partition,
            std::env::var(federation::ENDPOINT_ENV).ok().as_deref(),
        )
        .map_err(|m| Failure(pctl_protocol::ErrorKind::Config, m))?;
        let (rs, cached) = id
            .issuer
            .role_session(&u, &spec, spec.credentials_margin())
            .await?;
        // AssumeRole with the MFA session (temporary credentials) is role
        // chaining for AWS: no SessionDuration then.
        let chained = u.base.session_token.is_some();
        let duration = match req.duration {
            None => federation::session_duration(chained, role.duration),
            Some(d) => federation::requested_duration(
                chained,
                d,
                &role.key,
                rs.session.expiration,
                self.clock.now(),
            )?,
        };
        let token = federation::signin_token(&endpoint, &rs.session, duration).await?;
        let url = federation::login_url(&endpoint, &destination, &token);
        let session_expires = match duration {
            Some(d) => self.clock.now() + Duration::from_secs(d),
            None => rs.session.expiration,
        };
        self.issue(
            &id,
            &u,
            peer,
            "console_login",
            Issued {
                role: Some(&role.key),
                expiration: Some(session_expires),
                cached,
                ..Issued::default()
            },
        )?;
        let url = if req.redirect {
            crate::oneshot::start(url, crate::oneshot::LIFE).await?
        } else {
            url.to_string()
        };
        Ok(pctl_protocol::ConsoleLogin {
            url,
            session_expires: rfc3339(session_expires),
            browser: cfg.browser.clone(),
        })
    }
}

/// What `pctl login` asks for.
pub struct ConsoleRequest<'a> {
    pub role: &'a str,
    pub region: Option<&'a str>,
    pub path: Option<&'a str>,
    pub destination: Option<&'a str>,
    /// Answer a one-shot loopback link to the URL ([`crate::oneshot`]).
    pub redirect: bool,
    /// `--duration`: the console session's length instead of the role's.
    pub duration: Option<Duration>,
}

/// An audit record of `peer` being issued `issued`, now.
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
