//! `pctl credential-process --role R`: the AWS `credential_process` answer.

use anyhow::Result;

use crate::client::Client;
use crate::output;

/// AWS credential_process output for a role (for ~/.aws/config).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The role's key in pctl's config (also as its AWS profile name, `pctl-ROLE`).
    #[arg(long)]
    role: String,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let c = client.credentials(args.role)?;
    let mut out = output::credential_process(&c);
    out.push('\n');
    super::write_secret(out)
}
