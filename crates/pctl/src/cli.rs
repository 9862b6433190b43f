//! Command-line interface definition.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Short-lived AWS and EKS credentials from a per-user daemon that reads
/// 1Password once and keeps secrets only in memory.
#[derive(Parser, Debug)]
#[command(name = "pctl", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the broker in the foreground (clients start it automatically).
    #[command(display_order = 90)]
    Daemon {
        /// Log to this file (0600) instead of stderr.
        #[arg(long)]
        log_file: Option<PathBuf>,
    },
    /// Start or find the daemon and print shell exports of pointers (never secrets).
    ///
    /// Use as: eval "$(pctl shell)"   (fish: pctl shell --shell fish | source)
    Shell {
        /// The shell whose syntax to print (default: from $SHELL).
        #[arg(long, value_enum, default_value_t = ShellKind::detect())]
        shell: ShellKind,
        /// Also export AWS_PROFILE=pctl-<ROLE>.
        #[arg(long, value_name = "ROLE")]
        profile: Option<String>,
    },
    /// Read the 1Password item now (one `op item get` per identity).
    Unlock {
        /// Only this identity (`[identities.NAME]`; `default` is `[onepassword]`).
        #[arg(long, value_name = "IDENTITY")]
        identity: Option<String>,
    },
    /// Drop every secret and session; stays locked until `pctl unlock`.
    Lock {
        /// Only this identity; the others keep serving.
        #[arg(long, value_name = "IDENTITY")]
        identity: Option<String>,
    },
    /// Replace the IAM user's access key (create, verify, write to 1Password, read back, delete the old).
    Rotate {
        /// The identity whose key to rotate (needed when several are configured).
        #[arg(long, value_name = "IDENTITY")]
        identity: Option<String>,
    },
    /// Show lock state, sessions, tokens and counters (never a secret).
    Status {
        #[command(flatten)]
        format: Format,
    },
    /// Check everything pctl depends on; one line per check with the fix.
    ///
    /// Exits 1 when a check fails.
    Doctor {
        #[command(flatten)]
        format: Format,
    },
    /// One short line for a shell prompt (role and minutes left); never
    /// starts a daemon.
    ///
    /// Exit status: 0 unlocked, 3 locked, 4 no daemon running.
    Prompt {
        /// Print nothing: only the exit status.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        format: Format,
    },
    /// Stop the daemon (secrets wiped, socket removed).
    Stop,
    /// AWS credential_process output for a role (for ~/.aws/config).
    CredentialProcess {
        /// The role's key in pctl's config (also as its AWS profile name, `pctl-ROLE`).
        #[arg(long)]
        role: String,
    },
    /// Print `export` lines with a role's session credentials.
    Env {
        /// The role's key in pctl's config (also as its AWS profile name, `pctl-ROLE`).
        #[arg(long)]
        role: String,
        /// The shell whose `export` syntax to print (default: from $SHELL).
        #[arg(long, value_enum, default_value_t = ShellKind::detect())]
        shell: ShellKind,
    },
    /// Run a command with a role's session credentials in its environment.
    ///
    /// `pctl exec ROLE -- CMD...` (aws-vault's form) is `pctl exec --role ROLE -- CMD...`.
    /// Without a role: AWS_PROFILE's (`pctl-ROLE`), else the only configured role.
    Exec {
        /// The role (also as its AWS profile name, `pctl-ROLE`).
        #[arg(long)]
        role: Option<String>,
        /// Give CMD a loopback credential endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI +
        /// AWS_CONTAINER_AUTHORIZATION_TOKEN) instead of keys: the SDKs re-read it, so a long
        /// job gets refreshed sessions. The endpoint ends when CMD (or pctl) does.
        #[arg(long)]
        server: bool,
        /// The command to run and its arguments (after `--`).
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<String>,
    },
    /// List the configured roles: identity, ARN and session state.
    Roles {
        #[command(flatten)]
        format: Format,
    },
    /// Write (or print) AWS config profiles `pctl-<role>` using credential_process.
    ///
    /// Like `pctl kubeconfig`, it writes by default (`--diff` first to see what would
    /// change, `--print` to only print).
    AwsConfig {
        /// Write them into pctl's managed block (`# BEGIN pctl` ... `# END pctl`) of this AWS
        /// config file, keeping every other line (default: $AWS_CONFIG_FILE, else ~/.aws/config).
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_parser = optional_path())]
        write: Option<PathBuf>,
        /// Show what would change (a unified diff) and change nothing; exit 1 when something
        /// would, 0 when nothing would (as diff does).
        #[arg(long, conflicts_with = "print")]
        diff: bool,
        /// Print the profiles instead of writing them.
        #[arg(long, conflicts_with = "write")]
        print: bool,
    },
    /// First run: pick the 1Password item, write pctl's config and the AWS config block.
    ///
    /// Without --item, lists the API Credential and Login items (`op item list`) and asks
    /// which one (on a terminal only). With --from-aws-config, imports roles instead.
    #[command(display_order = 0)]
    Init {
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
    },
    /// EKS commands.
    Eks {
        #[command(subcommand)]
        command: EksCmd,
    },
    /// Write a kubeconfig entry whose user runs `pctl eks token`.
    Kubeconfig {
        /// The cluster's key in pctl's config (`[clusters.NAME]`).
        #[arg(long)]
        cluster: String,
        /// The role whose session the token is for (default: the cluster's `role`).
        #[arg(long)]
        role: Option<String>,
        /// API server URL (default: from EKS DescribeCluster).
        #[arg(long)]
        endpoint: Option<String>,
        /// PEM file of the API server's CA (default: from EKS DescribeCluster).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// YAML kubeconfig to merge into, keeping its other entries (without a value: the first
        /// file of $KUBECONFIG, else ~/.kube/config). Default: pctl's own file, which
        /// `pctl shell` adds to KUBECONFIG.
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_parser = optional_path())]
        write: Option<PathBuf>,
        /// Show what would change (a unified diff) and change nothing; exit 1 when something
        /// would, 0 when nothing would (as diff does).
        #[arg(long, conflicts_with = "print")]
        diff: bool,
        /// Print the entries (a kubeconfig of pctl's cluster, user and context) instead of
        /// writing them.
        #[arg(long, conflicts_with = "write")]
        print: bool,
    },
    /// Print shell completions.
    Completions {
        /// The shell to print completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Open the AWS console signed in as a role (federation sign-in URL).
    Login {
        /// The role's key in pctl's config to sign in as.
        #[arg(long)]
        role: String,
        /// Console region (default: the config's region).
        #[arg(long)]
        region: Option<String>,
        /// A console page on the region's console, like ec2/home#Instances.
        #[arg(long, conflicts_with = "destination")]
        path: Option<String>,
        /// A whole console URL (https://...console.aws.amazon.com/...).
        #[arg(long)]
        destination: Option<String>,
        /// Print the URL instead of opening it (it signs in whoever opens it within 15 minutes).
        #[arg(long)]
        stdout: bool,
    },
    /// Serve a role's session on a loopback credential endpoint (for containers and desktop
    /// apps) and print the two variables to export; stops on Ctrl-C.
    Serve {
        /// The role's key in pctl's config whose session to serve.
        #[arg(long)]
        role: String,
        /// 127.0.0.1 port (default: a free one).
        #[arg(long)]
        port: Option<u16>,
        /// The shell whose `export` syntax to print (default: from $SHELL).
        #[arg(long, value_enum, default_value_t = ShellKind::detect())]
        shell: ShellKind,
    },
    /// IAM Identity Center: what an `sso` identity may use.
    Sso {
        #[command(subcommand)]
        command: SsoCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum SsoCmd {
    /// Every account x role the identity may use (ListAccounts, ListAccountRoles), one line each.
    Roles {
        /// The `sso` identity (needed when several are configured).
        #[arg(long, value_name = "NAME")]
        identity: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Write every account x role as pctl roles (an include file beside the config) and their
    /// `pctl-ROLE` profiles (the AWS config's managed block); never a token.
    ///
    /// Role names come from the account and role names. Like `pctl aws-config`, it writes by
    /// default (`--diff` first to see what would change, `--print` to only print).
    Sync {
        /// The `sso` identity (needed when several are configured).
        #[arg(long, value_name = "NAME")]
        identity: Option<String>,
        /// The AWS config file whose `# BEGIN pctl` block gets the profiles (default:
        /// $AWS_CONFIG_FILE, else ~/.aws/config).
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_parser = optional_path())]
        write: Option<PathBuf>,
        /// Show what would change in each file (unified diffs) and change nothing; exit 1 when
        /// something would, 0 when nothing would (as diff does).
        #[arg(long, conflicts_with = "print")]
        diff: bool,
        /// Print the include file and the profiles instead of writing them.
        #[arg(long, conflicts_with = "write")]
        print: bool,
    },
}

/// `--json`, or `--output json` / `-o json` (aws and kubectl habits).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct Format {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Output format (`-o json` is the same as `--json`).
    #[arg(long, short = 'o', value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

impl Format {
    pub fn json(self) -> bool {
        self.json || self.output == Some(OutputFormat::Json)
    }
}

/// What `pctl __complete roles|clusters|identities` lists, one name a line, for the
/// completion scripts. Parsed before clap so that no completion script (they
/// are generated from clap's tree, hidden commands included) offers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Names {
    Roles,
    Clusters,
    Identities,
}

/// `pctl __complete roles|clusters|identities`.
pub fn complete_names(args: &[OsString]) -> Option<Names> {
    match args.get(1..)? {
        [c, w] if c == "__complete" => match w.to_str()? {
            "roles" => Some(Names::Roles),
            "clusters" => Some(Names::Clusters),
            "identities" => Some(Names::Identities),
            _ => None,
        },
        _ => None,
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum EksCmd {
    /// ExecCredential for kubectl (the kubeconfig exec plugin).
    ///
    /// pctl's form: `pctl eks token --cluster KEY [--role KEY]`.
    ///
    /// `aws eks get-token`'s form works too, answered from pctl's config:
    /// `pctl eks token --region R --cluster-name NAME [--role-arn ARN] [--output json]`,
    /// and so does the command line `aws eks update-kubeconfig` writes with `aws` replaced
    /// by `pctl` (`pctl --region R eks get-token --cluster-name NAME ...`).
    Token {
        /// The cluster's key in pctl's config.
        #[arg(
            long,
            required_unless_present = "cluster_name",
            conflicts_with = "cluster_name"
        )]
        cluster: Option<String>,
        /// The role's key in pctl's config (default: the cluster's `role`).
        #[arg(long)]
        role: Option<String>,
        /// aws eks get-token: the EKS cluster name (matched against pctl's config).
        #[arg(long)]
        cluster_name: Option<String>,
        /// aws eks get-token: the cluster's region (checked against pctl's config).
        #[arg(long)]
        region: Option<String>,
        /// aws eks get-token: the role to assume (matched against pctl's configured roles).
        #[arg(long, conflicts_with = "role")]
        role_arn: Option<String>,
        /// aws eks get-token: output format (json only).
        #[arg(long, value_parser = ["json"], hide = true)]
        output: Option<String>,
    },
}

/// A path flag whose value may be left out (`--write` alone): the empty path
/// then stands for the command's default file. (clap's PathBuf parser refuses "".)
fn optional_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellKind {
    Bash,
    Zsh,
    Fish,
}

impl ShellKind {
    /// From `$SHELL`, defaulting to bash syntax.
    pub fn detect() -> Self {
        match std::env::var("SHELL")
            .unwrap_or_default()
            .rsplit('/')
            .next()
        {
            Some("fish") => ShellKind::Fish,
            Some("zsh") => ShellKind::Zsh,
            _ => ShellKind::Bash,
        }
    }
}

/// Parses the kubectl exec plugin's command line (`pctl eks token --cluster C
/// [--role R]`) without building clap's command tree. Anything else, or
/// anything unusual, returns `None` and goes through clap.
pub fn parse_fast(args: &[OsString]) -> Option<Cli> {
    let mut it = args.iter().skip(1).map(|a| a.to_str());
    if it.next()?? != "eks" || it.next()?? != "token" {
        return None;
    }
    let (mut cluster, mut role) = (None, None);
    let (mut cluster_name, mut region, mut role_arn, mut output) = (None, None, None, None);
    while let Some(arg) = it.next() {
        let arg = arg?;
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, v),
            None => (arg, it.next()??),
        };
        let slot = match name {
            "--cluster" => &mut cluster,
            "--role" => &mut role,
            "--cluster-name" => &mut cluster_name,
            "--region" => &mut region,
            "--role-arn" => &mut role_arn,
            "--output" if value == "json" => &mut output,
            _ => return None,
        };
        if slot.is_some() || value.is_empty() || value.starts_with('-') {
            return None;
        }
        *slot = Some(value.to_string());
    }
    // clap's rules: exactly one of --cluster/--cluster-name, not --role with --role-arn.
    if cluster.is_some() == cluster_name.is_some() || (role.is_some() && role_arn.is_some()) {
        return None;
    }
    Some(Cli {
        command: Cmd::Eks {
            command: EksCmd::Token {
                cluster,
                role,
                cluster_name,
                region,
                role_arn,
                output,
            },
        },
    })
}

/// Rewrites aws-vault's `exec ROLE [--server] -- CMD...` into `exec --role
/// ROLE [--server] -- CMD...`: exactly one word that is not an option
/// between `exec` and `--`. Any other command line is returned as it was.
pub fn exec_role_first(args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).and_then(|a| a.to_str()) != Some("exec") {
        return args;
    }
    let Some(dash) = args.iter().position(|a| a == "--") else {
        return args;
    };
    let before: Vec<&str> = match args[2..dash].iter().map(|a| a.to_str()).collect() {
        Some(b) => b,
        None => return args,
    };
    let words: Vec<usize> = (0..before.len())
        .filter(|&i| !before[i].starts_with('-'))
        .collect();
    if words.len() != 1
        || before
            .iter()
            .any(|b| *b == "--role" || b.starts_with("--role="))
    {
        return args;
    }
    let mut out = args;
    out.insert(2 + words[0], "--role".into());
    out
}

/// Rewrites the command line `aws eks update-kubeconfig` writes into a
/// kubeconfig (`[--region R] eks get-token --cluster-name N ...`, with `aws`
/// replaced by `pctl` in `command:`) into `eks token --region R
/// --cluster-name N ...`. Any other command line is returned as it was.
pub fn aws_style(args: Vec<OsString>) -> Vec<OsString> {
    let s: Vec<Option<&str>> = args.iter().map(|a| a.to_str()).collect();
    let (region, rest) = match s.get(1..) {
        Some([Some("--region"), Some(r), rest @ ..]) => (Some(*r), rest),
        Some(rest) => (None, rest),
        None => return args,
    };
    if !matches!(rest, [Some("eks"), Some("get-token"), ..]) {
        return args;
    }
    let skip = if region.is_some() { 5 } else { 3 };
    let mut out = vec![args[0].clone(), "eks".into(), "token".into()];
    if let Some(r) = region {
        out.push("--region".into());
        out.push(r.into());
    }
    // `aws eks update-kubeconfig --role-arn A` writes `--role A` (argparse
    // takes it as an abbreviation of get-token's `--role-arn`).
    out.extend(args.into_iter().skip(skip).map(|a| match a.to_str() {
        Some("--role") => "--role-arn".into(),
        Some(s) if s.starts_with("--role=") => format!("--role-arn={}", &s[7..]).into(),
        _ => a,
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    fn both(s: &str) -> (Option<String>, String) {
        let fast = parse_fast(&args(s)).map(|c| format!("{c:?}"));
        let slow = Cli::try_parse_from(args(s))
            .map(|c| format!("{c:?}"))
            .unwrap_or_else(|e| format!("error: {}", e.kind()));
        (fast, slow)
    }

    /// Every argument of every command, hidden ones included, says what it is
    /// for in `--help`.
    #[test]
    fn every_argument_has_a_description() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && cmd.get_long_about().is_none() {
                missing.push(format!("{path} (the command)"));
            }
            for a in cmd.get_arguments() {
                if matches!(a.get_id().as_str(), "help" | "version") {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without a description: {missing:#?}"
        );
    }

    #[test]
    fn fast_parser_agrees_with_clap() {
        for ok in [
            "pctl eks token --cluster platform",
            "pctl eks token --cluster platform --role admin",
            "pctl eks token --role admin --cluster=platform",
            "pctl eks token --region us-east-1 --cluster-name platform --output json",
            "pctl eks token --cluster-name p --output=json --role-arn arn:aws:iam::1:role/x",
            "pctl eks token --cluster p --region eu-west-1",
        ] {
            let (fast, slow) = both(ok);
            assert_eq!(fast.as_deref(), Some(slow.as_str()), "{ok}");
        }
    }

    #[test]
    fn exec_with_the_role_first() {
        let norm = |s: &str| {
            exec_role_first(args(s))
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            norm("pctl exec admin -- aws s3 ls"),
            "pctl exec --role admin -- aws s3 ls"
        );
        assert_eq!(
            norm("pctl exec --server admin -- env"),
            "pctl exec --server --role admin -- env"
        );
        for same in [
            "pctl exec --role admin -- aws s3 ls",
            "pctl exec -- aws s3 ls",
            "pctl exec aws s3 ls",
            "pctl exec a b -- c",
            "pctl env --role a -- b",
        ] {
            assert_eq!(norm(same), same);
        }
    }

    #[test]
    fn aws_eks_get_token_command_lines() {
        let norm = |s: &str| {
            aws_style(args(s))
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            norm("pctl --region us-east-1 eks get-token --cluster-name p --output json"),
            "pctl eks token --region us-east-1 --cluster-name p --output json"
        );
        assert_eq!(
            norm("pctl eks get-token --cluster-name p --role-arn arn:x"),
            "pctl eks token --cluster-name p --role-arn arn:x"
        );
        assert_eq!(
            norm("pctl --region r eks get-token --cluster-name p --output json --role arn:x"),
            "pctl eks token --region r --cluster-name p --output json --role-arn arn:x"
        );
        assert_eq!(
            norm("pctl eks get-token --cluster-name p --role=arn:x"),
            "pctl eks token --cluster-name p --role-arn=arn:x"
        );
        for same in [
            "pctl eks token --cluster p",
            "pctl --region",
            "pctl",
            "pctl status",
        ] {
            assert_eq!(norm(same), same);
        }
        let cli = Cli::try_parse_from(aws_style(args(
            "pctl --region eu-west-1 eks get-token --cluster-name prod --output json --role-arn arn:aws:iam::1:role/x",
        )))
        .unwrap();
        let Cmd::Eks {
            command:
                EksCmd::Token {
                    cluster,
                    cluster_name,
                    region,
                    role_arn,
                    ..
                },
        } = cli.command
        else {
            panic!("not eks token")
        };
        assert_eq!(cluster, None);
        assert_eq!(cluster_name.as_deref(), Some("prod"));
        assert_eq!(region.as_deref(), Some("eu-west-1"));
        assert_eq!(role_arn.as_deref(), Some("arn:aws:iam::1:role/x"));
        for bad in [
            "pctl eks token",
            "pctl eks token --cluster a --cluster-name b",
            "pctl eks token --cluster a --output yaml",
            "pctl eks token --cluster a --role r --role-arn x",
        ] {
            assert!(Cli::try_parse_from(args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn fast_parser_defers_to_clap_on_anything_else() {
        for other in [
            "pctl eks token",
            "pctl eks token --cluster",
            "pctl eks token --cluster a --cluster b",
            "pctl eks token --cluster a --verbose",
            "pctl eks token --cluster --role",
            "pctl eks token --cluster a --cluster-name a",
            "pctl eks token --region r",
            "pctl eks token --cluster a --output yaml",
            "pctl eks token --cluster a --role r --role-arn x",
            "pctl eks token --cluster-name a --region r --region s",
            "pctl eks token --help",
            "pctl status",
            "pctl",
        ] {
            assert_eq!(
                parse_fast(&args(other)).map(|c| format!("{c:?}")),
                None,
                "{other}"
            );
        }
    }
}
