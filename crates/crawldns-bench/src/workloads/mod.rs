//! The workloads. Each is one module with one `run` function generic over
//! [`Peer`], returning one sample; the suite repeats it and takes medians.

use std::sync::Arc;

use crawldns_sys::bounded::BoundedSet;
use serde::{Deserialize, Serialize};
use tokio::task::JoinError;

use crate::measure::Tally;
use crate::names::{host, judge, Family, Verdict};
use crate::peers::Peer;

pub mod burst;
pub mod fds;
pub mod pending;
pub mod targets;
pub mod w1;

/// The workloads that run today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
pub enum WorkloadKind {
    /// W1 cold throughput: distinct names (A), a fixed number in flight.
    #[value(name = "w1")]
    W1,
    /// W2 burst: distinct names (A) all at once, server delay.
    #[value(name = "w2")]
    W2,
    /// W3: W2 with A and AAAA per name.
    #[value(name = "w3")]
    W3,
    /// Resources: open file descriptors with many lookups in flight.
    #[value(name = "fds")]
    Fds,
}

impl WorkloadKind {
    /// What each lookup asks for.
    pub fn family(self) -> Family {
        match self {
            WorkloadKind::W3 => Family::Both,
            _ => Family::V4,
        }
    }

    /// The section title.
    pub fn title(self) -> &'static str {
        match self {
            WorkloadKind::W1 => "W1 cold throughput",
            WorkloadKind::W2 => "W2 burst",
            WorkloadKind::W3 => "W3 burst, A and AAAA",
            WorkloadKind::Fds => "Resources: open file descriptors",
        }
    }
}

/// One run of W1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThroughputSample {
    /// Verified answers, of every lookup of the run (warm-up and tail too).
    pub tally: Tally,
    /// Lookups that finished inside the measured window.
    pub window_lookups: u64,
    /// Wall time of the window, seconds.
    pub wall_s: f64,
    /// Client CPU time over the window (the whole process, less the
    /// in-process test server's thread), seconds.
    pub cpu_s: f64,
    /// The user-space part of `cpu_s`, seconds (the rest is the kernel's).
    pub user_s: f64,
    /// CPU time the server used over the window, seconds, when known.
    pub server_cpu_s: Option<f64>,
    /// UDP datagrams the kernel dropped for full receive buffers during the
    /// run, on every socket of the network namespace (client and server):
    /// `RcvbufErrors` of /proc/net/snmp.
    pub udp_drops: Option<u64>,
}

impl ThroughputSample {
    /// Lookups per wall-clock second.
    pub fn lookups_per_s(&self) -> f64 {
        self.window_lookups as f64 / self.wall_s.max(1e-9)
    }

    /// Client CPU microseconds per lookup.
    pub fn cpu_us_per_lookup(&self) -> f64 {
        self.cpu_s * 1e6 / (self.window_lookups.max(1) as f64)
    }

    /// Client user-space CPU microseconds per lookup (the rest of
    /// [`Self::cpu_us_per_lookup`] is system time: the kernel's socket path).
    pub fn user_us_per_lookup(&self) -> f64 {
        self.user_s * 1e6 / (self.window_lookups.max(1) as f64)
    }

    /// Fraction of the window the server spent on a CPU (1.0: saturated
    /// single-threaded server).
    pub fn server_busy(&self) -> Option<f64> {
        self.server_cpu_s.map(|s| s / self.wall_s.max(1e-9))
    }
}

/// One run of W2 or W3.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BurstSample {
    /// Verified answers.
    pub tally: Tally,
    /// Median latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub p99_us: u64,
    /// Largest latency, microseconds.
    pub max_us: u64,
    /// From the first lookup issued to the last one finished, microseconds.
    pub wall_us: u64,
    /// Queries the test server received during the burst (UDP and TCP),
    /// when the server can count them.
    pub server_queries: Option<u64>,
    /// UDP datagrams the kernel dropped on full receive buffers during the
    /// burst (`RcvbufErrors`, whole network namespace).
    pub udp_drops: Option<u64>,
}

/// One run of the resources workload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FdSample {
    /// Verified answers.
    pub tally: Tally,
    /// Open fds of the process before the resolver was built.
    pub before: usize,
    /// Most open fds seen while the lookups were in flight.
    pub peak: usize,
    /// Most lookups seen in flight at once (issued, not yet finished).
    pub max_in_flight: u32,
}

impl FdSample {
    /// Descriptors the resolver held at the peak.
    pub fn resolver_fds(&self) -> usize {
        self.peak.saturating_sub(self.before)
    }
}

/// One run of any workload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Sample {
    /// W1.
    Throughput(ThroughputSample),
    /// W2, W3.
    Burst(BurstSample),
    /// Resources.
    Fds(FdSample),
}

impl Sample {
    /// The answers' tally.
    pub fn tally(&self) -> Tally {
        match self {
            Sample::Throughput(s) => s.tally,
            Sample::Burst(s) => s.tally,
            Sample::Fds(s) => s.tally,
        }
    }
}

/// The outcome of one checked lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Exactly the expected addresses.
    Correct,
    /// Some of the expected addresses and nothing else (what it was).
    Partial(String),
    /// An answer, but not the expected address set (what it was).
    Wrong(String),
    /// No answer (the error).
    Failed(String),
}

impl Checked {
    /// Counts this outcome in `tally`, keeping the first problem's text.
    pub fn count(self, tally: &mut Tally, first_problem: &mut Option<String>) {
        match self {
            Checked::Correct => tally.ok += 1,
            Checked::Partial(what) => {
                tally.wrong += 1;
                tally.partial += 1;
                first_problem.get_or_insert(what);
            }
            Checked::Wrong(what) => {
                tally.wrong += 1;
                first_problem.get_or_insert(what);
            }
            Checked::Failed(why) => {
                tally.errors += 1;
                first_problem.get_or_insert(why);
            }
        }
    }
}

/// Looks up host `n` and checks the answer.
pub async fn check_one<P: Peer>(peer: &P, n: u32, family: Family) -> Checked {
    let name = host(n);
    let answer = match family {
        Family::V4 => peer.lookup_a(&name).await,
        Family::Both => peer.lookup_ip(&name).await,
    };
    match answer {
        Ok(ips) => match judge(n, family, &ips) {
            Verdict::Correct => Checked::Correct,
            Verdict::Partial => Checked::Partial(format!("{name}: incomplete answer {ips:?}")),
            Verdict::Wrong => Checked::Wrong(format!("{name}: wrong answer {ips:?}")),
        },
        Err(e) => Checked::Failed(format!("{name}: {e:#}")),
    }
}

/// The outcome of a batch: the tally and the first error seen, if any.
#[derive(Debug, Clone, Default)]
pub struct Driven {
    /// Verified answers.
    pub tally: Tally,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

/// Looks up hosts `first .. first + count` with `in_flight` lookups
/// outstanding at all times (a new one starts as each finishes), and checks
/// every answer. (W1 keeps its own workers: each takes the next name itself,
/// so its measured window pays no task spawn per lookup.)
pub async fn drive<P: Peer>(
    peer: Arc<P>,
    first: u32,
    count: u32,
    in_flight: usize,
    family: Family,
) -> Driven {
    let mut total = Driven::default();
    let mut tasks = BoundedSet::new(in_flight);
    for i in 0..count {
        let peer = peer.clone();
        let finished = tasks
            .spawn(async move { check_one(&*peer, first + i, family).await })
            .await;
        if let Some(done) = finished {
            total.add(done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        total.add(done);
    }
    total
}

impl Driven {
    fn add(&mut self, done: Result<Checked, JoinError>) {
        match done {
            Ok(checked) => checked.count(&mut self.tally, &mut self.first_error),
            Err(e) => {
                self.tally.errors += 1;
                self.first_error
                    .get_or_insert(format!("lookup task failed: {e}"));
            }
        }
    }
}
