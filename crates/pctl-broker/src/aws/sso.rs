//! IAM Identity Center through the AWS SDK: the OIDC device authorization
//! calls (`sso-oidc`: RegisterClient, StartDeviceAuthorization, CreateToken)
//! and the portal (`sso`: GetRoleCredentials, ListAccounts,
//! ListAccountRoles). Every secret that comes back (client secret, device
//! code, access and refresh token, role session) goes straight into
//! [`LockedString`]; nothing is written anywhere. Endpoints are the SDK's
//! for the region, overridden by `AWS_ENDPOINT_URL_SSO_OIDC`,
//! `AWS_ENDPOINT_URL_SSO` or `AWS_ENDPOINT_URL` in the daemon's environment.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use super::{code_and_message, describe, AwsError, Sdk, Session};
use crate::secret::LockedString;

/// The OAuth device grant.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The OAuth refresh grant.
pub const REFRESH_GRANT: &str = "refresh_token";
/// Pages read of one listing at most (ListAccounts, ListAccountRoles).
const MAX_PAGES: usize = 1000;

/// A public client registration; its secret is locked.
pub struct Registration {
    pub client_id: String,
    pub client_secret: LockedString,
    pub expires_at: SystemTime,
}

/// A started device authorization.
pub struct DeviceAuth {
    pub device_code: LockedString,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: Duration,
    pub interval: Duration,
}

/// Tokens from CreateToken.
pub struct Tokens {
    pub access_token: LockedString,
    pub refresh_token: Option<LockedString>,
    pub expires_at: SystemTime,
}

/// How a CreateToken call ended, when it did not give tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// `authorization_pending`: keep polling.
    Pending,
    /// `slow_down`: add 5 seconds to the interval.
    SlowDown,
    /// `expired_token`: the device code (or the sign-in) expired.
    Expired,
    /// `access_denied`: the user refused.
    Denied,
    /// `invalid_grant` / `invalid_client`: the refresh token or the client
    /// registration is no longer accepted.
    Invalid(String),
    /// Anything else, phrased for the user.
    Other(String),
}

/// What CreateToken is asked to exchange.
enum Grant<'a> {
    /// A device authorization's code ([`DEVICE_GRANT`]).
    Device(&'a LockedString),
    /// A refresh token ([`REFRESH_GRANT`]).
    Refresh(&'a LockedString),
}

/// One account the user may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: String,
    pub account_name: String,
}

/// The Identity Center clients.
pub struct SsoApi {
    sdk: Arc<Sdk>,
}

impl Default for SsoApi {
    fn default() -> Self {
        SsoApi {
            sdk: Arc::new(Sdk::default()),
        }
    }
}

impl SsoApi {
    /// Drops the cached configurations and their connection pools (whose
    /// buffers may hold the last token response).
    pub fn reset(&self) {
        self.sdk.reset();
    }

    async fn oidc(&self, region: &str) -> aws_sdk_ssooidc::Client {
        let sdk = self.sdk.config(region).await;
        aws_sdk_ssooidc::Client::new(&sdk)
    }

    async fn portal(&self, region: &str) -> aws_sdk_sso::Client {
        let sdk = self.sdk.config(region).await;
        aws_sdk_sso::Client::new(&sdk)
    }

    /// RegisterClient: a public client named `pctl`, asking for `scopes`.
    pub async fn register_client(
        &self,
        region: &str,
        scopes: &[String],
    ) -> Result<Registration, AwsError> {
        let out = self
            .oidc(region)
            .await
            .register_client()
            .client_name("pctl")
            .client_type("public")
            .set_scopes((!scopes.is_empty()).then(|| scopes.to_vec()))
            .send()
            .await
            .map_err(|e| oidc_error("RegisterClient", e))?;
        let (Some(id), Some(secret)) = (out.client_id(), out.client_secret()) else {
            return Err(AwsError(
                "IAM Identity Center RegisterClient answered without a client id or secret".into(),
            ));
        };
        Ok(Registration {
            client_id: id.to_string(),
            client_secret: LockedString::new(secret),
            expires_at: epoch_secs(out.client_secret_expires_at()),
        })
    }

    /// StartDeviceAuthorization for `start_url`.
    pub async fn start_device_authorization(
        &self,
        region: &str,
        reg: &Registration,
        start_url: &str,
    ) -> Result<DeviceAuth, AwsError> {
        let out = self
            .oidc(region)
            .await
            .start_device_authorization()
            .client_id(&reg.client_id)
            .client_secret(reg.client_secret.expose())
            .start_url(start_url)
            .send()
            .await
            .map_err(|e| oidc_error("StartDeviceAuthorization", e))?;
        let (Some(dc), Some(uc), Some(uri)) =
            (out.device_code(), out.user_code(), out.verification_uri())
        else {
            return Err(AwsError(
                "IAM Identity Center StartDeviceAuthorization answered without a device code, user code or URL"
                    .into(),
            ));
        };
        Ok(DeviceAuth {
            device_code: LockedString::new(dc),
            user_code: super::clean(uc, 64),
            verification_uri: super::clean(uri, 2048),
            verification_uri_complete: super::clean(
                out.verification_uri_complete().unwrap_or(uri),
                2048,
            ),
            expires_in: Duration::from_secs(out.expires_in().clamp(1, 3600) as u64),
            interval: Duration::from_secs(out.interval().clamp(0, 60) as u64),
        })
    }

    /// CreateToken with the device code (one poll).
    pub async fn poll_device(
        &self,
        region: &str,
        reg: &Registration,
        device: &DeviceAuth,
    ) -> Result<Tokens, TokenError> {
        self.create_token(region, reg, Grant::Device(&device.device_code))
            .await
    }

    /// CreateToken with the refresh token.
    pub async fn refresh(
        &self,
        region: &str,
        reg: &Registration,
        refresh_token: &LockedString,
    ) -> Result<Tokens, TokenError> {
        self.create_token(region, reg, Grant::Refresh(refresh_token))
            .await
    }

    /// CreateToken as the registered client `reg`, for either grant.
    async fn create_token(
        &self,
        region: &str,
        reg: &Registration,
        grant: Grant<'_>,
    ) -> Result<Tokens, TokenError> {
        let call = self
            .oidc(region)
            .await
            .create_token()
            .client_id(&reg.client_id)
            .client_secret(reg.client_secret.expose());
        let call = match grant {
            Grant::Device(code) => call.grant_type(DEVICE_GRANT).device_code(code.expose()),
            Grant::Refresh(token) => call.grant_type(REFRESH_GRANT).refresh_token(token.expose()),
        };
        tokens_from(call.send().await)
    }

    /// GetRoleCredentials. `Err(None)`: the access token was refused
    /// (UnauthorizedException); the caller refreshes and retries once.
    pub async fn role_credentials(
        &self,
        region: &str,
        token: &LockedString,
        account_id: &str,
        role_name: &str,
    ) -> Result<Session, Option<AwsError>> {
        let out = self
            .portal(region)
            .await
            .get_role_credentials()
            .access_token(token.expose())
            .account_id(account_id)
            .role_name(role_name)
            .send()
            .await
            .map_err(|e| {
                portal_error(
                    "GetRoleCredentials",
                    &format!("{account_id}/{role_name}"),
                    e,
                )
            })?;
        let c = out.role_credentials().ok_or_else(|| {
            Some(AwsError(
                "IAM Identity Center GetRoleCredentials answered without credentials".into(),
            ))
        })?;
        let (Some(akid), Some(secret), Some(tok)) =
            (c.access_key_id(), c.secret_access_key(), c.session_token())
        else {
            return Err(Some(AwsError(
                "IAM Identity Center GetRoleCredentials answered with incomplete credentials"
                    .into(),
            )));
        };
        Ok(Session {
            access_key_id: akid.to_string(),
            secret_access_key: LockedString::new(secret),
            session_token: Some(LockedString::new(tok)),
            expiration: SystemTime::UNIX_EPOCH
                + Duration::from_millis(c.expiration().max(0) as u64),
        })
    }

    /// ListAccounts, every page.
    pub async fn accounts(
        &self,
        region: &str,
        token: &LockedString,
    ) -> Result<Vec<Account>, Option<AwsError>> {
        let client = self.portal(region).await;
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = client
                .list_accounts()
                .access_token(token.expose())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| portal_error("ListAccounts", "", e))?;
            for a in page.account_list() {
                out.push(Account {
                    account_id: super::clean(a.account_id().unwrap_or_default(), 32),
                    account_name: super::clean(a.account_name().unwrap_or_default(), 128),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// ListAccountRoles of one account, every page.
    pub async fn roles(
        &self,
        region: &str,
        token: &LockedString,
        account_id: &str,
    ) -> Result<Vec<String>, Option<AwsError>> {
        let client = self.portal(region).await;
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = client
                .list_account_roles()
                .access_token(token.expose())
                .account_id(account_id)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| portal_error("ListAccountRoles", account_id, e))?;
            for r in page.role_list() {
                out.push(super::clean(r.role_name().unwrap_or_default(), 128));
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }
}

fn epoch_secs(s: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(s.max(0) as u64)
}

fn tokens_from<E: ProvideErrorMetadata + std::error::Error>(
    r: Result<
        aws_sdk_ssooidc::operation::create_token::CreateTokenOutput,
        SdkError<E, aws_smithy_runtime_api::http::Response>,
    >,
) -> Result<Tokens, TokenError> {
    let out = match r {
        Ok(out) => out,
        Err(e) => {
            let (code, _) = code_and_message(&e);
            return Err(match code.as_deref().unwrap_or("") {
                "AuthorizationPendingException" => TokenError::Pending,
                "SlowDownException" => TokenError::SlowDown,
                "ExpiredTokenException" => TokenError::Expired,
                "AccessDeniedException" => TokenError::Denied,
                c @ ("InvalidGrantException" | "InvalidClientException") => {
                    TokenError::Invalid(c.to_string())
                }
                _ => TokenError::Other(format!(
                    "IAM Identity Center CreateToken failed: {}",
                    describe(&e)
                )),
            });
        }
    };
    let Some(at) = out.access_token() else {
        return Err(TokenError::Other(
            "IAM Identity Center CreateToken answered without an access token".into(),
        ));
    };
    Ok(Tokens {
        access_token: LockedString::new(at),
        refresh_token: out.refresh_token().map(LockedString::new),
        expires_at: SystemTime::now() + Duration::from_secs(out.expires_in().max(0) as u64),
    })
}

fn oidc_error<E: ProvideErrorMetadata + std::error::Error>(
    call: &str,
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> AwsError {
    AwsError(format!(
        "IAM Identity Center {call} failed: {}",
        describe(&e)
    ))
}

/// `None` for UnauthorizedException (the token is no longer accepted).
fn portal_error<E: ProvideErrorMetadata + std::error::Error>(
    call: &str,
    what: &str,
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Option<AwsError> {
    let (code, _) = code_and_message(&e);
    match code.as_deref() {
        Some("UnauthorizedException") => None,
        _ => Some(AwsError(format!(
            "IAM Identity Center {call} {what} failed: {}",
            describe(&e)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// An HTTP client that answers every request with one rest-json error,
    /// as IAM Identity Center (and tests/fixtures/sso_server.py) sends it.
    #[derive(Debug, Clone)]
    struct Answers(&'static str, &'static str);

    impl HttpConnector for Answers {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let body = format!(
                "{{\"error\": \"{}\", \"error_description\": \"test\"}}",
                self.1
            );
            let mut r = Response::new(StatusCode::try_from(400).unwrap(), SdkBody::from(body));
            r.headers_mut().insert("content-type", "application/json");
            r.headers_mut().insert("x-amzn-errortype", self.0);
            HttpConnectorFuture::ready(Ok(r))
        }
    }

    impl HttpClient for Answers {
        fn http_connector(
            &self,
            _settings: &HttpConnectorSettings,
            _components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    /// The CreateToken answers of a device authorization, through the SDK's
    /// own parsing: `slow_down` (the e2e test that waited 6 s for the
    /// slowed-down poll checked this end to end; the interval arithmetic is
    /// proven on paused time in source/sso), `authorization_pending`,
    /// `expired_token`, `access_denied`, `invalid_grant`.
    #[tokio::test]
    async fn create_token_errors_are_read_from_the_wire() {
        for (shape, oauth, want) in [
            ("SlowDownException", "slow_down", TokenError::SlowDown),
            (
                "AuthorizationPendingException",
                "authorization_pending",
                TokenError::Pending,
            ),
            (
                "ExpiredTokenException",
                "expired_token",
                TokenError::Expired,
            ),
            ("AccessDeniedException", "access_denied", TokenError::Denied),
            (
                "InvalidGrantException",
                "invalid_grant",
                TokenError::Invalid("InvalidGrantException".into()),
            ),
        ] {
            let conf = aws_sdk_ssooidc::Config::builder()
                .behavior_version(aws_sdk_ssooidc::config::BehaviorVersion::latest())
                .region(aws_sdk_ssooidc::config::Region::new("us-east-1"))
                .retry_config(aws_sdk_ssooidc::config::retry::RetryConfig::disabled())
                .http_client(Answers(shape, oauth))
                .build();
            let r = aws_sdk_ssooidc::Client::from_conf(conf)
                .create_token()
                .client_id("client")
                .client_secret("secret")
                .grant_type(DEVICE_GRANT)
                .device_code("device")
                .send()
                .await;
            assert_eq!(tokens_from(r).err(), Some(want), "{shape}");
        }
    }
}
