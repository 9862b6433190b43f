//! `pctl env --role R`: `export` lines of a role's session.

use anyhow::Result;

use super::args::ShellKind;
use crate::client::Client;
use crate::output;

/// Print `export` lines with a role's session credentials.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The role's key in pctl's config (also as its AWS profile name, `pctl-ROLE`).
    #[arg(long)]
    role: String,
    /// The shell whose `export` syntax to print (default: from $SHELL).
    #[arg(long, value_enum, default_value_t = ShellKind::detect())]
    shell: ShellKind,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let Args { role, shell } = args;
    let c = client.credentials(role.clone())?;
    let mut out = String::new();
    for (k, v) in output::credential_vars(&c, &role) {
        out.push_str(&output::export(shell, k, v));
    }
    super::write_secret(out)
}
