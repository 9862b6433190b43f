//! One module per command: each turns its arguments into typed requests on
//! the [`Client`](crate::client::Client) and prints or writes the answer.

pub mod aws_config;
pub mod completions;
pub mod credential_process;
pub mod daemon;
pub mod doctor;
pub mod eks_token;
pub mod env;
pub mod exec;
pub mod init;
pub mod kubeconfig;
pub mod lock;
pub mod login;
pub mod prompt;
pub mod roles;
pub mod rotate;
pub mod serve;
pub mod shell;
pub mod sso;
pub mod sso_sync;
pub mod status;
pub mod stop;
pub mod unlock;

use std::io::Write;

use anyhow::{Context, Result};
use zeroize::Zeroize;

/// Ends the process with this exit status, printing nothing more (the
/// command already said what it had to).
#[derive(Debug)]
pub struct Exit(pub i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Writes secret output to stdout and wipes the buffer.
pub fn write_secret(mut out: String) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let r = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
    out.zeroize();
    r.context("cannot write to stdout")
}
