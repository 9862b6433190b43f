//! `pctl rotate [--identity NAME]`: replace the IAM user's access key
//! (the daemon does the steps; this prints the key IDs).

use anyhow::Result;

use crate::client::Client;

pub fn run(client: &Client, identity: Option<String>) -> Result<()> {
    let r = client.rotate(identity)?;
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
