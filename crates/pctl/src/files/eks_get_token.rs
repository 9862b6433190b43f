//! `pctl eks token` with `aws eks get-token`'s flags (`--cluster-name`,
//! `--region`, `--role-arn`), so a kubeconfig written by
//! `aws eks update-kubeconfig` switches to pctl by changing only `command:`.
//!
//! The flags are mapped to a configured cluster and role by reading pctl's
//! config file (the daemon mints tokens only for configured clusters).

use std::path::Path;

use anyhow::{bail, Result};

use super::pctl_config::View;

/// The cluster key and role to ask the daemon for.
pub fn resolve(
    cluster: Option<String>,
    role: Option<String>,
    cluster_name: Option<String>,
    region: Option<String>,
    role_arn: Option<String>,
) -> Result<(String, Option<String>)> {
    if cluster_name.is_none() && region.is_none() && role_arn.is_none() {
        if let Some(c) = cluster {
            return Ok((c, role)); // the plain pctl form: no config read
        }
    }
    let path = pctl_protocol::dirs::config_path();
    let view = View::load(&path)?;
    resolve_in(
        &view,
        &path,
        cluster,
        role,
        cluster_name,
        region.as_deref(),
        role_arn.as_deref(),
    )
}

/// [`resolve`] against a loaded config.
pub fn resolve_in(
    view: &View,
    path: &Path,
    cluster: Option<String>,
    role: Option<String>,
    cluster_name: Option<String>,
    region: Option<&str>,
    role_arn: Option<&str>,
) -> Result<(String, Option<String>)> {
    let default_region = view.region.as_deref().unwrap_or("");
    let region_of = |key: &str| {
        view.clusters[key]
            .region
            .as_deref()
            .unwrap_or(default_region)
            .to_string()
    };
    let key = match (cluster, cluster_name) {
        (Some(c), _) => c,
        (None, Some(name)) => {
            let candidates: Vec<&String> = view
                .clusters
                .iter()
                .filter(|(k, c)| c.name.as_deref().unwrap_or(k) == name)
                .map(|(k, _)| k)
                .collect();
            let in_region: Vec<&String> = candidates
                .iter()
                .copied()
                .filter(|k| region.is_none_or(|r| region_of(k) == r))
                .collect();
            match (in_region.as_slice(), candidates.as_slice()) {
                ([k], _) => (*k).clone(),
                ([], []) => bail!(
                    "EKS cluster {name:?} is not in {}: add [clusters.{name}] with role = \"...\"{} \
                     (pctl mints tokens only for configured clusters)",
                    path.display(),
                    region.map(|r| format!(" and region = \"{r}\"")).unwrap_or_default()
                ),
                ([], found) => bail!(
                    "EKS cluster {name:?} is configured in {} only in another region ([clusters.{}], region {}), not --region {}",
                    path.display(),
                    found[0],
                    region_of(found[0]),
                    region.unwrap_or("")
                ),
                (several, _) => bail!(
                    "EKS cluster {name:?}{} matches several entries in {} ({}): use --cluster KEY",
                    region.map(|r| format!(" in {r}")).unwrap_or_default(),
                    path.display(),
                    several.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        (None, None) => bail!("pass --cluster KEY (or aws eks get-token's --cluster-name NAME)"),
    };
    if let Some(r) = region {
        if view.clusters.contains_key(&key) && region_of(&key) != r {
            bail!(
                "--region {r} does not match [clusters.{key}] in {} (region {})",
                path.display(),
                region_of(&key)
            );
        }
    }
    let role = match (role, role_arn) {
        (Some(r), _) => Some(r),
        (None, None) => None,
        (None, Some(arn)) => {
            let found: Vec<&String> = view
                .roles
                .iter()
                .filter(|(_, r)| r.is(arn))
                .map(|(k, _)| k)
                .collect();
            match found.as_slice() {
                [k] => Some((*k).clone()),
                [] => bail!(
                    "no role in {} is {arn}: add [roles.NAME] with arn = \"{arn}\" \
                     (pctl assumes only configured roles)",
                    path.display()
                ),
                several => {
                    // Prefer the cluster's own role when it is one of them.
                    let own = view.clusters.get(&key).and_then(|c| c.role.clone());
                    match own.filter(|o| several.contains(&o)) {
                        Some(o) => Some(o),
                        None => bail!(
                            "{arn} matches several roles in {} ({}): use --role KEY",
                            path.display(),
                            several
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                }
            }
        }
    };
    Ok((key, role))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
region = "us-east-1"
[roles.admin]
name = "platform-admin"
[roles.readonly]
arn = "arn:aws:iam::111122223333:role/ro"
[clusters.platform]
role = "admin"
[clusters.prod-eu]
name = "prod"
region = "eu-west-1"
role = "readonly"
"#;

    fn r(
        cluster: Option<&str>,
        name: Option<&str>,
        region: Option<&str>,
        arn: Option<&str>,
    ) -> Result<(String, Option<String>), String> {
        let v = View::parse(CONFIG, Path::new("cfg.toml")).unwrap();
        resolve_in(
            &v,
            Path::new("cfg.toml"),
            cluster.map(String::from),
            None,
            name.map(String::from),
            region,
            arn,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn get_token_flags_map_to_configured_entries() {
        assert_eq!(
            r(None, Some("platform"), Some("us-east-1"), None).unwrap(),
            ("platform".into(), None)
        );
        assert_eq!(
            r(
                None,
                Some("prod"),
                Some("eu-west-1"),
                Some("arn:aws:iam::111122223333:role/ro")
            )
            .unwrap(),
            ("prod-eu".into(), Some("readonly".into()))
        );
        assert_eq!(
            r(
                None,
                Some("platform"),
                None,
                Some("arn:aws:iam::999999999999:role/platform-admin")
            )
            .unwrap(),
            ("platform".into(), Some("admin".into()))
        );
    }

    #[test]
    fn mismatches_are_explained() {
        let e = r(None, Some("unknown"), Some("us-east-1"), None).unwrap_err();
        assert!(
            e.contains("is not in cfg.toml") && e.contains("[clusters.unknown]"),
            "{e}"
        );
        let e = r(None, Some("prod"), Some("us-east-1"), None).unwrap_err();
        assert!(e.contains("only in another region"), "{e}");
        let e = r(Some("platform"), None, Some("eu-west-1"), None).unwrap_err();
        assert!(e.contains("does not match [clusters.platform]"), "{e}");
        let e = r(
            None,
            Some("platform"),
            None,
            Some("arn:aws:iam::1:role/other"),
        )
        .unwrap_err();
        assert!(
            e.contains("no role in cfg.toml is arn:aws:iam::1:role/other"),
            "{e}"
        );
    }
}
