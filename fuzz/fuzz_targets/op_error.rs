//! Fuzzes the one reader of `op`'s error text (`pctl_protocol::op`), which
//! the daemon (unlock, rotation, doctor) and the client (`pctl init`) both
//! use. A wrong or hostile `op` on PATH controls every byte of it.
//!
//! Oracles beyond "no panic / no abort":
//! - the prefix stripper returns a suffix of its input (it only cuts the
//!   `[ERROR] YYYY/MM/DD HH:MM:SS ` prefix, never mid-character);
//! - an unclassified error is one line of printable text of at most 200
//!   characters (and the cut mark).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pctl_protocol::op::{classify, error_line, strip_error_prefix, OpFailure};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let rest = strip_error_prefix(line);
        assert!(line.ends_with(rest), "{line:?} -> {rest:?}");
    }
    let first = error_line(&text);
    assert!(text.contains(first));
    if let OpFailure::Other(m) = classify(&text) {
        assert!(!m.is_empty());
        assert!(
            !m.chars()
                .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
            "{m:?}"
        );
        assert!(m.chars().count() <= 201);
    }
});
