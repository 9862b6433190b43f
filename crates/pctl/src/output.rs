//! Formats what clients print: shell exports, credential_process JSON,
//! ExecCredential, AWS config profiles and kubeconfig files.

use std::path::Path;

use pctl_protocol::{names, ClusterInfo, Credentials, EksToken};
use serde::Serialize;
use serde_json::json;

use crate::cmd::args::ShellKind;

/// What `pctl init` and `pctl status` both call an identity whose item has
/// no MFA serial.
pub const NO_MFA: &str = "no MFA";

/// An identity's MFA in `pctl status` ([`pctl_protocol::IdentityStatus::mfa`]):
/// [`NO_MFA`], or where the code comes from (`mfa item`).
pub fn mfa_shown(mode: &str) -> String {
    if mode == pctl_protocol::IdentityStatus::NO_MFA {
        NO_MFA.to_string()
    } else {
        format!("mfa {mode}")
    }
}

/// Quotes a value for the shell.
pub fn quote(kind: ShellKind, v: &str) -> String {
    match kind {
        ShellKind::Bash | ShellKind::Zsh => format!("'{}'", v.replace('\'', r"'\''")),
        ShellKind::Fish => format!("'{}'", v.replace('\\', r"\\").replace('\'', r"\'")),
    }
}

/// One `export NAME=VALUE` line.
pub fn export(kind: ShellKind, name: &str, value: &str) -> String {
    match kind {
        ShellKind::Bash | ShellKind::Zsh => format!("export {name}={};\n", quote(kind, value)),
        ShellKind::Fish => format!("set -gx {name} {};\n", quote(kind, value)),
    }
}

/// One line removing a variable from the shell's environment.
pub fn unset(kind: ShellKind, name: &str) -> String {
    match kind {
        ShellKind::Bash | ShellKind::Zsh => format!("unset {name};\n"),
        ShellKind::Fish => format!("set -e {name};\n"),
    }
}

/// The variables a role's session is exported as; `PCTL_ROLE` marks the
/// role for prompts (`pctl prompt`).
pub fn credential_vars<'a>(c: &'a Credentials, role: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("PCTL_ROLE", role),
        ("AWS_ACCESS_KEY_ID", c.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key.as_str()),
        ("AWS_SESSION_TOKEN", c.session_token.as_str()),
        ("AWS_CREDENTIAL_EXPIRATION", c.expiration.as_str()),
        ("AWS_REGION", c.region.as_str()),
    ]
}

/// AWS credential_process JSON (Version 1), with a newline.
///
/// Written straight from the fields (no `serde_json::Value` holding a copy
/// of each secret) into one buffer sized for it up front, so no partial
/// copy of a secret is left behind in a freed, unwiped allocation by the
/// buffer growing. The keys are in the order `json!` printed them (sorted).
pub fn credential_process(c: &Credentials) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Out<'a> {
        access_key_id: &'a str,
        expiration: &'a str,
        secret_access_key: &'a str,
        session_token: &'a str,
        version: u8,
    }
    json_line(
        &Out {
            access_key_id: &c.access_key_id,
            expiration: &c.expiration,
            secret_access_key: &c.secret_access_key,
            session_token: &c.session_token,
            version: 1,
        },
        c.access_key_id.len()
            + c.expiration.len()
            + c.secret_access_key.len()
            + c.session_token.len(),
    )
}

/// `value` as one line of JSON (with its newline) in a buffer allocated
/// once: `secrets` bytes of field values plus room for the keys and quotes
/// (values that need escaping may still grow it).
fn json_line<T: Serialize>(value: &T, secrets: usize) -> String {
    let mut out = Vec::with_capacity(secrets + 256);
    // Serializing borrowed strings and integers into a Vec cannot fail.
    serde_json::to_writer(&mut out, value).expect("JSON of strings");
    out.push(b'\n');
    // serde_json writes UTF-8 only.
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The ExecCredential apiVersion kubectl asked for in `KUBERNETES_EXEC_INFO`.
pub fn exec_api_version(exec_info: Option<&str>) -> Result<String, String> {
    const DEFAULT: &str = "client.authentication.k8s.io/v1beta1";
    let Some(info) = exec_info.filter(|s| !s.trim().is_empty()) else {
        return Ok(DEFAULT.into());
    };
    let v: serde_json::Value = serde_json::from_str(info)
        .map_err(|e| format!("KUBERNETES_EXEC_INFO is not JSON ({e}): is this kubectl?"))?;
    match v.get("apiVersion").and_then(|a| a.as_str()) {
        None => Ok(DEFAULT.into()),
        Some(a @ ("client.authentication.k8s.io/v1" | "client.authentication.k8s.io/v1beta1")) => Ok(a.into()),
        Some(other) => Err(format!(
            "kubectl asked for ExecCredential {other}; pctl speaks client.authentication.k8s.io/v1 and v1beta1: set apiVersion in the kubeconfig's exec section"
        )),
    }
}

/// The ExecCredential kubectl reads from the exec plugin, with a newline
/// (written like [`credential_process`]'s; keys sorted as `json!` printed them).
pub fn exec_credential(api_version: &str, t: &EksToken) -> String {
    #[derive(Serialize)]
    struct Spec {}
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Status<'a> {
        expiration_timestamp: &'a str,
        token: &'a str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Out<'a> {
        api_version: &'a str,
        kind: &'static str,
        spec: Spec,
        status: Status<'a>,
    }
    json_line(
        &Out {
            api_version,
            kind: "ExecCredential",
            spec: Spec {},
            status: Status {
                expiration_timestamp: &t.expiration,
                token: &t.token,
            },
        },
        api_version.len() + t.expiration.len() + t.token.len(),
    )
}

/// `[profile pctl-<role>]` sections using credential_process. Every role
/// name must follow the one name rule ([`names::NAME_RULE`]) and the region
/// be a region name: nothing else can open a section or a line in the INI
/// file (the daemon's parser checks the same; this is the writer's own
/// check). A refusal says which name, the rule and that nothing was written.
pub fn aws_config(pctl: &Path, region: &str, roles: &[String]) -> Result<String, String> {
    names::check_region(region).map_err(|e| format!("region: {e}"))?;
    for r in roles {
        names::check_name("role", r).map_err(|e| format!("roles: {e}"))?;
    }
    let exe = pctl.display().to_string();
    if exe.chars().any(char::is_control) {
        return Err(format!(
            "the pctl executable's path {} holds a control character: move pctl",
            names::shown(&exe)
        ));
    }
    let mut out =
        String::from("# Written by `pctl aws-config`: credentials come from the pctl daemon.\n");
    for r in roles {
        out.push_str(&format!(
            "\n[profile pctl-{r}]\ncredential_process = {} credential-process --role {r}\nregion = {region}\n",
            shell_word(&exe)
        ));
    }
    Ok(out)
}

fn shell_word(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\\\""))
    }
}

/// A kubeconfig holding exactly pctl's cluster, user and context for one
/// cluster (`files::kubeconfig_yaml` merges it into the user's file). The
/// cluster and role names must follow the one name rule.
pub fn kubeconfig_entries(
    info: &ClusterInfo,
    server: &str,
    ca_b64: &str,
    pctl: &Path,
    socket: Option<&str>,
) -> Result<serde_json::Value, String> {
    names::check_name("cluster", &info.key).map_err(|e| format!("clusters: {e}"))?;
    names::check_name("role", &info.role).map_err(|e| format!("roles: {e}"))?;
    let name = format!("pctl-{}", info.key);
    let mut doc = json!({"apiVersion": "v1", "kind": "Config", "preferences": {}});
    let mut exec = json!({
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": pctl.display().to_string(),
        "args": if info.role.is_empty() {
            json!(["eks", "token", "--cluster", info.key])
        } else {
            json!(["eks", "token", "--cluster", info.key, "--role", info.role])
        },
        "interactiveMode": "Never",
        "provideClusterInfo": false,
    });
    if let Some(sock) = socket {
        exec["env"] = json!([{"name": "PCTL_SOCK", "value": sock}]);
    }
    let entries = [
        (
            "clusters",
            "cluster",
            json!({"server": server, "certificate-authority-data": ca_b64}),
        ),
        ("users", "user", json!({"exec": exec})),
        (
            "contexts",
            "context",
            json!({"cluster": name, "user": name}),
        ),
    ];
    for (list, key, body) in entries {
        doc[list] = json!([{"name": name, key: body}]);
    }
    doc["current-context"] = json!(name);
    Ok(doc)
}

/// A table: a header row and rows of the same width, each column padded to
/// its widest cell (the last one not padded).
pub fn columns<const N: usize>(head: &[String; N], rows: &[[String; N]]) -> String {
    let mut width = [0usize; N];
    for r in std::iter::once(head).chain(rows) {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(head).chain(rows) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 < N {
                line.push_str(&format!("{c:<w$}  ", w = width[i]));
            } else {
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// An RFC 3339 time as `HH:MM:SSZ (in 59m)`, or `... (3m ago)`; the
/// date too when it is not today (UTC). Unparsable text is shown as is.
pub fn when(rfc3339: &str) -> String {
    when_at(rfc3339, std::time::SystemTime::now())
}

fn when_at(rfc3339: &str, now: std::time::SystemTime) -> String {
    let Ok(t) = humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z')) else {
        return rfc3339.to_string();
    };
    let rel = match t.duration_since(now) {
        Ok(d) => format!("in {}", short(d)),
        Err(e) => format!("{} ago", short(e.duration())),
    };
    let shown = humantime::format_rfc3339_seconds(t).to_string();
    let today = humantime::format_rfc3339_seconds(now).to_string();
    let shown = if shown.get(..10) == today.get(..10) {
        shown.get(11..).unwrap_or(&shown).to_string()
    } else {
        shown.replace('T', " ")
    };
    format!("{shown} ({rel})")
}

/// `59m`, `2h05m`, `3d4h`, `40s`.
fn short(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pctl status` names an item without an MFA serial as `pctl init`
    /// does.
    #[test]
    fn status_and_init_call_no_mfa_the_same() {
        assert_eq!(mfa_shown(pctl_protocol::IdentityStatus::NO_MFA), NO_MFA);
        assert_eq!(mfa_shown("item"), "mfa item");
        assert_eq!(mfa_shown("prompt"), "mfa prompt");
    }

    #[test]
    fn times_read_relative_and_columns_align() {
        let now = humantime::parse_rfc3339("2026-12-03T09:00:00Z").unwrap();
        assert_eq!(when_at("2026-12-03T09:59:30Z", now), "09:59:30Z (in 59m)");
        assert_eq!(when_at("2026-12-03T08:57:00Z", now), "08:57:00Z (3m ago)");
        assert_eq!(
            when_at("2026-12-04T11:00:00Z", now),
            "2026-12-04 11:00:00Z (in 1d2h)"
        );
        assert_eq!(when_at("soon", now), "soon");
        let t = columns(
            &["A".into(), "BB".into()],
            &[["long".into(), "x".into()], ["s".into(), "y".into()]],
        );
        assert_eq!(t, "A     BB\nlong  x\ns     y\n");
    }

    #[test]
    fn quoting_survives_hostile_values() {
        assert_eq!(quote(ShellKind::Bash, "a'b"), r"'a'\''b'");
        assert_eq!(export(ShellKind::Fish, "X", "a'b"), "set -gx X 'a\\'b';\n");
    }

    /// The hot commands' output, written straight from the fields, is byte
    /// for byte what `json!` printed (keys sorted), with a newline.
    #[test]
    fn credential_json_is_what_json_macro_printed() {
        let c = Credentials {
            access_key_id: "AKIA\"x".into(),
            secret_access_key: "s/\\e\u{1}cret".into(),
            session_token: "t".repeat(1200),
            expiration: "2026-12-03T10:00:00Z".into(),
            region: "us-east-1".into(),
            note: None,
        };
        let want = json!({
            "Version": 1,
            "AccessKeyId": c.access_key_id,
            "SecretAccessKey": c.secret_access_key,
            "SessionToken": c.session_token,
            "Expiration": c.expiration,
        });
        assert_eq!(credential_process(&c), format!("{want}\n"));
        let t = EksToken {
            token: format!("k8s-aws-v1.{}", "a".repeat(1400)),
            expiration: "2026-12-03T10:00:00Z".into(),
        };
        let api = "client.authentication.k8s.io/v1beta1";
        let want = json!({
            "kind": "ExecCredential",
            "apiVersion": api,
            "spec": {},
            "status": {"expirationTimestamp": t.expiration, "token": t.token},
        });
        assert_eq!(exec_credential(api, &t), format!("{want}\n"));
    }

    #[test]
    fn exec_info_versions() {
        assert_eq!(
            exec_api_version(None).unwrap(),
            "client.authentication.k8s.io/v1beta1"
        );
        let v1 = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#;
        assert_eq!(
            exec_api_version(Some(v1)).unwrap(),
            "client.authentication.k8s.io/v1"
        );
        assert!(exec_api_version(Some(
            r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#
        ))
        .is_err());
        assert!(exec_api_version(Some("{nope")).is_err());
    }

    #[test]
    fn kubeconfig_entries_name_one_context() {
        let info = ClusterInfo {
            key: "platform".into(),
            name: "platform".into(),
            role: "admin".into(),
            region: "us-east-1".into(),
            endpoint: "https://x".into(),
            certificate_authority_data: "Q0E=".into(),
            arn: String::new(),
        };
        let doc =
            kubeconfig_entries(&info, "https://x", "Q0E=", Path::new("/bin/pctl"), None).unwrap();
        assert_eq!(doc["current-context"], "pctl-platform");
        assert_eq!(doc["contexts"][0]["context"]["user"], "pctl-platform");
        assert_eq!(doc["users"][0]["user"]["exec"]["args"][3], "platform");
        assert!(doc["users"][0]["user"]["exec"].get("env").is_none());
        let with_sock =
            kubeconfig_entries(&info, "https://x", "", Path::new("/bin/pctl"), Some("/s")).unwrap();
        assert_eq!(
            with_sock["users"][0]["user"]["exec"]["env"][0]["value"],
            "/s"
        );
    }

    /// The sections and options an INI reader built like botocore's
    /// (Python's configparser: full-line `#`/`;` comments, indented lines
    /// continue the previous value, `[...]` up to the last `]` is a section)
    /// sees, as (section, option, value).
    fn botocore_view(text: &str) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = Vec::new();
        let mut section: Option<String> = None;
        for line in text.split('\n') {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
                continue;
            }
            let indented = line.starts_with(char::is_whitespace);
            if indented && section.is_some() && !out.is_empty() {
                let last = out.last_mut().unwrap();
                last.2.push('\n');
                last.2.push_str(t);
                continue;
            }
            if let Some(inner) = t
                .strip_prefix('[')
                .and_then(|r| r.rfind(']').map(|e| &r[..e]))
            {
                section = Some(inner.to_string());
                continue;
            }
            let Some(sec) = &section else {
                out.push(("<no section>".into(), t.into(), String::new()));
                continue;
            };
            let at = t.find(['=', ':']).unwrap_or(t.len());
            out.push((
                sec.clone(),
                t[..at].trim().to_string(),
                t.get(at + 1..).unwrap_or("").trim().to_string(),
            ));
        }
        out
    }

    proptest::proptest! {
        /// Issue 15 §2: whatever names reach the writer, either it refuses
        /// them or botocore sees exactly one `profile pctl-NAME` section per
        /// role with its own credential_process and region, and nothing else.
        #[test]
        fn no_name_the_writer_accepts_changes_what_botocore_sees(
            a in "(?s).{0,40}|[A-Za-z0-9._\\-\\]\\[ \n=#;:]{1,30}|[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
            b in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}|a]\n \\[default\\]\n credential_process = sh\n \\[profile pctl-zz",
        ) {
            let roles = vec![a.clone(), b.clone()];
            let exe = Path::new("/usr/bin/pctl");
            match aws_config(exe, "us-east-1", &roles) {
                Err(e) => {
                    proptest::prop_assert!(!names::is_name(&a) || !names::is_name(&b));
                    proptest::prop_assert!(e.contains(names::NAME_RULE) && !e.contains('\n'), "{}", e);
                }
                Ok(text) => {
                    proptest::prop_assert!(names::is_name(&a) && names::is_name(&b));
                    let mut want = Vec::new();
                    for r in &roles {
                        let sec = format!("profile pctl-{r}");
                        want.push((sec.clone(), "credential_process".to_string(),
                            format!("/usr/bin/pctl credential-process --role {r}")));
                        want.push((sec, "region".to_string(), "us-east-1".to_string()));
                    }
                    proptest::prop_assert_eq!(botocore_view(&text), want);
                }
            }
        }

        /// Issue 15 §2: the same for kubectl: merged into a kubeconfig with
        /// entries of its own, pctl's entry adds exactly `pctl-KEY` to each
        /// list, and its exec arguments are the names as given.
        #[test]
        fn no_name_the_writer_accepts_changes_what_kubectl_sees(
            key in "(?s).{0,30}|[A-Za-z0-9][A-Za-z0-9._-]{0,63}|x\n- name: evil",
            role in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}|a: b|\"q\"",
        ) {
            let info = ClusterInfo {
                key: key.clone(),
                name: "eks".into(),
                role: role.clone(),
                region: "us-east-1".into(),
                endpoint: "https://x".into(),
                certificate_authority_data: "Q0E=".into(),
                arn: String::new(),
            };
            let Ok(fresh) = kubeconfig_entries(&info, "https://x", "Q0E=", Path::new("/bin/pctl"), None) else {
                proptest::prop_assert!(!names::is_name(&key) || !names::is_name(&role));
                return Ok(());
            };
            proptest::prop_assert!(names::is_name(&key) && names::is_name(&role));
            let mine = "apiVersion: v1\nkind: Config\nclusters:\n- name: mine\n  cluster: {server: 'https://m'}\nusers:\n- name: mine\n  user: {token: t}\ncontexts:\n- name: mine\n  context: {cluster: mine, user: mine}\ncurrent-context: mine\n";
            let text = crate::files::kubeconfig_yaml::merge(Some(mine), &fresh).unwrap();
            let doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
            for list in ["clusters", "users", "contexts"] {
                let got: Vec<&str> = doc[list].as_sequence().unwrap().iter()
                    .map(|e| e["name"].as_str().unwrap()).collect();
                let want = format!("pctl-{key}");
                proptest::prop_assert_eq!(got, vec!["mine", want.as_str()]);
            }
            proptest::prop_assert_eq!(doc["current-context"].as_str(), Some("mine"));
            let args: Vec<&str> = doc["users"][1]["user"]["exec"]["args"].as_sequence().unwrap()
                .iter().map(|a| a.as_str().unwrap()).collect();
            proptest::prop_assert_eq!(args, vec!["eks", "token", "--cluster", key.as_str(), "--role", role.as_str()]);
        }
    }
}
