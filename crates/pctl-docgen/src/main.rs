//! `pctl-docgen OUT_DIR`: writes pctl's man pages, generated from the
//! client's own clap definitions, for the packages (packaging/deb.sh, the
//! release tarballs, the Homebrew formula):
//!
//! ```text
//! OUT_DIR/man/pctl.1, pctl-<subcommand>.1, pctl-eks-token.1, ...
//! OUT_DIR/man/pctl.toml.5     the configuration reference
//! OUT_DIR/man/pctl-daemon.8   the daemon binary
//! ```
//!
//! clap renders the name, synopsis and options; `pages.rs` adds what it
//! cannot know (files, environment, exit status, examples) and the two
//! pages that are not about the client's command line.
//!
//! It reads the tree from the `pctl` library (`pctl::cli::Cli`, whose
//! subcommands' flags live in `pctl::cmd::*`); the client binary does not
//! depend on this crate, so it carries no documentation generator.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use pctl::cli;

mod pages;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: pctl-docgen OUT_DIR   (writes OUT_DIR/man/*.1, *.5, *.8)");
        return ExitCode::from(2);
    };
    match generate(Path::new(&out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "pctl-docgen: cannot write into {}: {e}",
                Path::new(&out).display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Writes every man page; returns the files written. The completion
/// scripts come from the built client (`pctl completions SHELL`, see
/// packaging/build.sh), which adds role and cluster name completion.
fn generate(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    // `pctl daemon` is described by pctl-daemon(8); pctl(1) lists no pctl-daemon(1)
    let mut cmd = cli::Cli::command().mut_subcommand("daemon", |s| s.hide(true));
    cmd.build();
    let mut written = Vec::new();

    let man_dir = out.join("man");
    fs::create_dir_all(&man_dir)?;
    man_pages(&cmd, &man_dir, &mut written)?;
    for (name, page) in [
        ("pctl.toml.5", pages::config_page()),
        ("pctl-daemon.8", pages::daemon_page()),
    ] {
        let path = man_dir.join(name);
        fs::write(&path, page)?;
        written.push(path);
    }

    Ok(written)
}

/// Whether `sub` of `parent` gets its own section-1 page. `pctl daemon` does
/// not: its page would be `pctl-daemon.1`, which `man pctl-daemon` finds before
/// the daemon's own page `pctl-daemon.8` (that one documents `pctl daemon` too).
fn has_page(parent: &clap::Command, sub: &clap::Command) -> bool {
    let name = sub.get_name();
    name != "help" && !sub.is_hide_set() && !(parent.get_name() == "pctl" && name == "daemon")
}

/// One page for `cmd` and one for each of its subcommands, recursively
/// (`pctl-eks.1`, `pctl-eks-token.1`); clap's own `help` subcommand has none.
fn man_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .manual("pctl manual")
        .source(concat!("pctl ", env!("CARGO_PKG_VERSION")));
    let path = dir.join(man.get_filename());
    let mut buf = Vec::new();
    man.render(&mut buf)?;
    let extra = if cmd.get_name() == "pctl" {
        pages::pctl_extra()
    } else {
        pages::subcommand_extra()
    };
    buf.extend_from_slice(extra.as_bytes());
    fs::write(&path, buf)?;
    written.push(path);
    // clap's own `help` and hidden internals (`__complete`) get no page.
    for sub in cmd.get_subcommands().filter(|s| has_page(cmd, s)) {
        man_pages(sub, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_per_visible_subcommand() {
        let dir = std::env::temp_dir().join(format!("pctl-docgen-test-{}", std::process::id()));
        let files = generate(&dir).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let top = cli::Cli::command();
        let pages: usize = top
            .get_subcommands()
            .filter(|s| has_page(&top, s))
            .map(|s| 1 + s.get_subcommands().filter(|n| has_page(s, n)).count())
            .sum();
        // `man pctl-daemon` must find the daemon's page, not a `pctl daemon` one
        assert!(!names.iter().any(|n| n == "pctl-daemon.1"), "{names:?}");
        let listed = fs::read_to_string(dir.join("man/pctl.1")).unwrap();
        assert!(!listed.contains("pctl\\-daemon(1)"), "{listed}");
        // pctl.1 + one per visible subcommand and per nested one (`eks token`, `sso roles`),
        // the config reference and the daemon's page.
        assert_eq!(names.len(), 1 + pages + 2, "{names:?}");
        for want in [
            "pctl.1",
            "pctl.toml.5",
            "pctl-daemon.8",
            "pctl-eks.1",
            "pctl-eks-token.1",
            "pctl-credential-process.1",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        let page = fs::read_to_string(dir.join("man/pctl-eks-token.1")).unwrap();
        assert!(page.contains("pctl\\-eks\\-token"), "{page}");
        assert!(page.contains("\\-\\-cluster"), "{page}");
        assert!(page.contains(".SH \"SEE ALSO\""), "{page}");
        let top = fs::read_to_string(dir.join("man/pctl.1")).unwrap();
        for s in ["FILES", "ENVIRONMENT", "\"EXIT STATUS\"", "EXAMPLES"] {
            assert!(top.contains(&format!(".SH {s}")), "{s} missing from pctl.1");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
