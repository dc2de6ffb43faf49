//! Servers slower than the timeout: a Timeout error within the bound, the
//! late answers dropped.

use std::time::{Duration, Instant};

use crawldns::{ErrorKind, Resolver};
use crawldns_testbed::Faults;

use super::harness::{config, run, server};
use super::row::{Expect, Row};

/// Servers slower than the timeout: a Timeout error after every attempt at
/// every server, within timeout × attempts × servers plus a margin; the late
/// answers, when they come, are dropped.
pub async fn slow() -> Row {
    let delay = Duration::from_millis(1500);
    let a = server(1000, delay, Faults::default()).await;
    let b = server(1000, delay, Faults::default()).await;
    let timeout = Duration::from_millis(150);
    let attempts = 2;
    let r = Resolver::new(
        config(&[a.addr(), b.addr()])
            .attempts(attempts)
            .timeout(timeout)
            .min_timeout(timeout)
            .build(),
    )
    .expect("config");
    let count = 100;
    let names = (0..count)
        .map(|i| {
            (
                format!("h{i}.crawl.test"),
                Expect::Error(ErrorKind::Timeout),
            )
        })
        .collect();
    let mut row = run(
        "slow servers",
        "2 servers answering after 1.5 s; timeout 150 ms, attempts 2".into(),
        &r,
        names,
        &[&a, &b],
    )
    .await;
    let bound = timeout * (attempts as u32) * 2;
    row.check(row.correct == count, "every lookup a Timeout error");
    row.check(
        row.slowest < bound + Duration::from_millis(1500),
        format!("slowest {:?}, bound {bound:?} + 1.5 s", row.slowest),
    );
    // Every round tries each server that is up; a server marked down (3
    // failures in a row) is skipped while another is up: 2 to 4 attempts.
    row.check(
        (2 * count as u64..=4 * count as u64).contains(&row.udp_sent),
        format!("{} queries for {count} lookups", row.udp_sent),
    );
    // The late answers arrive and are dropped, never taken.
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.metrics().mismatched < row.udp_sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    row.mismatched = r.metrics().mismatched;
    row.check(
        row.mismatched == row.udp_sent,
        format!(
            "{} late answers dropped of {}",
            row.mismatched, row.udp_sent
        ),
    );
    row
}
