//! A signed-in IAM Identity Center identity: what a completed device
//! authorization ([`super`]) yields and the vault's `Unlocked` holds. Its
//! access token is refreshed here, once for every waiter, and role
//! sessions and the role list are fetched with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pctl_protocol::{ErrorKind, SsoRole};

use crate::aws::sso::{Registration, SsoApi, TokenError, Tokens};
use crate::aws::{AwsError, Session};
use crate::failure::{needs_sign_in, Failure};

/// The access token is refreshed when it has less than this left.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// A signed-in identity's registration and tokens, in locked memory.
pub struct SignedIn {
    pub identity: String,
    pub start_url: String,
    pub region: String,
    api: Arc<SsoApi>,
    reg: Registration,
    /// Held while refreshing: one refresh for every waiter.
    tokens: tokio::sync::Mutex<Tokens>,
    /// The access token's expiry and whether a refresh token is held, for
    /// `status` (which must not wait for a refresh).
    shown: Mutex<(SystemTime, bool)>,
    /// Refreshes not audited yet.
    refreshes: AtomicU64,
}

impl SignedIn {
    /// The sign-in of `identity` that ended with `tokens`.
    pub(crate) fn new(
        identity: String,
        start_url: String,
        region: String,
        api: Arc<SsoApi>,
        reg: Registration,
        tokens: Tokens,
    ) -> Self {
        SignedIn {
            identity,
            start_url,
            region,
            api,
            reg,
            shown: Mutex::new((tokens.expires_at, tokens.refresh_token.is_some())),
            tokens: tokio::sync::Mutex::new(tokens),
            refreshes: AtomicU64::new(0),
        }
    }

    /// Refreshes `t` when `force`d or due; a refused refresh means the
    /// sign-in is over and the client is asked to sign in again.
    async fn refresh(&self, t: &mut Tokens, force: bool) -> Result<(), Failure> {
        let due = t
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            < REFRESH_MARGIN;
        if !force && !due {
            return Ok(());
        }
        let Some(rt) = &t.refresh_token else {
            return Err(needs_sign_in(
                &self.identity,
                &self.start_url,
                ": the access token expired and no refresh token was issued",
            ));
        };
        match self.api.refresh(&self.region, &self.reg, rt).await {
            Ok(mut new) => {
                if new.refresh_token.is_none() {
                    new.refresh_token = t.refresh_token.take();
                }
                *t = new;
                *self.shown.lock().unwrap_or_else(|p| p.into_inner()) =
                    (t.expires_at, t.refresh_token.is_some());
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "identity {}: IAM Identity Center token refreshed",
                    self.identity
                );
                Ok(())
            }
            Err(TokenError::Other(m)) => Err(Failure(ErrorKind::Aws, m)),
            Err(e) => {
                tracing::warn!("identity {}: token refresh refused ({e:?})", self.identity);
                Err(needs_sign_in(
                    &self.identity,
                    &self.start_url,
                    ": the sign-in has ended (the refresh was refused)",
                ))
            }
        }
    }

    /// A role session from GetRoleCredentials, refreshing the access token
    /// first when it is due, or once when the portal refuses it.
    pub async fn role_session(
        &self,
        account_id: &str,
        role_name: &str,
    ) -> Result<Session, Failure> {
        let mut t = self.tokens.lock().await;
        self.refresh(&mut t, false).await?;
        match self
            .api
            .role_credentials(&self.region, &t.access_token, account_id, role_name)
            .await
        {
            Ok(s) => return Ok(s),
            Err(Some(e)) => return Err(e.into()),
            Err(None) => {}
        }
        self.refresh(&mut t, true).await?;
        self.api
            .role_credentials(&self.region, &t.access_token, account_id, role_name)
            .await
            .map_err(|e| {
                e.unwrap_or_else(|| {
                    AwsError(format!(
                        "IAM Identity Center refused role {role_name} in account {account_id} \
                         (UnauthorizedException): it is not assigned to you; see `pctl sso roles \
                         --identity {}`",
                        self.identity
                    ))
                })
                .into()
            })
    }

    /// Every account x role the user may use.
    pub async fn roles(&self) -> Result<Vec<SsoRole>, Failure> {
        let mut t = self.tokens.lock().await;
        self.refresh(&mut t, false).await?;
        let accounts = match self.api.accounts(&self.region, &t.access_token).await {
            Err(None) => {
                self.refresh(&mut t, true).await?;
                self.api.accounts(&self.region, &t.access_token).await
            }
            other => other,
        }
        .map_err(|e| self.refused(e))?;
        let mut out = Vec::new();
        for a in accounts {
            let roles = self
                .api
                .roles(&self.region, &t.access_token, &a.account_id)
                .await
                .map_err(|e| self.refused(e))?;
            for r in roles {
                out.push(SsoRole {
                    account_id: a.account_id.clone(),
                    account_name: a.account_name.clone(),
                    role_name: r,
                });
            }
        }
        Ok(out)
    }

    fn refused(&self, e: Option<AwsError>) -> Failure {
        match e {
            Some(e) => e.into(),
            None => needs_sign_in(
                &self.identity,
                &self.start_url,
                ": the portal refused the access token",
            ),
        }
    }

    /// When the access token expires and whether a refresh token is held.
    pub fn token_state(&self) -> (SystemTime, bool) {
        *self.shown.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refreshes since the last call (for the audit log).
    pub fn take_refreshes(&self) -> u64 {
        self.refreshes.swap(0, Ordering::Relaxed)
    }
}
