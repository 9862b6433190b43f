//! The MFA code: where it comes from, and the rule that AWS never sees the
//! same one-time password twice.
//!
//! Per identity (`mfa = ...` in the config, [`crate::config::MfaMode`]):
//! the item's one-time password field (read with the keys, see
//! [`super::onepassword`]), a code the user typed (checked with
//! [`is_code`]), or a command's output ([`run_command`]: argv without a
//! shell, a timeout, the code parsed from stdout). A code is used for one
//! GetSessionToken and never stored or logged.

use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use pctl_protocol::op_path::{self, OpPathError};
use pctl_protocol::ClientEnv;
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use crate::secret::LockedString;

/// Whether `code` looks like a TOTP code: exactly 6 ASCII digits.
pub fn is_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// The code in a command's output: the last whitespace-separated word of 6
/// digits (`ykman oath accounts code` prints `NAME  123456`, `-s` only the code).
pub fn parse_code(stdout: &str) -> Option<&str> {
    stdout.split_whitespace().rev().find(|w| is_code(w))
}

/// Most a code command may print.
const MAX_OUTPUT: u64 = 64 * 1024;

/// Runs `argv` (no shell) and returns the code it printed. The program is
/// found like `op` ([`pctl_protocol::op_path::resolve_program`]: a bare
/// name on the client's PATH, links resolved, refused when others could
/// replace it) and runs with a minimal environment
/// ([`pctl_protocol::mfa_env_name`]: no `OP_*`). Killed after `timeout`,
/// with all it started ([`crate::platform::GroupChild`]).
/// Errors never contain the output.
pub async fn run_command(
    argv: &[String],
    env: &ClientEnv,
    timeout: Duration,
) -> Result<LockedString, String> {
    let program = argv.first().ok_or("mfa_command is empty")?;
    let path_var = env.0.get("PATH").map(String::as_str);
    let exe = op_path::resolve_program(Path::new(program), path_var).map_err(|e| match e {
        OpPathError::NotFound => format!(
            "mfa_command: cannot run \"{program}\": not found{}: give its absolute path in \
             mfa_command, or install it",
            if program.contains('/') {
                ""
            } else {
                " on the client's PATH (absolute entries only)"
            }
        ),
        OpPathError::Unsafe { path, why } => format!(
            "mfa_command: refusing to run {path}: {why}, so another account could replace \
             it: fix it (chmod go-w, chown) or point mfa_command at a copy only you and root \
             can write"
        ),
    })?;
    let mut child = crate::platform::GroupChild::spawn(
        tokio::process::Command::new(&exe)
            .args(&argv[1..])
            .env_clear()
            .envs(env.0.iter().filter(|(k, _)| pctl_protocol::mfa_env_name(k)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .map_err(|e| {
        format!("mfa_command: cannot run \"{program}\": {e}: fix mfa_command in the config")
    })?;
    let mut out = Zeroizing::new(Vec::new());
    let mut stdout = child.stdout.take().ok_or("mfa_command: no stdout")?;
    let run = async {
        let mut limited = (&mut stdout).take(MAX_OUTPUT);
        limited.read_to_end(&mut out).await.ok();
        child.wait().await
    };
    let status = match tokio::time::timeout(timeout, run).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(format!("mfa_command \"{program}\" failed: {e}")),
        Err(_) => {
            return Err(format!(
                "mfa_command \"{program}\" gave no code within {}s (daemon.op_timeout): \
                 is the device plugged in and touched?",
                timeout.as_secs()
            ))
        }
    };
    if !status.success() {
        return Err(format!(
            "mfa_command \"{program}\" exited with {status}: run it yourself to see why"
        ));
    }
    let text = String::from_utf8_lossy(&out);
    let text = Zeroizing::new(text.into_owned());
    parse_code(&text).map(LockedString::new).ok_or_else(|| {
        format!(
            "mfa_command \"{program}\" printed no 6-digit code: it must print the code on stdout"
        )
    })
}

/// The 30-second TOTP step of `t`.
pub fn totp_step(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 30
}

/// AWS refuses a code twice, so an unlock in the same TOTP step as the last
/// one waits for the next code. Only the step number is kept, never a code.
#[derive(Default)]
pub struct NeverTwice {
    last_step: Mutex<Option<u64>>,
}

impl NeverTwice {
    /// How long to wait at `now` before reading a new code (`None`: go).
    pub fn wait(&self, now: SystemTime) -> Option<Duration> {
        let last = (*self.last_step.lock().unwrap_or_else(|p| p.into_inner()))?;
        if totp_step(now) > last {
            return None;
        }
        let next = SystemTime::UNIX_EPOCH
            + Duration::from_secs((last + 1) * 30)
            + Duration::from_millis(500);
        Some(
            next.duration_since(now)
                .unwrap_or_default()
                .min(Duration::from_secs(31)),
        )
    }

    /// A code read at `at` was sent to AWS.
    pub fn sent(&self, at: SystemTime) {
        *self.last_step.lock().unwrap_or_else(|p| p.into_inner()) = Some(totp_step(at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_the_last_one_printed_wins() {
        assert!(is_code("012345"));
        assert!(
            !is_code("12345")
                && !is_code("1234567")
                && !is_code("12a456")
                && !is_code("１２３４５６")
        );
        assert_eq!(parse_code("123456\n"), Some("123456"));
        assert_eq!(parse_code("AWS:me  654321\n"), Some("654321"));
        assert_eq!(
            parse_code("Touch your YubiKey...\n111111 222222\n"),
            Some("222222")
        );
        assert_eq!(parse_code("no code 1234567"), None);
    }

    fn env() -> ClientEnv {
        ClientEnv(std::iter::once(("PATH".to_string(), "/usr/bin:/bin".to_string())).collect())
    }

    #[tokio::test]
    async fn a_command_runs_without_a_shell_and_with_a_timeout() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = run_command(
            &argv(&["echo", "AWS", "123456"]),
            &env(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(c.expose(), "123456");
        // shell syntax is one literal argument: printed, not run
        let e = run_command(
            &argv(&["echo", "$(echo 999999)"]),
            &env(),
            Duration::from_secs(5),
        )
        .await
        .err()
        .unwrap();
        assert!(e.contains("printed no 6-digit code"), "{e}");
        let e = run_command(&argv(&["sleep", "5"]), &env(), Duration::from_millis(200))
            .await
            .err()
            .unwrap();
        assert!(e.contains("within"), "{e}");
        let e = run_command(&argv(&["false"]), &env(), Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        assert!(e.contains("exited"), "{e}");
        let e = run_command(
            &argv(&["/nonexistent/ykman"]),
            &env(),
            Duration::from_secs(5),
        )
        .await
        .err()
        .unwrap();
        assert!(
            e.contains("cannot run") && e.contains("/nonexistent/ykman"),
            "{e}"
        );
        // the output never reaches the error
        let e = run_command(
            &argv(&["sh", "-c", "echo 424242; exit 3"]),
            &env(),
            Duration::from_secs(5),
        )
        .await
        .err()
        .unwrap();
        assert!(!e.contains("424242"), "{e}");
    }

    /// Like `op` (source::onepassword): the timeout kills what the code
    /// command started too, not only the command.
    #[tokio::test]
    async fn a_timed_out_command_takes_what_it_started_with_it() {
        use crate::platform::group_testing::{child_of_a_timed_out_run, ends, script_with_a_child};
        let dir = tempfile::tempdir().unwrap();
        let (script, pidfile) = script_with_a_child(dir.path());
        let argv = vec![script.display().to_string()];
        let pid = child_of_a_timed_out_run(&pidfile, |timeout| {
            let argv = argv.clone();
            async move {
                let e = run_command(&argv, &env(), timeout).await.err().unwrap();
                assert!(e.contains("within"), "{e}");
            }
        })
        .await;
        assert!(
            ends(pid),
            "a program mfa_command started outlived its timeout"
        );
    }

    /// Issue 15 §7: the command gets PATH, HOME, locale, terminal and
    /// display variables only (never OP_*), and a bare name is found like
    /// `op`: on PATH, and refused when others can write it.
    #[tokio::test]
    async fn a_command_gets_a_minimal_environment_and_a_trusted_program() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env.txt");
        let script = dir.path().join("show-env");
        std::fs::write(
            &script,
            format!("#!/bin/sh\nenv > '{}'\necho 123456\n", out.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut vars = env().0;
        for (k, v) in [
            ("HOME", "/home/me"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "C.UTF-8"),
            ("TERM", "xterm"),
            ("DISPLAY", ":0"),
            ("WAYLAND_DISPLAY", "wayland-0"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1/bus"),
            ("GPG_TTY", "/dev/pts/9"),
            ("OP_SERVICE_ACCOUNT_TOKEN", "ops_planted"),
            ("OP_SESSION_my", "planted"),
            ("USER", "me"),
            ("XDG_CONFIG_HOME", "/home/me/.config"),
        ] {
            vars.insert(k.into(), v.into());
        }
        vars.insert(
            "PATH".into(),
            format!("{}:/usr/bin:/bin", dir.path().display()),
        );
        let code = run_command(
            &["show-env".to_string()],
            &ClientEnv(vars.clone()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(code.expose(), "123456");
        let seen = std::fs::read_to_string(&out).unwrap();
        let mut names: Vec<&str> = seen
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .filter(|k| *k != "PWD" && *k != "SHLVL" && *k != "_") // set by sh itself
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "DBUS_SESSION_BUS_ADDRESS",
                "DISPLAY",
                "GPG_TTY",
                "HOME",
                "LANG",
                "LC_ALL",
                "PATH",
                "TERM",
                "WAYLAND_DISPLAY",
                "XDG_RUNTIME_DIR"
            ]
        );
        assert!(!seen.contains("planted"), "{seen}");
        // a program others can write is refused, and not run
        std::fs::remove_file(&out).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = run_command(
            &["show-env".to_string()],
            &ClientEnv(vars),
            Duration::from_secs(5),
        )
        .await
        .err()
        .unwrap();
        assert!(
            e.contains("refusing to run") && e.contains("writable"),
            "{e}"
        );
        assert!(!out.exists(), "the untrusted program ran");
    }

    #[test]
    fn same_step_waits_for_the_next_code() {
        let n = NeverTwice::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(30 * 1000 + 10);
        assert_eq!(n.wait(t), None);
        n.sent(t);
        assert_eq!(n.wait(t), Some(Duration::from_millis(20_500)));
        assert_eq!(n.wait(t + Duration::from_secs(20)), None);
    }
}
