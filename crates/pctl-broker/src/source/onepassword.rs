//! Reads the IAM user's keys, MFA serial, current TOTP and account ID from
//! 1Password with a single `op item get --format json` call.
//!
//! `op` runs with an argv list (no shell), stdin from /dev/null, only the
//! requesting client's forwarded environment, in a process group of its own
//! (killed whole), and a timeout. Its stdout is read into a buffer that is
//! wiped after parsing; its errors are classified into actionable messages
//! and never echoed raw.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pctl_protocol::{op, ClientEnv};
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use super::{BoxFuture, CredentialSource, ItemSecrets, Mfa, SourceError, SourceRead};
use crate::config::{Config, IdentityConfig, OnePasswordConfig};
use crate::platform::GroupChild;
use crate::secret::LockedString;

/// Why 1Password could not be read. Messages are safe to show and log.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OpError {
    #[error("`op` (the 1Password CLI) was not found on PATH: install it (https://developer.1password.com/docs/cli/get-started/) or set [onepassword] op_path in the pctl config")]
    NotFound,
    #[error("refusing to run `op` at {path}: {why}, so another account or program could replace it: fix it (chmod go-w, chown) or set [onepassword] op_path to a safe copy")]
    Unsafe { path: String, why: String },
    #[error("1Password is not signed in: run `op signin` (or unlock the 1Password desktop app with CLI integration on), then `pctl unlock`")]
    NotSignedIn,
    #[error("1Password item '{item}' not found in vault '{vault}': check [onepassword] item in the pctl config (name or ID)")]
    ItemNotFound { item: String, vault: String },
    #[error("1Password vault '{0}' not found: check [onepassword] vault in the pctl config (name or ID)")]
    VaultNotFound(String),
    #[error("more than one 1Password item matches '{0}': set [onepassword] item to the item's ID (`op item list` shows it)")]
    Ambiguous(String),
    #[error("the 1Password authorization prompt was dismissed: run `pctl unlock` and approve it")]
    Dismissed,
    #[error("1Password authorization timed out (nobody approved the prompt): run `pctl unlock` and approve it in the 1Password app")]
    AuthTimeout,
    #[error("cannot reach the 1Password desktop app: start and unlock it, enable Settings > Developer > Integrate with 1Password CLI, then `pctl unlock`")]
    DesktopUnreachable,
    #[error("1Password rate limit reached (service accounts have hourly read limits): wait a few minutes, then `pctl unlock`")]
    RateLimited,
    #[error("`op` did not answer within {0}: approve the 1Password prompt if one is open, then `pctl unlock`")]
    Timeout(String),
    #[error("`op item get` failed: {0}")]
    Other(String),
    #[error("1Password returned output that is not an item (is `op` the 1Password CLI 2.x?)")]
    Malformed,
    #[error("field '{field}' missing in 1Password item '{item}': add it, or set [onepassword.fields] {key} in the pctl config")]
    MissingField {
        field: String,
        item: String,
        key: &'static str,
    },
    #[error("field '{field}' in 1Password item '{item}' {what}")]
    BadField {
        field: String,
        item: String,
        what: String,
    },
}

impl OpError {
    /// Whether a retry might help (transient network trouble only; never a
    /// refusal by the user).
    pub fn transient(&self) -> bool {
        matches!(self, OpError::Other(m) if op::transient(m))
    }
}

impl From<OpError> for SourceError {
    fn from(e: OpError) -> Self {
        SourceError {
            message: e.to_string(),
            origin: None,
        }
    }
}

/// 1Password as a [`CredentialSource`]: one `op item get` per unlock
/// (two when the first fails with transient network trouble).
#[derive(Default)]
pub struct OnePassword {
    runs: AtomicU64,
}

impl CredentialSource for OnePassword {
    fn read<'a>(
        &'a self,
        identity: &'a IdentityConfig,
        cfg: &'a Config,
        env: &'a ClientEnv,
    ) -> BoxFuture<'a, Result<SourceRead, SourceError>> {
        Box::pin(async move {
            let item_cfg = &identity.onepassword;
            let op = resolve_op(item_cfg, &env.0).map_err(SourceError::from)?;
            let origin = op.display().to_string();
            let wrap = |e: OpError| SourceError {
                message: e.to_string(),
                origin: Some(origin.clone()),
            };
            tracing::info!(
                "reading 1Password item of identity {} ({origin} item get)",
                identity.name
            );
            self.runs.fetch_add(1, Ordering::Relaxed);
            let mut item = read_item(&op, item_cfg, &env.0, cfg.daemon.op_timeout).await;
            if matches!(&item, Err(e) if e.transient()) {
                self.runs.fetch_add(1, Ordering::Relaxed);
                item = read_item(&op, item_cfg, &env.0, cfg.daemon.op_timeout).await;
            }
            let secrets = item.map_err(wrap)?;
            Ok(SourceRead {
                secrets,
                origin: Some(origin),
            })
        })
    }

    fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
}

/// The `op` to run (see [`pctl_protocol::op_path`] for the rule): `op_path`
/// from the config, else the first `op` on the client's PATH. Resolved once
/// per unlock, so a project directory's `op` is never picked up between
/// unlocks.
pub fn resolve_op(
    cfg: &OnePasswordConfig,
    env: &BTreeMap<String, String>,
) -> Result<PathBuf, OpError> {
    use pctl_protocol::op_path::{self, OpPathError};
    op_path::resolve(cfg.command.as_deref(), env.get("PATH").map(String::as_str)).map_err(|e| {
        match e {
            OpPathError::NotFound => OpError::NotFound,
            OpPathError::Unsafe { path, why } => OpError::Unsafe { path, why },
        }
    })
}

/// Which item of `cfg` the `op item` commands are about.
fn item_ref(cfg: &OnePasswordConfig) -> op::ItemRef<'_> {
    op::ItemRef {
        item: &cfg.item,
        vault: Some(&cfg.vault),
        account: cfg.account.as_deref(),
    }
}

/// The argv for one read of the item ([`op::item_get_args`]).
pub fn op_args(cfg: &OnePasswordConfig) -> Vec<String> {
    op::item_get_args(item_ref(cfg))
}

/// Runs `op` once and extracts the secrets.
pub async fn read_item(
    op: &Path,
    cfg: &OnePasswordConfig,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<ItemSecrets, OpError> {
    let out = run_op(op, &op_args(cfg), None, cfg, env, timeout).await?;
    parse_item(&out, cfg)
}

/// What one `op` run gave: whether it succeeded, its stdout (wiped when
/// dropped) and its stderr.
pub(crate) struct OpOutput {
    pub success: bool,
    pub stdout: Zeroizing<Vec<u8>>,
    pub stderr: Vec<u8>,
}

/// Why `op` gave no output.
#[derive(Debug)]
pub(crate) enum RunFailure {
    /// It could not be started.
    Spawn(std::io::Error),
    /// Killed after the timeout.
    Timeout,
    /// Reading its output failed.
    Io(std::io::Error),
}

/// The one `op` runner of the daemon (unlock, rotation, doctor): the
/// process of [`op::command`] (argv, no shell, only the forwarded
/// environment, stdin from /dev/null unless `stdin` is given, then written
/// and closed) in a process group of its own, killed with everything it
/// started ([`GroupChild`]) after `timeout` or when the future is dropped.
/// Stdout is read up to `max_out` bytes, stderr up to 64 KiB.
pub(crate) async fn spawn_op(
    op: &Path,
    args: &[String],
    stdin: Option<&[u8]>,
    env: &BTreeMap<String, String>,
    timeout: Duration,
    max_out: u64,
) -> Result<OpOutput, RunFailure> {
    let mut child = GroupChild::spawn(&mut tokio::process::Command::from(op::command(
        op,
        args,
        env,
        stdin.is_some(),
    )))
    .map_err(RunFailure::Spawn)?;
    let mut input = child.stdin.take();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let mut out = Zeroizing::new(Vec::with_capacity(16 * 1024));
    let mut err = Vec::new();
    let run = async {
        let write = async {
            if let (Some(w), Some(data)) = (input.as_mut(), stdin) {
                use tokio::io::AsyncWriteExt;
                let _ = w.write_all(data).await;
                let _ = w.shutdown().await;
            }
            drop(input.take());
        };
        let mut out_r = (&mut stdout).take(max_out);
        let mut err_r = (&mut stderr).take(64 * 1024);
        let ((), a, b) = tokio::join!(
            write,
            out_r.read_to_end(&mut out),
            err_r.read_to_end(&mut err)
        );
        a.and(b)?;
        child.wait().await
    };
    match tokio::time::timeout(timeout, run).await {
        // `child` is dropped on return: its group is killed
        Err(_) => Err(RunFailure::Timeout),
        Ok(Err(e)) => Err(RunFailure::Io(e)),
        Ok(Ok(status)) => Ok(OpOutput {
            success: status.success(),
            stdout: out,
            stderr: err,
        }),
    }
}

/// Runs `op` with `args` ([`spawn_op`]); the output, or the classified error.
async fn run_op(
    op: &Path,
    args: &[String],
    stdin: Option<&[u8]>,
    cfg: &OnePasswordConfig,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    match spawn_op(op, args, stdin, env, timeout, 4 * 1024 * 1024).await {
        Err(RunFailure::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(OpError::NotFound)
        }
        Err(RunFailure::Spawn(e)) => {
            Err(OpError::Other(format!("cannot run {}: {e}", op.display())))
        }
        Err(RunFailure::Timeout) => Err(OpError::Timeout(
            humantime::format_duration(timeout).to_string(),
        )),
        Err(RunFailure::Io(e)) => Err(OpError::Other(format!("talking to op: {e}"))),
        Ok(o) if !o.success => Err(classify_error(&String::from_utf8_lossy(&o.stderr), cfg)),
        Ok(o) => Ok(o.stdout),
    }
}

/// Wipes every string of a JSON value (the item held secrets).
fn wipe(v: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(wipe),
        serde_json::Value::Object(o) => o.values_mut().for_each(wipe),
        _ => {}
    }
}

/// Writes a new access key into the item without the secret in any argv:
/// `op item get` (the whole item as JSON), the two fields' values
/// replaced, then `op item edit --vault=V [--account=A] --template=/dev/stdin
/// --format=json -- ITEM` with that JSON on standard input.
pub async fn write_keys(
    op: &Path,
    cfg: &OnePasswordConfig,
    env: &BTreeMap<String, String>,
    timeout: Duration,
    access_key_id: &str,
    secret_access_key: &str,
) -> Result<(), OpError> {
    let raw = run_op(op, &op_args(cfg), None, cfg, env, timeout).await?;
    let mut item: serde_json::Value =
        serde_json::from_slice(&raw).map_err(|_| OpError::Malformed)?;
    let mut set = |label: &str, value: &str| -> bool {
        let Some(fields) = item.get_mut("fields").and_then(|f| f.as_array_mut()) else {
            return false;
        };
        let mut found = false;
        for f in fields.iter_mut() {
            let matches = f
                .get("label")
                .and_then(|l| l.as_str())
                .is_some_and(|l| l.eq_ignore_ascii_case(label));
            if matches && !found {
                f["value"] = serde_json::Value::String(value.to_string());
                found = true;
            }
        }
        found
    };
    let ok = set(&cfg.fields.access_key_id, access_key_id)
        && set(&cfg.fields.secret_access_key, secret_access_key);
    if !ok {
        wipe(&mut item);
        return Err(OpError::MissingField {
            field: format!(
                "{} / {}",
                cfg.fields.access_key_id, cfg.fields.secret_access_key
            ),
            item: cfg.item.clone(),
            key: "access_key_id",
        });
    }
    let template = Zeroizing::new(serde_json::to_vec(&item).map_err(|_| OpError::Malformed)?);
    wipe(&mut item);
    let args = op::item_edit_args(item_ref(cfg));
    run_op(op, &args, Some(&template), cfg, env, timeout).await?;
    Ok(())
}

/// Maps `op`'s stderr ([`op::classify`]) to an actionable error naming
/// the configured item and vault.
pub fn classify_error(stderr: &str, cfg: &OnePasswordConfig) -> OpError {
    use op::OpFailure as F;
    match op::classify(stderr) {
        F::NotSignedIn => OpError::NotSignedIn,
        F::ItemNotFound => OpError::ItemNotFound {
            item: cfg.item.clone(),
            vault: cfg.vault.clone(),
        },
        F::VaultNotFound => OpError::VaultNotFound(cfg.vault.clone()),
        F::Ambiguous => OpError::Ambiguous(cfg.item.clone()),
        F::Dismissed => OpError::Dismissed,
        F::AuthTimeout => OpError::AuthTimeout,
        F::DesktopUnreachable => OpError::DesktopUnreachable,
        F::RateLimited => OpError::RateLimited,
        F::Silent => OpError::Other("op exited with an error and printed nothing".into()),
        F::Other(m) => OpError::Other(m),
    }
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    fields: Vec<Field>,
}

#[derive(Deserialize)]
struct Field {
    #[serde(default)]
    label: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    value: Option<Zeroizing<String>>,
    #[serde(default)]
    totp: Option<Zeroizing<String>>,
}

/// Extracts the secrets from `op item get --format json` output.
pub fn parse_item(json: &[u8], cfg: &OnePasswordConfig) -> Result<ItemSecrets, OpError> {
    let item: Item = serde_json::from_slice(json).map_err(|_| OpError::Malformed)?;
    let labels = &cfg.fields;
    let find = |label: &str| {
        let mut matches = item.fields.iter().filter(|f| {
            f.label
                .as_deref()
                .is_some_and(|l| l.eq_ignore_ascii_case(label))
        });
        let first = matches.next();
        // Prefer a field that has a value when a label repeats across sections.
        std::iter::once(first)
            .flatten()
            .chain(matches)
            .find(|f| f.value.as_ref().is_some_and(|v| !v.trim().is_empty()) || f.totp.is_some())
            .or(first)
    };
    let missing = |field: &str, key: &'static str| OpError::MissingField {
        field: field.to_string(),
        item: cfg.item.clone(),
        key,
    };
    let value = |label: &str, key: &'static str| -> Result<Zeroizing<String>, OpError> {
        let f = find(label).ok_or_else(|| missing(label, key))?;
        match &f.value {
            Some(v) if !v.trim().is_empty() => Ok(Zeroizing::new(v.trim().to_string())),
            _ => Err(OpError::BadField {
                field: label.into(),
                item: cfg.item.clone(),
                what: "is empty: fill it in 1Password".into(),
            }),
        }
    };

    let akid = value(&labels.access_key_id, "access_key_id")?;
    if !(16..=128).contains(&akid.len()) || !akid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(OpError::BadField {
            field: labels.access_key_id.clone(),
            item: cfg.item.clone(),
            what: "does not look like an access key ID (AKIA...)".into(),
        });
    }
    let secret = value(&labels.secret_access_key, "secret_access_key")?;
    let account = value(&labels.account_id, "account_id")?;
    let account_id = pctl_protocol::names::account_id_digits(&account);
    if !pctl_protocol::names::is_account_id(&account_id) {
        return Err(OpError::BadField {
            field: labels.account_id.clone(),
            item: cfg.item.clone(),
            what: "is not a 12-digit AWS account ID".into(),
        });
    }

    let serial = find(&labels.mfa_serial)
        .and_then(|f| f.value.as_ref())
        .filter(|v| !v.trim().is_empty());
    // mfa = "prompt" / "process": only the serial; the code comes from elsewhere.
    let otp = if cfg.read_otp {
        find(&labels.totp)
    } else {
        None
    };
    let mfa = match (serial, otp) {
        (Some(serial), None) if !cfg.read_otp => Some(Mfa {
            serial: serial.trim().to_string(),
            code: LockedString::new(""),
        }),
        (None, None) => None,
        (Some(_), None) => return Err(missing(&labels.totp, "totp")),
        (None, Some(_)) => return Err(missing(&labels.mfa_serial, "mfa_serial")),
        (Some(serial), Some(otp)) => {
            let code = otp
                .totp
                .as_ref()
                .or(if otp.kind.as_deref() == Some("OTP") {
                    None
                } else {
                    otp.value.as_ref()
                })
                .filter(|c| c.len() == 6 && c.chars().all(|ch| ch.is_ascii_digit()))
                .ok_or_else(|| OpError::BadField {
                    field: labels.totp.clone(),
                    item: cfg.item.clone(),
                    what: "has no current 6-digit code: make it a one-time password field".into(),
                })?;
            Some(Mfa {
                serial: serial.trim().to_string(),
                code: LockedString::new(code),
            })
        }
    };
    Ok(ItemSecrets {
        access_key_id: LockedString::new(&akid),
        secret_access_key: LockedString::new(&secret),
        account_id,
        mfa,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FieldLabels;

    pub(super) fn cfg() -> OnePasswordConfig {
        OnePasswordConfig {
            item: "AWS user key".into(),
            vault: "Private".into(),
            account: None,
            command: None,
            fields: FieldLabels::default(),
            read_otp: true,
        }
    }

    const ITEM: &str = r#"{
  "id": "abc", "title": "AWS user key", "category": "LOGIN",
  "vault": {"id": "v1", "name": "Private"},
  "fields": [
    {"id": "a", "type": "STRING", "label": "access key id", "value": "AKIAIOSFODNN7EXAMPLE"},
    {"id": "b", "type": "CONCEALED", "label": "Secret Access Key", "value": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
    {"id": "c", "type": "STRING", "label": "MFA Serial", "value": "arn:aws:iam::ACCOUNT:mfa/dev"},
    {"id": "d", "type": "OTP", "label": "One-Time Password", "value": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP", "totp": "123456"},
    {"id": "e", "type": "STRING", "label": "Account ID", "value": "1234-5678-9012"}
  ]
}"#;

    #[test]
    fn parses_the_aws_item() {
        let s = parse_item(ITEM.as_bytes(), &cfg()).unwrap();
        assert_eq!(s.access_key_id.expose(), "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(s.account_id, "1234-5678-9012".replace('-', ""));
        let mfa = s.mfa.as_ref().unwrap();
        assert_eq!(mfa.code.expose(), "123456");
        assert_eq!(mfa.serial, "arn:aws:iam::ACCOUNT:mfa/dev");
    }

    #[test]
    fn missing_fields_are_named() {
        let no_secret = ITEM.replace("Secret Access Key", "Something");
        let e = parse_item(no_secret.as_bytes(), &cfg()).err().unwrap();
        assert!(e.to_string().contains("'Secret Access Key' missing"), "{e}");
        let no_serial = ITEM.replace("MFA Serial", "Other");
        let e = parse_item(no_serial.as_bytes(), &cfg()).err().unwrap();
        assert!(e.to_string().contains("'MFA Serial' missing"), "{e}");
    }

    #[test]
    fn malformed_output_does_not_echo_it() {
        let e = parse_item(b"{\"fields\": [ {\"value\": \"wJalrXUtnFEMI", &cfg())
            .err()
            .unwrap();
        assert_eq!(e, OpError::Malformed);
        assert!(!e.to_string().contains("wJalr"));
    }

    #[test]
    fn classifies_reference_errors() {
        let c = cfg();
        let cases = [
            ("[ERROR] 2026/11/25 10:00:00 You are not currently signed in. Please run `op signin --help` for instructions", OpError::NotSignedIn),
            ("[ERROR] account is not signed in", OpError::NotSignedIn),
            ("[ERROR] 2026/11/25 10:00:00 \"AWS user key\" isn't an item in the \"Private\" vault. Specify the item with its UUID, name, or domain.", OpError::ItemNotFound { item: "AWS user key".into(), vault: "Private".into() }),
            ("[ERROR] 2026/11/25 10:00:00 \"Private\" isn't a vault in this account. Specify the vault with its ID or name.", OpError::VaultNotFound("Private".into())),
            ("[ERROR] 2026/11/25 10:00:00 More than one item matches \"AWS user key\". Try again and specify the item by its ID:\n\t* for the item \"AWS user key\" in vault Private: abc", OpError::Ambiguous("AWS user key".into())),
            ("[ERROR] 2026/11/25 10:00:00 error initializing client: authorization prompt dismissed, please try again", OpError::Dismissed),
            ("[ERROR] 2026/11/25 10:00:00 error initializing client: authorization timeout", OpError::AuthTimeout),
            ("[ERROR] 2026/11/25 10:00:00 connecting to desktop app: 1Password CLI couldn't connect to the 1Password desktop app. ...", OpError::DesktopUnreachable),
            ("[ERROR] 2026/11/25 10:00:00 (429) Too Many Requests", OpError::RateLimited),
        ];
        for (stderr, want) in cases {
            assert_eq!(classify_error(stderr, &c), want, "{stderr}");
        }
        let hostile = classify_error(
            "[ERROR] 2026/11/25 10:00:00 bad\x1b]0;pwned\x07 \rX\u{2028}Y\x0bZ",
            &c,
        );
        let OpError::Other(m) = &hostile else {
            panic!("{hostile:?}")
        };
        assert!(
            !m.chars().any(|ch| ch.is_control() || ch == '\u{2028}'),
            "{m:?}"
        );
        assert!(m.starts_with("bad") && m.ends_with('Z'), "{m:?}");
        let other = classify_error("[ERROR] 2026/11/25 10:00:00 something new", &c);
        assert_eq!(other, OpError::Other("something new".into()));
        assert!(!other.to_string().contains("[ERROR]"));
    }

    #[test]
    fn timestamp_prefix_with_multibyte_garbage_does_not_panic() {
        // fuzz/artifacts: a stamp whose seconds are U+FFFD straddling byte 19
        let line = "[ERROR] 2026/11/25 10:00:\u{fffd}\u{fffd} than one item";
        assert!(matches!(classify_error(line, &cfg()), OpError::Other(_)));
        assert_eq!(
            classify_error("[ERROR] 2026/11/25 10:00:00 boom", &cfg()),
            OpError::Other("boom".into())
        );
    }

    #[test]
    fn default_labels_are_the_shared_ones() {
        use pctl_protocol::op::labels;
        let d = FieldLabels::default();
        assert_eq!(d.access_key_id, labels::ACCESS_KEY_ID);
        assert_eq!(d.secret_access_key, labels::SECRET_ACCESS_KEY);
        assert_eq!(d.account_id, labels::ACCOUNT_ID);
        assert_eq!(d.mfa_serial, labels::MFA_SERIAL);
        assert_eq!(d.totp, labels::TOTP);
    }

    /// The argv itself (flags with `=`, the item after `--`, no shell) is
    /// tested once, beside the builder: `pctl_protocol::op`'s
    /// `argv_values_are_flags_with_equals_and_the_item_follows_the_double_dash`.
    /// Here only what the daemon adds: which config fields name the item.
    #[test]
    fn the_item_is_the_configured_item_vault_and_account() {
        use pctl_protocol::op::ItemRef;
        let mut c = cfg();
        let mut want = ItemRef {
            item: "AWS user key",
            vault: Some("Private"),
            account: None,
        };
        assert_eq!(item_ref(&c), want);
        c.account = Some("my.1password.com".into());
        want.account = Some("my.1password.com");
        assert_eq!(item_ref(&c), want);
    }

    fn write_exe(dir: &Path, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("op");
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn env_path(dirs: &[&Path]) -> BTreeMap<String, String> {
        let joined = std::env::join_paths(dirs).unwrap();
        BTreeMap::from([("PATH".to_string(), joined.into_string().unwrap())])
    }

    /// Review finding (issue 16 §2): the timeout killed only `op`, and a
    /// program `op` started (the desktop app's integration helper) lived on.
    /// `op` now leads a process group of its own, killed whole.
    #[tokio::test]
    async fn a_timed_out_op_takes_what_it_started_with_it() {
        use crate::platform::group_testing::{child_of_a_timed_out_run, ends, script_with_a_child};
        let dir = tempfile::tempdir().unwrap();
        let (op, pidfile) = script_with_a_child(dir.path());
        let pid = child_of_a_timed_out_run(&pidfile, |timeout| {
            let op = op.clone();
            async move {
                let r = spawn_op(&op, &[], None, &BTreeMap::new(), timeout, 1024).await;
                assert!(matches!(r, Err(RunFailure::Timeout)), "{:?}", r.err());
            }
        })
        .await;
        assert!(ends(pid), "a program op started outlived op's timeout");
    }

    #[test]
    fn resolves_op_to_an_absolute_path_once() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let op = write_exe(t.path(), 0o755);
        let got = resolve_op(&cfg(), &env_path(&[Path::new("relative"), t.path()])).unwrap();
        assert_eq!(got, std::fs::canonicalize(op).unwrap());
        assert!(got.is_absolute());
    }

    #[test]
    fn refuses_a_writable_op_or_directory() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        write_exe(t.path(), 0o777);
        let e = resolve_op(&cfg(), &env_path(&[t.path()])).unwrap_err();
        assert!(
            matches!(&e, OpError::Unsafe { why, .. } if why.contains("everyone")),
            "{e}"
        );
        assert!(e.to_string().contains("op_path"), "{e}");

        let t2 = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t2.path(), std::fs::Permissions::from_mode(0o775)).unwrap();
        write_exe(t2.path(), 0o755);
        let e = resolve_op(&cfg(), &env_path(&[t2.path()])).unwrap_err();
        assert!(
            matches!(&e, OpError::Unsafe { why, .. } if why.contains("directory")),
            "{e}"
        );

        // op_path from the config is checked the same way, and must be absolute.
        let mut c = cfg();
        c.command = Some(t2.path().join("op"));
        assert!(matches!(
            resolve_op(&c, &BTreeMap::new()),
            Err(OpError::Unsafe { .. })
        ));
        c.command = Some(PathBuf::from("bin/op"));
        assert!(matches!(
            resolve_op(&c, &BTreeMap::new()),
            Err(OpError::Unsafe { .. })
        ));
    }
}

#[cfg(test)]
mod props {
    //! Property tests: `op` output is input pctl does not control (a wrong
    //! `op` on PATH, a future CLI version, a hostile binary).
    use super::tests::cfg;
    use super::*;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = serde_json::Value> {
        let labels = prop::sample::select(vec![
            "Access Key ID",
            "secret access key",
            "MFA Serial",
            "One-Time Password",
            "Account ID",
            "notes",
        ]);
        (
            labels,
            prop::option::of("[ -~]{0,64}"),
            prop::option::of("[0-9a-z]{0,8}"),
            prop::bool::ANY,
        )
            .prop_map(|(label, value, totp, otp)| {
                let mut f = serde_json::json!({"id": "x", "label": label,
                    "type": if otp { "OTP" } else { "CONCEALED" }});
                if let Some(v) = value {
                    f["value"] = v.into();
                }
                if let Some(t) = totp {
                    f["totp"] = t.into();
                }
                f
            })
    }

    proptest! {
        #[test]
        fn parse_item_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let _ = parse_item(&bytes, &cfg());
        }

        /// Whatever the item holds, an error never repeats a field's value.
        #[test]
        fn parse_item_errors_never_echo_values(fields in prop::collection::vec(field(), 0..8)) {
            let item = serde_json::json!({"id": "i", "title": "AWS user key", "fields": fields});
            let text = serde_json::to_vec(&item).unwrap();
            if let Err(e) = parse_item(&text, &cfg()) {
                let msg = e.to_string();
                for f in &fields {
                    for key in ["value", "totp"] {
                        if let Some(v) = f.get(key).and_then(|v| v.as_str()) {
                            let v = v.trim();
                            // Short values (and ones that are words of pctl's own
                            // messages) can match by accident; real secrets cannot.
                            if v.len() >= 12 {
                                prop_assert!(!msg.contains(v), "{msg:?} echoes {v:?}");
                            }
                        }
                    }
                }
            }
        }

        /// Classified errors are one line of printable text, whatever `op` printed.
        #[test]
        fn classify_error_is_one_printable_line(stderr in "(?s).{0,400}") {
            let msg = classify_error(&stderr, &cfg()).to_string();
            prop_assert!(!msg.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'), "{msg:?}");
            prop_assert!(msg.chars().count() <= 600);
        }
    }
}
