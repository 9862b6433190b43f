//! `pctl unlock [--identity NAME]`: read 1Password now, for one identity or
//! each configured one in turn (so each can ask for its own MFA code on this
//! terminal, and one failing does not stop the others).

use anyhow::{bail, Result};

use crate::client::Client;

/// Read the 1Password item now (one `op item get` per identity).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this identity (`[identities.NAME]`; `default` is `[onepassword]`).
    #[arg(long, value_name = "IDENTITY")]
    identity: Option<String>,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    if let Some(i) = args.identity {
        client.unlock(Some(i.clone()))?;
        eprintln!("pctl: unlocked (identity {i})");
        return Ok(());
    }
    let names: Vec<String> = client
        .status()?
        .identities
        .into_iter()
        .map(|i| i.name)
        .collect();
    if names.len() <= 1 {
        client.unlock(None)?;
        eprintln!("pctl: unlocked");
        return Ok(());
    }
    let mut failed = 0;
    for name in &names {
        match client.unlock(Some(name.clone())) {
            Ok(()) => eprintln!("pctl: unlocked (identity {name})"),
            Err(e) => {
                failed += 1;
                eprintln!("pctl: error: {e:#}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} identities did not unlock", names.len());
    }
    Ok(())
}
