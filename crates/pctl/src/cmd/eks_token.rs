//! `pctl eks token --cluster C [--role R]`: the kubectl exec plugin (hot path).

use anyhow::{anyhow, Result};

use crate::client::Client;
use crate::output;

pub fn run(client: &Client, cluster: String, role: Option<String>) -> Result<()> {
    let api = output::exec_api_version(std::env::var("KUBERNETES_EXEC_INFO").ok().as_deref())
        .map_err(|e| anyhow!(e))?;
    let t = client.eks_token(cluster, role)?;
    let mut out = output::exec_credential(&api, &t);
    out.push('\n');
    super::write_secret(out)
}
