//! `pctl aws-config [--write [PATH]]`: AWS config profiles `pctl-<role>`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use pctl_protocol::dirs;

use crate::client::Client;
use crate::{output, private_file};

pub fn run(client: &Client, write: Option<PathBuf>) -> Result<()> {
    let p = client.profiles()?;
    let exe = std::env::current_exe().context("cannot find the pctl executable")?;
    let text = output::aws_config(&exe, &p.region, &p.roles);
    match write {
        None => print!("{text}"),
        Some(path) => {
            let path = if path.as_os_str().is_empty() {
                dirs::aws_config_path()
            } else {
                path
            };
            private_file::write(&path, text.as_bytes())?;
            eprintln!("pctl: wrote {} profile(s) to {}; use them with AWS_CONFIG_FILE={} or append the file to ~/.aws/config", p.roles.len(), path.display(), path.display());
        }
    }
    Ok(())
}
