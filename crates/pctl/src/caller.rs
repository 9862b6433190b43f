//! What this client can do for its user, sent with every request
//! ([`pctl_protocol::Caller`]): whether it has a terminal to ask on (else
//! the daemon asks through pinentry), which program `pctl exec` runs, and
//! the yes to a break-glass role's new session, asked on the terminal.

use std::io::{BufRead, Write};
use std::sync::OnceLock;

use anyhow::{bail, Result};
use pctl_protocol::Caller;

static PROGRAM: OnceLock<String> = OnceLock::new();

/// `pctl exec` runs `program` with what it gets (checked against a role's
/// `allowed_programs` instead of this client's parent).
pub fn set_program(program: &str) {
    let _ = PROGRAM.set(program.to_string());
}

/// The controlling terminal, when this process has one.
fn tty() -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
}

/// This client, as the daemon should know it.
pub fn current() -> Caller {
    Caller {
        terminal: tty().is_some(),
        program: PROGRAM.get().cloned(),
        confirmed: None,
    }
}

/// The role a confirmation question names ("role NAME is a break-glass role ...").
fn role_in(question: &str) -> Option<&str> {
    question.strip_prefix("role ")?.split_whitespace().next()
}

/// Asks `question` (the daemon's) on the terminal: the role confirmed on
/// a yes; a no (or no answer) is one line and an error.
pub fn confirm(question: &str) -> Result<String> {
    let Some(role) = role_in(question) else {
        bail!("{question}");
    };
    let Some(mut tty) = tty() else {
        bail!("{question} (no terminal to answer on): nothing was issued");
    };
    write!(tty, "pctl: {question} [y/N] ")?;
    tty.flush()?;
    let mut line = String::new();
    std::io::BufReader::new(&tty).read_line(&mut line)?;
    match line.trim() {
        "y" | "Y" | "yes" | "Yes" | "YES" => Ok(role.to_string()),
        _ => bail!("role {role}: not confirmed, nothing was issued"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_question_names_the_role() {
        assert_eq!(
            super::role_in("role prod-admin is a break-glass role (confirm = true): allow?"),
            Some("prod-admin")
        );
        assert_eq!(super::role_in("something else"), None);
    }
}
