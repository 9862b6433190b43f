//! No two modules import each other (issue 16 §2): the broker's concern
//! files use only the shared path in `broker/mod.rs`, never each other, and
//! `mod.rs` uses none of them; in `config/`, the model uses neither the
//! parser nor the cache. Read from the sources, so a new `use` that closes a
//! circle fails here, by name.

use std::path::Path;

fn src(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The code of a file without its comments (doc links name modules freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

const CONCERNS: [&str; 9] = [
    "credentials",
    "discover",
    "doctor",
    "eks",
    "login",
    "rotate",
    "sso",
    "status",
    "unlock",
];

/// Whether `text` names the child module `c` (`c::…`, `self::c`), not
/// the crate-level module of the same name (`crate::c::…`).
fn names_child(text: &str, c: &str) -> bool {
    let pat = format!("{c}::");
    text.match_indices(&pat).any(|(i, _)| {
        let before = &text[..i];
        let prev = before.chars().last().unwrap_or(' ');
        !(prev.is_alphanumeric() || prev == '_' || before.ends_with("crate::"))
    }) || text.contains(&format!("self::{c}"))
}

#[test]
fn broker_concerns_use_only_the_shared_path() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/broker");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".rs") && n != "mod.rs")
        .map(|n| n.trim_end_matches(".rs").to_string())
        .collect();
    files.sort();
    assert_eq!(files, CONCERNS, "a new file under broker/: list it here");
    let shared = code(&src("broker/mod.rs"));
    for c in CONCERNS {
        assert!(!names_child(&shared, c), "broker/mod.rs uses broker/{c}.rs");
        let text = code(&src(&format!("broker/{c}.rs")));
        for other in CONCERNS {
            for pat in [format!("super::{other}"), format!("crate::broker::{other}")] {
                assert!(
                    !text.contains(&pat),
                    "broker/{c}.rs uses broker/{other}.rs ({pat})"
                );
            }
        }
    }
}

#[test]
fn the_config_model_uses_neither_the_parser_nor_the_cache() {
    let model = code(&src("config/model.rs"));
    for pat in ["parse::", "reload::", "trust::", "super::"] {
        assert!(!model.contains(pat), "config/model.rs uses {pat}");
    }
    let parse = code(&src("config/parse.rs"));
    assert!(!parse.contains("reload::"), "config/parse.rs uses reload::");
    let reload = code(&src("config/reload.rs"));
    assert!(!reload.contains("parse::"), "config/reload.rs uses parse::");
}
