//! `pctl eks token` with `aws eks get-token`'s flags (`--cluster-name`,
//! `--region`, `--role-arn`), so a kubeconfig written by
//! `aws eks update-kubeconfig` switches to pctl by changing only `command:`.
//!
//! The flags are mapped to a configured cluster and role by reading pctl's
//! config file. A cluster the config does not list is asked for as is
//! (cluster name, region, role ARN) when `--role-arn` is given.

use std::path::Path;

use anyhow::{bail, Result};
use pctl_protocol::AdHocCluster;

use super::pctl_config::View;

/// What to ask the daemon for.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A configured cluster key, and a role key (default: the cluster's).
    Configured {
        cluster: String,
        role: Option<String>,
    },
    /// A cluster not in the config, named by `aws eks get-token`'s flags.
    AdHoc(AdHocCluster),
}

/// The cluster and role to ask the daemon for.
pub fn resolve(
    cluster: Option<String>,
    role: Option<String>,
    cluster_name: Option<String>,
    region: Option<String>,
    role_arn: Option<String>,
) -> Result<Target> {
    if cluster_name.is_none() && region.is_none() && role_arn.is_none() {
        if let Some(cluster) = cluster {
            // The plain pctl form: no config read.
            return Ok(Target::Configured { cluster, role });
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
) -> Result<Target> {
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
                // Not configured (in this region): with the role ARN given,
                // the daemon mints for exactly these flags.
                ([], _) if role_arn.is_some() && role.is_none() => {
                    let Some(region) = region.or(view.region.as_deref()) else {
                        bail!(
                            "EKS cluster {name:?} is not in {}: pass --region (no default region there)",
                            path.display()
                        );
                    };
                    return Ok(Target::AdHoc(AdHocCluster {
                        name,
                        region: region.to_string(),
                        role_arn: role_arn.unwrap_or_default().to_string(),
                    }));
                }
                ([], []) => bail!(
                    "EKS cluster {name:?} is not in {}: add [clusters.{name}] with role = \"...\"{}, \
                     or pass --role-arn ARN",
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
    Ok(Target::Configured { cluster: key, role })
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
        match resolve_target(cluster, name, region, arn)? {
            Target::Configured { cluster, role } => Ok((cluster, role)),
            Target::AdHoc(a) => Err(format!("ad hoc {a:?}")),
        }
    }

    fn resolve_target(
        cluster: Option<&str>,
        name: Option<&str>,
        region: Option<&str>,
        arn: Option<&str>,
    ) -> Result<Target, String> {
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

    #[test]
    fn unconfigured_cluster_with_a_role_arn_is_asked_for_as_is() {
        let arn = "arn:aws:iam::111122223333:role/other";
        let adhoc = |name: &str, region: &str| {
            Ok(Target::AdHoc(AdHocCluster {
                name: name.into(),
                region: region.into(),
                role_arn: arn.into(),
            }))
        };
        assert_eq!(
            resolve_target(None, Some("elsewhere"), Some("eu-west-2"), Some(arn)),
            adhoc("elsewhere", "eu-west-2")
        );
        // The config's region when --region is left out.
        assert_eq!(
            resolve_target(None, Some("elsewhere"), None, Some(arn)),
            adhoc("elsewhere", "us-east-1")
        );
        // Same name, another region: not the configured one.
        assert_eq!(
            resolve_target(None, Some("prod"), Some("us-west-2"), Some(arn)),
            adhoc("prod", "us-west-2")
        );
        // Configured clusters still map to their entries.
        assert!(matches!(
            resolve_target(
                None,
                Some("platform"),
                None,
                Some("arn:aws:iam::1:role/platform-admin")
            ),
            Ok(Target::Configured { .. })
        ));
        let e = r(None, Some("elsewhere"), None, None).unwrap_err();
        assert!(e.contains("or pass --role-arn ARN"), "{e}");
    }
}
