//! Tables: medians per peer, crawldns's ratio to each peer, and the
//! targets of issue 7 judged on the measured numbers. Markdown, printed and
//! written to a file ready for BENCHMARKS.md.

use std::fmt::Write as _;

use crate::env_info::EnvInfo;
use crate::measure::{median, Tally};
use crate::peers::PeerKind;
use crate::suite::{fmt_count, JobResult, PeerResult, RunResults, DNSPERF_OUTSTANDING};
use crate::workloads::pending::PENDING;
use crate::workloads::{Sample, WorkloadKind};

/// The command that reproduces a full run from a fresh clone.
pub const REPRODUCE: &str = "cargo run --release -p crawldns-bench -- full --out BENCHMARKS.md";

/// Text after this line in an existing output file is kept when the file
/// is regenerated (hand-written analysis).
pub const NOTES_MARKER: &str =
    "<!-- notes below are kept when crawldns-bench regenerates this file -->";

/// The median over a peer's rounds of one figure of its samples.
fn median_over_rounds(peer: &PeerResult, f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    median(peer.samples.iter().filter_map(f))
}

fn tally(peer: &PeerResult) -> Tally {
    let mut t = Tally::default();
    for s in &peer.samples {
        t.add(s.tally());
    }
    t
}

fn lookups_per_s(p: &PeerResult) -> Option<f64> {
    median_over_rounds(p, |s| match s {
        Sample::Throughput(t) => Some(t.lookups_per_s()),
        _ => None,
    })
}

fn cpu_us(p: &PeerResult) -> Option<f64> {
    median_over_rounds(p, |s| match s {
        Sample::Throughput(t) => Some(t.cpu_us_per_lookup()),
        _ => None,
    })
}

fn burst_ms(p: &PeerResult, f: impl Fn(&crate::workloads::BurstSample) -> u64) -> Option<f64> {
    median_over_rounds(p, |s| match s {
        Sample::Burst(b) => Some(f(b) as f64 / 1000.0),
        _ => None,
    })
}

fn p99_ms(p: &PeerResult) -> Option<f64> {
    burst_ms(p, |b| b.p99_us)
}

fn resolver_fds(p: &PeerResult) -> Option<f64> {
    median_over_rounds(p, |s| match s {
        Sample::Fds(f) => Some(f.resolver_fds() as f64),
        _ => None,
    })
}

fn status(p: &PeerResult) -> String {
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

fn answers(p: &PeerResult) -> String {
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

fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if decimals == 0 => fmt_count(v.round().max(0.0) as u64),
        Some(v) => format!("{v:.decimals$}"),
        None => "—".into(),
    }
}

fn ratio(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.2}×"),
        _ => "—".into(),
    }
}

fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn find(job: &JobResult, kind: PeerKind) -> Option<&PeerResult> {
    job.peers.iter().find(|p| p.peer == kind)
}

fn compared(job: &JobResult) -> impl Iterator<Item = &PeerResult> {
    job.peers.iter().filter(|p| p.peer != PeerKind::Null)
}

/// Columns whose cells are text, aligned left; the others hold numbers.
const TEXT_COLUMNS: [&str; 7] = [
    "notes",
    "status",
    "measures",
    "verdict",
    "measured (crawldns)",
    "target",
    "workload",
];

fn header(out: &mut String, columns: &[&str]) {
    let _ = writeln!(out, "| {} |", columns.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 || c.is_empty() || TEXT_COLUMNS.contains(c) {
                    " --- |"
                } else {
                    " ---: |"
                }
            })
            .collect::<String>()
    );
}

fn row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn rounds_line(job: &JobResult) -> String {
    format!(
        "Median of {} round{} (each round runs every peer once, back to back); answers ok / wrong / failed are summed over all rounds. Server: {}.",
        job.job.reps,
        if job.job.reps == 1 { "" } else { "s" },
        job.server
    )
}

/// The best dnsperf setting's median queries per second.
fn dnsperf_ceiling(job: &JobResult) -> Option<f64> {
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

fn w1_section(out: &mut String, job: &JobResult) {
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

fn burst_section(out: &mut String, job: &JobResult) {
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

fn fds_section(out: &mut String, job: &JobResult) {
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
            &format!("W1{suffix}: client CPU ≤ 10 µs per lookup"),
            c_cpu.map(|x| (format!("{x:.1} µs"), x <= 10.0)),
            nm,
        ));
        for (peer, factor) in [(PeerKind::Cares, 3.0), (PeerKind::Hickory, 5.0)] {
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
            &format!("W1{suffix}: wall throughput ≥ 80% of the server's dnsperf ceiling"),
            div(c_lps, ceiling).map(|r| {
                (
                    format!(
                        "{:.0}% ({} of {} /s)",
                        r * 100.0,
                        num(c_lps, 0),
                        num(ceiling, 0)
                    ),
                    r >= 0.8,
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
            &format!("{name}: p99 within 10 ms of the server delay ({delay:.0} ms)"),
            c_p99.map(|x| (format!("{x:.1} ms"), x <= delay + 10.0)),
            nm,
        ));
        let cares = find(w, PeerKind::Cares).and_then(p99_ms);
        v.push(judge(
            &format!("{name}: p99 ≤ 0.7× c-ares's p99"),
            div(c_p99, cares).map(|r| {
                (
                    format!(
                        "{r:.2}× ({:.1} vs {:.1} ms)",
                        c_p99.unwrap_or_default(),
                        cares.unwrap_or_default()
                    ),
                    r <= 0.7,
                )
            }),
            nm,
        ));
        let gai = find(w, PeerKind::Gai32).and_then(p99_ms);
        v.push(judge(
            &format!("{name}: p99 ≥ 10× better than getaddrinfo on 32 threads"),
            div(gai, c_p99).map(|r| {
                (
                    format!(
                        "{r:.1}× ({:.1} vs {:.1} ms)",
                        gai.unwrap_or_default(),
                        c_p99.unwrap_or_default()
                    ),
                    r >= 10.0,
                )
            }),
            "getaddrinfo peer not measured",
        ));
        if kind == WorkloadKind::W2 {
            w2_p99 = c_p99;
        } else {
            v.push(judge(
                "W3 no slower than W2 (p99 at most 1 ms above W2's)",
                match (c_p99, w2_p99) {
                    (Some(w3), Some(w2)) => {
                        Some((format!("W3 {w3:.1} ms vs W2 {w2:.1} ms"), w3 <= w2 + 1.0))
                    }
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
                "fds: at most 64 at {} in flight",
                fmt_count(u64::from(w.job.count))
            ),
            fds.map(|x| (format!("{x:.0}"), x <= 64.0)),
            nm,
        ));
    }
    for (target, why) in [
        (
            "W4: a hit under 100 ns and ≥ 5× cheaper than hickory-resolver's",
            PENDING[0].status,
        ),
        ("Herd: 1 query per record type", PENDING[1].status),
        (
            "Cache: ≤ 150 bytes of overhead per entry",
            PENDING[2].status,
        ),
        (
            "Crawl: TTFB p50 and p99 ≥ 2× and 3× better than the getaddrinfo path",
            PENDING[3].status,
        ),
    ] {
        v.push(judge(target, None, why));
    }
    v
}

/// The whole report as Markdown.
pub fn markdown(results: &RunResults, env: &EnvInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# crawldns benchmarks\n");
    let _ = writeln!(
        out,
        "<!-- generated by crawldns-bench ({} run); every number below comes from that run -->\n",
        results.plan
    );
    let _ = writeln!(
        out,
        "crawldns against the resolvers a crawler would otherwise use, measured in one run on the same machine and servers (DESIGN.md, “Benchmarks”; issue 7). Run: **{}**, {}, {:.0} s.\n",
        results.plan, env.date, results.elapsed_s
    );
    let _ = writeln!(
        out,
        "Reproduce from a fresh clone (as root, so the getaddrinfo peers can run in a network namespace; Debian packages `cmake` for the vendored c-ares build, `knot`, `dnsperf`, `iproute2`, and `util-linux` for taskset):\n\n```sh\n{REPRODUCE}\n```\n"
    );
    let _ = writeln!(out, "## Machine and versions\n");
    header(&mut out, &["", ""]);
    let na = |v: &Option<String>| v.clone().unwrap_or_else(|| "not installed".into());
    for (k, v) in [
        ("date", env.date.clone()),
        ("CPUs", format!("{} × {}", env.cpus, env.cpu_model)),
        ("kernel", env.kernel.clone()),
        ("crawldns", env.crawldns.clone()),
        ("hickory-resolver", env.hickory.clone()),
        ("c-ares", env.cares.clone()),
        ("glibc", env.glibc.clone()),
        ("Knot", na(&env.knot)),
        ("dnsperf", na(&env.dnsperf)),
        ("tokio", env.tokio.clone()),
        ("rustc", env.rustc.clone()),
        ("harness build", env.profile.clone()),
    ] {
        row(&mut out, &[k.to_string(), v]);
    }
    let _ = writeln!(out, "\n## Setup\n");
    let _ = writeln!(out, "- Every peer: one pinned nameserver on loopback, 2 s timeout, 2 attempts, no cache (hickory-resolver `cache_size = 0`; c-ares query cache off, DNS only, no search domains; crawldns `cache(None)`, single-flight on; glibc has none). crawldns and c-ares each keep long-lived UDP sockets and ask for the same 4 MiB receive buffer (c-ares through `SO_RCVBUF`, so at most twice `net.core.rmem_max`); hickory-resolver and glibc open a socket per query. Each run builds a fresh resolver and asks names no earlier run of it asked.");
    let _ = writeln!(out, "- Peers: crawldns (`lookup` for A, `lookup_ip` for A+AAAA), in three sending modes: its default (`Batching::WhenBusy`: once a socket has 8 queries in flight, new ones are padded to 64-byte blocks with EDNS(0) Padding and sent in UDP GSO batches of 8; a query to a quiet socket leaves at once), bulk mode (`Batching::Always`: every query batched, up to 32 per send) and batching off (`Batching::Off`: one send per query); hickory-resolver (`TokioResolver`, UDP); c-ares (`c-ares-resolver` `FutureResolver`, its own event thread); glibc `getaddrinfo` on tokio's blocking pool (`spawn_blocking`, as `tokio::net::lookup_host` does; `lookup_host` itself for A+AAAA) and on a fixed pool of 32 threads with one queue.");
    let _ = writeln!(out, "- The client runs on a single-threaded tokio runtime; with 2+ CPUs it is pinned to CPU 0 and the server to CPU 1. Client CPU is `getrusage(RUSAGE_SELF)` of the client process (all its threads), less the in-process test server's thread where there is one.");
    let _ = writeln!(out, "- Every answer is checked: the A record of `h<N>.crawl.test` must be exactly the testbed's address for N, and AAAA its IPv4-mapped form.");
    if let Some(m) = &results.machine {
        let others = m.other_cpus_busy(results.elapsed_s);
        let _ = writeln!(
            out,
            "- The machine during the run: 1-minute load average {:.2} at the start; the run itself used {:.0} CPU-seconds, other processes {:.0} CPU-seconds (on average {:.2} of the {} CPUs busy with other work{}), the hypervisor stole {:.1} s.",
            m.load_at_start,
            m.own_cpu_s,
            m.other_cpu_s,
            others,
            m.cpus,
            if others > 0.1 {
                ": **the numbers below are disturbed by that load**"
            } else {
                ""
            },
            m.steal_s
        );
    }
    for note in &results.notes {
        let _ = writeln!(out, "- {note}");
    }
    let _ = writeln!(out, "\n## Headline: crawldns's ratio to each peer\n");
    headline(&mut out, results);
    for job in &results.workloads {
        let _ = writeln!(out, "\n## {}\n", job.job.workload.title());
        match job.job.workload {
            WorkloadKind::W1 => w1_section(&mut out, job),
            WorkloadKind::W2 | WorkloadKind::W3 => burst_section(&mut out, job),
            WorkloadKind::Fds => fds_section(&mut out, job),
        }
        for note in &job.notes {
            let _ = writeln!(out, "\nNote: {note}.");
        }
    }
    let _ = writeln!(out, "\n## Measured by other commands\n");
    header(&mut out, &["workload", "measures", "status"]);
    for p in PENDING {
        row(
            &mut out,
            &[
                p.name.to_string(),
                p.measures.to_string(),
                p.status.to_string(),
            ],
        );
    }
    let _ = writeln!(out, "\n## Targets (issue 7)\n");
    if results.plan != "full" {
        let _ = writeln!(out, "This is a {} run: its counts are too small for the targets to mean anything; they are judged here only to exercise the code.\n", results.plan);
    }
    header(&mut out, &["target", "measured (crawldns)", "verdict"]);
    for v in verdicts(results) {
        let verdict = match v.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "see the notes below",
        };
        row(&mut out, &[v.target, v.measured, verdict.to_string()]);
    }
    out
}

/// A headline ratio computed from one peer's result.
type Metric = Box<dyn Fn(&PeerResult) -> Option<f64>>;

fn headline(out: &mut String, results: &RunResults) {
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

/// `generated` followed by the kept notes of `existing` (the text from
/// [`NOTES_MARKER`] on), if it has any.
pub fn merge_notes(generated: &str, existing: Option<&str>) -> String {
    let kept = existing.and_then(|text| text.find(NOTES_MARKER).map(|i| &text[i..]));
    match kept {
        Some(notes) => format!("{}\n{}", generated.trim_end(), notes),
        None => format!("{}\n\n{}\n", generated.trim_end(), NOTES_MARKER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_survive_regeneration() {
        let first = merge_notes("# t\nnew", None);
        assert!(first.ends_with(&format!("{NOTES_MARKER}\n")));
        let edited = format!("{first}my analysis\n");
        let second = merge_notes("# t\nnewer", Some(&edited));
        assert!(second.starts_with("# t\nnewer"));
        assert!(second.contains("my analysis"));
        assert_eq!(second.matches(NOTES_MARKER).count(), 1);
    }
}
