//! `pctl login`: a console sign-in URL for a role's session.

use std::time::Duration;

use pctl_protocol::ClientEnv;

use super::{Broker, ConsoleRequest, Failure, Issued, Peer};
use crate::clock::rfc3339;

impl Broker {
    /// A console sign-in URL for `role`'s session, from the federation
    /// endpoint of the role's partition, or (`redirect`) a one-shot
    /// loopback link to it. The audit line says `console_login` and the
    /// role; the URL itself is never logged.
    pub async fn console_login(
        &self,
        req: ConsoleRequest<'_>,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<pctl_protocol::ConsoleLogin, Failure> {
        use crate::aws::federation;
        let cfg = self.config()?;
        let role = cfg.role(Some(req.role))?;
        crate::guard::check_program(&cfg, role, peer)?;
        let (id, u, _in_use) = self.unlocked(&cfg, role, env, peer).await?;
        let o = crate::issue::Overrides {
            duration: req.duration,
            region: None,
        };
        let (spec, note) = Self::role_spec(&cfg, role, &u).with_overrides(&o)?;
        // a console sign-in is always a new session
        let _turn = self.break_glass(&cfg, role, env, peer, || false).await?;
        let bad = |m: String| Failure(pctl_protocol::ErrorKind::BadRequest, m);
        let partition = federation::Partition::from_arn(&spec.arn).map_err(bad)?;
        let region = req.region.unwrap_or(&cfg.region);
        let destination =
            federation::destination(partition, region, req.path, req.destination).map_err(bad)?;
        let endpoint = federation::endpoint(
            partition,
            std::env::var(federation::ENDPOINT_ENV).ok().as_deref(),
        )
        .map_err(|m| Failure(pctl_protocol::ErrorKind::Config, m))?;
        let (rs, cached) = id
            .issuer
            .role_session(&u, &spec, spec.credentials_margin())
            .await?;
        // AssumeRole with the MFA session (temporary credentials) or with
        // another role's session (source_role) is role chaining for AWS: no
        // SessionDuration then. An Identity Center role's session length is
        // its permission set's: the console session lasts as long.
        let chained = u.base.session_token.is_some() || spec.source.is_some() || spec.sso.is_some();
        // `--duration` set the role session's length above (clamped, with a
        // note); a chained console session ends with it.
        let duration = federation::session_duration(chained, spec.duration);
        let token = federation::signin_token(&endpoint, &rs.session, duration).await?;
        let url = federation::login_url(&endpoint, &destination, &token);
        let session_expires = match duration {
            Some(d) => self.clock.now() + Duration::from_secs(d),
            None => rs.session.expiration,
        };
        self.issue(
            &id,
            &u,
            peer,
            "console_login",
            Issued {
                role: Some(&role.key),
                expiration: Some(session_expires),
                cached,
                ..Issued::default()
            },
        )?;
        let url = if req.redirect {
            crate::oneshot::start(url, crate::oneshot::LIFE).await?
        } else {
            url.to_string()
        };
        Ok(pctl_protocol::ConsoleLogin {
            url,
            session_expires: rfc3339(session_expires),
            browser: cfg.browser.clone(),
            note,
        })
    }
}
