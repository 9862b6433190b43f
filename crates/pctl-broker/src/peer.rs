//! Who is behind a request: the [`Peer`] the kernel reported on the
//! socket (and what its client said), and the [`Program`] it acts for.
//!
//! The program behind a request is the `pctl` client's parent (the aws
//! CLI running `credential_process`, kubectl running the exec plugin), the
//! command `pctl exec` runs (when the client's own argv names it), or, at
//! the credential endpoint, the requesting process itself. Break-glass
//! roles ([`crate::guard`]) match it against `allowed_programs`; prompts
//! ([`crate::prompt`]) name it.

use crate::platform;

/// Who asked, as the kernel reported it.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    pub exe: Option<String>,
    /// What the client said it can do for its user ([`pctl_protocol::Caller`]);
    /// `None`: nothing said (prompts then go back to the client as before).
    pub caller: Option<pctl_protocol::Caller>,
    /// The peer is the program itself (a credential endpoint's requester),
    /// not a `pctl` client run by it ([`crate::guard`]).
    pub direct: bool,
    /// The request starts a credential endpoint: `allowed_programs` is
    /// checked at each of the endpoint's requests instead.
    pub serving: bool,
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The program behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub pid: Option<i32>,
    pub exe: Option<String>,
    pub argv: Vec<String>,
}

impl Program {
    fn of(pid: i32) -> Self {
        Program {
            pid: Some(pid),
            exe: platform::exe_of(pid).map(|p| p.display().to_string()),
            argv: platform::argv_of(pid).unwrap_or_default(),
        }
    }

    /// The names it is known by: its executable's, its argv[0]'s and,
    /// when argv[0] is the executable (an interpreter) and argv[1] a
    /// path, the script's.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        let exe = self.exe.as_deref().map(basename);
        v.extend(exe);
        if let Some(a0) = self.argv.first().map(|a| basename(a)) {
            v.push(a0);
            let interpreter = exe.is_some_and(|e| e == a0 || e.starts_with(a0));
            if let Some(script) = self.argv.get(1).filter(|s| interpreter && s.contains('/')) {
                v.push(basename(script));
            }
        }
        v.retain(|n| !n.is_empty());
        v.dedup();
        v
    }

    /// What it calls itself: its argv[0]'s basename, else its executable's.
    pub fn name(&self) -> String {
        self.argv
            .first()
            .map(|a| basename(a).to_string())
            .or_else(|| self.exe.as_deref().map(|e| basename(e).to_string()))
            .unwrap_or_else(|| "an unknown program".into())
    }

    /// For messages: `"terraform" (pid 42)`.
    pub fn shown(&self) -> String {
        let name = self.name();
        match self.pid {
            Some(pid) => format!("{} (pid {pid})", pctl_protocol::names::shown(&name)),
            None => pctl_protocol::names::shown(&name),
        }
    }
}

/// The program behind `peer`'s request ([module docs](self)).
pub fn program_behind(peer: &Peer) -> Option<Program> {
    let pid = peer.pid?;
    if peer.direct {
        return Some(Program::of(pid));
    }
    if let Some(claimed) = peer.caller.as_ref().and_then(|c| c.program.as_ref()) {
        // `pctl exec -- CMD`: believed only when the client's own argv has it
        let argv = platform::argv_of(pid).unwrap_or_default();
        if argv.iter().skip(1).any(|a| a == claimed) {
            return Some(Program {
                pid: None,
                exe: None,
                argv: vec![claimed.clone()],
            });
        }
    }
    Some(Program::of(platform::parent_of(pid)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_a_binary_and_of_a_script() {
        let bin = Program {
            pid: Some(1),
            exe: Some("/usr/local/bin/kubectl".into()),
            argv: vec!["kubectl".into(), "get".into()],
        };
        assert_eq!(bin.names(), vec!["kubectl"]);
        let script = Program {
            pid: Some(2),
            exe: Some("/usr/bin/python3.13".into()),
            argv: vec![
                "/usr/bin/python3".into(),
                "/venv/bin/aws".into(),
                "s3".into(),
            ],
        };
        assert_eq!(script.names(), vec!["python3.13", "python3", "aws"]);
        // an argument that is not a script path names nothing
        let c = Program {
            pid: Some(3),
            exe: Some("/usr/bin/bash".into()),
            argv: vec!["bash".into(), "-c".into()],
        };
        assert_eq!(c.names(), vec!["bash"]);
        assert_eq!(c.shown(), "\"bash\" (pid 3)");
    }
}

/// The program behind a request, as the desktop prompts name it.
#[derive(Debug, Clone)]
pub struct Requester {
    /// For the texts: `"kubectl" (pid 42)`.
    pub shown: String,
    /// What one program is known by across its runs (its name, without
    /// the pid), for telling it of one sign-in once.
    pub key: String,
}

impl Requester {
    pub fn of(peer: &Peer) -> Self {
        match program_behind(peer) {
            Some(p) => Requester {
                shown: p.shown(),
                key: p.name(),
            },
            None => Requester {
                shown: "a program".into(),
                key: String::new(),
            },
        }
    }
}
