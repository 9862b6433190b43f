//! `pctl login --role R`: open the AWS console signed in as a role.
//!
//! The daemon builds the sign-in URL (federation endpoint of the role's
//! partition); this command hands it to the platform's opener (`$BROWSER`
//! when set, else `xdg-open` on Linux, `open` on macOS) or prints it with
//! `--stdout`. The URL is a bearer credential for 15 minutes: it is never
//! written anywhere else, and the opener's argv is the one place it
//! appears (every opener takes the URL as an argument).

use std::process::{Command, Stdio};

use anyhow::{bail, Result};

use crate::client::{Client, ConsoleLoginArgs};

pub fn run(client: &Client, args: ConsoleLoginArgs, stdout: bool) -> Result<()> {
    let role = args.role.clone();
    let login = client.console_login(args)?;
    if stdout {
        return super::write_secret(format!("{}\n", login.url));
    }
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let tried = open(&login.url, browser.as_deref())?;
    eprintln!(
        "pctl: opened the AWS console as role {role} with {tried} (console session until {})",
        login.session_expires
    );
    Ok(())
}

/// Opens `url` with `$BROWSER` or the platform's opener; returns its name.
/// The URL appears only in the opener's argv, never in a message.
pub fn open_url(url: &str) -> Result<String> {
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    open(url, browser.as_deref())
}

/// Whether `$BROWSER` is set or the platform's opener is on PATH.
pub fn opener_available() -> bool {
    if std::env::var("BROWSER").is_ok_and(|b| !b.trim().is_empty()) {
        return true;
    }
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(platform_opener())).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

/// The platform's URL opener.
fn platform_opener() -> &'static str {
    if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    }
}

/// The commands to try, in order: each `$BROWSER` entry (colon-separated,
/// `%s` replaced by the URL, else the URL appended), else the platform's
/// opener.
fn openers(browser: Option<&str>) -> Vec<Vec<String>> {
    match browser {
        Some(b) => b
            .split(':')
            .map(|entry| entry.split_whitespace().map(str::to_string).collect())
            .filter(|argv: &Vec<String>| !argv.is_empty())
            .collect(),
        None => vec![vec![platform_opener().to_string()]],
    }
}

/// Runs the first opener that starts and succeeds; returns its name.
fn open(url: &str, browser: Option<&str>) -> Result<String> {
    let mut failures = Vec::new();
    for argv in openers(browser) {
        let has_placeholder = argv.iter().any(|a| a.contains("%s"));
        let mut args: Vec<String> = argv[1..].iter().map(|a| a.replace("%s", url)).collect();
        if !has_placeholder {
            args.push(url.to_string());
        }
        let status = Command::new(&argv[0])
            .args(&args)
            .stdin(Stdio::null())
            .status();
        // Never repeat the URL in a message.
        match status {
            Ok(s) if s.success() => return Ok(argv[0].clone()),
            Ok(s) => failures.push(format!("{} exited with {s}", argv[0])),
            Err(e) => failures.push(format!("{}: {e}", argv[0])),
        }
    }
    bail!(
        "cannot open a browser ({}): set BROWSER, or use --stdout and open the URL yourself",
        failures.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_entries_in_order() {
        assert_eq!(
            openers(Some("firefox -new-tab %s:xdg-open")),
            vec![
                vec!["firefox".to_string(), "-new-tab".into(), "%s".into()],
                vec!["xdg-open".to_string()]
            ]
        );
        assert_eq!(openers(None), vec![vec![platform_opener().to_string()]]);
        assert_eq!(openers(Some("::")), Vec::<Vec<String>>::new());
    }
}
