//! The console federation endpoint: exchanges a role session for a sign-in
//! token (`Action=getSigninToken`) and builds the console login URL
//! (`Action=login`) on the sign-in host of the role's partition.
//!
//! Both the request (it carries the session's secret key) and the URL (a
//! bearer credential for the console, valid 15 minutes) are secrets: they
//! live in zeroized buffers and are never logged.
//!
//! `PCTL_FEDERATION_ENDPOINT` (a base URL, `/federation` is appended)
//! replaces the sign-in host, for tests; plain `http` only to a loopback
//! address, since the request carries the secret key.

use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use url::Url;
use zeroize::Zeroizing;

use super::{clean, AwsError, Session, OPERATION_TIMEOUT};

/// The environment variable that replaces the sign-in host (tests).
pub const ENDPOINT_ENV: &str = "PCTL_FEDERATION_ENDPOINT";

/// Console sessions AWS accepts through `SessionDuration`: 15 minutes to 12 hours.
pub const SESSION_DURATION_MIN: Duration = Duration::from_secs(900);
pub const SESSION_DURATION_MAX: Duration = Duration::from_secs(43_200);

/// Largest answer read from the federation endpoint.
const MAX_ANSWER: usize = 64 * 1024;

/// Shown as the sign-in's issuer (where the console sends an expired session).
const ISSUER: &str = "pctl";

/// An AWS partition: where its consoles and sign-in hosts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Aws,
    AwsUsGov,
    AwsCn,
}

impl Partition {
    /// From an ARN (`arn:PARTITION:...`).
    pub fn from_arn(arn: &str) -> Result<Self, String> {
        match arn.split(':').nth(1) {
            Some("aws") => Ok(Partition::Aws),
            Some("aws-us-gov") => Ok(Partition::AwsUsGov),
            Some("aws-cn") => Ok(Partition::AwsCn),
            Some(p) if arn.starts_with("arn:") => Err(format!(
                "role ARN {arn} is in partition {p}, which has no console sign-in pctl knows (aws, aws-us-gov, aws-cn)"
            )),
            _ => Err(format!("{arn} is not an ARN")),
        }
    }

    /// The partition a region belongs to.
    pub fn of_region(region: &str) -> Self {
        if region.starts_with("us-gov-") {
            Partition::AwsUsGov
        } else if region.starts_with("cn-") {
            Partition::AwsCn
        } else {
            Partition::Aws
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsCn => "aws-cn",
        }
    }

    /// The federation endpoint of the partition's sign-in service.
    pub fn federation_url(self) -> &'static str {
        match self {
            Partition::Aws => "https://signin.aws.amazon.com/federation",
            Partition::AwsUsGov => "https://signin.amazonaws-us-gov.com/federation",
            Partition::AwsCn => "https://signin.amazonaws.cn/federation",
        }
    }

    /// The console's domain (`REGION.` in front for a regional console).
    pub fn console_domain(self) -> &'static str {
        match self {
            Partition::Aws => "console.aws.amazon.com",
            Partition::AwsUsGov => "console.amazonaws-us-gov.com",
            Partition::AwsCn => "console.amazonaws.cn",
        }
    }
}

/// Whether a region name is plausible (letters, digits and dashes): it goes
/// into a host name.
fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// The console page to land on: the region's console home, a `path` on the
/// region's console (`ec2/home#Instances`), or a whole console URL of the
/// partition (`destination`).
pub fn destination(
    partition: Partition,
    region: &str,
    path: Option<&str>,
    destination: Option<&str>,
) -> Result<String, String> {
    if !valid_region(region) {
        return Err(format!(
            "\"{region}\" is not a region name (like us-east-1): fix --region or the config's region"
        ));
    }
    if Partition::of_region(region) != partition {
        return Err(format!(
            "region {region} is not in the role's partition {}: pass a --region of that partition",
            partition.name()
        ));
    }
    let domain = partition.console_domain();
    match (path, destination) {
        (Some(_), Some(_)) => Err("pass --path or --destination, not both".into()),
        (None, Some(d)) => {
            let url = Url::parse(d)
                .map_err(|e| format!("--destination {d:?} is not a URL ({e}): pass a console URL like https://{domain}/ec2/home"))?;
            let host = url.host_str().unwrap_or("");
            let console = host == domain || host.ends_with(&format!(".{domain}"));
            if url.scheme() != "https" || !console || url.username() != "" || url.port().is_some() {
                return Err(format!(
                    "--destination must be an https URL on {domain} (or a subdomain): the role is in partition {}",
                    partition.name()
                ));
            }
            Ok(url.to_string())
        }
        (Some(p), None) => {
            let p = p.trim_start_matches('/');
            if p.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(format!("--path {p:?} has spaces or control characters: pass a console path like ec2/home"));
            }
            let base = format!("https://{region}.{domain}/");
            let mut url = Url::parse(&base)
                .and_then(|b| b.join(p))
                .map_err(|e| format!("--path {p:?} is not a console path ({e})"))?;
            if url.host_str() != Some(&format!("{region}.{domain}")) {
                return Err(format!(
                    "--path {p:?} leaves the console: pass a path like ec2/home"
                ));
            }
            if !url.query_pairs().any(|(k, _)| k == "region") {
                url.query_pairs_mut().append_pair("region", region);
            }
            Ok(url.to_string())
        }
        (None, None) => Ok(format!(
            "https://{region}.{domain}/console/home?region={region}"
        )),
    }
}

/// The federation endpoint to call: the partition's, or the override.
pub fn endpoint(partition: Partition, overridden: Option<&str>) -> Result<String, String> {
    let Some(base) = overridden.filter(|b| !b.is_empty()) else {
        return Ok(partition.federation_url().into());
    };
    let url = Url::parse(base).map_err(|e| {
        format!("{ENDPOINT_ENV}={base:?} is not a URL ({e}): set a base URL like https://signin.example or unset it")
    })?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "{ENDPOINT_ENV} must be https (plain http only to a loopback address): the request carries the session's secret key"
            ))
        }
    }
    Ok(format!("{}/federation", base.trim_end_matches('/')))
}

/// `SessionDuration` to ask for, in seconds, or `None` where AWS refuses it:
/// a role session assumed with temporary credentials (pctl's MFA session)
/// counts as role chaining, and the federation endpoint answers 400 to a
/// `SessionDuration` for those; the console session then lasts as long as
/// the role session.
pub fn session_duration(chained: bool, wanted: Duration) -> Option<u64> {
    if chained {
        return None;
    }
    Some(
        wanted
            .clamp(SESSION_DURATION_MIN, SESSION_DURATION_MAX)
            .as_secs(),
    )
}

/// The `getSigninToken` request URL (holds the session's secrets).
pub fn signin_token_request(
    endpoint: &str,
    session: &Session,
    duration: Option<u64>,
) -> Zeroizing<String> {
    let json = Zeroizing::new(
        serde_json::json!({
            "sessionId": session.access_key_id,
            "sessionKey": session.secret_access_key.expose(),
            "sessionToken": session.session_token.as_ref().map(|t| t.expose()).unwrap_or(""),
        })
        .to_string(),
    );
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("Action", "getSigninToken");
    if let Some(d) = duration {
        q.append_pair("SessionDuration", &d.to_string());
    }
    q.append_pair("Session", &json);
    let query = Zeroizing::new(q.finish());
    Zeroizing::new(format!("{endpoint}?{}", query.as_str()))
}

/// The console login URL (a bearer credential).
pub fn login_url(endpoint: &str, destination: &str, signin_token: &str) -> Zeroizing<String> {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("Action", "login");
    q.append_pair("Issuer", ISSUER);
    q.append_pair("Destination", destination);
    q.append_pair("SigninToken", signin_token);
    let query = Zeroizing::new(q.finish());
    Zeroizing::new(format!("{endpoint}?{}", query.as_str()))
}

/// Reads `{"SigninToken": "..."}`.
pub fn parse_signin_token(body: &[u8]) -> Result<Zeroizing<String>, AwsError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "SigninToken")]
        signin_token: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|_| {
        AwsError("the federation endpoint answered something that is not its JSON: check PCTL_FEDERATION_ENDPOINT or the network (a proxy?)".into())
    })?;
    match a.signin_token {
        Some(t) if !t.is_empty() => Ok(Zeroizing::new(t)),
        _ => Err(AwsError(
            "the federation endpoint answered without a SigninToken".into(),
        )),
    }
}

/// Calls `getSigninToken` for `session` and returns the token.
pub async fn signin_token(
    endpoint: &str,
    session: &Session,
    duration: Option<u64>,
) -> Result<Zeroizing<String>, AwsError> {
    let uri = signin_token_request(endpoint, session, duration);
    match tokio::time::timeout(OPERATION_TIMEOUT, call(&uri)).await {
        Ok(r) => r,
        Err(_) => Err(AwsError(
            "the federation endpoint did not answer in time: check the network and retry".into(),
        )),
    }
}

async fn call(uri: &str) -> Result<Zeroizing<String>, AwsError> {
    let host = Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let unreachable = |what: &str| {
        AwsError(format!(
            "cannot reach the federation endpoint {host} ({what}): check the network or the proxy variables"
        ))
    };
    // One connector per call: no pooled connection keeps the answer's bytes.
    let connector = aws_smithy_http_client::Connector::builder()
        .connector_settings(
            HttpConnectorSettings::builder()
                .connect_timeout(Duration::from_secs(3))
                .read_timeout(Duration::from_secs(10))
                .build(),
        )
        .proxy_config(ProxyConfig::from_env())
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .build();
    let mut req = aws_smithy_runtime_api::http::Request::new(SdkBody::empty());
    req.set_uri(uri)
        .map_err(|_| AwsError("the federation request URL is malformed".into()))?;
    let resp = connector.call(req).await.map_err(|e| {
        unreachable(if e.is_timeout() {
            "timed out"
        } else {
            "connection failed"
        })
    })?;
    let status = resp.status().as_u16();
    let mut stream = ByteStream::new(resp.into_body());
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|_| unreachable("the answer broke off"))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(AwsError(format!(
                "the federation endpoint {host} answered more than {MAX_ANSWER} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    match status {
        200 => parse_signin_token(&body),
        400 | 401 | 403 => Err(AwsError(format!(
            "the federation endpoint refused the role session (HTTP {status}: {}): the session may have expired (retry) or the role may not allow console sign-in",
            clean(&String::from_utf8_lossy(&body), 120)
        ))),
        _ => Err(AwsError(format!(
            "the federation endpoint {host} answered HTTP {status}: retry later"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::LockedString;

    fn session() -> Session {
        Session {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: LockedString::new("se/cret+key"),
            session_token: Some(LockedString::new("tok=en")),
            expiration: std::time::SystemTime::now(),
        }
    }

    fn query(url: &str) -> Vec<(String, String)> {
        Url::parse(url)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn partitions_from_arns_and_regions() {
        assert_eq!(
            Partition::from_arn("arn:aws:iam::123456789012:role/a"),
            Ok(Partition::Aws)
        );
        assert_eq!(
            Partition::from_arn("arn:aws-us-gov:iam::123456789012:role/a"),
            Ok(Partition::AwsUsGov)
        );
        assert_eq!(
            Partition::from_arn("arn:aws-cn:iam::123456789012:role/a"),
            Ok(Partition::AwsCn)
        );
        assert!(Partition::from_arn("arn:aws-iso:iam::1:role/a").is_err());
        assert!(Partition::from_arn("nonsense").is_err());
        assert_eq!(Partition::of_region("us-gov-west-1"), Partition::AwsUsGov);
        assert_eq!(Partition::of_region("cn-north-1"), Partition::AwsCn);
        assert_eq!(Partition::of_region("eu-west-1"), Partition::Aws);
        assert_eq!(
            Partition::AwsUsGov.federation_url(),
            "https://signin.amazonaws-us-gov.com/federation"
        );
        assert_eq!(
            Partition::AwsCn.federation_url(),
            "https://signin.amazonaws.cn/federation"
        );
        assert_eq!(
            Partition::Aws.federation_url(),
            "https://signin.aws.amazon.com/federation"
        );
    }

    #[test]
    fn destinations_per_partition() {
        assert_eq!(
            destination(Partition::Aws, "eu-west-1", None, None).unwrap(),
            "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"
        );
        assert_eq!(
            destination(Partition::AwsUsGov, "us-gov-west-1", None, None).unwrap(),
            "https://us-gov-west-1.console.amazonaws-us-gov.com/console/home?region=us-gov-west-1"
        );
        assert_eq!(
            destination(Partition::AwsCn, "cn-north-1", Some("ec2/home"), None).unwrap(),
            "https://cn-north-1.console.amazonaws.cn/ec2/home?region=cn-north-1"
        );
        // the fragment stays last, the region goes into the query
        assert_eq!(
            destination(
                Partition::Aws,
                "us-east-1",
                Some("/ec2/home#Instances"),
                None
            )
            .unwrap(),
            "https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#Instances"
        );
        // a network-path reference stays on the console host
        assert!(
            destination(Partition::Aws, "us-east-1", Some("//evil.example/x"), None)
                .unwrap()
                .starts_with("https://us-east-1.console.aws.amazon.com/")
        );
        assert_eq!(
            destination(
                Partition::Aws,
                "us-east-1",
                None,
                Some("https://s3.console.aws.amazon.com/s3/buckets")
            )
            .unwrap(),
            "https://s3.console.aws.amazon.com/s3/buckets"
        );
    }

    #[test]
    fn bad_destinations_are_refused() {
        for (region, path, dest) in [
            ("us-gov-west-1", None, None), // wrong partition
            ("us-east-1;x", None, None),   // not a region
            (
                "us-east-1",
                Some("a"),
                Some("https://console.aws.amazon.com"),
            ), // both
            ("us-east-1", None, Some("http://console.aws.amazon.com/")), // not https
            ("us-east-1", None, Some("https://evil.example/")), // not the console
            (
                "us-east-1",
                None,
                Some("https://console.aws.amazon.com.evil.example/"),
            ),
            ("us-east-1", None, Some("https://console.amazonaws.cn/")), // other partition
            ("us-east-1", Some("https://evil.example/x"), None),
            ("us-east-1", Some("ec2 home"), None),
        ] {
            assert!(
                destination(Partition::Aws, region, path, dest).is_err(),
                "{region} {path:?} {dest:?}"
            );
        }
    }

    #[test]
    fn endpoint_override_rules() {
        assert_eq!(
            endpoint(Partition::AwsCn, None).unwrap(),
            "https://signin.amazonaws.cn/federation"
        );
        assert_eq!(
            endpoint(Partition::Aws, Some("http://127.0.0.1:8080/")).unwrap(),
            "http://127.0.0.1:8080/federation"
        );
        assert_eq!(
            endpoint(Partition::Aws, Some("https://signin.example")).unwrap(),
            "https://signin.example/federation"
        );
        assert!(endpoint(Partition::Aws, Some("http://signin.example")).is_err());
        assert!(endpoint(Partition::Aws, Some("ftp://127.0.0.1")).is_err());
        assert!(endpoint(Partition::Aws, Some("not a url")).is_err());
    }

    #[test]
    fn session_duration_only_for_sessions_from_long_term_keys() {
        assert_eq!(session_duration(true, Duration::from_secs(3600)), None);
        assert_eq!(
            session_duration(false, Duration::from_secs(3600)),
            Some(3600)
        );
        assert_eq!(session_duration(false, Duration::from_secs(60)), Some(900));
        assert_eq!(
            session_duration(false, Duration::from_secs(100_000)),
            Some(43_200)
        );
    }

    #[test]
    fn request_and_login_urls_encode_their_parts() {
        let s = session();
        let req = signin_token_request("https://signin.aws.amazon.com/federation", &s, Some(3600));
        let q = query(&req);
        assert_eq!(q[0], ("Action".into(), "getSigninToken".into()));
        assert_eq!(q[1], ("SessionDuration".into(), "3600".into()));
        assert_eq!(q[2].0, "Session");
        let json: serde_json::Value = serde_json::from_str(&q[2].1).unwrap();
        assert_eq!(json["sessionId"], "ASIAEXAMPLE");
        assert_eq!(json["sessionKey"], "se/cret+key");
        assert_eq!(json["sessionToken"], "tok=en");
        let no_dur = signin_token_request("https://x/federation", &s, None);
        assert!(!no_dur.contains("SessionDuration"), "{}", no_dur.as_str());

        let url = login_url(
            "https://signin.aws.amazon.com/federation",
            "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1",
            "tok+/=",
        );
        assert!(url.starts_with("https://signin.aws.amazon.com/federation?Action=login&"));
        let q = query(&url);
        assert_eq!(
            q,
            vec![
                ("Action".into(), "login".into()),
                ("Issuer".into(), "pctl".into()),
                (
                    "Destination".into(),
                    "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1".into()
                ),
                ("SigninToken".into(), "tok+/=".into()),
            ]
        );
    }

    #[test]
    fn signin_token_answers() {
        assert_eq!(
            parse_signin_token(br#"{"SigninToken":"abc"}"#)
                .unwrap()
                .as_str(),
            "abc"
        );
        assert!(parse_signin_token(b"<html>").is_err());
        assert!(parse_signin_token(br#"{"SigninToken":""}"#).is_err());
        assert!(parse_signin_token(br#"{}"#).is_err());
    }
}
