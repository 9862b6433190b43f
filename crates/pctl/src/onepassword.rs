//! The client's own `op` (1Password CLI) calls, for `pctl init`, which runs
//! before any config (and so before any daemon can read 1Password).
//!
//! The daemon's rules apply, from the same code: `op` is an absolute path
//! that others cannot replace ([`pctl_protocol::op_path`]); its argv, its
//! process (no shell, stdin from /dev/null, only the 1Password variables of
//! the environment) and the reading of its errors are
//! [`pctl_protocol::op`]'s. Its output is wiped after parsing, and its
//! errors are shown as one clean line, never raw.

use anyhow::{anyhow, bail, Result};
use pctl_protocol::op::{self, labels, OpFailure};
use pctl_protocol::op_path::{self, OpPathError};
use serde::Deserialize;
use std::path::PathBuf;
use zeroize::Zeroizing;

use labels::{ACCESS_KEY_ID, ACCOUNT_ID, MFA_SERIAL, SECRET_ACCESS_KEY, TOTP};
pub use op::CATEGORIES;

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
    /// Whether it carries an MFA serial (then pctl uses MFA),
    pub mfa_serial: bool,
    /// and a one-time password field (else the code is typed: `mfa = "prompt"`).
    pub otp: bool,
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
        let out = self.run(&op::item_list_args(vault, None), "op item list")?;
        serde_json::from_slice(&out).map_err(|_| {
            anyhow!("`op item list` printed something that is not a list of items (is `op` the 1Password CLI 2.x?)")
        })
    }

    /// Reads `item` once and checks the fields pctl needs are there and filled.
    pub fn check_item(&self, item: &str, vault: Option<&str>) -> Result<CheckedItem> {
        let args = op::item_get_args(op::ItemRef {
            item,
            vault,
            account: None,
        });
        let out = self.run(&args, "op item get")?;
        let full: FullItem = serde_json::from_slice(&out).map_err(|_| {
            anyhow!("`op item get` printed something that is not an item (is `op` the 1Password CLI 2.x?)")
        })?;
        check_fields(&full)
    }

    /// Runs `op` with `args` ([`op::command`]); its stdout (wiped when
    /// dropped) or one clean error line.
    fn run(&self, args: &[String], what: &str) -> Result<Zeroizing<Vec<u8>>> {
        let out = op::command(&self.path, args, std::env::vars_os(), false)
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
        .map(|v| pctl_protocol::names::account_id_digits(v))
        .unwrap_or_default();
    if !pctl_protocol::names::is_account_id(&account) {
        bail!("field '{ACCOUNT_ID}' of 1Password item '{title}' is not a 12-digit AWS account ID: fix it in 1Password");
    }
    let serial = find(MFA_SERIAL).is_some();
    let otp = find(TOTP).is_some_and(|f| f.kind.as_deref() == Some("OTP") || f.totp.is_some());
    // A serial without a one-time password field is an MFA device whose code
    // is typed (`pctl init` offers mfa = "prompt"); a one-time password
    // without the device's serial cannot be used.
    if otp && !serial {
        bail!(
            "1Password item '{title}' has '{TOTP}' but no '{MFA_SERIAL}': add the MFA device's ARN \
             (arn:aws:iam::ACCOUNT:mfa/NAME) as '{MFA_SERIAL}', or remove the one-time password"
        );
    }
    let region = labels::REGION
        .iter()
        .find_map(|l| find(l))
        .and_then(|f| f.value.as_ref())
        .map(|v| v.trim().to_string());
    Ok(CheckedItem {
        title: title.clone(),
        vault: item.vault.name.clone(),
        region,
        mfa_serial: serial,
        otp,
    })
}

/// `op`'s error as one line ([`op::classify`]), with a hint for the cases
/// a first run meets.
fn explain(stderr: &str) -> String {
    match op::classify(stderr) {
        OpFailure::NotSignedIn => "1Password is not signed in: run `op signin` (or unlock the \
                                   1Password app with CLI integration on), then pctl init again"
            .into(),
        OpFailure::Silent => "op exited with an error and printed nothing".into(),
        OpFailure::Other(m) => m,
        // Known errors keep op's own line (it names the vault or item).
        _ => pctl_protocol::text::one_line(op::error_line(stderr), 200),
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
        assert!(!c.mfa_serial && !c.otp);
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
        // a serial alone: the code is typed (init offers mfa = "prompt")
        let c = check_fields(&item(serde_json::json!([
            f(ACCESS_KEY_ID, "AKIAEXAMPLEEXAMPLE"),
            f(SECRET_ACCESS_KEY, "s3cr3t-value"),
            f(ACCOUNT_ID, "123456789012"),
            f(MFA_SERIAL, "arn:aws:iam::123456789012:mfa/me"),
        ])))
        .unwrap();
        assert!(c.mfa_serial && !c.otp);
        let e = check_fields(&item(serde_json::json!([
            f(ACCESS_KEY_ID, "AKIAEXAMPLEEXAMPLE"),
            f(SECRET_ACCESS_KEY, "s3cr3t-value"),
            f(ACCOUNT_ID, "123456789012"),
            serde_json::json!({"label": TOTP, "type": "OTP", "value": "otpauth://totp/x?secret=AB"}),
        ])))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no 'MFA Serial'") && !e.contains("otpauth"),
            "{e}"
        );
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

    #[test]
    fn a_multibyte_character_where_the_stamp_would_end_does_not_panic() {
        // issue 15 §7: this copy panicked here before it used the shared parser
        let stderr = format!("[ERROR] {}éx", "a".repeat(18));
        assert_eq!(explain(&stderr), format!("{}éx", "a".repeat(18)));
    }
}
