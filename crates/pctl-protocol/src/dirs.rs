//! Every path pctl uses, in one place (shared by the daemon and its clients,
//! which must agree on them), and the one way to make and check a private
//! directory.
//!
//! The socket's directory is where trust starts: the daemon binds only in a
//! directory of its own user that nobody else can write, and the client
//! checks the same before it connects (see [`crate::connection`]). The
//! fallback when `XDG_RUNTIME_DIR` is unset is private by construction:
//! - macOS: `pctl/` in the per-user temporary directory
//!   (`/var/folders/…/T/`, mode 0700, made by the system for each user),
//!   asked from the system with `confstr(_CS_DARWIN_USER_TEMP_DIR)` so a
//!   launchd agent (which may have no `$TMPDIR`) and a shell agree;
//!   `$TMPDIR` only if that call fails;
//! - Linux: `/tmp/pctl-$UID/`, created with `mkdir(…, 0700)`; a directory
//!   of that name someone else made first is refused with a message saying
//!   what to do, never used.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::peer::euid;

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

/// The daemon's socket: `$PCTL_SOCK`, else `$XDG_RUNTIME_DIR/pctl/pctl.sock`,
/// else the per-user fallback ([`fallback_socket_dir`]).
pub fn socket_path() -> PathBuf {
    env_path("PCTL_SOCK").unwrap_or_else(default_socket_path)
}

/// Where the daemon's socket is without `PCTL_SOCK`:
/// `$XDG_RUNTIME_DIR/pctl/pctl.sock`, else the per-user fallback
/// ([`fallback_socket_dir`]). A client finds this one with no environment
/// of its own (desktop apps, a kubeconfig without `exec.env`).
pub fn default_socket_path() -> PathBuf {
    match env_path("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join("pctl").join("pctl.sock"),
        None => fallback_socket_dir().join("pctl.sock"),
    }
}

/// Where the socket lives without `XDG_RUNTIME_DIR`.
///
/// macOS: `pctl` in the per-user temporary directory. Linux and others:
/// `/tmp/pctl-$UID`, which the daemon creates 0700 and both sides verify.
pub fn fallback_socket_dir() -> PathBuf {
    #[cfg(target_os = "macos")]
    if let Some(tmp) = darwin_user_temp_dir().or_else(|| env_path("TMPDIR")) {
        return tmp.join("pctl");
    }
    PathBuf::from(format!("/tmp/pctl-{}", euid()))
}

/// The per-user temporary directory macOS made for this user.
#[cfg(target_os = "macos")]
fn darwin_user_temp_dir() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; 1024];
    // SAFETY: buf is writable for its whole length.
    let n = unsafe {
        libc::confstr(
            libc::_CS_DARWIN_USER_TEMP_DIR,
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n == 0 || n > buf.len() {
        return None;
    }
    buf.truncate(n - 1); // n counts the terminating NUL
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(&buf)))
}

/// The lock file that makes one daemon per socket: `<socket>.lock`.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// The config file: `$PCTL_CONFIG`, else `$XDG_CONFIG_HOME/pctl/config.toml`,
/// else `~/.config/pctl/config.toml`.
pub fn config_path() -> PathBuf {
    if let Some(p) = env_path("PCTL_CONFIG") {
        return p;
    }
    config_dir().join("config.toml")
}

/// pctl's own config directory (for files pctl writes and owns).
pub fn config_dir() -> PathBuf {
    env_path("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home().join(".config"))
        .join("pctl")
}

/// Logs: `$PCTL_STATE_DIR`, else `$XDG_STATE_HOME/pctl`, else `~/.local/state/pctl`.
pub fn state_dir() -> PathBuf {
    if let Some(p) = env_path("PCTL_STATE_DIR") {
        return p;
    }
    env_path("XDG_STATE_HOME")
        .unwrap_or_else(|| home().join(".local").join("state"))
        .join("pctl")
}

/// The log of a daemon a client started.
pub fn daemon_log_path() -> PathBuf {
    state_dir().join("daemon.log")
}

/// The audit trail (JSON lines, one per issuance).
pub fn audit_log_path() -> PathBuf {
    state_dir().join("audit.log")
}

/// The kubeconfig file pctl owns.
pub fn kubeconfig_path() -> PathBuf {
    config_dir().join("kubeconfig")
}

/// Creates `dir` and any missing parent with mode 0700 (`mkdir` never
/// follows a symbolic link in the last component, and the umask can only
/// take bits away). A directory that already exists is left as it is:
/// callers that must trust it check it with [`check_private_dir`].
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// A path pctl refuses to trust, with the reason and the fix in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Untrusted(pub String);

/// Checks (lstat, no symbolic link followed) that `dir` is a directory of
/// this user that group and others cannot write. `Ok(false)`: it does not
/// exist.
pub fn check_private_dir(dir: &Path) -> Result<bool, Untrusted> {
    let d = dir.display();
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Untrusted(format!("refusing socket directory {d}: {e}"))),
    };
    let me = euid();
    if meta.file_type().is_symlink() {
        return Err(Untrusted(format!(
            "refusing socket directory {d}: a symbolic link, not a directory; remove it or set PCTL_SOCK to a path in a directory of yours"
        )));
    }
    if !meta.is_dir() {
        return Err(Untrusted(format!(
            "refusing socket directory {d}: not a directory; remove it or set PCTL_SOCK"
        )));
    }
    if meta.uid() != me {
        return Err(Untrusted(format!(
            "refusing socket directory {d}: owned by uid {}, not you (uid {me}); remove it or set PCTL_SOCK to a path in a directory of yours",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Untrusted(format!(
            "refusing socket directory {d}: mode {:o} lets others write to it; run `chmod 700 {d}` (or remove it) or set PCTL_SOCK",
            meta.mode() & 0o7777
        )));
    }
    Ok(true)
}

/// Checks (lstat) that `socket` is a Unix socket of this user. `Ok(false)`:
/// it does not exist.
pub fn check_socket_file(socket: &Path) -> Result<bool, Untrusted> {
    let s = socket.display();
    let meta = match std::fs::symlink_metadata(socket) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Untrusted(format!("refusing socket {s}: {e}"))),
    };
    let me = euid();
    if !meta.file_type().is_socket() {
        let what = if meta.file_type().is_symlink() {
            "a symbolic link"
        } else {
            "not a socket"
        };
        return Err(Untrusted(format!(
            "refusing socket {s}: {what}; remove it or set PCTL_SOCK to a path in a directory of yours"
        )));
    }
    if meta.uid() != me {
        return Err(Untrusted(format!(
            "refusing socket {s}: owned by uid {}, not you (uid {me}); remove it or set PCTL_SOCK to a path in a directory of yours",
            meta.uid()
        )));
    }
    Ok(true)
}

/// The socket's directory (`.` for a bare file name).
pub fn socket_dir(socket: &Path) -> PathBuf {
    match socket.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates the socket's directory (0700) when missing, then checks it
/// ([`check_private_dir`]): what the daemon does before it binds.
pub fn prepare_socket_dir(socket: &Path) -> Result<(), Untrusted> {
    let dir = socket_dir(socket);
    create_private_dir(&dir).map_err(|e| {
        Untrusted(format!(
            "cannot create socket directory {}: {e}; set PCTL_SOCK to a path in a directory of yours",
            dir.display()
        ))
    })?;
    match check_private_dir(&dir)? {
        true => Ok(()),
        false => Err(Untrusted(format!(
            "socket directory {} vanished while being created",
            dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pctl-dirs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn created_private_and_checked() {
        let base = tmp("create");
        let d = base.join("a").join("b");
        create_private_dir(&d).unwrap();
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        assert_eq!(check_private_dir(&d), Ok(true));
        create_private_dir(&d).unwrap(); // idempotent
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn writable_by_others_or_symlink_is_refused() {
        let base = tmp("refuse");
        create_private_dir(&base).unwrap();
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o770)).unwrap();
        let e = check_private_dir(&open).unwrap_err().0;
        assert!(
            e.contains("lets others write") && e.contains("chmod 700"),
            "{e}"
        );
        let link = base.join("link");
        std::os::unix::fs::symlink(base.join("missing"), &link).unwrap();
        assert!(check_private_dir(&link)
            .unwrap_err()
            .0
            .contains("symbolic link"));
        assert!(check_socket_file(&link)
            .unwrap_err()
            .0
            .contains("symbolic link"));
        assert!(check_socket_file(&open)
            .unwrap_err()
            .0
            .contains("not a socket"));
        assert_eq!(check_private_dir(&base.join("none")), Ok(false));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn lock_file_sits_beside_the_socket() {
        assert_eq!(
            lock_path(Path::new("/run/pctl/pctl.sock")),
            PathBuf::from("/run/pctl/pctl.sock.lock")
        );
    }
}
