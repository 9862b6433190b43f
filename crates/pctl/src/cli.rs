//! The command line: the top-level parser and one subcommand per module
//! under [`cmd`](crate::cmd), each of which owns its flags.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::cmd;

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
    Daemon(cmd::daemon::Args),
    Shell(cmd::shell::Args),
    Unlock(cmd::unlock::Args),
    Lock(cmd::lock::Args),
    Rotate(cmd::rotate::Args),
    Status(cmd::status::Args),
    Doctor(cmd::doctor::Args),
    Prompt(cmd::prompt::Args),
    Stop(cmd::stop::Args),
    CredentialProcess(cmd::credential_process::Args),
    Env(cmd::env::Args),
    Exec(cmd::exec::Args),
    Roles(cmd::roles::Args),
    AwsConfig(cmd::aws_config::Args),
    Init(cmd::init::Args),
    Eks(cmd::eks::Args),
    Kubeconfig(cmd::kubeconfig::Args),
    Completions(cmd::completions::Args),
    Login(cmd::login::Args),
    Serve(cmd::serve::Args),
    Sso(cmd::sso::Args),
}

/// The command line as clap should see it: the other tools' forms rewritten
/// into pctl's (`aws eks get-token`'s, aws-vault's `exec ROLE -- CMD`).
pub fn normalize(args: Vec<OsString>) -> Vec<OsString> {
    cmd::exec::role_first(cmd::eks_token::aws_style(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of every command, hidden ones included, says what it is
    /// for in `--help`.
    #[test]
    fn every_argument_has_a_description() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && cmd.get_long_about().is_none() {
                missing.push(format!("{path} (the command)"));
            }
            for a in cmd.get_arguments() {
                if matches!(a.get_id().as_str(), "help" | "version") {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without a description: {missing:#?}"
        );
    }
}
