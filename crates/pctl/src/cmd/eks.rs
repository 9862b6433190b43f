//! `pctl eks ...`: the EKS commands (today one: [`token`](super::eks_token)).

use anyhow::Result;

use crate::client::Client;

/// EKS commands.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: EksCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum EksCmd {
    Token(super::eks_token::Args),
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    match args.command {
        EksCmd::Token(a) => super::eks_token::run(client, a),
    }
}
