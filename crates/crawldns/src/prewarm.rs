//! Pre-warming: resolving a crawl's hosts before the burst, so that the
//! burst's lookups are cache hits.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use std::future::Future;

use crate::error::{Error, ErrorKind};
use crate::name::normalize;

/// What pre-warming drives: one name made warm in the cache. The resolver
/// implements it; pre-warming knows nothing else of it.
pub(crate) trait Warm: Clone + Send + Sync + 'static {
    /// Resolves `name` (normalized) into the cache; `retry` skips cached
    /// transient failures. Ok only when every family has a definitive answer.
    fn warm(&self, name: String, retry: bool) -> impl Future<Output = Result<(), Error>> + Send;
}

/// How to pre-warm.
#[derive(Debug, Clone, PartialEq)]
pub struct PrewarmOptions {
    /// Names resolved at once (default 256).
    pub concurrency: usize,
    /// At most this many names started per second, so a large batch does
    /// not get the crawler banned by its upstream (default: no limit).
    /// Each name costs one query per address family.
    pub names_per_second: Option<u32>,
    /// Extra passes over names that failed for a transient reason (timeout,
    /// SERVFAIL, REFUSED, malformed), bypassing cached failures (default 2).
    pub retry_passes: usize,
}

impl Default for PrewarmOptions {
    fn default() -> Self {
        Self {
            concurrency: 256,
            names_per_second: None,
            retry_passes: 2,
        }
    }
}

/// What a pre-warm did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrewarmReport {
    /// Names given, duplicates included.
    pub requested: usize,
    /// Distinct valid names.
    pub unique: usize,
    /// Names that could not be names at all.
    pub invalid: usize,
    /// Distinct names that resolved.
    pub resolved: usize,
    /// Distinct names that failed, by the kind of their final failure.
    pub failed: BTreeMap<ErrorKindKey, usize>,
    /// Wall time.
    pub elapsed: Duration,
}

/// An [`ErrorKind`] ordered by its label, for stable reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrorKindKey(pub &'static str);

impl PrewarmReport {
    /// Distinct names that failed, all kinds together.
    pub fn failed_total(&self) -> usize {
        self.failed.values().sum()
    }

    /// Failures of one kind.
    pub fn failed_of(&self, kind: ErrorKind) -> usize {
        self.failed
            .get(&ErrorKindKey(kind.as_str()))
            .copied()
            .unwrap_or(0)
    }
}

/// Resolves `hosts` (deduplicated after normalization) with bounded
/// concurrency and an optional rate, then retries transient failures.
pub(crate) async fn prewarm<W, I, S>(warm: &W, hosts: I, options: PrewarmOptions) -> PrewarmReport
where
    W: Warm,
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let started = Instant::now();
    let mut report = PrewarmReport::default();
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for host in hosts {
        report.requested += 1;
        match normalize(host.as_ref()) {
            Ok(name) => {
                if seen.insert(name.to_string()) {
                    names.push(name.into_owned());
                }
            }
            Err(_) => report.invalid += 1,
        }
    }
    report.unique = names.len();

    let mut failures = run_pass(warm, names, &options, false).await;
    for _ in 0..options.retry_passes {
        let retry: Vec<String> = failures
            .iter()
            .filter(|(_, kind)| kind.is_transient())
            .map(|(name, _)| name.clone())
            .collect();
        if retry.is_empty() {
            break;
        }
        failures.retain(|(_, kind)| !kind.is_transient());
        failures.extend(run_pass(warm, retry, &options, true).await);
    }
    report.resolved = report.unique - failures.len();
    for (_, kind) in failures {
        *report
            .failed
            .entry(ErrorKindKey(kind.as_str()))
            .or_default() += 1;
    }
    report.elapsed = started.elapsed();
    report
}

/// One pass over `names`; returns the names that failed and why.
async fn run_pass<W: Warm>(
    warm: &W,
    names: Vec<String>,
    options: &PrewarmOptions,
    retry: bool,
) -> Vec<(String, ErrorKind)> {
    let concurrency = options.concurrency.max(1);
    let mut pacer = options.names_per_second.filter(|r| *r > 0).map(|rate| {
        let mut interval = tokio::time::interval(Duration::from_secs(1) / rate);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    let mut tasks = JoinSet::new();
    let mut failures = Vec::new();
    for name in names {
        while tasks.len() >= concurrency {
            collect(tasks.join_next().await, &mut failures);
        }
        if let Some(pacer) = pacer.as_mut() {
            pacer.tick().await;
        }
        let warm = warm.clone();
        tasks.spawn(async move {
            let result = warm.warm(name.clone(), retry).await;
            (name, result.err().map(|e| e.kind()))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        collect(Some(joined), &mut failures);
    }
    failures
}

type Joined = Option<Result<(String, Option<ErrorKind>), tokio::task::JoinError>>;

fn collect(joined: Joined, failures: &mut Vec<(String, ErrorKind)>) {
    if let Some(Ok((name, Some(kind)))) = joined {
        failures.push((name, kind));
    }
}
