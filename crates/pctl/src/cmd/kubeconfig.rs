//! `pctl kubeconfig --cluster C`: merge a context whose user runs
//! `pctl eks token` into pctl's kubeconfig (or `--write PATH`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use pctl_protocol::dirs;

use crate::client::Client;
use crate::{output, private_file};

pub struct Args {
    pub cluster: String,
    pub role: Option<String>,
    pub endpoint: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub write: Option<PathBuf>,
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
    let info = client.describe_cluster(args.cluster, args.role)?;
    let server = args.endpoint.unwrap_or_else(|| info.endpoint.clone());
    if !server.starts_with("https://") {
        bail!("cluster endpoint {server:?} is not an https:// URL: pass --endpoint");
    }
    let ca = ca_override.unwrap_or_else(|| info.certificate_authority_data.clone());
    let path = args.write.unwrap_or_else(dirs::kubeconfig_path);
    let existing = match std::fs::read_to_string(&path) {
        Ok(t) if t.trim().is_empty() => None,
        Ok(t) => {
            let not_ours = || {
                format!("{} is not a kubeconfig pctl wrote (a JSON object); pass --write with another file so nothing is lost", path.display())
            };
            let doc: serde_json::Value = serde_json::from_str(&t).with_context(not_ours)?;
            if !doc.is_object() {
                bail!(not_ours());
            }
            Some(doc)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let exe = std::env::current_exe().context("cannot find the pctl executable")?;
    let sock = std::env::var("PCTL_SOCK").ok();
    let doc = output::merge_kubeconfig(existing, &info, &server, &ca, &exe, sock.as_deref());
    private_file::write(&path, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    eprintln!(
        "pctl: wrote context pctl-{} to {} (kubectl --kubeconfig {} or `eval \"$(pctl shell)\"`)",
        info.key,
        path.display(),
        path.display()
    );
    Ok(())
}
