//! Wire types shared by the pctl daemon and its clients; framing and the
//! connection both sides use are in [`connection`], every path in [`dirs`],
//! who is on the other end of a socket in [`peer`].
//!
//! Every request carries the client's version; a daemon of another version
//! answers [`ErrorKind::Version`] so the client can replace it (the version
//! is read before the rest, see [`decode_request`]).

pub mod connection;
pub mod dirs;
mod kind;
pub mod names;
pub mod op;
pub mod op_path;
pub mod peer;
mod reply;
pub mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use connection::{
    encode, frame_len, read_body, read_frame, write_frame, Connection, FrameError, MAX_FRAME,
    READ_AHEAD,
};
pub use kind::{RequestKind, TimeLimit};
pub use reply::UnexpectedReply;

/// Version of this crate, which is the version of the whole workspace.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Names of the client environment variables forwarded to `op`.
///
/// `op` needs the user's home, path and 1Password session pointers; nothing
/// else of the client's environment reaches it.
pub fn forwarded_env_name(name: &str) -> bool {
    matches!(
        name,
        "PATH"
            | "HOME"
            | "USER"
            | "LOGNAME"
            | "OP_ACCOUNT"
            | "OP_SERVICE_ACCOUNT_TOKEN"
            | "OP_CACHE"
    ) || name.starts_with("XDG_")
        || name.starts_with("OP_SESSION_")
        || name.starts_with("OP_CONNECT_")
}

/// Names of the variables an `mfa_command` runs with: enough to find its
/// programs, speak the user's language and reach a display, a terminal or
/// the session bus (a prompt, a security key's helper; `GPG_TTY`: the
/// terminal a pinentry may draw on, as gpg-agent uses it); nothing of
/// 1Password's (`OP_*`) and nothing else of the client's environment.
pub fn mfa_env_name(name: &str) -> bool {
    matches!(
        name,
        "PATH"
            | "HOME"
            | "LANG"
            | "TERM"
            | "DISPLAY"
            | "WAYLAND_DISPLAY"
            | "XDG_RUNTIME_DIR"
            | "DBUS_SESSION_BUS_ADDRESS"
            | "GPG_TTY"
    ) || name.starts_with("LC_")
}

/// One message from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The client's [`VERSION`].
    pub version: String,
    pub request: Request,
    /// The client's config path and endpoint settings: the daemon refuses
    /// a request it would answer from another setup ([`Setup::differences`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<Setup>,
    /// What the client can do for the user (a terminal to ask on) and
    /// what it already asked ([`Caller`]); `None`: an older client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
}

/// The client's side of prompts and break-glass roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// The client can ask its user on a terminal (`/dev/tty` opens): an MFA
    /// code or a confirmation goes there; without one the daemon asks
    /// through pinentry.
    #[serde(default)]
    pub terminal: bool,
    /// `pctl exec`: the program it will run with the credentials (the
    /// program `allowed_programs` is checked against, instead of the
    /// client's parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The role whose new session the user confirmed on this client's
    /// terminal, after [`ErrorKind::NeedsConfirmation`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<String>,
}

/// What decides which answers are right besides the request: the config
/// file and the endpoints and proxies AWS calls go through, as seen by one
/// process (the daemon's at its start, the client's now). Each value is the
/// effective one: `AWS_ENDPOINT_URL_STS` else `AWS_ENDPOINT_URL`, and so on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    pub config: String,
    /// Setting label (see [`SETUP_VARS`]) -> effective value; unset ones absent.
    pub env: BTreeMap<String, String>,
}

/// The settings a [`Setup`] compares: a label and the variables that set
/// it, first set (and non-empty) wins.
pub const SETUP_VARS: &[(&str, &[&str])] = &[
    (
        "STS endpoint",
        &["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"],
    ),
    (
        "EKS endpoint",
        &["AWS_ENDPOINT_URL_EKS", "AWS_ENDPOINT_URL"],
    ),
    (
        "IAM endpoint",
        &["AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL"],
    ),
    ("sign-in endpoint", &["PCTL_FEDERATION_ENDPOINT"]),
    ("HTTPS proxy", &["HTTPS_PROXY", "https_proxy"]),
    ("HTTP proxy", &["HTTP_PROXY", "http_proxy"]),
    ("no-proxy list", &["NO_PROXY", "no_proxy"]),
];

impl Setup {
    /// This process's setup, with `config` as its config path.
    pub fn current(config: &std::path::Path) -> Self {
        Self::from_vars(config, |k| std::env::var(k).ok())
    }

    fn from_vars(config: &std::path::Path, var: impl Fn(&str) -> Option<String>) -> Self {
        let env = SETUP_VARS
            .iter()
            .filter_map(|(label, names)| {
                let v = names
                    .iter()
                    .find_map(|n| var(n).filter(|v| !v.is_empty()))?;
                Some((label.to_string(), v))
            })
            .collect();
        Setup {
            config: config.display().to_string(),
            env,
        }
    }

    /// How `client`'s setup differs from this (the daemon's), as one phrase
    /// naming the settings (never their values: a proxy URL may carry a
    /// password), or `None` when they agree.
    pub fn differences(&self, client: &Setup) -> Option<String> {
        let mut parts = Vec::new();
        if self.config != client.config {
            parts.push(format!(
                "it reads the config {} and this shell's is {} (PCTL_CONFIG)",
                self.config, client.config
            ));
        }
        for (label, names) in SETUP_VARS {
            let (ours, theirs) = (self.env.get(*label), client.env.get(*label));
            if ours != theirs {
                let how = match (ours, theirs) {
                    (Some(_), None) => "is set for it and not in this shell",
                    (None, Some(_)) => "is set in this shell and not for it",
                    _ => "differs",
                };
                parts.push(format!("the {label} ({}) {how}", names.join(" / ")));
            }
        }
        if parts.is_empty() {
            return None;
        }
        Some(format!(
            "the running pctl daemon was started with another setup: {}: run `pctl stop`, then retry (a new daemon starts with this shell's setup)",
            parts.join("; ")
        ))
    }
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Liveness and version check.
    Ping,
    /// Read the 1Password item now: of `identity`, or of every identity.
    Unlock {
        env: ClientEnv,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<String>,
        /// The code the user typed, for an identity with `mfa = "prompt"`
        /// (sent once, after [`ErrorKind::NeedsMfaCode`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mfa_code: Option<MfaCode>,
    },
    /// Drop every secret and session: of `identity`, or of every identity.
    Lock {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<String>,
    },
    /// Replace the identity's IAM access key (`pctl rotate`); `env` runs `op`.
    Rotate {
        env: ClientEnv,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<String>,
    },
    /// Locked state, sessions and counters; never a secret.
    Status,
    /// The daemon's side of `pctl doctor`: `op` (found with the client's
    /// 1Password environment, its version, signed in), config, item, clock
    /// skew against STS, STS reachable, mlock. Never unlocks.
    Doctor { env: ClientEnv },
    /// Stop the daemon (secrets wiped, socket removed).
    Stop,
    /// Role session credentials.
    ///
    /// `env` (the 1Password environment) is sent only when the daemon asked
    /// for it with [`ErrorKind::NeedsEnv`]: a warm daemon never sees it.
    Credentials {
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<ClientEnv>,
        /// `--duration`: the session's length in seconds, clamped by the
        /// daemon to what AWS allows for the role ([`Credentials::note`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<u64>,
        /// `--region`: the role's region for this request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// An EKS bearer token for a configured cluster, or for the cluster
    /// that `aws eks get-token`'s flags name (`get_token`).
    EksToken {
        /// The cluster's key in the config (`--cluster`); empty when
        /// `get_token` names the cluster by `--cluster-name`.
        cluster: String,
        role: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<ClientEnv>,
        /// `aws eks get-token`'s flags, as given: the daemon resolves them
        /// against its config (include files too), never the client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        get_token: Option<GetTokenFlags>,
    },
    /// Endpoint and CA of a configured cluster (EKS DescribeCluster).
    DescribeCluster {
        cluster: String,
        role: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<ClientEnv>,
    },
    /// The EKS clusters `role`'s session may list in `region` (EKS
    /// ListClusters, every page), for `pctl init` to offer.
    ListClusters {
        role: String,
        region: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<ClientEnv>,
    },
    /// The roles of the identity's own account whose trust policy lets
    /// the IAM user assume them (IAM ListRoles), for `pctl init` to offer.
    AssumableRoles {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<ClientEnv>,
    },
    /// The configured roles and clusters, for generated config files.
    Profiles,
    /// An AWS console sign-in URL for a role's session (federation
    /// endpoint). At most one of `path` and `destination`.
    ConsoleLogin {
        role: String,
        /// Console region (default: the config's region).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// A console page, relative to the region's console (`ec2/home`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// A whole console URL of the role's partition.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        destination: Option<String>,
        /// Answer a one-shot loopback link that redirects to the sign-in URL
        /// (for a browser: the URL itself never reaches an argv) instead of
        /// the URL.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redirect: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<ClientEnv>,
        /// `--duration`: the role session's (and console session's) length
        /// in seconds, clamped to what AWS allows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<u64>,
    },
    /// Start (or join) the IAM Identity Center device authorization of an
    /// `sso` identity, after [`ErrorKind::NeedsSignIn`]. The answer is
    /// [`Reply::SignIn`]: what the user opens and types.
    ///
    /// A client without a terminal ([`Caller::terminal`]) sends its
    /// display variables (`env`) and whether it can open a browser
    /// (`opener`): the daemon then shows the sign-in on the desktop (a
    /// notification with the code; a pinentry window with the URL and the
    /// code when no browser opens).
    SignIn {
        identity: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<ClientEnv>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        opener: bool,
    },
    /// Wait for the device authorization `serial` of `identity` to end:
    /// `Done` when signed in, else why not (denied, expired).
    SignInWait { identity: String, serial: u64 },
    /// Every account x role the `sso` identity may use (ListAccounts,
    /// ListAccountRoles).
    SsoRoles {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<String>,
    },
    /// A loopback HTTP endpoint answering the container credential
    /// provider with the role's current session. It lives exactly as long
    /// as the connection that asked for it: the client sends nothing more
    /// and keeps the connection open; closing it (or any further byte)
    /// ends the endpoint.
    ///
    /// `env` is kept for the endpoint's lifetime: the daemon may have to
    /// unlock again (MFA session or lifetime limit) while a long job runs.
    CredentialServer {
        role: String,
        /// 127.0.0.1 port to bind; `None`: a free one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<ClientEnv>,
        /// `--duration` (seconds) and `--region`, as for [`Request::Credentials`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
}

/// `aws eks get-token`'s flags (`pctl eks token --cluster-name N
/// [--region R] [--role-arn A]`), mapped by the daemon to a configured
/// cluster and role, or, for a cluster the config does not list and a
/// `--role-arn`, to an [`AdHocCluster`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetTokenFlags {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// A cluster named by `aws eks get-token`'s flags instead of pctl's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdHocCluster {
    /// The EKS cluster name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// The role to assume for the token.
    pub role_arn: String,
}

/// The part of a client's environment the daemon may use to run `op` and
/// an `mfa_command`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientEnv(pub BTreeMap<String, String>);

impl ClientEnv {
    /// Collects the variables `op` ([`forwarded_env_name`]) and an
    /// `mfa_command` ([`mfa_env_name`]) may get from this process's
    /// environment; each runner passes on only its own.
    pub fn from_current() -> Self {
        ClientEnv(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| forwarded_env_name(k) || mfa_env_name(k))
                .collect(),
        )
    }
}

/// A one-time MFA code typed by the user. Zeroized when dropped; `Debug`
/// never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct MfaCode(pub String);

impl std::fmt::Debug for MfaCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaCode(..)")
    }
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Ok(Reply),
    Error(ErrorReply),
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    Pong {
        version: String,
        pid: u32,
    },
    Done,
    Rotated(Rotation),
    Status(Box<Status>),
    Doctor {
        checks: Vec<Check>,
    },
    Credentials(Credentials),
    EksToken(EksToken),
    Cluster(ClusterInfo),
    Profiles(Profiles),
    ConsoleLogin(ConsoleLogin),
    CredentialServer(CredentialServer),
    SignIn(SignInPrompt),
    SsoRoles {
        roles: Vec<SsoRole>,
    },
    /// EKS cluster names ([`Request::ListClusters`]).
    ClusterNames(ClusterNames),
    /// Role ARNs ([`Request::AssumableRoles`]).
    RoleArns(RoleArns),
}

/// The EKS clusters a role may list in a region ([`Reply::ClusterNames`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNames {
    pub names: Vec<String>,
}

/// The roles an identity's IAM user may assume ([`Reply::RoleArns`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleArns {
    pub arns: Vec<String>,
}

/// A device authorization waiting for the user: never a token or secret
/// (the user code is what the user types; it signs nobody in by itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInPrompt {
    pub identity: String,
    pub start_url: String,
    /// Which authorization this is, for [`Request::SignInWait`].
    pub serial: u64,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub user_code: String,
    /// Seconds the user has to approve.
    pub expires_in: u64,
    /// This request started it (false: it joined one already running).
    pub started: bool,
}

/// One account x role an `sso` identity may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoRole {
    pub account_id: String,
    pub account_name: String,
    pub role_name: String,
}

/// A failed answer: a class for scripts and one actionable line for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub kind: ErrorKind,
    pub message: String,
    /// With [`ErrorKind::NeedsMfaCode`]: the identity that needs the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// Classes of failure a client may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The daemon was locked with `pctl lock`.
    Locked,
    /// 1Password could not be read.
    Op,
    /// STS or EKS refused or failed.
    Aws,
    /// The configuration is missing or wrong.
    Config,
    /// The request itself is malformed.
    BadRequest,
    /// The daemon runs another version.
    Version,
    /// The daemon is shutting down or overloaded.
    Unavailable,
    /// The daemon must read 1Password for this request and it carried no
    /// 1Password environment: the client resends it with `env`.
    NeedsEnv,
    /// An identity with `mfa = "prompt"` must unlock and this request
    /// carried no code: a client with a terminal asks for one and sends
    /// `Unlock { identity, mfa_code }`; one without says to run `pctl unlock`.
    NeedsMfaCode,
    /// An `sso` identity must sign in to IAM Identity Center: a client
    /// that can show a URL (a terminal or a browser opener) sends
    /// [`Request::SignIn`] for `identity`, shows the prompt, waits with
    /// [`Request::SignInWait`] and resends; one that cannot shows the message.
    NeedsSignIn,
    /// A role with `confirm = true` needs a new session and the client has
    /// a terminal: it asks the user (the message is the question) and, on a
    /// yes, resends the request with [`Caller::confirmed`] naming the role.
    NeedsConfirmation,
    /// The config refuses this request: a program not in the role's
    /// `allowed_programs`, a break-glass session not confirmed.
    Refused,
}

/// How a `pctl doctor` check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

/// One `pctl doctor` check: what was checked, what was found and, unless
/// it is OK, what to do about it. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &str, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            level: Level::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            level: Level::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            level: Level::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Role session credentials. Zeroized when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// RFC 3339, UTC.
    pub expiration: String,
    pub region: String,
    /// One line for stderr when the session is not what was asked for
    /// (`--duration` clamped to what AWS allows). Never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// An EKS bearer token and when kubectl should ask again.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct EksToken {
    pub token: String,
    /// RFC 3339, UTC.
    pub expiration: String,
}

impl std::fmt::Debug for EksToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksToken")
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// Where a cluster's API server is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// The configured key (`[clusters.KEY]`).
    pub key: String,
    /// The EKS cluster name.
    pub name: String,
    pub role: String,
    pub region: String,
    pub endpoint: String,
    /// Base64 PEM bundle, as EKS returns it.
    pub certificate_authority_data: String,
    pub arn: String,
}

/// A completed key rotation: key IDs only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub identity: String,
    pub old_key_id: String,
    pub new_key_id: String,
    /// The old key was deleted; when not, `note` says what to do.
    pub old_deleted: bool,
    pub note: Option<String>,
}

/// Configured roles and clusters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profiles {
    pub region: String,
    pub roles: Vec<String>,
    pub clusters: Vec<String>,
    /// Each cluster's role (`[clusters.KEY] role`), for kubeconfig entries
    /// written without asking EKS.
    #[serde(default)]
    pub cluster_roles: BTreeMap<String, String>,
    /// The configured identities (`default` is `[onepassword]`).
    #[serde(default)]
    pub identities: Vec<String>,
}

/// A console sign-in URL (a bearer credential for the console, valid 15
/// minutes), or with `redirect` the one-shot loopback link to it:
/// zeroized when dropped, never in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct ConsoleLogin {
    pub url: String,
    /// When the console session ends, RFC 3339, UTC.
    pub session_expires: String,
    /// How the client opens it (`[console] browser`).
    #[serde(default)]
    #[zeroize(skip)]
    pub browser: Browser,
    /// As [`Credentials::note`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `[console] browser`: how `pctl login` opens the console.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Browser {
    /// `$BROWSER`, else the platform's opener.
    #[default]
    Default,
    /// Firefox (`command`, default `firefox`) with the `ext+container:` URL
    /// of the "Open external links in a container" extension: a container
    /// named after the role.
    FirefoxContainer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
    },
    /// A Chromium-family browser (`command`, default the first of chromium,
    /// chromium-browser, google-chrome, brave-browser on PATH) with a
    /// per-role `--user-data-dir` under the XDG data directory.
    ChromiumProfile {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
    },
    /// This argv, the URL appended (or put in place of `%s`).
    Command { argv: Vec<String> },
}

impl std::fmt::Debug for ConsoleLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleLogin")
            .field("session_expires", &self.session_expires)
            .finish_non_exhaustive()
    }
}

/// Where a credential endpoint listens and the `Authorization` value it
/// wants. Zeroized when dropped, the token never in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct CredentialServer {
    /// `http://127.0.0.1:PORT/role/NAME`, for `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub url: String,
    /// For `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    pub token: String,
    /// The config's region, for `AWS_REGION`.
    pub region: String,
    /// As [`Credentials::note`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl std::fmt::Debug for CredentialServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// What `pctl status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub locked: bool,
    /// Why the daemon is locked: "never unlocked", "pctl lock", "idle", "lifetime".
    pub lock_reason: Option<String>,
    pub unlocked_at: Option<String>,
    /// When the idle or lifetime limit will lock the daemon.
    pub locks_at: Option<String>,
    pub config: String,
    /// The `op` executable the last unlock ran (absolute path).
    #[serde(default)]
    pub op_path: Option<String>,
    /// When the MFA session (GetSessionToken) ends, if unlocked with MFA.
    #[serde(default)]
    pub mfa_session_expires: Option<String>,
    /// Why secret pages could not be locked in RAM; `None` when they are.
    #[serde(default)]
    pub mlock: Option<String>,
    pub roles: Vec<RoleStatus>,
    pub tokens: Vec<TokenStatus>,
    pub counters: Counters,
    /// The most recent issuances, newest last.
    pub recent: Vec<AuditRecord>,
    /// Each configured identity (the top-level lock fields summarise them).
    #[serde(default)]
    pub identities: Vec<IdentityStatus>,
    /// Where each configured role was defined and which identity it uses.
    #[serde(default)]
    pub role_origins: Vec<RoleOrigin>,
    /// How the asking client's setup differs from the daemon's
    /// ([`Setup::differences`]); `None` when it agrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_differs: Option<String>,
}

/// One identity in `status`. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityStatus {
    pub name: String,
    pub item: String,
    pub vault: String,
    #[serde(default)]
    pub account: Option<String>,
    /// Where the MFA code comes from: "item", "prompt", "process"; or
    /// [`IdentityStatus::NO_MFA`] once an unlock showed the item has no
    /// MFA serial.
    pub mfa: String,
    pub locked: bool,
    pub lock_reason: Option<String>,
    pub unlocked_at: Option<String>,
    pub locks_at: Option<String>,
    pub op_path: Option<String>,
    pub mfa_session_expires: Option<String>,
    /// Source reads (one `op item get` each, plus a retry on network trouble).
    pub op_reads: u64,
    pub get_session_token: u64,
    /// Why the last unlock attempt failed, if none succeeded since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_unlock_failure: Option<String>,
    /// What the identity waits for now (a 1Password approval, a pinentry
    /// window, the next one-time password after a relock), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// An IAM Identity Center identity's sign-in (`source = "sso"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso: Option<SsoIdentityStatus>,
}

impl IdentityStatus {
    /// The `mfa` of an identity whose item has no MFA serial (learnt at its
    /// last unlock): it unlocks without an MFA session.
    pub const NO_MFA: &'static str = "none";
}

/// The state of an `sso` identity's sign-in. Never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoIdentityStatus {
    pub start_url: String,
    pub region: String,
    /// Signed in: the daemon holds an access token.
    pub signed_in: bool,
    /// When the access token expires (it is refreshed before), RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires: Option<String>,
    /// A refresh token is held: the sign-in outlives the access token.
    pub refresh_available: bool,
    /// A device authorization is waiting for the user's approval.
    pub sign_in_pending: bool,
}

/// Where a role comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleOrigin {
    pub role: String,
    pub identity: String,
    /// The config file or included file that defines it.
    pub file: String,
    /// The role's ARN: from the config, or its name joined with the account
    /// ID read at unlock; `None` while that identity has not been unlocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleStatus {
    pub role: String,
    pub arn: String,
    pub expiration: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStatus {
    pub cluster: String,
    pub role: String,
    pub expiration: String,
}

/// Calls made on behalf of clients since the daemon started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub requests: u64,
    pub op_calls: u64,
    pub get_session_token: u64,
    pub assume_role: u64,
    pub eks_tokens_minted: u64,
    pub describe_cluster: u64,
    pub refused_peers: u64,
}

/// One issuance, as written to the audit log. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: String,
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    pub exe: Option<String>,
    /// "credentials", "eks_token", "describe_cluster", "unlock", ...
    pub issued: String,
    pub role: Option<String>,
    pub cluster: Option<String>,
    pub expiration: Option<String>,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// Why a request body was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The client runs another version and asked for something other than
    /// `ping` or `stop`: it should replace this daemon.
    #[error("daemon runs pctl {VERSION}, client is {0}")]
    Version(String),
    #[error("malformed request: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Decodes a request body (the bytes after the length prefix).
///
/// The envelope's `version` (and the request's `kind`) are also read
/// leniently: a newer client whose request carries a field this version does
/// not know gets [`RequestError::Version`], not a strict-decoding error, so
/// it replaces the old daemon. `ping` and `stop` are understood from any
/// version. A request of this version is decoded strictly.
///
/// The strict decoding is tried first and is the only pass over a request
/// of this version (every request the daemon answers); the lenient look is
/// taken only when that fails or names another version.
pub fn decode_request(body: &[u8]) -> Result<Envelope, RequestError> {
    let strict = serde_json::from_slice::<Envelope>(body);
    if matches!(&strict, Ok(env) if env.version == VERSION) {
        return Ok(strict?);
    }
    #[derive(Deserialize)]
    struct Peek {
        version: String,
        request: PeekKind,
    }
    #[derive(Deserialize)]
    struct PeekKind {
        kind: String,
    }
    if let Ok(peek) = serde_json::from_slice::<Peek>(body) {
        if peek.version != VERSION {
            let request = match peek.request.kind.as_str() {
                "ping" => Request::Ping,
                "stop" => Request::Stop,
                _ => return Err(RequestError::Version(peek.version)),
            };
            return Ok(Envelope {
                version: peek.version,
                request,
                setup: None,
                caller: None,
            });
        }
    }
    Ok(strict?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn setup_differences_name_settings_never_values() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let path = std::path::Path::new("/a.toml");
        let daemon = Setup::from_vars(path, vars(&[("AWS_ENDPOINT_URL", "http://x")]));
        // the same effective STS endpoint, set another way: alike
        let same = Setup::from_vars(
            path,
            vars(&[
                ("AWS_ENDPOINT_URL", "http://x"),
                ("AWS_ENDPOINT_URL_STS", "http://x"),
            ]),
        );
        assert_eq!(daemon.differences(&same), None);
        let other = Setup::from_vars(
            std::path::Path::new("/b.toml"),
            vars(&[
                ("AWS_ENDPOINT_URL", "http://x"),
                ("HTTPS_PROXY", "http://user:secret@proxy:3128"),
            ]),
        );
        let d = daemon.differences(&other).unwrap();
        assert!(d.contains("/a.toml") && d.contains("/b.toml"), "{d}");
        assert!(
            d.contains("HTTPS proxy (HTTPS_PROXY / https_proxy) is set in this shell"),
            "{d}"
        );
        assert!(d.contains("run `pctl stop`"), "{d}");
        assert!(!d.contains("secret") && !d.contains("proxy:3128"), "{d}");
        assert!(!d.contains("STS endpoint"), "{d}");
    }

    #[test]
    fn round_trip_request() {
        let env = Envelope {
            version: VERSION.into(),
            setup: Some(Setup::current(std::path::Path::new("/c.toml"))),
            caller: Some(Caller {
                terminal: true,
                program: Some("terraform".into()),
                confirmed: None,
            }),
            request: Request::EksToken {
                cluster: "platform".into(),
                role: None,
                env: Some(ClientEnv::default()),
                get_token: None,
            },
        };
        let frame = encode(&env).unwrap();
        let back: Envelope = read_frame(&mut &frame[..]).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn eks_token_get_token_is_additive() {
        // An older client's frame (no `get_token`) still decodes, and a request
        // without it is written exactly as before.
        let old = format!(
            r#"{{"version":"{VERSION}","request":{{"kind":"eks_token","cluster":"p","role":null}}}}"#
        );
        let env: Envelope = decode_request(old.as_bytes()).unwrap();
        assert_eq!(
            env.request,
            Request::EksToken {
                cluster: "p".into(),
                role: None,
                env: None,
                get_token: None
            }
        );
        assert_eq!(serde_json::to_string(&env).unwrap(), old);
        let adhoc = Request::EksToken {
            cluster: String::new(),
            role: None,
            env: None,
            get_token: Some(GetTokenFlags {
                cluster_name: Some("other".into()),
                region: Some("eu-west-1".into()),
                role_arn: Some("arn:aws:iam::000000000000:role/x".into()),
            }),
        };
        let text = serde_json::to_string(&adhoc).unwrap();
        assert!(
            text.contains(r#""get_token":{"cluster_name":"other","region":"eu-west-1""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), adhoc);
    }

    #[test]
    fn oversize_prefix_is_refused_before_reading() {
        let mut data = (100_000_000u32).to_be_bytes().to_vec();
        data.extend_from_slice(b"{}");
        let err = read_frame::<_, Envelope>(&mut &data[..]).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(100_000_000)), "{err}");
    }

    #[test]
    fn newer_client_with_an_unknown_field_gets_version_not_malformed() {
        let body = br#"{"version":"99.0.0","trace":"x","request":{"kind":"credentials","role":"admin","new":1}}"#;
        match decode_request(body) {
            Err(RequestError::Version(v)) => assert_eq!(v, "99.0.0"),
            other => panic!("{other:?}"),
        }
        // any version may still ping and stop (to find and replace a daemon)
        let stop = br#"{"version":"99.0.0","request":{"kind":"stop","grace":"5s"}}"#;
        assert_eq!(decode_request(stop).unwrap().request, Request::Stop);
        // this version is decoded strictly
        let same = format!(
            r#"{{"version":"{VERSION}","request":{{"kind":"credentials","role":"a","x":1}}}}"#
        );
        assert!(matches!(
            decode_request(same.as_bytes()),
            Err(RequestError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_kind_is_an_error() {
        let body = br#"{"version":"0","request":{"kind":"format_disk"}}"#;
        assert!(decode_request(body).is_err());
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = Credentials {
            access_key_id: "ASIAX".into(),
            secret_access_key: "very-secret".into(),
            session_token: "tok".into(),
            expiration: "2026-01-01T00:00:00Z".into(),
            region: "us-east-1".into(),
            note: None,
        };
        let s = format!("{c:?}");
        assert!(!s.contains("very-secret") && !s.contains("tok\""), "{s}");
    }

    #[test]
    fn login_url_and_endpoint_token_stay_out_of_debug() {
        let l = ConsoleLogin {
            url: "https://signin/federation?SigninToken=very-secret".into(),
            session_expires: "2026-01-01T00:00:00Z".into(),
            browser: Browser::Default,
            note: None,
        };
        let s = CredentialServer {
            url: "http://127.0.0.1:1/credentials".into(),
            token: "tok-very-secret".into(),
            region: "us-east-1".into(),
            note: None,
        };
        let d = format!("{l:?} {s:?}");
        assert!(!d.contains("very-secret") && d.contains("127.0.0.1"), "{d}");
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode_request(&bytes);
            let _ = read_frame::<_, Envelope>(&mut &bytes[..]);
        }

        #[test]
        fn decoder_round_trips_any_role(role in ".{0,200}", cluster in "[a-z0-9-]{1,40}") {
            let env = Envelope { version: VERSION.into(), setup: None, caller: None, request: Request::EksToken {
                cluster, role: Some(role), env: Some(ClientEnv::default()), get_token: None } };
            let frame = encode(&env).unwrap();
            let back: Envelope = read_frame(&mut &frame[..]).unwrap();
            prop_assert_eq!(back, env);
        }
    }
}
