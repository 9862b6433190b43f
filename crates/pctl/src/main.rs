//! `pctl`: the thin client of the pctl daemon (`pctl-daemon`); everything
//! but the choice of command lives in the library (`lib.rs`, `cmd/`).
//!
//! A C `main` skips std's runtime set-up (which reads /proc/self/maps to
//! place a stack guard this short-lived process does not need), since
//! kubectl runs `pctl eks token` for every command. SIGPIPE keeps its
//! default action, as in any C command-line tool.
#![cfg_attr(not(test), no_main)]
// Unit tests run under the test harness's own main, so the entry point and
// what only it reaches are unused there.
#![cfg_attr(test, allow(dead_code, unused_imports))]

use anyhow::Result;
use clap::Parser;
use pctl::cli::{self, Cli, Cmd};
use pctl::client;
use pctl::cmd::{self, completions, eks, eks_token};

/// The process entry point (see the module comment for why not `fn main`).
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    let args = cli::normalize(std::env::args_os().collect());
    if args.len() == 1 {
        return pctl::bare();
    }
    if let Some(what) = completions::complete_names(&args) {
        let _ = completions::names(&client(), what);
        return 0;
    }
    let cli = match eks_token::parse_fast(&args) {
        Some(token) => Cli {
            command: Cmd::Eks(eks::Args {
                command: eks::EksCmd::Token(token),
            }),
        },
        None => Cli::parse_from(&args),
    };
    cmd::exit_status(run(cli))
}

/// Runs one command: each lives in its own module under `cmd/`.
fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Daemon(a) => cmd::daemon::run(a),
        Cmd::Shell(a) => cmd::shell::run(&client(), a),
        Cmd::Unlock(a) => cmd::unlock::run(&client(), a),
        Cmd::Lock(a) => cmd::lock::run(&client(), a),
        Cmd::Rotate(a) => cmd::rotate::run(&client(), a),
        Cmd::Status(a) => cmd::status::run(&client(), a),
        Cmd::Doctor(a) => cmd::doctor::run(&client(), a),
        Cmd::Prompt(a) => cmd::prompt::run(&client(), a),
        Cmd::Stop(a) => cmd::stop::run(&client(), a),
        Cmd::CredentialProcess(a) => cmd::credential_process::run(&client(), a),
        Cmd::Env(a) => cmd::env::run(&client(), a),
        Cmd::Exec(a) => cmd::exec::run(&client(), a),
        Cmd::Roles(a) => cmd::roles::run(&client(), a),
        Cmd::AwsConfig(a) => cmd::aws_config::run(&client(), a),
        Cmd::Init(a) => cmd::init::run(a),
        Cmd::Eks(a) => cmd::eks::run(&client(), a),
        Cmd::Kubeconfig(a) => cmd::kubeconfig::run(&client(), a),
        Cmd::Completions(a) => cmd::completions::run(a, <Cli as clap::CommandFactory>::command()),
        Cmd::Login(a) => cmd::login::run(&client(), a),
        Cmd::Serve(a) => cmd::serve::run(&client(), a),
        Cmd::Sso(a) => cmd::sso::run(&client(), a),
    }
}
