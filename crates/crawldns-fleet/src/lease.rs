//! Partition leases: who consumes which partition, decided without I/O.
//!
//! A lease is `(owner, expires_ms)` in Redis time, stored per partition.
//! [`plan`] takes what a worker read (the table, Redis's clock, how many
//! workers are alive) and returns what to do: renew what it holds, acquire
//! free partitions or steal expired ones up to its fair share, release what
//! it holds above it. The driver performs each action as a compare-and-set
//! on the value it read, so two workers never both win a partition.
//!
//! A worker also fences itself: it stops consuming a partition at
//! [`LeaseConfig::fence`] after it *sent* the last successful renewal, a
//! margin before anyone else may steal it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::partition::partition_of_host;

/// Lease timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a lease lasts after it is taken or renewed (default 5 s).
    pub ttl: Duration,
    /// How long before expiry a worker stops consuming on its own clock
    /// (default ttl / 5), covering clock-rate drift and the round trip.
    pub margin: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self::with_ttl(Duration::from_secs(5))
    }
}

impl LeaseConfig {
    /// A lease of `ttl` with the default margin (a fifth of it).
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            ttl,
            margin: ttl / 5,
        }
    }

    /// How often a worker renews (and reports, and rebalances): three
    /// times per lease, and at least once a second.
    pub fn tick(&self) -> Duration {
        (self.ttl / 3).min(Duration::from_secs(1))
    }

    /// How long after sending a successful renewal the worker may go on
    /// consuming the partition.
    pub fn fence(&self) -> Duration {
        self.ttl.saturating_sub(self.margin)
    }

    /// The lease length in milliseconds.
    pub fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }
}

/// One partition's lease as stored in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The worker holding it.
    pub owner: String,
    /// When it runs out, in Redis time (ms since the epoch).
    pub expires_ms: u64,
}

impl Lease {
    /// The stored form: `EXPIRES_MS OWNER`.
    pub fn encode(&self) -> String {
        format!("{} {}", self.expires_ms, self.owner)
    }

    /// Parses the stored form.
    pub fn decode(text: &str) -> Option<Self> {
        let (expires, owner) = text.split_once(' ')?;
        Some(Self {
            owner: owner.to_owned(),
            expires_ms: expires.parse().ok()?,
        })
    }

    /// Whether the lease still holds at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_ms > now_ms
    }
}

/// What a worker knows when it plans.
#[derive(Debug, Clone, Copy)]
pub struct LeaseView<'a> {
    /// Redis's clock, ms since the epoch.
    pub now_ms: u64,
    /// This worker's id.
    pub me: &'a str,
    /// Partitions of the fleet.
    pub partitions: u32,
    /// The lease table as read (partitions without a lease are absent).
    pub leases: &'a BTreeMap<u32, Lease>,
    /// Workers alive, this one included.
    pub live_workers: usize,
}

/// One thing to do about one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// Take a partition nobody holds.
    Acquire {
        /// The partition.
        partition: u32,
    },
    /// Take a partition whose lease ran out (its holder died, stalled, or
    /// was this worker before a long pause).
    Steal {
        /// The partition.
        partition: u32,
        /// The expired lease, as read.
        from: Lease,
    },
    /// Extend a lease this worker holds.
    Renew {
        /// The partition.
        partition: u32,
        /// The lease as read.
        current: Lease,
    },
    /// Give up a partition above the fair share (once drained).
    Release {
        /// The partition.
        partition: u32,
        /// The lease as read.
        current: Lease,
    },
}

impl LeaseAction {
    /// The partition the action is about.
    pub fn partition(&self) -> u32 {
        match self {
            Self::Acquire { partition }
            | Self::Steal { partition, .. }
            | Self::Renew { partition, .. }
            | Self::Release { partition, .. } => *partition,
        }
    }

    /// The stored value the compare-and-set expects (`None`: no lease).
    pub fn expected(&self) -> Option<&Lease> {
        match self {
            Self::Acquire { .. } => None,
            Self::Steal { from, .. } => Some(from),
            Self::Renew { current, .. } | Self::Release { current, .. } => Some(current),
        }
    }
}

/// Partitions per worker when `live` workers share `partitions`: rounded
/// up, so that the shares together cover every partition.
pub fn fair_share(partitions: u32, live: usize) -> u32 {
    let live = u32::try_from(live.max(1)).unwrap_or(u32::MAX);
    partitions.div_ceil(live)
}

/// What this worker should do now. Renewals come first, then releases,
/// then acquisitions (free partitions before expired ones), each in an
/// order that starts at a place derived from the worker's id, so that
/// workers starting together mostly reach for different partitions.
pub fn plan(view: &LeaseView<'_>) -> Vec<LeaseAction> {
    let LeaseView {
        now_ms,
        me,
        partitions,
        leases,
        live_workers,
    } = *view;
    let target = fair_share(partitions, live_workers);
    let start = partition_of_host(me, partitions.max(1));
    let order = |p: u32| (p + partitions - start) % partitions.max(1);

    let mut mine: Vec<(u32, &Lease)> = leases
        .iter()
        .filter(|(&p, l)| p < partitions && l.owner == me && l.is_live(now_ms))
        .map(|(&p, l)| (p, l))
        .collect();
    mine.sort_by_key(|&(p, _)| order(p));
    let held = u32::try_from(mine.len()).unwrap_or(u32::MAX);

    let mut actions: Vec<LeaseAction> = Vec::new();
    let keep = usize::try_from(target.min(held)).unwrap_or(usize::MAX);
    for (i, &(partition, lease)) in mine.iter().enumerate() {
        if i < keep {
            actions.push(LeaseAction::Renew {
                partition,
                current: lease.clone(),
            });
        } else {
            actions.push(LeaseAction::Release {
                partition,
                current: lease.clone(),
            });
        }
    }
    if held >= target {
        return actions;
    }
    let wanted = usize::try_from(target - held).unwrap_or(usize::MAX);
    let mut free: Vec<u32> = (0..partitions)
        .filter(|p| !leases.contains_key(p))
        .collect();
    free.sort_by_key(|&p| order(p));
    let mut expired: Vec<(u32, &Lease)> = leases
        .iter()
        .filter(|(&p, l)| p < partitions && !l.is_live(now_ms))
        .map(|(&p, l)| (p, l))
        .collect();
    expired.sort_by_key(|&(p, _)| order(p));
    let takes = free
        .into_iter()
        .map(|partition| LeaseAction::Acquire { partition })
        .chain(
            expired
                .into_iter()
                .map(|(partition, from)| LeaseAction::Steal {
                    partition,
                    from: from.clone(),
                }),
        )
        .take(wanted);
    actions.extend(takes);
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(owner: &str, expires_ms: u64) -> Lease {
        Lease {
            owner: owner.into(),
            expires_ms,
        }
    }

    fn table(entries: &[(u32, &str, u64)]) -> BTreeMap<u32, Lease> {
        entries
            .iter()
            .map(|&(p, owner, exp)| (p, lease(owner, exp)))
            .collect()
    }

    /// Actions as short strings: `+3` acquire, `!3<w2` steal, `=3` renew,
    /// `-3` release; sorted so a table can list them in any order.
    fn run(
        me: &str,
        now: u64,
        partitions: u32,
        live: usize,
        t: &[(u32, &str, u64)],
    ) -> Vec<String> {
        let leases = table(t);
        let mut out: Vec<String> = plan(&LeaseView {
            now_ms: now,
            me,
            partitions,
            leases: &leases,
            live_workers: live,
        })
        .into_iter()
        .map(|a| match a {
            LeaseAction::Acquire { partition } => format!("+{partition}"),
            LeaseAction::Steal { partition, from } => format!("!{partition}<{}", from.owner),
            LeaseAction::Renew { partition, .. } => format!("={partition}"),
            LeaseAction::Release { partition, .. } => format!("-{partition}"),
        })
        .collect();
        out.sort();
        out
    }

    #[test]
    fn decisions_table() {
        type Row<'a> = (
            &'a str,
            &'a str,
            u64,
            u32,
            usize,
            &'a [(u32, &'a str, u64)],
            &'a [&'a str],
        );
        let rows: &[Row] = &[
            (
                "alone, nothing held: take all",
                "w1",
                1000,
                4,
                1,
                &[],
                &["+0", "+1", "+2", "+3"],
            ),
            (
                "holding all, alone: renew all",
                "w1",
                1000,
                3,
                1,
                &[(0, "w1", 2000), (1, "w1", 2000), (2, "w1", 2000)],
                &["=0", "=1", "=2"],
            ),
            // "w1" starts its order at partition 1 (FNV-1a("w1") mod 4):
            // it keeps 1 and 2, the first two in its order.
            (
                "two more joined: keep the fair share, release the rest",
                "w1",
                1000,
                4,
                3,
                &[
                    (0, "w1", 2000),
                    (1, "w1", 2000),
                    (2, "w1", 2000),
                    (3, "w1", 2000),
                ],
                &["-0", "-3", "=1", "=2"],
            ),
            (
                "newcomer, nothing free, nothing expired: wait",
                "w2",
                1000,
                2,
                2,
                &[(0, "w1", 2000), (1, "w1", 2000)],
                &[],
            ),
            (
                "newcomer takes what was released",
                "w2",
                1000,
                4,
                2,
                &[(2, "w1", 2000), (3, "w1", 2000)],
                &["+0", "+1"],
            ),
            (
                "the only survivor steals every expired lease",
                "w2",
                5000,
                4,
                1,
                &[
                    (0, "w1", 4000),
                    (1, "w1", 4000),
                    (2, "w2", 9000),
                    (3, "w3", 4000),
                ],
                &["!0<w1", "!1<w1", "!3<w3", "=2"],
            ),
            (
                "two survivors: each steals up to its share",
                "w2",
                5000,
                4,
                2,
                &[
                    (0, "w1", 4000),
                    (1, "w1", 4000),
                    (2, "w2", 9000),
                    (3, "w3", 4000),
                ],
                &["!0<w1", "=2"],
            ),
            (
                "an expiry exactly now counts as expired",
                "w2",
                4000,
                2,
                1,
                &[(0, "w1", 4000), (1, "w2", 9000)],
                &["!0<w1", "=1"],
            ),
            (
                "my own lease that ran out is taken back like any expired one",
                "w1",
                5000,
                2,
                1,
                &[(0, "w1", 4000), (1, "w1", 9000)],
                &["!0<w1", "=1"],
            ),
            (
                "free partitions go before expired ones",
                "w1",
                5000,
                3,
                3,
                &[(1, "w9", 10), (2, "w2", 9000)],
                &["+0"],
            ),
            (
                "leases of partitions beyond P are ignored",
                "w1",
                5000,
                2,
                1,
                &[(7, "w1", 9000)],
                &["+0", "+1"],
            ),
            (
                "zero live workers is read as one",
                "w1",
                5000,
                2,
                0,
                &[],
                &["+0", "+1"],
            ),
        ];
        for &(what, me, now, partitions, live, leases, want) in rows {
            assert_eq!(run(me, now, partitions, live, leases), want, "{what}");
        }
    }

    #[test]
    fn shares_cover_every_partition() {
        assert_eq!(fair_share(16, 3), 6);
        assert_eq!(fair_share(16, 1), 16);
        assert_eq!(fair_share(16, 0), 16);
        assert_eq!(fair_share(3, 5), 1);
        for p in 1..40u32 {
            for live in 1..10usize {
                assert!(fair_share(p, live) * live as u32 >= p);
            }
        }
    }

    #[test]
    fn workers_starting_together_reach_for_different_partitions() {
        let empty = BTreeMap::new();
        let first = |me: &str| {
            plan(&LeaseView {
                now_ms: 0,
                me,
                partitions: 16,
                leases: &empty,
                live_workers: 3,
            })[0]
                .partition()
        };
        let starts: std::collections::BTreeSet<u32> = ["worker-a", "worker-b", "worker-c"]
            .into_iter()
            .map(first)
            .collect();
        assert!(starts.len() >= 2, "{starts:?}");
    }

    #[test]
    fn leases_round_trip_and_timing() {
        let l = lease("host-1:42:ab", 1_700_000_000_123);
        assert_eq!(Lease::decode(&l.encode()), Some(l.clone()));
        assert_eq!(Lease::decode("garbage"), None);
        assert_eq!(Lease::decode("12x w"), None);
        let c = LeaseConfig::with_ttl(Duration::from_secs(5));
        assert_eq!(c.fence(), Duration::from_secs(4));
        assert_eq!(c.tick(), Duration::from_secs(1));
        assert_eq!(
            LeaseConfig::with_ttl(Duration::from_millis(1500)).tick(),
            Duration::from_millis(500)
        );
        assert_eq!(c.ttl_ms(), 5000);
        assert_eq!(
            LeaseAction::Steal {
                partition: 3,
                from: l.clone()
            }
            .expected(),
            Some(&l)
        );
        assert_eq!(LeaseAction::Acquire { partition: 3 }.expected(), None);
    }
}
