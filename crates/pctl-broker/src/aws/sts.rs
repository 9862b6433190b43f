//! STS behind a trait: GetSessionToken with MFA (the base session) and
//! AssumeRole. The broker only sees [`Sts`], so tests run it against a
//! fake that counts calls; [`SdkSts`] is the real one.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use super::{code_and_message, describe, AwsError, Sdk, Session};
use crate::secret::LockedString;

pub use crate::BoxFuture;

/// The STS calls the broker makes.
pub trait Sts: Send + Sync {
    /// GetSessionToken with the MFA device: the base session for every role.
    fn get_session_token<'a>(
        &'a self,
        region: &'a str,
        user: &'a Session,
        serial: &'a str,
        code: &'a LockedString,
        duration: Duration,
    ) -> BoxFuture<'a, Result<Session, AwsError>>;

    /// AssumeRole with the given credentials, and the role's `ExternalId`,
    /// `SourceIdentity` and session tags (each only when set).
    fn assume_role<'a>(
        &'a self,
        region: &'a str,
        from: &'a Session,
        role_arn: &'a str,
        session_name: &'a str,
        duration: Duration,
        extras: &'a AssumeExtras,
    ) -> BoxFuture<'a, Result<Session, AwsError>>;

    /// The ARN `key` authenticates as (GetCallerIdentity), or None when it
    /// cannot be learnt. The default (fakes) knows none.
    fn caller_arn<'a>(
        &'a self,
        region: &'a str,
        key: &'a Session,
    ) -> BoxFuture<'a, Option<String>> {
        let _ = (region, key);
        Box::pin(async { None })
    }
}

/// AssumeRole options beyond the role and session (`[roles.X]` keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AssumeExtras {
    pub external_id: Option<String>,
    pub source_identity: Option<String>,
    /// Session tags, in key order.
    pub tags: Vec<(String, String)>,
    pub transitive_tags: Vec<String>,
}

/// STS through the AWS SDK.
pub struct SdkSts {
    sdk: Arc<Sdk>,
}

impl SdkSts {
    pub fn new(sdk: Arc<Sdk>) -> Self {
        SdkSts { sdk }
    }

    async fn client(
        &self,
        region: &str,
        creds: aws_credential_types::Credentials,
    ) -> aws_sdk_sts::Client {
        let sdk = self.sdk.config(region).await;
        let conf = aws_sdk_sts::config::Builder::from(&sdk)
            .credentials_provider(creds)
            .build();
        aws_sdk_sts::Client::from_conf(conf)
    }
}

impl Sts for SdkSts {
    fn caller_arn<'a>(
        &'a self,
        region: &'a str,
        key: &'a Session,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            super::iam::caller_arn(&self.sdk, region, key)
                .await
                .inspect_err(|e| tracing::warn!("role sessions keep the name pctl: {e}"))
                .ok()
        })
    }

    fn assume_role<'a>(
        &'a self,
        region: &'a str,
        from: &'a Session,
        role_arn: &'a str,
        session_name: &'a str,
        duration: Duration,
        extras: &'a AssumeExtras,
    ) -> BoxFuture<'a, Result<Session, AwsError>> {
        Box::pin(async move {
            let tags = extras
                .tags
                .iter()
                .map(|(k, v)| {
                    aws_sdk_sts::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .map_err(|e| AwsError(format!("session tag {k}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let client = self.client(region, from.provider()).await;
            let out = client
                .assume_role()
                .role_arn(role_arn)
                .role_session_name(session_name)
                .duration_seconds(duration.as_secs() as i32)
                .set_external_id(extras.external_id.clone())
                .set_source_identity(extras.source_identity.clone())
                .set_tags((!tags.is_empty()).then_some(tags))
                .set_transitive_tag_keys(
                    (!extras.transitive_tags.is_empty()).then(|| extras.transitive_tags.clone()),
                )
                .send()
                .await
                .map_err(|e| sts_error("AssumeRole", role_arn, e))?;
            session_from(out.credentials())
        })
    }

    fn get_session_token<'a>(
        &'a self,
        region: &'a str,
        user: &'a Session,
        serial: &'a str,
        code: &'a LockedString,
        duration: Duration,
    ) -> BoxFuture<'a, Result<Session, AwsError>> {
        Box::pin(async move {
            let client = self.client(region, user.provider()).await;
            let out = client
                .get_session_token()
                .serial_number(serial)
                .token_code(code.expose())
                .duration_seconds(duration.as_secs() as i32)
                .send()
                .await
                .map_err(|e| sts_error("GetSessionToken (MFA)", "", e))?;
            session_from(out.credentials())
        })
    }
}

fn session_from(c: Option<&aws_sdk_sts::types::Credentials>) -> Result<Session, AwsError> {
    let c = c.ok_or_else(|| AwsError("STS answered without credentials".into()))?;
    let expiration = SystemTime::try_from(*c.expiration())
        .map_err(|_| AwsError("STS answered with an invalid expiration".into()))?;
    Ok(Session {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: LockedString::new(c.secret_access_key()),
        session_token: Some(LockedString::new(c.session_token())),
        expiration,
    })
}

/// A failed STS call as one line: the AWS error code and AWS's own message
/// (cleaned and capped) stay next to pctl's hint, which names the likeliest
/// cause first.
pub(crate) fn sts_error<E: ProvideErrorMetadata + std::error::Error>(
    call: &str,
    role_arn: &str,
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> AwsError {
    let (code, message) = code_and_message(&e);
    let code = code.unwrap_or_default();
    // "(Code: AWS's message)": what the user searches for, verbatim.
    let aws = match &message {
        Some(m) => format!("({code}: {m})"),
        None => format!("({code})"),
    };
    let assume = call.starts_with("AssumeRole");
    let expired_signature = message
        .as_deref()
        .is_some_and(|m| m.to_ascii_lowercase().contains("signature expired"));
    let msg = match code.as_str() {
        _ if expired_signature || code == "RequestExpired" => format!(
            "STS {call} refused the request as signed at the wrong time {aws}: this machine's clock is off; \
             fix the clock (`pctl doctor` measures the skew), then retry"
        ),
        "AccessDenied" | "HTTP 403" if assume => format!(
            "STS AssumeRole {role_arn} was denied {aws}: your IAM user's policy must allow \
             sts:AssumeRole on it and the role's trust policy must trust your user (and MFA, if \
             it requires it); or the role ARN has a typo"
        ),
        "AccessDenied" | "HTTP 403" => format!(
            "STS {call} was denied {aws}: check the MFA serial and the one-time code (and this \
             machine's clock, `pctl doctor`), and that your IAM user may call it"
        ),
        "InvalidClientTokenId" => format!(
            "STS {call} rejected the access key from 1Password {aws}: check or rotate the key in the item, then `pctl unlock`"
        ),
        "SignatureDoesNotMatch" | "IncompleteSignature" => format!(
            "STS {call} rejected the request signature {aws}: check this machine's clock first \
             (`pctl doctor` measures the skew), then the secret key in the 1Password item, then `pctl unlock`"
        ),
        "ExpiredToken" => format!("STS {call}: the session has expired {aws}: run `pctl unlock`"),
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            format!("STS {call} is throttled {aws} and retries did not get through: wait a moment and retry")
        }
        "RegionDisabledException" => format!("STS {call}: STS is not activated in this region {aws}: activate it in IAM or change region"),
        _ => format!("STS {call} failed: {}", describe(&e)),
    };
    AwsError(msg.replace("  ", " "))
}

#[cfg(test)]
mod tests {
    use super::super::service_error;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_message_is_one_capped_line_keeping_the_code() {
        let msg = format!("denied\x1b]0;pwned\x07\r\nFAKE: ok{}", "x".repeat(5000));
        let e = sts_error(
            "AssumeRole",
            "arn:aws:iam::1:role/r",
            service_error("AccessDenied", &msg),
        );
        assert!(e.0.contains("AccessDenied"), "{}", e.0);
        assert!(!e.0.chars().any(|c| c.is_control()), "{:?}", e.0);
        assert!(e.0.chars().count() < 600, "{}", e.0.len());
    }

    #[test]
    fn assume_role_denied_names_policy_trust_and_arn_next_to_aws_message() {
        let aws = "User: arn:aws:iam::1:user/u is not authorized to perform: sts:AssumeRole";
        let e = sts_error(
            "AssumeRole",
            "arn:aws:iam::1:role/r",
            service_error("AccessDenied", aws),
        );
        for needle in [
            "AccessDenied",
            aws,
            "user's policy",
            "trust policy",
            "ARN has a typo",
        ] {
            assert!(e.0.contains(needle), "{needle:?} not in {}", e.0);
        }
    }

    #[test]
    fn signature_errors_name_the_clock_first() {
        let e = sts_error(
            "AssumeRole",
            "arn:aws:iam::1:role/r",
            service_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match",
            ),
        );
        let clock = e.0.find("clock").expect(&e.0);
        assert!(clock < e.0.find("secret key").expect(&e.0), "{}", e.0);
        assert!(
            e.0.contains("The request signature we calculated"),
            "{}",
            e.0
        );
        let e = sts_error(
            "AssumeRole",
            "arn:aws:iam::1:role/r",
            service_error(
                "SignatureDoesNotMatch",
                "Signature expired: 20260101T000000Z is now earlier than 20260101T001000Z",
            ),
        );
        assert!(e.0.contains("clock is off"), "{}", e.0);
        assert!(!e.0.contains("secret key"), "{}", e.0);
        assert!(e.0.contains("Signature expired: 2026"), "{}", e.0);
    }

    proptest! {
        /// Whatever AWS answers, pctl repeats one printable line of bounded
        /// length, and a printable error code survives.
        #[test]
        fn sts_errors_are_clean_and_bounded(code in "[A-Za-z]{1,30}", message in "(?s).{0,2000}") {
            let e = sts_error("AssumeRole", "arn:aws:iam::1:role/r", service_error(&code, &message));
            prop_assert!(!e.0.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'), "{:?}", e.0);
            prop_assert!(e.0.chars().count() <= 600, "{}", e.0.chars().count());
            prop_assert!(e.0.contains(&code), "{}", e.0);
        }
    }
}
