//! The testbed's forgeries (wrong ID, wrong question, wrong port), each
//! sent before the genuine answer: each dropped, the genuine one taken.

use std::time::Duration;

use crawldns::Resolver;
use crawldns_testbed::Faults;

use super::harness::{config, hosts, run, server};
use super::row::Row;

/// Testbed forgeries before each genuine answer (wrong ID, wrong question
/// or wrong source port): each dropped, the genuine answer taken.
pub async fn forgeries(faults: Faults, label: &'static str, case_randomization: bool) -> Row {
    let s = server(1000, Duration::ZERO, faults.clone()).await;
    let r = Resolver::new(
        config(&[s.addr()])
            .case_randomization(case_randomization)
            .build(),
    )
    .expect("config");
    let mut row = run(
        label,
        "1 server sending a forged answer before each genuine one".into(),
        &r,
        hosts(1000),
        &[&s],
    )
    .await;
    row.check(
        row.correct == 1000,
        format!("{} of 1000 answered", row.correct),
    );
    // From another port, a forgery never reaches the resolver: its sockets
    // are connected to the server, and the kernel drops it.
    let reaching = if faults.wrong_port { 0 } else { 1000 };
    row.check(
        row.mismatched == reaching,
        format!(
            "{} forgeries dropped by the resolver, {reaching} reached it",
            row.mismatched
        ),
    );
    row.check(row.udp_sent == 1000, "no retry needed");
    row
}
