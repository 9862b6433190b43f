//! `pctl login --role R`: open the AWS console signed in as a role.
//!
//! The daemon builds the sign-in URL (federation endpoint of the role's
//! partition). The URL is a bearer credential for 15 minutes, and an
//! opener's argv is readable by every local user (`/proc/PID/cmdline`) for
//! as long as it runs, which for a browser is hours. So for a browser the
//! daemon keeps the URL and answers a one-shot loopback link that redirects
//! to it once, for its own user only, within a minute
//! (`pctl_broker::oneshot`); this command hands that link to the platform's
//! opener (`$BROWSER` when set, else `xdg-open` on Linux, `open` on macOS)
//! without waiting for the opener to end. `--stdout` prints the URL itself
//! (the user asked for it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::client::{Client, ConsoleLoginArgs};

/// Open the AWS console signed in as a role (federation sign-in URL).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The role's key in pctl's config to sign in as.
    #[arg(long)]
    role: String,
    /// Console region (default: the config's region).
    #[arg(long)]
    region: Option<String>,
    /// A console page on the region's console, like ec2/home#Instances.
    #[arg(long, conflicts_with = "destination")]
    path: Option<String>,
    /// A whole console URL (https://...console.aws.amazon.com/...).
    #[arg(long)]
    destination: Option<String>,
    /// Print the URL instead of opening it (it signs in whoever opens it within 15 minutes).
    #[arg(long)]
    stdout: bool,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let Args {
        role,
        region,
        path,
        destination,
        stdout,
    } = args;
    let req = ConsoleLoginArgs {
        role: role.clone(),
        region,
        path,
        destination,
    };
    let login = client.console_login(req, !stdout)?;
    if stdout {
        return super::write_secret(format!("{}\n", login.url));
    }
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let tried = open(&login.url, browser.as_deref())?;
    eprintln!(
        "pctl: opened the AWS console as role {role} with {tried} (a one-use link for the next \
         minute; console session until {})",
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

/// How long an opener may take to fail before it counts as started: an
/// opener that hands the URL to a running browser ends at once, one that is
/// the browser keeps running and is left to it.
const OPENER_GRACE: Duration = Duration::from_millis(1500);

/// Runs the first opener that starts and does not fail within
/// [`OPENER_GRACE`]; returns its name. Never waits for a browser to end.
fn open(url: &str, browser: Option<&str>) -> Result<String> {
    let mut failures = Vec::new();
    for argv in openers(browser) {
        let has_placeholder = argv.iter().any(|a| a.contains("%s"));
        let mut args: Vec<String> = argv[1..].iter().map(|a| a.replace("%s", url)).collect();
        if !has_placeholder {
            args.push(url.to_string());
        }
        // Detached from pctl's streams: a browser outliving pctl neither
        // writes into the terminal later nor holds a caller's pipe open.
        let child = Command::new(&argv[0])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        // Never repeat the URL in a message.
        match child.map(settle) {
            Ok(Ok(None)) => return Ok(argv[0].clone()),
            Ok(Ok(Some(s))) if s.success() => return Ok(argv[0].clone()),
            Ok(Ok(Some(s))) => failures.push(format!("{} exited with {s}", argv[0])),
            Ok(Err(e)) | Err(e) => failures.push(format!("{}: {e}", argv[0])),
        }
    }
    bail!(
        "cannot open a browser ({}): set BROWSER, or use --stdout and open the URL yourself",
        failures.join("; ")
    )
}

/// The opener's exit status if it ends within [`OPENER_GRACE`], else `None`
/// (still running: left to run on its own).
fn settle(mut child: Child) -> std::io::Result<Option<std::process::ExitStatus>> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        if start.elapsed() >= OPENER_GRACE {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
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

    #[test]
    fn an_opener_that_fails_at_once_makes_way_for_the_next() {
        // (one that keeps running, as a browser does, is left running:
        // tests/e2e/test_login_oneshot.py checks it is alive after login)
        assert_eq!(open("x", Some("false:true")).unwrap(), "true");
        let e = open("x", Some("false")).unwrap_err().to_string();
        assert!(
            e.contains("false exited with") && e.contains("--stdout"),
            "{e}"
        );
    }
}
