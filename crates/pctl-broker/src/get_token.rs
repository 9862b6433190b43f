//! `pctl eks token` with `aws eks get-token`'s flags (`--cluster-name`,
//! `--region`, `--role-arn`), so a kubeconfig written by
//! `aws eks update-kubeconfig` switches to pctl by changing only `command:`.
//!
//! The daemon maps the flags to a configured cluster and role here, against
//! the config it loaded (the main file and every include); the client only
//! forwards them. A cluster the config does not list is served as named
//! (cluster name, region, role ARN) when `--role-arn` is given
//! ([`Config::adhoc_cluster`] checks those).

use pctl_protocol::{AdHocCluster, GetTokenFlags};

use crate::config::{Config, ConfigError, RoleConfig};

/// What the flags name.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A configured cluster key, and a role key (default: the cluster's).
    Configured {
        cluster: String,
        role: Option<String>,
    },
    /// A cluster not in the config.
    AdHoc(AdHocCluster),
}

/// Whether `role` is `arn`: the same ARN, or (for a role configured by
/// name, whose account comes from 1Password) the same name and path.
fn role_is(role: &RoleConfig, arn: &str) -> bool {
    match (&role.arn, &role.name) {
        (Some(a), _) => a == arn,
        (None, Some(name)) => pctl_protocol::names::arn_is_role_name(arn, name),
        (None, None) => false,
    }
}

/// Maps `--cluster KEY` (`cluster`, may be absent) or `--cluster-name`,
/// `--region`, `--role-arn` and `--role` to what to mint for.
pub fn resolve(
    cfg: &Config,
    cluster: Option<&str>,
    role: Option<&str>,
    flags: &GetTokenFlags,
) -> Result<Target, ConfigError> {
    let bad = |m: String| Err(ConfigError(m));
    let place = format!("{} (or its includes)", cfg.path.display());
    let region = flags.region.as_deref();
    let role_arn = flags.role_arn.as_deref();
    let region_of = |key: &str| cfg.clusters[key].region.as_str();
    let key = match (cluster, flags.cluster_name.as_deref()) {
        (Some(c), _) => c.to_string(),
        (None, Some(name)) => {
            let candidates: Vec<&String> = cfg
                .clusters
                .iter()
                .filter(|(_, c)| c.name == name)
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
                    return Ok(Target::AdHoc(AdHocCluster {
                        name: name.to_string(),
                        region: region.unwrap_or(&cfg.region).to_string(),
                        role_arn: role_arn.unwrap_or_default().to_string(),
                    }));
                }
                ([], []) => {
                    return bad(format!(
                        "EKS cluster {name:?} is not in {place}: add [clusters.{name}] with \
                         role = \"...\"{}, or pass --role-arn ARN",
                        region
                            .map(|r| format!(" and region = \"{r}\""))
                            .unwrap_or_default()
                    ))
                }
                ([], found) => {
                    return bad(format!(
                        "EKS cluster {name:?} is configured in {place} only in another region \
                         ([clusters.{}], region {}), not --region {}",
                        found[0],
                        region_of(found[0]),
                        region.unwrap_or("")
                    ))
                }
                (several, _) => {
                    return bad(format!(
                        "EKS cluster {name:?}{} matches several entries in {place} ({}): \
                         use --cluster KEY",
                        region.map(|r| format!(" in {r}")).unwrap_or_default(),
                        several
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
        }
        (None, None) => {
            return bad("pass --cluster KEY (or aws eks get-token's --cluster-name NAME)".into())
        }
    };
    if let Some(r) = region {
        if cfg.clusters.contains_key(&key) && region_of(&key) != r {
            return bad(format!(
                "--region {r} does not match [clusters.{key}] in {place} (region {})",
                region_of(&key)
            ));
        }
    }
    let role = match (role, role_arn) {
        (Some(r), _) => Some(r.to_string()),
        (None, None) => None,
        (None, Some(arn)) => {
            let found: Vec<&String> = cfg
                .roles
                .iter()
                .filter(|(_, r)| role_is(r, arn))
                .map(|(k, _)| k)
                .collect();
            match found.as_slice() {
                [k] => Some((*k).clone()),
                [] => {
                    return bad(format!(
                        "no role in {place} is {arn}: add [roles.NAME] with arn = \"{arn}\" \
                         (pctl assumes only configured roles)"
                    ))
                }
                several => {
                    // Prefer the cluster's own role when it is one of them.
                    let own = cfg.clusters.get(&key).map(|c| &c.role);
                    match own.filter(|o| several.contains(o)) {
                        Some(o) => Some(o.clone()),
                        None => {
                            return bad(format!(
                                "{arn} matches several roles in {place} ({}): use --role KEY",
                                several
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                        }
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

    /// The standard test config (shared with the pytest rig and the sandbox)
    /// and a second role and cluster.
    const CONFIG: &str = concat!(
        include_str!("../../../tests/fixtures/pctl.toml"),
        r#"
[roles.readonly]
arn = "arn:aws:iam::111122223333:role/ro"
[clusters.prod-eu]
name = "prod"
region = "eu-west-1"
role = "readonly"
"#
    );

    fn config() -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg.toml");
        std::fs::write(&path, CONFIG).unwrap();
        Config::load(&path).unwrap()
    }

    fn resolve_target(
        cluster: Option<&str>,
        name: Option<&str>,
        region: Option<&str>,
        arn: Option<&str>,
    ) -> Result<Target, String> {
        let flags = GetTokenFlags {
            cluster_name: name.map(String::from),
            region: region.map(String::from),
            role_arn: arn.map(String::from),
        };
        resolve(&config(), cluster, None, &flags).map_err(|e| e.0)
    }

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
            e.contains("is not in") && e.contains("cfg.toml (or its includes)"),
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
            e.contains("no role in") && e.contains("is arn:aws:iam::1:role/other"),
            "{e}"
        );
    }

    #[test]
    fn unconfigured_cluster_with_a_role_arn_is_served_as_named() {
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

    /// Issue 15 §7: a cluster defined only in an included file is found by
    /// its EKS name (the client's own reading of the config missed it).
    #[test]
    fn clusters_from_includes_are_found_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg.toml");
        std::fs::write(&path, format!("include = [\"team.toml\"]\n{CONFIG}")).unwrap();
        std::fs::write(
            dir.path().join("team.toml"),
            "[clusters.team]\nname = \"team-eks\"\nrole = \"admin\"\n",
        )
        .unwrap();
        let cfg = Config::load(&path).unwrap();
        let flags = GetTokenFlags {
            cluster_name: Some("team-eks".into()),
            ..GetTokenFlags::default()
        };
        assert_eq!(
            resolve(&cfg, None, None, &flags).unwrap(),
            Target::Configured {
                cluster: "team".into(),
                role: None
            }
        );
    }
}
