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

/// Whether the open `file` is still the one at `path` (one `stat`, no `open`).
fn same_file(file: &std::fs::File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
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
        self.record_with(rec, None);
    }

    /// Records one event; the file's line also names the `op` that ran
    /// (unlock records), which `status` shows on its own line.
    pub fn record_with(&self, rec: AuditRecord, op_path: Option<&str>) {
        if let Some(path) = &self.path {
            let mut value = serde_json::to_value(&rec).unwrap_or_default();
            if let (Some(op), Some(obj)) = (op_path, value.as_object_mut()) {
                obj.insert("op_path".into(), op.into());
            }
            let mut line = serde_json::to_vec(&value).unwrap_or_default();
            line.push(b'\n');
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            if file.as_ref().is_some_and(|f| !same_file(f, path)) {
                // Rotated or deleted since we opened it: records must land in the
                // file at `path`, not in one nobody can find any more.
                *file = None;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(issued: &str) -> AuditRecord {
        AuditRecord {
            time: "2026-01-01T00:00:00Z".into(),
            pid: Some(1),
            uid: Some(0),
            exe: None,
            issued: issued.into(),
            role: None,
            cluster: None,
            expiration: None,
            cached: false,
        }
    }

    #[test]
    fn follows_rotation_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::new(Some(path.clone()));
        audit.record(rec("one"));
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        audit.record(rec("two"));
        assert!(std::fs::read_to_string(&path).unwrap().contains("\"two\""));
        std::fs::remove_file(&path).unwrap();
        audit.record(rec("three"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"three\"") && !text.contains("\"two\""),
            "{text}"
        );
        assert_eq!(audit.recent().len(), 3);
    }

    #[test]
    fn unlock_records_name_the_op_that_ran() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::new(Some(path.clone()));
        audit.record_with(rec("unlock"), Some("/usr/bin/op"));
        let line: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(line["op_path"], "/usr/bin/op");
        assert_eq!(line["issued"], "unlock");
    }
}
