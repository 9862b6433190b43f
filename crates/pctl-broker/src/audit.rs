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
    recent: Mutex<VecDeque<AuditRecord>>,
}

impl Audit {
    /// `path` of `None` keeps records in memory only.
    pub fn new(path: Option<PathBuf>) -> Self {
        Audit {
            path,
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
        }
    }

    /// Records one event.
    pub fn record(&self, rec: AuditRecord) {
        if let Some(path) = &self.path {
            let line = serde_json::to_string(&rec).unwrap_or_default();
            let res = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| writeln!(f, "{line}"));
            if let Err(e) = res {
                tracing::warn!("cannot write audit log {}: {e}", path.display());
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
