//! `pctl stop`: stop the daemon (secrets wiped, socket removed).

use anyhow::Result;

use crate::client::Client;

pub fn run(client: &Client) -> Result<()> {
    if client.stop()? {
        eprintln!("pctl: daemon stopped");
    } else {
        eprintln!("pctl: no daemon running");
    }
    Ok(())
}
