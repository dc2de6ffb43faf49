//! The fault matrix: crawldns against misbehaving servers, one scenario per
//! row, every answer checked against the address the testbed assigns. One
//! file per mechanism; [`all`] runs them in table order
//! (`cargo run --release -p crawldns --example fault_matrix` prints the
//! table in RELIABILITY.md, `crates/crawldns/tests/fault_matrix.rs` asserts
//! each row).

mod failover;
mod forgery;
mod harness;
mod loss;
mod malformed;
mod row;
mod tcp;
mod timeouts;

use crawldns_testbed::{Faults, RcodeFault};

pub use failover::{primary_down, rcode_primary};
pub use forgery::forgeries;
pub use harness::{config, hosts, run, server, CONCURRENCY};
pub use loss::{baseline, loss};
pub use malformed::{malformed_body, malformed_testbed};
pub use row::{Expect, Row};
pub use tcp::{big_answers, truncation};
pub use timeouts::slow;

/// Every scenario, in table order.
pub async fn all() -> Vec<Row> {
    vec![
        baseline().await,
        loss(0.10, 8).await,
        loss(0.30, 16).await,
        primary_down().await,
        rcode_primary(RcodeFault::ServFail).await,
        rcode_primary(RcodeFault::Refused).await,
        truncation().await,
        big_answers().await,
        forgeries(
            Faults {
                wrong_id: true,
                ..Default::default()
            },
            "forged: wrong ID",
            false,
        )
        .await,
        forgeries(
            Faults {
                wrong_question: true,
                ..Default::default()
            },
            "forged: wrong question",
            true,
        )
        .await,
        forgeries(
            Faults {
                wrong_port: true,
                ..Default::default()
            },
            "forged: wrong port",
            true,
        )
        .await,
        malformed_testbed().await,
        malformed_body(false).await,
        malformed_body(true).await,
        slow().await,
    ]
}
