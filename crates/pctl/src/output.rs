//! Formats what clients print: shell exports, credential_process JSON,
//! ExecCredential, AWS config profiles and kubeconfig files.

use std::path::Path;

use pctl_protocol::{ClusterInfo, Credentials, EksToken};
use serde_json::json;

use crate::cli::ShellKind;

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

/// AWS credential_process JSON (Version 1).
pub fn credential_process(c: &Credentials) -> String {
    json!({
        "Version": 1,
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "SessionToken": c.session_token,
        "Expiration": c.expiration,
    })
    .to_string()
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

/// The ExecCredential kubectl reads from the exec plugin.
pub fn exec_credential(api_version: &str, t: &EksToken) -> String {
    json!({
        "kind": "ExecCredential",
        "apiVersion": api_version,
        "spec": {},
        "status": {"expirationTimestamp": t.expiration, "token": t.token},
    })
    .to_string()
}

/// `[profile pctl-<role>]` sections using credential_process.
pub fn aws_config(pctl: &Path, region: &str, roles: &[String]) -> String {
    let mut out =
        String::from("# Written by `pctl aws-config`: credentials come from the pctl daemon.\n");
    for r in roles {
        out.push_str(&format!(
            "\n[profile pctl-{r}]\ncredential_process = {} credential-process --role {r}\nregion = {region}\n",
            shell_word(&pctl.display().to_string())
        ));
    }
    out
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

/// Merges one cluster, user and context into a kubeconfig document, keeping
/// every other entry as it was. `existing` must be a JSON object (the caller
/// refuses anything else); entries that are not objects are left alone.
pub fn merge_kubeconfig(
    existing: Option<serde_json::Value>,
    info: &ClusterInfo,
    server: &str,
    ca_b64: &str,
    pctl: &Path,
    socket: Option<&str>,
) -> serde_json::Value {
    let name = format!("pctl-{}", info.key);
    let mut doc = existing.filter(serde_json::Value::is_object).unwrap_or_else(|| {
        json!({"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [], "contexts": []})
    });
    let mut exec = json!({
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": pctl.display().to_string(),
        "args": ["eks", "token", "--cluster", info.key, "--role", info.role],
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
        if !doc[list].is_array() {
            doc[list] = json!([]);
        }
        let arr = doc[list].as_array_mut().expect("array");
        arr.retain(|e| e.get("name").and_then(|n| n.as_str()) != Some(name.as_str()));
        arr.push(json!({"name": name, key: body}));
    }
    if doc
        .get("current-context")
        .and_then(|c| c.as_str())
        .is_none_or(str::is_empty)
    {
        doc["current-context"] = json!(name);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_values() {
        assert_eq!(quote(ShellKind::Bash, "a'b"), r"'a'\''b'");
        assert_eq!(export(ShellKind::Fish, "X", "a'b"), "set -gx X 'a\\'b';\n");
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
    fn merge_survives_odd_documents() {
        let info = ClusterInfo {
            key: "p".into(),
            name: "p".into(),
            role: "admin".into(),
            region: "us-east-1".into(),
            endpoint: String::new(),
            certificate_authority_data: String::new(),
            arn: String::new(),
        };
        for odd in [
            json!([]),
            json!("x"),
            json!({"clusters": {"a": 1}, "users": 3, "contexts": [1, "two", null]}),
            json!({"current-context": 7}),
        ] {
            let doc = merge_kubeconfig(
                Some(odd),
                &info,
                "https://x",
                "",
                Path::new("/bin/pctl"),
                None,
            );
            assert_eq!(
                doc["contexts"].as_array().unwrap().last().unwrap()["name"],
                "pctl-p"
            );
        }
    }

    #[test]
    fn merge_keeps_other_entries() {
        let info = ClusterInfo {
            key: "platform".into(),
            name: "platform".into(),
            role: "admin".into(),
            region: "us-east-1".into(),
            endpoint: "https://x".into(),
            certificate_authority_data: "Q0E=".into(),
            arn: String::new(),
        };
        let existing = json!({"apiVersion":"v1","kind":"Config","current-context":"other",
            "clusters":[{"name":"other","cluster":{"server":"https://o"}}],
            "users":[{"name":"other","user":{}}],"contexts":[{"name":"other","context":{"cluster":"other","user":"other"}}]});
        let once = merge_kubeconfig(
            Some(existing),
            &info,
            "https://x",
            "Q0E=",
            Path::new("/bin/pctl"),
            None,
        );
        let twice = merge_kubeconfig(
            Some(once.clone()),
            &info,
            "https://x",
            "Q0E=",
            Path::new("/bin/pctl"),
            None,
        );
        assert_eq!(once, twice);
        assert_eq!(twice["clusters"].as_array().unwrap().len(), 2);
        assert_eq!(twice["current-context"], "other");
        assert_eq!(twice["users"][1]["user"]["exec"]["args"][3], "platform");
    }
}
