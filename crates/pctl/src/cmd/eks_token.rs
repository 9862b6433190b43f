//! `pctl eks token --cluster C [--role R]`: the kubectl exec plugin (hot
//! path). Also takes `aws eks get-token`'s flags (`--cluster-name`,
//! `--region`, `--role-arn`), so a kubeconfig written by
//! `aws eks update-kubeconfig` switches to pctl by changing only `command:`.
//! Those are forwarded as given: the daemon maps them to its config
//! (include files too); the client never reads pctl's config for this.

use anyhow::{anyhow, Result};
use pctl_protocol::GetTokenFlags;

use crate::client::Client;
use crate::output;

/// The command line's flags.
pub struct Args {
    pub cluster: Option<String>,
    pub role: Option<String>,
    pub cluster_name: Option<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
}

impl Args {
    /// The request's cluster key and `aws eks get-token` flags (none for
    /// the plain `--cluster` form).
    fn request(self) -> (String, Option<String>, Option<GetTokenFlags>) {
        let flags = GetTokenFlags {
            cluster_name: self.cluster_name,
            region: self.region,
            role_arn: self.role_arn,
        };
        let flags = (flags != GetTokenFlags::default()).then_some(flags);
        (self.cluster.unwrap_or_default(), self.role, flags)
    }
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let api = output::exec_api_version(std::env::var("KUBERNETES_EXEC_INFO").ok().as_deref())
        .map_err(|e| anyhow!(e))?;
    let (cluster, role, flags) = args.request();
    let t = client.eks_token(cluster, role, flags)?;
    let mut out = output::exec_credential(&api, &t);
    out.push('\n');
    super::write_secret(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cluster: Option<&str>, name: Option<&str>, region: Option<&str>) -> Args {
        Args {
            cluster: cluster.map(Into::into),
            role: None,
            cluster_name: name.map(Into::into),
            region: region.map(Into::into),
            role_arn: None,
        }
    }

    #[test]
    fn plain_form_sends_no_flags_and_get_token_form_sends_them_as_given() {
        assert_eq!(
            args(Some("platform"), None, None).request(),
            ("platform".into(), None, None)
        );
        let (cluster, _, flags) = args(None, Some("team-eks"), Some("eu-west-1")).request();
        assert_eq!(cluster, "");
        assert_eq!(
            flags,
            Some(GetTokenFlags {
                cluster_name: Some("team-eks".into()),
                region: Some("eu-west-1".into()),
                role_arn: None,
            })
        );
    }
}
