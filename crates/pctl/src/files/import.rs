//! `pctl init --from-aws-config`: turns the AWS config's assume-role
//! profiles (`role_arn` with `source_profile` chains, `external_id`,
//! `role_session_name`, `duration_seconds`, `region`; `mfa_serial` noted)
//! and its IAM Identity Center sessions and profiles into pctl
//! `[identities.NAME]` and `[roles.NAME]` tables. Without `--write` it
//! prints what it would append; with `--write` it appends them to pctl's
//! config, skipping roles that are already there (the same ARN, or the same
//! key for the same role name), and never rewrites what the config holds.

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
    pub external_id: Option<String>,
    pub role_session_name: Option<String>,
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
    let (_, sso_profiles) = parse_sso(&text).map_err(|e| anyhow!("{}: {e}", from.display()))?;
    let mut imp = to_roles(&profiles, &sso_profiles, &view).map_err(|e| {
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
            external_id: get("external_id"),
            role_session_name: get("role_session_name"),
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

/// What becomes of one assume-role profile.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    /// Imported under this key.
    New(String),
    /// Already configured as this key.
    Have(String),
    /// Not imported (the note says why).
    Skip,
}

/// The account ID of a role ARN (`arn:aws:iam::ACCOUNT:role/...`).
fn arn_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

/// The `[roles.KEY]` tables for `profiles` that `existing` does not have yet.
/// A profile whose key would break the one name rule refuses the import
/// (naming the profile, the key and the rule).
///
/// Carried over: `source_profile` (a role or an IAM Identity Center
/// profile: `source_role`; anything else: the identity's own key),
/// `external_id`, `role_session_name`, `duration_seconds` (within what AWS
/// allows: 1 hour for a chain), `region`; `mfa_serial` is noted (pctl reads
/// the MFA serial from the identity). A role of another account is not
/// skipped because a role of the same name is configured: only the same ARN
/// (or the same key for the same role name) counts as configured; a key
/// taken by another role gets the account ID.
pub fn to_roles(
    profiles: &[AwsRoleProfile],
    sso: &[SsoProfile],
    existing: &View,
) -> Result<Import, String> {
    let mut imp = Import {
        default_region: profiles
            .iter()
            .find(|p| p.profile == "default")
            .and_then(|p| p.region.clone())
            .or_else(|| profiles.iter().find_map(|p| p.region.clone())),
        ..Import::default()
    };
    // First: each profile's key, or why it is not imported.
    let mut fate: Vec<Fate> = Vec::with_capacity(profiles.len());
    let mut new_keys: Vec<String> = Vec::new();
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
            fate.push(Fate::Skip);
            continue;
        }
        if let Some((k, _)) = existing
            .roles
            .iter()
            .find(|(_, r)| r.arn.as_deref() == Some(p.role_arn.as_str()))
        {
            imp.notes.push(format!(
                "skipped [profile {}]: {} is already configured as [roles.{k}]",
                p.profile, p.role_arn
            ));
            fate.push(Fate::Have(k.clone()));
            continue;
        }
        let taken = |k: &str| existing.roles.contains_key(k) || new_keys.iter().any(|n| n == k);
        let key = match existing.roles.get(&key) {
            // the same key for a role of the same name: taken as the same role
            Some(r)
                if r.name
                    .as_deref()
                    .is_some_and(|n| pctl_protocol::names::arn_is_role_name(&p.role_arn, n)) =>
            {
                imp.notes.push(format!(
                    "skipped [profile {}]: [roles.{key}] is already configured",
                    p.profile
                ));
                fate.push(Fate::Have(key));
                continue;
            }
            _ if taken(&key) => {
                let k = format!("{key}-{}", arn_account(&p.role_arn));
                if !pctl_protocol::names::is_name(&k) || taken(&k) {
                    imp.notes.push(format!(
                        "skipped [profile {}]: [roles.{key}] is already configured as another role: import it by hand under a key of your choice",
                        p.profile
                    ));
                    fate.push(Fate::Skip);
                    continue;
                }
                imp.notes.push(format!(
                    "[profile {}]: [roles.{key}] is another role: imported as [roles.{k}]",
                    p.profile
                ));
                k
            }
            _ => key,
        };
        new_keys.push(key.clone());
        fate.push(Fate::New(key));
    }
    // The pctl key a source_profile names, following its chain: `Ok(None)`
    // for the identity itself, `Err` when it cannot be imported.
    let source_of = |p: &AwsRoleProfile| -> Result<Option<String>, String> {
        let mut seen = vec![p.profile.as_str()];
        let mut cur = p;
        let mut first: Option<Option<String>> = None;
        loop {
            let Some(s) = cur.source_profile.as_deref() else {
                return Ok(first.flatten());
            };
            if seen.contains(&s) {
                return Err(format!(
                    "its source_profile chain {} -> {s} is a cycle",
                    seen.join(" -> ")
                ));
            }
            seen.push(s);
            if let Some(i) = profiles.iter().position(|q| q.profile == s) {
                let key = match &fate[i] {
                    Fate::New(k) | Fate::Have(k) => k.clone(),
                    Fate::Skip => return Err(format!("its source_profile {s} was not imported")),
                };
                first.get_or_insert(Some(key));
                cur = &profiles[i];
                continue;
            }
            if let Some(q) = sso.iter().find(|q| q.profile == s) {
                // add_sso imports it as this key (or it is configured already)
                first.get_or_insert(Some(role_key(&q.profile)));
                return Ok(first.flatten());
            }
            // a profile with keys (or none): the identity's own
            return Ok(first.flatten());
        }
    };
    let mut mfa = false;
    for (p, f) in profiles.iter().zip(&fate) {
        let Fate::New(key) = f else { continue };
        let source = match source_of(p) {
            Ok(s) => s,
            Err(why) => {
                imp.notes
                    .push(format!("skipped [profile {}]: {why}", p.profile));
                continue;
            }
        };
        let mut from = vec![format!("[profile {}]", p.profile)];
        match (&p.source_profile, &source) {
            (Some(s), Some(_)) => from.push(format!("source_profile = {s}")),
            (Some(s), None) => from.push(format!(
                "source_profile = {s} (pctl uses the identity's key)"
            )),
            _ => {}
        }
        if let Some(m) = &p.mfa_serial {
            mfa = true;
            from.push(format!(
                "mfa_serial = {m} (pctl uses the identity's MFA serial)"
            ));
        }
        let _ = writeln!(imp.toml, "# imported from {}", from.join("; "));
        let _ = writeln!(imp.toml, "[roles.{key}]");
        if let Some(k) = &source {
            let _ = writeln!(imp.toml, "source_role = {}", toml::Value::String(k.clone()));
        }
        let _ = writeln!(
            imp.toml,
            "arn = {}",
            toml::Value::String(p.role_arn.clone())
        );
        let (lo, hi) = if source.is_some() {
            (900, 3600)
        } else {
            (900, 12 * 3600)
        };
        if let Some(d) = p.duration_seconds.as_deref() {
            match d.parse::<u64>().ok().filter(|n| *n > 0) {
                Some(n) => {
                    let c = n.clamp(lo, hi);
                    if c != n {
                        imp.notes.push(format!(
                            "[profile {}]: duration_seconds {n} is outside what AWS allows {}: imported as {}",
                            p.profile,
                            if source.is_some() { "for a chained role (at most 1 hour)" } else { "(15 minutes to 12 hours)" },
                            duration(&c.to_string()).unwrap_or_default()
                        ));
                    }
                    let _ = writeln!(
                        imp.toml,
                        "duration = \"{}\"",
                        duration(&c.to_string()).unwrap_or_default()
                    );
                }
                None => imp.notes.push(format!(
                    "[profile {}]: duration_seconds {d:?} is not a number of seconds: the role gets pctl's default duration",
                    p.profile
                )),
            }
        }
        if let Some(x) = &p.external_id {
            if (2..=1224).contains(&x.len())
                && !x.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                let _ = writeln!(imp.toml, "external_id = {}", toml::Value::String(x.clone()));
            } else {
                imp.notes.push(format!(
                    "[profile {}]: external_id is not 2-1224 characters without spaces: not imported",
                    p.profile
                ));
            }
        }
        if let Some(n) = &p.role_session_name {
            if pctl_protocol::names::is_session_name(n) {
                let _ = writeln!(
                    imp.toml,
                    "session_name = {}",
                    toml::Value::String(n.clone())
                );
            } else {
                imp.notes.push(format!(
                    "[profile {}]: role_session_name {:?} is not {}: not imported",
                    p.profile,
                    n,
                    pctl_protocol::names::SESSION_NAME_RULE
                ));
            }
        }
        if let Some(r) = &p.region {
            if pctl_protocol::names::is_region(r) {
                let _ = writeln!(imp.toml, "region = {}", toml::Value::String(r.clone()));
            } else {
                imp.notes.push(format!(
                    "[profile {}]: region {:?} is not an AWS region name: not imported",
                    p.profile, r
                ));
            }
        }
        imp.toml.push('\n');
        imp.roles.push(key.clone());
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
external_id = ext-1
role_session_name = alice

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

    /// A `role_session_name` is imported when the daemon's config would
    /// accept it (one rule, `names::is_session_name`): `+` included.
    #[test]
    fn session_names_follow_the_daemons_rule() {
        let aws = "[profile a]\nrole_arn = arn:aws:iam::111122223333:role/r\nrole_session_name = alice+ops@example.com\n\
                   [profile b]\nrole_arn = arn:aws:iam::111122223333:role/s\nrole_session_name = a/b\n";
        let imp = to_roles(&parse_profiles(aws).unwrap(), &[], &View::default()).unwrap();
        assert!(
            imp.toml
                .contains("session_name = \"alice+ops@example.com\""),
            "{}",
            imp.toml
        );
        assert!(!imp.toml.contains("a/b"), "{}", imp.toml);
        assert!(
            imp.notes
                .iter()
                .any(|n| n.contains("role_session_name \"a/b\"")
                    && n.contains(pctl_protocol::names::SESSION_NAME_RULE)),
            "{:?}",
            imp.notes
        );
    }

    #[test]
    fn imports_assume_role_profiles() {
        let p = parse_profiles(AWS).unwrap();
        let names: Vec<_> = p.iter().map(|p| p.profile.as_str()).collect();
        assert_eq!(names, ["admin", "prod.readonly", "weird"]);
        let imp = to_roles(&p, &[], &View::default()).unwrap();
        assert_eq!(imp.roles, ["admin", "prod-readonly"]);
        let parsed = View::parse(&imp.toml, Path::new("x")).unwrap();
        assert_eq!(
            parsed.roles["admin"].arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/platform-admin")
        );
        assert!(imp.toml.contains("duration = \"1h\""), "{}", imp.toml);
        // a chain: source_role, and at most the hour AWS allows a chained role
        assert!(
            imp.toml.contains("[roles.prod-readonly]\nsource_role = \"admin\"\narn = \"arn:aws:iam::444455556666:role/ReadOnly\"\nduration = \"1h\"\n"),
            "{}",
            imp.toml
        );
        assert!(imp
            .notes
            .iter()
            .any(|n| n.contains("duration_seconds 5400")));
        // role options carried over
        assert!(
            imp.toml.contains(
                "external_id = \"ext-1\"\nsession_name = \"alice\"\nregion = \"us-east-1\"\n"
            ),
            "{}",
            imp.toml
        );
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
            let e = to_roles(&parse_profiles(&text).unwrap(), &[], &View::default()).unwrap_err();
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
        let imp = to_roles(&parse_profiles(AWS).unwrap(), &[], &view).unwrap();
        // [roles.admin] is another role (name x): the profile's role gets the account ID
        assert_eq!(imp.roles, ["admin-111122223333"], "{:?}", imp.notes);
        assert!(imp
            .notes
            .iter()
            .any(|n| n.contains("imported as [roles.admin-111122223333]")));
        assert!(imp
            .notes
            .iter()
            .any(|n| n.contains("already configured as [roles.ro]")));
        // appending never touches what is there
        let only_new = to_roles(&parse_profiles(AWS).unwrap(), &[], &View::default()).unwrap();
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
mod chain_tests {
    use super::*;
    use std::path::Path;

    /// Issue 21 item 8: a role of another account is imported although a
    /// role of the same name is configured; the same role is not.
    #[test]
    fn a_role_of_the_same_name_in_another_account_is_imported() {
        let cfg = "[roles.admin]\nname = \"admin\"\n";
        let view = View::parse(cfg, Path::new("c")).unwrap();
        let aws = "[profile admin]\nrole_arn = arn:aws:iam::111122223333:role/admin\n\n\
                   [profile prod-admin]\nrole_arn = arn:aws:iam::444455556666:role/admin\n";
        let imp = to_roles(&parse_profiles(aws).unwrap(), &[], &view).unwrap();
        assert_eq!(imp.roles, ["prod-admin"], "{:?}", imp.notes);
        assert!(imp
            .notes
            .iter()
            .any(|n| n.contains("[roles.admin] is already configured")));
    }

    #[test]
    fn chains_follow_roles_and_sso_profiles_and_cycles_are_skipped() {
        let aws = "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n\n\
                   [profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = a\n\n\
                   [profile c]\nrole_arn = arn:aws:iam::1:role/c\nsource_profile = dev\n\n\
                   [profile d]\nrole_arn = arn:aws:iam::1:role/d\nsource_profile = bad\n\n\
                   [profile bad]\nrole_arn = nope\n";
        let sso = [SsoProfile {
            profile: "dev".into(),
            session: "corp".into(),
            account_id: "123456789012".into(),
            role_name: "Dev".into(),
        }];
        let imp = to_roles(&parse_profiles(aws).unwrap(), &sso, &View::default()).unwrap();
        assert_eq!(imp.roles, ["c"], "{:?}", imp.notes);
        assert!(
            imp.toml.contains("[roles.c]\nsource_role = \"dev\"\n"),
            "{}",
            imp.toml
        );
        assert!(imp
            .notes
            .iter()
            .any(|n| n.contains("a -> b -> a") && n.contains("cycle")));
        assert!(imp
            .notes
            .iter()
            .any(|n| n.contains("source_profile bad was not imported")));
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
sso_account_id = 999999999999
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
        assert!(toml.contains("[roles.legacy]\nidentity = \"other\"\naccount_id = \"999999999999\"\nrole_name = \"ReadOnly\""), "{toml}");
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
