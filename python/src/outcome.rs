//! What a lookup ends with, and how it becomes Python objects: lists of
//! address strings, dicts for typed answers, pre-warm reports and metrics.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use crawldns::{Error, Lookup, MetricsSnapshot, PrewarmReport, QueryType, RecordData};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

/// The end of one lookup, carried from the runtime thread to the loop.
#[derive(Debug)]
pub enum Outcome {
    /// Addresses, in the order to connect to them.
    Ips(Arc<[IpAddr]>),
    /// Addresses as aiohttp's `ResolveResult` dicts for `name` and `port`.
    Hosts {
        /// The addresses.
        ips: Arc<[IpAddr]>,
        /// The host name asked for.
        name: String,
        /// The port to put in each dict.
        port: u16,
    },
    /// A typed answer.
    Lookup(Lookup),
    /// What a pre-warm did.
    Prewarm(PrewarmReport),
    /// The lookup failed.
    Failed(Error),
    /// The resolver was closed first; the name asked for.
    Closed(String),
}

impl Outcome {
    /// The Python value, or the exception to raise.
    pub fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self {
            Self::Ips(ips) => Ok(addresses(py, &ips)?.into_any().unbind()),
            Self::Hosts { ips, name, port } => {
                Ok(hosts(py, &ips, &name, port)?.into_any().unbind())
            }
            Self::Lookup(lookup) => Ok(lookup_dict(py, &lookup)?.into_any().unbind()),
            Self::Prewarm(report) => Ok(prewarm_dict(py, &report)?.into_any().unbind()),
            Self::Failed(err) => Err(crate::errors::from_error(py, &err)),
            Self::Closed(name) => Err(crate::errors::closed(py, &name)),
        }
    }
}

/// `ips` as a list of strings, in order.
pub fn addresses<'py>(py: Python<'py>, ips: &[IpAddr]) -> PyResult<Bound<'py, PyList>> {
    let mut text = String::with_capacity(40);
    let items = ips.iter().map(|ip| {
        text.clear();
        // Writing to a String cannot fail.
        let _ = write!(text, "{ip}");
        PyString::new(py, &text)
    });
    PyList::new(py, items)
}

/// aiohttp's `ResolveResult` dicts: `{"hostname", "host", "port", "family",
/// "proto": 0, "flags": AI_NUMERICHOST | AI_NUMERICSERV}` per address.
pub fn hosts<'py>(
    py: Python<'py>,
    ips: &[IpAddr],
    name: &str,
    port: u16,
) -> PyResult<Bound<'py, PyList>> {
    let hostname = PyString::new(py, name);
    let port = port.into_pyobject(py)?;
    let flags = libc::AI_NUMERICHOST | libc::AI_NUMERICSERV;
    let mut text = String::with_capacity(40);
    let items = ips.iter().map(|ip| {
        text.clear();
        let _ = write!(text, "{ip}");
        let family = if ip.is_ipv6() {
            libc::AF_INET6
        } else {
            libc::AF_INET
        };
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "hostname"), &hostname)?;
        dict.set_item(intern!(py, "host"), PyString::new(py, &text))?;
        dict.set_item(intern!(py, "port"), &port)?;
        dict.set_item(intern!(py, "family"), family)?;
        dict.set_item(intern!(py, "proto"), 0)?;
        dict.set_item(intern!(py, "flags"), flags)?;
        Ok::<_, PyErr>(dict)
    });
    let dicts = items.collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, dicts)
}

/// The records of a typed answer as strings in zone-file form: addresses
/// for A and AAAA, the target for CNAME, and e.g. `"10 mx.example"` for MX.
fn records(lookup: &Lookup) -> Vec<String> {
    match lookup.query_type() {
        QueryType::A | QueryType::Aaaa => lookup.ips().iter().map(ToString::to_string).collect(),
        QueryType::Cname => lookup.target().into_iter().map(str::to_owned).collect(),
        _ => lookup.records().iter().map(record_text).collect(),
    }
}

/// One record's data as a zone file writes it.
fn record_text(data: &RecordData) -> String {
    let quoted = |bytes: &[u8]| format!("{:?}", String::from_utf8_lossy(bytes));
    match data {
        RecordData::Mx {
            preference,
            exchange,
        } => format!("{preference} {exchange}"),
        RecordData::Txt(strings) => strings
            .iter()
            .map(|s| quoted(s))
            .collect::<Vec<_>>()
            .join(" "),
        RecordData::Ns(name) | RecordData::Ptr(name) => name.clone(),
        RecordData::Soa(soa) => format!(
            "{} {} {} {} {} {} {}",
            soa.mname, soa.rname, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
        ),
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => format!("{priority} {weight} {port} {target}"),
        RecordData::Caa {
            critical,
            tag,
            value,
        } => format!("{} {tag} {}", u8::from(*critical) * 128, quoted(value)),
        RecordData::ServiceBinding(b) => {
            let mut text = format!("{} {}", b.priority, b.target);
            if !b.alpn.is_empty() {
                let _ = write!(text, " alpn={}", b.alpn.join(","));
            }
            if let Some(port) = b.port {
                let _ = write!(text, " port={port}");
            }
            text
        }
        other => format!("{other:?}"),
    }
}

/// `{"name", "type", "ttl", "records", "chain"}`.
fn lookup_dict<'py>(py: Python<'py>, lookup: &Lookup) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("name", lookup.name())?;
    dict.set_item("type", lookup.query_type().as_str())?;
    dict.set_item("ttl", lookup.ttl())?;
    dict.set_item("records", records(lookup))?;
    dict.set_item("chain", lookup.chain())?;
    Ok(dict)
}

/// `{"requested", "unique", "invalid", "resolved", "failed": {kind: n},
/// "elapsed"}` (seconds).
fn prewarm_dict<'py>(py: Python<'py>, report: &PrewarmReport) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("requested", report.requested)?;
    dict.set_item("unique", report.unique)?;
    dict.set_item("invalid", report.invalid)?;
    dict.set_item("resolved", report.resolved)?;
    let failed = PyDict::new(py);
    for (kind, count) in &report.failed {
        failed.set_item(kind.0, count)?;
    }
    dict.set_item("failed", failed)?;
    dict.set_item("elapsed", report.elapsed.as_secs_f64())?;
    Ok(dict)
}

/// The library's counters as a dict, plus `pending`: lookups started from
/// Python whose result has not been delivered (nor their interest dropped).
pub fn metrics_dict<'py>(
    py: Python<'py>,
    m: &MetricsSnapshot,
    pending: usize,
    cache_entries: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let counters = [
        ("lookups", m.lookups),
        ("udp_sent", m.udp_sent),
        ("udp_send_calls", m.udp_send_calls),
        ("tcp_sent", m.tcp_sent),
        ("tls_sent", m.tls_sent),
        ("https_sent", m.https_sent),
        ("connections_opened", m.connections_opened),
        ("answers", m.answers),
        ("retries", m.retries),
        ("late_answers", m.late_answers),
        ("timeouts", m.timeouts),
        ("truncated", m.truncated),
        ("mismatched", m.mismatched),
        ("malformed", m.malformed),
        ("server_errors", m.server_errors),
        ("socket_rotations", m.socket_rotations),
        ("probes", m.probes),
        ("kernel_drops", m.kernel_drops),
        ("cache_hits", m.cache_hits),
        ("cache_misses", m.cache_misses),
        ("stale_served", m.stale_served),
        ("prefetches", m.prefetches),
        ("coalesced", m.coalesced),
    ];
    for (key, value) in counters {
        dict.set_item(key, value)?;
    }
    let failures = PyDict::new(py);
    for (kind, count) in &m.failures {
        failures.set_item(kind.as_str(), count)?;
    }
    dict.set_item("failures", failures)?;
    let latency = PyDict::new(py);
    latency.set_item("count", m.latency.count)?;
    latency.set_item("p50_ms", m.latency.p50_us as f64 / 1000.0)?;
    latency.set_item("p90_ms", m.latency.p90_us as f64 / 1000.0)?;
    latency.set_item("p99_ms", m.latency.p99_us as f64 / 1000.0)?;
    latency.set_item("max_ms", m.latency.max_us as f64 / 1000.0)?;
    dict.set_item("latency", latency)?;
    dict.set_item("cache_entries", cache_entries)?;
    dict.set_item("pending", pending)?;
    Ok(dict)
}
