//! `pctl daemon`: runs `pctl-daemon` in the foreground, in place of this process.

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use crate::client;

pub fn run(log_file: Option<PathBuf>) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = client::daemon_exe()?;
    let mut cmd = std::process::Command::new(&exe);
    if let Some(f) = log_file {
        cmd.arg("--log-file").arg(f);
    }
    let err = cmd.exec();
    Err(anyhow!("cannot run {}: {err}", exe.display()))
}
