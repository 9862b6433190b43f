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

/// Parses the command line. The hot ones (kubectl's `eks token`, the AWS
/// SDKs' `credential-process`) are read by hand: building clap's tree of
/// every command costs more than the rest of such a run. Anything else, or
/// anything unusual on those, goes through clap.
pub fn parse(args: &[OsString]) -> Cli {
    let fast = match cmd::eks_token::parse_fast(args) {
        Some(token) => Some(Cmd::Eks(cmd::eks::Args {
            command: cmd::eks::EksCmd::Token(token),
        })),
        None => cmd::credential_process::parse_fast(args).map(Cmd::CredentialProcess),
    };
    match fast {
        Some(command) => Cli { command },
        None => Cli::parse_from(args),
    }
}

/// The command line as clap should see it: the other tools' forms rewritten
/// into pctl's (`aws eks get-token`'s, aws-vault's `exec ROLE -- CMD`).
pub fn normalize(args: Vec<OsString>) -> Vec<OsString> {
    cmd::exec::role_first(cmd::eks_token::aws_style(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use pctl_protocol::GetTokenFlags;

    fn argv(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    /// The `eks token` arguments clap parses from a command line.
    fn clap_eks_token(args: Vec<OsString>) -> Result<cmd::eks_token::Args, clap::Error> {
        match Cli::try_parse_from(args)?.command {
            Cmd::Eks(cmd::eks::Args {
                command: cmd::eks::EksCmd::Token(a),
            }) => Ok(a),
            other => panic!("not eks token: {other:?}"),
        }
    }

    /// `eks token`'s hand parser reads what clap reads.
    #[test]
    fn eks_token_fast_parser_agrees_with_clap() {
        for ok in [
            "pctl eks token --cluster platform",
            "pctl eks token --cluster platform --role admin",
            "pctl eks token --role admin --cluster=platform",
            "pctl eks token --region us-east-1 --cluster-name platform --output json",
            "pctl eks token --cluster-name p --output=json --role-arn arn:aws:iam::1:role/x",
            "pctl eks token --cluster p --region eu-west-1",
        ] {
            let fast = cmd::eks_token::parse_fast(&argv(ok)).map(|c| format!("{c:?}"));
            let slow = clap_eks_token(argv(ok))
                .map(|c| format!("{c:?}"))
                .unwrap_or_else(|e| format!("error: {}", e.kind()));
            assert_eq!(fast.as_deref(), Some(slow.as_str()), "{ok}");
        }
    }

    /// `credential-process`'s hand parser reads what clap reads.
    #[test]
    fn credential_process_fast_parser_agrees_with_clap() {
        for ok in [
            "pctl credential-process --role admin",
            "pctl credential-process --role=admin",
            "pctl credential-process --role prod.ro",
        ] {
            let fast = cmd::credential_process::parse_fast(&argv(ok)).map(|a| format!("{a:?}"));
            let slow = match Cli::try_parse_from(argv(ok)) {
                Ok(Cli {
                    command: Cmd::CredentialProcess(a),
                }) => format!("{a:?}"),
                Ok(other) => panic!("not credential-process: {other:?}"),
                Err(e) => format!("error: {}", e.kind()),
            };
            assert_eq!(fast, Some(slow), "{ok}");
        }
    }

    /// `aws eks get-token`'s command line, rewritten by [`normalize`], is
    /// one clap accepts with the flags as given; the mistakes it refuses.
    #[test]
    fn aws_eks_get_token_command_lines() {
        let a = clap_eks_token(normalize(argv(
            "pctl --region eu-west-1 eks get-token --cluster-name prod --output json --role-arn arn:aws:iam::1:role/x",
        )))
        .unwrap();
        assert_eq!(
            a.request(),
            (
                String::new(),
                None,
                Some(GetTokenFlags {
                    cluster_name: Some("prod".into()),
                    region: Some("eu-west-1".into()),
                    role_arn: Some("arn:aws:iam::1:role/x".into()),
                })
            )
        );
        for bad in [
            "pctl eks token",
            "pctl eks token --cluster a --cluster-name b",
            "pctl eks token --cluster a --output yaml",
            "pctl eks token --cluster a --role r --role-arn x",
        ] {
            assert!(Cli::try_parse_from(argv(bad)).is_err(), "{bad}");
        }
    }

    /// compinit reads only line 1 for `#compdef`: clap_complete puts it there.
    #[test]
    fn zsh_compdef_on_line_one() {
        let mut buf = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Zsh,
            &mut Cli::command(),
            "pctl",
            &mut buf,
        );
        assert!(String::from_utf8(buf)
            .unwrap()
            .starts_with("#compdef pctl\n"));
    }

    /// Every argument of every command, hidden ones included, says what it is
    /// for in `--help`.
    #[test]
    fn every_argument_has_a_description() {
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
