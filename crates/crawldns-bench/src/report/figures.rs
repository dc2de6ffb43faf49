//! Figures read from a run's results: medians over rounds per peer, and
//! how they are printed.

use super::super::measure::{median, Tally};
use crate::peers::PeerKind;
use crate::suite::{fmt_count, JobResult, PeerResult, DNSPERF_OUTSTANDING};
use crate::workloads::Sample;

/// The median over a peer's rounds of one figure of its samples.
pub(super) fn median_over_rounds(
    peer: &PeerResult,
    f: impl Fn(&Sample) -> Option<f64>,
) -> Option<f64> {
    median(peer.samples.iter().filter_map(f))
}

pub(super) fn tally(peer: &PeerResult) -> Tally {
    let mut t = Tally::default();
    for s in &peer.samples {
        t.add(s.tally());
    }
    t
}

pub(super) fn lookups_per_s(p: &PeerResult) -> Option<f64> {
    median_over_rounds(p, |s| match s {
        Sample::Throughput(t) => Some(t.lookups_per_s()),
        _ => None,
    })
}

pub(super) fn cpu_us(p: &PeerResult) -> Option<f64> {
    median_over_rounds(p, |s| match s {
        Sample::Throughput(t) => Some(t.cpu_us_per_lookup()),
        _ => None,
    })
}

pub(super) fn burst_ms(
    p: &PeerResult,
    f: impl Fn(&crate::workloads::BurstSample) -> u64,
) -> Option<f64> {
    median_over_rounds(p, |s| match s {
        Sample::Burst(b) => Some(f(b) as f64 / 1000.0),
        _ => None,
    })
}

pub(super) fn p99_ms(p: &PeerResult) -> Option<f64> {
    burst_ms(p, |b| b.p99_us)
}

pub(super) fn resolver_fds(p: &PeerResult) -> Option<f64> {
    median_over_rounds(p, |s| match s {
        Sample::Fds(f) => Some(f.resolver_fds() as f64),
        _ => None,
    })
}

pub(super) fn status(p: &PeerResult) -> String {
    let mut parts = Vec::new();
    if let Some(why) = &p.skipped {
        parts.push(why.clone());
    }
    if let Some(why) = &p.failed {
        parts.push(format!(
            "**failed**: {}",
            why.replace('\n', " ").replace('|', "/")
        ));
    }
    let t = tally(p);
    if t.wrong + t.errors > 0 {
        if let Some(e) = &p.first_error {
            parts.push(format!("first problem: {}", e.replace('|', "/")));
        }
    }
    parts.join("; ")
}

pub(super) fn answers(p: &PeerResult) -> String {
    if p.samples.is_empty() {
        return "—".into();
    }
    let t = tally(p);
    if t.partial > 0 {
        format!(
            "{} / {} ({} with one family missing) / {}",
            fmt_count(t.ok),
            t.wrong,
            t.partial,
            t.errors
        )
    } else {
        format!("{} / {} / {}", fmt_count(t.ok), t.wrong, t.errors)
    }
}

pub(super) fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if decimals == 0 => fmt_count(v.round().max(0.0) as u64),
        Some(v) => format!("{v:.decimals$}"),
        None => "—".into(),
    }
}

pub(super) fn ratio(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.2}×"),
        _ => "—".into(),
    }
}

pub(super) fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

pub(super) fn find(job: &JobResult, kind: PeerKind) -> Option<&PeerResult> {
    job.peers.iter().find(|p| p.peer == kind)
}

pub(super) fn compared(job: &JobResult) -> impl Iterator<Item = &PeerResult> {
    job.peers.iter().filter(|p| p.peer != PeerKind::Null)
}

/// The best dnsperf setting's median queries per second.
pub(super) fn dnsperf_ceiling(job: &JobResult) -> Option<f64> {
    DNSPERF_OUTSTANDING
        .iter()
        .filter_map(|&o| {
            median(
                job.dnsperf
                    .iter()
                    .filter(|d| d.outstanding == o)
                    .map(|d| d.qps),
            )
        })
        .reduce(f64::max)
}
