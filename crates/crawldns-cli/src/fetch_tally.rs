//! Counting fetch records: the outcome labels, the per-record timings and
//! the tally the summary and the metrics endpoint read.

use std::collections::BTreeMap;
use std::time::Duration;

use crawldns_fetch::FetchRecord;
use serde::{Deserialize, Serialize};

use crate::stats::Latency;

/// Outcome labels of fetch records: `ok`, then every error class label.
pub const OUTCOMES: [&str; 11] = [
    "ok",
    "url",
    "dns",
    "connect",
    "tls",
    "timeout",
    "http_status",
    "body",
    "redirects",
    "host_down",
    "robots",
];

/// The timings and outcome of one record: what summaries and the demo need
/// (and what the demo's namespaced child sends its parent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// `None` when the fetch succeeded; else the error class label (`dns`).
    pub class: Option<String>,
    /// The error class in full (`dns/nxdomain`, `http_status/500`).
    pub error: Option<String>,
    /// Time to first byte, ms.
    pub ttfb_ms: Option<f64>,
    /// DNS phase, ms (new connections only).
    pub dns_ms: Option<f64>,
    /// The whole fetch after the queue, ms.
    pub total_ms: f64,
}

impl From<&FetchRecord> for Timing {
    fn from(record: &FetchRecord) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Self {
            class: record.error.as_ref().map(|e| e.class.label().to_owned()),
            error: record.error.as_ref().map(|e| e.class.to_string()),
            ttfb_ms: record.phases.ttfb.map(ms),
            dns_ms: record.phases.dns.map(ms),
            total_ms: ms(record.phases.total),
        }
    }
}

/// Counts and latency histograms over fetch records.
#[derive(Debug, Clone, Default)]
pub struct FetchTally {
    /// Records seen.
    pub urls: u64,
    /// Records by outcome label (see [`OUTCOMES`]).
    pub by_class: BTreeMap<String, u64>,
    /// Failed records by full error class (`dns/nxdomain`).
    pub by_error: BTreeMap<String, u64>,
    /// Time to first byte.
    pub ttfb: Latency,
    /// DNS phase.
    pub dns: Latency,
    /// Whole fetch.
    pub total: Latency,
}

impl FetchTally {
    /// Counts one record.
    pub fn add(&mut self, timing: &Timing) {
        self.urls += 1;
        let class = timing.class.as_deref().unwrap_or("ok");
        *self.by_class.entry(class.to_owned()).or_default() += 1;
        if let Some(error) = &timing.error {
            *self.by_error.entry(error.clone()).or_default() += 1;
        }
        if let Some(ms) = timing.ttfb_ms {
            self.ttfb.record_ms(ms);
        }
        if let Some(ms) = timing.dns_ms {
            self.dns.record_ms(ms);
        }
        if timing.class.as_deref() != Some("url") {
            self.total.record_ms(timing.total_ms);
        }
    }

    /// Records without error.
    pub fn ok(&self) -> u64 {
        self.by_class.get("ok").copied().unwrap_or(0)
    }

    /// Records with an error.
    pub fn failed(&self) -> u64 {
        self.urls - self.ok()
    }

    /// `dns/nxdomain 1, http_status/500 2`, or `none`.
    pub fn errors_line(&self) -> String {
        if self.by_error.is_empty() {
            return "none".to_owned();
        }
        self.by_error
            .iter()
            .map(|(class, n)| format!("{class} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_outcomes_and_phases() {
        let mut tally = FetchTally::default();
        let ok = Timing {
            class: None,
            error: None,
            ttfb_ms: Some(25.0),
            dns_ms: Some(20.0),
            total_ms: 26.0,
        };
        let nx = Timing {
            class: Some("dns".into()),
            error: Some("dns/nxdomain".into()),
            ttfb_ms: None,
            dns_ms: Some(20.0),
            total_ms: 20.0,
        };
        tally.add(&ok);
        tally.add(&ok);
        tally.add(&nx);
        assert_eq!((tally.urls, tally.ok(), tally.failed()), (3, 2, 1));
        assert_eq!(tally.errors_line(), "dns/nxdomain 1");
        assert_eq!(tally.ttfb.count(), 2);
        assert_eq!(tally.dns.count(), 3);
    }
}
