//! pctl's managed block in the user's AWS config file:
//!
//! ```text
//! # BEGIN pctl (managed by `pctl aws-config --write`; edits inside are replaced)
//! ...profiles...
//! # END pctl
//! ```
//!
//! The block is replaced in place or appended once; every byte outside it is
//! kept. A damaged block (a BEGIN without END, two BEGINs, an END first) is
//! refused with the line numbers, and so is a `[profile pctl-*]` outside the
//! block that the block would duplicate (the output of an earlier
//! `pctl aws-config >> ~/.aws/config`).

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::Edit;

pub const BEGIN: &str = "# BEGIN pctl";
pub const END: &str = "# END pctl";
const BEGIN_LINE: &str =
    "# BEGIN pctl (managed by `pctl aws-config --write`; edits inside are replaced)";
/// First line of the whole file `pctl aws-config --write` used to own.
const OWNED_FILE_HEADER: &str = "# Written by `pctl aws-config`";

/// The AWS CLI's and SDKs' config file: `$AWS_CONFIG_FILE`, else `~/.aws/config`.
pub fn default_path() -> Result<PathBuf> {
    match std::env::var_os("AWS_CONFIG_FILE").filter(|v| !v.is_empty()) {
        Some(p) => Ok(PathBuf::from(p)),
        None => Ok(super::home()?.join(".aws").join("config")),
    }
}

/// `pctl aws-config --write [PATH] [--diff]`: puts `profiles` (the text
/// `pctl aws-config` prints) into the managed block of PATH (default
/// [`default_path`]), or with `diff_only` prints what would change.
pub fn run(target: Option<PathBuf>, profiles: &str, count: usize, diff_only: bool) -> Result<()> {
    let edit = plan(target, profiles)?;
    finish(&edit, count, diff_only)
}

/// The planned edit of PATH (default [`default_path`]) putting `profiles`
/// into the managed block; refused (nothing planned) on a damaged file.
pub fn plan(target: Option<PathBuf>, profiles: &str) -> Result<Edit> {
    let path = match target.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p,
        None => default_path()?,
    };
    Edit::plan(&path, |old| {
        upsert(old.unwrap_or(""), profiles)
            .map_err(|e| anyhow!("{}: {e}; nothing changed", path.display()))
    })
}

/// Writes (or with `diff_only` shows) a planned block of `count` profiles.
pub fn finish(edit: &Edit, count: usize, diff_only: bool) -> Result<()> {
    super::finish(
        edit,
        diff_only,
        &format!("{count} profile(s) in the `{BEGIN}` block"),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Begin,
    End,
}

/// A marker line: its kind, 1-based line number and byte range (with its newline).
#[derive(Debug)]
struct MarkerLine {
    kind: Marker,
    line: usize,
    start: usize,
    end: usize,
}

fn is_marker(line: &str, marker: &str) -> bool {
    let l = line.trim_end();
    l.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
}

fn markers(text: &str) -> Vec<MarkerLine> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let kind = if is_marker(line, BEGIN) {
            Some(Marker::Begin)
        } else if is_marker(line, END) {
            Some(Marker::End)
        } else {
            None
        };
        if let Some(kind) = kind {
            out.push(MarkerLine {
                kind,
                line: i + 1,
                start,
                end: start + line.len(),
            });
        }
        start += line.len();
    }
    out
}

/// The normalised section name of an INI header line (`[profile  a ]` -> `profile a`).
fn section_name(line: &str) -> Option<String> {
    let l = line.trim();
    let inner = l.strip_prefix('[')?.split(']').next()?;
    Some(inner.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `text` with the managed block holding `body`: replaced where it is,
/// else appended after a blank line. Errors say what is wrong and how to fix it.
pub fn upsert(text: &str, body: &str) -> Result<String, String> {
    let mut block = String::with_capacity(body.len() + 128);
    block.push_str(BEGIN_LINE);
    block.push('\n');
    block.push_str(body);
    if !body.is_empty() && !body.ends_with('\n') {
        block.push('\n');
    }
    block.push_str(END);
    block.push('\n');

    let m = markers(text);
    let range = match m.as_slice() {
        [] => None,
        [b, e] if b.kind == Marker::Begin && e.kind == Marker::End => Some((b.start, e.end)),
        _ => return Err(damaged(&m)),
    };
    // The file pctl used to own whole (`--write` of earlier versions, often
    // pointed at by AWS_CONFIG_FILE): replaced whole.
    if range.is_none() && text.starts_with(OWNED_FILE_HEADER) {
        return Ok(block);
    }
    let (before, after) = match range {
        Some((s, e)) => (&text[..s], &text[e..]),
        None => (text, ""),
    };
    let ours: Vec<String> = body.lines().filter_map(section_name).collect();
    let mut pos = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let inside = range.is_some_and(|(s, e)| pos >= s && pos < e);
        pos += line.len();
        if let Some(name) = section_name(line).filter(|n| !inside && ours.contains(n)) {
            return Err(format!(
                "line {} already has [{name}] outside pctl's block (perhaps from an earlier \
                 `pctl aws-config >>`): delete that section and run again",
                i + 1
            ));
        }
    }
    let mut out = String::with_capacity(text.len() + block.len() + 2);
    match range {
        Some(_) => {
            out.push_str(before);
            out.push_str(&block);
            out.push_str(after);
        }
        None => {
            out.push_str(text);
            if !text.is_empty() {
                if !text.ends_with('\n') {
                    out.push('\n');
                }
                out.push('\n');
            }
            out.push_str(&block);
        }
    }
    Ok(out)
}

fn damaged(m: &[MarkerLine]) -> String {
    let begins: Vec<usize> = m
        .iter()
        .filter(|x| x.kind == Marker::Begin)
        .map(|x| x.line)
        .collect();
    let ends: Vec<usize> = m
        .iter()
        .filter(|x| x.kind == Marker::End)
        .map(|x| x.line)
        .collect();
    let what = match (begins.as_slice(), ends.as_slice()) {
        ([b], []) => format!("`{BEGIN}` at line {b} has no `{END}`"),
        ([], [e]) => format!("`{END}` at line {e} has no `{BEGIN}`"),
        ([b], [e]) => format!("`{END}` at line {e} comes before `{BEGIN}` at line {b}"),
        _ => format!(
            "several pctl blocks (`{BEGIN}` at lines {begins:?}, `{END}` at lines {ends:?})"
        ),
    };
    format!("pctl's block is damaged: {what}: repair or delete it by hand, then run again")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &str = "[profile pctl-admin]\ncredential_process = /bin/pctl credential-process --role admin\nregion = us-east-1\n";

    #[test]
    fn appends_once_then_replaces_in_place() {
        let user = "# mine\n[default]\nregion = eu-west-1\n\n[profile work]\nrole_arn = x\n";
        let once = upsert(user, BODY).unwrap();
        assert!(once.starts_with(user));
        assert!(once.ends_with(&format!("{BODY}{END}\n")), "{once}");
        assert_eq!(upsert(&once, BODY).unwrap(), once);
        let other = BODY.replace("us-east-1", "eu-central-1");
        let changed = upsert(&once, &other).unwrap();
        assert!(changed.starts_with(user) && changed.contains("eu-central-1"));
        assert!(!changed.contains("us-east-1"));
        // content after the block stays after it
        let with_tail = format!("{once}[profile later]\nregion = x\n");
        let again = upsert(&with_tail, &other).unwrap();
        assert!(
            again.ends_with("# END pctl\n[profile later]\nregion = x\n"),
            "{again}"
        );
    }

    #[test]
    fn no_trailing_newline_and_empty_files() {
        assert_eq!(
            upsert("", BODY).unwrap(),
            format!("{BEGIN_LINE}\n{BODY}{END}\n")
        );
        let out = upsert("[default]\nregion = x", BODY).unwrap();
        assert!(
            out.starts_with("[default]\nregion = x\n\n# BEGIN pctl"),
            "{out}"
        );
    }

    #[test]
    fn damaged_blocks_are_refused_with_line_numbers() {
        let cases = [
            ("a\n# BEGIN pctl\nb\n", "at line 2 has no `# END pctl`"),
            ("# END pctl\n", "at line 1 has no `# BEGIN pctl`"),
            ("# END pctl\n# BEGIN pctl\n", "comes before"),
            (
                "# BEGIN pctl\n# END pctl\n# BEGIN pctl\n# END pctl\n",
                "several pctl blocks",
            ),
        ];
        for (text, needle) in cases {
            let err = upsert(text, BODY).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(err.contains("repair or delete"), "{err}");
        }
        // lookalikes are not markers
        assert!(upsert("# BEGIN pctlx\n# END pctl-old\n", BODY).is_ok());
    }

    #[test]
    fn duplicate_profile_outside_the_block_is_refused() {
        let old = "[default]\n\n# from >>\n[profile  pctl-admin ]\nregion = x\n";
        let err = upsert(old, BODY).unwrap_err();
        assert!(
            err.contains("line 4") && err.contains("[profile pctl-admin]"),
            "{err}"
        );
        let after = format!("{}[profile pctl-admin]\n", upsert("", BODY).unwrap());
        let err = upsert(&after, BODY).unwrap_err();
        assert!(err.contains("line 6"), "{err}");
    }

    #[test]
    fn the_file_pctl_used_to_own_is_replaced_whole() {
        let old = format!("{OWNED_FILE_HEADER}: credentials come from the pctl daemon.\n\n{BODY}");
        assert_eq!(upsert(&old, BODY).unwrap(), upsert("", BODY).unwrap());
    }

    /// Text that holds no marker line and no section pctl writes.
    fn user_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                "[ -~]{0,40}",
                Just("[profile work]".to_string()),
                Just("# BEGIN".to_string()),
                Just("# END pctlx".to_string()),
                Just("".to_string()),
                "\r?".prop_map(|s| format!("x = y{s}")),
            ],
            0..12,
        )
        .prop_map(|lines| lines.join("\n"))
        .prop_filter("no markers or pctl sections", |t| {
            markers(t).is_empty()
                && !t.starts_with(OWNED_FILE_HEADER)
                && !t
                    .lines()
                    .any(|l| section_name(l).is_some_and(|n| n.contains("pctl-")))
        })
    }

    proptest! {
        #[test]
        fn other_bytes_are_untouched(before in user_text(), after in user_text(),
                                     region in "[a-z]{2}-[a-z]{4,9}-[1-9]") {
            let body = BODY.replace("us-east-1", &region);
            // appended: the user's text is a prefix, byte for byte
            let appended = upsert(&before, &body).unwrap();
            prop_assert!(appended.starts_with(&before));
            // idempotent
            prop_assert_eq!(upsert(&appended, &body).unwrap(), appended.clone());
            // a block in the middle: everything around it is kept exactly
            let mut before_nl = before.clone();
            if !before_nl.is_empty() && !before_nl.ends_with('\n') { before_nl.push('\n'); }
            let block_old = upsert("", BODY).unwrap();
            let text = format!("{before_nl}{block_old}{after}");
            let out = upsert(&text, &body).unwrap();
            let block_new = upsert("", &body).unwrap();
            prop_assert_eq!(out.clone(), format!("{before_nl}{block_new}{after}"));
            prop_assert_eq!(upsert(&out, &body).unwrap(), out);
        }

        #[test]
        fn never_panics(text in ".{0,400}") {
            let _ = upsert(&text, BODY);
        }
    }
}
