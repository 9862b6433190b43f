//! The AWS side: STS sessions ([`sts`]), EKS tokens and DescribeCluster
//! ([`eks`]), console sign-in URLs ([`federation`]), and what both share: the session type, the per-region SDK
//! configuration and how AWS errors are phrased for the user.
//!
//! Clients are built per call from a cached base `SdkConfig` (region,
//! endpoint overrides from `AWS_ENDPOINT_URL*`, retries with backoff for
//! throttling, timeouts) plus static credentials taken from locked memory.

pub mod eks;
pub mod federation;
pub mod iam;
pub mod sso;
pub mod sts;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use crate::secret::LockedString;

/// The longest a single AWS operation may take, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest AWS error code / message pctl repeats (characters).
const CODE_MAX: usize = 64;
const MESSAGE_MAX: usize = 240;

/// Short-lived credentials from STS, in locked memory.
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: LockedString,
    pub session_token: Option<LockedString>,
    pub expiration: SystemTime,
}

impl Session {
    /// Time left before expiry (zero when expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expiration.duration_since(now).unwrap_or_default()
    }

    pub(crate) fn provider(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose(),
            self.session_token.as_ref().map(|t| t.expose().to_string()),
            Some(self.expiration),
            "pctl",
        )
    }
}

/// A failed AWS call, phrased for the user.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct AwsError(pub String);

/// Builds and caches one base SDK configuration per region.
#[derive(Default)]
pub struct Sdk {
    base: std::sync::Mutex<HashMap<String, SdkConfig>>,
}

impl Sdk {
    /// Drops the cached configurations and with them the HTTP connection
    /// pools, whose read buffers may still hold the last STS response.
    pub fn reset(&self) {
        let old = std::mem::take(&mut *self.base.lock().unwrap_or_else(|p| p.into_inner()));
        drop(old);
    }

    pub(crate) async fn config(&self, region: &str) -> SdkConfig {
        if let Some(c) = self
            .base
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(region)
        {
            return c.clone();
        }
        let c = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .no_credentials()
            // Every call passes static credentials from locked memory. The SDK's
            // default lazy identity cache lives in this shared SdkConfig and would
            // keep a heap copy of every key and session it ever signed with (up to
            // 64 partitions, never dropped by `pctl lock`): don't cache.
            .identity_cache(IdentityCache::no_cache())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .load()
            .await;
        self.base
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(region.to_string(), c.clone());
        c
    }
}

/// Text from AWS made safe to repeat (see [`crate::text::one_line`]).
pub use crate::text::one_line as clean;

/// The AWS error code and message (cleaned and capped): from the SDK's
/// parsed metadata, or read from the raw XML body when the SDK could not
/// parse it (some endpoints wrap errors in `<Errors>`), or the HTTP status.
pub(crate) fn code_and_message<E: ProvideErrorMetadata + std::error::Error>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> (Option<String>, Option<String>) {
    let tidy = |code: Option<String>, msg: Option<String>| {
        (
            code.map(|c| clean(&c, CODE_MAX)).filter(|c| !c.is_empty()),
            msg.map(|m| clean(&m, MESSAGE_MAX))
                .filter(|m| !m.is_empty()),
        )
    };
    if let Some(code) = e.code() {
        return tidy(Some(code.to_string()), e.message().map(str::to_string));
    }
    let Some(raw) = e.raw_response() else {
        return (None, None);
    };
    let body = raw
        .body()
        .bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let len = body[start..].find(&format!("</{name}>"))?;
        Some(body[start..start + len].to_string())
    };
    let code = tag("Code").or_else(|| Some(format!("HTTP {}", raw.status().as_u16())));
    tidy(code, tag("Message"))
}

/// One line about a failed call that is not a known AWS error code.
pub(crate) fn describe<E: ProvideErrorMetadata + std::error::Error>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String {
    match e {
        SdkError::DispatchFailure(d) => {
            let what = if d.is_timeout() {
                "timed out"
            } else {
                "connection failed"
            };
            format!("cannot reach AWS ({what}): check the network, or AWS_ENDPOINT_URL if set")
        }
        SdkError::TimeoutError(_) => {
            "AWS did not answer in time: check the network and retry".into()
        }
        SdkError::ResponseError(_) => "AWS sent a response pctl could not read".into(),
        _ => match code_and_message(e) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            _ => clean(&e.to_string(), MESSAGE_MAX),
        },
    }
}

/// An STS error as the SDK hands it over, for the error-phrasing tests of
/// this module's children.
#[cfg(test)]
pub(crate) fn service_error(
    code: &str,
    message: &str,
) -> SdkError<
    aws_sdk_sts::operation::assume_role::AssumeRoleError,
    aws_smithy_runtime_api::http::Response,
> {
    let meta = aws_sdk_sts::error::ErrorMetadata::builder()
        .code(code)
        .message(message)
        .build();
    let raw = aws_smithy_runtime_api::http::Response::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
        aws_smithy_types::body::SdkBody::empty(),
    );
    SdkError::service_error(
        aws_sdk_sts::operation::assume_role::AssumeRoleError::generic(meta),
        raw,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever AWS answers, what pctl repeats of it is one printable
        /// line of bounded length, and a printable error code survives.
        #[test]
        fn aws_errors_are_clean_and_bounded(code in "[A-Za-z]{1,30}", message in "(?s).{0,2000}") {
            let d = describe(&service_error(&code, &message));
            prop_assert!(!d.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'), "{:?}", d);
            prop_assert!(d.chars().count() <= CODE_MAX + MESSAGE_MAX + 2, "{}", d.chars().count());
            prop_assert!(d.contains(&code), "{}", d);
        }

        #[test]
        fn clean_never_panics_and_caps(s in "(?s).{0,1000}", max in 0usize..300) {
            let c = clean(&s, max);
            prop_assert!(c.chars().count() <= max + 1);
            prop_assert!(!c.chars().any(char::is_control));
        }
    }
}
