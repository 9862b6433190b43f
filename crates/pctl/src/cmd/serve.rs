//! `pctl serve --role R [--port N]`: a loopback credential endpoint for
//! containers and desktop apps. Prints the two variables the AWS SDKs'
//! container credential provider reads, then holds the endpoint open until
//! Ctrl-C, SIGTERM or SIGHUP (or until the daemon stops).

use std::io::Read;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use pctl_protocol::CredentialServer;

use super::args::ShellKind;
use crate::client::Client;
use crate::output;

/// Serve a role's session on a loopback credential endpoint (for containers and desktop
/// apps) and print the two variables to export; stops on Ctrl-C.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The role's key in pctl's config whose session to serve.
    #[arg(long)]
    role: String,
    /// 127.0.0.1 port (default: a free one).
    #[arg(long)]
    port: Option<u16>,
    /// The shell whose `export` syntax to print (default: from $SHELL).
    #[arg(long, value_enum, default_value_t = ShellKind::detect())]
    shell: ShellKind,
}

/// Variables an AWS SDK must not see next to the endpoint: each would be
/// used before it (keys, profiles, web identity) or instead of it (a
/// relative URI, a token file).
pub const SHADOWING_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// The two variables of the container credential provider.
pub fn endpoint_vars(s: &CredentialServer) -> [(&'static str, &str); 2] {
    [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", s.url.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", s.token.as_str()),
    ]
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let Args { role, port, shell } = args;
    // First the endpoint (this may start the daemon, which must not inherit
    // a blocked mask); a signal before the block below ends pctl the
    // default way, which closes the endpoint too.
    let (conn, server) = client.credential_server(role.clone(), port)?;
    // Signals are taken synchronously below; block them before the watcher
    // thread starts so it inherits the mask.
    let mut stop = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        stop.add(s);
    }
    stop.thread_block().context("cannot block signals")?;
    let mut out = String::new();
    for (k, v) in endpoint_vars(&server) {
        out.push_str(&output::export(shell, k, v));
    }
    let url = server.url.clone();
    drop(server);
    super::write_secret(out)?;
    eprintln!("pctl: serving role {role} at {url} until Ctrl-C");
    // The daemon closing the connection means the endpoint is gone.
    let mut watch = conn
        .get_ref()
        .try_clone()
        .context("cannot watch the daemon connection")?;
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let _ = watch.read(&mut b);
        eprintln!("pctl: the daemon closed the credential endpoint (stopped or restarted)");
        std::process::exit(1);
    });
    let sig = stop.wait().context("cannot wait for a signal")?;
    drop(conn);
    eprintln!("pctl: {sig}: credential endpoint closed");
    Ok(())
}
