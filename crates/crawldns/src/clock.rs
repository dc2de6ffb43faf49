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
            Self::Coarse => {
                let origin = origin();
                let since = coarse_nanos().saturating_sub(origin.coarse_nanos);
                origin.instant + Duration::from_nanos(u64::try_from(since).unwrap_or(0))
            }
        }
    }

    /// The current time on this clock as a [`Tick`]: what
    /// `Tick::of(self.now())` gives, in a few integer operations for the
    /// coarse clock (the cache reads it on every hit).
    #[inline]
    pub(crate) fn tick(self) -> Tick {
        match self {
            Self::Tokio => Tick::of(Instant::now()),
            Self::Coarse => Tick(coarse_nanos().saturating_sub(origin().coarse_nanos).max(0)),
        }
    }
}

/// A moment on the cache's timeline: nanoseconds since a process-wide
/// origin. Integer arithmetic where [`Instant`]'s (seconds and nanoseconds,
/// normalized at every step) costs tens of instructions a hit. Signed,
/// because tokio's paused clock may stand before the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tick(i64);

impl Tick {
    /// `instant` on the timeline (exact to the nanosecond; saturating
    /// ±292 years away).
    pub(crate) fn of(instant: Instant) -> Self {
        let origin = origin().instant;
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        if instant >= origin {
            Self(nanos(instant - origin))
        } else {
            Self(-nanos(origin - instant))
        }
    }

    /// `self + d`, saturating.
    pub(crate) fn add(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// Nanoseconds from `earlier` to `self`; zero when `earlier` is not
    /// earlier.
    pub(crate) fn nanos_since(self, earlier: Self) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }
}

/// The timeline's origin: a moment on tokio's clock and, read at the same
/// time, on the coarse clock.
struct Origin {
    instant: Instant,
    coarse_nanos: i64,
}

#[inline]
fn origin() -> &'static Origin {
    static ORIGIN: OnceLock<Origin> = OnceLock::new();
    ORIGIN.get_or_init(|| Origin {
        instant: Instant::now(),
        coarse_nanos: coarse_nanos(),
    })
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds (zero if it cannot be read).
// `time_t` and `c_long` are 32 bits on some targets.
#[allow(clippy::useless_conversion)]
#[inline]
fn coarse_nanos() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        return 0;
    }
    i64::from(ts.tv_sec)
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(ts.tv_nsec))
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

    #[test]
    fn ticks_are_the_instants_of_the_same_clock() {
        // The coarse clock's tick is the tick of its instant (both read
        // the same coarse timestamp unless it moves in between: retry).
        let agreed = (0..100).any(|_| {
            let before = CacheClock::Coarse.tick();
            let instant = CacheClock::Coarse.now();
            let after = CacheClock::Coarse.tick();
            before == after && Tick::of(instant) == before
        });
        assert!(agreed);
        let t = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(Tick::of(t + s), Tick::of(t).add(s));
        assert_eq!(Tick::of(t + s).nanos_since(Tick::of(t)), 1_000_000_000);
        assert_eq!(Tick::of(t).nanos_since(Tick::of(t + s)), 0);
        let early = Tick::of(origin().instant - Duration::from_millis(3));
        assert_eq!(Tick::of(origin().instant).nanos_since(early), 3_000_000);
        assert!(Tick::of(t).add(Duration::MAX) > Tick::of(t + s));
    }
}
