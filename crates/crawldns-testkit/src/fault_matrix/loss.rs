//! The baseline and packet loss: every lookup answered, every lost query
//! one timeout and one retry.

use std::time::Duration;

use crawldns::Resolver;
use crawldns_testbed::Faults;

use super::harness::{config, hosts, run, server};
use super::row::Row;

/// No faults: the baseline.
pub async fn baseline() -> Row {
    let s = server(1000, Duration::ZERO, Faults::default()).await;
    let r = Resolver::new(config(&[s.addr()]).build()).expect("config");
    let mut row = run(
        "baseline",
        "1 server, no faults".into(),
        &r,
        hosts(1000),
        &[&s],
    )
    .await;
    row.check(row.correct == 1000, "every lookup answered");
    row.check(
        row.udp_sent == 1000,
        format!("{} queries for 1000 lookups", row.udp_sent),
    );
    row
}

/// `drop` of the queries lost; enough attempts that a lookup failing all of
/// them is out of reach: with attempts a, P(one lookup fails) = drop^a.
pub async fn loss(drop: f64, attempts: usize) -> Row {
    let s = server(
        1000,
        Duration::ZERO,
        Faults {
            drop_fraction: drop,
            ..Default::default()
        },
    )
    .await;
    let r = Resolver::new(
        config(&[s.addr()])
            .attempts(attempts)
            .timeout(Duration::from_millis(400))
            .min_timeout(Duration::from_millis(200))
            .build(),
    )
    .expect("config");
    let scenario = if drop < 0.2 { "loss 10%" } else { "loss 30%" };
    let setup = format!(
        "1 server dropping {:.0}% of queries; attempts {attempts}, timeout 200-400 ms",
        drop * 100.0
    );
    let mut row = run(scenario, setup, &r, hosts(1000), &[&s]).await;
    row.check(
        row.correct == 1000,
        format!("{} of 1000 answered", row.correct),
    );
    row.check(row.wrong == 0, "no wrong answer");
    let dropped = s.counters().totals().dropped;
    // Every lost query is one timeout and one retry; nothing else retries.
    row.check(
        row.retries == row.timeouts && row.timeouts >= dropped,
        format!(
            "retries {} timeouts {} dropped {dropped}",
            row.retries, row.timeouts
        ),
    );
    // The server drops each query with probability `drop`: far outside
    // many σ would mean the row's loss is not what it says.
    let expected = drop * row.server_queries[0] as f64;
    row.check(
        (dropped as f64) > expected * 0.5 && (dropped as f64) < expected * 1.5,
        format!("{dropped} dropped of {} queries", row.server_queries[0]),
    );
    row
}
