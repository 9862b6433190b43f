//! `pctl`: the thin client of the pctl daemon (`pctl-daemon`), as a
//! library: the binary (`main.rs`) only picks the command, and
//! `pctl-docgen` reads the same clap tree ([`cli::Cli`]) for the man pages.
//!
//! kubectl runs `pctl eks token` for every command, so start-up is kept to a
//! minimum: no AWS SDK and no async runtime here, and a hand parser for that
//! one hot command line ([`cmd::eks_token::parse_fast`]; clap for everything
//! else).

pub mod cli;
pub mod client;
pub mod cmd;
mod files;
mod onepassword;
mod output;

use pctl_protocol::dirs;

/// The client of the daemon at this shell's socket (`PCTL_SOCK`, else the default).
pub fn client() -> client::Client {
    client::Client::new(dirs::socket_path())
}

/// `pctl` alone: the help, and where to start when there is no config yet.
/// Returns the exit status (2, as for any usage error).
pub fn bare() -> i32 {
    use clap::CommandFactory;
    let _ = cli::Cli::command().print_help();
    let config = dirs::config_path();
    if !config.exists() {
        eprintln!(
            "\npctl: no config at {}: run pctl init to create it",
            config.display()
        );
    }
    2
}
