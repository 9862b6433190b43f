//! `pctl eks token --cluster C [--role R]`: the kubectl exec plugin (hot
//! path). Also takes `aws eks get-token`'s flags (`--cluster-name`,
//! `--region`, `--role-arn`), mapped by [`crate::files::eks_get_token`].

use anyhow::{anyhow, Result};

use crate::client::Client;
use crate::files::eks_get_token::Target;
use crate::{files, output};

/// The command line's flags.
pub struct Args {
    pub cluster: Option<String>,
    pub role: Option<String>,
    pub cluster_name: Option<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let target = files::eks_get_token::resolve(
        args.cluster,
        args.role,
        args.cluster_name,
        args.region,
        args.role_arn,
    )?;
    let api = output::exec_api_version(std::env::var("KUBERNETES_EXEC_INFO").ok().as_deref())
        .map_err(|e| anyhow!(e))?;
    let t = match target {
        Target::Configured { cluster, role } => client.eks_token(cluster, role)?,
        Target::AdHoc(adhoc) => client.eks_token_adhoc(adhoc)?,
    };
    let mut out = output::exec_credential(&api, &t);
    out.push('\n');
    super::write_secret(out)
}
