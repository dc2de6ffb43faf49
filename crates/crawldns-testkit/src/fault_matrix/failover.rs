//! Failover: a down first server, and one that answers SERVFAIL or
//! REFUSED to everything; the second server answers every lookup.

use std::time::Duration;

use crawldns::Resolver;
use crawldns_testbed::{Faults, RcodeFault};

use super::harness::{config, hosts, run, server, CONCURRENCY};
use super::row::Row;

/// The first server is down: every answer comes from the second.
pub async fn primary_down() -> Row {
    let down = server(
        1000,
        Duration::ZERO,
        Faults {
            down: true,
            ..Default::default()
        },
    )
    .await;
    let up = server(1000, Duration::ZERO, Faults::default()).await;
    let r = Resolver::new(
        config(&[down.addr(), up.addr()])
            .timeout(Duration::from_millis(500))
            .min_timeout(Duration::from_millis(500))
            .build(),
    )
    .expect("config");
    let mut row = run(
        "primary down",
        "2 servers, the first never answers; timeout 500 ms".into(),
        &r,
        hosts(1000),
        &[&down, &up],
    )
    .await;
    row.check(
        row.correct == 1000,
        format!("{} of 1000 answered", row.correct),
    );
    row.check(
        up.counters().totals().responses == 1000,
        "the secondary answered every lookup",
    );
    // Only lookups already in flight when it was marked down (3 failures)
    // went to the dead server first.
    row.check(
        row.server_queries[0] <= CONCURRENCY as u64 + 3,
        format!("{} queries to the dead server", row.server_queries[0]),
    );
    row.check(r.server_health()[0].down, "the first server is marked down");
    row
}

/// The first server answers every query with `rcode`.
pub async fn rcode_primary(rcode: RcodeFault) -> Row {
    let bad = server(
        1000,
        Duration::ZERO,
        Faults {
            rcode: Some(rcode),
            ..Default::default()
        },
    )
    .await;
    let good = server(1000, Duration::ZERO, Faults::default()).await;
    let r = Resolver::new(config(&[bad.addr(), good.addr()]).build()).expect("config");
    let (scenario, name) = match rcode {
        RcodeFault::ServFail => ("SERVFAIL", "SERVFAIL"),
        RcodeFault::Refused => ("REFUSED", "REFUSED"),
    };
    let mut row = run(
        scenario,
        format!("2 servers, the first answers {name} to everything"),
        &r,
        hosts(1000),
        &[&bad, &good],
    )
    .await;
    row.check(
        row.correct == 1000,
        format!("{} of 1000 answered", row.correct),
    );
    row.check(row.timeouts == 0, "an rcode is an answer, not a timeout");
    row.check(
        good.counters().totals().responses == 1000,
        "the second server answered every lookup",
    );
    row
}
