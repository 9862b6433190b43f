//! The typed configuration: what to read from 1Password, which roles to
//! assume, which clusters exist, and lookups that name what is configured.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// A loaded, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub region: String,
    pub daemon: DaemonConfig,
    /// The default identity's item: `[onepassword]`, or the first of
    /// `[identities]` when there is no `[onepassword]` table.
    pub onepassword: OnePasswordConfig,
    /// Every identity by name; `[onepassword]` is the one named
    /// [`DEFAULT_IDENTITY`].
    pub identities: BTreeMap<String, IdentityConfig>,
    pub roles: BTreeMap<String, RoleConfig>,
    pub clusters: BTreeMap<String, ClusterConfig>,
    /// Files named by `include`, in order (their changes reload the config).
    pub includes: Vec<PathBuf>,
    /// `[console] browser`: how `pctl login` opens the console.
    pub browser: pctl_protocol::Browser,
}

/// The name `[onepassword]` is known by among the identities.
pub const DEFAULT_IDENTITY: &str = "default";

/// One IAM user: where its keys are, where its MFA code comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityConfig {
    pub name: String,
    pub onepassword: OnePasswordConfig,
    pub mfa: MfaMode,
    /// The file that defines it.
    pub file: String,
    /// `source = "sso"`: an IAM Identity Center sign-in instead of 1Password.
    pub sso: Option<SsoConfig>,
}

/// An IAM Identity Center identity (`source = "sso"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConfig {
    pub start_url: String,
    pub region: String,
    /// Asked for at RegisterClient; `sso:account:access` (the default)
    /// gets a refresh token.
    pub scopes: Vec<String>,
}

/// A role served by IAM Identity Center's GetRoleCredentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoRoleConfig {
    pub account_id: String,
    /// The permission set's role name.
    pub role_name: String,
}

/// Where an identity's MFA code comes from. The device serial is always
/// the item's MFA Serial field; without it the identity uses no MFA.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MfaMode {
    /// The item's one-time password field (read with the keys).
    #[default]
    Item,
    /// The user types it: the client that triggered the unlock asks on its
    /// terminal and passes it once.
    Prompt,
    /// A command (argv, no shell) prints it, e.g.
    /// `["ykman", "oath", "accounts", "code", "-s", "NAME"]`.
    Process(Vec<String>),
}

impl MfaMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            MfaMode::Item => "item",
            MfaMode::Prompt => "prompt",
            MfaMode::Process(_) => "process",
        }
    }
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
    /// `pinentry = "PATH"`: the pinentry that asks a user whose client has
    /// no terminal; `None`: the first found of [`crate::prompt::pinentry::DEFAULTS`].
    pub pinentry: Option<PathBuf>,
    /// `sso_pinentry`: when an IAM Identity Center sign-in for a client
    /// without a terminal shows its URL and code in a pinentry window.
    pub sso_pinentry: SsoPinentry,
}

/// When a sign-in for a client without a terminal gets a pinentry window
/// (`[daemon] sso_pinentry`); the desktop notification comes every time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SsoPinentry {
    /// When the client cannot open a browser.
    #[default]
    Auto,
    /// Also when the browser opens (the window says which code to confirm).
    Always,
    /// Never: the notification names the URL and the code.
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OnePasswordConfig {
    pub item: String,
    pub vault: String,
    pub account: Option<String>,
    /// `[onepassword] op_path`: absolute path of `op`; default: the first
    /// `op` on the requesting client's PATH, resolved at unlock.
    pub command: Option<PathBuf>,
    pub fields: FieldLabels,
    /// Read the one-time password field with the keys (`mfa = "item"`);
    /// otherwise only the MFA serial is read from the item.
    pub read_otp: bool,
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
    /// The identity the role is assumed from.
    pub identity: String,
    /// The file that defines it (the config or an included file).
    pub file: String,
    /// Role name (with optional path), joined with the account ID from 1Password.
    pub name: Option<String>,
    /// Full ARN, used as is.
    pub arn: Option<String>,
    pub duration: Duration,
    /// `session_name` as written; unset, the session is named after the
    /// person (the IAM user's name learnt at unlock, see [`crate::vault::Unlocked`]).
    pub session_name: Option<String>,
    /// `account_id` + `role_name` of an `sso` identity.
    pub sso: Option<SsoRoleConfig>,
    /// Assumed from this role's session (a chain), not from the identity.
    pub source_role: Option<String>,
    /// ExternalId sent with AssumeRole.
    pub external_id: Option<String>,
    /// This role's region (default: the config's).
    pub region: Option<String>,
    /// SourceIdentity sent with AssumeRole.
    pub source_identity: Option<String>,
    /// Session tags sent with AssumeRole.
    pub tags: BTreeMap<String, String>,
    /// Which of `tags` pass on to a chained role.
    pub transitive_tags: Vec<String>,
    /// `confirm = true`: each new session needs the user's yes ([`crate::guard`]).
    pub confirm: bool,
    /// `allowed_programs`: only these programs may get the role's
    /// credentials (basenames; a trailing `*` matches any rest).
    pub allowed_programs: Vec<String>,
}

impl RoleConfig {
    /// The role ARN, given the account ID read from 1Password.
    pub fn arn(&self, account_id: &str) -> String {
        if let Some(s) = &self.sso {
            return pctl_protocol::names::role_arn(&s.account_id, &s.role_name);
        }
        match (&self.arn, &self.name) {
            (Some(arn), _) => arn.clone(),
            (None, Some(name)) => pctl_protocol::names::role_arn(account_id, name),
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

impl Config {
    /// The role to use for `role`, or the only role when `role` is `None`.
    pub fn role(&self, role: Option<&str>) -> Result<&RoleConfig, ConfigError> {
        match role {
            // `pctl-NAME` is the AWS profile `pctl aws-config` writes for NAME.
            Some(r) => self
                .roles
                .get(r)
                .or_else(|| r.strip_prefix("pctl-").and_then(|n| self.roles.get(n)))
                .ok_or_else(|| {
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

    /// The configured identity `name`.
    pub fn identity(&self, name: &str) -> Result<&IdentityConfig, ConfigError> {
        self.identities.get(name).ok_or_else(|| {
            ConfigError(format!(
                "unknown identity \"{name}\": configured identities in {} are: {}",
                self.path.display(),
                self.list(self.identities.keys())
            ))
        })
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

    /// A cluster and role named by `aws eks get-token`'s flags instead of
    /// this config (`pctl eks token --cluster-name N --region R --role-arn A`
    /// for a cluster not listed here): checked like the config's own, the
    /// role assumed with the defaults (session name `pctl`, 1 hour).
    pub fn adhoc_cluster(
        &self,
        a: &pctl_protocol::AdHocCluster,
    ) -> Result<(ClusterConfig, RoleConfig), ConfigError> {
        use pctl_protocol::names;
        names::check_eks_cluster_name(&a.name)
            .map_err(|e| ConfigError(format!("--cluster-name: {e}")))?;
        names::check_region(&a.region).map_err(|e| ConfigError(format!("--region: {e}")))?;
        names::check_role_arn(&a.role_arn).map_err(|e| ConfigError(format!("--role-arn: {e}")))?;
        // The default identity assumes it: [onepassword] (or the only one).
        let identity = if self.identities.contains_key(DEFAULT_IDENTITY) {
            DEFAULT_IDENTITY.to_string()
        } else if self.identities.len() == 1 {
            self.identities.keys().next().cloned().unwrap_or_default()
        } else {
            return Err(ConfigError(format!(
                "--role-arn for a cluster not in the config is assumed from the default identity, and this config has several identities ({}) but no [onepassword] default: add the cluster to the config with a role that names its identity",
                self.list(self.identities.keys())
            )));
        };
        let role = RoleConfig {
            key: a.role_arn.clone(),
            identity,
            file: "the command line (--role-arn)".into(),
            name: None,
            arn: Some(a.role_arn.clone()),
            duration: std::time::Duration::from_secs(3600),
            session_name: None,
            sso: None,
            source_role: None,
            external_id: None,
            region: None,
            source_identity: None,
            tags: BTreeMap::new(),
            transitive_tags: Vec::new(),
            confirm: false,
            allowed_programs: Vec::new(),
        };
        let cluster = ClusterConfig {
            key: a.name.clone(),
            name: a.name.clone(),
            role: role.key.clone(),
            region: a.region.clone(),
        };
        Ok((cluster, role))
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
