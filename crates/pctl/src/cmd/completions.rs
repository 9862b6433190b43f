//! `pctl completions SHELL`: shell completions. clap_complete writes the
//! static part (commands, flags); role and cluster names come from the
//! config, so the values of `--role`/`--profile` and `--cluster` are
//! completed by calling the hidden `pctl __complete roles|clusters`
//! ([`names`]), wired in per shell below.

use std::ffi::OsString;

use anyhow::Result;

use crate::client::Client;

/// Print shell completions.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell to print completions for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
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

/// Prints the completion script of `pctl` (`tree`: the whole command tree).
pub fn run(args: Args, mut tree: clap::Command) -> Result<()> {
    let shell = args.shell;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut tree, "pctl", &mut buf);
    let script = String::from_utf8(buf)?;
    let out = match shell {
        clap_complete::Shell::Bash => format!("{script}{BASH}"),
        clap_complete::Shell::Zsh => {
            let script = script
                .replace(":ROLE:_default'", ":ROLE:_pctl_roles'")
                .replace(":CLUSTER:_default'", ":CLUSTER:_pctl_clusters'")
                .replace(":IDENTITY:_default'", ":IDENTITY:_pctl_identities'");
            // compinit reads only line 1 for `#compdef`: it stays first.
            let (first, rest) = script.split_once('\n').unwrap_or((&script, ""));
            format!("{first}\n{ZSH}{rest}")
        }
        clap_complete::Shell::Fish => script
            .lines()
            // clap_complete's fish script offers hidden subcommands too.
            .filter(|l| !l.contains("__complete"))
            .map(|l| match fish_names(l) {
                Some(what) => {
                    format!("{l} -f -a \"(command pctl __complete {what} 2>/dev/null)\"\n")
                }
                None => format!("{l}\n"),
            })
            .collect(),
        _ => script,
    };
    print!("{out}");
    Ok(())
}

/// Which names a fish completion line for an option should offer.
fn fish_names(line: &str) -> Option<&'static str> {
    if !line.ends_with(" -r") {
        return None;
    }
    if line.contains(" -l role ") || line.contains(" -l profile ") {
        Some("roles")
    } else if line.contains(" -l cluster ") {
        Some("clusters")
    } else if line.contains(" -l identity ") {
        Some("identities")
    } else {
        None
    }
}

/// Prints the configured role or cluster names, one a line. Completion
/// must never print an error into the command line: failures print nothing.
/// The shells expand what this prints (bash's `compgen -W` runs `$(...)`),
/// so a list holding a name outside the one name rule is refused whole.
pub fn names(client: &Client, what: Names) -> Result<()> {
    if let Ok(p) = client.profiles() {
        let list = match what {
            Names::Roles => p.roles,
            Names::Clusters => p.clusters,
            Names::Identities => p.identities,
        };
        print!("{}", name_lines(&list));
    }
    Ok(())
}

/// The names one a line, or nothing when any breaks the name rule.
fn name_lines(list: &[String]) -> String {
    if !list.iter().all(|n| pctl_protocol::names::is_name(n)) {
        return String::new();
    }
    list.iter().map(|n| format!("{n}\n")).collect()
}

/// bash: values of --role/--profile/--cluster from pctl, the rest from clap's `_pctl`.
const BASH: &str = r#"
_pctl_with_names() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" what=""
    case "$prev" in
        --role|--profile) what=roles ;;
        --cluster) what=clusters ;;
        --identity) what=identities ;;
    esac
    if [[ -n "$what" ]]; then
        local names
        names="$("${COMP_WORDS[0]}" __complete "$what" 2>/dev/null)"
        COMPREPLY=($(compgen -W "$names" -- "$cur"))
        return 0
    fi
    _pctl "$@"
}
complete -F _pctl_with_names -o bashdefault -o default pctl
"#;

/// zsh: the functions clap's `_arguments` specs call for ROLE and CLUSTER.
const ZSH: &str = r#"_pctl_roles() {
    local -a names
    names=(${(f)"$(command pctl __complete roles 2>/dev/null)"})
    _describe -t roles 'pctl role' names
}
_pctl_clusters() {
    local -a names
    names=(${(f)"$(command pctl __complete clusters 2>/dev/null)"})
    _describe -t clusters 'pctl cluster' names
}
_pctl_identities() {
    local -a names
    names=(${(f)"$(command pctl __complete identities 2>/dev/null)"})
    _describe -t identities 'pctl identity' names
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_the_shell_would_expand_empties_the_list() {
        let ok = vec!["admin".to_string(), "prod.ro".to_string()];
        assert_eq!(name_lines(&ok), "admin\nprod.ro\n");
        for bad in ["$(touch x)", "a b", "a\nb", "`id`"] {
            let list = vec!["admin".to_string(), bad.to_string()];
            assert_eq!(name_lines(&list), "", "{bad}");
        }
    }

    #[test]
    fn fish_lines_for_names() {
        assert_eq!(
            fish_names(r#"complete -c pctl -n "__fish_pctl_using_subcommand env" -l role -r"#),
            Some("roles")
        );
        assert_eq!(
            fish_names(r#"complete -c pctl -n "x" -l cluster -r"#),
            Some("clusters")
        );
        assert_eq!(fish_names(r#"complete -c pctl -n "x" -l write -r"#), None);
    }
}
