//! The user's own files: pctl's managed block in `~/.aws/config`, entries
//! merged into a YAML `~/.kube/config`, roles imported from an AWS config
//! into pctl's config, and `aws eks get-token` flags resolved against pctl's
//! config.
//!
//! Every write goes through [`Edit`]: compute the new text, show it as a
//! unified diff or write it atomically (temporary file + rename in the same
//! directory, the original's mode kept), after copying the previous file to
//! `<file>.pctl-backup`. Nothing is written when the text would not change.

pub mod aws_config;
pub mod import;
pub mod kubeconfig_yaml;
pub mod pctl_config;

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Mode of a file pctl creates (it may come to hold pointers to secrets).
const NEW_FILE_MODE: u32 = 0o600;

/// A planned change of one file: its text before (None: no file yet) and after.
#[derive(Debug)]
pub struct Edit {
    pub path: PathBuf,
    pub old: Option<String>,
    pub new: String,
}

impl Edit {
    /// Reads `path` (a missing file is empty) and plans `change` on its text.
    pub fn plan(path: &Path, change: impl FnOnce(Option<&str>) -> Result<String>) -> Result<Edit> {
        let path = real_path(path);
        let old = read_optional(&path)?;
        let new = change(old.as_deref())?;
        Ok(Edit { path, old, new })
    }

    pub fn changed(&self) -> bool {
        self.old.as_deref() != Some(self.new.as_str())
    }

    /// A unified diff from the current file to the planned one ("" when equal).
    pub fn diff(&self) -> String {
        if !self.changed() {
            return String::new();
        }
        let name = self.path.display().to_string();
        // The part after the tab is a label, as in `diff -u`'s headers.
        let old = if self.old.is_some() {
            format!("{name}\tnow")
        } else {
            format!("{name}\tno such file yet")
        };
        similar::TextDiff::from_lines(self.old.as_deref().unwrap_or(""), self.new.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&old, &format!("{name}\tafter pctl"))
            .to_string()
    }

    /// The backup of the previous file.
    pub fn backup_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".pctl-backup");
        self.path.with_file_name(name)
    }

    /// Writes the new text (when it differs): backup first, then an atomic
    /// replace keeping the file's mode. Refuses when the file changed since
    /// it was read. Returns the backup's path when there was a previous file.
    pub fn apply(&self) -> Result<Option<PathBuf>> {
        if !self.changed() {
            return Ok(None);
        }
        let now = read_optional(&self.path)?;
        if now != self.old {
            bail!(
                "{} changed while pctl was editing it: nothing written; run the command again",
                self.path.display()
            );
        }
        let mode = match std::fs::metadata(&self.path) {
            Ok(m) => m.permissions().mode() & 0o7777,
            Err(_) => NEW_FILE_MODE,
        };
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        pctl_protocol::dirs::create_private_dir(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let backup = match &self.old {
            Some(old) => {
                let b = self.backup_path();
                write_atomic(&b, old.as_bytes(), mode)
                    .with_context(|| format!("cannot write the backup {}", b.display()))?;
                Some(b)
            }
            None => None,
        };
        write_atomic(&self.path, self.new.as_bytes(), mode)?;
        Ok(backup)
    }
}

/// Follows a symlink (a dotfile manager's link stays a link; its target is edited).
fn real_path(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// A file's text, `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            anyhow::anyhow!(
                "{} is not UTF-8 text: nothing changed; fix or move the file",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Temporary file in the same directory, `mode`, fsync, rename over `path`.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".pctl-tmp.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        // The umask may have narrowed the mode at creation.
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .and_then(|()| f.write_all(data))
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `$HOME`, for the default locations of the user's files.
fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set: pass the file's path")
}

/// What a command that edits a file reports: the diff (with `--diff`) or
/// what it wrote. `what` names the change, e.g. "2 profile(s)".
///
/// With `--diff`, exits as `diff` does: 0 when there is nothing to change,
/// 1 when there is (the diff is coloured on a terminal).
pub fn finish(edit: &Edit, diff_only: bool, what: &str) -> Result<()> {
    if diff_only {
        if !edit.changed() {
            eprintln!("pctl: {} is up to date", edit.path.display());
            return Ok(());
        }
        use std::io::IsTerminal;
        let diff = edit.diff();
        if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            print!("{}", colour(&diff));
        } else {
            print!("{diff}");
        }
        return Err(crate::cmd::Exit(1).into());
    }
    if !edit.changed() {
        eprintln!("pctl: {} is up to date ({what})", edit.path.display());
        return Ok(());
    }
    let backup = edit.apply()?;
    match backup {
        Some(b) => eprintln!(
            "pctl: wrote {what} to {} (previous file: {})",
            edit.path.display(),
            b.display()
        ),
        None => eprintln!("pctl: wrote {what} to {}", edit.path.display()),
    }
    Ok(())
}

/// A unified diff with ANSI colours: headers bold, removals red, additions green.
fn colour(diff: &str) -> String {
    diff.lines()
        .map(|l| {
            let code = if l.starts_with("---") || l.starts_with("+++") {
                "1"
            } else if l.starts_with('-') {
                "31"
            } else if l.starts_with('+') {
                "32"
            } else if l.starts_with("@@") {
                "36"
            } else {
                return format!("{l}\n");
            };
            format!("\x1b[{code}m{l}\x1b[0m\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pctl-files-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn apply_keeps_mode_backs_up_and_follows_symlinks() {
        let d = tmpdir();
        let real = d.join("real-config");
        std::fs::write(&real, "old\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = d.join("config");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = Edit::plan(&link, |old| Ok(format!("{}new\n", old.unwrap()))).unwrap();
        assert!(e.diff().contains("+new"), "{}", e.diff());
        let b = e.apply().unwrap().unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "old\nnew\n");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "old\n");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn apply_refuses_a_file_changed_meanwhile_and_new_files_are_private() {
        let d = tmpdir();
        let p = d.join("sub").join("f");
        let e = Edit::plan(&p, |_| Ok("x\n".into())).unwrap();
        assert_eq!(e.apply().unwrap(), None);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let e = Edit::plan(&p, |_| Ok("y\n".into())).unwrap();
        std::fs::write(&p, "someone else\n").unwrap();
        let err = e.apply().unwrap_err().to_string();
        assert!(err.contains("changed while pctl was editing"), "{err}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "someone else\n");
        std::fs::remove_dir_all(d).unwrap();
    }
}
