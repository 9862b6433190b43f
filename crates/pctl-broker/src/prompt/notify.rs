//! A desktop notification when an unlock starts for a client without a
//! terminal, so a 1Password approval window that pops up is never a
//! mystery: freedesktop notifications through `notify-send` (Linux), or
//! `osascript`'s `display notification` (macOS). Best effort: a desktop
//! without either gets none, and nothing waits for it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use pctl_protocol::{op_path, ClientEnv};

/// Shows `title` / `body` on the client's desktop (its display and bus
/// variables), in the background.
pub fn show(title: &str, body: &str, env: &ClientEnv) {
    let path_var = env.0.get("PATH").cloned();
    let (program, args): (&str, Vec<String>) = if cfg!(target_os = "macos") {
        (
            "osascript",
            vec![
                "-e".into(),
                "on run argv".into(),
                "-e".into(),
                "display notification (item 2 of argv) with title (item 1 of argv)".into(),
                "-e".into(),
                "end run".into(),
                title.into(),
                body.into(),
            ],
        )
    } else {
        (
            "notify-send",
            vec![
                "--app-name=pctl".into(),
                "--expire-time=10000".into(),
                title.into(),
                body.into(),
            ],
        )
    };
    let Ok(exe) = op_path::resolve_program(Path::new(program), path_var.as_deref()) else {
        tracing::debug!("no {program} on the client's PATH: no desktop notification");
        return;
    };
    let envs: Vec<(String, String)> = env
        .0
        .iter()
        .filter(|(k, _)| pctl_protocol::mfa_env_name(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let child = tokio::process::Command::new(&exe)
        .args(&args)
        .env_clear()
        .envs(envs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    match child {
        Ok(mut c) => {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
            });
        }
        Err(e) => tracing::debug!("{}: {e}: no desktop notification", exe.display()),
    }
}
