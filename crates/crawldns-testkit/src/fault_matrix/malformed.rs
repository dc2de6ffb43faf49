//! Malformed answers: an unreadable question (dropped like any unmatchable
//! datagram) and a readable header and question followed by junk (a
//! Malformed error naming the server).

use std::time::Duration;

use crawldns::{ErrorKind, Resolver};
use crawldns_testbed::{DnsServer, Faults};

use super::harness::{config, hosts, run, server};
use super::row::{Expect, Row};
use crate::hostile::HostileServer;

/// The testbed's malformed fault: the right ID, then a question that is a
/// compression loop. It cannot be matched to a question, so it is dropped
/// like any unmatchable datagram and the attempt times out.
pub async fn malformed_testbed() -> Row {
    let s = server(
        1000,
        Duration::ZERO,
        Faults {
            malformed: true,
            ..Default::default()
        },
    )
    .await;
    let r = Resolver::new(
        config(&[s.addr()])
            .attempts(2)
            .timeout(Duration::from_millis(150))
            .min_timeout(Duration::from_millis(150))
            .build(),
    )
    .expect("config");
    let names = (0..50)
        .map(|i| {
            (
                format!("h{i}.crawl.test"),
                Expect::Error(ErrorKind::Timeout),
            )
        })
        .collect();
    let mut row = run(
        "malformed question",
        "1 server answering with an unreadable question; attempts 2, timeout 150 ms".into(),
        &r,
        names,
        &[&s],
    )
    .await;
    row.check(row.correct == 50, "every lookup a Timeout error");
    row.check(
        row.mismatched == 100,
        format!("{} dropped, 100 sent", row.mismatched),
    );
    row
}

/// A server whose answers carry the right ID and question, then bytes that
/// do not parse (four kinds, in turn). Each lookup fails with a Malformed
/// error naming the server; with a good second server, it answers instead.
pub async fn malformed_body(with_good_secondary: bool) -> Row {
    let hostile = HostileServer::start().await;
    let good = server(1000, Duration::ZERO, Faults::default()).await;
    let mut servers = vec![hostile.addr];
    if with_good_secondary {
        servers.push(good.addr());
    }
    let r = Resolver::new(config(&servers).attempts(2).build()).expect("config");
    let count = 200;
    let names = if with_good_secondary {
        hosts(count)
    } else {
        (0..count)
            .map(|i| {
                (
                    format!("h{i}.crawl.test"),
                    Expect::Error(ErrorKind::Malformed),
                )
            })
            .collect()
    };
    let (scenario, setup) = if with_good_secondary {
        (
            "malformed body, then good",
            "2 servers, the first answers with the right header and question, then junk",
        )
    } else {
        (
            "malformed body",
            "1 server answering with the right header and question, then junk; attempts 2",
        )
    };
    let others: &[&DnsServer] = if with_good_secondary { &[&good] } else { &[] };
    let mut row = run(scenario, setup.into(), &r, names, others).await;
    row.server_queries.insert(0, hostile.received());
    row.check(
        row.correct == count as usize,
        format!("{} of {count} as expected", row.correct),
    );
    row.check(row.timeouts == 0, "junk is not a timeout");
    row.check(r.metrics().malformed >= 3, "malformed answers counted");
    row
}
