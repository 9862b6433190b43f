//! One module per command: each turns its arguments into typed requests on
//! the [`Client`](crate::client::Client) and prints or writes the answer.

pub mod args;
pub mod aws_config;
pub mod completions;
pub mod credential_process;
pub mod daemon;
pub mod doctor;
pub mod eks;
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

/// The process's exit status for a command's result: 0, the status an
/// [`Exit`] carries, or 1 after one line `pctl: what failed: why` on stderr.
pub fn exit_status(result: Result<()>) -> i32 {
    let e = match result {
        Ok(()) => return 0,
        Err(e) => e,
    };
    if let Some(Exit(code)) = e.downcast_ref() {
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
