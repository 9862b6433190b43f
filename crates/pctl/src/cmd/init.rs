//! `pctl init`: the first run. Picks the 1Password item (a numbered prompt
//! on a terminal, or `--item/--vault` for scripts), reads it once to confirm
//! the fields pctl needs (an MFA serial without a one-time password field:
//! the code is typed, `mfa = "prompt"`), takes the roles and EKS clusters
//! (several of each), writes pctl's config and the managed block of the
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
    /// Where the MFA code comes from when the item has an "MFA Serial": `item` (its
    /// one-time password field) or `prompt` (typed when pctl unlocks). Default: item when
    /// the item has a one-time password field; else asked on a terminal (scripts: --mfa prompt).
    #[arg(long, value_enum, conflicts_with = "from_aws_config")]
    mfa: Option<InitMfa>,
    /// An EKS cluster to add as [clusters.KEY] with the first role, as its name in the
    /// region, optionally under a key: `--cluster KEY=NAME` (repeatable). On a terminal,
    /// without it, pctl lists the region's clusters (EKS ListClusters, in the daemon) to pick.
    #[arg(
        long = "cluster",
        value_name = "[KEY=]NAME",
        conflicts_with = "from_aws_config"
    )]
    clusters: Vec<String>,
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

/// `pctl init --mfa`: the identity's `mfa` setting.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitMfa {
    /// The item's one-time password field (mfa = "item").
    Item,
    /// Typed at the terminal of the command that unlocks (mfa = "prompt").
    Prompt,
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
    let mfa = mfa_mode(&checked, args.mfa, interactive)?;
    let exe = std::env::current_exe().context("cannot find the pctl executable")?;
    let mut roles = roles;
    // On a terminal without --role, the roles are offered: the daemon lists
    // them, so the identity is written first (roles and clusters follow).
    let mut written = false;
    if roles.is_empty() && interactive {
        // a damaged AWS config block refuses the run before anything is written
        files::aws_config::plan(
            None,
            &output::aws_config(&exe, &region, &[]).map_err(|e| anyhow!("{e}"))?,
        )?;
        let text = config_text(&item, &vault, &region, mfa, &[], &[]);
        View::parse(&text, &config)
            .context("internal: the config pctl init wrote does not parse")?;
        let cfg = Edit::plan(&config, |_| Ok(text.clone()))?;
        files::finish(&cfg, false, "pctl's config")?;
        written = true;
        roles = offer_roles()?;
    }
    let mut keys: Vec<&str> = roles.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "two --role values have the key {:?}: name them KEY=NAME_OR_ARN",
            w[0]
        );
    }
    let mut clusters = args
        .clusters
        .iter()
        .map(|c| Cluster::parse(c))
        .collect::<Result<Vec<_>>>()?;
    // On a terminal, the clusters are offered once the config is written:
    // the daemon lists them with the first role's session (see offer_clusters).
    let discover = clusters.is_empty() && interactive && !roles.is_empty();
    if !clusters.is_empty() && roles.is_empty() {
        bail!(
            "--cluster needs a role whose sessions mint the cluster's tokens: add --role NAME_OR_ARN"
        );
    }
    let mut ckeys: Vec<&str> = clusters.iter().map(|c| c.key.as_str()).collect();
    ckeys.sort_unstable();
    if let Some(w) = ckeys.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "two --cluster values have the key {:?}: name them KEY=NAME",
            w[0]
        );
    }

    let text = config_text(&item, &vault, &region, mfa, &roles, &clusters);
    View::parse(&text, &config).context("internal: the config pctl init wrote does not parse")?;
    let keys: Vec<String> = roles.iter().map(|r| r.key.clone()).collect();
    let profiles = output::aws_config(&exe, &region, &keys).map_err(|e| anyhow!("{e}"))?;
    // Both files are planned before either is written: a damaged AWS config
    // block refuses the whole run.
    let aws = files::aws_config::plan(None, &profiles)?;
    if written {
        rewrite_own(&config, &text)?;
    } else {
        let cfg = Edit::plan(&config, |_| Ok(text.clone()))?;
        files::finish(&cfg, false, "pctl's config")?;
    }
    files::aws_config::finish(&aws, keys.len(), false)?;
    if discover {
        clusters = offer_clusters(&region, &roles[0].key)?;
        if !clusters.is_empty() {
            let text = config_text(&item, &vault, &region, mfa, &roles, &clusters);
            View::parse(&text, &config)
                .context("internal: the config pctl init wrote does not parse")?;
            rewrite_own(&config, &text)?;
        }
    }

    eprintln!(
        "pctl: 1Password item '{}' in vault '{}' has the keys and account ID{}",
        printable(&checked.title),
        printable(&vault),
        match (checked.mfa_serial, mfa) {
            (false, _) => format!(" ({})", crate::output::NO_MFA),
            (true, Some(InitMfa::Prompt)) =>
                ", MFA serial (mfa = \"prompt\": you type the code when pctl unlocks)".into(),
            (true, _) => ", MFA serial and one-time password".into(),
        }
    );
    if !clusters.is_empty() {
        eprintln!(
            "pctl: then `pctl kubeconfig --cluster {} --write` adds it to ~/.kube/config",
            clusters[0].key
        );
    }
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

/// The identity's `mfa` setting: None (the default, "item") or prompt.
/// An MFA serial without a one-time password field can only be typed: it
/// is offered on a terminal and needs `--mfa prompt` without one.
fn mfa_mode(
    checked: &crate::onepassword::CheckedItem,
    flag: Option<InitMfa>,
    interactive: bool,
) -> Result<Option<InitMfa>> {
    let title = printable(&checked.title);
    match (checked.mfa_serial, checked.otp, flag) {
        (false, _, None) => Ok(None),
        (false, _, Some(_)) => bail!(
            "--mfa: 1Password item '{title}' has no \"MFA Serial\" field, so pctl uses no MFA: \
             add the MFA device's ARN as \"MFA Serial\", or leave out --mfa"
        ),
        (true, false, Some(InitMfa::Item)) => bail!(
            "--mfa item: 1Password item '{title}' has an \"MFA Serial\" but no one-time password \
             field: add one (One-Time Password) or pass --mfa prompt to type the code"
        ),
        (true, true, Some(InitMfa::Item) | None) => Ok(None),
        (true, _, Some(InitMfa::Prompt)) => Ok(Some(InitMfa::Prompt)),
        (true, false, None) if interactive => {
            eprintln!(
                "pctl: 1Password item '{title}' has an \"MFA Serial\" but no one-time password field."
            );
            for _ in 0..PROMPT_TRIES {
                let a = ask(
                    "Type the MFA code yourself when pctl unlocks (mfa = \"prompt\")? [Y/n]: ",
                )?;
                match a.to_ascii_lowercase().as_str() {
                    "" | "y" | "yes" => return Ok(Some(InitMfa::Prompt)),
                    "n" | "no" => bail!(
                        "without a code pctl cannot use the MFA device of item '{title}': add a \
                         One-Time Password field to the item, then run pctl init again"
                    ),
                    _ => eprintln!("pctl: answer y or n"),
                }
            }
            bail!("no answer: run pctl init again, or pass --mfa prompt")
        }
        (true, false, None) => bail!(
            "1Password item '{title}' has an \"MFA Serial\" but no one-time password field: \
             pass --mfa prompt to type the code when pctl unlocks, or add a One-Time Password \
             field to the item"
        ),
    }
}

/// Asks the daemon (started now, with the identity just written) for the
/// roles of the account whose trust policy names the IAM user (IAM
/// ListRoles), and which to add; names or ARNs may be typed instead.
/// Without that permission, or none found, it asks for names.
fn offer_roles() -> Result<Vec<Role>> {
    eprintln!(
        "pctl: listing the roles your IAM user may assume (the daemon starts and reads 1Password)"
    );
    let client = crate::client::Client::new(dirs::socket_path());
    let arns = match client.assumable_roles() {
        Ok(arns) => arns,
        Err(e) => {
            eprintln!("pctl: cannot list the roles you may assume: {e:#}");
            Vec::new()
        }
    };
    let arns: Vec<String> = arns
        .into_iter()
        .filter(|a| Role::parse(a).is_ok())
        .collect();
    let typed = |answer: &str| -> Result<Vec<Role>> {
        answer
            .split([' ', ','])
            .filter(|r| !r.is_empty())
            .map(Role::parse)
            .collect()
    };
    if arns.is_empty() {
        let answer = ask(
            "Roles to assume (names or ARNs, [KEY=] optional, separated by spaces; Enter for none): ",
        )?;
        return typed(&answer);
    }
    let mut list = String::from("Roles your IAM user may assume (by their trust policies):\n");
    for (i, a) in arns.iter().enumerate() {
        let _ = writeln!(list, "  {}) {}", i + 1, printable(a));
    }
    eprint!("{list}");
    'ask: for _ in 0..PROMPT_TRIES {
        let answer = ask(&format!(
            "Roles to add [1-{}, several separated by spaces, all, or names/ARNs; Enter for none]: ",
            arns.len()
        ))?;
        if answer.eq_ignore_ascii_case("all") {
            return arns.iter().map(|a| Role::parse(a)).collect();
        }
        let mut picked = Vec::new();
        for a in answer.split([' ', ',']).filter(|a| !a.is_empty()) {
            match a.parse::<usize>() {
                Ok(n) if (1..=arns.len()).contains(&n) => picked.push(Role::parse(&arns[n - 1])?),
                Ok(_) => {
                    eprintln!(
                        "pctl: answer with numbers from 1 to {}, all, or role names",
                        arns.len()
                    );
                    continue 'ask;
                }
                Err(_) => picked.push(Role::parse(a)?),
            }
        }
        return Ok(picked);
    }
    bail!("no roles picked: run pctl init --force again, or pass --role NAME_OR_ARN")
}

/// Asks the daemon (started now, with the config just written) for the EKS
/// clusters the first role sees in the region, and which to add.
///
/// Why through the daemon: the item's keys and the role's session stay in
/// its locked memory (no key in this process, its argv, environment or
/// output), and the client has no AWS SDK, TLS or DNS resolver of its own
/// (it is static, see packaging/build.sh). The same request serves every
/// later `pctl` command: this unlock is the one `pctl shell` would do.
fn offer_clusters(region: &str, role: &str) -> Result<Vec<Cluster>> {
    eprintln!(
        "pctl: listing the EKS clusters in {region} as role {role} (the daemon starts and reads 1Password)"
    );
    let client = crate::client::Client::new(dirs::socket_path());
    let names = match client.list_clusters(role.to_string(), region.to_string()) {
        Ok(names) => names,
        Err(e) => {
            eprintln!("pctl: cannot list the EKS clusters in {region} as {role}: {e:#}");
            Vec::new()
        }
    };
    let names: Vec<&String> = names.iter().filter(|n| Cluster::parse(n).is_ok()).collect();
    if names.is_empty() {
        let answer = ask(&format!(
            "EKS clusters in {region} to use as {role} (names, separated by spaces; Enter for none): "
        ))?;
        return answer
            .split([' ', ','])
            .filter(|c| !c.is_empty())
            .map(Cluster::parse)
            .collect();
    }
    let mut list = format!("EKS clusters in {region} that {role} sees:\n");
    for (i, n) in names.iter().enumerate() {
        let _ = writeln!(list, "  {}) {}", i + 1, printable(n));
    }
    eprint!("{list}");
    'ask: for _ in 0..PROMPT_TRIES {
        let answer = ask(&format!(
            "Clusters to add [1-{}, several separated by spaces, or all; Enter for none]: ",
            names.len()
        ))?;
        if answer.eq_ignore_ascii_case("all") {
            return names.iter().map(|n| Cluster::parse(n)).collect();
        }
        let mut picked = Vec::new();
        for a in answer.split([' ', ',']).filter(|a| !a.is_empty()) {
            match a.parse::<usize>() {
                Ok(n) if (1..=names.len()).contains(&n) => {
                    if !picked.iter().any(|c: &Cluster| &c.name == names[n - 1]) {
                        picked.push(Cluster::parse(names[n - 1])?);
                    }
                }
                _ => {
                    eprintln!(
                        "pctl: answer with numbers from 1 to {}, or all",
                        names.len()
                    );
                    continue 'ask;
                }
            }
        }
        return Ok(picked);
    }
    bail!("no clusters picked: add them with `pctl init --force ... --cluster NAME`, or as [clusters.NAME] in the config")
}

/// Replaces the config this run wrote (so the backup of the user's previous
/// file stays what it was): a private temporary file, then a rename.
fn rewrite_own(path: &std::path::Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".pctl-init");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        bail!("cannot write {}: {e}", path.display());
    }
    Ok(())
}

/// An EKS cluster from `--cluster [KEY=]NAME`.
struct Cluster {
    key: String,
    name: String,
}

impl Cluster {
    fn parse(s: &str) -> Result<Cluster> {
        let (key, name) = match s.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (s.trim(), s.trim()),
        };
        // EKS cluster names: 1-100 of letters, digits, - and _, starting alphanumeric
        let eks_name = !name.is_empty()
            && name.len() <= 100
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !eks_name {
            bail!(
                "--cluster {} is not an EKS cluster name (letters, digits, - and _)",
                names::shown(s)
            );
        }
        names::check_name("cluster", key)
            .map_err(|e| anyhow!("--cluster: {e} (or name it KEY=NAME)"))?;
        Ok(Cluster {
            key: key.to_string(),
            name: name.to_string(),
        })
    }
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

/// pctl's config for the picked item, roles and clusters.
fn config_text(
    item: &str,
    vault: &str,
    region: &str,
    mfa: Option<InitMfa>,
    roles: &[Role],
    clusters: &[Cluster],
) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = String::from(
        "# pctl's config, written by `pctl init` (every setting: man pctl.toml, docs/interface.md).\n",
    );
    let _ = writeln!(out, "region = {}\n", q(region));
    let _ = writeln!(
        out,
        "[onepassword]\nitem = {}\nvault = {}",
        q(item),
        q(vault)
    );
    if mfa == Some(InitMfa::Prompt) {
        out.push_str("mfa = \"prompt\"              # the item has no one-time password: you type the code\n");
    }
    for r in roles {
        let _ = writeln!(
            out,
            "\n[roles.{}]\n{} = {}",
            r.key,
            if r.arn { "arn" } else { "name" },
            q(&r.value)
        );
    }
    for c in clusters {
        let _ = writeln!(out, "\n[clusters.{}]\nrole = {}", c.key, q(&roles[0].key));
        if c.name != c.key {
            let _ = writeln!(out, "name = {}", q(&c.name));
        }
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
        let clusters = vec![
            Cluster::parse("platform").unwrap(),
            Cluster::parse("prod=prod-eks_2").unwrap(),
        ];
        let text = config_text(
            "AWS \"prod\" key\n[x]",
            "Pri\\vate",
            "eu-west-1",
            Some(InitMfa::Prompt),
            &roles,
            &clusters,
        );
        let v = View::parse(&text, Path::new("c.toml")).unwrap();
        assert_eq!(v.region.as_deref(), Some("eu-west-1"));
        assert_eq!(v.roles["admin"].name.as_deref(), Some("platform-admin"));
        assert_eq!(
            v.roles["ro"].arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/ro")
        );
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(t["onepassword"]["mfa"].as_str(), Some("prompt"));
        assert_eq!(t["clusters"]["platform"]["role"].as_str(), Some("admin"));
        assert!(t["clusters"]["platform"].get("name").is_none());
        assert_eq!(t["clusters"]["prod"]["name"].as_str(), Some("prod-eks_2"));
    }

    #[test]
    fn clusters_from_names_and_keys() {
        let c = Cluster::parse("prod=prod-eks").unwrap();
        assert_eq!((c.key.as_str(), c.name.as_str()), ("prod", "prod-eks"));
        for bad in ["", "a b", "-x", "k=", "x=a.b", "a]=x", &"x".repeat(101)] {
            assert!(Cluster::parse(bad).is_err(), "{bad}");
        }
    }
}
