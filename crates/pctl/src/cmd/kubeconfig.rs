//! `pctl kubeconfig --cluster C`: merge a context whose user runs
//! `pctl eks token` into pctl's kubeconfig, or with `--write [PATH]` into the
//! user's YAML kubeconfig (see [`crate::files::kubeconfig_yaml`]).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use pctl_protocol::dirs;

use crate::client::Client;
use crate::{files, output};

pub struct Args {
    pub cluster: String,
    pub role: Option<String>,
    pub endpoint: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub write: Option<PathBuf>,
    /// Show what would change and change nothing.
    pub diff: bool,
    /// Print the entries instead of writing them.
    pub print: bool,
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
