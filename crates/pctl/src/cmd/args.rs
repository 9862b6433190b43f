//! Flags several commands share: the output format, the shell whose syntax
//! to print, and path flags whose value may be left out.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// `--json`, or `--output json` / `-o json` (aws and kubectl habits).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct Format {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Output format (`-o json` is the same as `--json`).
    #[arg(long, short = 'o', value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

impl Format {
    pub fn json(self) -> bool {
        self.json || self.output == Some(OutputFormat::Json)
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellKind {
    Bash,
    Zsh,
    Fish,
}

impl ShellKind {
    /// From `$SHELL`, defaulting to bash syntax.
    pub fn detect() -> Self {
        match std::env::var("SHELL")
            .unwrap_or_default()
            .rsplit('/')
            .next()
        {
            Some("fish") => ShellKind::Fish,
            Some("zsh") => ShellKind::Zsh,
            _ => ShellKind::Bash,
        }
    }
}

/// A path flag whose value may be left out (`--write` alone): the empty path
/// then stands for the command's default file. (clap's PathBuf parser refuses "".)
pub fn optional_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}
