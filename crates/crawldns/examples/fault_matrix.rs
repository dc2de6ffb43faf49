//! The fault matrix: crawldns against misbehaving servers, one scenario per
//! row, every answer checked against the address the testbed assigns.
//!
//! ```sh
//! cargo run --release -p crawldns --example fault_matrix
//! ```
//!
//! prints the markdown table in RELIABILITY.md. The scenarios live in
//! `crawldns_testkit::fault_matrix` (one file per mechanism); the same
//! scenarios, with the same checks, are the tests in `tests/fault_matrix.rs`.

use crawldns_testkit::fault_matrix::{all, Row};

#[tokio::main]
async fn main() {
    let rows = all().await;
    println!("{}", Row::header());
    for row in &rows {
        println!("{}", row.markdown());
    }
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.failures.is_empty()).collect();
    for row in &failed {
        eprintln!("{} failed: {:?}", row.scenario, row.failures);
    }
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
