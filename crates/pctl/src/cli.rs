//! Command-line interface definition.

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
    /// Read the 1Password item now (one `op item get`).
    Unlock,
    /// Drop every secret and session; stays locked until `pctl unlock`.
    Lock,
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
