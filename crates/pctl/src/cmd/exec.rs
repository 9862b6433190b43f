//! `pctl exec --role R -- CMD...`: run CMD with a role's session in its environment.

use anyhow::{anyhow, Result};

use crate::client::Client;
use crate::output;

pub fn run(client: &Client, role: String, command: Vec<String>) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let c = client.credentials(role.clone())?;
    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..])
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE");
    for (k, v) in output::credential_vars(&c, &role) {
        cmd.env(k, v);
    }
    drop(c);
    let err = cmd.exec();
    Err(anyhow!("cannot run {}: {err}", command[0]))
}
