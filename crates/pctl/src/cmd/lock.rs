//! `pctl lock [--identity NAME]`: drop every secret and session (of every
//! identity, or of one: the others keep serving).

use anyhow::Result;

use crate::client::Client;

pub fn run(client: &Client, identity: Option<String>) -> Result<()> {
    let which = identity
        .as_deref()
        .map(|i| format!(" of identity {i}"))
        .unwrap_or_default();
    if client.lock(identity)? {
        eprintln!("pctl: locked: secrets and sessions{which} dropped");
    } else {
        eprintln!("pctl: no daemon running: nothing to lock");
    }
    Ok(())
}
