//! `pctl lock`: drop every secret and session.

use anyhow::Result;

use crate::client::Client;

pub fn run(client: &Client) -> Result<()> {
    if client.lock()? {
        eprintln!("pctl: locked: secrets and sessions dropped");
    } else {
        eprintln!("pctl: no daemon running: nothing to lock");
    }
    Ok(())
}
