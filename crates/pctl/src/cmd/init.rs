//! `pctl init`: the first run. Picks the 1Password item (a numbered prompt
//! on a terminal, or `--item/--vault` for scripts), reads it once to confirm
//! the fields pctl needs, writes pctl's config and the managed block of the
//! AWS config file, and says what to do next. `--from-aws-config` imports
//! roles instead ([`crate::files::import`]).

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use pctl_protocol::{dirs, names};

use super::args::optional_path;
use crate::files::{self, pctl_config::View, Edit};
use crate::onepassword::{ListedItem, Op, CATEGORIES};
use crate::output;

/// First run: pick the 1Password item, write pctl's config and the AWS config block.
///
/// Without --item, lists the API Credential and Login items (`op item list`) and asks
/// which one (on a terminal only). With --from-aws-config, imports roles instead.
#[derive(clap::Args, Debug)]
#[command(display_order = 0)]
pub struct Args {
    /// The 1Password item holding the IAM user's keys (name or ID): no prompt.
    #[arg(long, conflicts_with = "from_aws_config")]
    item: Option<String>,
    /// The item's vault (default: the vault `op` finds the item in).
    #[arg(long, conflicts_with = "from_aws_config")]
    vault: Option<String>,
    /// AWS region for STS and the profiles (default: the item's "Default Region" field).
    #[arg(long, conflicts_with = "from_aws_config")]
    region: Option<String>,
    /// A role to assume, as a role name or ARN, optionally under a key of your choice:
    /// `--role KEY=ARN` (repeatable). Without `KEY=`, its key in pctl's config is the
    /// name's last part.
    #[arg(
        long = "role",
        value_name = "[KEY=]NAME_OR_ARN",
        conflicts_with = "from_aws_config"
    )]
    roles: Vec<String>,
    /// Replace an existing pctl config (the previous one is kept as config.toml.pctl-backup).
    #[arg(long, conflicts_with = "from_aws_config")]
    force: bool,
    /// Import the assume-role profiles (role_arn) of this AWS config file as pctl roles
    /// (default: $AWS_CONFIG_FILE, else ~/.aws/config); prints them unless --write.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_parser = optional_path())]
    from_aws_config: Option<PathBuf>,
    /// With --from-aws-config: append the imported roles to pctl's config (existing roles
    /// are kept).
    #[arg(long, requires = "from_aws_config")]
    write: bool,
}

/// How many times a wrong answer to the prompt is asked again.
const PROMPT_TRIES: usize = 3;

pub fn run(args: Args) -> Result<()> {
    if let Some(from) = args.from_aws_config {
        return files::import::run(Some(from), args.write);
    }
    let config = dirs::config_path();
    if config.exists() && !args.force {
        bail!(
            "pctl's config {} already exists: edit it, or pass --force to replace it \
             (the previous one is kept as a backup)",
            config.display()
        );
    }
    let roles = args
        .roles
        .iter()
        .map(|r| Role::parse(r))
        .collect::<Result<Vec<_>>>()?;
    let interactive = std::io::stdin().is_terminal();
    if args.item.is_none() && !interactive {
        bail!(
            "pctl init has no terminal to ask which 1Password item to use: pass --item ITEM \
             (and --vault VAULT); `op item list --categories \"{CATEGORIES}\"` lists them"
        );
    }
    let op = Op::find()?;
    let (item, vault) = match args.item {
        Some(item) => (item, args.vault),
        None => {
            let picked = pick(&op, args.vault.as_deref())?;
            (picked.0, Some(picked.1))
        }
    };
    let checked = op.check_item(&item, vault.as_deref())?;
    let vault = vault.unwrap_or_else(|| checked.vault.clone());
    let region = match args.region.or_else(|| checked.region.clone()) {
        Some(r) if names::is_region(&r) => r,
        Some(r) => bail!("{}: pass --region", names::check_region(&r).unwrap_err()),
        None => bail!(
            "1Password item '{}' has no \"Default Region\" field: pass --region (e.g. us-east-1)",
            printable(&checked.title)
        ),
    };
    let mut roles = roles;
    if roles.is_empty() && interactive {
        let answer = ask("Role to assume (name or ARN; Enter for none): ")?;
        if !answer.is_empty() {
            roles.push(Role::parse(&answer)?);
        }
    }
    let mut keys: Vec<&str> = roles.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "two --role values have the key {:?}: name them KEY=NAME_OR_ARN",
            w[0]
        );
    }

    let text = config_text(&item, &vault, &region, &roles);
    View::parse(&text, &config).context("internal: the config pctl init wrote does not parse")?;
    let exe = std::env::current_exe().context("cannot find the pctl executable")?;
    let keys: Vec<String> = roles.iter().map(|r| r.key.clone()).collect();
    let profiles = output::aws_config(&exe, &region, &keys).map_err(|e| anyhow!("{e}"))?;
    // Both files are planned before either is written: a damaged AWS config
    // block refuses the whole run.
    let aws = files::aws_config::plan(None, &profiles)?;
    let cfg = Edit::plan(&config, |_| Ok(text.clone()))?;
    files::finish(&cfg, false, "pctl's config")?;
    files::aws_config::finish(&aws, keys.len(), false)?;

    eprintln!(
        "pctl: 1Password item '{}' in vault '{}' has the keys and account ID{}",
        printable(&checked.title),
        printable(&vault),
        if checked.mfa {
            ", MFA serial and one-time password"
        } else {
            " (no MFA)"
        }
    );
    match keys.first() {
        Some(k) => eprintln!(
            "pctl: next: `eval \"$(pctl shell)\"` (starts the daemon), then `aws --profile pctl-{k} sts get-caller-identity`"
        ),
        None => eprintln!(
            "pctl: next: add a role to {} ([roles.NAME] with name = \"...\"), then `pctl aws-config --write`",
            config.display()
        ),
    }
    Ok(())
}

/// A role from `--role [KEY=]NAME_OR_ARN`.
struct Role {
    key: String,
    /// `name = ...` (joined with the item's account ID) or `arn = ...`.
    arn: bool,
    value: String,
}

impl Role {
    fn parse(s: &str) -> Result<Role> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (Some(k.to_string()), v.trim().to_string()),
            None => (None, s.trim().to_string()),
        };
        let arn = value.starts_with("arn:");
        if arn {
            names::check_role_arn(&value).map_err(|e| anyhow!("--role: {e}"))?;
        }
        let name = value.rsplit(['/', ':']).next().unwrap_or("");
        if name.is_empty() || (!arn && !names::is_role_name(&value)) {
            bail!(
                "--role {} is not a role name or ARN (e.g. platform-admin)",
                names::shown(s)
            );
        }
        let key = key.unwrap_or_else(|| name.to_string());
        names::check_name("role", &key)
            .map_err(|e| anyhow!("--role: {e} (or name it KEY=NAME_OR_ARN)"))?;
        Ok(Role { key, arn, value })
    }
}

/// pctl's config for the picked item and roles.
fn config_text(item: &str, vault: &str, region: &str, roles: &[Role]) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = String::from(
        "# pctl's config, written by `pctl init` (every setting: docs/interface.md).\n",
    );
    let _ = writeln!(out, "region = {}\n", q(region));
    let _ = writeln!(
        out,
        "[onepassword]\nitem = {}\nvault = {}",
        q(item),
        q(vault)
    );
    for r in roles {
        let _ = writeln!(
            out,
            "\n[roles.{}]\n{} = {}",
            r.key,
            if r.arn { "arn" } else { "name" },
            q(&r.value)
        );
    }
    out
}

/// Lists the candidate items and asks which one; returns what to write as
/// `item` (the title, or the ID when titles repeat) and `vault`.
fn pick(op: &Op, vault: Option<&str>) -> Result<(String, String)> {
    let items = op.list_items(vault)?;
    if items.is_empty() {
        bail!(
            "no {} item in 1Password{}: create one with fields Access Key ID, Secret Access Key \
             and Account ID (see README), then run pctl init again",
            CATEGORIES.replace(',', " or "),
            vault.map(|v| format!(" vault '{v}'")).unwrap_or_default()
        );
    }
    let mut list = String::from("1Password items that can hold AWS keys:\n");
    for (i, it) in items.iter().enumerate() {
        let _ = writeln!(
            list,
            "  {}) {}  ({}, vault {})",
            i + 1,
            printable(&it.title),
            category_name(&it.category),
            printable(&it.vault.name)
        );
    }
    eprint!("{list}");
    for _ in 0..PROMPT_TRIES {
        let answer = ask(&format!("Item to use [1-{}]: ", items.len()))?;
        match answer.parse::<usize>() {
            Ok(n) if (1..=items.len()).contains(&n) => {
                let it = &items[n - 1];
                return Ok((item_ref(&items, it), vault_ref(it)));
            }
            _ => eprintln!("pctl: answer with a number from 1 to {}", items.len()),
        }
    }
    bail!("no item picked: run pctl init again, or pass --item ITEM --vault VAULT")
}

/// The title when it names one item, else the ID.
fn item_ref(all: &[ListedItem], it: &ListedItem) -> String {
    let same = all
        .iter()
        .filter(|o| o.title.eq_ignore_ascii_case(&it.title))
        .count();
    if same == 1 && !it.title.is_empty() {
        it.title.clone()
    } else {
        it.id.clone()
    }
}

fn vault_ref(it: &ListedItem) -> String {
    if it.vault.name.is_empty() {
        it.vault.id.clone()
    } else {
        it.vault.name.clone()
    }
}

fn category_name(c: &str) -> &str {
    match c {
        "API_CREDENTIAL" => "API Credential",
        "LOGIN" => "Login",
        other => other,
    }
}

/// Item and vault names from 1Password go to the terminal through the
/// project's one sanitiser: no escape sequences, line breaks or direction
/// overrides, at most 120 characters.
fn printable(s: &str) -> String {
    pctl_protocol::text::one_line(s, 120)
}

/// Asks on stderr, reads one line from stdin (end of input: an error).
fn ask(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    if n == 0 {
        bail!("no answer (end of input): run pctl init again, or pass --item ITEM --vault VAULT");
    }
    Ok(line.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn roles_from_names_arns_and_keys() {
        let r = Role::parse("platform-admin").unwrap();
        assert_eq!((r.key.as_str(), r.arn), ("platform-admin", false));
        let r = Role::parse("arn:aws:iam::123456789012:role/team/Deploy").unwrap();
        assert_eq!((r.key.as_str(), r.arn), ("Deploy", true));
        let r = Role::parse("ro=arn:aws:iam::123456789012:role/ReadOnly").unwrap();
        assert_eq!(r.key, "ro");
        for bad in ["", "arn:aws:iam::1:user/x", "a b=x", "x:y", "k="] {
            assert!(Role::parse(bad).is_err(), "{bad}");
        }
        // issue 15 §2: the key follows the one name rule
        for bad in ["-a=x", "a]=x", "a\n[default]=x", ".a=x", "x=ops/a b"] {
            let e = Role::parse(bad).err().map(|e| e.to_string());
            assert!(e.is_some(), "{bad}");
        }
        let e = Role::parse("arn:aws:iam::1:role/my+role")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(names::NAME_RULE) && e.contains("KEY="), "{e}");
        assert_eq!(Role::parse("prod.ro=x").unwrap().key, "prod.ro");
    }

    #[test]
    fn item_titles_reach_the_terminal_sanitised() {
        let t = printable("AWS\x1b]0;pwned\x07 key\u{202e}\r\nfake: ok\u{9b}2J");
        assert!(
            !t.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{t:?}"
        );
        assert!(t.starts_with("AWS ]0;pwned  key"), "{t:?}");
    }

    #[test]
    fn written_config_parses_with_hostile_names() {
        let roles = vec![
            Role::parse("admin=platform-admin").unwrap(),
            Role::parse("arn:aws:iam::123456789012:role/ro").unwrap(),
        ];
        let text = config_text("AWS \"prod\" key\n[x]", "Pri\\vate", "eu-west-1", &roles);
        let v = View::parse(&text, Path::new("c.toml")).unwrap();
        assert_eq!(v.region.as_deref(), Some("eu-west-1"));
        assert_eq!(v.roles["admin"].name.as_deref(), Some("platform-admin"));
        assert_eq!(
            v.roles["ro"].arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/ro")
        );
    }
}
