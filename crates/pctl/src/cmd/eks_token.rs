//! `pctl eks token --cluster C [--role R]`: the kubectl exec plugin (hot
//! path). Also takes `aws eks get-token`'s flags (`--cluster-name`,
//! `--region`, `--role-arn`), so a kubeconfig written by
//! `aws eks update-kubeconfig` switches to pctl by changing only `command:`.
//! Those are forwarded as given: the daemon maps them to its config
//! (include files too); the client never reads pctl's config for this.

use std::ffi::OsString;

use anyhow::{anyhow, Result};
use pctl_protocol::GetTokenFlags;

use crate::client::Client;
use crate::output;

/// ExecCredential for kubectl (the kubeconfig exec plugin).
///
/// pctl's form: `pctl eks token --cluster KEY [--role KEY]`.
///
/// `aws eks get-token`'s form works too, answered from pctl's config:
/// `pctl eks token --region R --cluster-name NAME [--role-arn ARN] [--output json]`,
/// and so does the command line `aws eks update-kubeconfig` writes with `aws` replaced
/// by `pctl` (`pctl --region R eks get-token --cluster-name NAME ...`).
#[derive(clap::Args, Debug, Default)]
pub struct Args {
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
}

impl Args {
    /// The request's cluster key and `aws eks get-token` flags (none for
    /// the plain `--cluster` form).
    pub(crate) fn request(self) -> (String, Option<String>, Option<GetTokenFlags>) {
        let flags = GetTokenFlags {
            cluster_name: self.cluster_name,
            region: self.region,
            role_arn: self.role_arn,
        };
        let flags = (flags != GetTokenFlags::default()).then_some(flags);
        (self.cluster.unwrap_or_default(), self.role, flags)
    }
}

/// Parses the kubectl exec plugin's command line (`pctl eks token --cluster C
/// [--role R]`, or `aws eks get-token`'s flags) without building clap's
/// command tree. Anything else, or anything unusual, returns `None` and goes
/// through clap.
pub fn parse_fast(args: &[OsString]) -> Option<Args> {
    let mut it = args.iter().skip(1).map(|a| a.to_str());
    if it.next()?? != "eks" || it.next()?? != "token" {
        return None;
    }
    let mut a = Args::default();
    while let Some(arg) = it.next() {
        let arg = arg?;
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, v),
            None => (arg, it.next()??),
        };
        let slot = match name {
            "--cluster" => &mut a.cluster,
            "--role" => &mut a.role,
            "--cluster-name" => &mut a.cluster_name,
            "--region" => &mut a.region,
            "--role-arn" => &mut a.role_arn,
            "--output" if value == "json" => &mut a.output,
            _ => return None,
        };
        if slot.is_some() || value.is_empty() || value.starts_with('-') {
            return None;
        }
        *slot = Some(value.to_string());
    }
    // clap's rules: exactly one of --cluster/--cluster-name, not --role with --role-arn.
    if a.cluster.is_some() == a.cluster_name.is_some() || (a.role.is_some() && a.role_arn.is_some())
    {
        return None;
    }
    Some(a)
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

pub fn run(client: &Client, args: Args) -> Result<()> {
    let api = output::exec_api_version(std::env::var("KUBERNETES_EXEC_INFO").ok().as_deref())
        .map_err(|e| anyhow!(e))?;
    let (cluster, role, flags) = args.request();
    let t = client.eks_token(cluster, role, flags)?;
    super::write_secret(output::exec_credential(&api, &t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cluster: Option<&str>, name: Option<&str>, region: Option<&str>) -> Args {
        Args {
            cluster: cluster.map(Into::into),
            cluster_name: name.map(Into::into),
            region: region.map(Into::into),
            ..Args::default()
        }
    }

    fn argv(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    // that it agrees with clap: crate::cli's tests

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
                parse_fast(&argv(other)).map(|c| format!("{c:?}")),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn aws_eks_get_token_command_lines() {
        let norm = |s: &str| {
            aws_style(argv(s))
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
    }

    #[test]
    fn plain_form_sends_no_flags_and_get_token_form_sends_them_as_given() {
        assert_eq!(
            args(Some("platform"), None, None).request(),
            ("platform".into(), None, None)
        );
        let (cluster, _, flags) = args(None, Some("team-eks"), Some("eu-west-1")).request();
        assert_eq!(cluster, "");
        assert_eq!(
            flags,
            Some(GetTokenFlags {
                cluster_name: Some("team-eks".into()),
                region: Some("eu-west-1".into()),
                role_arn: None,
            })
        );
    }
}
