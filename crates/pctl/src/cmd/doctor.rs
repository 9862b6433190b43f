//! `pctl doctor [--json]`: one line per check (OK/WARN/FAIL) with the fix.
//! The client checks what it sees (its own binary, the socket directory,
//! the daemon's version, the AWS config and kubeconfig entries that run
//! pctl); the daemon checks the rest ([`Client::doctor`]). Exits 1 on FAIL.

use std::path::{Path, PathBuf};

use anyhow::Result;
use pctl_protocol::{dirs, Check, Level, VERSION};
use serde_json::json;

use super::args::Format;
use crate::client::Client;

/// Check everything pctl depends on; one line per check with the fix.
///
/// Exits 1 when a check fails.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    format: Format,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let json = args.format.json();
    let me = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .unwrap_or_else(|_| PathBuf::from("pctl"));
    let mut checks = vec![Check::ok(
        "pctl",
        format!("client {VERSION} at {}", me.display()),
    )];
    let socket_ok = socket_check(client.socket(), &mut checks);
    let config = dirs::config_path();
    if !config.exists() {
        checks.push(Check::fail(
            "config",
            format!("no config at {}", config.display()),
            "run pctl init",
        ));
    } else if socket_ok {
        daemon_checks(client, &mut checks);
    }
    checks.extend(exported_keys_check());
    checks.push(aws_profiles_check(&me));
    checks.push(kubeconfig_check(&me));
    let failed = checks.iter().any(|c| c.level == Level::Fail);
    if json {
        let out = json!({"ok": !failed, "checks": checks});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for c in &checks {
            println!("{}", line(c));
        }
    }
    if failed {
        return Err(super::Exit(1).into());
    }
    Ok(())
}

/// `FAIL  op            <detail>; fix: <fix>`
fn line(c: &Check) -> String {
    let mut s = format!("{:<4}  {:<13} {}", c.level.as_str(), c.name, c.detail);
    if let Some(fix) = &c.fix {
        s.push_str("; fix: ");
        s.push_str(fix);
    }
    s
}

/// The socket's directory and file, as the client checks them before it
/// connects; false when the daemon cannot be reached safely.
fn socket_check(socket: &Path, checks: &mut Vec<Check>) -> bool {
    let dir = dirs::socket_dir(socket);
    let fix = "set PCTL_SOCK to a path in a directory of yours, or fix the directory as said";
    match dirs::check_private_dir(&dir) {
        Err(e) => {
            checks.push(Check::fail("socket dir", e.to_string(), fix));
            return false;
        }
        Ok(false) => checks.push(Check::ok(
            "socket dir",
            format!("{} (created 0700 when the daemon starts)", dir.display()),
        )),
        Ok(true) => match dirs::check_socket_file(socket) {
            Err(e) => {
                checks.push(Check::fail("socket dir", e.to_string(), fix));
                return false;
            }
            Ok(_) => checks.push(Check::ok(
                "socket dir",
                format!("{} is yours, not writable by others", dir.display()),
            )),
        },
    }
    true
}

fn daemon_checks(client: &Client, checks: &mut Vec<Check>) {
    let log = dirs::daemon_log_path();
    match client.status() {
        Err(e) => {
            checks.push(Check::fail(
                "daemon",
                format!("{e:#}"),
                format!("see {}; `pctl stop`, then retry", log.display()),
            ));
            return;
        }
        Ok(s) if s.version != VERSION => checks.push(Check::warn(
            "daemon",
            format!("pid {} runs {}, client is {VERSION}", s.pid, s.version),
            "`pctl stop`; the next command starts the matching daemon",
        )),
        Ok(s) => checks.push(Check::ok(
            "daemon",
            format!("pid {} runs {} (same as the client)", s.pid, s.version),
        )),
    }
    match client.doctor() {
        Ok(c) => checks.extend(c),
        Err(e) => checks.push(Check::fail(
            "daemon checks",
            format!("{e:#}"),
            format!("see {}", log.display()),
        )),
    }
}

/// AWS keys exported in this shell beat `AWS_PROFILE` and pctl's profiles
/// in every SDK: a warning naming them (never their values).
fn exported_keys_check() -> Option<Check> {
    let set: Vec<&str> = super::shell::SHADOWING_KEYS
        .into_iter()
        .filter(|k| std::env::var_os(k).is_some())
        .collect();
    (!set.is_empty()).then(|| {
        Check::warn(
            "environment",
            format!(
                "{} exported: the aws CLI and SDKs use them before AWS_PROFILE and pctl's profiles",
                set.join(", ")
            ),
            format!("unset {} (`pctl shell` does)", set.join(" ")),
        )
    })
}

/// The pctl command a config line runs, if it runs one named `pctl`.
fn pctl_command(value: &str) -> Option<PathBuf> {
    let v = value.trim();
    let word = if let Some(rest) = v.strip_prefix('\'') {
        rest.split('\'').next()?
    } else if let Some(rest) = v.strip_prefix('"') {
        rest.split('"').next()?
    } else {
        v.split_whitespace().next()?
    };
    let p = PathBuf::from(word);
    (p.file_name()? == "pctl").then_some(p)
}

/// Compares the pctl paths found in files with this binary.
fn entries_check(
    name: &str,
    me: &Path,
    found: Vec<(PathBuf, PathBuf)>,
    files: &[PathBuf],
    fix: &str,
) -> Check {
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    if found.is_empty() {
        return Check::ok(
            name,
            format!(
                "no entry runs pctl in {} ({fix} adds them)",
                shown.join(", ")
            ),
        );
    }
    let mut wrong = Vec::new();
    for (file, cmd) in &found {
        let resolved = if cmd.is_absolute() {
            cmd.canonicalize().ok()
        } else {
            which(cmd)
        };
        match resolved {
            Some(p) if p == me => {}
            Some(p) => wrong.push(format!(
                "{} runs {} (another pctl)",
                file.display(),
                p.display()
            )),
            None => wrong.push(format!(
                "{} runs {}, which does not exist",
                file.display(),
                cmd.display()
            )),
        }
    }
    if wrong.is_empty() {
        Check::ok(name, format!("{} entries run this pctl", found.len()))
    } else {
        let missing = wrong.iter().any(|w| w.ends_with("does not exist"));
        let detail = wrong.join("; ");
        let fix = format!("rerun `{fix}` with this pctl ({})", me.display());
        if missing {
            Check::fail(name, detail, fix)
        } else {
            Check::warn(name, detail, fix)
        }
    }
}

fn which(cmd: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
}

/// `credential_process = <pctl> credential-process ...` lines in the AWS
/// config file the CLI and SDKs read (where `pctl aws-config --write` keeps
/// its block).
fn aws_profiles_check(me: &Path) -> Check {
    let files = vec![crate::files::aws_config::default_path()
        .unwrap_or_else(|_| home().join(".aws").join("config"))];
    let mut found = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for l in text.lines() {
            let Some((key, value)) = l.split_once('=') else {
                continue;
            };
            if key.trim() == "credential_process" {
                if let Some(cmd) = pctl_command(value) {
                    found.push((f.clone(), cmd));
                }
            }
        }
    }
    entries_check("aws profiles", me, found, &files, "pctl aws-config --write")
}

/// `command:` entries naming pctl in the kubeconfig files kubectl reads
/// (YAML or JSON, read line by line), and in pctl's own.
fn kubeconfig_check(me: &Path) -> Check {
    let mut files: Vec<PathBuf> = match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(v) => std::env::split_paths(&v).collect(),
        None => vec![home().join(".kube").join("config")],
    };
    let own = dirs::kubeconfig_path();
    if !files.contains(&own) {
        files.push(own);
    }
    let mut found = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for l in text.lines() {
            let l = l.trim().trim_start_matches("- ");
            let value = l
                .strip_prefix("command:")
                .or_else(|| l.strip_prefix("\"command\":"))
                .map(|v| v.trim().trim_end_matches(','));
            if let Some(cmd) = value.and_then(pctl_command) {
                found.push((f.clone(), cmd));
            }
        }
    }
    entries_check(
        "kubeconfig",
        me,
        found,
        &files,
        "pctl kubeconfig --cluster C --write",
    )
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_pctl_in_config_values() {
        assert_eq!(
            pctl_command(" /usr/bin/pctl credential-process --role a"),
            Some(PathBuf::from("/usr/bin/pctl"))
        );
        assert_eq!(
            pctl_command(" '/opt/my tools/pctl' credential-process"),
            Some(PathBuf::from("/opt/my tools/pctl"))
        );
        assert_eq!(
            pctl_command(r#" "/x/pctl""#),
            Some(PathBuf::from("/x/pctl"))
        );
        assert_eq!(pctl_command(" aws-vault exec x"), None);
        assert_eq!(pctl_command(" /usr/bin/pctl-daemon"), None);
    }

    #[test]
    fn a_fix_follows_the_detail_on_one_line() {
        let c = Check::fail("op", "not found", "install it");
        assert_eq!(line(&c), "FAIL  op            not found; fix: install it");
    }
}
