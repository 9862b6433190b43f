//! EKS: tokens for configured and ad-hoc clusters, and a cluster's
//! endpoint and CA.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use pctl_protocol::{ClientEnv, ClusterInfo, EksToken};

use super::{Broker, Failure, Issued, Peer};
use crate::aws::eks;
use crate::clock::rfc3339;
use crate::config::Config;
use crate::issue::ClusterSpec;

impl Broker {
    /// An EKS token for a configured cluster, from cache when it has more
    /// than a minute left.
    pub async fn eks_token(
        &self,
        cluster: &str,
        role: Option<&str>,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<EksToken, Failure> {
        let cfg = self.config()?;
        let (c, role) = cfg.cluster_and_role(cluster, role)?;
        self.token_for(&cfg, c, role, env, peer).await
    }

    /// An EKS token for the cluster `aws eks get-token`'s flags name
    /// ([`crate::get_token`]): a configured one (main file or include), or
    /// one the config does not list, cached like [`Broker::eks_token`]'s
    /// (by cluster name, region and role ARN).
    pub async fn eks_token_flags(
        &self,
        cluster: Option<&str>,
        role: Option<&str>,
        flags: &pctl_protocol::GetTokenFlags,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<EksToken, Failure> {
        use crate::get_token::{resolve, Target};
        let cfg = self.config()?;
        match resolve(&cfg, cluster, role, flags)? {
            Target::Configured { cluster, role } => {
                let (c, role) = cfg.cluster_and_role(&cluster, role.as_deref())?;
                self.token_for(&cfg, c, role, env, peer).await
            }
            Target::AdHoc(adhoc) => {
                let (c, role) = cfg.adhoc_cluster(&adhoc)?;
                self.token_for(&cfg, &c, &role, env, peer).await
            }
        }
    }

    /// A token for `c` assumed through `role`: from the cache, or minted.
    async fn token_for(
        &self,
        cfg: &Arc<Config>,
        c: &crate::config::ClusterConfig,
        role: &crate::config::RoleConfig,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<EksToken, Failure> {
        crate::guard::check_program(cfg, role, peer)?;
        let (id, u, _in_use) = self.unlocked(cfg, role, env, peer).await?;
        let spec = Self::role_spec(cfg, role, &u);
        let cluster = ClusterSpec {
            key: c.key.clone(),
            name: c.name.clone(),
            region: c.region.clone(),
        };
        let _turn = self
            .break_glass(cfg, role, env, peer, || {
                id.issuer.has_token(&u, &cluster, &spec)
                    || id
                        .issuer
                        .has_session(&u, &spec, crate::issue::TOKEN_SESSION_MIN)
            })
            .await?;
        let (t, cached) = id.issuer.eks_token(&u, &cluster, &spec).await?;
        self.issue(
            &id,
            &u,
            peer,
            "eks_token",
            Issued {
                role: Some(&role.key),
                cluster: Some(&c.key),
                expiration: Some(t.expiration),
                cached,
            },
        )?;
        Ok(EksToken {
            token: t.token.expose().to_string(),
            expiration: rfc3339(t.expiration),
        })
    }

    /// Endpoint and CA of a configured cluster.
    pub async fn describe_cluster(
        &self,
        cluster: &str,
        role: Option<&str>,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<ClusterInfo, Failure> {
        let cfg = self.config()?;
        let (c, role) = cfg.cluster_and_role(cluster, role)?;
        crate::guard::check_program(&cfg, role, peer)?;
        let (id, u, _in_use) = self.unlocked(&cfg, role, env, peer).await?;
        let spec = Self::role_spec(&cfg, role, &u);
        let margin = spec.credentials_margin();
        let _turn = self
            .break_glass(&cfg, role, env, peer, || {
                id.issuer.has_session(&u, &spec, margin)
            })
            .await?;
        let (rs, _) = id.issuer.role_session(&u, &spec, margin).await?;
        self.stats.describe_cluster.fetch_add(1, Ordering::Relaxed);
        let (endpoint, ca, arn) =
            eks::describe_cluster(&self.sdk, &c.region, &rs.session, &c.name).await?;
        self.issue(
            &id,
            &u,
            peer,
            "describe_cluster",
            Issued {
                role: Some(&role.key),
                cluster: Some(&c.key),
                ..Issued::default()
            },
        )?;
        Ok(ClusterInfo {
            key: c.key.clone(),
            name: c.name.clone(),
            role: role.key.clone(),
            region: c.region.clone(),
            endpoint,
            certificate_authority_data: ca,
            arn,
        })
    }

    /// `pctl init`: the EKS clusters `role` may list in `region` (the
    /// role's session, so nothing secret leaves the daemon).
    pub async fn list_clusters(
        &self,
        role: &str,
        region: &str,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<Vec<String>, Failure> {
        let cfg = self.config()?;
        pctl_protocol::names::check_region(region)
            .map_err(|w| Failure(pctl_protocol::ErrorKind::BadRequest, w.to_string()))?;
        let role = cfg.role(Some(role))?;
        let (id, u, _in_use) = self.unlocked(&cfg, role, env, peer).await?;
        let spec = Self::role_spec(&cfg, role, &u);
        let (rs, _) = id
            .issuer
            .role_session(&u, &spec, spec.credentials_margin())
            .await?;
        let names = eks::list_clusters(&self.sdk, region, &rs.session).await?;
        self.issue(
            &id,
            &u,
            peer,
            "list_clusters",
            Issued {
                role: Some(&role.key),
                ..Issued::default()
            },
        )?;
        Ok(names)
    }
}
