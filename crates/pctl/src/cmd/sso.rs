//! `pctl sso roles`: every account x role an IAM Identity Center identity
//! may use, one line each (account ID, role name, account name), or JSON.

use anyhow::Result;

use crate::client::Client;

pub fn roles(client: &Client, identity: Option<String>, json: bool) -> Result<()> {
    let roles = client.sso_roles(identity)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&roles)?);
        return Ok(());
    }
    for r in &roles {
        println!("{}  {}  {}", r.account_id, r.role_name, r.account_name);
    }
    Ok(())
}
