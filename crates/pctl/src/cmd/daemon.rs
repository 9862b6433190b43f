//! `pctl daemon`: runs `pctl-daemon` in the foreground, in place of this process.

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use crate::client;

/// Run the broker in the foreground (clients start it automatically).
#[derive(clap::Args, Debug)]
#[command(display_order = 90)]
pub struct Args {
    /// Log to this file (0600) instead of stderr.
    #[arg(long)]
    log_file: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = client::daemon_exe()?;
    let mut cmd = std::process::Command::new(&exe);
    if let Some(f) = args.log_file {
        cmd.arg("--log-file").arg(f);
    }
    let err = cmd.exec();
    Err(anyhow!("cannot run {}: {err}", exe.display()))
}
