//! `--duration` and `--region`, as aws-vault has them, on the commands that
//! hand out a role's session (`credential-process`, `exec`, `login`).

use std::time::Duration;

/// A role session's length and region for this one command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SessionFlags {
    /// The role session's length, e.g. 15m, 1h, 12h (default: the role's `duration`). The
    /// daemon clamps it to what AWS allows for the role (chained: 1h; AssumeRole: 15m-12h;
    /// IAM Identity Center: its permission set's) and says so on stderr.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// The session's region (AWS_REGION and the role's STS calls) instead of the role's.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

impl SessionFlags {
    /// The duration in whole seconds, as the request carries it.
    pub fn seconds(&self) -> Option<u64> {
        self.duration.map(|d| d.as_secs())
    }
}

/// `1h`, `90m`, `1h30m`, `3600s` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    humantime::parse_duration(s)
        .map_err(|_| format!("{s:?} is not a duration: use e.g. 15m, 1h, 12h"))
}

/// Prints the daemon's note (a clamped duration) on stderr.
pub fn say(note: Option<&str>) {
    if let Some(n) = note {
        eprintln!("pctl: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("900").unwrap(), Duration::from_secs(900));
        assert!(parse_duration("soon").unwrap_err().contains("15m"));
    }
}
