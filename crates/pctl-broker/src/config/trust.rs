//! Who may write the config: the file and every include must belong to you
//! (or root) and be writable by their owner only, and so must the directory
//! holding each (before and after symbolic links are resolved). ssh holds
//! its config to the same rule; anything else could make the daemon run a
//! program (`mfa_command`, `op_path`) or assume another account's roles.
//!
//! A file is opened once and checked through that open file, so what is
//! read is what was checked.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Owner and mode of a trusted file, for `pctl doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    /// The file after symbolic links are resolved.
    pub real: PathBuf,
    pub uid: u32,
    pub mode: u32,
}

impl Trusted {
    /// `owner NAME (uid N), mode 0644`
    pub fn describe(&self) -> String {
        format!("owner {}, mode {:04o}", owner(self.uid), self.mode)
    }
}

/// Why a file cannot be read or is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    /// Cannot read it (permissions, not a file, ...).
    Unreadable(String),
    /// Others could change it: one line naming the file, owner, mode and fix.
    Untrusted(String),
}

/// `name (uid N)`, or `uid N` when the account has no name.
fn owner(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("{} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

/// The problem with `meta`'s owner or mode, if any: (what is wrong, the fix).
fn problem(meta: &std::fs::Metadata, path: &Path, what: &str) -> Option<String> {
    let me = pctl_protocol::peer::euid();
    let bad_owner = meta.uid() != me && meta.uid() != 0;
    let bad_mode = meta.mode() & 0o022 != 0;
    if !bad_owner && !bad_mode {
        return None;
    }
    let shared = what == "directory" && meta.mode() & 0o1000 != 0;
    let fix = if shared {
        // /tmp and the like: shared on purpose, never to be chmod-ed.
        "move the file into a directory of yours that others cannot write \
         (e.g. ~/.config/pctl)"
            .to_string()
    } else {
        let mut cmds = Vec::new();
        if bad_owner {
            cmds.push(format!("chown {} {}", owner_name(me), path.display()));
        }
        if bad_mode {
            cmds.push(format!("chmod go-w {}", path.display()));
        }
        format!("run `{}`", cmds.join(" && "))
    };
    Some(format!(
        "{what} {} is owned by {}, mode {:04o}: {} must be owned by you ({}) or root and \
         writable by its owner only, so that no other account can change what pctl runs: \
         {fix}",
        path.display(),
        owner(meta.uid()),
        meta.mode() & 0o7777,
        if what == "directory" {
            "the directory of a config file"
        } else {
            "a config file"
        },
        owner_name(me),
    ))
}

fn owner_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

/// The directory holding `p` (`.` for a bare name).
fn parent(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Opens `path`, checks it and the directories holding it, and reads it.
pub fn read_trusted(path: &Path) -> Result<(String, Trusted), Refused> {
    let io = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Refused::NotFound
        } else {
            Refused::Unreadable(e.to_string())
        }
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Refused::Unreadable("not a regular file".into()));
    }
    let real = std::fs::canonicalize(path).map_err(io)?;
    // The name must still lead to the file that was opened.
    let again = std::fs::metadata(&real).map_err(io)?;
    if (again.dev(), again.ino()) != (meta.dev(), meta.ino()) {
        return Err(Refused::Unreadable(
            "it was replaced while being read: try again".into(),
        ));
    }
    if let Some(p) = problem(&meta, &real, "file") {
        return Err(Refused::Untrusted(p));
    }
    let mut dirs = vec![parent(&real)];
    let named = parent(path);
    if std::fs::canonicalize(&named).map_or(true, |d| d != dirs[0]) {
        // A link: whoever can write the link's directory can point it elsewhere.
        dirs.push(named);
    }
    for d in dirs {
        let m = std::fs::metadata(&d).map_err(io)?;
        if let Some(p) = problem(&m, &d, "directory") {
            return Err(Refused::Untrusted(p));
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    Ok((
        text,
        Trusted {
            real,
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
        },
    ))
}

/// The files named by `config`'s `include` (relative to its directory),
/// read leniently: for `pctl doctor`, which reports on each even when the
/// config does not load.
pub fn includes_of(config: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(config) else {
        return Vec::new();
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let dir = parent(config);
    table
        .get("include")
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(toml::Value::as_str)
                .map(|p| {
                    let p = Path::new(p);
                    if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        dir.join(p)
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The owner/mode verdict on one file: its owner and mode, or why not.
pub fn verdict(path: &Path) -> Result<Trusted, Refused> {
    read_trusted(path).map(|(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn own_private_files_are_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("c.toml");
        std::fs::write(&f, "x = 1\n").unwrap();
        chmod(&f, 0o644);
        let (text, t) = read_trusted(&f).unwrap();
        assert_eq!(text, "x = 1\n");
        assert_eq!(t.mode, 0o644);
        assert!(t.describe().contains("mode 0644"), "{}", t.describe());
        assert_eq!(read_trusted(&d.path().join("none")), Err(Refused::NotFound));
    }

    #[test]
    fn writable_by_others_is_refused_with_owner_mode_and_fix() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("team.toml");
        std::fs::write(&f, "").unwrap();
        chmod(&f, 0o664);
        let Err(Refused::Untrusted(e)) = read_trusted(&f) else {
            panic!("a group-writable file was read")
        };
        assert!(
            e.contains(&f.display().to_string())
                && e.contains("mode 0664")
                && e.contains("owned by")
                && e.contains(&format!("chmod go-w {}", f.display()))
                && !e.contains('\n'),
            "{e}"
        );
        chmod(&f, 0o600);
        chmod(d.path(), 0o777);
        let Err(Refused::Untrusted(e)) = read_trusted(&f) else {
            panic!("a file in a world-writable directory was read")
        };
        assert!(
            e.contains("directory") && e.contains("mode 0777") && e.contains("chmod go-w"),
            "{e}"
        );
        chmod(d.path(), 0o700);
    }

    #[test]
    fn a_link_is_checked_at_its_target_and_in_its_own_directory() {
        let d = tempfile::tempdir().unwrap();
        let open = d.path().join("open");
        let safe = d.path().join("safe");
        std::fs::create_dir(&open).unwrap();
        std::fs::create_dir(&safe).unwrap();
        chmod(&safe, 0o700);
        // target in a world-writable directory, link in a private one
        let target = open.join("real.toml");
        std::fs::write(&target, "").unwrap();
        chmod(&target, 0o600);
        chmod(&open, 0o1777);
        let link = safe.join("config.toml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let Err(Refused::Untrusted(e)) = read_trusted(&link) else {
            panic!("the target's directory was not checked")
        };
        assert!(
            e.contains(&open.display().to_string())
                && e.contains("mode 1777")
                && e.contains("move the file"),
            "{e}"
        );
        // target private, link in a world-writable directory
        chmod(&open, 0o700);
        let target2 = safe.join("real2.toml");
        std::fs::write(&target2, "").unwrap();
        let link2 = open.join("config.toml");
        std::os::unix::fs::symlink(&target2, &link2).unwrap();
        chmod(&open, 0o777);
        let Err(Refused::Untrusted(e)) = read_trusted(&link2) else {
            panic!("the link's directory was not checked")
        };
        assert!(e.contains(&open.display().to_string()), "{e}");
        chmod(&open, 0o700);
        assert!(read_trusted(&link).is_ok());
    }

    #[test]
    fn another_owner_is_refused() {
        if pctl_protocol::peer::euid() != 0 {
            return; // needs root to give a file away (the e2e suite runs as root)
        }
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("team.toml");
        std::fs::write(&f, "").unwrap();
        chmod(&f, 0o644);
        std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
        let Err(Refused::Untrusted(e)) = read_trusted(&f) else {
            panic!("a file of another account was read")
        };
        assert!(
            e.contains("uid 65534") && e.contains("mode 0644") && e.contains("chown"),
            "{e}"
        );
    }
}
