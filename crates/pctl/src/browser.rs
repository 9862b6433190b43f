//! `[console] browser`: how `pctl login` opens the console, so two roles
//! can stay signed in side by side: a Firefox container named after the
//! role (`ext+container:` URLs of the "Open external links in a container"
//! extension), a Chromium-family browser with a per-role
//! `--user-data-dir` under the XDG data directory, or a command of the
//! user's. The URL handed over is the daemon's one-shot loopback link,
//! never the sign-in URL itself.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use pctl_protocol::Browser;

/// Chromium-family browsers tried, in order, when `browser_command` is unset.
const CHROMIUMS: [&str; 6] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "brave-browser",
    "brave",
];

/// Opens `url` for `role` as `browser` says; returns what ran, for the
/// message. `Browser::Default` is the caller's (`$BROWSER` / the opener).
pub fn argv_for(browser: &Browser, role: &str, url: &str) -> Result<Vec<String>> {
    Ok(match browser {
        Browser::Default => bail!("the default opener is not a fixed command"),
        Browser::FirefoxContainer { command } => vec![
            command.clone().unwrap_or_else(|| "firefox".into()),
            container_url(role, url),
        ],
        Browser::ChromiumProfile { command } => {
            let program = match command {
                Some(c) => c.clone(),
                None => CHROMIUMS
                    .iter()
                    .find(|c| on_path(c))
                    .map(|c| c.to_string())
                    .ok_or_else(|| {
                        anyhow!(
                            "no Chromium-family browser on PATH (looked for {}): install one or set [console] browser_command",
                            CHROMIUMS.join(", ")
                        )
                    })?,
            };
            let dir = profile_dir(role)?;
            vec![
                program,
                format!("--user-data-dir={}", dir.display()),
                "--no-first-run".into(),
                "--no-default-browser-check".into(),
                url.to_string(),
            ]
        }
        Browser::Command { argv } => {
            let mut v: Vec<String> = argv.iter().map(|a| a.replace("%s", url)).collect();
            if !argv.iter().any(|a| a.contains("%s")) {
                v.push(url.to_string());
            }
            v
        }
    })
}

/// Runs `argv` detached; an error when it cannot start or fails at once.
pub fn launch(argv: &[String]) -> Result<()> {
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            anyhow!(
                "cannot start the browser {}: {e}: fix [console] browser",
                argv[0]
            )
        })?;
    match settle(child)? {
        Some(s) if !s.success() => bail!(
            "the browser {} exited with {s}: fix [console] browser, or use --stdout",
            argv[0]
        ),
        _ => Ok(()),
    }
}

/// The extension's URL: a container named after the role.
fn container_url(role: &str, url: &str) -> String {
    format!("ext+container:name={}&url={}", encode(role), encode(url))
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `$XDG_DATA_HOME/pctl/browser/ROLE` (default `~/.local/share`), created 0700.
fn profile_dir(role: &str) -> Result<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| {
            anyhow!("neither XDG_DATA_HOME nor HOME is set: cannot place the browser profile")
        })?;
    let dir = base.join("pctl").join("browser").join(role);
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow!("cannot create the browser profile {}: {e}", dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(program)).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

/// The default opener (`Browser::Default`): `$BROWSER`, else the
/// platform's (`xdg-open` on Linux, `open` on macOS). `pctl login` and the
/// client's IAM Identity Center sign-in open their URLs with it.
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
    fn container_urls_encode_the_role_and_the_link() {
        assert_eq!(
            container_url("prod admin", "http://127.0.0.1:5/x?a=b&c"),
            "ext+container:name=prod%20admin&url=http%3A%2F%2F127.0.0.1%3A5%2Fx%3Fa%3Db%26c"
        );
    }

    #[test]
    fn a_command_gets_the_url_appended_or_in_place() {
        let b = Browser::Command {
            argv: vec!["firefox".into(), "--new-window".into()],
        };
        assert_eq!(
            argv_for(&b, "r", "http://l").unwrap(),
            vec!["firefox", "--new-window", "http://l"]
        );
        let b = Browser::Command {
            argv: vec!["open".into(), "-a".into(), "Safari".into(), "%s".into()],
        };
        assert_eq!(argv_for(&b, "r", "http://l").unwrap()[3], "http://l");
    }

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
