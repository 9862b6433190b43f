//! `pctl credential-process --role R`: the AWS `credential_process` answer
//! (hot path: the AWS CLI and SDKs run it whenever they need keys).

use std::ffi::OsString;

use anyhow::Result;

use crate::client::Client;
use crate::output;

/// AWS credential_process output for a role (for ~/.aws/config).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The role's key in pctl's config (also as its AWS profile name, `pctl-ROLE`).
    #[arg(long)]
    role: String,
    #[command(flatten)]
    session: super::session_flags::SessionFlags,
}

/// Parses the command line `pctl aws-config` writes (`pctl
/// credential-process --role R`) without building clap's command tree.
/// Anything else, or anything unusual, returns `None` and goes through clap.
pub fn parse_fast(args: &[OsString]) -> Option<Args> {
    let words: Vec<&str> = args
        .get(1..)?
        .iter()
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let role = match words[..] {
        ["credential-process", "--role", role] => role,
        ["credential-process", flag] => flag.strip_prefix("--role=")?,
        _ => return None,
    };
    if role.is_empty() || role.starts_with('-') {
        return None;
    }
    Some(Args {
        role: role.into(),
        session: Default::default(),
    })
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let s = args.session;
    let c = client.credentials_for(args.role, s.seconds(), s.region)?;
    super::session_flags::say(c.note.as_deref());
    super::write_secret(output::credential_process(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    // that it agrees with clap: crate::cli's tests

    #[test]
    fn fast_parser_defers_to_clap_on_anything_else() {
        for other in [
            "pctl credential-process",
            "pctl credential-process --role",
            "pctl credential-process --role=",
            "pctl credential-process --role --help",
            "pctl credential-process --role a --role b",
            "pctl credential-process --role a --region r",
            "pctl credential-process --help",
            "pctl credential-process admin",
            "pctl credential-process -- --role a",
            "pctl env --role admin",
            "pctl",
        ] {
            assert!(parse_fast(&argv(other)).is_none(), "{other}");
        }
    }
}
