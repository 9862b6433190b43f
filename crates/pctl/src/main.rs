//! `pctl`: the thin client of the pctl daemon (`pctl-daemon`).
//!
//! kubectl runs `pctl eks token` for every command, so start-up is kept to a
//! minimum: no AWS SDK and no async runtime in this binary, a hand parser for
//! that one hot command line (clap for everything else), and a C `main`
//! that skips std's runtime set-up (which reads /proc/self/maps to place a
//! stack guard this short-lived process does not need). SIGPIPE keeps its
//! default action, as in any C command-line tool.
#![cfg_attr(not(test), no_main)]
// Unit tests run under the test harness's own main, so the entry point and
// what only it reaches are unused there.
#![cfg_attr(test, allow(dead_code, unused_imports))]

mod cli;
mod client;
mod cmd;
mod files;
mod onepassword;
mod output;

use anyhow::Result;
use clap::Parser;
use pctl_protocol::dirs;

use cli::{Cli, Cmd, EksCmd};
use client::Client;

/// The process entry point (see the module comment for why not `fn main`).
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    let args = cli::exec_role_first(cli::aws_style(std::env::args_os().collect()));
    if args.len() == 1 {
        return bare();
    }
    if let Some(what) = cli::complete_names(&args) {
        let _ = cmd::completions::names(&Client::new(dirs::socket_path()), what);
        return 0;
    }
    let cli = cli::parse_fast(&args).unwrap_or_else(|| Cli::parse_from(&args));
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            if let Some(cmd::Exit(code)) = e.downcast_ref() {
                return *code;
            }
            let mut msg = e.to_string();
            // Show the cause chain on one line (context: cause).
            for cause in e.chain().skip(1) {
                msg.push_str(": ");
                msg.push_str(&cause.to_string());
            }
            eprintln!("pctl: {msg}");
            1
        }
    }
}

/// `pctl` alone: the help, and where to start when there is no config yet.
fn bare() -> std::ffi::c_int {
    use clap::CommandFactory;
    let _ = Cli::command().print_help();
    let config = dirs::config_path();
    if !config.exists() {
        eprintln!(
            "\npctl: no config at {}: run pctl init to create it",
            config.display()
        );
    }
    2
}

/// Runs one command: each lives in its own module under `cmd/`.
fn run(cli: Cli) -> Result<()> {
    let client = || Client::new(dirs::socket_path());
    match cli.command {
        Cmd::Daemon { log_file } => cmd::daemon::run(log_file),
        Cmd::Shell { shell, profile } => cmd::shell::run(&client(), shell, profile),
        Cmd::Unlock { identity } => cmd::unlock::run(&client(), identity),
        Cmd::Lock { identity } => cmd::lock::run(&client(), identity),
        Cmd::Rotate { identity } => cmd::rotate::run(&client(), identity),
        Cmd::Stop => cmd::stop::run(&client()),
        Cmd::Status { format } => cmd::status::run(&client(), format.json()),
        Cmd::Roles { format } => cmd::roles::run(&client(), format.json()),
        Cmd::Doctor { format } => cmd::doctor::run(&client(), format.json()),
        Cmd::Prompt { quiet, format } => cmd::prompt::run(&client(), quiet, format.json()),
        Cmd::CredentialProcess { role } => cmd::credential_process::run(&client(), role),
        Cmd::Env { role, shell } => cmd::env::run(&client(), role, shell),
        Cmd::Exec {
            role,
            server: true,
            command,
        } => cmd::exec::run_with_server(&client(), role, command),
        Cmd::Exec { role, command, .. } => cmd::exec::run(&client(), role, command),
        Cmd::AwsConfig { write, diff, print } => {
            cmd::aws_config::run(&client(), write, diff, print)
        }
        Cmd::Init {
            from_aws_config: Some(from),
            write,
            ..
        } => files::import::run(Some(from), write),
        Cmd::Init {
            item,
            vault,
            region,
            roles,
            force,
            ..
        } => cmd::init::run(cmd::init::Args {
            item,
            vault,
            region,
            roles,
            force,
        }),
        Cmd::Eks {
            command:
                EksCmd::Token {
                    cluster,
                    role,
                    cluster_name,
                    region,
                    role_arn,
                    output: _,
                },
        } => cmd::eks_token::run(
            &client(),
            cmd::eks_token::Args {
                cluster,
                role,
                cluster_name,
                region,
                role_arn,
            },
        ),
        Cmd::Kubeconfig {
            cluster,
            role,
            endpoint,
            ca_file,
            write,
            diff,
            print,
        } => cmd::kubeconfig::run(
            &client(),
            cmd::kubeconfig::Args {
                cluster,
                role,
                endpoint,
                ca_file,
                write,
                diff,
                print,
            },
        ),
        Cmd::Completions { shell } => cmd::completions::run(shell),
        Cmd::Login {
            role,
            region,
            path,
            destination,
            stdout,
        } => cmd::login::run(
            &client(),
            client::ConsoleLoginArgs {
                role,
                region,
                path,
                destination,
            },
            stdout,
        ),
        Cmd::Serve { role, port, shell } => cmd::serve::run(&client(), role, port, shell),
        Cmd::Sso {
            command: cli::SsoCmd::Roles { identity, format },
        } => cmd::sso::roles(&client(), identity, format.json()),
        Cmd::Sso {
            command:
                cli::SsoCmd::Sync {
                    identity,
                    write,
                    diff,
                    print,
                },
        } => cmd::sso_sync::run(
            &client(),
            cmd::sso_sync::Args {
                identity,
                write,
                diff,
                print,
            },
        ),
    }
}
