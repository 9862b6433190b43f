//! `pctl unlock`: read 1Password now.

use anyhow::Result;

use crate::client::Client;

pub fn run(client: &Client) -> Result<()> {
    client.unlock()?;
    eprintln!("pctl: unlocked");
    Ok(())
}
