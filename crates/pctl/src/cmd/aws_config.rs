//! `pctl aws-config [--write [PATH]] [--diff] [--print]`: AWS config profiles
//! `pctl-<role>`, kept in pctl's managed block of the user's AWS config file
//! (or printed) (see [`crate::files::aws_config`]).

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};

use crate::client::Client;
use crate::{files, output};

pub fn run(client: &Client, write: Option<PathBuf>, diff: bool, print: bool) -> Result<()> {
    let p = client.profiles()?;
    let exe = std::env::current_exe().context("cannot find the pctl executable")?;
    let text = output::aws_config(&exe, &p.region, &p.roles).map_err(|e| {
        anyhow!(
            "refusing to write AWS profiles: pctl's config {}: {e}; nothing changed",
            pctl_protocol::dirs::config_path().display()
        )
    })?;
    if print {
        print!("{text}");
        return Ok(());
    }
    files::aws_config::run(write, &text, p.roles.len(), diff)
}
