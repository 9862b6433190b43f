//! What `pctl init` offers: the roles the IAM user may assume (IAM
//! ListRoles, trust policies read here). The keys never leave the daemon.

use pctl_protocol::{ClientEnv, ErrorKind};

use super::{Broker, Failure, Issued, Peer};

impl Broker {
    /// The roles of the identity's account whose trust policy names its IAM
    /// user, the account or anyone ([`crate::aws::iam::assumable_roles`]).
    pub async fn assumable_roles(
        &self,
        identity: Option<&str>,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<Vec<String>, Failure> {
        let cfg = self.config()?;
        let name = match identity {
            Some(n) => cfg.identity(n)?.name.clone(),
            None => cfg.identities.keys().next().cloned().unwrap_or_default(),
        };
        let id_cfg = cfg.identity(&name)?;
        if id_cfg.sso.is_some() {
            return Err(Failure(
                ErrorKind::BadRequest,
                format!("identity {name} signs in to IAM Identity Center: `pctl sso roles --identity {name}` lists its roles"),
            ));
        }
        self.enforce_limits();
        let id = self.identities.get(&name);
        let on_fresh = || self.on_unlock(&id, peer);
        let u = id.unlocker.on_demand(&cfg, env, on_fresh).await?;
        let Some(user) = u.caller_arn.clone() else {
            return Err(Failure(
                ErrorKind::Aws,
                format!("identity {name}: STS did not say which IAM user the key belongs to (GetCallerIdentity)"),
            ));
        };
        let arns =
            crate::aws::iam::assumable_roles(&self.sdk, &cfg.region, &u.base, &user, &u.account_id)
                .await
                .map_err(|e| {
                    Failure(
                        ErrorKind::Aws,
                        format!("{}: name the roles instead (--role)", e.0),
                    )
                })?;
        let mut rec = self.record(peer, "list_roles", Issued::default());
        rec.role = Some(format!("identity {name}"));
        self.audit.record(rec);
        Ok(arns)
    }
}
