//! `pctl aws-config [--write [PATH]] [--diff] [--print]`: AWS config profiles
//! `pctl-<role>`, kept in pctl's managed block of the user's AWS config file
//! (or printed) (see [`crate::files::aws_config`]).

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};

use super::args::optional_path;
use crate::client::Client;
use crate::{files, output};

/// Write (or print) AWS config profiles `pctl-<role>` using credential_process.
///
/// Like `pctl kubeconfig`, it writes by default (`--diff` first to see what would
/// change, `--print` to only print).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write them into pctl's managed block (`# BEGIN pctl` ... `# END pctl`) of this AWS
    /// config file, keeping every other line (default: $AWS_CONFIG_FILE, else ~/.aws/config).
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_parser = optional_path())]
    write: Option<PathBuf>,
    /// Show what would change (a unified diff) and change nothing; exit 1 when something
    /// would, 0 when nothing would (as diff does).
    #[arg(long, conflicts_with = "print")]
    diff: bool,
    /// Print the profiles instead of writing them.
    #[arg(long, conflicts_with = "write")]
    print: bool,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let Args { write, diff, print } = args;
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
