//! What a vault unlocks from. A [`CredentialSource`] turns the client's
//! environment into the IAM user's keys (and, through [`mfa`], an MFA code);
//! 1Password ([`onepassword`]) is the first. A second source adds a module
//! here and touches nothing else.

pub mod mfa;
pub mod onepassword;
pub mod sso;

use pctl_protocol::ClientEnv;

use crate::config::{Config, IdentityConfig};
use crate::secret::LockedString;
pub use crate::BoxFuture;

/// What a source holds, in locked memory.
pub struct ItemSecrets {
    pub access_key_id: LockedString,
    pub secret_access_key: LockedString,
    pub account_id: String,
    pub mfa: Option<Mfa>,
}

/// MFA device serial and the code that was current when the item was read.
pub struct Mfa {
    pub serial: String,
    pub code: LockedString,
}

/// One successful read.
pub struct SourceRead {
    pub secrets: ItemSecrets,
    /// What was read, for `status` and the audit log (the `op` path).
    pub origin: Option<String>,
}

/// Why a source could not be read; the message is safe to show and log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub message: String,
    /// What was (or would have been) run, when known.
    pub origin: Option<String>,
}

/// Where the user's long-lived keys come from.
pub trait CredentialSource: Send + Sync {
    /// Reads `identity`'s keys once. May wait for a person (a 1Password prompt).
    fn read<'a>(
        &'a self,
        identity: &'a IdentityConfig,
        cfg: &'a Config,
        env: &'a ClientEnv,
    ) -> BoxFuture<'a, Result<SourceRead, SourceError>>;

    /// How many times the source ran its backend (`op` calls), for `status`.
    fn runs(&self) -> u64;
}
