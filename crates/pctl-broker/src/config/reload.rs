//! The config cache: the loaded [`Config`] and the stamps of the files it
//! was read from, re-read when one of them changed (content, owner or
//! mode), and at every call while it is refused (the fix may be in a
//! directory's mode or an include).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::model::{Config, ConfigError};

/// What identifies one version of a file: modification and change times
/// (a `chmod` or `chown` changes the latter), length, device and inode (a
/// file renamed over it); of a directory: its owner, mode, device and inode
/// (not its times, which every file saved beside the config changes).
type Stamp = Option<(SystemTime, i64, i64, u64, u64, u64)>;

fn stamp_of(p: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((
        m.modified().ok()?,
        m.ctime(),
        m.ctime_nsec(),
        m.len(),
        m.dev(),
        m.ino(),
    ))
}

/// The stamps of the config, each include, and the directories holding them
/// (each directory once when files beside each other follow one another),
/// one `stat` per item, taken as the iterator is walked: the check at every
/// request compares them in turn with the cached ones and builds no `Vec`.
fn stamps<'a>(config: &'a Path, includes: &'a [PathBuf]) -> impl Iterator<Item = Stamp> + 'a {
    use std::os::unix::fs::MetadataExt;
    let files = std::iter::once(config).chain(includes.iter().map(PathBuf::as_path));
    let mut last: Option<&Path> = None;
    let dirs = files.clone().filter_map(Path::parent).filter(move |d| {
        let new = last != Some(*d);
        last = Some(d);
        new
    });
    files.map(stamp_of).chain(dirs.map(|d| {
        let m = std::fs::metadata(d).ok()?;
        Some((
            SystemTime::UNIX_EPOCH,
            i64::from(m.uid()),
            i64::from(m.mode()),
            0,
            m.dev(),
            m.ino(),
        ))
    }))
}

struct Cached {
    /// Stamps of the config and each included file.
    stamp: Vec<Stamp>,
    loaded: Result<Arc<Config>, ConfigError>,
}

/// The config as last loaded, and what it was loaded from.
pub struct ConfigCache {
    cached: Mutex<Cached>,
    /// Freshness checks made: one per request ([`ConfigCache::current`]).
    checks: AtomicU64,
}

impl Default for ConfigCache {
    fn default() -> Self {
        ConfigCache {
            cached: Mutex::new(Cached {
                stamp: Vec::new(),
                loaded: Err(ConfigError("config not loaded yet".into())),
            }),
            checks: AtomicU64::new(0),
        }
    }
}

impl ConfigCache {
    /// The config at `path`, re-read when the file or an included file
    /// changed, and at every call while it is refused. The flag says
    /// whether it was re-read.
    pub fn current(&self, path: &Path) -> (Result<Arc<Config>, ConfigError>, bool) {
        self.checks.fetch_add(1, Ordering::Relaxed);
        let mut cache = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        let includes = match &cache.loaded {
            Ok(c) => c.includes.as_slice(),
            Err(_) => &[],
        };
        // Stops at the first stamp that differs: the config is re-read
        // then, and all its stamps taken again below.
        let stale = cache.loaded.is_err()
            || cache.stamp.first().is_none_or(Option::is_none)
            || !cache.stamp.iter().copied().eq(stamps(path, includes));
        if stale {
            let before = cache.loaded.as_ref().err().cloned();
            let mut stamp: Vec<Stamp> = stamps(path, includes).collect();
            cache.loaded = Config::load(path).map(Arc::new);
            if let Ok(c) = &cache.loaded {
                stamp = stamps(path, &c.includes).collect();
            }
            cache.stamp = stamp;
            match &cache.loaded {
                // Said once, not at every request while it stays so.
                Err(e) if before.as_ref() != Some(e) => tracing::warn!("{e}"),
                _ => {}
            }
        }
        (cache.loaded.clone(), stale)
    }

    /// The config as last loaded, without looking at its files: `None`
    /// while it is refused (or not loaded yet).
    pub fn last(&self) -> Option<Arc<Config>> {
        let cache = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        cache.loaded.as_ref().ok().cloned()
    }

    /// How many freshness checks ([`ConfigCache::current`]) were made.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}
