//! TCP fallback: truncated answers and answers too large for UDP.

use std::net::IpAddr;
use std::time::Duration;

use crawldns::Resolver;
use crawldns_testbed::Faults;

use super::harness::{config, hosts, run, server, v4};
use super::row::{Expect, Row};

/// Every UDP answer truncated: every lookup retried over TCP.
pub async fn truncation() -> Row {
    let s = server(
        1000,
        Duration::ZERO,
        Faults {
            truncate: true,
            ..Default::default()
        },
    )
    .await;
    let r = Resolver::new(config(&[s.addr()]).build()).expect("config");
    let mut row = run(
        "truncation",
        "1 server, every UDP answer has TC=1".into(),
        &r,
        hosts(1000),
        &[&s],
    )
    .await;
    row.check(
        row.correct == 1000,
        format!("{} of 1000 answered", row.correct),
    );
    row.check(
        row.truncated == 1000 && row.tcp_sent == 1000,
        format!("truncated {} tcp {}", row.truncated, row.tcp_sent),
    );
    row
}

/// Answers too large for UDP (100 A records each): fetched over TCP.
pub async fn big_answers() -> Row {
    let s = server(1000, Duration::ZERO, Faults::default()).await;
    let r = Resolver::new(config(&[s.addr()]).build()).expect("config");
    let all: Vec<IpAddr> = (0..100).map(v4).collect();
    let names = (0..200)
        .map(|i| (format!("big{i}.crawl.test"), Expect::Addrs(all.clone())))
        .collect();
    let mut row = run(
        "large answers",
        "1 server, 100 A records per name (> 1232 bytes)".into(),
        &r,
        names,
        &[&s],
    )
    .await;
    row.check(
        row.correct == 200,
        format!("{} of 200 answered", row.correct),
    );
    row.check(
        row.truncated == 200 && row.tcp_sent == 200,
        "each over TCP once",
    );
    row
}
