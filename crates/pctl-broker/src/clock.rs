//! Time as the broker sees it: the wall clock (expirations, audit times)
//! and a boot clock that keeps counting while the machine is suspended
//! (idle and lifetime locks). Both sit behind [`Clock`] so the state
//! machine can be tested with a [`FakeClock`] in milliseconds.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The two clocks the broker reads.
pub trait Clock: Send + Sync {
    /// Wall-clock time: what STS expirations and audit records use.
    fn now(&self) -> SystemTime;
    /// Time since an arbitrary fixed point that includes suspended time, so
    /// a laptop asleep overnight wakes up past its idle and lifetime limits.
    fn boot(&self) -> Duration;
}

/// The operating system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn boot(&self) -> Duration {
        boot_time()
    }
}

/// Reads the suspend-counting clock.
///
/// Linux: `CLOCK_BOOTTIME` (`CLOCK_MONOTONIC` and `Instant` stop during
/// suspend). macOS: `CLOCK_MONOTONIC`, which Apple documents as "continues
/// to increment while the system is asleep" (it is `mach_continuous_time`;
/// `Instant` uses `CLOCK_UPTIME_RAW`, which stops). Kept here rather than
/// in `platform` because it is the clock's only OS-specific line.
fn boot_time() -> Duration {
    #[cfg(target_os = "linux")]
    let id = libc::CLOCK_BOOTTIME;
    #[cfg(not(target_os = "linux"))]
    let id = libc::CLOCK_MONOTONIC;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        // Cannot happen for these clock ids; wall time is the safe fallback
        // (it also advances across suspend).
        return SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A clock for tests: follows tokio's clock (so paused-time tests advance
/// it with `tokio::time::advance`) plus jumps the test makes. A suspend is
/// [`FakeClock::suspend`]: wall and boot clocks jump, tokio's does not.
#[derive(Debug)]
pub struct FakeClock {
    start_wall: SystemTime,
    start: tokio::time::Instant,
    jumped: Mutex<Duration>,
}

impl FakeClock {
    /// A clock starting at `wall`.
    pub fn new(wall: SystemTime) -> Self {
        FakeClock {
            start_wall: wall,
            start: tokio::time::Instant::now(),
            jumped: Mutex::new(Duration::ZERO),
        }
    }

    /// The machine sleeps for `d`: wall and boot clocks move, timers do not.
    pub fn suspend(&self, d: Duration) {
        *self.jumped.lock().unwrap_or_else(|p| p.into_inner()) += d;
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed() + *self.jumped.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        self.start_wall + self.elapsed()
    }

    fn boot(&self) -> Duration {
        self.elapsed()
    }
}

/// RFC 3339 (UTC, whole seconds) for replies and audit records.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    dt.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_clock_advances() {
        let a = SystemClock.boot();
        std::thread::sleep(Duration::from_millis(5));
        assert!(SystemClock.boot() > a);
    }

    #[tokio::test(start_paused = true)]
    async fn fake_suspend_moves_boot_and_wall_not_timers() {
        let c = FakeClock::new(SystemTime::UNIX_EPOCH);
        let timer = tokio::time::Instant::now();
        c.suspend(Duration::from_secs(3600));
        assert_eq!(c.boot(), Duration::from_secs(3600));
        assert_eq!(c.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(3600));
        assert_eq!(timer.elapsed(), Duration::ZERO);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(c.boot(), Duration::from_secs(3601));
    }
}
