//! The stream-transport benchmark (issue 17) as Markdown: one table per
//! workload, medians over rounds, and the targets (data in
//! [`crate::workloads::targets::STREAMS`]) judged on client CPU per lookup.

use std::fmt::Write as _;

use super::table::{header, row};
use super::{verdict_cell, Verdict};
use crate::measure::{median, Tally};
use crate::peers::upstream::Protocol;
use crate::suite::fmt_count;
use crate::transport_suite::{
    Client, Options, Row, RowResult, TransportResults, TransportSample, WorkloadResult,
};
use crate::workloads::targets::{StreamTargets, STREAMS};
use crate::workloads::WorkloadKind;

/// The command that reproduces the tables.
pub const TRANSPORTS_REPRODUCE: &str = "cargo build --release -p crawldns-cli -p crawldns-bench && cargo run --release -p crawldns-bench -- transports";

fn median_of(r: &RowResult, f: impl Fn(&TransportSample) -> Option<f64>) -> Option<f64> {
    median(r.samples.iter().filter_map(f))
}

fn tally(r: &RowResult) -> Tally {
    let mut t = Tally::default();
    for s in &r.samples {
        t.add(s.tally);
    }
    t
}

fn fixed(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "—".to_string(), |v| format!("{v:.digits$}"))
}

/// Median client CPU µs per lookup of each row that has samples.
fn cpu_by_row(w: &WorkloadResult) -> Vec<(Row, f64)> {
    w.rows
        .iter()
        .filter_map(|r| Some((r.row, median_of(r, |s| Some(s.cpu_us))?)))
        .collect()
}

/// Judges `targets` on the median client CPU per lookup of each row.
pub fn judge_streams(cpu: &[(Row, f64)], targets: &StreamTargets) -> Vec<Verdict> {
    let of = |client, protocol| {
        cpu.iter()
            .find(|(r, _)| *r == Row::new(client, protocol))
            .map(|&(_, v)| v)
    };
    let udp = of(Client::Crawldns, Protocol::Udp);
    let dot = of(Client::Crawldns, Protocol::Tls);
    let doh = of(Client::Crawldns, Protocol::Https);
    let hickory_dot = of(Client::Hickory, Protocol::Tls);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some((a, b, a / b)),
        _ => None,
    };
    let verdict = |target: String,
                   r: Option<(f64, f64, f64)>,
                   names: (&str, &str),
                   met: &dyn Fn(f64) -> bool| match r {
        Some((a, b, x)) => Verdict {
            target,
            measured: format!("{} {a:.1} µs ÷ {} {b:.1} µs = {x:.2}×", names.0, names.1),
            met: Some(met(x)),
        },
        None => Verdict {
            target,
            measured: "not measured".into(),
            met: None,
        },
    };
    vec![
        verdict(
            format!(
                "crawldns DoT CPU/lookup ≤ {}× crawldns UDP",
                targets.max_dot_over_udp
            ),
            ratio(dot, udp),
            ("DoT", "UDP"),
            &|x| x <= targets.max_dot_over_udp,
        ),
        verdict(
            format!(
                "crawldns DoT ≥ {}× cheaper in CPU/lookup than hickory DoT",
                targets.min_hickory_dot_over_dot
            ),
            ratio(hickory_dot, dot),
            ("hickory DoT", "crawldns DoT"),
            &|x| x >= targets.min_hickory_dot_over_dot,
        ),
        verdict(
            format!(
                "crawldns DoH CPU/lookup within {}× of crawldns DoT",
                targets.max_doh_over_dot
            ),
            ratio(doh, dot),
            ("DoH", "DoT"),
            &|x| x <= targets.max_doh_over_dot,
        ),
    ]
}

fn workload_table(out: &mut String, w: &WorkloadResult, options: &Options) {
    let what = match w.workload {
        WorkloadKind::W1 => format!(
            "### W1 steady\n\n{} distinct names (A) measured per run, {} in flight at all times (started {} per ms), after {} warm-up lookups; the server answers at once. CPU per lookup and lookups/s over the measured window; lookups, failed, wrong and p50/p99 over every lookup of the run (warm-up, window and the tail still in flight when the window closes).",
            fmt_count(u64::from(options.w1_lookups)),
            options.w1_in_flight,
            crate::suite::W1_RAMP_PER_MS,
            fmt_count(u64::from(options.w1_warmup)),
        ),
        _ => format!(
            "### W2 burst\n\n{} distinct names (A) all issued at once, after {} warm-up lookups that open the connections; the server answers every query after {} ms. CPU per lookup over the burst; lookups/s is the burst's names over its wall time.",
            options.burst_names, options.burst_warmup, options.burst_delay_ms,
        ),
    };
    let _ = writeln!(out, "{what}\n");
    let server_cpu = w.workload == WorkloadKind::W1;
    let mut columns = vec![
        "row",
        "lookups",
        "failed",
        "wrong",
        "client CPU µs/lookup",
        "p50 ms",
        "p99 ms",
        "lookups/s",
        "server connections/run",
        "queries off the transport",
    ];
    if server_cpu {
        columns.push("server CPU µs/lookup");
    }
    columns.push("notes");
    header(out, &columns);
    for r in &w.rows {
        let t = tally(r);
        let protocol = r.row.protocol;
        let connections = median_of(r, |s| Some(s.connections(protocol) as f64));
        let off = r
            .samples
            .iter()
            .map(|s| s.off_transport_queries(protocol))
            .sum::<u64>();
        let mut notes = Vec::new();
        if let Some(why) = &r.failed {
            notes.push(format!("run failed: {why}"));
        }
        if let Some(e) = &r.first_error {
            notes.push(format!("first error: {e}"));
        }
        let mut cells = vec![
            r.row.label(),
            fmt_count(t.total()),
            fmt_count(t.errors),
            fmt_count(t.wrong),
            fixed(median_of(r, |s| Some(s.cpu_us)), 1),
            fixed(median_of(r, |s| Some(s.p50_us as f64 / 1e3)), 2),
            fixed(median_of(r, |s| Some(s.p99_us as f64 / 1e3)), 2),
            median_of(r, |s| Some(s.lookups_per_s))
                .map_or_else(|| "—".to_string(), |v| fmt_count(v.round() as u64)),
            fixed(connections, 0),
            fmt_count(off),
        ];
        if server_cpu {
            cells.push(fixed(median_of(r, |s| s.server_cpu_us), 1));
        }
        cells.push(notes.join("; ").replace('|', "\\|"));
        row(out, &cells);
    }
    let _ = writeln!(out);
    header(out, &["target", "measured", "verdict"]);
    for v in judge_streams(&cpu_by_row(w), &STREAMS) {
        let verdict = match v.met {
            None => "not measured (rows left out)",
            met => verdict_cell(met),
        };
        row(out, &[v.target, v.measured, verdict.to_string()]);
    }
    let _ = writeln!(out);
}

/// The tables of a stream-transport run, with the run's conditions.
pub fn transports_markdown(results: &TransportResults, options: &Options) -> String {
    let mut out = String::new();
    let load = |l: Option<f64>| fixed(l, 2);
    let _ = writeln!(
        out,
        "Median of {} rounds (each round runs every row once, back to back, each run with a fresh resolver and a fresh `crawldns testbed` process); lookups, failed and wrong are summed over rounds. {}. Run took {:.0} s; 1-minute load average {} at the start, {} at the end.\n",
        options.rounds,
        if results.pinned {
            "Client pinned to CPU 0, server process to CPU 1"
        } else {
            "Client and server not pinned"
        },
        results.elapsed_s,
        load(results.load.0),
        load(results.load.1),
    );
    for w in &results.workloads {
        workload_table(&mut out, w, options);
    }
    let _ = writeln!(
        out,
        "“server connections/run” is what the testbed accepted on the row's transport during one run (warm-up included; UDP has none); “queries off the transport” counts, over all rounds, queries the server got on any other transport (0: every query took the row's transport). Client CPU is `getrusage(RUSAGE_SELF)` of the bench process; the server is another process."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_targets_are_judged_on_cpu_ratios() {
        let cpu = [
            (Row::new(Client::Crawldns, Protocol::Udp), 4.0),
            (Row::new(Client::Crawldns, Protocol::Tls), 7.0),
            (Row::new(Client::Crawldns, Protocol::Https), 12.0),
            (Row::new(Client::Hickory, Protocol::Tls), 28.0),
        ];
        let v = judge_streams(&cpu, &STREAMS);
        assert_eq!(v.len(), 3);
        // 7 / 4 = 1.75 ≤ 2: met.
        assert_eq!(v[0].met, Some(true));
        assert!(v[0].measured.contains("1.75×"), "{}", v[0].measured);
        // 28 / 7 = 4 ≥ 3: met.
        assert_eq!(v[1].met, Some(true));
        // 12 / 7 = 1.71 > 1.5: missed.
        assert_eq!(v[2].met, Some(false));

        let missing = judge_streams(&cpu[..1], &STREAMS);
        assert!(missing.iter().all(|v| v.met.is_none()));
    }
}
