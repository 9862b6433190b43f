//! `pctl status [--json]`: lock state, sessions, tokens and counters (never a secret).

use anyhow::Result;

use crate::client::Client;

pub fn run(client: &Client, json: bool) -> Result<()> {
    let s = client.status()?;
    // A daemon started before the file was removed (or with another one).
    if !std::path::Path::new(&s.config).exists() {
        return Err(crate::client::no_config(std::path::Path::new(&s.config)));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print(&s);
    }
    Ok(())
}

fn print(s: &pctl_protocol::Status) {
    println!("pctl {} (pid {}), config {}", s.version, s.pid, s.config);
    if s.locked {
        println!("locked ({})", s.lock_reason.as_deref().unwrap_or("?"));
    } else {
        println!(
            "unlocked since {}; locks at {}",
            s.unlocked_at.as_deref().unwrap_or("?"),
            s.locks_at.as_deref().unwrap_or("?")
        );
    }
    if let Some(exp) = &s.mfa_session_expires {
        println!("MFA session expires {exp}");
    }
    if let Some(op) = &s.op_path {
        println!("op: {op}");
    }
    if let Some(m) = &s.mlock {
        println!("warning: {m}");
    }
    if s.identities.len() > 1 {
        for i in &s.identities {
            let state = if i.locked {
                format!("locked ({})", i.lock_reason.as_deref().unwrap_or("?"))
            } else {
                format!(
                    "unlocked since {}; locks at {}",
                    i.unlocked_at.as_deref().unwrap_or("?"),
                    i.locks_at.as_deref().unwrap_or("?")
                )
            };
            println!(
                "identity {:<10} item \"{}\" in {}  mfa {}  {state}  op reads {}",
                i.name, i.item, i.vault, i.mfa, i.op_reads
            );
        }
    }
    for o in &s.role_origins {
        println!(
            "role {:<12} identity {}  from {}",
            o.role, o.identity, o.file
        );
    }
    for r in &s.roles {
        println!("role {:<12} {}  expires {}", r.role, r.arn, r.expiration);
    }
    for t in &s.tokens {
        println!(
            "token {:<11} role {}  expires {}",
            t.cluster, t.role, t.expiration
        );
    }
    let c = &s.counters;
    println!(
        "calls: op {}, GetSessionToken {}, AssumeRole {}, EKS tokens minted {}, DescribeCluster {}, requests {}, refused peers {}",
        c.op_calls, c.get_session_token, c.assume_role, c.eks_tokens_minted, c.describe_cluster, c.requests, c.refused_peers
    );
}
