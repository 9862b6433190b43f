//! `pctl credential-process --role R`: the AWS `credential_process` answer.

use anyhow::Result;

use crate::client::Client;
use crate::output;

pub fn run(client: &Client, role: String) -> Result<()> {
    let c = client.credentials(role)?;
    let mut out = output::credential_process(&c);
    out.push('\n');
    super::write_secret(out)
}
