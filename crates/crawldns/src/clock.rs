//! The cache's clock: tokio's (which a test can pause), or the kernel's
//! coarse monotonic clock, which is 5–10× cheaper to read and plenty fine
//! for TTLs counted in seconds.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// Which clock the cache reads on every lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheClock {
    /// `CLOCK_MONOTONIC_COARSE` (resolution of a few milliseconds; about
    /// 10 ns a read where `CLOCK_MONOTONIC` costs 20–100 ns on a VM).
    #[default]
    Coarse,
    /// `tokio::time::Instant::now()`: follows tokio's paused test clock.
    Tokio,
}

impl CacheClock {
    /// The current time on this clock.
    pub fn now(self) -> Instant {
        match self {
            Self::Tokio => Instant::now(),
            Self::Coarse => coarse_now(),
        }
    }
}

fn coarse_now() -> Instant {
    static BASE: OnceLock<(Instant, Duration)> = OnceLock::new();
    let (base, base_ts) = *BASE.get_or_init(|| (Instant::now(), coarse_timestamp()));
    base + coarse_timestamp().saturating_sub(base_ts)
}

fn coarse_timestamp() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_tracks_the_fine_clock() {
        let fine = Instant::now();
        let coarse = CacheClock::Coarse.now();
        let gap = if coarse > fine {
            coarse - fine
        } else {
            fine - coarse
        };
        assert!(gap < Duration::from_millis(50), "{gap:?}");
        std::thread::sleep(Duration::from_millis(30));
        assert!(CacheClock::Coarse.now() > coarse);
    }
}
