//! `pctl sso sync [--identity NAME] [--diff | --print] [--write [PATH]]`:
//! every account x role an IAM Identity Center identity may use becomes a
//! pctl role in a pctl-managed include file next to the config
//! (`sso-NAME.toml`, roles only, rewritten whole at each sync), the config's
//! `include` names that file, and the roles get their `pctl-ROLE` profiles
//! in the managed block of the AWS config (as `pctl aws-config` writes it).
//! Like granted's `sso populate`, but never a token: the files hold account
//! IDs, role names and the identity's name.
//!
//! Role keys come from the account name and the role name, made safe by the
//! one name rule ([`pctl_protocol::names`]); two that would be equal, or one
//! already defined elsewhere, get the account ID as well. A role the config
//! already has by hand (same identity, account and role name) is not added
//! again. A second sync with nothing new changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use pctl_protocol::{dirs, names, SsoRole};

use crate::client::Client;
use crate::files::pctl_config::View;
use crate::files::{self, Edit};
use crate::output;

/// `pctl sso sync`'s flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The `sso` identity (needed when several are configured).
    #[arg(long, value_name = "NAME")]
    identity: Option<String>,
    /// The AWS config file whose `# BEGIN pctl` block gets the profiles (default:
    /// $AWS_CONFIG_FILE, else ~/.aws/config).
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_parser = super::args::optional_path())]
    write: Option<PathBuf>,
    /// Show what would change in each file (unified diffs) and change nothing; exit 1 when
    /// something would, 0 when nothing would (as diff does).
    #[arg(long, conflicts_with = "print")]
    diff: bool,
    /// Print the include file and the profiles instead of writing them.
    #[arg(long, conflicts_with = "write")]
    print: bool,
}

/// The first line of a synced include file starts with this (then ` --identity NAME`: ...`);
/// files written with the older header ("# Managed by `pctl sso sync` --identity NAME`")
/// start with it too.
const HEADER: &str = "# Managed by `pctl sso sync";

pub fn run(client: &Client, args: Args) -> Result<()> {
    let config = dirs::config_path();
    let text = files::read_optional(&config)?.ok_or_else(|| crate::client::no_config(&config))?;
    let view = View::parse(&text, &config)?;
    let identity = sso_identity(&view, args.identity.as_deref(), &config)?;
    let dir = config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let file_name = include_name(&identity);
    let include = dir.join(&file_name);
    let included = view
        .include
        .iter()
        .any(|p| same_file(&dir.join(p), &include));

    // Roles defined elsewhere: their keys are taken, and a role configured
    // by hand is not added again.
    let mut elsewhere: BTreeMap<String, Option<(String, String)>> = BTreeMap::new();
    let only_identity = (view.identities.len() == 1)
        .then(|| view.identities.keys().next().cloned())
        .flatten();
    let mut note_roles = |v: &View| {
        for (k, r) in &v.roles {
            let id = r.identity.clone().or_else(|| only_identity.clone());
            let same = match (&r.account_id, &r.role_name) {
                (Some(a), Some(n)) if id.as_deref() == Some(identity.as_str()) => {
                    Some((a.clone(), n.clone()))
                }
                _ => None,
            };
            elsewhere.insert(k.clone(), same);
        }
    };
    note_roles(&view);
    for p in &view.include {
        let p = dir.join(p);
        if same_file(&p, &include) {
            continue;
        }
        if let Ok(Some(t)) = files::read_optional(&p) {
            if let Ok(v) = View::parse(&t, &p) {
                note_roles(&v);
            }
        }
    }
    let old_keys: BTreeSet<String> = match files::read_optional(&include)? {
        Some(t) => {
            if !t.starts_with(HEADER) {
                bail!(
                    "{} exists and was not written by `pctl sso sync`: nothing changed; move it \
                     away (sync writes its roles there)",
                    include.display()
                );
            }
            View::parse(&t, &include)?.roles.into_keys().collect()
        }
        None => BTreeSet::new(),
    };

    let roles = client.sso_roles(Some(identity.clone()))?;
    let plan = plan(&identity, &roles, &elsewhere);
    for n in &plan.notes {
        eprintln!("pctl: {n}");
    }
    let include_text = render(&identity, &plan.roles);

    let p = client.profiles()?;
    let mut all: BTreeSet<String> = p.roles.iter().cloned().collect();
    if included {
        for k in &old_keys {
            if !elsewhere.contains_key(k) {
                all.remove(k);
            }
        }
    }
    all.extend(plan.roles.keys().cloned());
    let all: Vec<String> = all.into_iter().collect();
    let exe = std::env::current_exe().context("cannot find the pctl executable")?;
    let profiles = output::aws_config(&exe, &p.region, &all).map_err(|e| {
        anyhow!(
            "refusing to write AWS profiles: pctl's config {}: {e}; nothing changed",
            config.display()
        )
    })?;
    if args.print {
        print!("{include_text}\n{profiles}");
        return Ok(());
    }

    let include_edit = Edit::plan(&include, |_| Ok(include_text.clone()))?;
    let config_edit = Edit::plan(&config, |old| {
        add_include(old.unwrap_or(""), &file_name)
            .map_err(|e| anyhow!("{}: {e}; nothing changed", config.display()))
    })?;
    let aws_edit = files::aws_config::plan(args.write, &profiles)?;
    let edits = [
        (&include_edit, format!("{} role(s)", plan.roles.len())),
        (&config_edit, format!("include = [\"{file_name}\"]")),
        (
            &aws_edit,
            format!("{} profile(s) in the `# BEGIN pctl` block", all.len()),
        ),
    ];
    if args.diff {
        let mut changed = false;
        for (e, _) in &edits {
            if e.changed() {
                changed = true;
                print!("{}", e.diff());
            } else {
                eprintln!("pctl: {} is up to date", e.path.display());
            }
        }
        if changed {
            return Err(crate::cmd::Exit(1).into());
        }
        return Ok(());
    }
    // The include first: the config that names it must never name a
    // missing file, and the AWS profiles must never name unknown roles.
    for (e, what) in &edits {
        files::finish(e, false, what)?;
    }
    Ok(())
}

/// The file a sync of `identity` writes, beside the config.
pub fn include_name(identity: &str) -> String {
    format!("sso-{identity}.toml")
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

/// The `sso` identity named, or the only one, from pctl's config.
fn sso_identity(view: &View, name: Option<&str>, config: &Path) -> Result<String> {
    let is_sso = |v: &toml::Value| v.get("source").and_then(|s| s.as_str()) == Some("sso");
    let ssos: Vec<&String> = view
        .identities
        .iter()
        .filter(|(_, v)| is_sso(v))
        .map(|(k, _)| k)
        .collect();
    match name {
        Some(n) => match view.identities.get(n) {
            Some(v) if is_sso(v) => Ok(n.to_string()),
            Some(_) => bail!(
                "identity {n} reads 1Password, it does not sign in with IAM Identity Center: \
                 pass an sso identity ({})",
                list(&ssos)
            ),
            None => bail!(
                "unknown identity {}: the sso identities in {} are: {}",
                names::shown(n),
                config.display(),
                list(&ssos)
            ),
        },
        None => match ssos.as_slice() {
            [one] => Ok((*one).clone()),
            [] => bail!(
                "no identity in {} signs in with IAM Identity Center: add [identities.NAME] with \
                 source = \"sso\", start_url and sso_region",
                config.display()
            ),
            _ => bail!(
                "several sso identities are configured ({}): pass --identity",
                list(&ssos)
            ),
        },
    }
}

fn list(v: &[&String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// The roles to write, by key, and notes for the user.
#[derive(Debug, Default)]
pub struct Plan {
    pub roles: BTreeMap<String, SsoRole>,
    pub notes: Vec<String>,
}

/// `s` made safe for a name: characters outside the rule become `-`, runs
/// of them one, and none leads or trails.
fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '-'
        };
        if !c.is_ascii_alphanumeric() && out.ends_with(|p: char| !p.is_ascii_alphanumeric()) {
            continue;
        }
        out.push(c);
    }
    out.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// `parts` joined with `-` within [`names::NAME_MAX`]: the first part (the
/// account name) is shortened first, then the last (the role name).
fn join(parts: &[String]) -> String {
    let mut parts: Vec<String> = parts.iter().filter(|p| !p.is_empty()).cloned().collect();
    let total = |p: &[String]| p.iter().map(String::len).sum::<usize>() + p.len().saturating_sub(1);
    for i in [0, parts.len().saturating_sub(1)] {
        let over = total(&parts).saturating_sub(names::NAME_MAX);
        if over > 0 && i < parts.len() {
            let keep = parts[i].len().saturating_sub(over).max(1);
            parts[i] = safe(&parts[i][..keep]);
        }
    }
    let mut s = parts.join("-");
    s.truncate(names::NAME_MAX);
    safe(&s)
}

/// Whether the config parser accepts `r` as an sso role (12-digit account,
/// IAM role name characters).
fn valid(r: &SsoRole) -> bool {
    pctl_protocol::names::is_account_id(&r.account_id)
        && pctl_protocol::names::is_iam_role_name(&r.role_name)
}

/// Keys for `roles` of `identity`. `elsewhere`: roles defined outside the
/// synced file (key -> its (account, role name) when it is one of this
/// identity's Identity Center roles).
pub fn plan(
    identity: &str,
    roles: &[SsoRole],
    elsewhere: &BTreeMap<String, Option<(String, String)>>,
) -> Plan {
    let mut out = Plan::default();
    let mut sorted: Vec<&SsoRole> = roles.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.account_name, &a.account_id, &a.role_name).cmp(&(
            &b.account_name,
            &b.account_id,
            &b.role_name,
        ))
    });
    sorted.dedup_by(|a, b| a.account_id == b.account_id && a.role_name == b.role_name);
    let mut wanted: Vec<(&SsoRole, String)> = Vec::new();
    for r in sorted {
        if !valid(r) {
            out.notes.push(format!(
                "skipped account {} role {}: not an account ID and role name pctl's config accepts",
                names::shown(&r.account_id),
                names::shown(&r.role_name)
            ));
            continue;
        }
        let by_hand = elsewhere.iter().find(|(_, v)| {
            v.as_ref()
                .is_some_and(|(a, n)| *a == r.account_id && *n == r.role_name)
        });
        if let Some((k, _)) = by_hand {
            out.notes.push(format!(
                "account {} role {} of identity {identity} is already configured as [roles.{k}]",
                r.account_id, r.role_name
            ));
            continue;
        }
        let account = match safe(&r.account_name) {
            a if a.is_empty() => r.account_id.clone(),
            a => a,
        };
        wanted.push((r, join(&[account, safe(&r.role_name)])));
    }
    // Keys that differ only in case clash too: profile names are read by
    // people, and some tools fold case.
    let taken: BTreeSet<String> = elsewhere.keys().map(|k| k.to_ascii_lowercase()).collect();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (_, k) in &wanted {
        *count.entry(k.to_ascii_lowercase()).or_default() += 1;
    }
    let clash: BTreeSet<String> = count
        .into_iter()
        .filter(|(k, n)| *n > 1 || taken.contains(k))
        .map(|(k, _)| k)
        .collect();
    for (r, key) in wanted {
        let mut key = if clash.contains(&key.to_ascii_lowercase()) {
            let account = match safe(&r.account_name) {
                a if a.is_empty() => String::new(),
                a => a,
            };
            join(&[account, r.account_id.clone(), safe(&r.role_name)])
        } else {
            key
        };
        if key.is_empty() {
            key = r.account_id.clone();
        }
        let base = key.clone();
        let mut n = 2;
        let used = |k: &str, out: &Plan| {
            let l = k.to_ascii_lowercase();
            taken.contains(&l) || out.roles.keys().any(|o| o.to_ascii_lowercase() == l)
        };
        while used(&key, &out) || !names::is_name(&key) {
            let suffix = format!("-{n}");
            let mut b = base.clone();
            b.truncate(names::NAME_MAX - suffix.len());
            key = format!("{}{suffix}", safe(&b));
            n += 1;
        }
        out.roles.insert(key, r.clone());
    }
    out
}

/// The include file's text: a header, then one `[roles.KEY]` per role.
pub fn render(identity: &str, roles: &BTreeMap<String, SsoRole>) -> String {
    let mut out = format!(
        "{HEADER} --identity {identity}`: each sync rewrites this file.\n\
         # The IAM Identity Center roles identity {identity} may use: roles only, never a token.\n"
    );
    for (key, r) in roles {
        let _ = write!(
            out,
            "\n[roles.{key}]\nidentity = \"{identity}\"\naccount_id = \"{}\"\nrole_name = \"{}\"\n",
            r.account_id, r.role_name
        );
    }
    out
}

/// The config text with `file` in its top-level `include` list (added when
/// missing); every other byte kept.
pub fn add_include(text: &str, file: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.message().trim().replace('\n', "; "))?;
    match doc.get_mut("include") {
        None => {
            let mut a = toml_edit::Array::new();
            a.push(file);
            // A top-level key: written after the others, before the first table.
            doc.insert("include", toml_edit::value(a));
        }
        Some(item) => {
            let Some(a) = item.as_array_mut() else {
                return Err("include is not a list of files: make it include = [\"...\"]".into());
            };
            if a.iter().any(|v| v.as_str() == Some(file)) {
                return Ok(text.to_string());
            }
            a.push(file);
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, name: &str, role: &str) -> SsoRole {
        SsoRole {
            account_id: id.into(),
            account_name: name.into(),
            role_name: role.into(),
        }
    }

    #[test]
    fn keys_follow_the_name_rule_and_collisions_get_the_account_id() {
        let roles = vec![
            r("123456789012", "platform", "Dev"),
            r("999999999999", "My Account", "Admin+Ops"),
            r("111111111111", "my-account", "Admin+Ops"),
            r("222222222222", "", "ReadOnly"),
            r("333333333333", "-- ö --", "ReadOnly"),
            r("444444444444", &"x".repeat(80), &"R".repeat(60)),
            r("555555555555", "taken", "Role"),
            r("12", "bad", "Role"),
            r("666666666666", "dup", "Role"),
            r("666666666666", "dup", "Role"),
        ];
        let mut elsewhere = BTreeMap::new();
        elsewhere.insert("taken-Role".to_string(), None);
        elsewhere.insert(
            "mine".to_string(),
            Some(("123456789012".to_string(), "Dev".to_string())),
        );
        let p = plan("corp", &roles, &elsewhere);
        let keys: Vec<&str> = p.roles.keys().map(String::as_str).collect();
        for k in &keys {
            assert!(names::is_name(k), "{k}");
        }
        assert!(
            keys.contains(&"My-Account-999999999999-Admin-Ops"),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"my-account-111111111111-Admin-Ops"),
            "{keys:?}"
        );
        assert!(keys.contains(&"222222222222-ReadOnly"), "{keys:?}");
        assert!(keys.contains(&"taken-555555555555-Role"), "{keys:?}");
        assert!(keys.contains(&"dup-Role"), "{keys:?}");
        assert!(!keys.iter().any(|k| k.contains("platform")), "{keys:?}");
        assert_eq!(p.roles.len(), 7, "{keys:?}");
        assert!(
            p.notes.iter().any(|n| n.contains("[roles.mine]")),
            "{:?}",
            p.notes
        );
        assert!(
            p.notes.iter().any(|n| n.contains("\"12\"")),
            "{:?}",
            p.notes
        );
        // the same input gives the same keys
        let again = plan("corp", &roles, &elsewhere);
        assert_eq!(
            again.roles.keys().collect::<Vec<_>>(),
            p.roles.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn include_is_added_once_keeping_every_other_byte() {
        let text = "# mine\nregion = \"us-east-1\"\n\n[identities.corp]\nsource = \"sso\"\n";
        let out = add_include(text, "sso-corp.toml").unwrap();
        assert!(out.contains("include = [\"sso-corp.toml\"]\n"), "{out}");
        assert!(
            out.contains("[identities.corp]\nsource = \"sso\"\n"),
            "{out}"
        );
        assert_eq!(add_include(&out, "sso-corp.toml").unwrap(), out);
        let v: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(v["include"].as_array().unwrap().len(), 1);
        let with = "include = [\"team.toml\"]\nregion = \"x\"\n";
        let out = add_include(with, "sso-corp.toml").unwrap();
        let v: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(v["include"].as_array().unwrap().len(), 2, "{out}");
        assert!(add_include("include = \"x\"\n", "a").is_err());
    }

    #[test]
    fn render_parses_as_an_include_of_roles_only() {
        let p = plan(
            "corp",
            &[r("123456789012", "platform", "Dev")],
            &BTreeMap::new(),
        );
        let text = render("corp", &p.roles);
        assert!(text.starts_with(HEADER));
        let v: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(v.keys().collect::<Vec<_>>(), ["roles"]);
        assert_eq!(
            v["roles"]["platform-Dev"]["account_id"].as_str(),
            Some("123456789012")
        );
    }
}
