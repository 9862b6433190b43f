//! The daemon's side of `pctl doctor`: checks only the daemon can make the
//! way it works (the `op` it would run with the client's environment, the
//! config as it parses it, the item as the last unlock read it, the clock
//! against STS, mlock). Never unlocks, never reads a secret.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use pctl_protocol::{Check, ClientEnv};

use super::Broker;
use crate::config::{FieldLabels, OnePasswordConfig};
use crate::source::onepassword::{classify_error, resolve_op, spawn_op, OpError, RunFailure};

/// How long one `op --version` or `op whoami` may take: neither prompts.
const OP_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the STS round trip may take.
const STS_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock skew that starts to matter: one TOTP step is 30 s.
const SKEW_WARN: Duration = Duration::from_secs(10);
/// Clock skew that breaks MFA codes (and, from 5 minutes, SigV4).
const SKEW_FAIL: Duration = Duration::from_secs(60);
/// Proxy variables the daemon's HTTP client may use, shown by the STS check.
const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

impl Broker {
    /// Runs every daemon-side check, in the order `pctl doctor` prints them.
    pub async fn doctor(&self, env: &ClientEnv) -> Vec<Check> {
        let cfg = self.config();
        let mut checks = Vec::new();
        let op_cfg = match &cfg {
            Ok(c) => c.onepassword.clone(),
            Err(_) => default_op_config(),
        };
        checks.extend(op_checks(&op_cfg, &env.0).await);
        checks.push(match &cfg {
            Ok(c) => Check::ok(
                "config",
                format!(
                    "{} ({} roles, {} clusters; {})",
                    c.path.display(),
                    c.roles.len(),
                    c.clusters.len(),
                    crate::config::trust::verdict(&c.path)
                        .map(|t| t.describe())
                        .unwrap_or_else(|_| "changed since it was read".into())
                ),
            ),
            Err(e) => Check::fail(
                "config",
                e.to_string(),
                "fix the file, then run `pctl doctor` again (docs/interface.md lists every key)",
            ),
        });
        checks.extend(include_checks(&self.config_path));
        let status = self.status();
        checks.push(match (&cfg, status.locked) {
            (Err(_), _) => Check::warn(
                "item",
                "not checked: the config is not valid",
                "fix the config first",
            ),
            (Ok(c), true) => Check::warn(
                "item",
                format!(
                    "not checked: the daemon is locked ({}), and doctor never reads 1Password",
                    status.lock_reason.as_deref().unwrap_or("?")
                ),
                format!(
                    "run `pctl unlock` (reads '{}' in vault '{}'), then `pctl doctor` again",
                    c.onepassword.item, c.onepassword.vault
                ),
            ),
            (Ok(c), false) => Check::ok(
                "item",
                format!(
                    "'{}' in vault '{}' had every required field at the last unlock",
                    c.onepassword.item, c.onepassword.vault
                ),
            ),
        });
        for i in status.identities.iter().filter(|i| i.locked) {
            if let Some(why) = &i.last_unlock_failure {
                checks.push(Check::fail(
                    "unlock",
                    format!("identity {}: last unlock failed: {why}", i.name),
                    "fix what it says, then run `pctl unlock`",
                ));
            }
        }
        let region = cfg
            .as_ref()
            .map(|c| c.region.clone())
            .unwrap_or_else(|_| "us-east-1".into());
        checks.extend(sts_checks(&region).await);
        crate::platform::probe_mlock();
        checks.push(match crate::platform::mlock_failure() {
            None => Check::ok("mlock", "secret pages are locked in RAM (never swapped)"),
            Some(m) => Check::warn("mlock", m, "raise RLIMIT_MEMLOCK (see SECURITY.md)"),
        });
        checks
    }
}

/// One line per included file: its owner and mode, or why it is refused
/// (another owner, writable by others, in such a directory, missing).
fn include_checks(config: &Path) -> Vec<Check> {
    use crate::config::trust::{includes_of, verdict, Refused};
    includes_of(config)
        .into_iter()
        .map(|p| match verdict(&p) {
            Ok(t) => Check::ok(
                "include",
                format!(
                    "{} ({}): roles and clusters only",
                    p.display(),
                    t.describe()
                ),
            ),
            Err(Refused::Untrusted(why)) => Check::fail(
                "include",
                format!("refused: {why}"),
                "make it yours (or root's) and writable by you only, as said, or remove it \
                 from include",
            ),
            Err(Refused::NotFound) => Check::fail(
                "include",
                format!("{}: no such file", p.display()),
                "fix the path or remove it from include",
            ),
            Err(Refused::Unreadable(e)) => Check::fail(
                "include",
                format!("{}: cannot read: {e}", p.display()),
                "fix the path or remove it from include",
            ),
        })
        .collect()
}

fn default_op_config() -> OnePasswordConfig {
    OnePasswordConfig {
        item: String::new(),
        vault: String::new(),
        account: None,
        command: None,
        fields: FieldLabels::default(),
        read_otp: true,
    }
}

/// `op` found and safe, its version, and whether it is signed in.
async fn op_checks(cfg: &OnePasswordConfig, env: &BTreeMap<String, String>) -> Vec<Check> {
    let op = match resolve_op(cfg, env) {
        Ok(op) => op,
        Err(e) => {
            let fix = match &e {
                OpError::Unsafe { path, .. } => format!(
                    "`chmod go-w {path}` (and its directory), or set [onepassword] op_path to a copy only you and root can write"
                ),
                _ => "install the 1Password CLI (https://developer.1password.com/docs/cli/get-started/) or set [onepassword] op_path".into(),
            };
            return vec![
                Check::fail("op", e.to_string(), fix),
                Check::warn(
                    "op signed in",
                    "not checked: no usable `op`",
                    "fix `op` first",
                ),
            ];
        }
    };
    let shown = op.display();
    let version = match run_op(&op, &pctl_protocol::op::version_args(), env).await {
        Ok((true, out, _)) => Check::ok("op", format!("{shown}, version {}", first_line(&out))),
        Ok((false, _, err)) => Check::fail(
            "op",
            format!("{shown} --version failed: {}", first_line(&err)),
            "reinstall the 1Password CLI 2.x",
        ),
        Err(e) => Check::fail(
            "op",
            format!("{shown}: {e}"),
            "reinstall the 1Password CLI 2.x",
        ),
    };
    let args = pctl_protocol::op::whoami_args(cfg.account.as_deref());
    let signed_in = match run_op(&op, &args, env).await {
        Ok((true, out, _)) => {
            let who: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            let field = |k: &str| who.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
            Check::ok(
                "op signed in",
                format!("as {} ({})", field("email"), field("url")),
            )
        }
        Ok((false, _, err)) => match classify_error(&err, cfg) {
            OpError::NotSignedIn => Check::warn(
                "op signed in",
                "`op whoami`: no session in this environment",
                "with the 1Password app: Settings > Developer > Integrate with 1Password CLI (unlock will prompt); else `eval $(op signin)`",
            ),
            OpError::DesktopUnreachable => Check::fail(
                "op signed in",
                OpError::DesktopUnreachable.to_string(),
                "start and unlock the 1Password app",
            ),
            other => Check::fail(
                "op signed in",
                format!("`op whoami` failed: {other}"),
                "run `op whoami` in this shell to see why",
            ),
        },
        Err(e) => Check::fail(
            "op signed in",
            format!("`op whoami`: {e}"),
            "run `op whoami` in this shell to see why",
        ),
    };
    vec![version, signed_in]
}

fn first_line(s: &str) -> String {
    crate::aws::clean(s.lines().next().unwrap_or(""), 200)
}

/// Runs `op` like an unlock does (the daemon's one runner,
/// [`spawn_op`]), bounded in time and output: (success, stdout, stderr).
async fn run_op(
    op: &Path,
    args: &[String],
    env: &BTreeMap<String, String>,
) -> Result<(bool, String, String), String> {
    match spawn_op(op, args, None, env, OP_CHECK_TIMEOUT, 64 * 1024).await {
        Err(RunFailure::Spawn(e)) => Err(format!("cannot run it: {e}")),
        Err(RunFailure::Timeout) => Err(format!(
            "did not answer within {}s",
            OP_CHECK_TIMEOUT.as_secs()
        )),
        Err(RunFailure::Io(e)) => Err(format!("reading its output: {e}")),
        Ok(o) => Ok((
            o.success,
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )),
    }
}

/// Keeps the `Date` header of the last HTTP response.
#[derive(Debug, Default, Clone)]
struct DateHeader(Arc<Mutex<Option<String>>>);

impl Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "pctl-doctor-date"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let date = context.response().headers().get("date").map(str::to_string);
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = date;
        Ok(())
    }
}

/// STS reachable, and the local clock against the HTTP `Date` of its answer.
///
/// The request is a GetCallerIdentity signed with a placeholder key (no
/// secret of the user's is involved): STS answers it with an error, which
/// is enough for both checks. The endpoint is the one every STS call uses
/// (`AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, else the region's).
async fn sts_checks(region: &str) -> Vec<Check> {
    let proxies: Vec<String> = PROXY_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
        .collect();
    let proxies = if proxies.is_empty() {
        "no proxy variables".to_string()
    } else {
        proxies.join(" ")
    };
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIAPCTLDOCTOR000000",
            "pctl-doctor-placeholder",
            None,
            None,
            "pctl-doctor",
        ))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_timeout(STS_TIMEOUT)
                .build(),
        )
        .load()
        .await;
    let date = DateHeader::default();
    let conf = aws_sdk_sts::config::Builder::from(&sdk)
        .interceptor(date.clone())
        .build();
    let endpoint = sdk
        .endpoint_url()
        .map(str::to_string)
        .unwrap_or_else(|| format!("the STS endpoint of {region}"));
    let sent = SystemTime::now();
    let result = aws_sdk_sts::Client::from_conf(conf)
        .get_caller_identity()
        .send()
        .await;
    let received = SystemTime::now();
    let header = date.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(header) = header else {
        let why = match result {
            Err(e) => crate::aws::describe(&e),
            Ok(_) => "no Date header in the answer".into(),
        };
        return vec![
            Check::fail(
                "sts",
                format!("cannot reach {endpoint}: {why} ({proxies})"),
                "check the network, the proxy variables of the daemon's environment, or AWS_ENDPOINT_URL",
            ),
            Check::warn("clock", "not checked: STS did not answer", "fix STS reachability first"),
        ];
    };
    let reach = Check::ok("sts", format!("{endpoint} answered ({proxies})"));
    let clock = match parse_http_date(&header) {
        None => Check::warn(
            "clock",
            format!(
                "cannot read STS's Date header {:?}",
                crate::aws::clean(&header, 60)
            ),
            "check the endpoint is STS",
        ),
        Some(theirs) => {
            // The server stamped its Date somewhere between sending and receiving.
            let mid = sent + received.duration_since(sent).unwrap_or_default() / 2;
            skew_check(mid, theirs)
        }
    };
    vec![reach, clock]
}

/// Parses an HTTP date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), format)
        .ok()
        .map(|t| t.assume_utc().into())
}

/// Judges the difference between this machine's clock and STS's.
fn skew_check(ours: SystemTime, theirs: SystemTime) -> Check {
    let (skew, dir) = match ours.duration_since(theirs) {
        Ok(d) => (d, "ahead of"),
        Err(e) => (e.duration(), "behind"),
    };
    let secs = skew.as_secs();
    let detail = format!("this machine is {secs}s {dir} STS");
    let fix = "turn on time synchronisation (timedatectl set-ntp true; macOS: Settings > General > Date & Time)";
    if skew > SKEW_FAIL {
        Check::fail(
            "clock",
            format!("{detail}: MFA codes fail beyond one 30 s step, AWS refuses signatures beyond 5 min"),
            fix,
        )
    } else if skew > SKEW_WARN {
        Check::warn("clock", format!("{detail}: MFA codes may be refused"), fix)
    } else {
        Check::ok("clock", format!("within {secs}s of STS"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pctl_protocol::Level;

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 784111777);
        assert!(parse_http_date("yesterday").is_none());
        assert!(parse_http_date("Sun, 06 Nov 1994 08:49:37 +0100").is_none());
    }

    #[test]
    fn skew_levels() {
        let now = SystemTime::now();
        assert_eq!(skew_check(now, now).level, Level::Ok);
        let warn = skew_check(now, now + Duration::from_secs(20));
        assert_eq!(warn.level, Level::Warn);
        assert!(warn.detail.contains("20s behind"), "{}", warn.detail);
        let fail = skew_check(now, now - Duration::from_secs(3600));
        assert_eq!(fail.level, Level::Fail);
        assert!(fail.detail.contains("3600s ahead of"), "{}", fail.detail);
    }
}
