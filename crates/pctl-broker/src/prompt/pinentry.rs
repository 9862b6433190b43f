//! A pinentry, spoken to over the Assuan protocol on its stdin/stdout (as
//! gpg-agent and rbw do): after the greeting, the `OPTION`s gpg-agent sends
//! (`ttyname`, `ttytype`, `lc-ctype`, `lc-messages`, from the client's
//! environment), then `SETTITLE`, `SETDESC`, `SETPROMPT`, `SETTIMEOUT`,
//! then `GETPIN` (the answer comes back in `D` lines) or `CONFIRM`, then
//! `BYE`. Texts are percent-escaped (`%`, CR, LF and other control bytes);
//! `D` data is percent-decoded straight into a zeroized buffer and the PIN
//! then into locked memory. A cancelled, declined or timed-out dialog is an
//! `ERR` line whose code (low 16 bits: libgpg-error's) says which.
//!
//! The program runs with only the requesting client's display, session-bus
//! and locale variables ([`pctl_protocol::mfa_env_name`]), never a secret
//! in its argv or environment.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use pctl_protocol::op_path::{self, OpPathError};
use pctl_protocol::ClientEnv;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use zeroize::Zeroizing;

use crate::secret::LockedString;

/// The pinentries tried, in order, when `[daemon] pinentry` is not set.
pub const DEFAULTS: [&str; 4] = ["pinentry-mac", "pinentry-gnome3", "pinentry-qt", "pinentry"];

/// Longest Assuan line we read (the protocol's own limit is 1000 bytes).
const MAX_LINE: u64 = 4096;

/// libgpg-error codes (low 16 bits of an `ERR` code).
const GPG_ERR_TIMEOUT: u32 = 62;
const GPG_ERR_CANCELED: u32 = 99;
const GPG_ERR_NOT_CONFIRMED: u32 = 114;

/// How a dialog ended without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinError {
    /// The user pressed Cancel (or closed the window).
    Cancelled,
    /// Nobody answered within the timeout.
    TimedOut,
    /// The pinentry could not be run or spoke no Assuan: why.
    Failed(String),
}

/// One pinentry program and the environment it runs with.
pub struct Pinentry {
    pub path: PathBuf,
    env: Vec<(String, String)>,
    timeout: Duration,
}

/// Where the pinentry is: `[daemon] pinentry`, else the first of
/// [`DEFAULTS`] on the client's PATH. `Err` is one actionable line.
pub fn find(configured: Option<&Path>, env: &ClientEnv) -> Result<PathBuf, String> {
    let path_var = env.0.get("PATH").map(String::as_str);
    if let Some(p) = configured {
        return op_path::resolve_program(p, path_var).map_err(|e| match e {
            OpPathError::NotFound => format!(
                "[daemon] pinentry {} does not exist or is not executable: fix the path or install it",
                p.display()
            ),
            OpPathError::Unsafe { path, why } => format!(
                "refusing to run the pinentry {path}: {why}: fix it (chmod go-w, chown)"
            ),
        });
    }
    let mut unsafe_one = None;
    for name in DEFAULTS {
        match op_path::resolve_program(Path::new(name), path_var) {
            Ok(p) => return Ok(p),
            Err(OpPathError::Unsafe { path, why }) => {
                unsafe_one.get_or_insert(format!("refusing to run the pinentry {path}: {why}"))
            }
            Err(OpPathError::NotFound) => continue,
        };
    }
    Err(unsafe_one.unwrap_or_else(|| {
        format!(
            "no pinentry to ask with (looked for {} on the client's PATH): install one (e.g. `apt install pinentry-gnome3`, `brew install pinentry-mac`) or set [daemon] pinentry, or run the command in a terminal",
            DEFAULTS.join(", ")
        )
    }))
}

impl Pinentry {
    /// `path` with the client's display and locale variables; a dialog
    /// left unanswered for `timeout` ends as [`PinError::TimedOut`].
    pub fn new(path: PathBuf, env: &ClientEnv, timeout: Duration) -> Self {
        Pinentry {
            path,
            env: env
                .0
                .iter()
                .filter(|(k, _)| pctl_protocol::mfa_env_name(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            timeout,
        }
    }

    /// Asks for a PIN (an MFA code): the answer, in locked memory.
    pub async fn get_pin(
        &self,
        title: &str,
        desc: &str,
        prompt: &str,
    ) -> Result<LockedString, PinError> {
        let mut s = self.start().await?;
        s.setup(title, desc, self.timeout).await?;
        s.command(&format!("SETPROMPT {}", escape(prompt))).await?;
        let data = s.command("GETPIN").await?;
        s.bye().await;
        let text = std::str::from_utf8(&data)
            .map_err(|_| PinError::Failed("the pinentry sent a PIN that is not UTF-8".into()))?;
        Ok(LockedString::new(text))
    }

    /// Asks for a yes: `Ok(true)` on OK, `Ok(false)` when declined or
    /// cancelled, `Err` on a timeout or a broken pinentry.
    pub async fn confirm(&self, title: &str, desc: &str) -> Result<bool, PinError> {
        self.choose(title, desc, "Allow", "Deny").await
    }

    /// [`confirm`](Self::confirm) with its own button labels.
    pub async fn choose(
        &self,
        title: &str,
        desc: &str,
        ok: &str,
        cancel: &str,
    ) -> Result<bool, PinError> {
        let never = std::future::pending::<()>();
        self.choose_until(title, desc, (ok, cancel), never)
            .await
            .unwrap_or(Err(PinError::TimedOut))
    }

    /// [`choose`](Self::choose) while `stop` is pending: when it completes
    /// first, the window is taken down (SIGTERM, so a curses pinentry
    /// restores its terminal) and the answer is `None`.
    pub async fn choose_until(
        &self,
        title: &str,
        desc: &str,
        (ok, cancel): (&str, &str),
        stop: impl std::future::Future<Output = ()>,
    ) -> Option<Result<bool, PinError>> {
        tokio::pin!(stop);
        let asked = async {
            let mut s = self.start().await?;
            s.setup(title, desc, self.timeout).await?;
            let _ = s.command(&format!("SETOK {}", escape(ok))).await;
            let _ = s.command(&format!("SETCANCEL {}", escape(cancel))).await;
            Ok::<_, PinError>(s)
        };
        let mut s = tokio::select! {
            s = asked => match s {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            },
            _ = &mut stop => return None,
        };
        let r = tokio::select! {
            r = s.command("CONFIRM") => Some(r),
            _ = &mut stop => None,
        };
        let Some(r) = r else {
            s.terminate().await;
            return None;
        };
        s.bye().await;
        Some(match r {
            Ok(_) => Ok(true),
            Err(PinError::Cancelled) => Ok(false),
            Err(e) => Err(e),
        })
    }

    async fn start(&self) -> Result<Session, PinError> {
        let mut child = tokio::process::Command::new(&self.path)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                PinError::Failed(format!(
                    "cannot run the pinentry {}: {e}",
                    self.path.display()
                ))
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(PinError::Failed("the pinentry has no stdin/stdout".into()));
        };
        let mut s = Session {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            // the dialog's own timeout, plus time to start and to answer it
            deadline: tokio::time::Instant::now() + self.timeout + Duration::from_secs(3),
        };
        s.response().await?; // the greeting: OK
        for option in options(&self.env) {
            // a pinentry that does not know one still shows its dialog
            let _ = s.command(&option).await;
        }
        Ok(s)
    }
}

/// The `OPTION`s gpg-agent sends a pinentry, from the client's forwarded
/// environment: `ttyname` (`GPG_TTY`: the terminal pinentry-curses and
/// pinentry-tty draw on when there is no display), `ttytype` (`TERM`),
/// `lc-ctype` and `lc-messages` (each as the C library resolves it:
/// `LC_ALL`, then `LC_CTYPE`/`LC_MESSAGES`, then `LANG`). A value with
/// a control character or `%` is left out (it could end the line or be
/// read as an escape).
fn options(env: &[(String, String)]) -> Vec<String> {
    let get = |name: &str| {
        env.iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let locale = |category: &str| {
        get("LC_ALL")
            .or_else(|| get(category))
            .or_else(|| get("LANG"))
    };
    [
        ("ttyname", get("GPG_TTY")),
        ("ttytype", get("TERM")),
        ("lc-ctype", locale("LC_CTYPE")),
        ("lc-messages", locale("LC_MESSAGES")),
    ]
    .into_iter()
    .filter_map(|(name, v)| {
        let v = v?;
        let clean = !v.chars().any(|c| c.is_control() || c == '%');
        clean.then(|| format!("OPTION {name}={v}"))
    })
    .collect()
}

struct Session {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
    deadline: tokio::time::Instant,
}

impl Session {
    async fn setup(&mut self, title: &str, desc: &str, timeout: Duration) -> Result<(), PinError> {
        self.command(&format!("SETTITLE {}", escape(title))).await?;
        self.command(&format!("SETDESC {}", escape(desc))).await?;
        // older pinentries do not know it; our own deadline still holds
        let _ = self
            .command(&format!("SETTIMEOUT {}", timeout.as_secs().max(1)))
            .await;
        Ok(())
    }

    /// Sends one command; its `D` data (percent-decoded, zeroized on drop)
    /// when it ends in OK.
    async fn command(&mut self, line: &str) -> Result<Zeroizing<Vec<u8>>, PinError> {
        let sent = async {
            self.stdin.write_all(line.as_bytes()).await?;
            self.stdin.write_all(b"\n").await?;
            self.stdin.flush().await
        };
        match tokio::time::timeout_at(self.deadline, sent).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(PinError::Failed(format!("the pinentry went away: {e}"))),
            Err(_) => return Err(PinError::TimedOut),
        }
        self.response().await
    }

    /// Reads lines up to `OK` or `ERR`.
    async fn response(&mut self) -> Result<Zeroizing<Vec<u8>>, PinError> {
        let mut data = Zeroizing::new(Vec::new());
        loop {
            let mut line = Zeroizing::new(Vec::new());
            let read = async {
                let mut limited = (&mut self.stdout).take(MAX_LINE);
                limited.read_until(b'\n', &mut line).await
            };
            match tokio::time::timeout_at(self.deadline, read).await {
                Err(_) => return Err(PinError::TimedOut),
                Ok(Err(e)) => return Err(PinError::Failed(format!("reading the pinentry: {e}"))),
                Ok(Ok(0)) => {
                    return Err(PinError::Failed(
                        "the pinentry closed without an answer".into(),
                    ))
                }
                Ok(Ok(_)) => {}
            }
            if line.last() != Some(&b'\n') {
                return Err(PinError::Failed(
                    "the pinentry sent a line that is too long or unterminated".into(),
                ));
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            match parse_line(&line) {
                Line::Ok => return Ok(data),
                Line::Err(code, text) => return Err(err_of(code, &text)),
                Line::Data(d) => {
                    if let Err(e) = unescape_into(d, &mut data) {
                        return Err(PinError::Failed(e.into()));
                    }
                }
                Line::Other => {}
            }
        }
    }

    /// Takes the dialog down unanswered: SIGTERM, a moment to restore the
    /// terminal, then (dropped) SIGKILL.
    async fn terminate(mut self) {
        if let Some(pid) = self.child.id() {
            crate::platform::terminate_child(pid);
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
    }

    async fn bye(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self.stdin.write_all(b"BYE\n").await;
            let _ = self.stdin.flush().await;
            let _ = self.child.wait().await;
        })
        .await;
    }
}

enum Line<'a> {
    Ok,
    Err(u32, String),
    Data(&'a [u8]),
    /// Status (`S`), comments (`#`), anything else: ignored.
    Other,
}

fn parse_line(line: &[u8]) -> Line<'_> {
    if line == b"OK" || line.starts_with(b"OK ") {
        return Line::Ok;
    }
    if let Some(rest) = line.strip_prefix(b"ERR") {
        let text = String::from_utf8_lossy(rest);
        let text = text.trim();
        let (code, msg) = text.split_once(' ').unwrap_or((text, ""));
        return Line::Err(code.parse().unwrap_or(0), msg.to_string());
    }
    if let Some(d) = line.strip_prefix(b"D ") {
        return Line::Data(d);
    }
    Line::Other
}

fn err_of(code: u32, text: &str) -> PinError {
    match code & 0xFFFF {
        GPG_ERR_CANCELED | GPG_ERR_NOT_CONFIRMED => PinError::Cancelled,
        GPG_ERR_TIMEOUT => PinError::TimedOut,
        _ => PinError::Failed(format!("the pinentry answered ERR {code} {text}")),
    }
}

/// Assuan's escaping of a command's text: `%`, CR, LF and other control
/// characters as `%XX`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || (c as u32) < 0x20 || c == '\u{7f}' {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes `%XX` in a `D` line, appending to `out`.
fn unescape_into(d: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let mut i = 0;
    while i < d.len() {
        if d[i] == b'%' {
            let hex = d
                .get(i + 1..i + 3)
                .ok_or("the pinentry sent a bad escape")?;
            let v = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("the pinentry sent a bad escape")?;
            out.push(v);
            i += 3;
        } else {
            out.push(d[i]);
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_percent_escaped() {
        assert_eq!(escape("100% sure\nline two\r"), "100%25 sure%0Aline two%0D");
        assert_eq!(escape("plain: role prod-admin"), "plain: role prod-admin");
    }

    #[test]
    fn data_is_percent_decoded_and_bad_escapes_refused() {
        let mut out = Vec::new();
        unescape_into(b"12%2534%0A", &mut out).unwrap();
        assert_eq!(out, b"12%34\n");
        assert!(unescape_into(b"12%2", &mut Vec::new()).is_err());
        assert!(unescape_into(b"%zz", &mut Vec::new()).is_err());
    }

    #[test]
    fn err_codes_map_to_cancel_and_timeout() {
        // pinentry's codes carry its source (5) in the high bits
        assert_eq!(err_of(83886179, "Operation cancelled"), PinError::Cancelled);
        assert_eq!(err_of(83886194, "Not confirmed"), PinError::Cancelled);
        assert_eq!(err_of(83886142, "Timeout"), PinError::TimedOut);
        assert!(matches!(err_of(1, "x"), PinError::Failed(_)));
    }

    #[test]
    fn options_come_from_the_forwarded_environment() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            options(&env(&[
                ("GPG_TTY", "/dev/pts/3"),
                ("TERM", "xterm-256color"),
                ("LANG", "de_DE.UTF-8"),
                ("LC_MESSAGES", "C"),
            ])),
            vec![
                "OPTION ttyname=/dev/pts/3",
                "OPTION ttytype=xterm-256color",
                "OPTION lc-ctype=de_DE.UTF-8",
                "OPTION lc-messages=C",
            ]
        );
        // LC_ALL wins; nothing without a value; no line breaks smuggled in
        assert_eq!(
            options(&env(&[
                ("LC_ALL", "fr_FR.UTF-8"),
                ("LC_CTYPE", "C"),
                ("GPG_TTY", "/dev/pts/1\nGETPIN"),
                ("TERM", ""),
            ])),
            vec![
                "OPTION lc-ctype=fr_FR.UTF-8",
                "OPTION lc-messages=fr_FR.UTF-8"
            ]
        );
        assert!(options(&[]).is_empty());
    }

    #[test]
    fn configured_pinentry_must_exist() {
        let env = ClientEnv::default();
        let e = find(Some(Path::new("/nonexistent/pinentry-x")), &env).unwrap_err();
        assert!(
            e.contains("/nonexistent/pinentry-x") && e.contains("[daemon] pinentry"),
            "{e}"
        );
        let mut env = ClientEnv::default();
        env.0.insert("PATH".into(), "/nonexistent-dir".into());
        let e = find(None, &env).unwrap_err();
        assert!(
            e.contains("pinentry-gnome3") && e.contains("install"),
            "{e}"
        );
    }
}
