//! Command-line interface definition.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Short-lived AWS and EKS credentials from a per-user daemon that reads
/// 1Password once and keeps secrets only in memory.
#[derive(Parser, Debug)]
#[command(name = "pctl", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the broker in the foreground (clients start it automatically).
    Daemon {
        /// Log to this file (0600) instead of stderr.
        #[arg(long)]
        log_file: Option<PathBuf>,
    },
    /// Start or find the daemon and print shell exports of pointers (never secrets).
    ///
    /// Use as: eval "$(pctl shell)"   (fish: pctl shell --shell fish | source)
    Shell {
        #[arg(long, value_enum, default_value_t = ShellKind::detect())]
        shell: ShellKind,
        /// Also export AWS_PROFILE=pctl-<ROLE>.
        #[arg(long, value_name = "ROLE")]
        profile: Option<String>,
    },
    /// Read the 1Password item now (one `op item get` per identity).
    Unlock {
        /// Only this identity (`[identities.NAME]`; `default` is `[onepassword]`).
        #[arg(long, value_name = "NAME")]
        identity: Option<String>,
    },
    /// Drop every secret and session; stays locked until `pctl unlock`.
    Lock {
        /// Only this identity; the others keep serving.
        #[arg(long, value_name = "NAME")]
        identity: Option<String>,
    },
    /// Replace the IAM user's access key (create, verify, write to 1Password, read back, delete the old).
    Rotate {
        /// The identity whose key to rotate (needed when several are configured).
        #[arg(long, value_name = "NAME")]
        identity: Option<String>,
    },
    /// Show lock state, sessions, tokens and counters (never a secret).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Stop the daemon (secrets wiped, socket removed).
    Stop,
    /// AWS credential_process output for a role (for ~/.aws/config).
    CredentialProcess {
        #[arg(long)]
        role: String,
    },
    /// Print `export` lines with a role's session credentials.
    Env {
        #[arg(long)]
        role: String,
        #[arg(long, value_enum, default_value_t = ShellKind::detect())]
        shell: ShellKind,
    },
    /// Run a command with a role's session credentials in its environment.
    Exec {
        #[arg(long)]
        role: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Print (or write) AWS config profiles `pctl-<role>` using credential_process.
    AwsConfig {
        /// Write to this pctl-owned file instead of stdout (default: ~/.config/pctl/aws-config).
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        write: Option<PathBuf>,
    },
    /// EKS commands.
    Eks {
        #[command(subcommand)]
        command: EksCmd,
    },
    /// Write a kubeconfig entry whose user runs `pctl eks token`.
    Kubeconfig {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        role: Option<String>,
        /// API server URL (default: from EKS DescribeCluster).
        #[arg(long)]
        endpoint: Option<String>,
        /// PEM file of the API server's CA (default: from EKS DescribeCluster).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Kubeconfig file to merge into (default: pctl's own, which `pctl shell` adds to KUBECONFIG).
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum EksCmd {
    /// ExecCredential for kubectl (the kubeconfig exec plugin).
    Token {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        role: Option<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellKind {
    Bash,
    Zsh,
    Fish,
}

impl ShellKind {
    /// From `$SHELL`, defaulting to bash syntax.
    pub fn detect() -> Self {
        match std::env::var("SHELL")
            .unwrap_or_default()
            .rsplit('/')
            .next()
        {
            Some("fish") => ShellKind::Fish,
            Some("zsh") => ShellKind::Zsh,
            _ => ShellKind::Bash,
        }
    }
}

/// Parses the kubectl exec plugin's command line (`pctl eks token --cluster C
/// [--role R]`) without building clap's command tree. Anything else, or
/// anything unusual, returns `None` and goes through clap.
pub fn parse_fast(args: &[OsString]) -> Option<Cli> {
    let mut it = args.iter().skip(1).map(|a| a.to_str());
    if it.next()?? != "eks" || it.next()?? != "token" {
        return None;
    }
    let (mut cluster, mut role) = (None, None);
    while let Some(arg) = it.next() {
        let arg = arg?;
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, v),
            None => (arg, it.next()??),
        };
        let slot = match name {
            "--cluster" => &mut cluster,
            "--role" => &mut role,
            _ => return None,
        };
        if slot.is_some() || value.is_empty() || value.starts_with('-') {
            return None;
        }
        *slot = Some(value.to_string());
    }
    Some(Cli {
        command: Cmd::Eks {
            command: EksCmd::Token {
                cluster: cluster?,
                role,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    fn both(s: &str) -> (Option<String>, String) {
        let fast = parse_fast(&args(s)).map(|c| format!("{c:?}"));
        let slow = Cli::try_parse_from(args(s))
            .map(|c| format!("{c:?}"))
            .unwrap_or_else(|e| format!("error: {}", e.kind()));
        (fast, slow)
    }

    #[test]
    fn fast_parser_agrees_with_clap() {
        for ok in [
            "pctl eks token --cluster platform",
            "pctl eks token --cluster platform --role admin",
            "pctl eks token --role admin --cluster=platform",
        ] {
            let (fast, slow) = both(ok);
            assert_eq!(fast.as_deref(), Some(slow.as_str()), "{ok}");
        }
    }

    #[test]
    fn fast_parser_defers_to_clap_on_anything_else() {
        for other in [
            "pctl eks token",
            "pctl eks token --cluster",
            "pctl eks token --cluster a --cluster b",
            "pctl eks token --cluster a --verbose",
            "pctl eks token --cluster --role",
            "pctl eks token --help",
            "pctl status",
            "pctl",
        ] {
            assert_eq!(
                parse_fast(&args(other)).map(|c| format!("{c:?}")),
                None,
                "{other}"
            );
        }
    }
}
