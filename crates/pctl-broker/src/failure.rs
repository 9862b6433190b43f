//! A request failure as the client will see it: a class and one line.

use pctl_protocol::{ErrorKind, ErrorReply};

use crate::aws::AwsError;
use crate::config::ConfigError;
use crate::source::SourceError;

/// A request failure, as sent to the client. Cloned to every request that
/// waited on the same attempt (single-flight shares failures too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub ErrorKind, pub String);

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure(ErrorKind::Config, e.0)
    }
}
impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure(ErrorKind::Op, e.message)
    }
}
impl From<AwsError> for Failure {
    fn from(e: AwsError) -> Self {
        Failure(ErrorKind::Aws, e.0)
    }
}
impl From<Failure> for ErrorReply {
    fn from(f: Failure) -> Self {
        ErrorReply {
            identity: mfa_identity(&f),
            kind: f.0,
            message: f.1,
        }
    }
}

/// The request must unlock and carried no 1Password environment.
pub fn needs_env() -> Failure {
    Failure(
        ErrorKind::NeedsEnv,
        "1Password must be read: resend the request with the 1Password environment".into(),
    )
}

/// An identity with `mfa = "prompt"` needs a typed code; `why` explains a
/// refusal of one. The message is what a client without a terminal shows.
pub fn needs_mfa_code(identity: &str, why: &str) -> Failure {
    Failure(
        ErrorKind::NeedsMfaCode,
        format!(
            "identity {identity} needs an MFA code (mfa = \"prompt\"){why}: run \
             `pctl unlock --identity {identity}` in a terminal and type the code, then retry"
        ),
    )
}

/// The identity a [`needs_mfa_code`] or [`needs_sign_in`] message names.
pub fn mfa_identity(f: &Failure) -> Option<String> {
    if !matches!(f.0, ErrorKind::NeedsMfaCode | ErrorKind::NeedsSignIn) {
        return None;
    }
    let rest = f.1.strip_prefix("identity ")?;
    rest.split_whitespace().next().map(str::to_string)
}

/// Locked by `pctl lock`; `last_failure`: why the last unlock attempt failed.
pub fn locked(last_failure: Option<&str>) -> Failure {
    let last = last_failure
        .map(|w| format!("; last unlock failed: {w}"))
        .unwrap_or_default();
    Failure(
        ErrorKind::Locked,
        format!("pctl is locked (by `pctl lock`{last}): run `pctl unlock`"),
    )
}

/// A lock happened while this request was running: nothing was issued.
pub fn locked_meanwhile() -> Failure {
    Failure(
        ErrorKind::Locked,
        "pctl was locked while this request ran, so nothing was issued: run `pctl unlock`".into(),
    )
}

/// An `sso` identity must sign in (device authorization). The message is
/// what a client that cannot show a URL prints.
pub fn needs_sign_in(identity: &str, start_url: &str, why: &str) -> Failure {
    Failure(
        ErrorKind::NeedsSignIn,
        format!(
            "identity {identity} must sign in to IAM Identity Center ({start_url}){why}: run \
             `pctl unlock --identity {identity}` in a terminal, then retry"
        ),
    )
}
