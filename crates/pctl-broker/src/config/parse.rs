//! TOML text → [`Config`]: every error names the file, the key and what
//! is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pctl_protocol::names;
use serde::Deserialize;

use super::model::*;
use super::trust::{read_trusted, Refused};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    region: Option<String>,
    #[serde(default)]
    daemon: RawDaemon,
    onepassword: Option<RawOnePassword>,
    /// Further files with roles and clusters only.
    #[serde(default)]
    include: Vec<PathBuf>,
    #[serde(default)]
    identities: BTreeMap<String, RawOnePassword>,
    #[serde(default)]
    roles: BTreeMap<String, RawRole>,
    #[serde(default)]
    clusters: BTreeMap<String, RawCluster>,
    #[serde(default)]
    console: RawConsole,
}

/// `[console]`: how `pctl login` opens the console.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    /// "default" | "firefox-container" | "chromium-profile" | ["cmd", "args..."]
    browser: Option<RawBrowser>,
    /// The browser program for firefox-container / chromium-profile.
    browser_command: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawBrowser {
    Name(String),
    Argv(Vec<String>),
}

fn console(err: &Errors<'_>, raw: RawConsole) -> Result<pctl_protocol::Browser, ConfigError> {
    use pctl_protocol::Browser;
    let command = raw.browser_command;
    if let Some(c) = &command {
        if c.trim().is_empty() || c.chars().any(char::is_control) {
            return Err(err.at(
                "console.browser_command",
                "name the browser program, e.g. \"chromium\" or \"/usr/bin/brave-browser\"",
            ));
        }
    }
    let b = match raw.browser {
        None => Browser::Default,
        Some(RawBrowser::Name(n)) => match n.as_str() {
            "default" => Browser::Default,
            "firefox-container" => Browser::FirefoxContainer { command: command.clone() },
            "chromium-profile" => Browser::ChromiumProfile { command: command.clone() },
            other => {
                return Err(err.at(
                    "console.browser",
                    format!(
                        "{} is not a browser mode: use \"default\", \"firefox-container\", \"chromium-profile\" or a command as a list, e.g. [\"firefox\", \"--new-window\"]",
                        names::shown(other)
                    ),
                ))
            }
        },
        Some(RawBrowser::Argv(argv)) => {
            if argv.first().is_none_or(|a| a.trim().is_empty()) {
                return Err(err.at(
                    "console.browser",
                    "the command is empty: give the program first, e.g. [\"firefox\", \"--new-window\"]",
                ));
            }
            Browser::Command { argv }
        }
    };
    if command.is_some()
        && !matches!(
            b,
            Browser::FirefoxContainer { .. } | Browser::ChromiumProfile { .. }
        )
    {
        return Err(err.at(
            "console.browser_command",
            "goes with browser = \"firefox-container\" or \"chromium-profile\": remove it or set browser",
        ));
    }
    Ok(b)
}

/// An included file: roles and clusters only. Nothing in it can name a
/// program to run, an item to read or a daemon setting ([`INCLUDE_KEYS`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInclude {
    #[serde(default)]
    roles: BTreeMap<String, RawRole>,
    #[serde(default)]
    clusters: BTreeMap<String, RawCluster>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    idle_lock: Option<String>,
    max_unlock: Option<String>,
    op_timeout: Option<String>,
    mfa_session: Option<String>,
    /// The pinentry program for users without a terminal (absolute path).
    pinentry: Option<PathBuf>,
    /// "auto" | "always" | "never": an SSO sign-in's pinentry window.
    sso_pinentry: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOnePassword {
    #[serde(default)]
    item: String,
    #[serde(default)]
    vault: String,
    account: Option<String>,
    /// Absolute path of `op`; `command` is its former name.
    #[serde(alias = "command")]
    op_path: Option<PathBuf>,
    #[serde(default)]
    fields: FieldLabels,
    /// Where the MFA code comes from: "item" (default), "prompt", "process".
    mfa: Option<String>,
    /// With mfa = "process": the command printing the code (argv, no shell).
    mfa_command: Option<Vec<String>>,
    /// "onepassword" (default) or "sso" (IAM Identity Center).
    source: Option<String>,
    /// source = "sso": the AWS access portal URL,
    start_url: Option<String>,
    /// its region,
    sso_region: Option<String>,
    /// and the scopes to register with (default ["sso:account:access"]).
    registration_scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    identity: Option<String>,
    name: Option<String>,
    arn: Option<String>,
    duration: Option<String>,
    session_name: Option<String>,
    /// An `sso` identity's role: the account,
    account_id: Option<String>,
    /// and the permission set's role name.
    role_name: Option<String>,
    /// Assume this role from another role's session (AWS config's source_profile).
    source_role: Option<String>,
    /// Sent as ExternalId with AssumeRole.
    external_id: Option<String>,
    /// The role's own region (credentials, STS, EKS tokens).
    region: Option<String>,
    /// Sent as SourceIdentity with AssumeRole.
    source_identity: Option<String>,
    /// Session tags.
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// Tag keys that pass on to chained roles.
    #[serde(default)]
    transitive_tags: Vec<String>,
    /// Each new session needs the user's yes.
    #[serde(default)]
    confirm: bool,
    /// Only these programs may get the role's credentials.
    allowed_programs: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    name: Option<String>,
    role: String,
    region: Option<String>,
}

/// The only top-level keys an included file may have.
pub const INCLUDE_KEYS: [&str; 2] = ["roles", "clusters"];

impl Config {
    /// Reads and validates the file (and its includes): each must be
    /// yours or root's and writable only by its owner ([`super::trust`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (text, _) = read_trusted(path).map_err(|e| match e {
            Refused::NotFound => {
                ConfigError(format!("no config at {}: run pctl init", path.display()))
            }
            Refused::Unreadable(e) => {
                ConfigError(format!("config {}: cannot read: {e}", path.display()))
            }
            Refused::Untrusted(why) => ConfigError(format!("config {}: {why}", path.display())),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates TOML text; `path` is only used in messages and
    /// to find included files (relative to its directory).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let raw: RawConfig = toml_in(&file, text)?;
        let err = Errors { file: &file };
        let region = raw
            .region
            .ok_or_else(|| err.at("region", "missing: set e.g. region = \"us-east-1\""))?;
        names::check_region(&region).map_err(|w| err.at("region", w))?;
        let daemon = daemon(&err, raw.daemon)?;
        let browser = console(&err, raw.console)?;
        let mut defs = Definitions::default();
        if let Some(op) = raw.onepassword {
            defs.add_identity(DEFAULT_IDENTITY, op, &file, "onepassword")?;
        }
        defs.add(&file, raw.identities, raw.roles, raw.clusters)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut includes = Vec::new();
        for inc in raw.include {
            let p = if inc.is_absolute() {
                inc
            } else {
                dir.join(inc)
            };
            let name = p.display().to_string();
            let text = match read_trusted(&p) {
                Ok((text, _)) => text,
                Err(Refused::NotFound) => {
                    return Err(err.at(
                        "include",
                        format!("cannot read \"{name}\": no such file: fix the path or remove it from include"),
                    ))
                }
                Err(Refused::Unreadable(e)) => {
                    return Err(err.at(
                        "include",
                        format!("cannot read \"{name}\": {e}: fix the path or remove it from include"),
                    ))
                }
                Err(Refused::Untrusted(why)) => return Err(err.at("include", why)),
            };
            let keys: toml::Table = toml_in(&name, &text)?;
            if let Some(k) = keys.keys().find(|k| !INCLUDE_KEYS.contains(&k.as_str())) {
                return Err(ConfigError(format!(
                    "config {name}: {k}: not allowed in an included file: an include may \
                     define [roles] and [clusters] only (identities, onepassword, op_path, \
                     mfa, mfa_command, region, daemon settings and include belong in {file}, \
                     which only you can write): move it there or remove it",
                    k = names::shown(k)
                )));
            }
            let r: RawInclude = toml_in(&name, &text)?;
            defs.add(&name, BTreeMap::new(), r.roles, r.clusters)?;
            includes.push(p);
        }
        let identities = identities(defs.identities)?;
        let Some(default) = identities
            .get(DEFAULT_IDENTITY)
            .or_else(|| identities.values().next())
        else {
            return Err(err.at(
                "onepassword",
                "missing: add [onepassword] with item = \"...\" and vault = \"...\" \
                 (or [identities.NAME] tables)",
            ));
        };
        let onepassword = default.onepassword.clone();
        let roles = roles(defs.roles, &identities)?;
        let clusters = clusters(defs.clusters, &roles, &region)?;
        Ok(Config {
            path: path.to_path_buf(),
            region,
            daemon,
            onepassword,
            identities,
            roles,
            clusters,
            includes,
            browser,
        })
    }
}

fn toml_in<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            })
            .unwrap_or_default();
        ConfigError(format!("config {file}{at}: {msg}"))
    })
}

/// Definitions gathered from the config and its includes, each with the
/// file (and key) that defined it.
#[derive(Default)]
struct Definitions {
    identities: BTreeMap<String, (String, String, RawOnePassword)>,
    roles: BTreeMap<String, (String, RawRole)>,
    clusters: BTreeMap<String, (String, RawCluster)>,
}

fn twice(kind: &str, key: &str, first: &str, second: &str) -> ConfigError {
    ConfigError(format!(
        "config {second}: {kind}.{key}: already defined in {first}: keep one definition"
    ))
}

impl Definitions {
    fn add_identity(
        &mut self,
        name: &str,
        raw: RawOnePassword,
        file: &str,
        key: &str,
    ) -> Result<(), ConfigError> {
        if let Some((f, k, _)) = self.identities.get(name) {
            return Err(ConfigError(format!(
                "config {file}: {key}: identity \"{name}\" is already defined by {k} in {f}: \
                 keep one definition"
            )));
        }
        self.identities
            .insert(name.to_string(), (file.to_string(), key.to_string(), raw));
        Ok(())
    }

    fn add(
        &mut self,
        file: &str,
        identities: BTreeMap<String, RawOnePassword>,
        roles: BTreeMap<String, RawRole>,
        clusters: BTreeMap<String, RawCluster>,
    ) -> Result<(), ConfigError> {
        let named = |kind: &str, what: &str, name: &str| {
            names::check_name(what, name)
                .map_err(|e| ConfigError(format!("config {file}: {kind}: {e}")))
        };
        for (name, raw) in identities {
            named("identities", "identity", &name)?;
            let key = format!("identities.{name}");
            self.add_identity(&name, raw, file, &key)?;
        }
        for (key, r) in roles {
            named("roles", "role", &key)?;
            if let Some((f, _)) = self.roles.get(&key) {
                return Err(twice("roles", &key, f, file));
            }
            self.roles.insert(key, (file.to_string(), r));
        }
        for (key, c) in clusters {
            named("clusters", "cluster", &key)?;
            if let Some((f, _)) = self.clusters.get(&key) {
                return Err(twice("clusters", &key, f, file));
            }
            self.clusters.insert(key, (file.to_string(), c));
        }
        Ok(())
    }
}

/// Builds errors that name the file and the key.
struct Errors<'a> {
    file: &'a str,
}

impl Errors<'_> {
    fn at(&self, key: &str, what: impl Into<String>) -> ConfigError {
        ConfigError(format!("config {}: {key}: {}", self.file, what.into()))
    }

    fn duration(
        &self,
        key: &str,
        v: Option<String>,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        let s = v.unwrap_or_else(|| default.to_string());
        humantime::parse_duration(&s).map_err(|_| {
            self.at(
                key,
                format!("\"{s}\" is not a duration: use e.g. \"15m\", \"1h\", \"12h\""),
            )
        })
    }
}

fn daemon(err: &Errors<'_>, raw: RawDaemon) -> Result<DaemonConfig, ConfigError> {
    let daemon = DaemonConfig {
        idle_lock: err.duration("daemon.idle_lock", raw.idle_lock, "1h")?,
        max_unlock: err.duration("daemon.max_unlock", raw.max_unlock, "12h")?,
        op_timeout: err.duration("daemon.op_timeout", raw.op_timeout, "2m")?,
        mfa_session: err.duration("daemon.mfa_session", raw.mfa_session, "12h")?,
        pinentry: raw.pinentry,
        sso_pinentry: match raw.sso_pinentry.as_deref() {
            None | Some("auto") => SsoPinentry::Auto,
            Some("always") => SsoPinentry::Always,
            Some("never") => SsoPinentry::Never,
            Some(other) => {
                return Err(err.at(
                    "daemon.sso_pinentry",
                    format!("\"{other}\" is not one of \"auto\", \"always\", \"never\""),
                ))
            }
        },
    };
    if let Some(p) = &daemon.pinentry {
        if !p.is_absolute() {
            return Err(err.at(
                "daemon.pinentry",
                format!(
                    "\"{}\" is not an absolute path: name the program in full, e.g. \"/usr/bin/pinentry-gnome3\"",
                    p.display()
                ),
            ));
        }
    }
    if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&daemon.op_timeout) {
        return Err(err.at(
            "daemon.op_timeout",
            "must be between 1s and 10m (time to answer the 1Password prompt)",
        ));
    }
    if daemon.idle_lock < Duration::from_secs(1) || daemon.max_unlock < Duration::from_secs(1) {
        return Err(err.at("daemon", "idle_lock and max_unlock must be at least 1s"));
    }
    if !(Duration::from_secs(900)..=Duration::from_secs(36 * 3600)).contains(&daemon.mfa_session) {
        return Err(err.at(
            "daemon.mfa_session",
            "must be between 15m and 36h (STS GetSessionToken limits)",
        ));
    }
    if daemon.max_unlock > daemon.mfa_session {
        return Err(err.at(
            "daemon.max_unlock",
            format!(
                "{} is longer than daemon.mfa_session ({}): the MFA session would expire \
                 while unlocked; lower max_unlock or raise mfa_session",
                humantime::format_duration(daemon.max_unlock),
                humantime::format_duration(daemon.mfa_session)
            ),
        ));
    }
    Ok(daemon)
}

fn identities(
    raw: BTreeMap<String, (String, String, RawOnePassword)>,
) -> Result<BTreeMap<String, IdentityConfig>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, (file, key, op)) in raw {
        let err = Errors { file: &file };
        if let Some(ident) = sso_identity(&err, &key, &name, &file, &op)? {
            out.insert(name, ident);
            continue;
        }
        if op.item.trim().is_empty() {
            return Err(err.at(&format!("{key}.item"), "must not be empty"));
        }
        if op.vault.trim().is_empty() {
            return Err(err.at(&format!("{key}.vault"), "must not be empty"));
        }
        if let Some(p) = &op.op_path {
            if !p.is_absolute() {
                return Err(err.at(
                    &format!("{key}.op_path"),
                    format!(
                        "\"{}\" is not an absolute path: give the full path of `op` (e.g. \"/usr/local/bin/op\")",
                        p.display()
                    ),
                ));
            }
        }
        let mfa = match (op.mfa.as_deref(), op.mfa_command) {
            (None | Some("item"), None) => MfaMode::Item,
            (Some("prompt"), None) => MfaMode::Prompt,
            (Some("process"), Some(argv)) if argv.first().is_some_and(|a| !a.is_empty()) => {
                let program = &argv[0];
                if program.contains('/') && !program.starts_with('/') {
                    return Err(err.at(
                        &format!("{key}.mfa_command"),
                        format!(
                            "{} is a relative path: give the program's absolute path, or a bare \
                             name found on your PATH like `op`",
                            names::shown(program)
                        ),
                    ));
                }
                MfaMode::Process(argv)
            }
            (Some("process"), _) => {
                return Err(err.at(
                    &format!("{key}.mfa_command"),
                    "mfa = \"process\" needs mfa_command = [\"program\", \"arg\", ...] \
                     (run without a shell; it prints the 6-digit code)",
                ))
            }
            (None | Some("item" | "prompt"), Some(_)) => {
                return Err(err.at(
                    &format!("{key}.mfa_command"),
                    "only used with mfa = \"process\": remove it or set mfa = \"process\"",
                ))
            }
            (Some(other), _) => {
                return Err(err.at(
                    &format!("{key}.mfa"),
                    format!(
                        "\"{other}\" is not an MFA source: use \"item\", \"prompt\" or \"process\""
                    ),
                ))
            }
        };
        out.insert(
            name.clone(),
            IdentityConfig {
                name,
                onepassword: OnePasswordConfig {
                    item: op.item,
                    vault: op.vault,
                    account: op.account,
                    command: op.op_path,
                    fields: op.fields,
                    read_otp: mfa == MfaMode::Item,
                },
                mfa,
                file,
                sso: None,
            },
        );
    }
    Ok(out)
}

/// `source = "sso"`: an IAM Identity Center identity (`None`: a 1Password one).
fn sso_identity(
    err: &Errors,
    key: &str,
    name: &str,
    file: &str,
    op: &RawOnePassword,
) -> Result<Option<IdentityConfig>, ConfigError> {
    let sso_keys =
        op.start_url.is_some() || op.sso_region.is_some() || op.registration_scopes.is_some();
    match op.source.as_deref() {
        None | Some("onepassword") if !sso_keys => return Ok(None),
        None | Some("onepassword") => {
            return Err(err.at(
                key,
                "start_url, sso_region and registration_scopes are for source = \"sso\": add it or remove them",
            ))
        }
        Some("sso") => {}
        Some(other) => {
            return Err(err.at(
                &format!("{key}.source"),
                format!("\"{other}\" is not a source: use \"onepassword\" (default) or \"sso\""),
            ))
        }
    }
    if !op.item.is_empty()
        || !op.vault.is_empty()
        || op.mfa.is_some()
        || op.mfa_command.is_some()
        || op.op_path.is_some()
    {
        return Err(err.at(
            key,
            "source = \"sso\" takes start_url, sso_region and registration_scopes: remove item, vault, op_path and mfa",
        ));
    }
    let start_url = op.start_url.clone().unwrap_or_default();
    if !(start_url.starts_with("https://") || start_url.starts_with("http://"))
        || start_url.chars().any(char::is_whitespace)
    {
        return Err(err.at(
            &format!("{key}.start_url"),
            "missing or not a URL: set the AWS access portal URL, e.g. \"https://example.awsapps.com/start\"",
        ));
    }
    let region = op.sso_region.clone().unwrap_or_default();
    names::check_region(&region).map_err(|w| err.at(&format!("{key}.sso_region"), w))?;
    let scopes = op
        .registration_scopes
        .clone()
        .unwrap_or_else(|| vec!["sso:account:access".into()]);
    if scopes
        .iter()
        .any(|s| s.is_empty() || s.chars().any(char::is_whitespace))
    {
        return Err(err.at(
            &format!("{key}.registration_scopes"),
            "scopes are non-empty words, e.g. [\"sso:account:access\"]",
        ));
    }
    Ok(Some(IdentityConfig {
        name: name.to_string(),
        onepassword: OnePasswordConfig {
            item: String::new(),
            vault: String::new(),
            account: None,
            command: None,
            fields: FieldLabels::default(),
            read_otp: false,
        },
        mfa: MfaMode::Item,
        file: file.to_string(),
        sso: Some(SsoConfig {
            start_url,
            region,
            scopes,
        }),
    }))
}

/// An `sso` identity's role: `account_id` and `role_name`, nothing else.
fn sso_role(
    err: &Errors,
    k: &str,
    r: &RawRole,
    identity: &IdentityConfig,
) -> Result<Option<SsoRoleConfig>, ConfigError> {
    let given = r.account_id.is_some() || r.role_name.is_some();
    if identity.sso.is_none() {
        if given {
            return Err(err.at(
                k,
                format!("account_id and role_name are for roles of an sso identity; identity \"{}\" reads 1Password: use name or arn", identity.name),
            ));
        }
        return Ok(None);
    }
    if r.name.is_some() || r.arn.is_some() {
        return Err(err.at(
            k,
            format!("identity \"{}\" signs in with IAM Identity Center: give account_id and role_name (the permission set), not name or arn", identity.name),
        ));
    }
    let account_id = r.account_id.clone().unwrap_or_default();
    if !names::is_account_id(&account_id) {
        return Err(err.at(
            &format!("{k}.account_id"),
            "missing or not a 12-digit AWS account ID",
        ));
    }
    let role_name = r.role_name.clone().unwrap_or_default();
    if !names::is_iam_role_name(&role_name) {
        return Err(err.at(
            &format!("{k}.role_name"),
            "missing or not a role name (the permission set's name, e.g. \"AdministratorAccess\")",
        ));
    }
    Ok(Some(SsoRoleConfig {
        account_id,
        role_name,
    }))
}

/// Gives each chained role (`source_role`) the identity at the root of its
/// chain; an unknown source or a cycle is refused, naming the chain.
fn resolve_chains(roles: &mut BTreeMap<String, RoleConfig>) -> Result<(), ConfigError> {
    let keys: Vec<String> = roles
        .iter()
        .filter(|(_, r)| r.source_role.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    for key in keys {
        let mut chain = vec![key.clone()];
        let mut cur = roles[&key].source_role.clone();
        let identity = loop {
            let Some(src) = cur else {
                unreachable!("chained roles have a source")
            };
            let Some(r) = roles.get(&src) else {
                let file = &roles[&key].file;
                return Err(ConfigError(format!(
                    "config {file}: roles.{}.source_role: no role \"{src}\" (configured: {})",
                    chain.last().map(String::as_str).unwrap_or_default(),
                    roles.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            };
            if chain.contains(&src) || chain.len() > roles.len() {
                chain.push(src);
                return Err(ConfigError(format!(
                    "config {}: roles.{key}.source_role: the chain {} is a cycle: end it at a role with an identity",
                    roles[&key].file,
                    chain.join(" -> ")
                )));
            }
            chain.push(src.clone());
            match &r.source_role {
                Some(next) => cur = Some(next.clone()),
                None => break r.identity.clone(),
            }
        };
        if let Some(r) = roles.get_mut(&key) {
            r.identity = identity;
        }
    }
    Ok(())
}

fn roles(
    raw: BTreeMap<String, (String, RawRole)>,
    identities: &BTreeMap<String, IdentityConfig>,
) -> Result<BTreeMap<String, RoleConfig>, ConfigError> {
    let mut roles = BTreeMap::new();
    for (key, (file, r)) in raw {
        let err = &Errors { file: &file };
        let k = format!("roles.{key}");
        let known = || identities.keys().cloned().collect::<Vec<_>>().join(", ");
        let chained = r.source_role.is_some();
        let identity = match r.identity.clone() {
            // a chained role's identity is its source's (resolved below)
            _ if chained => String::new(),
            Some(i) if identities.contains_key(&i) => i,
            Some(i) => {
                return Err(err.at(
                    &format!("{k}.identity"),
                    format!("no identity \"{i}\" (configured: {})", known()),
                ))
            }
            None if identities.contains_key(DEFAULT_IDENTITY) => DEFAULT_IDENTITY.to_string(),
            None if identities.len() == 1 => identities.keys().next().cloned().unwrap_or_default(),
            None => {
                return Err(err.at(
                    &format!("{k}.identity"),
                    format!(
                        "missing: several identities are configured ({}): name one",
                        known()
                    ),
                ))
            }
        };
        let sso = if chained {
            if r.arn.is_none()
                || r.name.is_some()
                || r.account_id.is_some()
                || r.role_name.is_some()
                || r.identity.is_some()
            {
                return Err(err.at(
                    &k,
                    "a role with source_role needs arn = \"arn:aws:iam::ACCOUNT:role/NAME\" \
                     (and no name, identity, account_id or role_name: it uses its source's identity)",
                ));
            }
            None
        } else {
            sso_role(err, &k, &r, &identities[&identity])?
        };
        if sso.is_some()
            && (r.external_id.is_some() || r.source_identity.is_some() || !r.tags.is_empty())
        {
            return Err(err.at(
                &k,
                "external_id, source_identity and tags go with AssumeRole; an IAM Identity Center role gets its session from GetRoleCredentials: chain a role from it (source_role) to use them",
            ));
        }
        if let Some(region) = &r.region {
            names::check_region(region).map_err(|w| err.at(&format!("{k}.region"), w))?;
        }
        if let Some(s) = &r.source_identity {
            if !names::is_session_name(s) {
                return Err(err.at(&format!("{k}.source_identity"), names::SESSION_NAME_RULE));
            }
        }
        if r.tags.len() > 50 {
            return Err(err.at(&format!("{k}.tags"), "at most 50 session tags"));
        }
        for (tk, tv) in &r.tags {
            if tk.is_empty() || tk.len() > 128 || tv.len() > 256 || tk.starts_with("aws:") {
                return Err(err.at(
                    &format!("{k}.tags"),
                    format!(
                        "tag {:?}: keys are 1-128 characters (not aws:...), values at most 256",
                        names::shown(tk)
                    ),
                ));
            }
        }
        if let Some(t) = r.transitive_tags.iter().find(|t| !r.tags.contains_key(*t)) {
            return Err(err.at(
                &format!("{k}.transitive_tags"),
                format!("{:?} is not a key of tags", names::shown(t)),
            ));
        }
        if let Some(x) = &r.external_id {
            if x.len() < 2
                || x.len() > 1224
                || x.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(err.at(&format!("{k}.external_id"), "2-1224 characters, no spaces"));
            }
        }
        match (&r.name, &r.arn) {
            _ if sso.is_some() => {}
            (None, None) => {
                return Err(err.at(
                    &k,
                    "needs name = \"role-name\" (ARN built from the account ID in 1Password) \
                     or arn = \"arn:aws:iam::...:role/...\"",
                ))
            }
            (Some(_), Some(_)) => return Err(err.at(&k, "set either name or arn, not both")),
            (None, Some(arn)) if !names::is_role_arn(arn) => {
                return Err(err.at(
                    &format!("{k}.arn"),
                    names::check_role_arn(arn).err().unwrap_or_default(),
                ))
            }
            (Some(name), None) if !names::is_role_name(name) => {
                return Err(err.at(
                    &format!("{k}.name"),
                    format!(
                        "{} is not a role name: use the name only, or set arn",
                        names::shown(name)
                    ),
                ))
            }
            _ => {}
        }
        let duration = err.duration(&format!("{k}.duration"), r.duration, "1h")?;
        if chained && duration > Duration::from_secs(3600) {
            return Err(err.at(
                &format!("{k}.duration"),
                "a chained role (source_role) gets at most 1h: AWS caps role chaining at one hour",
            ));
        }
        if !(Duration::from_secs(900)..=Duration::from_secs(12 * 3600)).contains(&duration) {
            return Err(err.at(
                &format!("{k}.duration"),
                "must be between 15m and 12h (STS AssumeRole limits)",
            ));
        }
        let allowed_programs = match r.allowed_programs {
            None => Vec::new(),
            Some(v) if v.is_empty() => {
                return Err(err.at(
                    &format!("{k}.allowed_programs"),
                    "is empty, so no program could use the role: name at least one (e.g. [\"terraform\"]) or remove the key",
                ))
            }
            Some(v) => {
                if let Some(bad) = v.iter().find(|p| !is_program_pattern(p)) {
                    return Err(err.at(
                        &format!("{k}.allowed_programs"),
                        format!(
                            "{} is not a program name: give the executable's file name (no '/'), optionally ending in '*'",
                            names::shown(bad)
                        ),
                    ));
                }
                v
            }
        };
        let session_name = r.session_name.clone();
        if let Some(n) = &session_name {
            if !names::is_session_name(n) {
                return Err(err.at(
                    &format!("{k}.session_name"),
                    format!(
                        "is not a role session name: use {}",
                        names::SESSION_NAME_RULE
                    ),
                ));
            }
        }
        roles.insert(
            key.clone(),
            RoleConfig {
                key,
                identity,
                file: file.clone(),
                name: r.name,
                arn: r.arn,
                duration,
                session_name,
                sso,
                source_role: r.source_role.clone(),
                external_id: r.external_id.clone(),
                region: r.region.clone(),
                source_identity: r.source_identity.clone(),
                tags: r.tags.clone(),
                transitive_tags: r.transitive_tags.clone(),
                confirm: r.confirm,
                allowed_programs,
            },
        );
    }
    resolve_chains(&mut roles)?;
    Ok(roles)
}

fn clusters(
    raw: BTreeMap<String, (String, RawCluster)>,
    roles: &BTreeMap<String, RoleConfig>,
    default_region: &str,
) -> Result<BTreeMap<String, ClusterConfig>, ConfigError> {
    let mut clusters = BTreeMap::new();
    for (key, (file, c)) in raw {
        let err = &Errors { file: &file };
        let k = format!("clusters.{key}");
        let Some(role) = roles.get(&c.role) else {
            let known: Vec<_> = roles.keys().map(String::as_str).collect();
            return Err(err.at(
                &format!("{k}.role"),
                format!(
                    "no role \"{}\" in [roles] (configured: {})",
                    c.role,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        if role.duration < Duration::from_secs(30 * 60) {
            return Err(err.at(
                &format!("{k}.role"),
                format!(
                    "role \"{}\" has duration {}: EKS tokens need sessions of at least 30m",
                    c.role,
                    humantime::format_duration(role.duration)
                ),
            ));
        }
        let region = c.region.unwrap_or_else(|| default_region.to_string());
        names::check_region(&region).map_err(|w| err.at(&format!("{k}.region"), w))?;
        let name = c.name.unwrap_or_else(|| key.clone());
        names::check_eks_cluster_name(&name).map_err(|w| err.at(&format!("{k}.name"), w))?;
        clusters.insert(
            key.clone(),
            ClusterConfig {
                name,
                key,
                role: c.role,
                region,
            },
        );
    }
    Ok(clusters)
}

/// A valid `allowed_programs` entry: a file name (no `/`, no control
/// character), with at most a trailing `*` ([`crate::guard`] matches it).
fn is_program_pattern(p: &str) -> bool {
    let body = p.strip_suffix('*').unwrap_or(p);
    !body.is_empty() && !p.contains('/') && !body.contains('*') && !p.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_patterns() {
        assert!(is_program_pattern("terraform"));
        assert!(is_program_pattern("terraform-provider-aws*"));
        assert!(!is_program_pattern("/usr/bin/aws"));
        assert!(!is_program_pattern("*"));
        assert!(!is_program_pattern("a*b"));
        assert!(!is_program_pattern(""));
        assert!(!is_program_pattern("a\nb"));
    }

    /// The standard test config, shared with the pytest rig and the sandbox.
    pub(super) const GOOD: &str = include_str!("../../../../tests/fixtures/pctl.toml");

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/cfg/config.toml"), s)
    }

    impl Config {
        /// Writes `text` to `path` (mode 0600) and loads it.
        fn load_with(path: &Path, text: &str) -> Result<Config, ConfigError> {
            std::fs::write(path, text).unwrap();
            chmod(path, 0o600);
            Config::load(path)
        }
    }

    #[test]
    fn sso_pinentry_is_auto_always_or_never() {
        assert_eq!(parse(GOOD).unwrap().daemon.sso_pinentry, SsoPinentry::Auto);
        let with = |v: &str| {
            parse(&GOOD.replace("[daemon]\n", &format!("[daemon]\nsso_pinentry = \"{v}\"\n")))
        };
        assert_eq!(
            with("always").unwrap().daemon.sso_pinentry,
            SsoPinentry::Always
        );
        assert_eq!(
            with("never").unwrap().daemon.sso_pinentry,
            SsoPinentry::Never
        );
        let e = with("sometimes").unwrap_err().0;
        assert!(
            e.contains("daemon.sso_pinentry") && e.contains("\"always\"") && !e.contains('\n'),
            "{e}"
        );
    }

    #[test]
    fn issue_example_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(
            c.roles["admin"].arn("ACCT"),
            "arn:aws:iam::ACCT:role/platform-admin"
        );
        assert_eq!(c.clusters["platform"].name, "platform");
        assert_eq!(c.onepassword.fields.secret_access_key, "Secret Access Key");
        assert_eq!(c.roles["admin"].duration, Duration::from_secs(3600));
    }

    #[test]
    fn errors_name_file_key_and_problem() {
        let e = parse(&GOOD.replace("\"1h\"", "\"1x\"")).unwrap_err().0;
        assert!(
            e.contains("/cfg/config.toml")
                && e.contains("roles.admin.duration")
                && e.contains("\"1x\""),
            "{e}"
        );
        let e = parse(&GOOD.replace("role = \"admin\"", "role = \"nope\""))
            .unwrap_err()
            .0;
        assert!(
            e.contains("clusters.platform.role") && e.contains("nope") && e.contains("admin"),
            "{e}"
        );
        let e = parse(&GOOD.replace("vault = ", "vualt = ")).unwrap_err().0;
        assert!(
            e.contains("/cfg/config.toml") && e.contains("vualt") && e.contains("line"),
            "{e}"
        );
        let e = parse(&GOOD.replace("region = \"us-east-1\"", ""))
            .unwrap_err()
            .0;
        assert!(e.contains("region") && e.contains("missing"), "{e}");
    }

    #[test]
    fn role_with_path_and_explicit_arn() {
        let c = parse(&GOOD.replace("name = \"platform-admin\"", "name = \"ops/admin\"")).unwrap();
        assert_eq!(c.roles["admin"].arn("1"), "arn:aws:iam::1:role/ops/admin");
        let c = parse(&GOOD.replace(
            "name = \"platform-admin\"",
            "arn = \"arn:aws:iam::ACCT:role/x\"",
        ))
        .unwrap();
        assert_eq!(c.roles["admin"].arn("other"), "arn:aws:iam::ACCT:role/x");
    }

    #[test]
    fn op_path_is_absolute_and_command_is_its_old_name() {
        let with = |line: &str| {
            parse(&GOOD.replace("[onepassword]\n", &format!("[onepassword]\n{line}\n")))
        };
        let c = with("op_path = \"/opt/1p/op\"").unwrap();
        assert_eq!(
            c.onepassword.command.as_deref(),
            Some(Path::new("/opt/1p/op"))
        );
        let c = with("command = \"/opt/1p/op\"").unwrap();
        assert_eq!(
            c.onepassword.command.as_deref(),
            Some(Path::new("/opt/1p/op"))
        );
        let e = with("op_path = \"bin/op\"").unwrap_err().0;
        assert!(
            e.contains("onepassword.op_path") && e.contains("absolute"),
            "{e}"
        );
    }

    #[test]
    fn onepassword_is_the_default_identity() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.roles["admin"].identity, DEFAULT_IDENTITY);
        assert_eq!(
            c.identities[DEFAULT_IDENTITY].onepassword.item,
            "AWS user key"
        );
        assert_eq!(c.identities[DEFAULT_IDENTITY].mfa, MfaMode::Item);
        assert_eq!(c.roles["admin"].file, "/cfg/config.toml");
    }

    /// The standard test config with two identities, shared with the pytest rig.
    const TWO: &str = include_str!("../../../../tests/fixtures/pctl-identities.toml");

    #[test]
    fn identities_and_roles_naming_them() {
        let c = parse(TWO).unwrap();
        assert_eq!(c.roles["play"].identity, "sandbox");
        assert_eq!(
            c.identities["sandbox"].onepassword.account.as_deref(),
            Some("my.1password.com")
        );
        let e = parse(&TWO.replace("identity = \"sandbox\"", "identity = \"sbx\""))
            .unwrap_err()
            .0;
        assert!(
            e.contains("roles.play.identity") && e.contains("sbx") && e.contains("sandbox, work"),
            "{e}"
        );
        let e = parse(&TWO.replace("identity = \"sandbox\"\n", ""))
            .unwrap_err()
            .0;
        assert!(
            e.contains("roles.play.identity") && e.contains("several"),
            "{e}"
        );
        let e = parse(&format!(
            "{GOOD}\n[identities.default]\nitem = \"x\"\nvault = \"v\"\n"
        ))
        .unwrap_err()
        .0;
        assert!(
            e.contains("identities.default") && e.contains("onepassword"),
            "{e}"
        );
        let e = parse(&TWO.replace("account = ", "mfa = \"sms\"\naccount = "))
            .unwrap_err()
            .0;
        assert!(
            e.contains("identities.sandbox.mfa") && e.contains("sms"),
            "{e}"
        );
        let with = |lines: &str| parse(&TWO.replace("account = ", &format!("{lines}\naccount = ")));
        let c = with("mfa = \"prompt\"").unwrap();
        assert_eq!(c.identities["sandbox"].mfa, MfaMode::Prompt);
        assert!(!c.identities["sandbox"].onepassword.read_otp);
        assert!(c.identities["work"].onepassword.read_otp);
        let c = with("mfa = \"process\"\nmfa_command = [\"ykman\", \"oath\", \"accounts\", \"code\", \"-s\", \"AWS\"]").unwrap();
        assert_eq!(
            c.identities["sandbox"].mfa,
            MfaMode::Process(
                ["ykman", "oath", "accounts", "code", "-s", "AWS"]
                    .map(String::from)
                    .to_vec()
            )
        );
        let e = with("mfa = \"process\"").unwrap_err().0;
        assert!(e.contains("identities.sandbox.mfa_command"), "{e}");
        let e = with("mfa = \"process\"\nmfa_command = \"ykman oath\"")
            .unwrap_err()
            .0;
        // mfa_command stands one line below where `account` stood (1-based: + 2)
        let line = TWO
            .lines()
            .position(|l| l.starts_with("account = "))
            .unwrap()
            + 2;
        assert!(
            e.contains(&format!("line {line})")) && e.contains("sequence"),
            "{e}"
        );
        let e = with("mfa_command = [\"x\"]").unwrap_err().0;
        assert!(e.contains("only used with mfa"), "{e}");
        let e = with("mfa = \"process\"\nmfa_command = [\"bin/ykman\"]")
            .unwrap_err()
            .0;
        assert!(
            e.contains("identities.sandbox.mfa_command") && e.contains("relative path"),
            "{e}"
        );
    }

    #[test]
    fn includes_add_definitions_and_a_key_twice_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let team = dir.path().join("team.toml");
        std::fs::write(
            &team,
            "[roles.viewer]\nidentity = \"work\"\nname = \"viewer\"\n[clusters.prod]\nrole = \"viewer\"\n",
        )
        .unwrap();
        let main = dir.path().join("config.toml");
        let text = format!("include = [\"team.toml\"]\n{TWO}");
        let c = Config::parse(&main, &text).unwrap();
        assert_eq!(c.roles["viewer"].file, team.display().to_string());
        assert_eq!(c.roles["admin"].file, main.display().to_string());
        assert_eq!(c.clusters["prod"].role, "viewer");
        assert_eq!(c.includes, vec![team.clone()]);
        std::fs::write(
            &team,
            "[roles.admin]\nidentity = \"work\"\nname = \"other\"\n",
        )
        .unwrap();
        let e = Config::parse(&main, &text).unwrap_err().0;
        assert!(
            e.contains("roles.admin")
                && e.contains(&team.display().to_string())
                && e.contains(&main.display().to_string()),
            "{e}"
        );
        // secrets and daemon settings are not accepted from an included file
        std::fs::write(&team, "region = \"eu-west-1\"\n").unwrap();
        let e = Config::parse(&main, &text).unwrap_err().0;
        assert!(
            e.contains(&team.display().to_string()) && e.contains("region"),
            "{e}"
        );
        let e = Config::parse(&main, &text.replace("team.toml", "gone.toml"))
            .unwrap_err()
            .0;
        assert!(e.contains("include") && e.contains("gone.toml"), "{e}");
    }

    fn chmod(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Issue 15 §1: an included file may define roles and clusters only;
    /// anything that can run a program, read another item or change the
    /// daemon is refused, naming the file and the key.
    #[test]
    fn an_include_may_define_roles_and_clusters_only() {
        let dir = tempfile::tempdir().unwrap();
        let team = dir.path().join("team.toml");
        let main = dir.path().join("config.toml");
        let text = format!("include = [\"team.toml\"]\n{TWO}");
        let role = "[roles.viewer]\nidentity = \"work\"\nname = \"viewer\"\n";
        for (extra, key) in [
            (
                "[identities.evil]\nitem = \"x\"\nvault = \"v\"\nmfa = \"process\"\nmfa_command = [\"/bin/sh\", \"-c\", \"id\"]\n",
                "identities",
            ),
            ("[onepassword]\nitem = \"x\"\nvault = \"v\"\nop_path = \"/tmp/op\"\n", "onepassword"),
            ("op_path = \"/tmp/op\"\n", "op_path"),
            ("mfa_command = [\"id\"]\n", "mfa_command"),
            ("mfa = \"process\"\n", "mfa"),
            ("[daemon]\nidle_lock = \"36h\"\n", "daemon"),
            ("include = [\"more.toml\"]\n", "include"),
            ("region = \"eu-west-1\"\n", "region"),
        ] {
            std::fs::write(&team, format!("{extra}{role}")).unwrap();
            let e = Config::load_with(&main, &text).unwrap_err().0;
            assert!(
                e.starts_with(&format!("config {}: \"{key}\": not allowed in an included file", team.display())),
                "{key}: {e}"
            );
            assert!(e.contains("[roles] and [clusters] only"), "{e}");
        }
        std::fs::write(&team, format!("{role}[clusters.prod]\nrole = \"viewer\"\n")).unwrap();
        let c = Config::load_with(&main, &text).unwrap();
        assert_eq!(c.clusters["prod"].role, "viewer");
    }

    /// Issue 15 §1: the config and each include must be the user's (or
    /// root's) and writable by the owner only, and so their directories.
    #[test]
    fn files_others_can_write_are_refused_with_owner_mode_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let team = dir.path().join("team.toml");
        let main = dir.path().join("config.toml");
        std::fs::write(
            &team,
            "[roles.viewer]\nidentity = \"work\"\nname = \"viewer\"\n",
        )
        .unwrap();
        std::fs::write(&main, format!("include = [\"team.toml\"]\n{TWO}")).unwrap();
        chmod(&main, 0o600);
        chmod(&team, 0o644);
        Config::load(&main).unwrap();
        chmod(&team, 0o666);
        let e = Config::load(&main).unwrap_err().0;
        assert!(
            e.starts_with(&format!(
                "config {}: include: file {}",
                main.display(),
                team.display()
            )) && e.contains(&team.display().to_string())
                && e.contains("mode 0666")
                && e.contains("chmod go-w"),
            "{e}"
        );
        chmod(&team, 0o644);
        chmod(&main, 0o620);
        let e = Config::load(&main).unwrap_err().0;
        assert!(e.contains("mode 0620") && e.contains("chmod go-w"), "{e}");
        chmod(&main, 0o600);
        chmod(dir.path(), 0o757);
        let e = Config::load(&main).unwrap_err().0;
        assert!(e.contains("directory") && e.contains("mode 0757"), "{e}");
        chmod(dir.path(), 0o700);
        if pctl_protocol::peer::euid() == 0 {
            std::os::unix::fs::chown(&team, Some(65534), None).unwrap();
            let e = Config::load(&main).unwrap_err().0;
            assert!(
                e.contains("uid 65534") && e.contains("mode 0644") && e.contains("chown"),
                "{e}"
            );
        }
    }

    /// Issue 15 §2: one name rule for roles, clusters and identities, in
    /// the config and in includes; the injection from the issue is refused
    /// with the file, the key and the rule.
    #[test]
    fn names_outside_the_rule_are_refused_with_file_key_and_rule() {
        let evil = "a]\\n [default]\\n credential_process = sh -c 'id > FILE'\\n [profile pctl-zz";
        let e = parse(&format!("{GOOD}\n[roles.\"{evil}\"]\nname = \"x\"\n"))
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("config /cfg/config.toml: roles: role name \"a]\\n [default]")
                && e.contains(names::NAME_RULE)
                && !e.contains('\n'),
            "{e}"
        );
        for (table, what) in [("clusters", "cluster"), ("identities", "identity")] {
            let body = if table == "clusters" {
                "role = \"admin\"\n"
            } else {
                "item = \"i\"\nvault = \"v\"\n"
            };
            for bad in ["-x", "a b", "x/y", "é", &"a".repeat(65)] {
                let e = parse(&format!("{GOOD}\n[{table}.\"{bad}\"]\n{body}"))
                    .unwrap_err()
                    .0;
                assert!(
                    e.contains(&format!("{table}: {what} name")) && e.contains(names::NAME_RULE),
                    "{bad}: {e}"
                );
            }
        }
        for ok in ["prod.eu-1", "A_b", &"a".repeat(64)] {
            parse(&format!("{GOOD}\n[roles.\"{ok}\"]\nname = \"x\"\n")).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("team.toml"),
            "[roles.\"x\\ny\"]\nidentity = \"work\"\nname = \"viewer\"\n",
        )
        .unwrap();
        let main = dir.path().join("config.toml");
        let e = Config::parse(&main, &format!("include = [\"team.toml\"]\n{TWO}"))
            .unwrap_err()
            .0;
        assert!(e.contains("team.toml: roles: role name \"x\\ny\""), "{e}");
        // and the EKS cluster name, region and role ARN syntax
        let e = parse(&GOOD.replace("role = \"admin\"", "role = \"admin\"\nname = \"a b\""))
            .unwrap_err()
            .0;
        assert!(
            e.contains("clusters.platform.name") && e.contains("EKS cluster name"),
            "{e}"
        );
        let e = parse(&GOOD.replace(
            "name = \"platform-admin\"",
            "arn = \"arn:aws:iam::1:role/x\\n[default]\"",
        ))
        .unwrap_err()
        .0;
        assert!(
            e.contains("roles.admin.arn") && e.contains("not a role ARN"),
            "{e}"
        );
    }

    #[test]
    fn role_lookup_messages() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.role(None).unwrap().key, "admin");
        let e = c.role(Some("dev")).unwrap_err().0;
        assert!(e.contains("dev") && e.contains("admin"), "{e}");
        let e = c.cluster("prod").unwrap_err().0;
        assert!(e.contains("[clusters.prod]"), "{e}");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text gives a config or one error naming the file; never a panic.
        #[test]
        fn config_parse_never_panics(text in "(?s).{0,600}") {
            if let Err(e) = Config::parse(Path::new("/cfg/config.toml"), &text) {
                prop_assert!(e.0.starts_with("config /cfg/config.toml"), "{}", e.0);
            }
        }

        /// Issue 15 §2: the parser accepts a role or cluster name exactly
        /// when it follows the one rule (so no accepted name can carry INI
        /// or YAML syntax into a user file); a refusal names the rule.
        #[test]
        // The cluster has its own EKS name: a key such as `a.` is a valid pctl
        // name but not an EKS cluster name, which is a different rule.
        fn accepted_names_are_exactly_the_rule(key in "(?s).{0,70}|[A-Za-z0-9._ \\[\\]\n#;=-]{1,70}") {
            let q = serde_json::to_string(&key).unwrap();
            let text = format!(
                "region = \"us-east-1\"\n[onepassword]\nitem = \"i\"\nvault = \"v\"\n\
                 [roles.{q}]\nname = \"r\"\n[clusters.{q}]\nname = \"c\"\nrole = {q}\n"
            );
            match Config::parse(Path::new("/cfg/config.toml"), &text) {
                Ok(c) => {
                    prop_assert!(names::is_name(&key), "accepted {:?}", key);
                    prop_assert!(c.roles.keys().chain(c.clusters.keys()).all(|k| k == &key));
                }
                Err(e) => {
                    prop_assert!(!names::is_name(&key), "refused a valid name {:?}: {}", key, e.0);
                    prop_assert!(!e.0.contains('\n'), "{}", e.0);
                }
            }
        }

        /// Mutating a valid config's values gives a config or an error naming
        /// the key: the region, the role's duration, or (a well-formed
        /// duration too short for an EKS token) the cluster's role and its
        /// duration.
        #[test]
        fn bad_values_name_their_key(dur in "[a-z0-9 ]{0,6}", region in "[a-zA-Z0-9_ -]{0,12}") {
            let text = super::tests::GOOD
                .replace("region = \"us-east-1\"", &format!("region = \"{region}\""))
                .replace("duration = \"1h\"", &format!("duration = \"{dur}\""));
            if let Err(e) = Config::parse(Path::new("/cfg/config.toml"), &text) {
                let named = e.0.contains("region")
                    || e.0.contains("roles.admin.duration")
                    || (e.0.contains("clusters.platform.role") && e.0.contains("has duration"));
                prop_assert!(named, "{}", e.0);
            }
        }
    }
}
