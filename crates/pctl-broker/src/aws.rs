//! The AWS side: STS sessions (GetSessionToken, AssumeRole), EKS
//! DescribeCluster, and presigned EKS bearer tokens.
//!
//! Clients are built per call from a cached base `SdkConfig` (region,
//! endpoint overrides from `AWS_ENDPOINT_URL*`, retries with backoff for
//! throttling, timeouts) plus static credentials taken from locked memory.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use base64::Engine;

use crate::secret::LockedString;

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

    fn provider(&self) -> aws_credential_types::Credentials {
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
pub struct Aws {
    base: std::sync::Mutex<HashMap<String, SdkConfig>>,
}

impl Aws {
    /// Drops the cached configurations and with them the HTTP connection
    /// pools, whose read buffers may still hold the last STS response.
    pub fn reset(&self) {
        let old = std::mem::take(&mut *self.base.lock().unwrap_or_else(|p| p.into_inner()));
        drop(old);
    }

    async fn sdk(&self, region: &str) -> SdkConfig {
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
                    .operation_timeout(Duration::from_secs(30))
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

    async fn sts(
        &self,
        region: &str,
        creds: aws_credential_types::Credentials,
    ) -> aws_sdk_sts::Client {
        let sdk = self.sdk(region).await;
        let conf = aws_sdk_sts::config::Builder::from(&sdk)
            .credentials_provider(creds)
            .build();
        aws_sdk_sts::Client::from_conf(conf)
    }

    /// GetSessionToken with the MFA device: the base session for every role.
    pub async fn mfa_session(
        &self,
        region: &str,
        user: &Session,
        serial: &str,
        code: &LockedString,
        duration: Duration,
    ) -> Result<Session, AwsError> {
        let client = self.sts(region, user.provider()).await;
        let out = client
            .get_session_token()
            .serial_number(serial)
            .token_code(code.expose())
            .duration_seconds(duration.as_secs() as i32)
            .send()
            .await
            .map_err(|e| sts_error("GetSessionToken (MFA)", "", e))?;
        session_from(out.credentials())
    }

    /// AssumeRole with the given credentials.
    pub async fn assume_role(
        &self,
        region: &str,
        from: &Session,
        role_arn: &str,
        session_name: &str,
        duration: Duration,
    ) -> Result<Session, AwsError> {
        let client = self.sts(region, from.provider()).await;
        let out = client
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .duration_seconds(duration.as_secs() as i32)
            .send()
            .await
            .map_err(|e| sts_error("AssumeRole", role_arn, e))?;
        session_from(out.credentials())
    }

    /// EKS DescribeCluster: endpoint, CA bundle and ARN.
    pub async fn describe_cluster(
        &self,
        region: &str,
        session: &Session,
        name: &str,
    ) -> Result<(String, String, String), AwsError> {
        let sdk = self.sdk(region).await;
        let conf = aws_sdk_eks::config::Builder::from(&sdk)
            .credentials_provider(session.provider())
            .build();
        let client = aws_sdk_eks::Client::from_conf(conf);
        let out = client.describe_cluster().name(name).send().await.map_err(|e| {
            let code = code_and_message(&e).0.unwrap_or_default();
            match code.as_str() {
                "ResourceNotFoundException" => AwsError(format!(
                    "EKS cluster \"{name}\" not found in {region}: check the cluster's name and region in the pctl config"
                )),
                "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" | "HTTP 403" => AwsError(format!(
                    "EKS DescribeCluster on \"{name}\" was denied for this role: allow eks:DescribeCluster, or pass --endpoint and --ca-file"
                )),
                _ => AwsError(format!("EKS DescribeCluster on \"{name}\" failed: {}", describe(&e))),
            }
        })?;
        let c = out
            .cluster()
            .ok_or_else(|| AwsError(format!("EKS returned no cluster for \"{name}\"")))?;
        Ok((
            c.endpoint().unwrap_or_default().to_string(),
            c.certificate_authority()
                .and_then(|ca| ca.data())
                .unwrap_or_default()
                .to_string(),
            c.arn().unwrap_or_default().to_string(),
        ))
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

/// The AWS error code and message: from the SDK's parsed metadata, or read
/// from the raw XML body when the SDK could not parse it (some endpoints
/// wrap errors in `<Errors>`), or the HTTP status.
fn code_and_message<E: ProvideErrorMetadata + std::error::Error>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> (Option<String>, Option<String>) {
    if let Some(code) = e.code() {
        return (Some(code.to_string()), e.message().map(str::to_string));
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
        Some(
            body[start..start + len]
                .chars()
                .take(300)
                .collect::<String>(),
        )
    };
    let code = tag("Code").or_else(|| Some(format!("HTTP {}", raw.status().as_u16())));
    (code, tag("Message"))
}

fn describe<E: ProvideErrorMetadata + std::error::Error>(
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
            _ => e.to_string(),
        },
    }
}

fn sts_error<E: ProvideErrorMetadata + std::error::Error>(
    call: &str,
    role_arn: &str,
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> AwsError {
    let (code, message) = code_and_message(&e);
    let detail = message.map(|m| format!(" ({m})")).unwrap_or_default();
    let msg = match code.as_deref().unwrap_or("") {
        "AccessDenied" | "HTTP 403" => format!(
            "STS {call} {role_arn} was denied (AccessDenied){detail}: the role's trust policy must allow your IAM user{}",
            if call.starts_with("AssumeRole") { " (and MFA, if it requires it)" } else { "" }
        ),
        "InvalidClientTokenId" => format!(
            "STS {call} rejected the access key from 1Password (InvalidClientTokenId): check or rotate the key in the item, then `pctl unlock`"
        ),
        "SignatureDoesNotMatch" => format!(
            "STS {call} rejected the secret access key from 1Password (SignatureDoesNotMatch): check the item, then `pctl unlock`"
        ),
        "ExpiredToken" => format!("STS {call}: the session has expired (ExpiredToken): run `pctl unlock`"),
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            format!("STS {call} is throttled ({}) and retries did not get through: wait a moment and retry", code.as_deref().unwrap_or(""))
        }
        "RegionDisabledException" => format!("STS {call}: STS is not activated in this region (RegionDisabledException): activate it in IAM or change region"),
        _ => format!("STS {call} failed: {}", describe(&e)),
    };
    AwsError(msg.replace("  ", " "))
}

/// The STS endpoint a token's presigned URL points at.
pub fn sts_endpoint(region: &str) -> String {
    for var in ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return v.trim_end_matches('/').to_string();
            }
        }
    }
    format!("https://sts.{region}.amazonaws.com")
}

/// How long kubectl may use a token (as `aws eks get-token`: STS accepts the
/// presigned URL for 15 minutes; we stop one minute short).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

/// Mints an EKS bearer token: `k8s-aws-v1.` + base64url(presigned
/// GetCallerIdentity URL with `x-k8s-aws-id` signed).
pub fn eks_token(
    session: &Session,
    region: &str,
    endpoint: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, AwsError> {
    use aws_sigv4::http_request::{
        sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    use aws_sigv4::sign::v4;

    let identity = session.provider().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| AwsError(format!("cannot sign the EKS token: {e}")))?
        .into();
    let url = format!("{endpoint}/?Action=GetCallerIdentity&Version=2011-06-15");
    let signable = SignableRequest::new(
        "GET",
        &url,
        std::iter::once(("x-k8s-aws-id", cluster)),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| AwsError(format!("cannot sign the EKS token: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| AwsError(format!("cannot sign the EKS token: {e}")))?
        .into_parts();
    let mut req = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(())
        .map_err(|e| AwsError(format!("invalid STS endpoint {endpoint}: {e}")))?;
    instructions.apply_to_request_http1x(&mut req);
    let signed = req.uri().to_string();
    let token = format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed.as_bytes())
    );
    if token.len() > 4096 {
        return Err(AwsError(
            "EKS token longer than 4096 bytes (session token too large)".into(),
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_matches_eks() {
        let s = Session {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: LockedString::new("secret"),
            session_token: Some(LockedString::new("sessiontoken")),
            expiration: SystemTime::now() + Duration::from_secs(3600),
        };
        let t = eks_token(
            &s,
            "us-east-1",
            "https://sts.us-east-1.amazonaws.com",
            "platform",
            SystemTime::now(),
        )
        .unwrap();
        let b64 = t.strip_prefix("k8s-aws-v1.").unwrap();
        assert!(!b64.contains('='));
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .unwrap(),
        )
        .unwrap();
        assert!(
            url.starts_with("https://sts.us-east-1.amazonaws.com/?"),
            "{url}"
        );
        let q = url.split_once('?').unwrap().1;
        let mut names: Vec<&str> = q
            .split('&')
            .map(|kv| kv.split('=').next().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "Action",
                "Version",
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-Security-Token",
                "X-Amz-Signature",
                "X-Amz-SignedHeaders"
            ]
        );
        assert!(q.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"), "{q}");
        assert!(q.contains("X-Amz-Expires=60"), "{q}");
        assert!(!url.contains("secret&") && !url.contains("=secret"));
    }
}
