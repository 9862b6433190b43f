//! `pctl prompt`: one short line for PS1 / starship and an exit status a
//! prompt can branch on. Asks a running daemon only: never starts one
//! (a prompt runs at every command line).

use std::time::SystemTime;

use anyhow::Result;
use serde_json::json;

use super::args::Format;
use crate::client::Client;

/// One short line for a shell prompt (role and minutes left); never
/// starts a daemon.
///
/// Exit status: 0 unlocked, 3 locked, 4 no daemon running.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print nothing: only the exit status.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    format: Format,
}

/// Exit status when the daemon is locked.
pub const LOCKED: i32 = 3;
/// Exit status when no daemon (of this version) runs.
pub const NO_DAEMON: i32 = 4;

pub fn run(client: &Client, args: Args) -> Result<()> {
    let (quiet, json) = (args.quiet, args.format.json());
    let status = client.status_if_running()?;
    // The role this shell uses: `pctl env`/`exec` export PCTL_ROLE,
    // `pctl shell --profile R` exports AWS_PROFILE=pctl-R.
    let role = std::env::var("PCTL_ROLE")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            std::env::var("AWS_PROFILE")
                .ok()
                .and_then(|p| p.strip_prefix("pctl-").map(str::to_string))
        });
    let (state, code) = match &status {
        None => ("stopped", NO_DAEMON),
        Some(s) if s.locked => ("locked", LOCKED),
        Some(_) => ("unlocked", 0),
    };
    // Minutes left: the role's session in the daemon, else the exported
    // expiration (credentials in this shell's environment).
    let expiration = role.as_ref().and_then(|r| {
        status
            .as_ref()
            .and_then(|s| s.roles.iter().find(|x| &x.role == r))
            .map(|x| x.expiration.clone())
            .or_else(|| std::env::var("AWS_CREDENTIAL_EXPIRATION").ok())
    });
    let minutes = expiration.as_deref().and_then(minutes_left);
    if json {
        let out = json!({"state": state, "role": role, "minutes_left": minutes});
        println!("{out}");
    } else if !quiet {
        let mut line = String::new();
        if code != 0 {
            line.push_str(state);
        }
        if let Some(r) = &role {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(r);
            if let Some(m) = minutes {
                line.push_str(&format!(" {m}m"));
            }
        } else if code == 0 {
            line.push_str(state);
        }
        println!("{line}");
    }
    if code != 0 {
        return Err(super::Exit(code).into());
    }
    Ok(())
}

/// Whole minutes until an RFC 3339 time (0 when past).
fn minutes_left(rfc3339: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z')).ok()?;
    Some(
        t.duration_since(SystemTime::now())
            .map(|d| d.as_secs() / 60)
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_from_rfc3339() {
        let in_90s = humantime::format_rfc3339_seconds(
            SystemTime::now() + std::time::Duration::from_secs(150),
        )
        .to_string();
        assert_eq!(minutes_left(&in_90s), Some(2));
        assert_eq!(minutes_left("2001-01-01T00:00:00Z"), Some(0));
        assert_eq!(minutes_left("soon"), None);
    }
}
