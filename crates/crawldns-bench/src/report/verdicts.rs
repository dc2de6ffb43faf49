//! The targets of issue 7 (data in [`crate::workloads::targets`]) judged
//! on the run's medians.

use super::figures::*;
use crate::peers::PeerKind;
use crate::suite::{fmt_count, JobResult, RunResults};
use crate::workloads::pending::PENDING;
use crate::workloads::targets::{BURST, ELSEWHERE, MAX_RESOLVER_FDS, W1};
use crate::workloads::WorkloadKind;

/// One judged target.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The target, as issue 7 states it.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measured.
    pub met: Option<bool>,
}

fn judge(target: &str, value: Option<(String, bool)>, missing: &str) -> Verdict {
    match value {
        Some((measured, met)) => Verdict {
            target: target.into(),
            measured,
            met: Some(met),
        },
        None => Verdict {
            target: target.into(),
            measured: missing.into(),
            met: None,
        },
    }
}

fn workload(results: &RunResults, kind: WorkloadKind) -> Option<&JobResult> {
    results.workloads.iter().find(|w| w.job.workload == kind)
}

/// Judges the targets of issue 7 on the run's medians.
pub fn verdicts(results: &RunResults) -> Vec<Verdict> {
    let mut v = Vec::new();
    let nm = "not measured";
    // W1's targets are judged for crawldns as configured by default, then
    // again for its bulk mode (batched sends), when that was measured.
    for (mode, w1) in [PeerKind::Crawldns, PeerKind::CrawldnsBulk]
        .into_iter()
        .filter_map(|mode| Some((mode, workload(results, WorkloadKind::W1)?)))
    {
        let Some(c) = find(w1, mode) else {
            continue;
        };
        let suffix = if mode == PeerKind::Crawldns {
            ""
        } else {
            ", bulk mode"
        };
        let c_cpu = cpu_us(c);
        let c_lps = lookups_per_s(c);
        v.push(judge(
            &format!(
                "W1{suffix}: client CPU ≤ {:.0} µs per lookup",
                W1.max_cpu_us
            ),
            c_cpu.map(|x| (format!("{x:.1} µs"), x <= W1.max_cpu_us)),
            nm,
        ));
        for (peer, factor) in W1.cpu_factor_over {
            let p_cpu = find(w1, peer).and_then(cpu_us);
            v.push(judge(
                &format!(
                    "W1{suffix}: ≥ {factor:.0}× {} in lookups per client-CPU-second",
                    peer.label()
                ),
                div(p_cpu, c_cpu).map(|r| {
                    (
                        format!(
                            "{r:.2}× ({:.1} vs {:.1} µs)",
                            p_cpu.unwrap_or_default(),
                            c_cpu.unwrap_or_default()
                        ),
                        r >= factor,
                    )
                }),
                nm,
            ));
        }
        let ceiling = dnsperf_ceiling(w1);
        v.push(judge(
            &format!(
                "W1{suffix}: wall throughput ≥ {:.0}% of the server's dnsperf ceiling",
                W1.min_ceiling_fraction * 100.0
            ),
            div(c_lps, ceiling).map(|r| {
                (
                    format!(
                        "{:.0}% ({} of {} /s)",
                        r * 100.0,
                        num(c_lps, 0),
                        num(ceiling, 0)
                    ),
                    r >= W1.min_ceiling_fraction,
                )
            }),
            "no dnsperf ceiling measured",
        ));
    }
    let mut w2_p99 = None;
    for kind in [WorkloadKind::W2, WorkloadKind::W3] {
        let Some(w) = workload(results, kind) else {
            continue;
        };
        let name = if kind == WorkloadKind::W2 { "W2" } else { "W3" };
        let c_p99 = find(w, PeerKind::Crawldns).and_then(p99_ms);
        let delay = w.job.delay_ms as f64;
        v.push(judge(
            &format!(
                "{name}: p99 within {:.0} ms of the server delay ({delay:.0} ms)",
                BURST.max_p99_over_delay_ms
            ),
            c_p99.map(|x| {
                (
                    format!("{x:.1} ms"),
                    x <= delay + BURST.max_p99_over_delay_ms,
                )
            }),
            nm,
        ));
        let cares = find(w, PeerKind::Cares).and_then(p99_ms);
        v.push(judge(
            &format!("{name}: p99 ≤ {}× c-ares's p99", BURST.max_p99_vs_cares),
            div(c_p99, cares).map(|r| {
                (
                    format!(
                        "{r:.2}× ({:.1} vs {:.1} ms)",
                        c_p99.unwrap_or_default(),
                        cares.unwrap_or_default()
                    ),
                    r <= BURST.max_p99_vs_cares,
                )
            }),
            nm,
        ));
        let gai = find(w, PeerKind::Gai32).and_then(p99_ms);
        v.push(judge(
            &format!(
                "{name}: p99 ≥ {:.0}× better than getaddrinfo on 32 threads",
                BURST.min_factor_over_gai
            ),
            div(gai, c_p99).map(|r| {
                (
                    format!(
                        "{r:.1}× ({:.1} vs {:.1} ms)",
                        gai.unwrap_or_default(),
                        c_p99.unwrap_or_default()
                    ),
                    r >= BURST.min_factor_over_gai,
                )
            }),
            "getaddrinfo peer not measured",
        ));
        if kind == WorkloadKind::W2 {
            w2_p99 = c_p99;
        } else {
            v.push(judge(
                &format!(
                    "W3 no slower than W2 (p99 at most {:.0} ms above W2's)",
                    BURST.max_w3_over_w2_ms
                ),
                match (c_p99, w2_p99) {
                    (Some(w3), Some(w2)) => Some((
                        format!("W3 {w3:.1} ms vs W2 {w2:.1} ms"),
                        w3 <= w2 + BURST.max_w3_over_w2_ms,
                    )),
                    _ => None,
                },
                nm,
            ));
        }
    }
    if let Some(w) = workload(results, WorkloadKind::Fds) {
        let fds = find(w, PeerKind::Crawldns).and_then(resolver_fds);
        v.push(judge(
            &format!(
                "fds: at most {MAX_RESOLVER_FDS:.0} at {} in flight",
                fmt_count(u64::from(w.job.count))
            ),
            fds.map(|x| (format!("{x:.0}"), x <= MAX_RESOLVER_FDS)),
            nm,
        ));
    }
    for (target, pending) in ELSEWHERE.iter().zip(PENDING) {
        v.push(judge(target, None, pending.status));
    }
    v
}
