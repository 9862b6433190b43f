//! `pctl rotate [--identity NAME]`: replace the IAM user's access key
//! (the daemon does the steps; this prints the key IDs).

use anyhow::Result;

use crate::client::Client;

/// Replace the IAM user's access key (create, verify, write to 1Password, read back, delete the old).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The identity whose key to rotate (needed when several are configured).
    #[arg(long, value_name = "IDENTITY")]
    identity: Option<String>,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let r = client.rotate(args.identity)?;
    println!(
        "identity {}: access key {} replaced by {} (in 1Password, verified){}",
        r.identity,
        r.old_key_id,
        r.new_key_id,
        if r.old_deleted {
            format!("; {} deleted", r.old_key_id)
        } else {
            String::new()
        }
    );
    if let Some(n) = &r.note {
        eprintln!("pctl: warning: {n}");
    }
    Ok(())
}
