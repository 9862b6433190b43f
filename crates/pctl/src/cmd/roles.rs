//! `pctl roles [-o json]`: every configured role with its identity, ARN and
//! session state (the daemon answers; the client never reads pctl's config),
//! and the role-name rules the other commands share ([`resolve`]).

use anyhow::{bail, Result};

use super::args::Format;
use crate::client::Client;

/// List the configured roles: identity, ARN and session state.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    format: Format,
}

/// A role name as the user typed it, checked against the configured roles:
/// the name itself, or the AWS profile name `pctl-NAME`.
pub fn resolve(roles: &[String], given: &str, flag: &str) -> Result<String> {
    if roles.iter().any(|r| r == given) {
        return Ok(given.to_string());
    }
    if let Some(r) = given
        .strip_prefix("pctl-")
        .filter(|r| roles.iter().any(|x| x == r))
    {
        return Ok(r.to_string());
    }
    bail!(
        "{flag} {given}: no such role; configured roles: {} (see pctl roles)",
        list(roles)
    )
}

/// The role a command runs as when none was named: `AWS_PROFILE`'s
/// (`pctl-NAME`), else the only configured role.
pub fn default_role(roles: &[String]) -> Result<String> {
    if let Some(p) = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()) {
        if roles.contains(&p) || p.starts_with("pctl-") {
            return resolve(roles, &p, "AWS_PROFILE");
        }
    }
    match roles {
        [only] => Ok(only.clone()),
        [] => bail!("no roles are configured: add a [roles.NAME] to pctl's config (see pctl init)"),
        _ => bail!(
            "several roles are configured ({}): name one (pctl exec ROLE -- CMD, or --role), or set AWS_PROFILE=pctl-ROLE",
            list(roles)
        ),
    }
}

fn list(roles: &[String]) -> String {
    if roles.is_empty() {
        "none".into()
    } else {
        roles.join(", ")
    }
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let json = args.format.json();
    let s = client.status()?;
    if !std::path::Path::new(&s.config).exists() {
        return Err(crate::client::no_config(std::path::Path::new(&s.config)));
    }
    let rows: Vec<Row> = s
        .role_origins
        .iter()
        .map(|o| {
            let session = s.roles.iter().find(|r| r.role == o.role);
            let locked = s
                .identities
                .iter()
                .find(|i| i.name == o.identity)
                .is_none_or(|i| i.locked);
            Row {
                role: o.role.clone(),
                profile: format!("pctl-{}", o.role),
                identity: o.identity.clone(),
                arn: o.arn.clone().or_else(|| session.map(|r| r.arn.clone())),
                session_expires: session.map(|r| r.expiration.clone()),
                identity_locked: locked,
                file: o.file.clone(),
            }
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "no roles in {}: add a [roles.NAME] (see pctl init)",
            s.config
        );
        return Ok(());
    }
    let table: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let session = match (&r.session_expires, r.identity_locked) {
                (Some(e), _) => format!("session until {}", crate::output::when(e)),
                (None, true) => format!("no session (identity {} locked)", r.identity),
                (None, false) => "no session yet".into(),
            };
            [
                r.role.clone(),
                r.identity.clone(),
                r.arn
                    .clone()
                    .unwrap_or_else(|| "(ARN known after unlock)".into()),
                session,
            ]
        })
        .collect();
    let head = ["ROLE", "IDENTITY", "ARN", "SESSION"].map(String::from);
    print!("{}", crate::output::columns(&head, &table));
    Ok(())
}

/// One role in `pctl roles`.
#[derive(serde::Serialize)]
struct Row {
    role: String,
    /// The AWS profile `pctl aws-config` writes for it.
    profile: String,
    identity: String,
    arn: Option<String>,
    session_expires: Option<String>,
    identity_locked: bool,
    file: String,
}
