//! `pctl shell`: start or find the daemon and print shell exports of
//! pointers (never secrets).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use pctl_protocol::dirs;

use super::args::ShellKind;
use crate::client::Client;
use crate::output;

/// Start or find the daemon and print shell exports of pointers (never secrets).
///
/// Use as: eval "$(pctl shell)"   (fish: pctl shell --shell fish | source)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell whose syntax to print (default: from $SHELL).
    #[arg(long, value_enum, default_value_t = ShellKind::detect())]
    shell: ShellKind,
    /// Also export AWS_PROFILE=pctl-<ROLE>.
    #[arg(long, value_name = "ROLE")]
    profile: Option<String>,
}

/// Exported keys come first in every SDK's credential chain: left in place
/// they would beat `AWS_PROFILE` and pctl's profiles.
pub const SHADOWING_KEYS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

pub fn run(client: &Client, args: Args) -> Result<()> {
    let Args { shell, profile } = args;
    if let Some(role) = &profile {
        if !role
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch))
        {
            bail!("--profile {role:?}: role names are letters, digits, - and _");
        }
    }
    // The daemon (started if needed) says which roles its config has.
    let roles = client.profiles()?.roles;
    let profile = profile
        .map(|p| super::roles::resolve(&roles, &p, "--profile"))
        .transpose()?;
    let sock = absolute(client.socket());
    let mut out = String::new();
    let set: Vec<&str> = SHADOWING_KEYS
        .into_iter()
        .filter(|k| std::env::var_os(k).is_some())
        .collect();
    if !set.is_empty() {
        for k in &set {
            out.push_str(&output::unset(shell, k));
        }
        eprintln!(
            "pctl: unset {} (exported keys would take precedence over pctl's profiles)",
            set.join(", ")
        );
    }
    out.push_str(&output::export(
        shell,
        "PCTL_SOCK",
        &sock.display().to_string(),
    ));
    if let Ok(cfg) = std::env::var("PCTL_CONFIG") {
        out.push_str(&output::export(
            shell,
            "PCTL_CONFIG",
            &absolute(Path::new(&cfg)).display().to_string(),
        ));
    }
    out.push_str(&output::export(shell, "KUBECONFIG", &kubeconfig_var()));
    if let Some(role) = profile {
        out.push_str(&output::export(
            shell,
            "AWS_PROFILE",
            &format!("pctl-{role}"),
        ));
    }
    print!("{out}");
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// KUBECONFIG with pctl's file appended once.
fn kubeconfig_var() -> String {
    let mine = dirs::kubeconfig_path().display().to_string();
    let current = std::env::var("KUBECONFIG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            std::env::var("HOME")
                .map(|h| format!("{h}/.kube/config"))
                .unwrap_or_default()
        });
    if current.split(':').any(|p| p == mine) {
        current
    } else if current.is_empty() {
        mine
    } else {
        format!("{current}:{mine}")
    }
}
