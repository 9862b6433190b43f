//! The TOML configuration: what to read from 1Password, which roles to
//! assume, which clusters exist.
//!
//! Errors name the file, the key and what is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A loaded, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub region: String,
    pub daemon: DaemonConfig,
    pub onepassword: OnePasswordConfig,
    pub roles: BTreeMap<String, RoleConfig>,
    pub clusters: BTreeMap<String, ClusterConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    /// Lock after this long without a credential request.
    pub idle_lock: Duration,
    /// Lock this long after unlocking, whatever happens.
    pub max_unlock: Duration,
    /// How long `op` may take (it may be waiting for a person).
    pub op_timeout: Duration,
    /// Duration of the MFA session from GetSessionToken.
    pub mfa_session: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OnePasswordConfig {
    pub item: String,
    pub vault: String,
    pub account: Option<String>,
    /// Explicit path of `op`; default: found on the client's PATH.
    pub command: Option<PathBuf>,
    pub fields: FieldLabels,
}

/// Labels of the item's fields, matched case-insensitively.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldLabels {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub mfa_serial: String,
    pub totp: String,
    pub account_id: String,
}

impl Default for FieldLabels {
    fn default() -> Self {
        FieldLabels {
            access_key_id: "Access Key ID".into(),
            secret_access_key: "Secret Access Key".into(),
            mfa_serial: "MFA Serial".into(),
            totp: "One-Time Password".into(),
            account_id: "Account ID".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleConfig {
    pub key: String,
    /// Role name (with optional path), joined with the account ID from 1Password.
    pub name: Option<String>,
    /// Full ARN, used as is.
    pub arn: Option<String>,
    pub duration: Duration,
    pub session_name: String,
}

impl RoleConfig {
    /// The role ARN, given the account ID read from 1Password.
    pub fn arn(&self, account_id: &str) -> String {
        match (&self.arn, &self.name) {
            (Some(arn), _) => arn.clone(),
            (None, Some(name)) => {
                let name = name.trim_start_matches('/');
                let name = name.strip_prefix("role/").unwrap_or(name);
                format!("arn:aws:iam::{account_id}:role/{name}")
            }
            (None, None) => unreachable!("validated: roles have a name or an arn"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub key: String,
    /// The EKS cluster name.
    pub name: String,
    pub role: String,
    pub region: String,
}

/// A configuration problem, already phrased for the user.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    region: Option<String>,
    #[serde(default)]
    daemon: RawDaemon,
    onepassword: Option<RawOnePassword>,
    #[serde(default)]
    roles: BTreeMap<String, RawRole>,
    #[serde(default)]
    clusters: BTreeMap<String, RawCluster>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    idle_lock: Option<String>,
    max_unlock: Option<String>,
    op_timeout: Option<String>,
    mfa_session: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOnePassword {
    item: String,
    vault: String,
    account: Option<String>,
    command: Option<PathBuf>,
    #[serde(default)]
    fields: FieldLabels,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    name: Option<String>,
    arn: Option<String>,
    duration: Option<String>,
    session_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    name: Option<String>,
    role: String,
    region: Option<String>,
}

impl Config {
    /// Reads and validates the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ConfigError(format!(
                    "config {}: file not found: create it (see `pctl --help` and README \
                     \"Real-world setup\") or set PCTL_CONFIG",
                    path.display()
                ))
            } else {
                ConfigError(format!("config {}: cannot read: {e}", path.display()))
            }
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates TOML text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = path.display();
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_string();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            ConfigError(format!("config {file}{at}: {msg}"))
        })?;
        let err = |key: &str, what: String| ConfigError(format!("config {file}: {key}: {what}"));

        let region = raw
            .region
            .ok_or_else(|| err("region", "missing: set e.g. region = \"us-east-1\"".into()))?;
        check_region(&region).map_err(|w| err("region", w))?;

        let dur = |key: &str, v: Option<String>, default: &str| -> Result<Duration, ConfigError> {
            let s = v.unwrap_or_else(|| default.to_string());
            humantime::parse_duration(&s).map_err(|_| {
                err(
                    key,
                    format!("\"{s}\" is not a duration: use e.g. \"15m\", \"1h\", \"12h\""),
                )
            })
        };
        let daemon = DaemonConfig {
            idle_lock: dur("daemon.idle_lock", raw.daemon.idle_lock, "1h")?,
            max_unlock: dur("daemon.max_unlock", raw.daemon.max_unlock, "12h")?,
            op_timeout: dur("daemon.op_timeout", raw.daemon.op_timeout, "2m")?,
            mfa_session: dur("daemon.mfa_session", raw.daemon.mfa_session, "12h")?,
        };
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&daemon.op_timeout) {
            return Err(err(
                "daemon.op_timeout",
                "must be between 1s and 10m (time to answer the 1Password prompt)".into(),
            ));
        }
        if daemon.idle_lock < Duration::from_secs(1) || daemon.max_unlock < Duration::from_secs(1) {
            return Err(err(
                "daemon",
                "idle_lock and max_unlock must be at least 1s".into(),
            ));
        }
        if !(Duration::from_secs(900)..=Duration::from_secs(36 * 3600))
            .contains(&daemon.mfa_session)
        {
            return Err(err(
                "daemon.mfa_session",
                "must be between 15m and 36h (STS GetSessionToken limits)".into(),
            ));
        }
        if daemon.max_unlock > daemon.mfa_session {
            return Err(err(
                "daemon.max_unlock",
                format!(
                    "{} is longer than daemon.mfa_session ({}): the MFA session would expire \
                     while unlocked; lower max_unlock or raise mfa_session",
                    humantime::format_duration(daemon.max_unlock),
                    humantime::format_duration(daemon.mfa_session)
                ),
            ));
        }

        let op = raw.onepassword.ok_or_else(|| {
            err(
                "onepassword",
                "missing: add [onepassword] with item = \"...\" and vault = \"...\"".into(),
            )
        })?;
        if op.item.trim().is_empty() {
            return Err(err("onepassword.item", "must not be empty".into()));
        }
        if op.vault.trim().is_empty() {
            return Err(err("onepassword.vault", "must not be empty".into()));
        }

        let mut roles = BTreeMap::new();
        for (key, r) in raw.roles {
            let k = format!("roles.{key}");
            match (&r.name, &r.arn) {
                (None, None) => {
                    return Err(err(
                        &k,
                        "needs name = \"role-name\" (ARN built from the account ID in 1Password) \
                         or arn = \"arn:aws:iam::...:role/...\""
                            .into(),
                    ))
                }
                (Some(_), Some(_)) => {
                    return Err(err(&k, "set either name or arn, not both".into()))
                }
                (None, Some(arn)) if !arn.starts_with("arn:aws") || !arn.contains(":role/") => {
                    return Err(err(
                        &format!("{k}.arn"),
                        format!("\"{arn}\" is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
                    ))
                }
                (Some(name), None) if name.is_empty() || name.contains(':') => {
                    return Err(err(
                        &format!("{k}.name"),
                        format!("\"{name}\" is not a role name: use the name only, or set arn"),
                    ))
                }
                _ => {}
            }
            let duration = dur(&format!("{k}.duration"), r.duration, "1h")?;
            if !(Duration::from_secs(900)..=Duration::from_secs(12 * 3600)).contains(&duration) {
                return Err(err(
                    &format!("{k}.duration"),
                    "must be between 15m and 12h (STS AssumeRole limits)".into(),
                ));
            }
            let session_name = r.session_name.unwrap_or_else(|| "pctl".into());
            if session_name.len() < 2
                || session_name.len() > 64
                || !session_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(c))
            {
                return Err(err(
                    &format!("{k}.session_name"),
                    "2-64 characters of letters, digits and =,.@-_".into(),
                ));
            }
            roles.insert(
                key.clone(),
                RoleConfig {
                    key,
                    name: r.name,
                    arn: r.arn,
                    duration,
                    session_name,
                },
            );
        }

        let mut clusters = BTreeMap::new();
        for (key, c) in raw.clusters {
            let k = format!("clusters.{key}");
            let Some(role) = roles.get(&c.role) else {
                let known: Vec<_> = roles.keys().map(String::as_str).collect();
                return Err(err(
                    &format!("{k}.role"),
                    format!(
                        "no role \"{}\" in [roles] (configured: {})",
                        c.role,
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            if role.duration < Duration::from_secs(30 * 60) {
                return Err(err(
                    &format!("{k}.role"),
                    format!(
                        "role \"{}\" has duration {}: EKS tokens need sessions of at least 30m",
                        c.role,
                        humantime::format_duration(role.duration)
                    ),
                ));
            }
            let region = c.region.unwrap_or_else(|| region.clone());
            check_region(&region).map_err(|w| err(&format!("{k}.region"), w))?;
            clusters.insert(
                key.clone(),
                ClusterConfig {
                    name: c.name.unwrap_or_else(|| key.clone()),
                    key,
                    role: c.role,
                    region,
                },
            );
        }

        Ok(Config {
            path: path.to_path_buf(),
            region,
            daemon,
            onepassword: OnePasswordConfig {
                item: op.item,
                vault: op.vault,
                account: op.account,
                command: op.command,
                fields: op.fields,
            },
            roles,
            clusters,
        })
    }

    /// The role to use for `role`, or the only role when `role` is `None`.
    pub fn role(&self, role: Option<&str>) -> Result<&RoleConfig, ConfigError> {
        match role {
            Some(r) => self.roles.get(r).ok_or_else(|| {
                ConfigError(format!(
                    "unknown role \"{r}\": configured roles in {} are: {}",
                    self.path.display(),
                    self.list(self.roles.keys())
                ))
            }),
            None if self.roles.len() == 1 => Ok(self.roles.values().next().expect("one role")),
            None => Err(ConfigError(format!(
                "several roles are configured ({}): pass --role",
                self.list(self.roles.keys())
            ))),
        }
    }

    /// The configured cluster `key`.
    pub fn cluster(&self, key: &str) -> Result<&ClusterConfig, ConfigError> {
        self.clusters.get(key).ok_or_else(|| {
            ConfigError(format!(
                "unknown cluster \"{key}\": add [clusters.{key}] with role = \"...\" to {} \
                 (configured: {})",
                self.path.display(),
                self.list(self.clusters.keys())
            ))
        })
    }

    /// A configured cluster and the role to use for it: `role` when given,
    /// else the cluster's own.
    pub fn cluster_and_role(
        &self,
        cluster: &str,
        role: Option<&str>,
    ) -> Result<(&ClusterConfig, &RoleConfig), ConfigError> {
        let c = self.cluster(cluster)?;
        let r = self.role(Some(role.unwrap_or(&c.role)))?;
        Ok((c, r))
    }

    fn list<'a>(&self, keys: impl Iterator<Item = &'a String>) -> String {
        let v: Vec<&str> = keys.map(String::as_str).collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    }
}

fn check_region(r: &str) -> Result<(), String> {
    let ok = !r.is_empty()
        && r.len() <= 32
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && r.contains('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{r}\" is not an AWS region name (e.g. us-east-1)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
region = "us-east-1"

[onepassword]
item = "AWS user key"   # name or ID
vault = "Private"

[roles.admin]
name = "platform-admin"
duration = "1h"

[clusters.platform]
role = "admin"
"#;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/cfg/config.toml"), s)
    }

    #[test]
    fn issue_example_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(
            c.roles["admin"].arn("ACCT"),
            "arn:aws:iam::ACCT:role/platform-admin"
        );
        assert_eq!(c.clusters["platform"].name, "platform");
        assert_eq!(c.onepassword.fields.secret_access_key, "Secret Access Key");
        assert_eq!(c.roles["admin"].duration, Duration::from_secs(3600));
    }

    #[test]
    fn errors_name_file_key_and_problem() {
        let e = parse(&GOOD.replace("\"1h\"", "\"1x\"")).unwrap_err().0;
        assert!(
            e.contains("/cfg/config.toml")
                && e.contains("roles.admin.duration")
                && e.contains("\"1x\""),
            "{e}"
        );
        let e = parse(&GOOD.replace("role = \"admin\"", "role = \"nope\""))
            .unwrap_err()
            .0;
        assert!(
            e.contains("clusters.platform.role") && e.contains("nope") && e.contains("admin"),
            "{e}"
        );
        let e = parse(&GOOD.replace("vault = ", "vualt = ")).unwrap_err().0;
        assert!(
            e.contains("/cfg/config.toml") && e.contains("vualt") && e.contains("line"),
            "{e}"
        );
        let e = parse(&GOOD.replace("region = \"us-east-1\"", ""))
            .unwrap_err()
            .0;
        assert!(e.contains("region") && e.contains("missing"), "{e}");
    }

    #[test]
    fn role_with_path_and_explicit_arn() {
        let c = parse(&GOOD.replace("name = \"platform-admin\"", "name = \"ops/admin\"")).unwrap();
        assert_eq!(c.roles["admin"].arn("1"), "arn:aws:iam::1:role/ops/admin");
        let c = parse(&GOOD.replace(
            "name = \"platform-admin\"",
            "arn = \"arn:aws:iam::ACCT:role/x\"",
        ))
        .unwrap();
        assert_eq!(c.roles["admin"].arn("other"), "arn:aws:iam::ACCT:role/x");
    }

    #[test]
    fn role_lookup_messages() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.role(None).unwrap().key, "admin");
        let e = c.role(Some("dev")).unwrap_err().0;
        assert!(e.contains("dev") && e.contains("admin"), "{e}");
        let e = c.cluster("prod").unwrap_err().0;
        assert!(e.contains("[clusters.prod]"), "{e}");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text gives a config or one error naming the file; never a panic.
        #[test]
        fn config_parse_never_panics(text in "(?s).{0,600}") {
            if let Err(e) = Config::parse(Path::new("/cfg/config.toml"), &text) {
                prop_assert!(e.0.starts_with("config /cfg/config.toml"), "{}", e.0);
            }
        }

        /// Mutating a valid config's values gives a config or an error naming the key.
        #[test]
        fn bad_values_name_their_key(dur in "[a-z0-9 ]{0,6}", region in "[a-zA-Z0-9_ -]{0,12}") {
            let text = format!(
                "region = \"{region}\"\n[onepassword]\nitem = \"i\"\nvault = \"v\"\n[roles.admin]\nname = \"r\"\nduration = \"{dur}\"\n"
            );
            if let Err(e) = Config::parse(Path::new("/cfg/config.toml"), &text) {
                prop_assert!(e.0.contains("region") || e.0.contains("roles.admin.duration"), "{}", e.0);
            }
        }
    }
}
