//! `pctl completions SHELL`: shell completions.

use clap::CommandFactory;

use crate::cli::Cli;

pub fn run(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "pctl", &mut std::io::stdout());
}
