//! `pctl exec --role R -- CMD...`: run CMD with a role's session in its environment.

use std::ffi::OsString;

use anyhow::{anyhow, Result};

use crate::client::Client;
use crate::output;

/// Run a command with a role's session credentials in its environment.
///
/// `pctl exec ROLE -- CMD...` (aws-vault's form) is `pctl exec --role ROLE -- CMD...`.
/// Without a role: AWS_PROFILE's (`pctl-ROLE`), else the only configured role.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The role (also as its AWS profile name, `pctl-ROLE`).
    #[arg(long)]
    role: Option<String>,
    /// Give CMD a loopback credential endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI +
    /// AWS_CONTAINER_AUTHORIZATION_TOKEN) instead of keys: the SDKs re-read it, so a long
    /// job gets refreshed sessions. The endpoint ends when CMD (or pctl) does.
    #[arg(long)]
    server: bool,
    /// The command to run and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<String>,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    if args.server {
        run_with_server(client, args.role, args.command)
    } else {
        run_with_keys(client, args.role, args.command)
    }
}

/// Rewrites aws-vault's `exec ROLE [--server] -- CMD...` into `exec --role
/// ROLE [--server] -- CMD...`: exactly one word that is not an option
/// between `exec` and `--`. Any other command line is returned as it was.
pub fn role_first(args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).and_then(|a| a.to_str()) != Some("exec") {
        return args;
    }
    let Some(dash) = args.iter().position(|a| a == "--") else {
        return args;
    };
    let before: Vec<&str> = match args[2..dash].iter().map(|a| a.to_str()).collect() {
        Some(b) => b,
        None => return args,
    };
    let words: Vec<usize> = (0..before.len())
        .filter(|&i| !before[i].starts_with('-'))
        .collect();
    if words.len() != 1
        || before
            .iter()
            .any(|b| *b == "--role" || b.starts_with("--role="))
    {
        return args;
    }
    let mut out = args;
    out.insert(2 + words[0], "--role".into());
    out
}

/// The role `exec` runs as: the one named (checked by the daemon), else
/// `AWS_PROFILE`'s or the only one (asked from the daemon).
fn role_of(client: &Client, role: Option<String>) -> Result<String> {
    match role {
        Some(r) => Ok(r),
        None => super::roles::default_role(&client.profiles()?.roles),
    }
}

fn run_with_keys(client: &Client, role: Option<String>, command: Vec<String>) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let role = role_of(client, role)?;
    let c = client.credentials(role.clone())?;
    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..])
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE");
    for (k, v) in output::credential_vars(&c, &role) {
        cmd.env(k, v);
    }
    // The CLI v1 reads only AWS_DEFAULT_REGION.
    if std::env::var_os("AWS_DEFAULT_REGION").is_none() {
        cmd.env("AWS_DEFAULT_REGION", &c.region);
    }
    drop(c);
    let err = cmd.exec();
    Err(not_run(&command[0], &err))
}

/// CMD could not be started: the shell's exit statuses (127 not found, 126
/// found but not executable), with one line saying so.
fn not_run(cmd: &str, err: &std::io::Error) -> anyhow::Error {
    let code = match err.kind() {
        std::io::ErrorKind::NotFound => 127,
        std::io::ErrorKind::PermissionDenied => 126,
        _ => return anyhow!("cannot run {cmd}: {err}"),
    };
    let why = if code == 127 {
        "command not found".to_string()
    } else {
        format!("not executable ({err})")
    };
    eprintln!("pctl: {cmd}: {why}");
    super::Exit(code).into()
}

/// `pctl exec --server --role R -- CMD...`: CMD gets a loopback credential
/// endpoint (and no AWS key variables). pctl stays CMD's parent and holds
/// the endpoint while CMD runs: it ends when CMD exits, or when pctl dies
/// (the daemon sees the connection close). SIGTERM and SIGHUP sent to pctl
/// are passed on to CMD; Ctrl-C reaches CMD from the terminal directly.
/// Exits with CMD's status (128 + N when a signal N ended it).
fn run_with_server(client: &Client, role: Option<String>, command: Vec<String>) -> Result<()> {
    use std::os::unix::process::ExitStatusExt;
    let role = role_of(client, role)?;
    let (conn, server) = client.credential_server(role, None)?;
    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..]);
    for k in super::serve::SHADOWING_VARS {
        cmd.env_remove(k);
    }
    for (k, v) in super::serve::endpoint_vars(&server) {
        cmd.env(k, v);
    }
    // The config's region unless the caller chose one (the CLI v1 reads only
    // AWS_DEFAULT_REGION, the other SDKs AWS_REGION first).
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        cmd.env("AWS_REGION", &server.region)
            .env("AWS_DEFAULT_REGION", &server.region);
    }
    drop(server);
    signals::forward_to_child()?;
    let mut child = cmd.spawn().map_err(|e| not_run(&command[0], &e))?;
    signals::set_child(child.id());
    let status = child.wait();
    drop(conn);
    let status = status.map_err(|e| anyhow!("cannot wait for {}: {e}", command[0]))?;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    std::process::exit(code)
}

/// Signals pctl passes on to the command it waits for.
mod signals {
    use std::sync::atomic::{AtomicI32, Ordering};

    use anyhow::{Context, Result};
    use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
    use nix::unistd::Pid;

    static CHILD: AtomicI32 = AtomicI32::new(0);
    /// A signal that arrived before the child's PID was known.
    static PENDING: AtomicI32 = AtomicI32::new(0);

    fn send(pid: i32, sig: i32) {
        if let Ok(sig) = Signal::try_from(sig) {
            // kill(2) is async-signal-safe.
            let _ = signal::kill(Pid::from_raw(pid), sig);
        }
    }

    extern "C" fn pass_on(sig: i32) {
        match CHILD.load(Ordering::SeqCst) {
            pid if pid > 0 => send(pid, sig),
            _ => PENDING.store(sig, Ordering::SeqCst),
        }
    }

    extern "C" fn ignore(_: i32) {}

    /// SIGTERM/SIGHUP go to the child; SIGINT/SIGQUIT (the terminal sends
    /// them to the whole foreground group, child included) leave pctl
    /// waiting for the child. Handlers, not SIG_IGN: exec resets handlers,
    /// so the child starts with default dispositions.
    pub fn forward_to_child() -> Result<()> {
        let pass = SigAction::new(
            SigHandler::Handler(pass_on),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let wait = SigAction::new(
            SigHandler::Handler(ignore),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handlers only read an atomic and call kill(2).
        unsafe {
            for s in [Signal::SIGTERM, Signal::SIGHUP] {
                signal::sigaction(s, &pass).context("cannot set a signal handler")?;
            }
            for s in [Signal::SIGINT, Signal::SIGQUIT] {
                signal::sigaction(s, &wait).context("cannot set a signal handler")?;
            }
        }
        Ok(())
    }

    /// Records the child; a signal that came while it was being started
    /// is passed on now. (pctl is single-threaded here: the handler runs
    /// between, never during, these two steps.)
    pub fn set_child(pid: u32) {
        CHILD.store(pid as i32, Ordering::SeqCst);
        let sig = PENDING.swap(0, Ordering::SeqCst);
        if sig > 0 {
            send(pid as i32, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn exec_with_the_role_first() {
        let norm = |s: &str| {
            role_first(args(s))
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            norm("pctl exec admin -- aws s3 ls"),
            "pctl exec --role admin -- aws s3 ls"
        );
        assert_eq!(
            norm("pctl exec --server admin -- env"),
            "pctl exec --server --role admin -- env"
        );
        for same in [
            "pctl exec --role admin -- aws s3 ls",
            "pctl exec -- aws s3 ls",
            "pctl exec aws s3 ls",
            "pctl exec a b -- c",
            "pctl env --role a -- b",
        ] {
            assert_eq!(norm(same), same);
        }
    }
}
