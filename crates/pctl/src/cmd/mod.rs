//! One module per command: each turns its arguments into typed requests on
//! the [`Client`](crate::client::Client) and prints or writes the answer.

pub mod aws_config;
pub mod completions;
pub mod credential_process;
pub mod daemon;
pub mod eks_token;
pub mod env;
pub mod exec;
pub mod kubeconfig;
pub mod lock;
pub mod rotate;
pub mod shell;
pub mod status;
pub mod stop;
pub mod unlock;

use std::io::Write;

use anyhow::{Context, Result};
use zeroize::Zeroize;

/// Writes secret output to stdout and wipes the buffer.
pub fn write_secret(mut out: String) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let r = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
    out.zeroize();
    r.context("cannot write to stdout")
}
