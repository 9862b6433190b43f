//! `pctl init --from-aws-config`: turns the AWS config's assume-role
//! profiles (`role_arn`, `source_profile`, `mfa_serial`, `duration_seconds`)
//! into pctl `[roles.NAME]` tables. Without `--write` it prints what it would
//! append; with `--write` it appends them to pctl's config, skipping roles
//! that are already there (same key or same ARN), and never rewrites what
//! the config holds.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::pctl_config::View;
use super::Edit;

/// One assume-role profile of an AWS config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRoleProfile {
    pub profile: String,
    pub role_arn: String,
    pub source_profile: Option<String>,
    pub mfa_serial: Option<String>,
    pub duration_seconds: Option<String>,
    pub region: Option<String>,
}

/// The result of an import: TOML to append and notes for the user.
#[derive(Debug, Default)]
pub struct Import {
    pub toml: String,
    pub roles: Vec<String>,
    pub notes: Vec<String>,
    pub default_region: Option<String>,
}

/// `pctl init --from-aws-config [PATH] [--write]`.
pub fn run(from: Option<PathBuf>, write: bool) -> Result<()> {
    let from = match from.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p,
        None => super::aws_config::default_path()?,
    };
    let text = super::read_optional(&from)?.ok_or_else(|| {
        anyhow!(
            "{} does not exist: pass --from-aws-config PATH",
            from.display()
        )
    })?;
    let profiles = parse_profiles(&text).map_err(|e| anyhow!("{}: {e}", from.display()))?;
    let config = pctl_protocol::dirs::config_path();
    let existing = super::read_optional(&config)?;
    let view = match &existing {
        Some(t) => View::parse(t, &config)?,
        None => View::default(),
    };
    let mut imp = to_roles(&profiles, &view).map_err(|e| {
        anyhow!(
            "{}: {e}; nothing imported, {} unchanged",
            from.display(),
            config.display()
        )
    })?;
    add_sso(&text, &view, &mut imp).map_err(|e| {
        anyhow!(
            "{}: {e}; nothing imported, {} unchanged",
            from.display(),
            config.display()
        )
    })?;
    for n in &imp.notes {
        eprintln!("pctl: {n}");
    }
    if imp.roles.is_empty() {
        eprintln!(
            "pctl: no new assume-role profile (role_arn) in {}: nothing to import",
            from.display()
        );
        return Ok(());
    }
    if !write {
        print!("{}", imp.toml);
        eprintln!(
            "pctl: {} role(s) from {}; `pctl init --from-aws-config --write` appends them to {}",
            imp.roles.len(),
            from.display(),
            config.display()
        );
        return Ok(());
    }
    let edit = Edit::plan(&config, |old| {
        let new = append(old, &imp);
        View::parse(&new, &config)
            .map_err(|e| anyhow!("internal: the result would not parse: {e}"))?;
        Ok(new)
    })?;
    super::finish(&edit, false, &format!("role(s) {}", imp.roles.join(", ")))?;
    if existing.is_none() {
        eprintln!(
            "pctl: next: add [onepassword] item = \"...\" and vault = \"...\" to {} (see README)",
            config.display()
        );
    }
    Ok(())
}

/// The config text with the imported tables appended (after a blank line).
fn append(old: Option<&str>, imp: &Import) -> String {
    let mut out = String::new();
    match old {
        Some(t) => {
            out.push_str(t);
            if !t.is_empty() && !t.ends_with('\n') {
                out.push('\n');
            }
            if !t.is_empty() {
                out.push('\n');
            }
        }
        None => {
            // Top-level keys must come before the first table.
            if let Some(r) = &imp.default_region {
                let _ = writeln!(out, "region = {}\n", toml::Value::String(r.clone()));
            }
        }
    }
    out.push_str(&imp.toml);
    out
}

/// Every `[profile X]` (and `[default]`) with a `role_arn`, in file order.
pub fn parse_profiles(text: &str) -> Result<Vec<AwsRoleProfile>, String> {
    let ini = ini::Ini::load_from_str(text).map_err(|e| format!("cannot parse it as INI: {e}"))?;
    let mut out = Vec::new();
    for (section, props) in ini.iter() {
        let Some(section) = section else { continue };
        let name = section.split_whitespace().collect::<Vec<_>>();
        let profile = match name.as_slice() {
            ["default"] => "default".to_string(),
            ["profile", p] => (*p).to_string(),
            _ => continue, // sso-session, services, ...
        };
        let Some(role_arn) = props
            .get("role_arn")
            .map(str::trim)
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        let get = |k: &str| {
            props
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        out.push(AwsRoleProfile {
            profile,
            role_arn: role_arn.to_string(),
            source_profile: get("source_profile"),
            mfa_serial: get("mfa_serial"),
            duration_seconds: get("duration_seconds"),
            region: get("region"),
        });
    }
    Ok(out)
}

/// An IAM Identity Center session: `[sso-session NAME]`, or a legacy
/// profile's inline `sso_start_url` / `sso_region`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSession {
    pub name: String,
    pub start_url: String,
    pub region: String,
    pub scopes: Option<Vec<String>>,
}

/// A profile served by Identity Center: `sso_account_id` + `sso_role_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoProfile {
    pub profile: String,
    /// The [`SsoSession`] name.
    pub session: String,
    pub account_id: String,
    pub role_name: String,
}

/// The sso-session sections and the SSO profiles of an AWS config, in file
/// order. A legacy profile's inline start URL becomes a session named after
/// the portal's host (`example` for `https://example.awsapps.com/start`).
pub fn parse_sso(text: &str) -> Result<(Vec<SsoSession>, Vec<SsoProfile>), String> {
    let ini = ini::Ini::load_from_str(text).map_err(|e| format!("cannot parse it as INI: {e}"))?;
    let mut sessions: Vec<SsoSession> = Vec::new();
    let mut profiles = Vec::new();
    for (section, props) in ini.iter() {
        let Some(section) = section else { continue };
        let get = |k: &str| {
            props
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let words = section.split_whitespace().collect::<Vec<_>>();
        let profile = match words.as_slice() {
            ["sso-session", name] => {
                if let (Some(start_url), Some(region)) = (get("sso_start_url"), get("sso_region")) {
                    let scopes = get("sso_registration_scopes").map(|s| {
                        s.split(',')
                            .map(|x| x.trim().to_string())
                            .filter(|x| !x.is_empty())
                            .collect()
                    });
                    sessions.push(SsoSession {
                        name: (*name).to_string(),
                        start_url,
                        region,
                        scopes,
                    });
                }
                continue;
            }
            ["default"] => "default".to_string(),
            ["profile", p] => (*p).to_string(),
            _ => continue,
        };
        let (Some(account_id), Some(role_name)) = (get("sso_account_id"), get("sso_role_name"))
        else {
            continue;
        };
        let session = match (get("sso_session"), get("sso_start_url"), get("sso_region")) {
            (Some(s), _, _) => s,
            (None, Some(url), Some(region)) => {
                let host = url
                    .split("://")
                    .nth(1)
                    .and_then(|r| r.split(['.', '/']).next())
                    .unwrap_or("sso");
                let name = role_key(host);
                if !sessions.iter().any(|s| s.name == name) {
                    sessions.push(SsoSession {
                        name: name.clone(),
                        start_url: url,
                        region,
                        scopes: None,
                    });
                }
                name
            }
            _ => continue,
        };
        profiles.push(SsoProfile {
            profile,
            session,
            account_id,
            role_name,
        });
    }
    Ok((sessions, profiles))
}

/// Appends the `sso` identities and their roles of the AWS config `text`
/// that `existing` does not have yet. Never a token: the AWS config holds none.
pub fn add_sso(text: &str, existing: &View, imp: &mut Import) -> Result<(), String> {
    let (sessions, profiles) = parse_sso(text)?;
    for s in &sessions {
        pctl_protocol::names::check_name("identity", &s.name).map_err(|e| {
            format!(
                "[sso-session {}] cannot be imported: {e}",
                pctl_protocol::text::one_line(&s.name, 80)
            )
        })?;
        if imp.default_region.is_none() {
            imp.default_region = Some(s.region.clone());
        }
        if existing.identities.contains_key(&s.name) {
            imp.notes.push(format!(
                "skipped [sso-session {}]: [identities.{}] is already configured",
                s.name, s.name
            ));
            continue;
        }
        let _ = writeln!(imp.toml, "# imported from [sso-session {}]", s.name);
        let _ = writeln!(imp.toml, "[identities.{}]", s.name);
        let _ = writeln!(imp.toml, "source = \"sso\"");
        let _ = writeln!(
            imp.toml,
            "start_url = {}",
            toml::Value::String(s.start_url.clone())
        );
        let _ = writeln!(
            imp.toml,
            "sso_region = {}",
            toml::Value::String(s.region.clone())
        );
        if let Some(scopes) = &s.scopes {
            let v = toml::Value::Array(scopes.iter().cloned().map(toml::Value::String).collect());
            let _ = writeln!(imp.toml, "registration_scopes = {v}");
        }
        imp.toml.push('\n');
        imp.roles.push(format!("identity {}", s.name));
    }
    for p in &profiles {
        let key = role_key(&p.profile);
        pctl_protocol::names::check_name("role", &key).map_err(|e| {
            format!(
                "[profile {}] cannot be imported: {e}",
                pctl_protocol::text::one_line(&p.profile, 80)
            )
        })?;
        if existing.roles.contains_key(&key) || imp.roles.contains(&key) {
            imp.notes.push(format!(
                "skipped [profile {}]: [roles.{key}] is already configured",
                p.profile
            ));
            continue;
        }
        if !sessions.iter().any(|s| s.name == p.session)
            && !existing.identities.contains_key(&p.session)
        {
            imp.notes.push(format!(
                "skipped [profile {}]: sso_session {} has no [sso-session {}] with sso_start_url and sso_region",
                p.profile, p.session, p.session
            ));
            continue;
        }
        let _ = writeln!(imp.toml, "# imported from [profile {}]", p.profile);
        let _ = writeln!(imp.toml, "[roles.{key}]");
        let _ = writeln!(
            imp.toml,
            "identity = {}",
            toml::Value::String(p.session.clone())
        );
        let _ = writeln!(
            imp.toml,
            "account_id = {}",
            toml::Value::String(p.account_id.clone())
        );
        let _ = writeln!(
            imp.toml,
            "role_name = {}",
            toml::Value::String(p.role_name.clone())
        );
        imp.toml.push('\n');
        imp.roles.push(key);
    }
    Ok(())
}

/// A pctl role key from a profile name: letters, digits, `-` and `_`.
fn role_key(profile: &str) -> String {
    profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `duration_seconds` as a pctl duration ("1h", "90m", "1000s").
fn duration(secs: &str) -> Option<String> {
    let n: u64 = secs.parse().ok().filter(|n| *n > 0)?;
    Some(if n.is_multiple_of(3600) {
        format!("{}h", n / 3600)
    } else if n.is_multiple_of(60) {
        format!("{}m", n / 60)
    } else {
        format!("{n}s")
    })
}

/// The `[roles.KEY]` tables for `profiles` that `existing` does not have yet.
/// A profile whose key would break the one name rule refuses the import
/// (naming the profile, the key and the rule).
pub fn to_roles(profiles: &[AwsRoleProfile], existing: &View) -> Result<Import, String> {
    let mut imp = Import {
        default_region: profiles
            .iter()
            .find(|p| p.profile == "default")
            .and_then(|p| p.region.clone())
            .or_else(|| profiles.iter().find_map(|p| p.region.clone())),
        ..Import::default()
    };
    let mut mfa = false;
    for p in profiles {
        let key = role_key(&p.profile);
        pctl_protocol::names::check_name("role", &key).map_err(|e| {
            format!(
                "[profile {}] cannot be imported: {e} (the profile, or the role added by hand)",
                pctl_protocol::text::one_line(&p.profile, 80)
            )
        })?;
        if !pctl_protocol::names::is_role_arn(&p.role_arn) {
            imp.notes.push(format!(
                "skipped [profile {}]: role_arn {:?} is not a role ARN",
                p.profile, p.role_arn
            ));
            continue;
        }
        if existing.roles.contains_key(&key) || imp.roles.contains(&key) {
            imp.notes.push(format!(
                "skipped [profile {}]: [roles.{key}] is already configured",
                p.profile
            ));
            continue;
        }
        if let Some((k, _)) = existing.roles.iter().find(|(_, r)| r.is(&p.role_arn)) {
            imp.notes.push(format!(
                "skipped [profile {}]: {} is already configured as [roles.{k}]",
                p.profile, p.role_arn
            ));
            continue;
        }
        let mut from = vec![format!("[profile {}]", p.profile)];
        if let Some(s) = &p.source_profile {
            let chained = profiles.iter().any(|q| &q.profile == s);
            from.push(if chained {
                format!("source_profile = {s} (a role itself: pctl assumes this role directly with the 1Password key)")
            } else {
                format!("source_profile = {s} (pctl uses the 1Password item's key)")
            });
        }
        if let Some(m) = &p.mfa_serial {
            mfa = true;
            from.push(format!("mfa_serial = {m} (pctl uses the item's MFA)"));
        }
        let _ = writeln!(imp.toml, "# imported from {}", from.join("; "));
        let _ = writeln!(imp.toml, "[roles.{key}]");
        let _ = writeln!(
            imp.toml,
            "arn = {}",
            toml::Value::String(p.role_arn.clone())
        );
        match p.duration_seconds.as_deref().map(|d| (d, duration(d))) {
            Some((_, Some(d))) => {
                let _ = writeln!(imp.toml, "duration = \"{d}\"");
            }
            Some((d, None)) => imp.notes.push(format!(
                "[profile {}]: duration_seconds {d:?} is not a number of seconds: the role gets pctl's default duration",
                p.profile
            )),
            None => {}
        }
        imp.toml.push('\n');
        imp.roles.push(key);
    }
    if mfa {
        imp.notes.push(
            "MFA: pctl signs in with the MFA serial and TOTP stored in the 1Password item \
             (fields \"MFA Serial\" and \"One-Time Password\"), once per unlock"
                .into(),
        );
    }
    Ok(imp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const AWS: &str = "\
# my config
[default]
region = eu-west-1

[profile base]
aws_access_key_id = AKIAEXAMPLE
mfa_serial = arn:aws:iam::111122223333:mfa/me

[profile admin]
role_arn = arn:aws:iam::111122223333:role/platform-admin
source_profile = base
mfa_serial = arn:aws:iam::111122223333:mfa/me
duration_seconds = 3600
region = us-east-1

[profile prod.readonly]
role_arn = arn:aws:iam::444455556666:role/ReadOnly
source_profile = admin
duration_seconds = 5400

[sso-session corp]
sso_region = us-east-1

[profile weird]
role_arn = not-an-arn
s3 =
  max_concurrent_requests = 20
";

    #[test]
    fn imports_assume_role_profiles() {
        let p = parse_profiles(AWS).unwrap();
        let names: Vec<_> = p.iter().map(|p| p.profile.as_str()).collect();
        assert_eq!(names, ["admin", "prod.readonly", "weird"]);
        let imp = to_roles(&p, &View::default()).unwrap();
        assert_eq!(imp.roles, ["admin", "prod-readonly"]);
        let parsed = View::parse(&imp.toml, Path::new("x")).unwrap();
        assert_eq!(
            parsed.roles["admin"].arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/platform-admin")
        );
        assert!(imp.toml.contains("duration = \"1h\""), "{}", imp.toml);
        assert!(imp.toml.contains("duration = \"90m\""), "{}", imp.toml);
        assert!(imp.toml.contains("a role itself"), "{}", imp.toml);
        assert!(imp.notes.iter().any(|n| n.contains("not a role ARN")));
        assert!(imp.notes.iter().any(|n| n.contains("MFA")));
        assert_eq!(imp.default_region.as_deref(), Some("us-east-1"));
    }

    /// Issue 15 §2: a profile whose role key would break the name rule
    /// refuses the whole import, naming the profile, the key and the rule.
    #[test]
    fn a_key_outside_the_name_rule_refuses_the_import() {
        for profile in ["-x", "_x", "ö", &"a".repeat(65)] {
            let text = format!(
                "[profile ok]\nrole_arn = arn:aws:iam::1:role/a\n\n[profile {profile}]\nrole_arn = arn:aws:iam::1:role/b\n"
            );
            let e = to_roles(&parse_profiles(&text).unwrap(), &View::default()).unwrap_err();
            assert!(
                e.contains("[profile ") && e.contains(pctl_protocol::names::NAME_RULE),
                "{profile}: {e}"
            );
        }
    }

    #[test]
    fn existing_roles_are_kept_and_not_duplicated() {
        let cfg = "region = \"us-east-1\"\n[roles.admin]\nname = \"x\"\n[roles.ro]\narn = \"arn:aws:iam::444455556666:role/ReadOnly\"\n";
        let view = View::parse(cfg, Path::new("c")).unwrap();
        let imp = to_roles(&parse_profiles(AWS).unwrap(), &view).unwrap();
        assert!(imp.roles.is_empty(), "{:?}", imp.roles);
        assert!(imp
            .notes
            .iter()
            .any(|n| n.contains("[roles.admin] is already configured")));
        assert!(imp
            .notes
            .iter()
            .any(|n| n.contains("already configured as [roles.ro]")));
        // appending never touches what is there
        let only_new = to_roles(&parse_profiles(AWS).unwrap(), &View::default()).unwrap();
        let out = append(Some(cfg.trim_end()), &only_new);
        assert!(out.starts_with(cfg.trim_end()));
        assert!(
            View::parse(&out, Path::new("c")).is_err(),
            "duplicate [roles.admin] must not parse"
        );
        let fresh = append(None, &only_new);
        assert!(fresh.starts_with("region = \"us-east-1\"\n"));
        View::parse(&fresh, Path::new("c")).unwrap();
    }
}

#[cfg(test)]
mod sso_tests {
    use super::*;

    const AWS: &str = "\
[sso-session corp]
sso_start_url = https://example.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile dev]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Dev
region = eu-west-1

[profile legacy]
sso_start_url = https://other.awsapps.com/start
sso_region = us-east-2
sso_account_id = 210987654321
sso_role_name = ReadOnly

[profile lost]
sso_session = nowhere
sso_account_id = 111122223333
sso_role_name = X
";

    #[test]
    fn imports_sso_sessions_and_profiles() {
        let mut imp = Import::default();
        add_sso(AWS, &View::default(), &mut imp).unwrap();
        let toml = imp.toml.clone();
        assert!(toml.contains("[identities.corp]\nsource = \"sso\"\nstart_url = \"https://example.awsapps.com/start\"\nsso_region = \"eu-west-1\"\nregistration_scopes = [\"sso:account:access\"]"), "{toml}");
        assert!(toml.contains("[identities.other]\nsource = \"sso\"\nstart_url = \"https://other.awsapps.com/start\"\nsso_region = \"us-east-2\""), "{toml}");
        assert!(toml.contains("[roles.dev]\nidentity = \"corp\"\naccount_id = \"123456789012\"\nrole_name = \"Dev\""), "{toml}");
        assert!(toml.contains("[roles.legacy]\nidentity = \"other\"\naccount_id = \"210987654321\"\nrole_name = \"ReadOnly\""), "{toml}");
        assert!(!toml.contains("[roles.lost]"), "{toml}");
        assert!(
            imp.notes.iter().any(|n| n.contains("[profile lost]")),
            "{:?}",
            imp.notes
        );
        assert_eq!(imp.default_region.as_deref(), Some("eu-west-1"));
        // existing identities and roles are kept
        let view = View::parse(
            "[identities.corp]\nsource = \"sso\"\n[roles.dev]\narn = \"arn:aws:iam::1:role/x\"\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let mut again = Import::default();
        add_sso(AWS, &view, &mut again).unwrap();
        assert!(!again.toml.contains("[identities.corp]") && !again.toml.contains("[roles.dev]"));
        assert!(again.toml.contains("[roles.legacy]"));
    }
}
