//! `pctl lock [--identity NAME]`: drop every secret and session (of every
//! identity, or of one: the others keep serving).

use anyhow::Result;

use crate::client::Client;

/// Drop every secret and session; stays locked until `pctl unlock`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this identity; the others keep serving.
    #[arg(long, value_name = "IDENTITY")]
    identity: Option<String>,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let identity = args.identity;
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
