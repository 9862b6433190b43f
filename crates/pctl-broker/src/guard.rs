//! Break-glass roles: `allowed_programs` (only named programs get the
//! role's credentials) and `confirm = true` (every new session needs the
//! user's yes, cached ones do not).
//!
//! The program behind a request ([`crate::peer::program_behind`]) matches
//! when the basename of its executable, of its `argv[0]`, or (an
//! interpreter running a script) of the script is allowed.
//!
//! This guards against accidents and the wrong tool, not against malware
//! running as the same user, which can rename itself or speak the
//! protocol (SECURITY.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pctl_protocol::{ClientEnv, ErrorKind};

use crate::config::{Config, RoleConfig};
use crate::failure::{needs_env, Failure};
use crate::flight::Flight;
use crate::peer::{program_behind, Peer, Program};
use crate::prompt::pin_error_after;
use crate::prompt::pinentry::{self, Pinentry};

/// How long a question asked on a client's terminal may be answered.
const CONFIRM_WINDOW: Duration = Duration::from_secs(300);

/// Whether the program name `name` matches an `allowed_programs` entry (a
/// file name, or a prefix ending in `*`: the config checks the syntax).
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// `role` and the roles up its chain (`source_role`): a restriction on a
/// source holds for roles chained from it.
/// Ends at the chain's root, at a role already seen, or after 33 roles;
/// nothing is allocated (this runs several times per request).
fn chain<'c>(cfg: &'c Config, role: &'c RoleConfig) -> impl Iterator<Item = &'c RoleConfig> {
    let source = |r: &'c RoleConfig| r.source_role.as_ref().and_then(|s| cfg.roles.get(s));
    // whether `key` is one of the first `n` roles of the chain
    let seen = move |key: &str, n: usize| {
        std::iter::successors(Some(role), move |r| source(r))
            .take(n)
            .any(|r| r.key == key)
    };
    let mut next = Some(role);
    let mut n = 0;
    std::iter::from_fn(move || {
        let r = next?;
        n += 1;
        next = source(r).filter(|src| n <= 32 && !seen(&src.key, n));
        Some(r)
    })
}

/// Whether new sessions of `role` need the user's yes (here or up its chain).
pub fn confirm_needed(cfg: &Config, role: &RoleConfig) -> bool {
    chain(cfg, role).any(|r| r.confirm)
}

/// Refuses the request when `role` (or a role up its chain) names
/// `allowed_programs` and the program behind it is not one of them.
pub fn check_program(cfg: &Config, role: &RoleConfig, peer: &Peer) -> Result<(), Failure> {
    if peer.serving {
        return Ok(());
    }
    let mut program: Option<Option<Program>> = None;
    for r in chain(cfg, role) {
        if r.allowed_programs.is_empty() {
            continue;
        }
        let p = program.get_or_insert_with(|| program_behind(peer));
        let ok = p.as_ref().is_some_and(|p| {
            p.names()
                .iter()
                .any(|n| r.allowed_programs.iter().any(|pat| matches(pat, n)))
        });
        if !ok {
            let who = p
                .as_ref()
                .map(Program::shown)
                .unwrap_or_else(|| "a program pctl could not identify".into());
            let via = if r.key == role.key {
                String::new()
            } else {
                format!(" (through its source role {})", r.key)
            };
            return Err(Failure(
                ErrorKind::Refused,
                format!(
                    "role {}{via} may be used only by {}: {who} was refused (allowed_programs in {})",
                    role.key,
                    r.allowed_programs.join(", "),
                    r.file
                ),
            ));
        }
    }
    Ok(())
}

/// Questions asked on clients' terminals: (client pid, role) -> when.
static ASKED: Mutex<Option<HashMap<(i32, String), Instant>>> = Mutex::new(None);

/// One confirmation at a time per role: a second request waits for the
/// first's answer (and then finds its session cached).
static TURNS: Mutex<Option<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = Mutex::new(None);

/// Held while a confirmed session is made: the next request for the role
/// waits, then finds it cached.
pub type Turn = tokio::sync::OwnedMutexGuard<()>;

/// Waits for the role's turn.
pub async fn turn(role: &str) -> Turn {
    let m = TURNS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .entry(role.to_string())
        .or_default()
        .clone();
    m.lock_owned().await
}

/// What the user is asked: one line naming the role and the program.
fn question(role: &RoleConfig, who: &str) -> String {
    format!(
        "role {} is a break-glass role (confirm = true): allow a new session for {who}?",
        role.key
    )
}

/// Asks the user for a yes to a new session of `role`: on the client's
/// terminal (the client asks after [`ErrorKind::NeedsConfirmation`] and
/// resends, naming the role in [`pctl_protocol::Caller::confirmed`]), or
/// through pinentry's CONFIRM when the client has none. `Ok` says who
/// confirmed how, for the audit line.
pub async fn confirm(
    cfg: &Config,
    role: &RoleConfig,
    peer: &Peer,
    env: Option<&ClientEnv>,
) -> Result<String, Failure> {
    let program = program_behind(peer);
    let program = program.as_ref();
    let who = program
        .map(|p| p.shown())
        .unwrap_or_else(|| "an unknown program".into());
    if let Some(caller) = peer.caller.as_ref().filter(|c| c.terminal) {
        let Some(pid) = peer.pid else {
            return Err(Failure(
                ErrorKind::Refused,
                format!(
                    "role {} needs a confirmation and pctl cannot tell which client asked: nothing was issued",
                    role.key
                ),
            ));
        };
        let key = (pid, role.key.clone());
        let mut asked = ASKED.lock().unwrap_or_else(|p| p.into_inner());
        let asked = asked.get_or_insert_with(HashMap::new);
        asked.retain(|_, at| at.elapsed() < CONFIRM_WINDOW);
        if caller.confirmed.as_deref() == Some(role.key.as_str()) && asked.remove(&key).is_some() {
            return Ok(format!("confirmed on the terminal of pid {pid} for {who}"));
        }
        asked.insert(key, Instant::now());
        return Err(Failure(ErrorKind::NeedsConfirmation, question(role, &who)));
    }
    let env = env.ok_or_else(needs_env)?;
    let path = pinentry::find(cfg.daemon.pinentry.as_deref(), env).map_err(|why| {
        Failure(
            ErrorKind::Refused,
            format!(
                "role {} needs a confirmation and the client has no terminal: {why}: nothing was issued",
                role.key
            ),
        )
    })?;
    let key = (
        role.key.clone(),
        program.map(|p| p.name()).unwrap_or_default(),
    );
    if let Some(how) = unclaimed_yes(&key) {
        return Ok(how);
    }
    let pin = Pinentry::new(path.clone(), env, cfg.daemon.op_timeout);
    let desc = format!("{}\n\n(identity {})", question(role, &who), role.identity);
    let (role_key, identity) = (role.key.clone(), role.identity.clone());
    let timeout = cfg.daemon.op_timeout;
    let flight = window(&key);
    let ask = move || async move {
        let _waiting = crate::prompt::waiting(
            &identity,
            &format!("confirmation of role {role_key} in pinentry"),
        );
        let answer = match pin.confirm("pctl: break-glass role", &desc).await {
            Ok(true) => Ok(format!(
                "confirmed in pinentry {} for {who}",
                path.display()
            )),
            Ok(false) => Err(Failure(
                ErrorKind::Refused,
                format!(
                    "role {role_key}: the new session for {who} was denied in pinentry: nothing was issued"
                ),
            )),
            Err(e) => Err(Failure(
                ErrorKind::Refused,
                format!(
                    "role {role_key}: no confirmation for {who}: {}: nothing was issued",
                    pin_error_after(&e, timeout)
                ),
            )),
        };
        if let Ok(how) = &answer {
            // kept for the program's next request if nobody waits now
            lock(&UNCLAIMED)
                .get_or_insert_with(HashMap::new)
                .insert(key, (Instant::now(), how.clone()));
        }
        answer
    };
    let answer = flight.run(|| None, ask).await.0;
    // the yes is this request's (or a later one's, when this one went away)
    answer.map(|how| {
        let key = (
            role.key.clone(),
            program.map(|p| p.name()).unwrap_or_default(),
        );
        unclaimed_yes(&key).unwrap_or(how)
    })
}

/// What is kept per (role, program name).
type ByWindow<T> = Mutex<Option<HashMap<(String, String), T>>>;

/// Confirmations asked in pinentry now, one window per (role, program):
/// the window lives in a task of its own ([`Flight`]), so an SDK at the
/// credential endpoint that gives up on its HTTP request (boto3 does after
/// 2 s) and retries finds the same window instead of a new one.
static WINDOWS: ByWindow<Arc<Flight<String>>> = Mutex::new(None);

/// A yes given in a window after its request went away, for the same
/// program's next request of the role (once, within [`UNCLAIMED_FOR`]).
static UNCLAIMED: ByWindow<(Instant, String)> = Mutex::new(None);

/// How long a yes nobody waited for is kept.
const UNCLAIMED_FOR: Duration = Duration::from_secs(120);

fn lock<T>(m: &ByWindow<T>) -> std::sync::MutexGuard<'_, Option<HashMap<(String, String), T>>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A lock forgets every yes nobody claimed yet.
pub fn forget_unclaimed() {
    lock(&UNCLAIMED).take();
}

fn window(key: &(String, String)) -> Arc<Flight<String>> {
    let mut w = lock(&WINDOWS);
    let w = w.get_or_insert_with(HashMap::new);
    w.retain(|k, f| k == key || f.running());
    w.entry(key.clone()).or_default().clone()
}

fn unclaimed_yes(key: &(String, String)) -> Option<String> {
    let mut u = lock(&UNCLAIMED);
    let u = u.get_or_insert_with(HashMap::new);
    u.retain(|_, (at, _)| at.elapsed() < UNCLAIMED_FOR);
    u.remove(key).map(|(_, how)| how)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches(
            "terraform-provider-aws*",
            "terraform-provider-aws_v5.1.0_x5"
        ));
        assert!(!matches("terraform", "terraform-provider-aws_v5"));
        assert!(matches("kubectl", "kubectl"));
    }

    /// The chain is the role and its sources up to the root, and ends at a
    /// role already seen (a cycle, which the config's validation refuses,
    /// still ends) and after 33 roles.
    #[test]
    fn chain_ends_at_the_root_or_a_role_already_seen() {
        let text = include_str!("../../../tests/fixtures/pctl.toml");
        let mut cfg = Config::parse(std::path::Path::new("/c/pctl.toml"), text).unwrap();
        let base = cfg.roles["admin"].clone();
        let role = |key: &str, source: Option<&str>| RoleConfig {
            key: key.into(),
            source_role: source.map(Into::into),
            ..base.clone()
        };
        for (k, s) in [("a", Some("b")), ("b", Some("c")), ("c", None)] {
            cfg.roles.insert(k.into(), role(k, s));
        }
        for (k, s) in [("x", Some("y")), ("y", Some("z")), ("z", Some("y"))] {
            cfg.roles.insert(k.into(), role(k, s));
        }
        for i in 0..40 {
            let (k, s) = (format!("l{i}"), format!("l{}", i + 1));
            cfg.roles.insert(k.clone(), role(&k, Some(&s)));
        }
        let keys = |k: &str| -> Vec<String> {
            chain(&cfg, &cfg.roles[k]).map(|r| r.key.clone()).collect()
        };
        assert_eq!(keys("a"), ["a", "b", "c"]);
        assert_eq!(keys("c"), ["c"]);
        assert_eq!(keys("x"), ["x", "y", "z"]);
        assert_eq!(keys("z"), ["z", "y"]);
        let long = keys("l0");
        assert_eq!(long.len(), 33, "{long:?}");
        assert_eq!(long.last().map(String::as_str), Some("l32"));
    }
}
