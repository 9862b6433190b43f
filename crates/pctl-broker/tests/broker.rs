//! The broker's state machine in process, in milliseconds: a fake clock
//! (tokio's paused time plus suspend jumps), a fake STS that counts calls
//! and a fake credential source. The pytest rig tests the same behaviour
//! against real peers (moto, the aws CLI, the `op` stand-in).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pctl_broker::aws::sts::{AssumeExtras, BoxFuture, Sts};
use pctl_broker::aws::{AwsError, Sdk, Session};
use pctl_broker::broker::{Broker, LockReason, Parts, Peer};
use pctl_broker::clock::{Clock, FakeClock};
use pctl_broker::config::{Config, IdentityConfig};
use pctl_broker::secret::LockedString;
use pctl_broker::source::{CredentialSource, ItemSecrets, Mfa, SourceError, SourceRead};
use pctl_protocol::{ClientEnv, ErrorKind, IdentityStatus};

const ACCOUNT: &str = "000000000000";

/// The standard test config, shared with the pytest rig and the sandbox.
const STANDARD_CONFIG: &str = include_str!("../../../tests/fixtures/pctl.toml");

/// `from` replaced by `to` in `text`, where `from` stands exactly once.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} in tests/fixtures/pctl.toml"
    );
    text.replacen(from, to, 1)
}

/// The standard config with idle_lock 1h and op_timeout at the daemon's
/// default (2m), `role` as the role's name, `cluster_name` as the EKS name of
/// [clusters.platform], and `extra_daemon` lines in [daemon] (each in place
/// of the standard line of its key).
fn config_text(role: &str, cluster_name: &str, extra_daemon: &str) -> String {
    let mut text = edit(STANDARD_CONFIG, "idle_lock = \"15m\"", "idle_lock = \"1h\"");
    text = edit(&text, "op_timeout = \"20s\"", "op_timeout = \"2m\"");
    text = edit(
        &text,
        "name = \"platform-admin\"",
        &format!("name = \"{role}\""),
    );
    text = edit(
        &text,
        "[clusters.platform]\n",
        &format!("[clusters.platform]\nname = \"{cluster_name}\"\n"),
    );
    for line in extra_daemon.lines() {
        let key = line.split(" = ").next().unwrap_or(line);
        text = match text.lines().find(|l| l.starts_with(&format!("{key} = "))) {
            Some(old) => edit(&text, old, line),
            None => edit(&text, "[daemon]\n", &format!("[daemon]\n{line}\n")),
        };
    }
    text
}

/// STS that mints numbered sessions and remembers what it was asked.
struct FakeSts {
    clock: Arc<FakeClock>,
    calls: Mutex<Vec<String>>,
    n: AtomicU64,
    /// GetSessionToken grants at most this much.
    mfa_grant: Mutex<Option<Duration>>,
    /// AssumeRole waits for a permit when set (a slow STS).
    gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    entered: tokio::sync::Notify,
    fail_assume: Mutex<Option<String>>,
}

impl FakeSts {
    fn new(clock: Arc<FakeClock>) -> Arc<Self> {
        Arc::new(FakeSts {
            clock,
            calls: Mutex::new(Vec::new()),
            n: AtomicU64::new(0),
            mfa_grant: Mutex::new(None),
            gate: Mutex::new(None),
            entered: tokio::sync::Notify::new(),
            fail_assume: Mutex::new(None),
        })
    }

    fn session(&self, d: Duration) -> Session {
        let n = self.n.fetch_add(1, Ordering::SeqCst);
        Session {
            access_key_id: format!("ASIAFAKE{n:08}"),
            secret_access_key: LockedString::new(&format!("secret-{n}")),
            session_token: Some(LockedString::new(&format!("token-{n}"))),
            expiration: self.clock.now() + d,
        }
    }

    fn calls(&self, prefix: &str) -> Vec<String> {
        let c = self.calls.lock().unwrap();
        c.iter()
            .filter(|c| c.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl Sts for FakeSts {
    fn get_session_token<'a>(
        &'a self,
        _region: &'a str,
        _user: &'a Session,
        serial: &'a str,
        code: &'a LockedString,
        duration: Duration,
    ) -> BoxFuture<'a, Result<Session, AwsError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push(format!("gst {serial} {}", code.expose()));
            let granted = self.mfa_grant.lock().unwrap().unwrap_or(duration);
            Ok(self.session(granted.min(duration)))
        })
    }

    fn assume_role<'a>(
        &'a self,
        _region: &'a str,
        from: &'a Session,
        role_arn: &'a str,
        _session_name: &'a str,
        duration: Duration,
        extras: &'a AssumeExtras,
    ) -> BoxFuture<'a, Result<Session, AwsError>> {
        Box::pin(async move {
            // the extras only when set: most tests' roles have none
            let with = if *extras == AssumeExtras::default() {
                String::new()
            } else {
                format!(" with {extras:?}")
            };
            self.calls.lock().unwrap().push(format!(
                "assume {role_arn} from {}{with}",
                from.access_key_id
            ));
            self.entered.notify_one();
            let gate = self.gate.lock().unwrap().clone();
            if let Some(g) = gate {
                let _p = g.acquire().await.unwrap();
            }
            if let Some(m) = self.fail_assume.lock().unwrap().clone() {
                return Err(AwsError(m));
            }
            Ok(self.session(duration))
        })
    }
}

/// A credential source that counts reads and can fail after a delay
/// (a person dismissing the 1Password prompt).
struct FakeSource {
    reads: AtomicU64,
    fail: Mutex<Option<String>>,
    delay: Duration,
    mfa: bool,
    /// Reads per 1Password item name.
    reads_of: Mutex<BTreeMap<String, u64>>,
    /// Items that do not exist.
    missing: Mutex<Vec<String>>,
    /// A read of this item waits for a permit (a prompt nobody answers yet).
    hold: Mutex<Option<(String, Arc<tokio::sync::Semaphore>)>>,
}

impl FakeSource {
    fn reads_of(&self, item: &str) -> u64 {
        self.reads_of
            .lock()
            .unwrap()
            .get(item)
            .copied()
            .unwrap_or(0)
    }
}

/// The access key ID the fake source returns for an item.
fn key_of(item: &str) -> String {
    if item == "AWS user key" {
        return "AKIAFAKEFAKEFAKE0001".into();
    }
    let tag: String = item
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_uppercase();
    format!("AKIA{tag}")
}

impl CredentialSource for FakeSource {
    fn read<'a>(
        &'a self,
        identity: &'a IdentityConfig,
        _cfg: &'a Config,
        _env: &'a ClientEnv,
    ) -> BoxFuture<'a, Result<SourceRead, SourceError>> {
        Box::pin(async move {
            let item = identity.onepassword.item.clone();
            self.reads.fetch_add(1, Ordering::SeqCst);
            *self
                .reads_of
                .lock()
                .unwrap()
                .entry(item.clone())
                .or_default() += 1;
            tokio::time::sleep(self.delay).await;
            let hold = self.hold.lock().unwrap().clone();
            if let Some((held, gate)) = hold {
                if held == item {
                    let _p = gate.acquire().await.unwrap();
                }
            }
            if self.missing.lock().unwrap().contains(&item) {
                return Err(SourceError {
                    message: format!("1Password item \"{item}\" not found"),
                    origin: Some("/usr/bin/op".into()),
                });
            }
            if let Some(m) = self.fail.lock().unwrap().clone() {
                return Err(SourceError {
                    message: m,
                    origin: Some("/usr/bin/op".into()),
                });
            }
            Ok(SourceRead {
                secrets: ItemSecrets {
                    access_key_id: LockedString::new(&key_of(&item)),
                    secret_access_key: LockedString::new("user-secret"),
                    account_id: ACCOUNT.into(),
                    mfa: self.mfa.then(|| Mfa {
                        serial: "arn:aws:iam::000000000000:mfa/dev".into(),
                        code: LockedString::new("123456"),
                    }),
                },
                origin: Some("/usr/bin/op".into()),
            })
        })
    }

    fn runs(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
}

struct Rig {
    broker: Arc<Broker>,
    clock: Arc<FakeClock>,
    sts: Arc<FakeSts>,
    source: Arc<FakeSource>,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

fn rig_with(text: &str, source: FakeSource) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, text).unwrap();
    let clock = Arc::new(FakeClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let sts = FakeSts::new(clock.clone());
    let source = Arc::new(source);
    let broker = Arc::new(Broker::with_parts(
        config.clone(),
        None,
        Parts {
            clock: clock.clone(),
            source: source.clone(),
            sts: sts.clone(),
        },
        Arc::new(Sdk::default()),
    ));
    Rig {
        broker,
        clock,
        sts,
        source,
        config,
        _dir: dir,
    }
}

fn source() -> FakeSource {
    FakeSource {
        reads: AtomicU64::new(0),
        fail: Mutex::new(None),
        delay: Duration::from_millis(10),
        mfa: false,
        reads_of: Mutex::new(BTreeMap::new()),
        missing: Mutex::new(Vec::new()),
        hold: Mutex::new(None),
    }
}

/// The standard rig with one edit of its config text.
fn rig_edited(from: &str, to: &str) -> Rig {
    rig_with(
        &config_text("platform-admin", "platform", "").replace(from, to),
        source(),
    )
}

fn rig() -> Rig {
    rig_with(&config_text("platform-admin", "platform", ""), source())
}

fn env() -> ClientEnv {
    ClientEnv(BTreeMap::from([("PATH".into(), "/usr/bin".into())]))
}

fn peer() -> Peer {
    Peer::default()
}

impl Rig {
    async fn creds(&self, with_env: bool) -> Result<pctl_protocol::Credentials, ErrorKind> {
        let e = env();
        self.broker
            .credentials("admin", with_env.then_some(&e), &peer())
            .await
            .map_err(|f| f.0)
    }

    /// Rewrites the config so its size and mtime both change.
    fn rewrite(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        let f = std::fs::File::options()
            .write(true)
            .open(&self.config)
            .unwrap();
        f.set_modified(later).unwrap();
    }
}

/// Issue 8 §2: a session is keyed by what built it, so editing the role's
/// name under an unlocked daemon changes the very next answer.
#[tokio::test(start_paused = true)]
async fn config_edit_changes_role_at_next_request() {
    let r = rig();
    let a = r.creds(true).await.unwrap();
    assert_eq!(
        r.sts.calls("assume"),
        [format!(
            "assume arn:aws:iam::{ACCOUNT}:role/platform-admin from AKIAFAKEFAKEFAKE0001"
        )]
    );
    r.rewrite(&config_text("platform-viewer-role", "platform", ""));
    let b = r.creds(false).await.unwrap();
    let calls = r.sts.calls("assume");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[1].contains(":role/platform-viewer-role"), "{calls:?}");
    assert_ne!(a.access_key_id, b.access_key_id);
    let st = r.broker.status();
    assert!(st
        .roles
        .iter()
        .any(|s| s.arn.ends_with("role/platform-viewer-role")));
    // And back: the old role's session is still valid and still keyed by
    // its own ARN, so no new AssumeRole is needed.
    r.rewrite(&config_text("platform-admin", "platform", ""));
    let c = r.creds(false).await.unwrap();
    assert_eq!(c.access_key_id, a.access_key_id);
    assert_eq!(r.sts.calls("assume").len(), 2);
}

/// Tokens are keyed by (cluster name, region, role ARN): renaming the EKS
/// cluster behind a config key mints a token for the new name.
#[tokio::test(start_paused = true)]
async fn token_cache_follows_the_cluster_name() {
    let r = rig();
    let e = env();
    let t1 = r
        .broker
        .eks_token("platform", None, Some(&e), &peer())
        .await
        .unwrap();
    let again = r
        .broker
        .eks_token("platform", None, None, &peer())
        .await
        .unwrap();
    assert_eq!(t1.token, again.token);
    assert_eq!(r.broker.status().counters.eks_tokens_minted, 1);
    r.rewrite(&config_text("platform-admin", "platform-blue", ""));
    let t2 = r
        .broker
        .eks_token("platform", None, None, &peer())
        .await
        .unwrap();
    assert_ne!(t1.token, t2.token);
    assert_eq!(r.broker.status().counters.eks_tokens_minted, 2);
}

/// Issue 8 §3: a suspend moves the boot clock but not tokio's timers; the
/// next request finds the idle limit passed and unlocks again (no timer
/// tick needed).
#[tokio::test(start_paused = true)]
async fn suspend_past_idle_lock_locks_at_the_next_request() {
    let r = rig();
    r.creds(true).await.unwrap();
    r.clock.suspend(Duration::from_secs(2 * 3600));
    assert_eq!(r.creds(false).await.unwrap_err(), ErrorKind::NeedsEnv);
    let st = r.broker.status();
    assert!(st.locked);
    assert_eq!(st.lock_reason.as_deref(), Some("idle"));
    r.creds(true).await.unwrap();
    assert_eq!(r.source.runs(), 2);
}

/// max_unlock counts suspended time too, even while the daemon is in use.
#[tokio::test(start_paused = true)]
async fn suspend_past_max_unlock_locks_while_in_use() {
    let r = rig_edited("max_unlock = \"12h\"", "max_unlock = \"2h\"");
    r.creds(true).await.unwrap();
    let mut last = Ok(());
    for _ in 0..3 {
        r.clock.suspend(Duration::from_secs(45 * 60));
        last = r.creds(false).await.map(drop);
    }
    assert_eq!(last, Err(ErrorKind::NeedsEnv));
    let st = r.broker.status();
    assert!(st.locked, "{st:?}");
    assert_eq!(st.lock_reason.as_deref(), Some("lifetime"));
}

/// The MFA session's own end is tracked: STS granted 30 minutes where 12
/// hours were asked; after it the vault unlocks again instead of assuming
/// roles with a dead session, and `status` shows when it ends.
#[tokio::test(start_paused = true)]
async fn short_mfa_session_is_renewed_by_a_fresh_unlock() {
    let mut s = source();
    s.mfa = true;
    let r = rig_with(&config_text("platform-admin", "platform", ""), s);
    *r.sts.mfa_grant.lock().unwrap() = Some(Duration::from_secs(30 * 60));
    r.creds(true).await.unwrap();
    let st = r.broker.status();
    let want = pctl_broker::clock::rfc3339(r.clock.now() + Duration::from_secs(30 * 60));
    assert_eq!(st.mfa_session_expires.as_deref(), Some(want.as_str()));
    assert_eq!(st.op_path.as_deref(), Some("/usr/bin/op"));
    tokio::time::advance(Duration::from_secs(29 * 60)).await;
    assert_eq!(r.creds(false).await.unwrap_err(), ErrorKind::NeedsEnv);
    assert_eq!(
        r.broker.status().lock_reason.as_deref(),
        Some("MFA session ended")
    );
    r.creds(true).await.unwrap();
    assert_eq!(r.sts.calls("gst").len(), 2);
    // Every AssumeRole used the MFA session that was live at the time.
    let assumes = r.sts.calls("assume");
    assert!(assumes[0].ends_with("ASIAFAKE00000000"), "{assumes:?}");
    assert!(
        !assumes.last().unwrap().ends_with("ASIAFAKE00000000"),
        "{assumes:?}"
    );
}

/// Issue 8 §4: a lock that lands while AssumeRole is in flight means the
/// request issues nothing, caches nothing and audits nothing.
#[tokio::test(start_paused = true)]
async fn lock_during_a_request_issues_nothing() {
    let r = rig();
    // Unlock first (no STS call needed for that without MFA).
    r.broker.unlock(None, &env(), None, &peer()).await.unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *r.sts.gate.lock().unwrap() = Some(gate.clone());
    let b = r.broker.clone();
    let req = tokio::spawn(async move { b.credentials("admin", None, &peer()).await });
    r.sts.entered.notified().await;
    r.broker.lock(LockReason::Manual);
    gate.add_permits(1);
    let res = req.await.unwrap();
    assert_eq!(res.unwrap_err().0, ErrorKind::Locked);
    let st = r.broker.status();
    assert!(st.roles.is_empty());
    assert!(
        st.recent.iter().all(|a| a.issued != "credentials"),
        "{:?}",
        st.recent
    );
    assert_eq!(r.creds(true).await.unwrap_err(), ErrorKind::Locked);
}

/// Issue 8 §4: ten requests queued behind one unlock share its failure:
/// one dismissed prompt is one prompt, not ten.
#[tokio::test(start_paused = true)]
async fn failed_unlock_answers_every_waiter() {
    let mut s = source();
    s.delay = Duration::from_secs(5);
    *s.fail.get_mut().unwrap() = Some("the 1Password authorization prompt was dismissed".into());
    let r = rig_with(&config_text("platform-admin", "platform", ""), s);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let b = r.broker.clone();
        tasks.push(tokio::spawn(async move {
            let e = env();
            b.credentials("admin", Some(&e), &peer()).await
        }));
    }
    for t in tasks {
        let f = t.await.unwrap().unwrap_err();
        assert_eq!(f.0, ErrorKind::Op);
        assert!(f.1.contains("dismissed"), "{}", f.1);
    }
    assert_eq!(r.source.runs(), 1);
    assert_eq!(r.broker.status().op_path.as_deref(), Some("/usr/bin/op"));
    // A request after the failure asks again (the user may approve now).
    *r.source.fail.lock().unwrap() = None;
    r.creds(true).await.unwrap();
    assert_eq!(r.source.runs(), 2);
}

/// AssumeRole failures are shared the same way.
#[tokio::test(start_paused = true)]
async fn failed_assume_role_answers_every_waiter() {
    let r = rig();
    r.broker.unlock(None, &env(), None, &peer()).await.unwrap();
    *r.sts.fail_assume.lock().unwrap() = Some("STS AssumeRole was denied (AccessDenied)".into());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *r.sts.gate.lock().unwrap() = Some(gate.clone());
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let b = r.broker.clone();
        tasks.push(tokio::spawn(async move {
            b.credentials("admin", None, &peer()).await
        }));
    }
    r.sts.entered.notified().await;
    tokio::task::yield_now().await;
    gate.add_permits(100);
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err().0, ErrorKind::Aws);
    }
    assert_eq!(r.sts.calls("assume").len(), 1);
}

/// Issue 8 §5: a session in use is refreshed in the background before a
/// request would need a new one, so the request does not wait on STS; one
/// nobody asks for again is left to expire.
#[tokio::test(start_paused = true)]
async fn sessions_in_use_are_refreshed_ahead() {
    let r = rig();
    let first = r.creds(true).await.unwrap();
    // Used again within its lifetime.
    tokio::time::advance(Duration::from_secs(10 * 60)).await;
    assert_eq!(
        r.creds(false).await.unwrap().access_key_id,
        first.access_key_id
    );
    // Past the point where a request would refresh (45 of 60 minutes, the
    // credentials margin being 15): the background task already did.
    tokio::time::sleep(Duration::from_secs(36 * 60)).await;
    assert_eq!(
        r.sts.calls("assume").len(),
        2,
        "refreshed in the background"
    );
    let before = r.sts.calls("assume").len();
    let now = r.creds(false).await.unwrap();
    assert_ne!(now.access_key_id, first.access_key_id);
    assert_eq!(
        r.sts.calls("assume").len(),
        before,
        "the request did not call STS"
    );
    // Used once after that refresh; then never again: at most one more
    // refresh, then the task stops.
    tokio::time::sleep(Duration::from_secs(5 * 3600)).await;
    assert!(
        r.sts.calls("assume").len() <= 3,
        "{:?}",
        r.sts.calls("assume")
    );
    let n = r.sts.calls("assume").len();
    tokio::time::sleep(Duration::from_secs(5 * 3600)).await;
    assert_eq!(r.sts.calls("assume").len(), n);
}

/// Without a second use no refresh happens at all, and a lock stops the
/// refresh tasks of everything (they hold no secrets).
#[tokio::test(start_paused = true)]
async fn unused_sessions_are_not_refreshed() {
    let r = rig();
    r.creds(true).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    assert_eq!(r.sts.calls("assume").len(), 1);
}

/// EKS tokens in use are re-minted ahead too (locally, from the cached
/// role session).
#[tokio::test(start_paused = true)]
async fn tokens_in_use_are_refreshed_ahead() {
    let r = rig();
    let e = env();
    let t1 = r
        .broker
        .eks_token("platform", None, Some(&e), &peer())
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(60)).await;
    r.broker
        .eks_token("platform", None, None, &peer())
        .await
        .unwrap();
    // Reuse stops 1 minute before the 14-minute expiry; the background
    // re-mint happens before that.
    tokio::time::sleep(Duration::from_secs(13 * 60 + 10)).await;
    let minted = r.broker.status().counters.eks_tokens_minted;
    assert_eq!(minted, 2, "re-minted in the background");
    let t2 = r
        .broker
        .eks_token("platform", None, None, &peer())
        .await
        .unwrap();
    assert_ne!(t1.token, t2.token);
    assert_eq!(r.broker.status().counters.eks_tokens_minted, 2);
}

/// The per-request timeout covers the longest op_timeout the config allows.
#[tokio::test]
async fn request_timeout_covers_op_timeout() {
    let r = rig_with(
        &config_text("platform-admin", "platform", "op_timeout = \"10m\""),
        source(),
    );
    assert!(r.broker.request_timeout() > Duration::from_secs(2 * 600));
}

/// A lock stops background refreshes: the tasks hold no secrets and make
/// no STS call afterwards.
#[tokio::test(start_paused = true)]
async fn lock_stops_background_refreshes() {
    let r = rig();
    r.creds(true).await.unwrap();
    tokio::time::advance(Duration::from_secs(60)).await;
    r.creds(false).await.unwrap(); // in use: a refresh task is armed
    r.broker.lock(LockReason::Manual);
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    assert_eq!(r.sts.calls("assume").len(), 1);
    assert!(r.broker.status().roles.is_empty());
}

/// Concurrent `pctl unlock`s queued behind one read share it.
#[tokio::test(start_paused = true)]
async fn concurrent_explicit_unlocks_read_once() {
    let mut s = source();
    s.delay = Duration::from_secs(3);
    let r = rig_with(&config_text("platform-admin", "platform", ""), s);
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let b = r.broker.clone();
        tasks.push(tokio::spawn(async move {
            b.unlock(None, &env(), None, &peer()).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(r.source.runs(), 1);
    let unlocks = r
        .broker
        .status()
        .recent
        .iter()
        .filter(|a| a.issued == "unlock")
        .count();
    assert_eq!(unlocks, 1);
}

/// A lock while the source is being read: the read is discarded.
#[tokio::test(start_paused = true)]
async fn lock_during_unlock_discards_the_read() {
    let mut s = source();
    s.delay = Duration::from_secs(3);
    let r = rig_with(&config_text("platform-admin", "platform", ""), s);
    let b = r.broker.clone();
    let req = tokio::spawn(async move {
        let e = env();
        b.credentials("admin", Some(&e), &peer()).await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.broker.lock(LockReason::Manual);
    assert_eq!(req.await.unwrap().unwrap_err().0, ErrorKind::Locked);
    let st = r.broker.status();
    assert!(st.locked && st.recent.is_empty(), "{st:?}");
    assert!(r.sts.calls("assume").is_empty());
}

/// How many unlocks the audit log shows.
fn audited_unlocks(r: &Rig) -> usize {
    r.broker
        .status()
        .recent
        .iter()
        .filter(|a| a.issued == "unlock")
        .count()
}

/// A credentials request from a client that will go away (the task is
/// aborted: hyper dropping the request of an SDK that timed out, or a
/// Unix-socket client killed mid-request).
fn doomed_request(r: &Rig, with_env: bool) -> tokio::task::JoinHandle<()> {
    let b = r.broker.clone();
    tokio::spawn(async move {
        let e = env();
        let _ = b
            .credentials("admin", with_env.then_some(&e), &peer())
            .await;
    })
}

async fn drop_request(t: tokio::task::JoinHandle<()>) {
    t.abort();
    assert!(
        t.await.unwrap_err().is_cancelled(),
        "the request was dropped"
    );
}

fn slow_source_rig(delay: Duration) -> Rig {
    let mut s = source();
    s.delay = delay;
    rig_with(&config_text("platform-admin", "platform", ""), s)
}

/// Issue 15 §6: the request that started an unlock goes away after 2 s
/// (botocore's timeout) while `op` takes 2.5 s: the read runs to its end,
/// the retry joins it, and there is one read and one audited unlock.
#[tokio::test(start_paused = true)]
async fn a_dropped_request_does_not_cancel_its_unlock() {
    let r = slow_source_rig(Duration::from_millis(2500));
    let first = doomed_request(&r, true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop_request(first).await;
    r.creds(true).await.unwrap();
    assert_eq!(r.source.runs(), 1);
    assert_eq!(audited_unlocks(&r), 1);
}

/// Issue 15 §6: nobody is left waiting for an unlock: it still completes
/// and is audited, and the next request (even one without the 1Password
/// environment) is served from it.
#[tokio::test(start_paused = true)]
async fn an_unlock_nobody_waits_for_completes() {
    let r = slow_source_rig(Duration::from_secs(3));
    let first = doomed_request(&r, true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop_request(first).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!r.broker.status().locked);
    assert_eq!(audited_unlocks(&r), 1);
    r.creds(false).await.unwrap();
    assert_eq!(r.source.runs(), 1);
}

/// Issue 15 §6: a `pctl lock` while an unlock nobody waits for runs still
/// wins: the read is discarded, nothing is audited, requests stay locked.
#[tokio::test(start_paused = true)]
async fn a_lock_wins_over_an_unlock_nobody_waits_for() {
    let r = slow_source_rig(Duration::from_secs(3));
    let first = doomed_request(&r, true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop_request(first).await;
    r.broker.lock(LockReason::Manual);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let st = r.broker.status();
    assert!(st.locked && st.recent.is_empty(), "{st:?}");
    assert_eq!(r.creds(true).await.unwrap_err(), ErrorKind::Locked);
    assert!(r.sts.calls("assume").is_empty());
}

/// Issue 15 §6: the same for STS: a request dropped during AssumeRole does
/// not cancel the call; the retry joins it and the session is cached.
#[tokio::test(start_paused = true)]
async fn a_dropped_request_does_not_cancel_its_assume_role() {
    let r = rig();
    r.broker.unlock(None, &env(), None, &peer()).await.unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *r.sts.gate.lock().unwrap() = Some(gate.clone());
    let first = doomed_request(&r, false);
    r.sts.entered.notified().await;
    drop_request(first).await;
    let b = r.broker.clone();
    let retry = tokio::spawn(async move { b.credentials("admin", None, &peer()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.add_permits(100);
    let a = retry.await.unwrap().unwrap();
    assert_eq!(r.sts.calls("assume").len(), 1);
    assert_eq!(r.creds(false).await.unwrap().access_key_id, a.access_key_id);
    assert_eq!(r.sts.calls("assume").len(), 1);
}

/// Issue 15 §6: a lock during an AssumeRole nobody waits for: the session
/// it returns is neither cached nor handed out after the next unlock.
#[tokio::test(start_paused = true)]
async fn a_lock_wins_over_an_assume_role_nobody_waits_for() {
    let r = rig();
    r.broker.unlock(None, &env(), None, &peer()).await.unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *r.sts.gate.lock().unwrap() = Some(gate.clone());
    let first = doomed_request(&r, false);
    r.sts.entered.notified().await;
    drop_request(first).await;
    r.broker.lock(LockReason::Manual);
    gate.add_permits(100);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(r.broker.status().roles.is_empty());
    r.broker.unlock(None, &env(), None, &peer()).await.unwrap();
    r.creds(false).await.unwrap();
    assert_eq!(r.sts.calls("assume").len(), 2, "built anew after the lock");
}

/// The standard test config with two identities (work: "AWS work user",
/// sandbox: "AWS sandbox user"), shared with the pytest rig.
const TWO_IDENTITIES: &str = include_str!("../../../tests/fixtures/pctl-identities.toml");

fn two_identities() -> Rig {
    rig_with(TWO_IDENTITIES, source())
}

impl Rig {
    async fn creds_for(
        &self,
        role: &str,
    ) -> Result<pctl_protocol::Credentials, pctl_broker::broker::Failure> {
        self.broker.credentials(role, Some(&env()), &peer()).await
    }

    /// The base key each AssumeRole of `role_name` was called with.
    fn assumed_from(&self, role_name: &str) -> Vec<String> {
        let arn = format!("arn:aws:iam::{ACCOUNT}:role/{role_name}");
        self.sts
            .calls(&format!("assume {arn} from "))
            .into_iter()
            .map(|c| c.rsplit(' ').next().unwrap().to_string())
            .collect()
    }
}

/// Issue 10 §1: two identities, roles from each served by one daemon; each
/// identity reads its own item exactly once and assumes its roles with its
/// own keys.
#[tokio::test(start_paused = true)]
async fn two_identities_each_read_once_and_assume_with_their_own_keys() {
    let r = two_identities();
    for _ in 0..3 {
        r.creds_for("admin").await.unwrap();
        r.creds_for("play").await.unwrap();
    }
    assert_eq!(r.source.reads_of("AWS work user"), 1);
    assert_eq!(r.source.reads_of("AWS sandbox user"), 1);
    assert_eq!(
        r.assumed_from("platform-admin"),
        vec![key_of("AWS work user")]
    );
    assert_eq!(
        r.assumed_from("sandbox-admin"),
        vec![key_of("AWS sandbox user")]
    );
    let s = r.broker.status();
    let names: Vec<_> = s.identities.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["sandbox", "work"]);
    assert!(s.identities.iter().all(|i| !i.locked && i.op_reads == 1));
    assert_eq!(s.identities[0].account.as_deref(), Some("my.1password.com"));
    assert_eq!(s.roles.len(), 2);
    let origins: Vec<_> = s
        .role_origins
        .iter()
        .map(|o| (o.role.as_str(), o.identity.as_str()))
        .collect();
    assert_eq!(origins, [("admin", "work"), ("play", "sandbox")]);
}

/// Issue 10 §1: locking one identity leaves the other serving from its
/// cache and keys; the locked one refuses until it is unlocked again.
#[tokio::test(start_paused = true)]
async fn locking_one_identity_leaves_the_other_serving() {
    let r = two_identities();
    r.broker.unlock(None, &env(), None, &peer()).await.unwrap();
    assert_eq!(r.source.reads_of("AWS work user"), 1);
    assert_eq!(r.source.reads_of("AWS sandbox user"), 1);
    r.creds_for("play").await.unwrap();
    r.broker
        .lock_identity(Some("work"), LockReason::Manual)
        .unwrap();
    assert_eq!(r.creds_for("admin").await.unwrap_err().0, ErrorKind::Locked);
    let before = r.sts.calls("assume").len();
    r.creds_for("play").await.unwrap();
    assert_eq!(
        r.sts.calls("assume").len(),
        before,
        "sandbox's cache survived"
    );
    let s = r.broker.status();
    let state: Vec<_> = s
        .identities
        .iter()
        .map(|i| (i.name.as_str(), i.locked))
        .collect();
    assert_eq!(state, [("sandbox", false), ("work", true)]);
    assert!(!s.locked, "one identity still serves");
    r.broker
        .unlock(Some("work"), &env(), None, &peer())
        .await
        .unwrap();
    r.creds_for("admin").await.unwrap();
    assert_eq!(r.source.reads_of("AWS work user"), 2);
    assert_eq!(r.source.reads_of("AWS sandbox user"), 1);
    let e = r
        .broker
        .lock_identity(Some("nope"), LockReason::Manual)
        .unwrap_err();
    assert!(
        e.1.contains("nope") && e.1.contains("sandbox, work"),
        "{}",
        e.1
    );
}

/// Issue 10 §1: a missing item for one identity fails only that
/// identity's roles, naming it; the other identity serves.
#[tokio::test(start_paused = true)]
async fn a_missing_item_fails_only_its_identity() {
    let r = two_identities();
    r.source
        .missing
        .lock()
        .unwrap()
        .push("AWS sandbox user".into());
    let e = r.creds_for("play").await.unwrap_err();
    assert_eq!(e.0, ErrorKind::Op);
    assert!(
        e.1.starts_with("identity sandbox: ") && e.1.contains("AWS sandbox user"),
        "{}",
        e.1
    );
    r.creds_for("admin").await.unwrap();
    // `pctl unlock` of all: the good one unlocks, the error names the bad one
    r.broker.lock(LockReason::Manual);
    let e = r
        .broker
        .unlock(None, &env(), None, &peer())
        .await
        .unwrap_err();
    assert!(
        e.1.contains("identity sandbox") && !e.1.contains("work"),
        "{}",
        e.1
    );
    let s = r.broker.status();
    let state: Vec<_> = s
        .identities
        .iter()
        .map(|i| (i.name.as_str(), i.locked))
        .collect();
    assert_eq!(state, [("sandbox", true), ("work", false)]);
}

/// Issue 10 §1: while one identity waits on its 1Password prompt, the
/// other identity unlocks and serves (each has its own single flight).
#[tokio::test(start_paused = true)]
async fn a_pending_prompt_for_one_identity_does_not_block_the_other() {
    let r = two_identities();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *r.source.hold.lock().unwrap() = Some(("AWS sandbox user".into(), gate.clone()));
    let b = r.broker.clone();
    let pending = tokio::spawn(async move { b.credentials("play", Some(&env()), &peer()).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let work = tokio::time::timeout(Duration::from_secs(5), r.creds_for("admin")).await;
    assert!(matches!(work, Ok(Ok(_))), "work served while sandbox waits");
    assert!(!pending.is_finished());
    gate.add_permits(1);
    pending.await.unwrap().unwrap();
    assert_eq!(r.source.reads_of("AWS sandbox user"), 1);
}

fn prompt_rig() -> Rig {
    let mut src = source();
    src.mfa = true;
    rig_with(
        &TWO_IDENTITIES.replace(
            "account = \"my.1password.com\"",
            "account = \"my.1password.com\"\nmfa = \"prompt\"",
        ),
        src,
    )
}

/// Issue 10 §2: an identity with mfa = "prompt" never unlocks on demand: the
/// request is answered NeedsMfaCode naming the identity (before any op
/// read); the typed code goes to GetSessionToken once; the other identity
/// is untouched.
#[tokio::test(start_paused = true)]
async fn prompt_identity_asks_for_a_code_and_uses_the_typed_one() {
    let r = prompt_rig();
    let e = r.creds_for("play").await.unwrap_err();
    assert_eq!(e.0, ErrorKind::NeedsMfaCode);
    assert!(e.1.contains("pctl unlock --identity sandbox"), "{}", e.1);
    let reply = pctl_protocol::ErrorReply::from(e);
    assert_eq!(reply.identity.as_deref(), Some("sandbox"));
    assert_eq!(
        r.source.reads_of("AWS sandbox user"),
        0,
        "no op read without a code"
    );
    // the item-mode identity is not affected
    r.creds_for("admin").await.unwrap();
    let e = r
        .broker
        .unlock(Some("sandbox"), &env(), Some("12345x"), &peer())
        .await
        .unwrap_err();
    assert!(
        e.0 == ErrorKind::NeedsMfaCode && e.1.contains("6 digits"),
        "{}",
        e.1
    );
    r.broker
        .unlock(Some("sandbox"), &env(), Some("654321"), &peer())
        .await
        .unwrap();
    let gst: Vec<_> = r.sts.calls("gst");
    assert_eq!(
        gst,
        [
            "gst arn:aws:iam::000000000000:mfa/dev 123456",
            "gst arn:aws:iam::000000000000:mfa/dev 654321"
        ],
        "item code for work, typed code for sandbox"
    );
    r.creds_for("play").await.unwrap();
    assert_eq!(r.source.reads_of("AWS sandbox user"), 1);
    // never twice: a second code in the same 30-second step is refused, not sent
    r.broker
        .lock_identity(Some("sandbox"), LockReason::Manual)
        .unwrap();
    let e = r
        .broker
        .unlock(Some("sandbox"), &env(), Some("111111"), &peer())
        .await
        .unwrap_err();
    assert!(
        e.0 == ErrorKind::NeedsMfaCode && e.1.contains("next code"),
        "{}",
        e.1
    );
    assert_eq!(r.sts.calls("gst").len(), 2);
    tokio::time::advance(Duration::from_secs(30)).await;
    r.broker
        .unlock(Some("sandbox"), &env(), Some("222222"), &peer())
        .await
        .unwrap();
    assert_eq!(r.sts.calls("gst").len(), 3);
}

/// Issue 10 §1: roles from an included file are served, an edit of the
/// included file takes effect at the next request, and status names the
/// file each role came from.
#[tokio::test(start_paused = true)]
async fn included_roles_are_served_and_reloaded() {
    let r = rig_with(
        &format!(
            "include = [\"team.toml\"]\n{}",
            config_text("platform-admin", "platform", "")
        ),
        source(),
    );
    let team = r.config.parent().unwrap().join("team.toml");
    std::fs::write(&team, "[roles.viewer]\nname = \"viewer-a\"\n").unwrap();
    r.creds_for("viewer").await.unwrap();
    assert_eq!(r.assumed_from("viewer-a").len(), 1);
    std::fs::write(&team, "[roles.viewer]\nname = \"viewer-bb\"\n").unwrap();
    let later = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&team)
        .unwrap()
        .set_modified(later)
        .unwrap();
    r.creds_for("viewer").await.unwrap();
    assert_eq!(
        r.assumed_from("viewer-bb").len(),
        1,
        "the include edit was seen"
    );
    let s = r.broker.status();
    let viewer = s.role_origins.iter().find(|o| o.role == "viewer").unwrap();
    assert_eq!(viewer.file, team.display().to_string());
    assert_eq!(viewer.identity, "default");
    // a role defined in both files: an error naming both, at the next request
    std::fs::write(&team, "[roles.admin]\nname = \"x\"\n").unwrap();
    let e = r.creds_for("admin").await.unwrap_err();
    assert!(
        e.1.contains("roles.admin") && e.1.contains("team.toml") && e.1.contains("config.toml"),
        "{}",
        e.1
    );
}

// --------------------------------------------------------------------------
// Timers on paused time (moved from tests/e2e/test_lifecycle.py, which slept
// 3.5 s, 6 x 1 s and 5 s on wall-clock timers; an e2e smoke test of the idle
// lock stays there). `enforce_limits` is what the daemon's one-second timer
// calls (daemon.rs); the fake clock follows tokio's paused clock.

/// With `idle_lock = "2s"`: still unlocked 1.5 s after the last use,
/// idle-locked 2.5 s after it (the daemon's timer calls `enforce_limits`).
async fn idle_locks_between_1_5_and_2_5_s(r: &Rig) -> pctl_protocol::Status {
    tokio::time::advance(Duration::from_millis(1500)).await;
    r.broker.enforce_limits();
    assert!(!r.broker.status().locked, "locked before the idle limit");
    tokio::time::advance(Duration::from_millis(1000)).await;
    r.broker.enforce_limits();
    let st = r.broker.status();
    assert!(
        st.locked,
        "idle_lock=2s: still unlocked after 2.5 s idle: {st:?}"
    );
    assert_eq!(st.lock_reason.as_deref(), Some("idle"));
    st
}

/// The idle timer drops the secrets and every session; a lock by the idle
/// timer (unlike `pctl lock`) unlocks again on the next request that brings
/// an environment, with a fresh 1Password read and a new session.
#[tokio::test(start_paused = true)]
async fn idle_lock_by_the_timer_then_unlock_on_demand() {
    let r = rig_edited("idle_lock = \"1h\"", "idle_lock = \"2s\"");
    let k1 = r.creds(true).await.unwrap().access_key_id.clone();
    let st = idle_locks_between_1_5_and_2_5_s(&r).await;
    assert!(
        st.roles.is_empty(),
        "sessions kept after the idle lock: {st:?}"
    );
    assert_eq!(r.creds(false).await.unwrap_err(), ErrorKind::NeedsEnv);
    let k2 = r.creds(true).await.unwrap().access_key_id.clone();
    assert_eq!(r.source.runs(), 2);
    assert_ne!(k1, k2, "sessions are dropped with the secrets");
}

/// Requests keep the daemon unlocked: six requests a second apart under a
/// three-second idle limit read 1Password once.
#[tokio::test(start_paused = true)]
async fn requests_keep_the_daemon_unlocked() {
    let r = rig_edited("idle_lock = \"1h\"", "idle_lock = \"3s\"");
    r.creds(true).await.unwrap();
    for _ in 0..6 {
        tokio::time::advance(Duration::from_secs(1)).await;
        r.broker.enforce_limits();
        r.creds(false).await.unwrap();
    }
    assert!(!r.broker.status().locked);
    assert_eq!(r.source.runs(), 1);
}

/// A request in progress is use: an AssumeRole slower than the idle limit
/// is not cut short by the idle timer, and the idle time counts from the
/// request's end (a request could fail "locked while this request ran"
/// when STS was slow under load).
#[tokio::test(start_paused = true)]
async fn a_request_in_progress_holds_off_the_idle_lock() {
    let r = rig_edited("idle_lock = \"1h\"", "idle_lock = \"2s\"");
    r.broker.unlock(None, &env(), None, &peer()).await.unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *r.sts.gate.lock().unwrap() = Some(gate.clone());
    let b = r.broker.clone();
    let req = tokio::spawn(async move { b.credentials("admin", None, &peer()).await });
    r.sts.entered.notified().await;
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(1)).await;
        r.broker.enforce_limits();
    }
    let st = r.broker.status();
    assert!(
        !st.locked,
        "idle-locked under a request in progress: {st:?}"
    );
    gate.add_permits(1);
    req.await.unwrap().expect("the slow request is answered");
    // the idle time counts from the request's end, not its start
    idle_locks_between_1_5_and_2_5_s(&r).await;
}

/// max_unlock applies whatever happens: requests every quarter second keep
/// the idle timer away, yet the timer locks three seconds after the unlock.
#[tokio::test(start_paused = true)]
async fn max_unlock_locks_while_in_use() {
    let r = rig_edited("max_unlock = \"12h\"", "max_unlock = \"3s\"");
    r.creds(true).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut first_refusal = None;
    for _ in 0..20 {
        tokio::time::advance(Duration::from_millis(250)).await;
        r.broker.enforce_limits();
        if r.creds(false).await.is_err() {
            first_refusal = Some(start.elapsed());
            break;
        }
    }
    let at = first_refusal.expect("still unlocked 5 s into a 3 s max_unlock");
    assert!(at >= Duration::from_secs(3), "locked early, at {at:?}");
    let st = r.broker.status();
    assert!(st.locked, "{st:?}");
    assert_eq!(st.lock_reason.as_deref(), Some("lifetime"));
}

/// The daemon's real server ([`pctl_broker::server::serve`]) for `r`'s
/// broker, on a real socket in a directory of its own.
struct Served {
    sock: PathBuf,
    shutdown: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(r: &Rig) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("pctl.sock");
        let listener = pctl_broker::server::bind(&sock).unwrap();
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(pctl_broker::server::serve(
            r.broker.clone(),
            listener,
            shutdown.clone(),
        ));
        Served {
            sock,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// Asks the server to stop and waits (at most 30 s) for it.
    async fn stop(self) {
        self.shutdown.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

/// Moved from tests/security/test_hostile_input.py, which stalled 12 s of
/// wall-clock time: a client that pipelines requests and never reads the
/// answers fills its socket buffer, and the daemon gives up on it after
/// `WRITE_TIMEOUT` (each such connection holds one of the connection slots)
/// instead of blocking on the write forever. The real server on a real
/// socket, on paused time. Criterion as before: stall 12 s, then drain; a
/// daemon that dropped us delivered fewer answers than requests, one still
/// blocked delivers every answer after the drain (and keeps the connection).
#[tokio::test(start_paused = true)]
async fn client_that_never_reads_is_dropped_after_the_write_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    assert!(pctl_broker::server::WRITE_TIMEOUT < Duration::from_secs(12));
    let r = rig();
    let server = Served::start(&r);
    let sock = &server.sock;
    let body = serde_json::to_vec(&serde_json::json!({
        "version": pctl_protocol::VERSION,
        "request": {"kind": "status"},
    }))
    .unwrap();
    let mut one = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    one.extend_from_slice(&body);
    let mut s = tokio::net::UnixStream::connect(sock).await.unwrap();
    let mut sent = 0u64;
    for _ in 0..200_000 {
        match tokio::time::timeout(Duration::from_secs(1), s.write_all(&one)).await {
            Ok(Ok(())) => sent += 1,
            // blocked: the daemon stopped reading (it is blocked writing to
            // us), or it already dropped the connection
            Ok(Err(_)) | Err(_) => break,
        }
    }
    assert!(sent > 10, "only {sent} requests went out");
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut closed = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break, // nothing more for 10 s and still open
        }
    }
    let mut answers = 0u64;
    let mut rest = &buf[..];
    while rest.len() >= 4 {
        let n = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        if rest.len() < 4 + n {
            break;
        }
        rest = &rest[4 + n..];
        answers += 1;
    }
    assert!(
        closed && answers < sent,
        "a client that never reads was not dropped: {answers} answers to {sent} requests, closed={closed}"
    );
    // and the daemon still serves others
    let mut t = tokio::net::UnixStream::connect(sock).await.unwrap();
    t.write_all(&one).await.unwrap();
    let mut len = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), t.read_exact(&mut len))
        .await
        .expect("the daemon stopped serving")
        .unwrap();
    drop(t);
    server.stop().await;
}

/// Issue 15 §7: an identity removed from the config while unlocked is
/// locked by the load that drops it (secrets and sessions gone, audited),
/// can still be locked by name, and the other identity keeps serving.
#[tokio::test(start_paused = true)]
async fn an_identity_dropped_from_the_config_is_locked_and_audited() {
    let r = two_identities();
    r.broker.unlock(None, &env(), None, &peer()).await.unwrap();
    r.creds_for("play").await.unwrap();
    let without_sandbox = TWO_IDENTITIES
        .replace(
            "[identities.sandbox]\nitem = \"AWS sandbox user\"\nvault = \"Private\"\naccount = \"my.1password.com\"\n",
            "",
        )
        .replace(
            "[roles.play]\nidentity = \"sandbox\"\nname = \"sandbox-admin\"\n",
            "",
        );
    assert!(!without_sandbox.contains("sandbox"), "{without_sandbox}");
    r.rewrite(&without_sandbox);
    r.broker.config().unwrap();
    let s = r.broker.status();
    let sandbox = s.identities.iter().find(|i| i.name == "sandbox").unwrap();
    assert!(
        sandbox.locked,
        "the dropped identity still holds its secrets"
    );
    assert_eq!(
        sandbox.lock_reason.as_deref(),
        Some("removed from the config")
    );
    assert!(s.roles.iter().all(|x| x.role != "play"), "{:?}", s.roles);
    let audited: Vec<_> = s
        .recent
        .iter()
        .filter(|a| a.issued == "lock")
        .map(|a| a.role.clone().unwrap_or_default())
        .collect();
    assert_eq!(audited, ["identity sandbox: removed from the config"]);
    // locking it by name still works; the other identity is untouched
    r.broker
        .lock_identity(Some("sandbox"), LockReason::Manual)
        .unwrap();
    let before = r.sts.calls("assume").len();
    r.creds_for("admin").await.unwrap();
    r.creds_for("admin").await.unwrap();
    assert_eq!(r.source.reads_of("AWS work user"), 1);
    assert!(r.sts.calls("assume").len() <= before + 1);
    // another load of the same config audits nothing more
    r.broker.config().unwrap();
    let again = r.broker.status();
    assert_eq!(
        again.recent.iter().filter(|a| a.issued == "lock").count(),
        1
    );
}

/// Moved from tests/e2e/test_mfa.py (which waited up to 30 s of wall-clock
/// time for the next TOTP step): AWS refuses a one-time password it has
/// already seen, so an unlock in the same 30-second step as the last one
/// waits for the next step before it reads a code, instead of replaying it.
#[tokio::test(start_paused = true)]
async fn mfa_unlock_in_the_same_totp_step_waits_for_the_next_code() {
    use pctl_broker::source::mfa::totp_step;
    let mut s = source();
    s.mfa = true;
    let r = rig_with(&config_text("platform-admin", "platform", ""), s);
    r.creds(true).await.unwrap();
    let first = totp_step(r.clock.now());
    r.broker.lock(LockReason::Manual);
    r.broker
        .unlock(None, &env(), None, &peer())
        .await
        .map_err(|f| f.0)
        .unwrap();
    assert_eq!(r.sts.calls("gst").len(), 2);
    assert_eq!(r.source.runs(), 2);
    // the second code was read (FakeSource takes 10 ms) in a later step
    let read_at = r.clock.now() - Duration::from_millis(20);
    assert!(
        totp_step(read_at) > first,
        "the second unlock read its code in the same TOTP step as the first"
    );
    // and it waited no longer than to the next step
    assert_eq!(totp_step(read_at), first + 1);
}

/// While an unlock waits for the next TOTP step, `status` says what the
/// identity waits for (so `pctl status` and the prompt explain an unlock
/// that takes up to 30 s), and no code is read or sent before the step
/// ends. tests/e2e/test_mfa.py reads this instead of waiting for the step.
#[tokio::test(start_paused = true)]
async fn status_says_an_unlock_waits_for_the_next_code() {
    let mut s = source();
    s.mfa = true;
    let r = rig_with(&config_text("platform-admin", "platform", ""), s);
    r.creds(true).await.unwrap();
    r.broker.lock(LockReason::Manual);
    let waiting = |r: &Rig| r.broker.status().identities[0].waiting.clone();
    assert_eq!(waiting(&r), None);
    let broker = r.broker.clone();
    let unlock = tokio::spawn(async move {
        broker
            .unlock(None, &env(), None, &peer())
            .await
            .map_err(|f| f.0)
    });
    // Paused time stands still while this task is runnable: the unlock
    // reaches its wait, and no further.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        waiting(&r).as_deref(),
        Some(pctl_broker::unlock::NEXT_CODE),
        "status does not say the unlock waits for the next code"
    );
    assert_eq!(r.source.runs(), 1, "a code was read in the same step");
    assert_eq!(
        r.sts.calls("gst").len(),
        1,
        "a code was sent in the same step"
    );
    unlock.await.unwrap().unwrap();
    assert_eq!(waiting(&r), None, "still waiting after the unlock");
    assert_eq!(r.sts.calls("gst").len(), 2);
}

/// Issue 16 §2: a request looks at the config's files once (the server's
/// time limit reads the config as last loaded; the broker passes the one
/// `Arc<Config>` down). Before, a credentials request checked them three
/// times (twice for its time limit, once to answer) and status twice.
/// Through the real server on a real socket; counted, not timed.
#[tokio::test]
async fn each_request_checks_the_config_files_once() {
    use pctl_protocol::{Connection, Envelope, Reply, Request, Response};
    let r = rig();
    r.broker.config().unwrap(); // as the daemon does when it starts
    let server = Served::start(&r);
    let sock = &server.sock;
    let requests = [
        Request::Credentials {
            role: "admin".into(),
            env: Some(env()),
            duration: None,
            region: None,
        },
        Request::Credentials {
            role: "admin".into(),
            env: None,
            duration: None,
            region: None,
        },
        Request::Credentials {
            role: "admin".into(),
            env: None,
            duration: None,
            region: None,
        },
        Request::Status,
        Request::Profiles,
    ];
    for request in requests {
        let before = r.broker.config_checks();
        let what = format!("{request:?}");
        let mut c = Connection::new(tokio::net::UnixStream::connect(sock).await.unwrap());
        c.send_async(&Envelope {
            version: pctl_protocol::VERSION.into(),
            request,
            setup: None,
            caller: None,
        })
        .await
        .unwrap();
        let body = c.read_body_async().await.unwrap();
        let resp: Response = serde_json::from_slice(&body).unwrap();
        assert!(
            matches!(
                resp,
                Response::Ok(Reply::Credentials(_) | Reply::Status(_) | Reply::Profiles(_))
            ),
            "{what}: {resp:?}"
        );
        let checks = r.broker.config_checks() - before;
        assert_eq!(checks, 1, "{what}: {checks} looks at the config's files");
    }
    // an edit is still seen by the very next request
    r.rewrite(&config_text("platform-other", "platform", ""));
    let a = r.creds(false).await.unwrap();
    assert_eq!(
        r.sts.calls("assume").last().map(String::as_str),
        Some(
            format!("assume arn:aws:iam::{ACCOUNT}:role/platform-other from AKIAFAKEFAKEFAKE0001")
                .as_str()
        ),
        "{a:?}"
    );
    server.stop().await;
}

/// Review finding (issue 16 §2): `Sts` had `assume_role` and
/// `assume_role_external`, whose default dropped ExternalId, SourceIdentity
/// and the session tags, so no fake ever saw them. One `assume_role` now
/// takes them: what the config sets reaches STS, for a role and for a
/// chained role assumed through it.
#[tokio::test(start_paused = true)]
async fn a_roles_external_id_source_identity_and_tags_reach_sts() {
    let text = config_text("platform-admin", "platform", "")
        + r#"
[roles.partner]
arn = "arn:aws:iam::111111111111:role/partner"
external_id = "ext-42"
source_identity = "alice"
tags = { team = "platform" }
transitive_tags = ["team"]
source_role = "admin"
"#;
    let r = rig_with(&text, source());
    let e = env();
    r.broker
        .credentials("partner", Some(&e), &peer())
        .await
        .unwrap();
    let calls = r.sts.calls("assume");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[0],
        format!("assume arn:aws:iam::{ACCOUNT}:role/platform-admin from AKIAFAKEFAKEFAKE0001"),
    );
    let want = AssumeExtras {
        external_id: Some("ext-42".into()),
        source_identity: Some("alice".into()),
        tags: vec![("team".into(), "platform".into())],
        transitive_tags: vec!["team".into()],
    };
    assert_eq!(
        calls[1],
        format!(
            "assume arn:aws:iam::111111111111:role/partner from ASIAFAKE00000000 with {want:?}"
        ),
    );
}

/// `status` says an identity uses no MFA once an unlock showed its item
/// has no MFA serial (as `pctl init` said of it), and keeps saying so
/// while locked; before the first unlock, and for an item with a serial,
/// it names where the code comes from.
#[tokio::test(start_paused = true)]
async fn status_says_no_mfa_for_an_item_without_a_serial() {
    let mfa = |r: &Rig| r.broker.status().identities[0].mfa.clone();
    let r = rig();
    assert_eq!(mfa(&r), "item", "nothing read yet");
    r.creds(true).await.unwrap();
    assert_eq!(mfa(&r), IdentityStatus::NO_MFA);
    r.broker.lock(LockReason::Manual);
    assert_eq!(mfa(&r), IdentityStatus::NO_MFA);

    let mut with_serial = source();
    with_serial.mfa = true;
    let r = rig_with(&config_text("platform-admin", "platform", ""), with_serial);
    r.creds(true).await.unwrap();
    assert_eq!(mfa(&r), "item");
}
