//! Role credentials: credential_process, `pctl env`, `pctl exec`.

use pctl_protocol::{ClientEnv, Credentials};

use super::{Broker, Failure, Issued, Peer};
use crate::clock::rfc3339;
use crate::issue::Overrides;

impl Broker {
    /// Role credentials for credential_process, `pctl env` and `pctl exec`.
    pub async fn credentials(
        &self,
        role: &str,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<Credentials, Failure> {
        self.credentials_with(role, &Overrides::default(), env, peer)
            .await
    }

    /// [`Broker::credentials`] with the request's `--duration` / `--region`
    /// ([`RoleSpec::with_overrides`]: clamped to what AWS allows, the
    /// answer's `note` saying so). The session is cached under what built
    /// it, so other durations and regions never share it.
    pub async fn credentials_with(
        &self,
        role: &str,
        o: &Overrides,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<Credentials, Failure> {
        let cfg = self.config()?;
        let role = cfg.role(Some(role))?;
        crate::guard::check_program(&cfg, role, peer)?;
        let (id, u, _in_use) = self.unlocked(&cfg, role, env, peer).await?;
        let (spec, note) = Self::role_spec(&cfg, role, &u).with_overrides(o)?;
        let margin = spec.credentials_margin();
        let _turn = self
            .break_glass(&cfg, role, env, peer, || {
                id.issuer.has_session(&u, &spec, margin)
            })
            .await?;
        let (rs, cached) = id.issuer.role_session(&u, &spec, margin).await?;
        self.issue(
            &id,
            &u,
            peer,
            "credentials",
            Issued {
                role: Some(&role.key),
                expiration: Some(rs.session.expiration),
                cached,
                ..Issued::default()
            },
        )?;
        Ok(Credentials {
            access_key_id: rs.session.access_key_id.clone(),
            secret_access_key: rs.session.secret_access_key.expose().to_string(),
            session_token: rs
                .session
                .session_token
                .as_ref()
                .map(|t| t.expose().to_string())
                .unwrap_or_default(),
            expiration: rfc3339(rs.session.expiration),
            region: spec.region.clone(),
            note,
        })
    }
}
