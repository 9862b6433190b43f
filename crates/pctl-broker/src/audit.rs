//! The audit trail: one JSON line per issuance in `audit.log`, and the most
//! recent records in memory for `pctl status`. Records never hold secrets.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use pctl_protocol::AuditRecord;

const RECENT: usize = 50;

/// How often, at most, the log's path is looked at again to notice that
/// the open file was rotated or deleted (one `stat`): not at every record,
/// which is every answer, cached tokens included. Records in the interval
/// after a rotation still land in the rotated file.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Appends audit records to a file and keeps the last few in memory.
pub struct Audit {
    path: Option<PathBuf>,
    /// Opened on first use and kept open: a cached token costs no `open`.
    file: Mutex<Option<OpenLog>>,
    recent: Mutex<VecDeque<AuditRecord>>,
}

/// The open audit log and its identity (device, inode), read once when it
/// was opened: an open file's identity never changes.
struct OpenLog {
    file: std::fs::File,
    id: Option<(u64, u64)>,
    /// When the path was last seen to name this file (or it was opened).
    checked: Instant,
}

impl OpenLog {
    fn new(file: std::fs::File) -> Self {
        use std::os::unix::fs::MetadataExt;
        let id = file.metadata().ok().map(|m| (m.dev(), m.ino()));
        OpenLog {
            file,
            id,
            checked: Instant::now(),
        }
    }

    /// Whether this is still the file at `path`: taken as so within
    /// [`RECHECK`] of the last look, else one `stat` of the path (no
    /// `open`).
    fn is_at(&mut self, path: &std::path::Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let now = Instant::now();
        if now.duration_since(self.checked) < RECHECK {
            return true;
        }
        let same = match (self.id, std::fs::metadata(path)) {
            (Some(id), Ok(m)) => id == (m.dev(), m.ino()),
            _ => false,
        };
        self.checked = now;
        same
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
            // Straight to bytes, fields in the record's order (time first),
            // with no detour through a `serde_json::Value`: this runs for
            // every answer, cached tokens included.
            #[derive(serde::Serialize)]
            struct WithOp<'a> {
                #[serde(flatten)]
                rec: &'a AuditRecord,
                op_path: &'a str,
            }
            let mut line = match op_path {
                None => serde_json::to_vec(&rec),
                Some(op_path) => serde_json::to_vec(&WithOp { rec: &rec, op_path }),
            }
            .unwrap_or_default();
            line.push(b'\n');
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            if file.as_mut().is_some_and(|f| !f.is_at(path)) {
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
                    Ok(f) => *file = Some(OpenLog::new(f)),
                    Err(e) => tracing::warn!("cannot open audit log {}: {e}", path.display()),
                }
            }
            if let Some(f) = file.as_mut() {
                if let Err(e) = f.file.write_all(&line) {
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

    #[tokio::test(start_paused = true)]
    async fn follows_rotation_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::new(Some(path.clone()));
        audit.record(rec("one"));
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        tokio::time::advance(RECHECK).await;
        audit.record(rec("two"));
        assert!(std::fs::read_to_string(&path).unwrap().contains("\"two\""));
        std::fs::remove_file(&path).unwrap();
        tokio::time::advance(RECHECK).await;
        audit.record(rec("three"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"three\"") && !text.contains("\"two\""),
            "{text}"
        );
        assert_eq!(audit.recent().len(), 3);
    }

    /// The path is looked at again at most once per [`RECHECK`]: a record
    /// within it of the last look goes to the open file, the first one after
    /// it finds the rotation and opens a new log.
    #[tokio::test(start_paused = true)]
    async fn looks_for_a_new_log_at_most_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rotated = dir.path().join("audit.log.1");
        let audit = Audit::new(Some(path.clone()));
        let issued = |p: &std::path::Path| -> Vec<String> {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["issued"].to_string()
                })
                .collect()
        };
        audit.record(rec("one"));
        tokio::time::advance(RECHECK / 2).await;
        std::fs::rename(&path, &rotated).unwrap();
        audit.record(rec("two"));
        tokio::time::advance(RECHECK / 2 - Duration::from_millis(1)).await;
        audit.record(rec("three"));
        assert!(!path.exists(), "looked at the path within the interval");
        assert_eq!(issued(&rotated), [r#""one""#, r#""two""#, r#""three""#]);
        tokio::time::advance(Duration::from_millis(1)).await;
        audit.record(rec("four"));
        audit.record(rec("five"));
        assert_eq!(issued(&path), [r#""four""#, r#""five""#]);
        assert_eq!(issued(&rotated).len(), 3);
        // the new log's interval starts when it was opened
        std::fs::remove_file(&path).unwrap();
        tokio::time::advance(RECHECK - Duration::from_millis(1)).await;
        audit.record(rec("six"));
        assert!(!path.exists());
        tokio::time::advance(Duration::from_millis(1)).await;
        audit.record(rec("seven"));
        assert_eq!(issued(&path), [r#""seven""#]);
    }

    /// Lines carry the record's fields in its order, time first, with
    /// `op_path` last on unlock records (written straight from the record;
    /// through a `serde_json::Value` the keys came out sorted, `cached` first).
    #[test]
    fn lines_start_with_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::new(Some(path.clone()));
        audit.record(rec("eks_token"));
        audit.record_with(rec("unlock"), Some("/usr/bin/op"));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in &lines {
            assert!(
                line.starts_with("{\"time\":\"2026-01-01T00:00:00Z\",\"pid\":1,"),
                "{line}"
            );
        }
        assert!(lines[0].ends_with("\"cached\":false}"), "{}", lines[0]);
        assert!(
            lines[1].ends_with("\"cached\":false,\"op_path\":\"/usr/bin/op\"}"),
            "{}",
            lines[1]
        );
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
