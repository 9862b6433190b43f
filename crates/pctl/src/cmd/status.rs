//! `pctl status [--json]`: lock state, sessions, tokens and counters (never a secret).
//!
//! The text form is for scanning: the config path once, one header line per
//! identity with its state, one line per role (aligned columns), times
//! both absolute and relative (`10:15:00Z (in 59m)`), the recent issuances.

use std::path::Path;

use anyhow::Result;
use pctl_protocol::{IdentityStatus, Status};

use super::args::Format;
use crate::client::Client;
use crate::output::{columns, mfa_shown, when};

/// Show lock state, sessions, tokens and counters (never a secret).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    format: Format,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let json = args.format.json();
    let s = client.status()?;
    // A daemon started before the file was removed (or with another one).
    if !Path::new(&s.config).exists() {
        return Err(crate::client::no_config(Path::new(&s.config)));
    }
    // It answers from its own config and endpoints, not this shell's.
    if let Some(why) = &s.setup_differs {
        eprintln!("pctl: warning: {why}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", text(&s));
    }
    Ok(())
}

/// How many recent issuances the text form shows.
const RECENT: usize = 5;

fn opt_when(t: &Option<String>) -> String {
    t.as_deref().map(when).unwrap_or_else(|| "?".into())
}

fn identity_state(i: &IdentityStatus) -> String {
    if i.locked {
        let last = i
            .last_unlock_failure
            .as_deref()
            .map(|w| format!("; last unlock failed: {w}"))
            .unwrap_or_default();
        format!("locked ({}){last}", i.lock_reason.as_deref().unwrap_or("?"))
    } else {
        format!(
            "unlocked since {}, locks at {}",
            opt_when(&i.unlocked_at),
            opt_when(&i.locks_at)
        )
    }
}

/// `IAM Identity Center URL: signed in, token expires 10:15:00Z (in 59m), refresh available`.
fn sso_state(s: &pctl_protocol::SsoIdentityStatus) -> String {
    let state = if s.signed_in {
        let exp = s
            .token_expires
            .as_deref()
            .map(|t| format!(", token expires {}", when(t)))
            .unwrap_or_default();
        let refresh = if s.refresh_available {
            "refresh available"
        } else {
            "no refresh token: signs in again when the token expires"
        };
        format!("signed in{exp}, {refresh}")
    } else if s.sign_in_pending {
        "sign-in waiting for approval in the browser".to_string()
    } else {
        "not signed in (the next request, or `pctl unlock`, signs in)".to_string()
    };
    format!(
        "IAM Identity Center {} ({}): {state}",
        s.start_url, s.region
    )
}

fn text(s: &Status) -> String {
    let mut out = format!("pctl {} (pid {}), config {}\n", s.version, s.pid, s.config);
    if s.identities.is_empty() {
        let state = if s.locked {
            format!("locked ({})", s.lock_reason.as_deref().unwrap_or("?"))
        } else {
            format!(
                "unlocked since {}, locks at {}",
                opt_when(&s.unlocked_at),
                opt_when(&s.locks_at)
            )
        };
        out.push_str(&format!("{state}\n"));
    }
    for i in &s.identities {
        if let Some(sso) = &i.sso {
            out.push_str(&format!("identity {}: {}\n", i.name, identity_state(i)));
            out.push_str(&format!("  {}\n", sso_state(sso)));
            continue;
        }
        out.push_str(&format!(
            "identity {}: {}; item \"{}\" in {}, {}, op reads {}\n",
            i.name,
            identity_state(i),
            i.item,
            i.vault,
            mfa_shown(&i.mfa),
            i.op_reads
        ));
        if let Some(exp) = &i.mfa_session_expires {
            out.push_str(&format!("  MFA session ends {}\n", when(exp)));
        }
    }
    if let Some(op) = &s.op_path {
        out.push_str(&format!("op: {op}\n"));
    }
    if let Some(m) = &s.mlock {
        out.push_str(&format!("warning: {m}\n"));
    }
    // One line per role: configured roles first, then sessions of roles no
    // longer configured.
    let mut rows: Vec<[String; 5]> = Vec::new();
    for o in &s.role_origins {
        let session = s.roles.iter().find(|r| r.role == o.role);
        let arn = o
            .arn
            .clone()
            .or_else(|| session.map(|r| r.arn.clone()))
            .unwrap_or_else(|| "-".into());
        let from = if o.file == s.config {
            String::new()
        } else {
            o.file.clone()
        };
        rows.push([
            o.role.clone(),
            o.identity.clone(),
            arn,
            session
                .map(|r| format!("until {}", when(&r.expiration)))
                .unwrap_or_else(|| "-".into()),
            from,
        ]);
    }
    for r in &s.roles {
        if !s.role_origins.iter().any(|o| o.role == r.role) {
            rows.push([
                r.role.clone(),
                "?".into(),
                r.arn.clone(),
                format!("until {}", when(&r.expiration)),
                "(no longer configured)".into(),
            ]);
        }
    }
    if !rows.is_empty() {
        out.push('\n');
        let head = ["ROLE", "IDENTITY", "ARN", "SESSION", "FROM"].map(String::from);
        out.push_str(&columns(&head, &rows));
    }
    if !s.tokens.is_empty() {
        out.push('\n');
        let head = ["CLUSTER", "ROLE", "TOKEN"].map(String::from);
        let rows: Vec<[String; 3]> = s
            .tokens
            .iter()
            .map(|t| {
                [
                    t.cluster.clone(),
                    t.role.clone(),
                    format!("until {}", when(&t.expiration)),
                ]
            })
            .collect();
        out.push_str(&columns(&head, &rows));
    }
    let recent: Vec<[String; 4]> = s
        .recent
        .iter()
        .rev()
        .take(RECENT)
        .rev()
        .map(|r| {
            let what = match (&r.role, &r.cluster) {
                (Some(role), Some(c)) => format!("{c} as {role}"),
                (Some(role), None) => role.clone(),
                (None, Some(c)) => c.clone(),
                (None, None) => String::new(),
            };
            let by = r
                .exe
                .as_deref()
                .map(|e| e.rsplit('/').next().unwrap_or(e).to_string())
                .unwrap_or_default();
            let by = match r.pid {
                Some(pid) => format!("{by} (pid {pid})"),
                None => by,
            };
            let issued = if r.cached {
                format!("{} (cached)", r.issued)
            } else {
                r.issued.clone()
            };
            [when(&r.time), issued, what, by]
        })
        .collect();
    if !recent.is_empty() {
        out.push('\n');
        let head = ["RECENT", "ISSUED", "FOR", "TO"].map(String::from);
        out.push_str(&columns(&head, &recent));
    }
    let c = &s.counters;
    out.push_str(&format!(
        "\ncalls: op {}, GetSessionToken {}, AssumeRole {}, EKS tokens minted {}, DescribeCluster {}, requests {}, refused peers {}\n",
        c.op_calls, c.get_session_token, c.assume_role, c.eks_tokens_minted, c.describe_cluster, c.requests, c.refused_peers
    ));
    out
}
