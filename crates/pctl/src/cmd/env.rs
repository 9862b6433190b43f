//! `pctl env --role R`: `export` lines of a role's session.

use anyhow::Result;

use crate::cli::ShellKind;
use crate::client::Client;
use crate::output;

pub fn run(client: &Client, role: String, shell: ShellKind) -> Result<()> {
    let c = client.credentials(role.clone())?;
    let mut out = String::new();
    for (k, v) in output::credential_vars(&c, &role) {
        out.push_str(&output::export(shell, k, v));
    }
    super::write_secret(out)
}
