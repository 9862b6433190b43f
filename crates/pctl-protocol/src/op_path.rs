//! Which `op` (the 1Password CLI) pctl runs, and which it refuses: one rule
//! for the daemon (at each unlock) and for `pctl init` (which runs `op`
//! itself, before any config exists).
//!
//! The answer is an absolute path with symbolic links resolved: the
//! configured path, else the first `op` on PATH (absolute entries only: a
//! relative entry such as `.` would make the answer depend on the working
//! directory). It is refused when someone else could replace it: the file or
//! its directory writable by group or others, or owned by someone other than
//! you or root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why no `op` can be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpPathError {
    /// No executable `op` on PATH (or the configured one does not exist).
    NotFound,
    /// Found, but others could replace it: `why` says how.
    Unsafe { path: String, why: String },
}

/// The PATH searched when the environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Resolves and checks the `op` to run: `configured` (which must be
/// absolute), else the first `op` on `path_var` (default [`DEFAULT_PATH`]).
pub fn resolve(configured: Option<&Path>, path_var: Option<&str>) -> Result<PathBuf, OpPathError> {
    match configured {
        Some(cmd) if !cmd.is_absolute() => Err(OpPathError::Unsafe {
            path: cmd.display().to_string(),
            why: "is not an absolute path".into(),
        }),
        Some(cmd) => resolve_program(cmd, path_var),
        None => resolve_program(Path::new("op"), path_var),
    }
}

/// The same rule for any program pctl runs on the user's behalf (`op`,
/// `mfa_command`): a bare name is looked up on `path_var`'s absolute
/// entries (default [`DEFAULT_PATH`]), a path must be absolute; the answer
/// has its links resolved and is refused when others could replace it.
pub fn resolve_program(program: &Path, path_var: Option<&str>) -> Result<PathBuf, OpPathError> {
    let bare = program.components().count() == 1 && !program.is_absolute();
    let candidate = if bare {
        std::env::split_paths(path_var.unwrap_or(DEFAULT_PATH))
            .filter(|d| d.is_absolute())
            .map(|d| d.join(program))
            .find(|p| is_executable(p))
            .ok_or(OpPathError::NotFound)?
    } else if program.is_absolute() {
        program.to_path_buf()
    } else {
        return Err(OpPathError::Unsafe {
            path: program.display().to_string(),
            why: "is not an absolute path".into(),
        });
    };
    let real = std::fs::canonicalize(&candidate).map_err(|_| OpPathError::NotFound)?;
    if !is_executable(&real) {
        return Err(OpPathError::Unsafe {
            path: real.display().to_string(),
            why: "is not an executable file".into(),
        });
    }
    check_owner_and_mode(&real, "it")?;
    if let Some(dir) = real.parent() {
        check_owner_and_mode(dir, "its directory")?;
    }
    Ok(real)
}

fn check_owner_and_mode(p: &Path, what: &str) -> Result<(), OpPathError> {
    let meta = std::fs::metadata(p).map_err(|_| OpPathError::NotFound)?;
    let unsafe_because = if meta.mode() & 0o022 != 0 {
        Some(format!(
            "{what} is writable by {} (mode {:o})",
            if meta.mode() & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            },
            meta.mode() & 0o7777
        ))
    } else if meta.uid() != 0 && meta.uid() != crate::peer::euid() {
        Some(format!("{what} is owned by uid {}", meta.uid()))
    } else {
        None
    };
    match unsafe_because {
        Some(why) => Err(OpPathError::Unsafe {
            path: p.display().to_string(),
            why,
        }),
        None => Ok(()),
    }
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
