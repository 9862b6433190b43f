//! `pctl kubeconfig --cluster C`: merge a context whose user runs
//! `pctl eks token` into pctl's kubeconfig, or with `--write [PATH]` into the
//! user's YAML kubeconfig (see [`crate::files::kubeconfig_yaml`]).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use pctl_protocol::dirs;

use super::args::optional_path;
use crate::client::Client;
use crate::{files, output};

/// Write a kubeconfig entry whose user runs `pctl eks token`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The cluster's key in pctl's config (`[clusters.NAME]`).
    #[arg(long)]
    cluster: String,
    /// The role whose session the token is for (default: the cluster's `role`).
    #[arg(long)]
    role: Option<String>,
    /// API server URL (default: from EKS DescribeCluster).
    #[arg(long)]
    endpoint: Option<String>,
    /// PEM file of the API server's CA (default: from EKS DescribeCluster).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// YAML kubeconfig to merge into, keeping its other entries (without a value: the first
    /// file of $KUBECONFIG, else ~/.kube/config). Default: pctl's own file, which
    /// `pctl shell` adds to KUBECONFIG.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_parser = optional_path())]
    write: Option<PathBuf>,
    /// Show what would change (a unified diff) and change nothing; exit 1 when something
    /// would, 0 when nothing would (as diff does).
    #[arg(long, conflicts_with = "print")]
    diff: bool,
    /// Print the entries (a kubeconfig of pctl's cluster, user and context) instead of
    /// writing them.
    #[arg(long, conflicts_with = "write")]
    print: bool,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    use base64::Engine;
    let ca_override = match &args.ca_file {
        Some(p) => {
            let pem = std::fs::read(p)
                .with_context(|| format!("cannot read --ca-file {}", p.display()))?;
            if !pem.starts_with(b"-----BEGIN") {
                bail!(
                    "--ca-file {}: not a PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                    p.display()
                );
            }
            Some(base64::engine::general_purpose::STANDARD.encode(pem))
        }
        None => None,
    };
    let info = match (&args.endpoint, &ca_override) {
        // Both given: nothing to ask EKS; the daemon only confirms the names.
        (Some(endpoint), Some(ca)) => {
            let p = client.profiles()?;
            if !p.clusters.contains(&args.cluster) {
                bail!(
                    "--cluster {}: no such cluster; configured clusters: {}",
                    args.cluster,
                    if p.clusters.is_empty() {
                        "none".to_string()
                    } else {
                        p.clusters.join(", ")
                    }
                );
            }
            let role = match args.role.as_deref() {
                Some(r) => super::roles::resolve(&p.roles, r, "--role")?,
                None => p
                    .cluster_roles
                    .get(&args.cluster)
                    .cloned()
                    .unwrap_or_default(),
            };
            pctl_protocol::ClusterInfo {
                key: args.cluster.clone(),
                name: args.cluster.clone(),
                role,
                region: p.region,
                endpoint: endpoint.clone(),
                certificate_authority_data: ca.clone(),
                arn: String::new(),
            }
        }
        _ => client.describe_cluster(args.cluster, args.role)?,
    };
    let server = args.endpoint.unwrap_or_else(|| info.endpoint.clone());
    if !server.starts_with("https://") {
        bail!("cluster endpoint {server:?} is not an https:// URL: pass --endpoint");
    }
    let ca = ca_override.unwrap_or_else(|| info.certificate_authority_data.clone());
    let path = match args.write {
        None => dirs::kubeconfig_path(),
        Some(p) if p.as_os_str().is_empty() => files::kubeconfig_yaml::default_path()?,
        Some(p) => p,
    };
    let exe = std::env::current_exe().context("cannot find the pctl executable")?;
    // A client finds the default socket with no environment of its own, so
    // only another one is written into the kubeconfig's exec.env.
    let sock = std::env::var_os("PCTL_SOCK")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .filter(|s| *s != dirs::default_socket_path());
    let sock = sock.as_deref().map(|s| s.to_string_lossy());
    let fresh =
        output::kubeconfig_entries(&info, &server, &ca, &exe, sock.as_deref()).map_err(|e| {
            anyhow!(
                "refusing to write a kubeconfig entry: pctl's config {}: {e}; nothing changed",
                dirs::config_path().display()
            )
        })?;
    if args.print {
        print!("{}", yaml_serde::to_string(&fresh)?);
        return Ok(());
    }
    files::kubeconfig_yaml::run(path, &fresh, &format!("pctl-{}", info.key), args.diff)
}
