//! `pctl unlock [--identity NAME]`: read 1Password now (every identity, or one).

use anyhow::Result;

use crate::client::Client;

pub fn run(client: &Client, identity: Option<String>) -> Result<()> {
    let which = identity
        .as_deref()
        .map(|i| format!(" (identity {i})"))
        .unwrap_or_default();
    client.unlock(identity)?;
    eprintln!("pctl: unlocked{which}");
    Ok(())
}
