//! EKS: presigned bearer tokens (signed locally, no network) and
//! DescribeCluster.

use std::time::{Duration, SystemTime};

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use base64::Engine;

use super::{clean, code_and_message, describe, AwsError, Sdk, Session};

/// EKS DescribeCluster: endpoint, CA bundle and ARN.
pub async fn describe_cluster(
    sdk: &Sdk,
    region: &str,
    session: &Session,
    name: &str,
) -> Result<(String, String, String), AwsError> {
    let conf = sdk.config(region).await;
    let conf = aws_sdk_eks::config::Builder::from(&conf)
        .credentials_provider(session.provider())
        .build();
    let client = aws_sdk_eks::Client::from_conf(conf);
    let out = client
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(|e| describe_error(name, region, e))?;
    let c = out
        .cluster()
        .ok_or_else(|| AwsError(format!("EKS returned no cluster for \"{name}\"")))?;
    // Repeated to kubeconfig: no control characters.
    Ok((
        clean(c.endpoint().unwrap_or_default(), 2048),
        c.certificate_authority()
            .and_then(|ca| ca.data())
            .unwrap_or_default()
            .to_string(),
        clean(c.arn().unwrap_or_default(), 2048),
    ))
}

/// EKS ListClusters, every page: the cluster names of `region`.
pub async fn list_clusters(
    sdk: &Sdk,
    region: &str,
    session: &Session,
) -> Result<Vec<String>, AwsError> {
    let conf = sdk.config(region).await;
    let conf = aws_sdk_eks::config::Builder::from(&conf)
        .credentials_provider(session.provider())
        .build();
    let client = aws_sdk_eks::Client::from_conf(conf);
    let mut names = Vec::new();
    let mut next: Option<String> = None;
    // bounded: 100 names a page
    for _ in 0..100 {
        let out = client
            .list_clusters()
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| {
                let code = code_and_message(&e).0.unwrap_or_default();
                if matches!(code.as_str(), "AccessDeniedException" | "AccessDenied" | "HTTP 403") {
                    AwsError(format!(
                        "EKS ListClusters in {region} was denied for this role: allow eks:ListClusters, or name the clusters (--cluster NAME)"
                    ))
                } else {
                    AwsError(format!("EKS ListClusters in {region} failed: {}", describe(&e)))
                }
            })?;
        // shown on a terminal and written into the config: no control characters
        names.extend(out.clusters().iter().map(|n| clean(n, 100)));
        match out.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// A failed DescribeCluster as one line.
pub(crate) fn describe_error<E: ProvideErrorMetadata + std::error::Error>(
    name: &str,
    region: &str,
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> AwsError {
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
    use super::super::service_error;
    use super::*;
    use crate::secret::LockedString;
    use proptest::prelude::*;

    proptest! {
        /// Whatever AWS answers a DescribeCluster with, pctl repeats one
        /// printable line of bounded length.
        #[test]
        fn describe_errors_are_clean_and_bounded(code in "[A-Za-z]{1,30}", message in "(?s).{0,2000}") {
            let e = describe_error("platform", "us-east-1", service_error(&code, &message));
            prop_assert!(!e.0.chars().any(|c| c.is_control()), "{:?}", e.0);
            prop_assert!(e.0.chars().count() <= 600);
        }
    }

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
