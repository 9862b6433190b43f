//! The client's own `op` (1Password CLI) calls, for `pctl init`, which runs
//! before any config (and so before any daemon can read 1Password).
//!
//! The daemon's rules apply: `op` is an absolute path that others cannot
//! replace ([`pctl_protocol::op_path`]); it runs with an argv list (no
//! shell), stdin from /dev/null and only the 1Password variables of the
//! environment; values ride as `--flag=value` and the item name comes after
//! `--`, so a name starting with `-` is never a flag. Its output is wiped
//! after parsing, and its errors are shown as one clean line, never raw.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Result};
use pctl_protocol::op_path::{self, OpPathError};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The categories `pctl init` offers: where 1Password keeps AWS keys.
pub const CATEGORIES: &str = "API Credential,Login";

/// Field labels pctl reads (the daemon's defaults, 1Password's AWS convention).
pub const ACCESS_KEY_ID: &str = "Access Key ID";
pub const SECRET_ACCESS_KEY: &str = "Secret Access Key";
pub const ACCOUNT_ID: &str = "Account ID";
pub const MFA_SERIAL: &str = "MFA Serial";
pub const TOTP: &str = "One-Time Password";
const REGION_LABELS: [&str; 2] = ["Default Region", "Region"];

/// A resolved, trusted `op`.
pub struct Op {
    path: PathBuf,
}

/// One entry of `op item list --format json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedItem {
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub vault: VaultRef,
    #[serde(default)]
    pub category: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VaultRef {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// What `pctl init` learns from reading the item once: names, never values
/// (except the region, which is not a secret).
#[derive(Debug)]
pub struct CheckedItem {
    pub title: String,
    pub vault: String,
    /// The item's "Default Region" (or "Region") field.
    pub region: Option<String>,
    /// Whether it carries an MFA serial and a one-time password.
    pub mfa: bool,
}

#[derive(Deserialize)]
struct FullItem {
    #[serde(default)]
    title: String,
    vault: VaultRef,
    #[serde(default)]
    fields: Vec<Field>,
}

#[derive(Deserialize)]
struct Field {
    label: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<Zeroizing<String>>,
    totp: Option<Zeroizing<String>>,
}

impl Field {
    fn filled(&self) -> bool {
        self.value.as_ref().is_some_and(|v| !v.trim().is_empty())
            || self.totp.as_ref().is_some_and(|v| !v.is_empty())
    }
}

impl Op {
    /// The first trusted `op` on PATH.
    pub fn find() -> Result<Op> {
        let path_var = std::env::var("PATH").ok();
        match op_path::resolve(None, path_var.as_deref()) {
            Ok(path) => Ok(Op { path }),
            Err(OpPathError::NotFound) => bail!(
                "`op` (the 1Password CLI) was not found on PATH: install it \
                 (https://developer.1password.com/docs/cli/get-started/) and run pctl init again"
            ),
            Err(OpPathError::Unsafe { path, why }) => bail!(
                "refusing to run `op` at {path}: {why}, so another account or program could \
                 replace it: fix it (chmod go-w, chown) and run pctl init again"
            ),
        }
    }

    /// API Credential and Login items (of `vault`, else of every vault).
    pub fn list_items(&self, vault: Option<&str>) -> Result<Vec<ListedItem>> {
        let mut args = vec![
            "item".to_string(),
            "list".into(),
            format!("--categories={CATEGORIES}"),
            "--format=json".into(),
        ];
        if let Some(v) = vault {
            args.push(format!("--vault={v}"));
        }
        let out = self.run(&args, "op item list")?;
        serde_json::from_slice(&out).map_err(|_| {
            anyhow!("`op item list` printed something that is not a list of items (is `op` the 1Password CLI 2.x?)")
        })
    }

    /// Reads `item` once and checks the fields pctl needs are there and filled.
    pub fn check_item(&self, item: &str, vault: Option<&str>) -> Result<CheckedItem> {
        let mut args = vec!["item".to_string(), "get".into(), "--format=json".into()];
        if let Some(v) = vault {
            args.push(format!("--vault={v}"));
        }
        args.push("--".into());
        args.push(item.to_string());
        let out = self.run(&args, "op item get")?;
        let full: FullItem = serde_json::from_slice(&out).map_err(|_| {
            anyhow!("`op item get` printed something that is not an item (is `op` the 1Password CLI 2.x?)")
        })?;
        check_fields(&full)
    }

    /// Runs `op` with `args`; its stdout (wiped when dropped) or one clean error line.
    fn run(&self, args: &[String], what: &str) -> Result<Zeroizing<Vec<u8>>> {
        let out = Command::new(&self.path)
            .args(args)
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| pctl_protocol::forwarded_env_name(k)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| anyhow!("cannot run {}: {e}", self.path.display()))?;
        let stdout = Zeroizing::new(out.stdout);
        if !out.status.success() {
            bail!(
                "{what} failed: {}",
                explain(&String::from_utf8_lossy(&out.stderr))
            );
        }
        Ok(stdout)
    }
}

/// Checks a read item: every required field present and filled, the
/// account ID 12 digits, MFA serial and one-time password both or neither.
fn check_fields(item: &FullItem) -> Result<CheckedItem> {
    let find = |label: &str| {
        item.fields.iter().find(|f| {
            f.label
                .as_deref()
                .is_some_and(|l| l.eq_ignore_ascii_case(label))
                && f.filled()
        })
    };
    // Titles come from whoever can edit the vault: shown through the one sanitiser.
    let title = &pctl_protocol::text::one_line(&item.title, 120);
    let missing: Vec<&str> = [ACCESS_KEY_ID, SECRET_ACCESS_KEY, ACCOUNT_ID]
        .into_iter()
        .filter(|l| find(l).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "1Password item '{title}' has no filled field {}: add {} (labels as written), \
             or pick another item",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        );
    }
    let account: String = find(ACCOUNT_ID)
        .and_then(|f| f.value.as_ref())
        .map(|v| v.chars().filter(|c| !matches!(c, '-' | ' ')).collect())
        .unwrap_or_default();
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        bail!("field '{ACCOUNT_ID}' of 1Password item '{title}' is not a 12-digit AWS account ID: fix it in 1Password");
    }
    let serial = find(MFA_SERIAL).is_some();
    let otp = find(TOTP).is_some_and(|f| f.kind.as_deref() == Some("OTP") || f.totp.is_some());
    if serial != otp {
        let (has, lacks) = if serial {
            (MFA_SERIAL, TOTP)
        } else {
            (TOTP, MFA_SERIAL)
        };
        bail!(
            "1Password item '{title}' has '{has}' but no '{lacks}': MFA needs both (a one-time password field for the code)"
        );
    }
    let region = REGION_LABELS
        .iter()
        .find_map(|l| find(l))
        .and_then(|f| f.value.as_ref())
        .map(|v| v.trim().to_string());
    Ok(CheckedItem {
        title: title.clone(),
        vault: item.vault.name.clone(),
        region,
        mfa: serial && otp,
    })
}

/// `op`'s error as one line without its `[ERROR] date time` prefix, with a
/// hint for the cases a first run meets.
fn explain(stderr: &str) -> String {
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let msg = first.strip_prefix("[ERROR]").map_or(first, |rest| {
        let rest = rest.trim_start();
        // `YYYY/MM/DD HH:MM:SS ` (optional)
        let stamp = rest.len() >= 20
            && rest.is_char_boundary(20)
            && rest[..19]
                .chars()
                .all(|c| c.is_ascii_digit() || "/: ".contains(c));
        if stamp {
            rest[20..].trim_start()
        } else {
            rest
        }
    });
    let lower = msg.to_ascii_lowercase();
    if lower.contains("not currently signed in") || lower.contains("account is not signed in") {
        return "1Password is not signed in: run `op signin` (or unlock the 1Password app with \
                CLI integration on), then pctl init again"
            .into();
    }
    let clean: String = msg
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if clean.trim().is_empty() {
        "op exited with an error and printed nothing".into()
    } else {
        clean.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(fields: serde_json::Value) -> FullItem {
        serde_json::from_value(serde_json::json!({
            "title": "AWS", "vault": {"id": "v", "name": "Private"}, "fields": fields
        }))
        .unwrap()
    }

    fn f(label: &str, value: &str) -> serde_json::Value {
        serde_json::json!({"label": label, "type": "STRING", "value": value})
    }

    #[test]
    fn required_fields_are_named_never_their_values() {
        let ok = item(serde_json::json!([
            f(ACCESS_KEY_ID, "AKIAEXAMPLEEXAMPLE"),
            f(SECRET_ACCESS_KEY, "s3cr3t-value"),
            f(ACCOUNT_ID, "1234-5678-9012"),
            f("Default Region", "eu-west-1"),
        ]));
        let c = check_fields(&ok).unwrap();
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert!(!c.mfa);
        let e = check_fields(&item(serde_json::json!([
            f(ACCESS_KEY_ID, "AKIAEXAMPLEEXAMPLE"),
            f(SECRET_ACCESS_KEY, ""),
        ])))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("Secret Access Key, Account ID") && !e.contains("AKIA"),
            "{e}"
        );
        let e = check_fields(&item(serde_json::json!([
            f(ACCESS_KEY_ID, "AKIAEXAMPLEEXAMPLE"),
            f(SECRET_ACCESS_KEY, "s3cr3t-value"),
            f(ACCOUNT_ID, "12345"),
        ])))
        .unwrap_err()
        .to_string();
        assert!(e.contains("12-digit") && !e.contains("12345"), "{e}");
        let e = check_fields(&item(serde_json::json!([
            f(ACCESS_KEY_ID, "AKIAEXAMPLEEXAMPLE"),
            f(SECRET_ACCESS_KEY, "s3cr3t-value"),
            f(ACCOUNT_ID, "123456789012"),
            f(MFA_SERIAL, "arn:aws:iam::123456789012:mfa/me"),
        ])))
        .unwrap_err()
        .to_string();
        assert!(e.contains("no 'One-Time Password'"), "{e}");
    }

    #[test]
    fn op_errors_become_one_clean_line() {
        assert_eq!(
            explain("[ERROR] 2026/01/02 03:04:05 \"X\" isn't a vault in this account.\n"),
            "\"X\" isn't a vault in this account."
        );
        assert!(explain("[ERROR] You are not currently signed in.").contains("op signin"));
        assert_eq!(explain("a\x1b[31mb\nsecond"), "a [31mb");
        assert_eq!(explain(""), "op exited with an error and printed nothing");
    }
}
