//! `pctl stop`: stop the daemon (secrets wiped, socket removed).

use anyhow::Result;

use crate::client::Client;

/// Stop the daemon (secrets wiped, socket removed).
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(client: &Client, _args: Args) -> Result<()> {
    if client.stop()? {
        eprintln!("pctl: daemon stopped");
    } else {
        eprintln!("pctl: no daemon running");
    }
    Ok(())
}
