//! The MFA code: where it comes from, and the rule that AWS never sees the
//! same one-time password twice.
//!
//! Today the only [`CodeSource`] is the item itself (1Password computes the
//! current TOTP); a prompt or a command would be further variants.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::Mfa;

/// Where the MFA code for GetSessionToken comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodeSource {
    /// The one-time password field of the item, read with the keys.
    #[default]
    FromItem,
}

impl CodeSource {
    /// The serial and code to send, given what the source read.
    pub fn code(self, from_item: Option<Mfa>) -> Option<Mfa> {
        match self {
            CodeSource::FromItem => from_item,
        }
    }
}

/// The 30-second TOTP step of `t`.
pub fn totp_step(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 30
}

/// AWS refuses a code twice, so an unlock in the same TOTP step as the last
/// one waits for the next code. Only the step number is kept, never a code.
#[derive(Default)]
pub struct NeverTwice {
    last_step: Mutex<Option<u64>>,
}

impl NeverTwice {
    /// How long to wait at `now` before reading a new code (`None`: go).
    pub fn wait(&self, now: SystemTime) -> Option<Duration> {
        let last = (*self.last_step.lock().unwrap_or_else(|p| p.into_inner()))?;
        if totp_step(now) > last {
            return None;
        }
        let next = SystemTime::UNIX_EPOCH
            + Duration::from_secs((last + 1) * 30)
            + Duration::from_millis(500);
        Some(
            next.duration_since(now)
                .unwrap_or_default()
                .min(Duration::from_secs(31)),
        )
    }

    /// A code read at `at` was sent to AWS.
    pub fn sent(&self, at: SystemTime) {
        *self.last_step.lock().unwrap_or_else(|p| p.into_inner()) = Some(totp_step(at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_step_waits_for_the_next_code() {
        let n = NeverTwice::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(30 * 1000 + 10);
        assert_eq!(n.wait(t), None);
        n.sent(t);
        assert_eq!(n.wait(t), Some(Duration::from_millis(20_500)));
        assert_eq!(n.wait(t + Duration::from_secs(20)), None);
    }
}
