//! One section per workload: its setup in a sentence and its table.

use std::fmt::Write as _;

use super::figures::*;
use super::table::{header, row};
use crate::measure::median;
use crate::peers::PeerKind;
use crate::suite::{fmt_count, JobResult, DNSPERF_OUTSTANDING};
use crate::workloads::{Sample, WorkloadKind};

pub(super) fn rounds_line(job: &JobResult) -> String {
    format!(
        "Median of {} round{} (each round runs every peer once, back to back); answers ok / wrong / failed are summed over all rounds. Server: {}.",
        job.job.reps,
        if job.job.reps == 1 { "" } else { "s" },
        job.server
    )
}

pub(super) fn w1_section(out: &mut String, job: &JobResult) {
    let crawldns = find(job, PeerKind::Crawldns);
    let c_lps = crawldns.and_then(lookups_per_s);
    let c_cpu = crawldns.and_then(cpu_us);
    let ceiling = dnsperf_ceiling(job);
    let _ = writeln!(
        out,
        "{} distinct names (A) measured, {} in flight at all times. Each run starts its {} lookup tasks {} per millisecond (so the first queries do not reach the server as one burst), finishes {} lookups of other names, then measures the window in which the next {} finish, with {} still in flight when it closes. Lookups per second of wall time in the window, and client CPU time (user + system of the whole client process) per lookup in the window.\n",
        fmt_count(u64::from(job.job.count)),
        job.job.in_flight,
        job.job.in_flight,
        crate::suite::W1_RAMP_PER_MS,
        fmt_count(u64::from(job.job.warmup)),
        fmt_count(u64::from(job.job.count)),
        job.job.in_flight
    );
    let _ = writeln!(out, "{}\n", rounds_line(job));
    if let Some(qps) = ceiling {
        let _ = writeln!(
            out,
            "Server ceiling: dnsperf ({} s runs on the client CPU, queries without EDNS) at {} queries outstanding, every round; the ceiling is the best setting's median, **{} queries/s**.\n",
            job.job.dnsperf_secs,
            DNSPERF_OUTSTANDING.map(|o| o.to_string()).join(", "),
            num(Some(qps), 0),
        );
        header(
            out,
            &[
                "dnsperf outstanding",
                "queries/s",
                "queries lost",
                "server CPU busy",
                "server CPU µs/query",
                "dnsperf's own CPU µs/query",
            ],
        );
        for outstanding in DNSPERF_OUTSTANDING {
            let runs: Vec<_> = job
                .dnsperf
                .iter()
                .filter(|d| d.outstanding == outstanding)
                .collect();
            let lost: u64 = runs.iter().map(|d| d.lost).sum();
            let sent: u64 = runs.iter().map(|d| d.sent).sum();
            row(
                out,
                &[
                    outstanding.to_string(),
                    num(median(runs.iter().map(|d| d.qps)), 0),
                    format!("{} of {}", fmt_count(lost), fmt_count(sent)),
                    median(runs.iter().filter_map(|d| d.server_busy()))
                        .map_or("—".into(), |b| format!("{:.0}%", b * 100.0)),
                    num(
                        median(runs.iter().filter_map(|d| d.server_us_per_query())),
                        1,
                    ),
                    num(
                        median(runs.iter().filter_map(|d| d.client_us_per_query())),
                        1,
                    ),
                ],
            );
        }
        let _ = writeln!(out);
    }
    header(
        out,
        &[
            "peer",
            "lookups/s",
            "% of server ceiling",
            "client CPU µs/lookup",
            "of which user space",
            "crawldns throughput ×",
            "crawldns lookups per CPU-second ×",
            "answers ok / wrong / failed",
            "server CPU busy",
            "server CPU µs/query",
            "kernel UDP drops per run",
            "notes",
        ],
    );
    for p in compared(job) {
        let drops = median_over_rounds(p, |s| match s {
            Sample::Throughput(t) => t.udp_drops.map(|d| d as f64),
            _ => None,
        });
        let lps = lookups_per_s(p);
        let cpu = cpu_us(p);
        let is_crawldns = p.peer == PeerKind::Crawldns;
        row(
            out,
            &[
                p.peer.label().to_string(),
                num(lps, 0),
                div(lps, ceiling).map_or("—".into(), |r| format!("{:.0}%", r * 100.0)),
                num(cpu, 1),
                num(
                    median_over_rounds(p, |s| match s {
                        Sample::Throughput(t) => Some(t.user_us_per_lookup()),
                        _ => None,
                    }),
                    1,
                ),
                if is_crawldns {
                    "1.00×".into()
                } else {
                    ratio(div(c_lps, lps))
                },
                if is_crawldns {
                    "1.00×".into()
                } else {
                    ratio(div(cpu, c_cpu))
                },
                answers(p),
                median_over_rounds(p, |s| match s {
                    Sample::Throughput(t) => t.server_busy(),
                    _ => None,
                })
                .map_or("—".into(), |b| format!("{:.0}%", b * 100.0)),
                num(
                    median_over_rounds(p, |s| match s {
                        Sample::Throughput(t) => t
                            .server_cpu_s
                            .map(|c| c * 1e6 / t.window_lookups.max(1) as f64),
                        _ => None,
                    }),
                    1,
                ),
                num(drops, 0),
                status(p),
            ],
        );
    }
    if let Some(floor) = find(job, PeerKind::Null).and_then(cpu_us) {
        let _ = writeln!(
            out,
            "\nThe harness itself (a peer that answers from the name, without I/O) costs {floor:.2} µs of CPU per lookup; that is included in every row."
        );
    }
    let _ = writeln!(out, "\n“Server CPU busy” is the server's CPU time in the window divided by the window's wall time: near 100% the single-worker server is the bottleneck, and the server's cost per query, not the client, sets the rate.");
    let _ = writeln!(out, "\n“Kernel UDP drops” is the median over runs of `RcvbufErrors` (/proc/net/snmp) during a run: datagrams dropped on a full socket receive buffer, client's or server's; a dropped query is retried after the peer's timeout. Failed lookups are those still unanswered after 2 attempts.");
    let _ = writeln!(out, "\n“crawldns throughput ×” is crawldns's lookups/s divided by the peer's; “crawldns lookups per CPU-second ×” is the peer's CPU per lookup divided by crawldns's. Above 1 means crawldns is better.");
}

pub(super) fn burst_section(out: &mut String, job: &JobResult) {
    let crawldns = find(job, PeerKind::Crawldns);
    let c_p99 = crawldns.and_then(p99_ms);
    let what = if job.job.workload == WorkloadKind::W3 {
        "A and AAAA per name (`lookup_ip`; c-ares `ares_getaddrinfo` AF_UNSPEC; getaddrinfo AF_UNSPEC)"
    } else {
        "A"
    };
    let _ = writeln!(
        out,
        "{} distinct names, {}, all issued at once; the server answers every query after {} ms. Latency of each lookup from its call to its answer; wall from the first call to the last answer. Server queries per name above the minimum (1 for A, 2 for A and AAAA) are retries; kernel UDP drops (median per burst, `RcvbufErrors`) show datagrams lost on a full receive buffer.\n",
        fmt_count(u64::from(job.job.count)),
        what,
        job.job.delay_ms
    );
    let _ = writeln!(out, "{}\n", rounds_line(job));
    header(
        out,
        &[
            "peer",
            "p50 ms",
            "p99 ms",
            "max ms",
            "wall ms",
            "server queries/name",
            "kernel UDP drops",
            "peer p99 ÷ crawldns p99",
            "answers ok / wrong / failed",
            "notes",
        ],
    );
    for p in compared(job) {
        let p99 = p99_ms(p);
        let queries = median_over_rounds(p, |s| match s {
            Sample::Burst(b) => b
                .server_queries
                .map(|q| q as f64 / f64::from(job.job.count)),
            _ => None,
        });
        row(
            out,
            &[
                p.peer.label().to_string(),
                num(burst_ms(p, |b| b.p50_us), 1),
                num(p99, 1),
                num(burst_ms(p, |b| b.max_us), 1),
                num(burst_ms(p, |b| b.wall_us), 1),
                num(queries, 2),
                num(
                    median_over_rounds(p, |s| match s {
                        Sample::Burst(b) => b.udp_drops.map(|d| d as f64),
                        _ => None,
                    }),
                    0,
                ),
                if p.peer == PeerKind::Crawldns {
                    "1.00×".into()
                } else {
                    ratio(div(p99, c_p99))
                },
                answers(p),
                status(p),
            ],
        );
    }
}

pub(super) fn fds_section(out: &mut String, job: &JobResult) {
    let c_fds = find(job, PeerKind::Crawldns).and_then(resolver_fds);
    let _ = writeln!(
        out,
        "{} distinct names (A) issued at once; the server answers after {} ms, so all are in flight together. Open descriptors of the process (/proc/self/fd) sampled every ~2 ms; “resolver fds” is the peak less the count before the resolver was built.\n",
        fmt_count(u64::from(job.job.count)),
        job.job.delay_ms
    );
    let _ = writeln!(out, "{}\n", rounds_line(job));
    header(
        out,
        &[
            "peer",
            "fds before",
            "peak fds",
            "resolver fds",
            "most in flight at once",
            "peer fds ÷ crawldns fds",
            "answers ok / wrong / failed",
            "notes",
        ],
    );
    for p in compared(job) {
        let fds = resolver_fds(p);
        let get = |f: fn(&crate::workloads::FdSample) -> f64| {
            median_over_rounds(p, |s| match s {
                Sample::Fds(x) => Some(f(x)),
                _ => None,
            })
        };
        row(
            out,
            &[
                p.peer.label().to_string(),
                num(get(|x| x.before as f64), 0),
                num(get(|x| x.peak as f64), 0),
                num(fds, 0),
                num(get(|x| f64::from(x.max_in_flight)), 0),
                if p.peer == PeerKind::Crawldns {
                    "1.00×".into()
                } else {
                    ratio(div(fds, c_fds))
                },
                answers(p),
                status(p),
            ],
        );
    }
}
