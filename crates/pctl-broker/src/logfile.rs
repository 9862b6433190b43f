//! The daemon's log file (`--log-file`, which clients pass when they start
//! the daemon): appended, 0600, and size-capped with one old file, so that
//! nothing another user can make the daemon log fills the disk. At
//! [`MAX_BYTES`] the file is renamed to `NAME.1` (replacing the previous
//! one) and a new one is started: at most twice the cap on disk.
//!
//! Under a service manager the daemon runs without `--log-file`
//! (`shell/systemd/pctl.service` runs `pctl daemon`): it then logs to
//! stderr, which systemd hands to the journal, whose own limits apply. The
//! launchd agent (`shell/launchd`) sets no `StandardErrorPath`, so nothing
//! accumulates there.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The daemon's log filter: `PCTL_LOG` (error, warn, info, debug, trace;
/// anything else is info) sets the level of pctl's own messages only; every
/// dependency stays at `warn`, so no HTTP wire trace (which could carry a
/// session token) is ever written. A list of target prefixes
/// (`tracing_subscriber`'s `Targets`), not an `EnvFilter`: the same filtering
/// without a regex engine in the build.
pub fn filter(pctl_log: &str) -> tracing_subscriber::filter::Targets {
    use tracing::level_filters::LevelFilter;
    let level = match pctl_log {
        "error" => LevelFilter::ERROR,
        "warn" => LevelFilter::WARN,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => LevelFilter::INFO,
    };
    tracing_subscriber::filter::Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("pctl_daemon", level)
        .with_target("pctl_broker", level)
}

/// The size at which the log is rotated.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;

/// An append-only file that rotates itself once it would grow past `max`.
pub struct RotatingFile {
    path: PathBuf,
    old: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

impl RotatingFile {
    /// Opens (or creates, 0600) `path` for appending; a file already at the
    /// cap is rotated first.
    pub fn open(path: &Path, max: u64) -> io::Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        let mut f = RotatingFile {
            path: path.to_path_buf(),
            old: PathBuf::from(old),
            file,
            size,
            max,
        };
        if size >= max {
            f.rotate();
        }
        Ok(f)
    }

    /// `NAME` becomes `NAME.1` and a new `NAME` is started. Where the
    /// rename or the new file fails, the current file is emptied instead:
    /// the cap holds either way.
    fn rotate(&mut self) {
        let renamed = std::fs::rename(&self.path, &self.old)
            .and_then(|()| open_append(&self.path))
            .map(|f| self.file = f);
        if renamed.is_err() {
            let _ = self.file.set_len(0);
        }
        self.size = 0;
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size.saturating_add(buf.len() as u64) > self.max {
            self.rotate();
        }
        let n = self.file.write(buf)?;
        self.size = self.size.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pctl_log_sets_only_pctls_own_level() {
        use tracing::Level;
        let trace = super::filter("trace");
        assert!(trace.would_enable("pctl_broker::server", &Level::TRACE));
        assert!(trace.would_enable("pctl_daemon", &Level::TRACE));
        // Dependencies (the HTTP stack above all) stay at warn.
        for dep in [
            "hyper::proto::h1",
            "aws_smithy_runtime::client",
            "rustls",
            "h2",
        ] {
            assert!(!trace.would_enable(dep, &Level::INFO), "{dep}");
            assert!(trace.would_enable(dep, &Level::WARN), "{dep}");
        }
        let default = super::filter("");
        assert!(default.would_enable("pctl_broker::issue", &Level::INFO));
        assert!(!default.would_enable("pctl_broker::issue", &Level::DEBUG));
        assert!(!super::filter("loud").would_enable("pctl_daemon", &Level::DEBUG));
        let error = super::filter("error");
        assert!(!error.would_enable("pctl_broker::issue", &Level::WARN));
        assert!(error.would_enable("pctl_broker::issue", &Level::ERROR));
    }

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn len(p: &Path) -> u64 {
        std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn the_log_is_capped_with_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.log");
        let old = dir.path().join("daemon.log.1");
        let mut f = RotatingFile::open(&path, 1000).unwrap();
        let line = [b'x'; 99];
        for i in 0..100u32 {
            f.write_all(&line).unwrap();
            f.write_all(b"\n").unwrap();
            assert!(len(&path) <= 1000, "at line {i}: {}", len(&path));
        }
        assert!(len(&path) > 0 && len(&old) > 0 && len(&old) <= 1000);
        for p in [&path, &old] {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        // nothing else was created: one old file only
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_file_already_over_the_cap_is_rotated_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.log");
        std::fs::write(&path, vec![b'o'; 2000]).unwrap();
        let mut f = RotatingFile::open(&path, 1000).unwrap();
        f.write_all(b"new\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        assert_eq!(len(&dir.path().join("daemon.log.1")), 2000);
    }

    #[test]
    fn a_symlink_in_place_of_the_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"").unwrap();
        let path = dir.path().join("daemon.log");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(RotatingFile::open(&path, 1000).is_err());
    }
}
