//! How pctl talks to `op` (the 1Password CLI), one home for the daemon
//! (unlock, rotation, doctor) and the client (`pctl init`): the argv of
//! each call, the process it runs in, the field labels of an AWS item, and
//! how `op`'s error text is read. Pure and synchronous: running the
//! process (with a timeout, async in the daemon) is the caller's part; which
//! `op` may run is [`crate::op_path`].
//!
//! The argv rules: values ride as `--flag=value` and the item comes after
//! `--`, so a vault, account or item name that starts with `-` is never read
//! as a flag (op parses flags with cobra, which honours both). Secrets never
//! ride in an argv: an edit reads its item template from standard input.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

/// Field labels pctl reads (1Password's AWS convention, the defaults of
/// `[onepassword.fields]`).
pub mod labels {
    pub const ACCESS_KEY_ID: &str = "Access Key ID";
    pub const SECRET_ACCESS_KEY: &str = "Secret Access Key";
    pub const ACCOUNT_ID: &str = "Account ID";
    pub const MFA_SERIAL: &str = "MFA Serial";
    pub const TOTP: &str = "One-Time Password";
    /// Where a region may be kept (not a secret), first match wins.
    pub const REGION: [&str; 2] = ["Default Region", "Region"];
}

/// The categories where 1Password keeps AWS keys (`pctl init` lists them).
pub const CATEGORIES: &str = "API Credential,Login";

/// Which item an `item` command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRef<'a> {
    pub item: &'a str,
    /// `None`: every vault (`op`'s default).
    pub vault: Option<&'a str>,
    /// `None`: `op`'s default account (`OP_ACCOUNT` or the only one).
    pub account: Option<&'a str>,
}

fn flag(args: &mut Vec<String>, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        args.push(format!("--{name}={v}"));
    }
}

/// `op item get [--vault=V] --format=json [--account=A] -- ITEM`.
pub fn item_get_args(r: ItemRef<'_>) -> Vec<String> {
    let mut args = vec!["item".to_string(), "get".into()];
    flag(&mut args, "vault", r.vault);
    args.push("--format=json".into());
    flag(&mut args, "account", r.account);
    args.push("--".into());
    args.push(r.item.to_string());
    args
}

/// `op item edit [--vault=V] --template=/dev/stdin --format=json
/// [--account=A] -- ITEM`: the whole item's JSON on standard input, so no
/// value is ever in the argv.
pub fn item_edit_args(r: ItemRef<'_>) -> Vec<String> {
    let mut args = vec!["item".to_string(), "edit".into()];
    flag(&mut args, "vault", r.vault);
    args.push("--template=/dev/stdin".into());
    args.push("--format=json".into());
    flag(&mut args, "account", r.account);
    args.push("--".into());
    args.push(r.item.to_string());
    args
}

/// `op item list --categories=... --format=json [--vault=V] [--account=A]`.
pub fn item_list_args(vault: Option<&str>, account: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "item".to_string(),
        "list".into(),
        format!("--categories={CATEGORIES}"),
        "--format=json".into(),
    ];
    flag(&mut args, "vault", vault);
    flag(&mut args, "account", account);
    args
}

/// `op whoami --format=json [--account=A]`.
pub fn whoami_args(account: Option<&str>) -> Vec<String> {
    let mut args = vec!["whoami".to_string(), "--format=json".into()];
    flag(&mut args, "account", account);
    args
}

/// `op --version`.
pub fn version_args() -> Vec<String> {
    vec!["--version".to_string()]
}

/// The process for one `op` call: `op` (an absolute path from
/// [`crate::op_path::resolve`]) with `args` (no shell), only the variables of
/// `env` that [`crate::forwarded_env_name`] lets through, stdin from
/// /dev/null (so `op` can never prompt on a terminal) or a pipe when the
/// call writes to it, stdout and stderr piped. The daemon turns it into a
/// `tokio::process::Command`.
pub fn command<I, K, V>(op: &Path, args: &[String], env: I, piped_stdin: bool) -> Command
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut c = Command::new(op);
    c.args(args)
        .env_clear()
        .envs(
            env.into_iter()
                .filter(|(k, _)| k.as_ref().to_str().is_some_and(crate::forwarded_env_name)),
        )
        .stdin(if piped_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// What an `op` error means, from its stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpFailure {
    NotSignedIn,
    ItemNotFound,
    VaultNotFound,
    Ambiguous,
    Dismissed,
    AuthTimeout,
    DesktopUnreachable,
    RateLimited,
    /// `op` failed and printed nothing.
    Silent,
    /// Anything else: `op`'s first line without its prefix, made safe to
    /// show and log ([`crate::text::one_line`], at most 200 characters).
    Other(String),
}

impl OpFailure {
    /// Whether a retry might help (transient network trouble only; never a
    /// refusal by the user).
    pub fn transient(&self) -> bool {
        matches!(self, OpFailure::Other(m) if transient(m))
    }
}

/// Whether an unclassified `op` message is transient network trouble.
pub fn transient(message: &str) -> bool {
    message.contains("timed out") || message.contains("context deadline exceeded")
}

/// Reads `op`'s stderr: only known phrases are matched; anything else keeps
/// op's own first line, cleaned.
pub fn classify(stderr: &str) -> OpFailure {
    let msg = error_line(stderr);
    let lower = msg.to_ascii_lowercase();
    let has = |s: &str| lower.contains(s);
    if has("not currently signed in") || has("account is not signed in") {
        OpFailure::NotSignedIn
    } else if has("isn't an item in the") {
        OpFailure::ItemNotFound
    } else if has("isn't a vault in this account") {
        OpFailure::VaultNotFound
    } else if has("more than one item matches") {
        OpFailure::Ambiguous
    } else if has("authorization prompt dismissed") {
        OpFailure::Dismissed
    } else if has("authorization timeout") {
        OpFailure::AuthTimeout
    } else if has("connecting to desktop app")
        || has("couldn't connect to the 1password desktop app")
    {
        OpFailure::DesktopUnreachable
    } else if has("(429)") || has("too many requests") {
        OpFailure::RateLimited
    } else {
        // op's text reaches the user's terminal and the daemon log: no control
        // characters (escape sequences, CR, other line breaks) and one line.
        let clean = crate::text::one_line(msg, 200);
        if clean.is_empty() {
            OpFailure::Silent
        } else {
            OpFailure::Other(clean)
        }
    }
}

/// The first non-blank line of `op`'s stderr, trimmed, without its
/// `[ERROR] YYYY/MM/DD HH:MM:SS ` prefix.
pub fn error_line(stderr: &str) -> &str {
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    strip_error_prefix(first)
}

/// Removes `[ERROR] YYYY/MM/DD HH:MM:SS ` (the timestamp is optional).
///
/// Works on bytes: the stamp is checked to be ASCII digits and separators
/// before anything is sliced, so a multi-byte character anywhere (even
/// straddling where the stamp would end) is never cut.
pub fn strip_error_prefix(line: &str) -> &str {
    let Some(rest) = line.strip_prefix("[ERROR]") else {
        return line;
    };
    let rest = rest.trim_start();
    let b = rest.as_bytes();
    let is_stamp = b.len() >= 19
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'/',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    match rest.get(19..) {
        Some(after) if is_stamp => after.trim_start(),
        _ => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multibyte_character_where_the_stamp_would_end_does_not_panic() {
        // issue 15 §7: the client's copy panicked on exactly this
        let line = format!("[ERROR] {}éx", "a".repeat(18));
        assert_eq!(strip_error_prefix(&line), format!("{}éx", "a".repeat(18)));
        assert_eq!(
            classify(&line),
            OpFailure::Other(format!("{}éx", "a".repeat(18)))
        );
        // the same with digits and separators up to the é
        let line = "[ERROR] 2026/11/25 10:00:0éx";
        assert_eq!(strip_error_prefix(line), "2026/11/25 10:00:0éx");
        // fuzz/artifacts (daemon copy): U+FFFD straddling byte 19
        let line = "[ERROR] 2026/11/25 10:00:\u{fffd}\u{fffd} than one item";
        assert!(matches!(classify(line), OpFailure::Other(_)));
    }

    #[test]
    fn prefix_and_stamp_are_removed() {
        assert_eq!(
            strip_error_prefix("[ERROR] 2026/11/25 10:00:00 boom"),
            "boom"
        );
        assert_eq!(strip_error_prefix("[ERROR] boom"), "boom");
        assert_eq!(strip_error_prefix("boom"), "boom");
        assert_eq!(
            error_line("\n  \n[ERROR] 2026/01/02 03:04:05 x\nsecond"),
            "x"
        );
    }

    #[test]
    fn classifies_reference_errors() {
        let cases = [
            ("[ERROR] 2026/11/25 10:00:00 You are not currently signed in. Please run `op signin --help` for instructions", OpFailure::NotSignedIn),
            ("[ERROR] account is not signed in", OpFailure::NotSignedIn),
            ("[ERROR] 2026/11/25 10:00:00 \"AWS user key\" isn't an item in the \"Private\" vault. Specify the item with its UUID, name, or domain.", OpFailure::ItemNotFound),
            ("[ERROR] 2026/11/25 10:00:00 \"Private\" isn't a vault in this account. Specify the vault with its ID or name.", OpFailure::VaultNotFound),
            ("[ERROR] 2026/11/25 10:00:00 More than one item matches \"AWS user key\". Try again and specify the item by its ID:\n\t* for the item \"AWS user key\" in vault Private: abc", OpFailure::Ambiguous),
            ("[ERROR] 2026/11/25 10:00:00 error initializing client: authorization prompt dismissed, please try again", OpFailure::Dismissed),
            ("[ERROR] 2026/11/25 10:00:00 error initializing client: authorization timeout", OpFailure::AuthTimeout),
            ("[ERROR] 2026/11/25 10:00:00 connecting to desktop app: 1Password CLI couldn't connect to the 1Password desktop app. ...", OpFailure::DesktopUnreachable),
            ("[ERROR] 2026/11/25 10:00:00 (429) Too Many Requests", OpFailure::RateLimited),
            ("", OpFailure::Silent),
            ("[ERROR] 2026/11/25 10:00:00 something new", OpFailure::Other("something new".into())),
        ];
        for (stderr, want) in cases {
            assert_eq!(classify(stderr), want, "{stderr}");
        }
        let OpFailure::Other(m) =
            classify("[ERROR] 2026/11/25 10:00:00 bad\x1b]0;pwned\x07 \rX\u{2028}Y\x0bZ")
        else {
            panic!()
        };
        assert!(
            !m.chars().any(|c| c.is_control() || c == '\u{2028}'),
            "{m:?}"
        );
        assert!(m.starts_with("bad") && m.ends_with('Z'), "{m:?}");
        assert!(OpFailure::Other("Get ...: context deadline exceeded".into()).transient());
        assert!(!OpFailure::Dismissed.transient());
    }

    #[test]
    fn argv_values_are_flags_with_equals_and_the_item_follows_the_double_dash() {
        let r = ItemRef {
            item: "--help",
            vault: Some("-v"),
            account: Some("--format=text"),
        };
        for a in [item_get_args(r), item_edit_args(r)] {
            let dd = a.iter().position(|x| x == "--").unwrap();
            assert!(
                a[2..dd]
                    .iter()
                    .all(|x| x.starts_with("--") && x.contains('=')),
                "{a:?}"
            );
            assert_eq!(a[dd + 1..], ["--help"]);
            assert!(a.contains(&"--vault=-v".to_string()));
            assert!(a.contains(&"--account=--format=text".to_string()));
        }
        assert_eq!(
            item_get_args(ItemRef {
                item: "AWS",
                vault: Some("Private"),
                account: None
            }),
            [
                "item",
                "get",
                "--vault=Private",
                "--format=json",
                "--",
                "AWS"
            ]
        );
        assert_eq!(
            item_get_args(ItemRef {
                item: "AWS",
                vault: None,
                account: None
            }),
            ["item", "get", "--format=json", "--", "AWS"]
        );
        assert_eq!(
            item_edit_args(ItemRef {
                item: "AWS",
                vault: Some("Private"),
                account: Some("a.1password.com")
            }),
            [
                "item",
                "edit",
                "--vault=Private",
                "--template=/dev/stdin",
                "--format=json",
                "--account=a.1password.com",
                "--",
                "AWS"
            ]
        );
        assert_eq!(
            item_list_args(Some("V"), None),
            [
                "item",
                "list",
                "--categories=API Credential,Login",
                "--format=json",
                "--vault=V"
            ]
        );
        assert_eq!(
            whoami_args(Some("x")),
            ["whoami", "--format=json", "--account=x"]
        );
    }

    #[test]
    fn command_forwards_only_the_1password_environment() {
        let env = [
            ("PATH", "/usr/bin"),
            ("OP_SERVICE_ACCOUNT_TOKEN", "t"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("LD_PRELOAD", "x.so"),
        ];
        let c = command(Path::new("/usr/bin/op"), &version_args(), env, false);
        let names: Vec<_> = c
            .get_envs()
            .map(|(k, _)| k.to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["OP_SERVICE_ACCOUNT_TOKEN", "PATH"]);
        assert_eq!(c.get_args().collect::<Vec<_>>(), ["--version"]);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `op`'s stderr is input pctl does not control: reading it never
        /// panics, and what is kept is one printable line.
        #[test]
        fn classify_never_panics(stderr in "(?s).{0,400}") {
            if let OpFailure::Other(m) = classify(&stderr) {
                prop_assert!(!m.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'), "{m:?}");
                prop_assert!(m.chars().count() <= 201);
            }
        }

        /// The prefix area specifically: `[ERROR] ` then up to 24 characters
        /// mixing the stamp's own bytes with multi-byte ones.
        #[test]
        fn prefix_area_never_panics(s in "\\[ERROR\\] [0-9/: éa\u{fffd}€😀]{0,24}.{0,4}") {
            let out = strip_error_prefix(&s);
            prop_assert!(s.ends_with(out));
            let _ = classify(&s);
        }

        #[test]
        fn bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = classify(&String::from_utf8_lossy(&bytes));
        }
    }
}
