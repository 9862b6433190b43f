//! Fuzzes what the daemon reads from `op`: the item JSON on stdout and the
//! error text on stderr. A wrong or hostile `op` on PATH controls both.
//!
//! Oracles beyond "no panic / no abort":
//! - a classified error is one line of printable text, never longer than
//!   a few hundred characters;
//! - an error about the item never repeats a field's value: every `value` and
//!   `totp` string of the input is tagged with a marker no pctl message can
//!   contain, and the marker must never show up in the error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pctl_broker::config::{FieldLabels, OnePasswordConfig};
use pctl_broker::source::onepassword::{classify_error, parse_item};

const MARKER: &str = "qZ7xSECRETx7Zq";

fuzz_target!(|data: &[u8]| {
    let cfg = OnePasswordConfig {
        item: "AWS user key".into(),
        vault: "Private".into(),
        account: None,
        command: None,
        fields: FieldLabels::default(),
        read_otp: true,
    };
    let _ = parse_item(data, &cfg);
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Some(fields) = v.get_mut("fields").and_then(|f| f.as_array_mut()) {
            for f in fields.iter_mut().filter_map(|f| f.as_object_mut()) {
                for key in ["value", "totp"] {
                    if let Some(serde_json::Value::String(s)) = f.get_mut(key) {
                        s.push_str(MARKER);
                    }
                }
            }
        }
        let tagged = serde_json::to_vec(&v).expect("re-encode");
        if let Err(e) = parse_item(&tagged, &cfg) {
            assert!(!e.to_string().contains(MARKER), "error echoes a field value: {e}");
        }
    }
    let text = String::from_utf8_lossy(data);
    let msg = classify_error(&text, &cfg).to_string();
    assert!(!msg.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'), "{msg:?}");
    assert!(msg.chars().count() <= 600);
});
