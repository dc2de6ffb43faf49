//! The headline table: crawldns's ratio to each peer, per workload and
//! metric.

use super::figures::*;
use super::table::{header, row};
use crate::peers::PeerKind;
use crate::suite::{PeerResult, RunResults};
use crate::workloads::WorkloadKind;

/// A headline ratio computed from one peer's result.
pub(super) type Metric = Box<dyn Fn(&PeerResult) -> Option<f64>>;

pub(super) fn headline(out: &mut String, results: &RunResults) {
    let peers = [
        PeerKind::Hickory,
        PeerKind::Cares,
        PeerKind::GaiTokio,
        PeerKind::Gai32,
    ];
    let mut columns = vec!["workload, metric (above 1: crawldns better)"];
    columns.extend(peers.iter().map(|p| p.label()));
    header(out, &columns);
    for job in &results.workloads {
        let c = find(job, PeerKind::Crawldns);
        let lines: Vec<(String, Metric)> = match job.job.workload {
            WorkloadKind::W1 => {
                let mut lines: Vec<(String, Metric)> = Vec::new();
                for (mode, suffix) in [
                    (PeerKind::Crawldns, ""),
                    (PeerKind::CrawldnsBulk, ", crawldns in bulk mode"),
                ] {
                    let Some(c) = find(job, mode) else { continue };
                    let c_lps = lookups_per_s(c);
                    let c_cpu = cpu_us(c);
                    lines.push((
                        format!("W1 lookups/s{suffix}"),
                        Box::new(move |p: &PeerResult| div(c_lps, lookups_per_s(p))),
                    ));
                    lines.push((
                        format!("W1 lookups per client-CPU-second{suffix}"),
                        Box::new(move |p: &PeerResult| div(cpu_us(p), c_cpu)),
                    ));
                }
                lines
            }
            WorkloadKind::W2 | WorkloadKind::W3 => {
                let c_p99 = c.and_then(p99_ms);
                let name = if job.job.workload == WorkloadKind::W2 {
                    "W2"
                } else {
                    "W3"
                };
                vec![(
                    format!("{name} p99 latency (peer ÷ crawldns)"),
                    Box::new(move |p: &PeerResult| div(p99_ms(p), c_p99)),
                )]
            }
            WorkloadKind::Fds => {
                let c_fds = c.and_then(resolver_fds);
                vec![(
                    "open fds at the peak (peer ÷ crawldns)".into(),
                    Box::new(move |p: &PeerResult| div(resolver_fds(p), c_fds)),
                )]
            }
        };
        for (label, f) in lines {
            let mut cells = vec![label];
            for peer in peers {
                cells.push(
                    find(job, peer)
                        .and_then(&f)
                        .map_or("—".into(), |r| ratio(Some(r))),
                );
            }
            row(out, &cells);
        }
    }
}
