//! `pctl sso roles`: every account x role an IAM Identity Center identity
//! may use, one line each (account ID, role name, account name), or JSON.

use anyhow::Result;

use super::args::Format;
use crate::client::Client;

/// IAM Identity Center: what an `sso` identity may use.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: SsoCmd,
}

#[derive(clap::Subcommand, Debug)]
enum SsoCmd {
    /// Every account x role the identity may use (ListAccounts, ListAccountRoles), one line each.
    Roles(RolesArgs),
}

#[derive(clap::Args, Debug)]
struct RolesArgs {
    /// The `sso` identity (needed when several are configured).
    #[arg(long, value_name = "NAME")]
    identity: Option<String>,
    #[command(flatten)]
    format: Format,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    match args.command {
        SsoCmd::Roles(a) => roles(client, a),
    }
}

fn roles(client: &Client, args: RolesArgs) -> Result<()> {
    let json = args.format.json();
    let roles = client.sso_roles(args.identity)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&roles)?);
        return Ok(());
    }
    for r in &roles {
        println!("{}  {}  {}", r.account_id, r.role_name, r.account_name);
    }
    Ok(())
}
