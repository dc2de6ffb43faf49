//! A row of the matrix: what a scenario expects, what it saw, and the
//! markdown line RELIABILITY.md shows.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crawldns::ErrorKind;

/// What a lookup should come back with.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Exactly these addresses, in any order.
    Addrs(Vec<IpAddr>),
    /// This error kind.
    Error(ErrorKind),
}

/// One row of the matrix.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Short name.
    pub scenario: &'static str,
    /// Servers and faults.
    pub setup: String,
    /// Lookups made.
    pub lookups: usize,
    /// Lookups that came back exactly as expected (answer or error kind).
    pub correct: usize,
    /// Lookups answered with addresses other than the expected ones.
    pub wrong: usize,
    /// Errors by kind (expected ones included).
    pub errors: BTreeMap<&'static str, usize>,
    /// Queries the servers received (UDP + TCP), in server order.
    pub server_queries: Vec<u64>,
    /// Resolver counters.
    pub udp_sent: u64,
    /// TCP queries sent.
    pub tcp_sent: u64,
    /// Attempts after the first of a question.
    pub retries: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Datagrams dropped as matching no outstanding question.
    pub mismatched: u64,
    /// Truncated answers.
    pub truncated: u64,
    /// Slowest single lookup.
    pub slowest: Duration,
    /// Wall time of the whole scenario.
    pub elapsed: Duration,
    /// Violated expectations (empty when the row passes).
    pub failures: Vec<String>,
}

impl Row {
    /// Records `what` as a violated expectation unless `ok`.
    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }

    fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "0".into();
        }
        self.errors
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The markdown header.
    pub fn header() -> String {
        "| scenario | setup | lookups | correct | wrong | errors | queries at servers | udp sent | tcp sent | retries | timeouts | mismatched dropped | slowest lookup | elapsed |\n\
         |---|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"
            .to_string()
    }

    /// This row in markdown.
    pub fn markdown(&self) -> String {
        let queries: Vec<String> = self.server_queries.iter().map(u64::to_string).collect();
        format!(
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ms | {} ms |",
            self.scenario,
            if self.failures.is_empty() {
                ""
            } else {
                " **FAIL**"
            },
            self.setup,
            self.lookups,
            self.correct,
            self.wrong,
            self.errors_text(),
            queries.join(" / "),
            self.udp_sent,
            self.tcp_sent,
            self.retries,
            self.timeouts,
            self.mismatched,
            self.slowest.as_millis(),
            self.elapsed.as_millis(),
        )
    }
}
