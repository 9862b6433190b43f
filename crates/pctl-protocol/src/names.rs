//! The syntax of the names and values pctl writes into other programs'
//! files: role, cluster and identity names, AWS regions, role ARNs, role
//! session names. One
//! rule each, used by the daemon's config parser, by `pctl init` and its
//! import, and again by every writer of a user file (the AWS config's INI
//! block, kubeconfig YAML, shell completions), so a name that reaches
//! `~/.aws/config` can never open a section or a line of its own.

/// The name rule, as written in messages and docs.
pub const NAME_RULE: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";

/// The most characters a name may have.
pub const NAME_MAX: usize = 64;

/// Whether `s` is a valid role, cluster or identity name ([`NAME_RULE`]):
/// 1 to 64 ASCII letters, digits, `.`, `_` and `-`, starting with a letter
/// or a digit. Nothing else can change what an INI or YAML reader sees.
pub fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=NAME_MAX).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// `s` shown in a message: quoted and escaped (a newline shows as `\n`, an
/// escape sequence as `\u{1b}`), cut after 80 characters.
pub fn shown(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    if cut.len() < s.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// `Ok` for a valid name, else why not (what = "role", "cluster", ...):
/// the name as [`shown`] and the rule.
pub fn check_name(what: &str, s: &str) -> Result<(), String> {
    if is_name(s) {
        Ok(())
    } else {
        Err(format!(
            "{what} name {} is not allowed: names match {NAME_RULE} (1-64 letters, digits, \
             '.', '_' and '-', starting with a letter or digit); rename it",
            shown(s)
        ))
    }
}

/// Whether `r` looks like an AWS region name (`us-east-1`, `eu-central-2`,
/// `us-gov-west-1`): lowercase letters, digits and `-`, with at least one `-`.
pub fn is_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.contains('-')
        && !r.starts_with('-')
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `Ok` for a region name, else a message naming it.
pub fn check_region(r: &str) -> Result<(), String> {
    if is_region(r) {
        Ok(())
    } else {
        Err(format!(
            "{} is not an AWS region name (e.g. us-east-1)",
            shown(r)
        ))
    }
}

/// Whether `name` is an EKS cluster name: 1-100 letters, digits, `-` and
/// `_`, starting with a letter or digit.
pub fn is_eks_cluster_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `Ok` for an EKS cluster name, else a message naming it.
pub fn check_eks_cluster_name(name: &str) -> Result<(), String> {
    if is_eks_cluster_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{} is not an EKS cluster name (1-100 letters, digits, - and _)",
            shown(name)
        ))
    }
}

/// Whether `arn` is an IAM role ARN (`arn:aws[-partition]:iam::ACCOUNT:role/[PATH/]NAME`),
/// at most 2048 characters, without control characters or whitespace.
pub fn is_role_arn(arn: &str) -> bool {
    arn.starts_with("arn:aws")
        && arn.len() <= 2048
        && arn
            .split_once(":role/")
            .is_some_and(|(_, name)| !name.is_empty())
        && !arn.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// `Ok` for a role ARN, else a message naming it.
pub fn check_role_arn(arn: &str) -> Result<(), String> {
    if is_role_arn(arn) {
        Ok(())
    } else {
        Err(format!(
            "{} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
            shown(arn)
        ))
    }
}

/// A role name as configured (`name = "ops/admin"`, also `"/ops/admin"`
/// and `"role/ops/admin"`) without its leading `/` and `role/`: the part of
/// the ARN after `:role/`.
pub fn role_path(name: &str) -> &str {
    let name = name.trim_start_matches('/');
    name.strip_prefix("role/").unwrap_or(name)
}

/// Whether `name` can be a configured role name (a path and a name, no
/// `:` and no control characters or whitespace).
pub fn is_role_name(name: &str) -> bool {
    !role_path(name).is_empty()
        && name.len() <= 512
        && !name.contains(':')
        && !name.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// The ARN of the role `name` (see [`role_path`]) in `account_id`.
pub fn role_arn(account_id: &str, name: &str) -> String {
    format!("arn:aws:iam::{account_id}:role/{}", role_path(name))
}

/// Whether `arn` is the role `name` of any account (the same path and name).
pub fn arn_is_role_name(arn: &str, name: &str) -> bool {
    arn.starts_with("arn:aws")
        && arn
            .split_once(":role/")
            .is_some_and(|(_, path)| path == role_path(name))
}

/// The role session name rule, as written in messages.
pub const SESSION_NAME_RULE: &str = "2-64 letters, digits and +=,.@-_";

/// Whether `c` is one of IAM's name characters (`[\w+=,.@-]`, ASCII).
fn is_iam_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@-_".contains(c)
}

/// Whether `s` is a role session name STS accepts (RoleSessionName, and
/// SourceIdentity alike: 2 to 64 of `[\w+=,.@-]`): the config's
/// `session_name` and `source_identity`, what the daemon derives from the
/// IAM user, and `pctl init`'s import of `role_session_name`.
pub fn is_session_name(s: &str) -> bool {
    (2..=64).contains(&s.len()) && s.chars().all(is_iam_char)
}

/// Whether `s` is an AWS account ID: 12 digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

/// An account ID as written in a 1Password field (`1234-5678-9012`, with
/// spaces or dashes) without its separators; check it with
/// [`is_account_id`].
pub fn account_id_digits(value: &str) -> String {
    value.chars().filter(|c| !matches!(c, '-' | ' ')).collect()
}

/// Whether `s` is an IAM role's name without a path (1 to 64 of
/// `[\w+=,.@-]`), as an IAM Identity Center permission set's role is
/// named (a configured `role_name`, `pctl sso sync`).
pub fn is_iam_role_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(is_iam_char)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        for ok in ["a", "A1", "prod.readonly", "x_y-z", "0", &"a".repeat(64)] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "a b",
            "a]",
            "a\nb",
            "ä",
            "a/b",
            "a:b",
            &"a".repeat(65),
        ] {
            assert!(!is_name(bad), "{bad}");
        }
        let e = check_name("role", "a]\n [default]").unwrap_err();
        assert!(
            e.contains(r#""a]\n [default]""#) && e.contains(NAME_RULE),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn regions_and_arns() {
        assert!(is_region("us-east-1") && is_region("us-gov-west-1"));
        for bad in ["", "useast1", "US-EAST-1", "us-east-1\n", "-x", "us east-1"] {
            assert!(!is_region(bad), "{bad}");
        }
        assert!(is_role_arn("arn:aws:iam::123456789012:role/ops/admin"));
        assert!(is_role_arn("arn:aws-us-gov:iam::123456789012:role/x"));
        for bad in [
            "arn:aws:iam::1:user/x",
            "arn:aws:iam::1:role/",
            "arn:aws:iam::1:role/x\n[default]",
            "role/x",
        ] {
            assert!(!is_role_arn(bad), "{bad}");
        }
        assert_eq!(
            role_arn("1", "/role/ops/admin"),
            "arn:aws:iam::1:role/ops/admin"
        );
        assert!(arn_is_role_name(
            "arn:aws:iam::9:role/ops/admin",
            "ops/admin"
        ));
        assert!(!arn_is_role_name("arn:aws:iam::9:role/admin", "ops/admin"));
        assert!(is_role_name("ops/admin") && !is_role_name("a:b") && !is_role_name("/"));
    }

    #[test]
    fn session_names() {
        for s in ["ab", "a+b=c,d.e@f-g_h", &"x".repeat(64)] {
            assert!(is_session_name(s), "{s}");
        }
        for s in ["a", "a b", "é1", "a/b", "a\nb", &"x".repeat(65)] {
            assert!(!is_session_name(s), "{s}");
        }
        assert!(is_iam_role_name("A") && is_iam_role_name("AWSReservedSSO_Dev+x"));
        assert!(!is_iam_role_name("") && !is_iam_role_name("ops/admin"));
        assert!(is_account_id("123456789012"));
        assert_eq!(account_id_digits("1234-5678 9012"), "123456789012");
        for bad in [
            "12345678901",
            "1234567890123",
            "12345678901a",
            "１23456789012",
        ] {
            assert!(!is_account_id(bad), "{bad}");
        }
    }

    proptest! {
        /// A name the rule accepts holds nothing an INI, YAML or shell
        /// reader treats as syntax.
        #[test]
        fn accepted_names_hold_no_syntax(s in "(?s).{0,70}|[A-Za-z0-9._ \\n\\[\\]-]{0,70}") {
            if is_name(&s) {
                prop_assert!(s.len() <= NAME_MAX);
                prop_assert!(!s.chars().any(|c| !c.is_ascii() || c.is_whitespace()
                    || "[]#;=\"'\\:$`{}&|<>()*?!%@,".contains(c)), "{:?}", s);
            }
        }
    }
}
