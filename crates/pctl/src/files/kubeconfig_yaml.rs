//! Merges pctl's cluster, user and context into a YAML kubeconfig (the user's
//! `~/.kube/config`, or pctl's own file), keeping every other entry, their
//! order and `current-context`. A file that does not parse, or whose
//! `clusters`/`users`/`contexts` are not lists, is refused and left as it was.
//!
//! YAML comments are not kept (kubectl drops them too when it writes the file);
//! the previous file stays in `<file>.pctl-backup`.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use yaml_serde::Value;

use super::Edit;

const LISTS: [&str; 3] = ["clusters", "users", "contexts"];

/// kubectl's file: the first entry of `$KUBECONFIG`, else `~/.kube/config`.
pub fn default_path() -> Result<PathBuf> {
    let from_env = std::env::var("KUBECONFIG")
        .ok()
        .and_then(|v| v.split(':').find(|p| !p.is_empty()).map(PathBuf::from));
    match from_env {
        Some(p) => Ok(p),
        None => Ok(super::home()?.join(".kube").join("config")),
    }
}

/// `pctl kubeconfig --write [PATH] [--diff]`: merges `fresh` (a kubeconfig
/// holding exactly pctl's cluster, user and context) into `path`.
pub fn run(path: PathBuf, fresh: &serde_json::Value, name: &str, diff_only: bool) -> Result<()> {
    let edit = Edit::plan(&path, |old| {
        merge(old, fresh).map_err(|e| anyhow!("{}: {e}; nothing changed", path.display()))
    })?;
    super::finish(&edit, diff_only, &format!("context {name}"))?;
    if !diff_only && !on_kubectls_path(&path) {
        eprintln!(
            "pctl: use it with kubectl --kubeconfig {} --context {name}",
            path.display()
        );
    }
    Ok(())
}

/// Whether kubectl reads `path` without `--kubeconfig`: a file of
/// `$KUBECONFIG`, else `~/.kube/config`.
fn on_kubectls_path(path: &std::path::Path) -> bool {
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(v) => std::env::split_paths(&v).any(|p| p == path),
        None => default_path().is_ok_and(|d| d == path),
    }
}

/// The existing kubeconfig text (None or blank: a new file) with `fresh`'s
/// entries merged in: an entry of the same name is replaced where it stands,
/// a new one appended; `current-context` is set only when there is none.
pub fn merge(existing: Option<&str>, fresh: &serde_json::Value) -> Result<String, String> {
    let fresh: Value = yaml_serde::to_value(fresh).map_err(|e| format!("internal: {e}"))?;
    let mut doc = match existing.filter(|t| !t.trim().is_empty()) {
        None => fresh.clone(),
        Some(text) => yaml_serde::from_str::<Value>(text).map_err(|e| {
            format!("cannot parse it as YAML ({e}): fix the file or pass --write with another file")
        })?,
    };
    if doc.is_null() {
        doc = fresh.clone(); // a file of comments only
    }
    let Value::Mapping(map) = &mut doc else {
        return Err(
            "not a kubeconfig (its top level is not a mapping): pass --write with another file"
                .into(),
        );
    };
    for list in LISTS {
        let entry = fresh
            .get(list)
            .and_then(Value::as_sequence)
            .and_then(|s| s.first())
            .ok_or_else(|| format!("internal: no {list} entry"))?
            .clone();
        let name = entry.get("name").cloned();
        let slot = map
            .entry(Value::from(list))
            .or_insert(Value::Sequence(Vec::new()));
        if slot.is_null() {
            *slot = Value::Sequence(Vec::new());
        }
        let Value::Sequence(seq) = slot else {
            return Err(format!(
                "`{list}` is not a list: fix the file or pass --write with another file"
            ));
        };
        match seq.iter_mut().find(|e| e.get("name") == name.as_ref()) {
            Some(old) => *old = entry,
            None => seq.push(entry),
        }
    }
    let unset = map
        .get("current-context")
        .is_none_or(|c| c.is_null() || c.as_str() == Some(""));
    if unset {
        if let Some(ctx) = fresh.get("current-context") {
            map.insert(Value::from("current-context"), ctx.clone());
        }
    }
    for (k, v) in [("apiVersion", "v1"), ("kind", "Config")] {
        if !map.contains_key(k) {
            map.insert(Value::from(k), Value::from(v));
        }
    }
    yaml_serde::to_string(&doc).map_err(|e| format!("internal: cannot write YAML: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use proptest::prelude::*;
    use serde_json::json;
    use yaml_serde::Mapping;

    /// The kubeconfig's entry names, for messages and tests.
    pub fn names(doc: &Mapping, list: &str) -> Vec<String> {
        doc.get(list)
            .and_then(Value::as_sequence)
            .map(|s| {
                s.iter()
                    .filter_map(|e| e.get("name").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Parses kubeconfig text into its top-level mapping.
    pub fn parse(text: &str) -> Result<Mapping> {
        match yaml_serde::from_str::<Value>(text).context("not YAML")? {
            Value::Mapping(m) => Ok(m),
            _ => Err(anyhow!("not a mapping")),
        }
    }

    fn fresh(server: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "pctl-platform", "cluster": {"server": server, "certificate-authority-data": "Q0E="}}],
            "users": [{"name": "pctl-platform", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "/bin/pctl", "args": ["eks", "token", "--cluster", "platform", "--role", "admin"],
                "interactiveMode": "Never"}}}],
            "contexts": [{"name": "pctl-platform", "context": {"cluster": "pctl-platform", "user": "pctl-platform"}}],
            "current-context": "pctl-platform"})
    }

    const USER: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: kind-dev
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
- name: prod
  cluster:
    server: https://prod.example.com
contexts:
- name: kind-dev
  context: {cluster: kind-dev, user: kind-dev, namespace: web}
current-context: kind-dev
users:
- name: kind-dev
  user:
    token: abc
preferences: {}
";

    #[test]
    fn keeps_other_entries_order_and_current_context() {
        let out = merge(Some(USER), &fresh("https://x")).unwrap();
        let m = parse(&out).unwrap();
        assert_eq!(names(&m, "clusters"), ["kind-dev", "prod", "pctl-platform"]);
        assert_eq!(names(&m, "users"), ["kind-dev", "pctl-platform"]);
        assert_eq!(names(&m, "contexts"), ["kind-dev", "pctl-platform"]);
        assert_eq!(m["current-context"], "kind-dev");
        assert_eq!(m["contexts"][0]["context"]["namespace"], "web");
        assert_eq!(m["users"][0]["user"]["token"], "abc");
        let keys: Vec<_> = m.keys().filter_map(Value::as_str).collect();
        assert_eq!(
            keys,
            [
                "apiVersion",
                "kind",
                "clusters",
                "contexts",
                "current-context",
                "users",
                "preferences"
            ]
        );
        // idempotent, and an update replaces pctl's entry where it stands
        assert_eq!(merge(Some(&out), &fresh("https://x")).unwrap(), out);
        let moved = merge(Some(&out), &fresh("https://y")).unwrap();
        let m2 = parse(&moved).unwrap();
        assert_eq!(
            names(&m2, "clusters"),
            ["kind-dev", "prod", "pctl-platform"]
        );
        assert_eq!(m2["clusters"][2]["cluster"]["server"], "https://y");
    }

    #[test]
    fn new_empty_comment_only_and_json_files() {
        for text in [None, Some(""), Some("# nothing yet\n")] {
            let m = parse(&merge(text, &fresh("https://x")).unwrap()).unwrap();
            assert_eq!(m["current-context"], "pctl-platform");
            assert_eq!(names(&m, "users"), ["pctl-platform"]);
        }
        let json_file = serde_json::to_string_pretty(&json!({"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "a", "cluster": {"server": "https://a"}}], "current-context": ""}))
        .unwrap();
        let m = parse(&merge(Some(&json_file), &fresh("https://x")).unwrap()).unwrap();
        assert_eq!(names(&m, "clusters"), ["a", "pctl-platform"]);
        assert_eq!(m["current-context"], "pctl-platform");
    }

    #[test]
    fn refuses_what_it_cannot_merge() {
        for (text, needle) in [
            ("clusters: [unclosed\n", "cannot parse it as YAML"),
            ("a: 1\n\ta: 2\n", "cannot parse it as YAML"),
            ("a: 1\na: 2\n", "cannot parse it as YAML"),
            ("- just\n- a list\n", "top level is not a mapping"),
            ("clusters: {a: 1}\n", "`clusters` is not a list"),
            ("users: 3\n", "`users` is not a list"),
        ] {
            let err = merge(Some(text), &fresh("https://x")).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    proptest! {
        #[test]
        fn any_other_entries_survive(names_in in proptest::collection::btree_set("[a-z][a-z0-9-]{0,12}", 0..6),
                                     cur in proptest::option::of("[a-z]{1,8}")) {
            let mut doc = json!({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []});
            for n in &names_in {
                doc["clusters"].as_array_mut().unwrap().push(json!({"name": n, "cluster": {"server": format!("https://{n}")}}));
                doc["users"].as_array_mut().unwrap().push(json!({"name": n, "user": {"token": n}}));
                doc["contexts"].as_array_mut().unwrap().push(json!({"name": n, "context": {"cluster": n, "user": n}}));
            }
            if let Some(c) = &cur { doc["current-context"] = json!(c); }
            let text = yaml_serde::to_string(&doc).unwrap();
            let out = merge(Some(&text), &fresh("https://x")).unwrap();
            let m = parse(&out).unwrap();
            let mut want: Vec<String> = names_in.iter().cloned().collect();
            want.push("pctl-platform".into());
            for list in LISTS {
                prop_assert_eq!(names(&m, list), want.clone());
            }
            let want_cur = cur.unwrap_or_else(|| "pctl-platform".into());
            prop_assert_eq!(m["current-context"].as_str(), Some(want_cur.as_str()));
            prop_assert_eq!(merge(Some(&out), &fresh("https://x")).unwrap(), out);
        }

        #[test]
        fn never_panics(text in ".{0,300}") {
            let _ = merge(Some(&text), &fresh("https://x"));
        }
    }
}
