//! `pctl login --role R`: open the AWS console signed in as a role.
//!
//! The daemon builds the sign-in URL (federation endpoint of the role's
//! partition). The URL is a bearer credential for 15 minutes, and an
//! opener's argv is readable by every local user (`/proc/PID/cmdline`) for
//! as long as it runs, which for a browser is hours. So for a browser the
//! daemon keeps the URL and answers a one-shot loopback link that redirects
//! to it once, for its own user only, within a minute
//! (`pctl_broker::oneshot`); this command hands that link to the platform's
//! opener (`$BROWSER` when set, else `xdg-open` on Linux, `open` on macOS)
//! without waiting for the opener to end. `--stdout` prints the URL itself
//! (the user asked for it).

use anyhow::Result;

use crate::client::{Client, ConsoleLoginArgs};

/// Open the AWS console signed in as a role (federation sign-in URL).
#[derive(clap::Args, Debug)]
pub struct Args {
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
    /// The role session's and console session's length, e.g. 1h, 12h (default: the role's
    /// `duration`); clamped to what AWS allows for the role, saying so on stderr.
    #[arg(long, value_name = "DURATION", value_parser = super::session_flags::parse_duration)]
    duration: Option<std::time::Duration>,
}

pub fn run(client: &Client, args: Args) -> Result<()> {
    let Args {
        role,
        region,
        path,
        destination,
        stdout,
        duration,
    } = args;
    let req = ConsoleLoginArgs {
        role: role.clone(),
        region,
        path,
        destination,
        duration,
    };
    let login = client.console_login(req, !stdout)?;
    super::session_flags::say(login.note.as_deref());
    if stdout {
        return super::write_secret(format!("{}\n", login.url));
    }
    let tried = if login.browser == pctl_protocol::Browser::Default {
        crate::browser::open_url(&login.url)?
    } else {
        // [console] browser: one browser identity per role
        let argv = crate::browser::argv_for(&login.browser, &role, &login.url)?;
        crate::browser::launch(&argv)?;
        argv[0].clone()
    };
    eprintln!(
        "pctl: opened the AWS console as role {role} with {tried} (a one-use link for the next \
         minute; console session until {})",
        login.session_expires
    );
    Ok(())
}
