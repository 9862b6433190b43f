//! The audit trail: one JSON line per issuance in `audit.log`, and the most
//! recent records in memory for `pctl status`. Records never hold secrets.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use pctl_protocol::AuditRecord;

const RECENT: usize = 50;

/// Appends audit records to a file and keeps the last few in memory.
pub struct Audit {
    path: Option<PathBuf>,
    /// Opened on first use and kept open: a cached token costs no `open`.
    file: Mutex<Option<std::fs::File>>,
    recent: Mutex<VecDeque<AuditRecord>>,
}

impl Audit {
    /// `path` of `None` keeps records in memory only.
    pub fn new(path: Option<PathBuf>) -> Self {
        Audit {
            path,
            file: Mutex::new(None),
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
        }
    }

    /// Records one event.
    pub fn record(&self, rec: AuditRecord) {
        if let Some(path) = &self.path {
            let mut line = serde_json::to_vec(&rec).unwrap_or_default();
            line.push(b'\n');
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            if file.is_none() {
                match std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)
                {
                    Ok(f) => *file = Some(f),
                    Err(e) => tracing::warn!("cannot open audit log {}: {e}", path.display()),
                }
            }
            if let Some(f) = file.as_mut() {
                if let Err(e) = f.write_all(&line) {
                    tracing::warn!("cannot write audit log {}: {e}", path.display());
                    *file = None;
                }
            }
        }
        let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == RECENT {
            r.pop_front();
        }
        r.push_back(rec);
    }

    /// The most recent records, oldest first.
    pub fn recent(&self) -> Vec<AuditRecord> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
