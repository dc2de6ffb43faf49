//! `--metrics-addr`: the resolver's and the fetcher's metrics in the
//! Prometheus text format (version 0.0.4), served on `GET /metrics` from a
//! loopback address for as long as a run lasts.
//!
//! Every scrape reads the live counters, so a scraper sees a run progress.
//! Latency histograms are cumulative Prometheus histograms whose buckets are
//! counted from the hdrhistograms the numbers are kept in (to their 3
//! significant digits); `_sum` is the histogram's mean times its count.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Args;
use crawldns::{ErrorKind, Resolver};
use crawldns_fetch::Fetcher;
use hdrhistogram::Histogram;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::fetch_tally::{FetchTally, OUTCOMES};
use crate::stats::count_at_or_below;

/// Upper bounds of the latency buckets, in microseconds (0.5 ms to 30 s).
const BUCKETS_US: [u64; 15] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// The content type of the Prometheus text format.
const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Parses `--metrics-addr`: a socket address on loopback (127.0.0.0/8 or
/// ::1). Port 0 picks a free port (the address is printed on stderr).
pub fn parse_loopback_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.trim().parse().map_err(|_| {
        format!("invalid address {text:?}: expected IP:PORT, e.g. 127.0.0.1:9464 or [::1]:9464")
    })?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: the metrics endpoint only listens on \
             127.0.0.0/8 or ::1 (scrape it locally, or through your own proxy)"
        ));
    }
    Ok(addr)
}

/// `--metrics-addr` and its hidden companion `--linger-ms`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Metrics")]
pub struct MetricsArgs {
    /// While the run lasts, serve its metrics (resolver counters, per-server
    /// RTT and failures, latency histograms, fetch outcomes) in the
    /// Prometheus text format at http://ADDR/metrics. ADDR must be a
    /// loopback address, e.g. 127.0.0.1:9464; port 0 picks a free port. The
    /// address is printed on stderr as `metrics: http://ADDR/metrics`.
    #[arg(long, value_name = "ADDR", value_parser = parse_loopback_addr)]
    pub metrics_addr: Option<SocketAddr>,

    /// Keep serving metrics this long after the run (a final scrape);
    /// SIGINT or SIGTERM ends the wait early.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        hide = true,
        requires = "metrics_addr"
    )]
    pub linger_ms: u64,
}

impl MetricsArgs {
    /// Starts the endpoint when `--metrics-addr` was given, and says where.
    pub async fn start(&self, sources: Sources) -> Result<Option<MetricsServer>> {
        let Some(addr) = self.metrics_addr else {
            return Ok(None);
        };
        let server = MetricsServer::start(addr, Arc::new(sources)).await?;
        eprintln!("metrics: http://{}/metrics", server.addr());
        Ok(Some(server))
    }

    /// After the run: lingers if asked (until SIGINT/SIGTERM), then stops
    /// the endpoint.
    pub async fn finish(&self, server: Option<MetricsServer>) {
        let Some(server) = server else { return };
        if self.linger_ms > 0 {
            eprintln!(
                "metrics: serving for another {} ms (Ctrl-C to stop)",
                self.linger_ms
            );
            let linger = tokio::time::sleep(Duration::from_millis(self.linger_ms));
            match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        () = linger => {}
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => linger.await,
            }
        }
        server.stop().await;
    }
}

/// What the endpoint reports.
#[derive(Default)]
pub struct Sources {
    /// The crawldns resolver, if one is in use.
    pub resolver: Option<Resolver>,
    /// The fetcher and the tally of its records, for `fetch`.
    pub fetch: Option<(Arc<Fetcher>, Arc<Mutex<FetchTally>>)>,
}

/// A running metrics endpoint; stopped by [`MetricsServer::stop`] or drop.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` (which must be loopback) and serves `sources`.
    pub async fn start(addr: SocketAddr, sources: Arc<Sources>) -> Result<Self> {
        if !addr.ip().is_loopback() {
            anyhow::bail!("refusing to serve metrics on {addr}: not a loopback address");
        }
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?;
        let addr = listener
            .local_addr()
            .context("cannot read the metrics address")?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, sources, stopped));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (open connections are closed).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, sources: Arc<Sources>, mut stopped: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let sources = sources.clone();
        connections.spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(&request, &sources);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "metrics endpoint: connection error");
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
}

fn respond(request: &Request<Incoming>, sources: &Sources) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
        response
    };
    if request.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "not found: try /metrics\n".into());
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    plain(StatusCode::OK, render(sources))
}

/// The whole exposition.
pub fn render(sources: &Sources) -> String {
    let mut out = Exposition::default();
    if let Some(resolver) = &sources.resolver {
        render_resolver(&mut out, resolver);
    }
    if let Some((fetcher, tally)) = &sources.fetch {
        let tally = tally.lock().unwrap_or_else(PoisonError::into_inner).clone();
        render_fetch(&mut out, fetcher, &tally);
    }
    out.text
}

fn render_resolver(out: &mut Exposition, resolver: &Resolver) {
    let m = resolver.metrics();
    let counters: [(&str, &str, u64); 21] = [
        (
            "lookups",
            "Lookups asked of the resolver (cache hits included).",
            m.lookups,
        ),
        (
            "answers",
            "Answers received that matched an outstanding question.",
            m.answers,
        ),
        (
            "retries",
            "Queries sent again after a failed attempt.",
            m.retries,
        ),
        (
            "late_answers",
            "Questions answered by a query whose attempt had timed out (a slow name).",
            m.late_answers,
        ),
        ("timeouts", "Attempts that timed out.", m.timeouts),
        (
            "truncated",
            "Truncated UDP answers (retried over TCP).",
            m.truncated,
        ),
        (
            "mismatched_answers",
            "Answers dropped for not matching any question exactly.",
            m.mismatched,
        ),
        (
            "malformed_answers",
            "Answers that were not valid DNS messages.",
            m.malformed,
        ),
        (
            "server_errors",
            "SERVFAIL and REFUSED answers.",
            m.server_errors,
        ),
        (
            "socket_rotations",
            "UDP sockets replaced by one on a fresh random port.",
            m.socket_rotations,
        ),
        (
            "probes",
            "Background probes sent to down servers.",
            m.probes,
        ),
        (
            "kernel_drops",
            "Datagrams the kernel dropped on the resolver's sockets.",
            m.kernel_drops,
        ),
        (
            "cache_hits",
            "Lookups answered from the cache.",
            m.cache_hits,
        ),
        (
            "cache_misses",
            "Lookups the cache could not answer.",
            m.cache_misses,
        ),
        (
            "cache_evictions",
            "Cache entries evicted for room (the cache is full).",
            m.cache_evictions,
        ),
        ("tls_sent", "DNS-over-TLS queries sent.", m.tls_sent),
        ("https_sent", "DNS-over-HTTPS queries sent.", m.https_sent),
        (
            "stale_served",
            "Lookups answered with an expired entry (serve-stale).",
            m.stale_served,
        ),
        (
            "prefetches",
            "Background refreshes of popular entries near expiry.",
            m.prefetches,
        ),
        (
            "coalesced",
            "Lookups that joined a query already in flight (single-flight).",
            m.coalesced,
        ),
        (
            "aaaa_skipped",
            "Address lookups that sent no AAAA query: no IPv6 route.",
            m.aaaa_skipped,
        ),
    ];
    for (name, help, value) in counters {
        out.counter(
            &format!("crawldns_resolver_{name}_total"),
            help,
            &[(&[], value)],
        );
    }
    out.counter(
        "crawldns_resolver_queries_sent_total",
        "Queries sent, by transport.",
        &[
            (&[("transport", "udp")], m.udp_sent),
            (&[("transport", "tcp")], m.tcp_sent),
        ],
    );
    let kinds: Vec<(String, u64)> = ErrorKind::ALL
        .iter()
        .map(|&kind| (kind.as_str().to_owned(), m.failures_of(kind)))
        .collect();
    out.family(
        "crawldns_resolver_failures_total",
        "counter",
        "Failed wire resolutions, by error kind.",
    );
    for (kind, value) in &kinds {
        out.sample("crawldns_resolver_failures_total", &[("kind", kind)], value);
    }
    out.gauge(
        "crawldns_resolver_cache_entries",
        "Entries in the answer cache.",
        resolver.cache_len() as f64,
    );

    let servers: Vec<(String, crawldns::ServerHealth)> = resolver
        .config()
        .nameservers
        .iter()
        .map(|ns| ns.addr.to_string())
        .zip(resolver.server_health())
        .collect();
    out.family(
        "crawldns_resolver_server_srtt_seconds",
        "gauge",
        "Smoothed round-trip time of each nameserver (once measured).",
    );
    for (server, health) in &servers {
        if let Some(srtt) = health.srtt {
            out.sample(
                "crawldns_resolver_server_srtt_seconds",
                &[("server", server)],
                srtt.as_secs_f64(),
            );
        }
    }
    let per_server: [PerServer; 4] = [
        (
            "crawldns_resolver_server_rtt_samples_total",
            "counter",
            "RTT samples taken of each nameserver.",
            |h| f64::from(h.samples),
        ),
        (
            "crawldns_resolver_server_consecutive_failures",
            "gauge",
            "Failures of each nameserver since its last success.",
            |h| f64::from(h.consecutive_failures),
        ),
        (
            "crawldns_resolver_server_down",
            "gauge",
            "1 while a nameserver counts as down (left to background probes).",
            |h| f64::from(u8::from(h.down)),
        ),
        (
            "crawldns_resolver_server_timeout_seconds",
            "gauge",
            "The per-attempt timeout the next query to each nameserver gets.",
            |h| h.timeout.as_secs_f64(),
        ),
    ];
    for (name, kind, help, value) in per_server {
        out.family(name, kind, help);
        for (server, health) in &servers {
            out.sample(name, &[("server", server)], value(health));
        }
    }
    out.histogram(
        "crawldns_resolver_lookup_duration_seconds",
        "Latency of wire resolutions (cache hits excluded).",
        &hdr_of(&resolver.latency_histogram()),
    );
}

/// The resolver's latency histogram as an hdrhistogram, to render.
fn hdr_of(latency: &crawldns::LatencyHistogram) -> Histogram<u64> {
    // The resolver's own bounds (1 µs to 1 h): a saturating record into an
    // auto-resizing histogram would clamp instead of growing.
    let mut hdr = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid constant bounds");
    for (value, count) in latency.recorded() {
        hdr.saturating_record_n(value, count);
    }
    hdr
}

fn render_fetch(out: &mut Exposition, fetcher: &Fetcher, tally: &FetchTally) {
    out.family(
        "crawldns_fetch_requests_total",
        "counter",
        "URLs fetched, by outcome: ok or the error class.",
    );
    for class in OUTCOMES {
        let value = tally.by_class.get(class).copied().unwrap_or(0);
        out.sample("crawldns_fetch_requests_total", &[("class", class)], value);
    }
    let pool = fetcher.pool_stats();
    out.counter(
        "crawldns_fetch_connections_opened_total",
        "Connections opened.",
        &[(&[], pool.opened)],
    );
    out.counter(
        "crawldns_fetch_connections_reused_total",
        "Requests sent over a kept-alive connection.",
        &[(&[], pool.reused)],
    );
    out.counter(
        "crawldns_fetch_connections_evicted_total",
        "Idle connections closed to make room under the global limit.",
        &[(&[], pool.evicted)],
    );
    out.histogram(
        "crawldns_fetch_ttfb_seconds",
        "Time to first byte, from the end of the wait for a connection slot.",
        tally.ttfb.histogram(),
    );
    out.histogram(
        "crawldns_fetch_dns_seconds",
        "Name resolution time of new connections.",
        tally.dns.histogram(),
    );
}

/// A per-server metric: name, type, help, and how to read it.
type PerServer = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crawldns::ServerHealth) -> f64,
);

/// Text being built, one metric family after another.
#[derive(Default)]
struct Exposition {
    text: String,
}

/// Labels of one sample.
type Labels<'a> = &'a [(&'a str, &'a str)];

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: Labels<'_>, value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn counter(&mut self, name: &str, help: &str, samples: &[(Labels<'_>, u64)]) {
        self.family(name, "counter", help);
        for (labels, value) in samples {
            self.sample(name, labels, value);
        }
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    /// A histogram of microseconds, exposed in seconds.
    fn histogram(&mut self, name: &str, help: &str, histogram: &Histogram<u64>) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for bound in BUCKETS_US {
            let le = format!("{}", bound as f64 / 1e6);
            self.sample(&bucket, &[("le", &le)], count_at_or_below(histogram, bound));
        }
        let count = histogram.len();
        self.sample(&bucket, &[("le", "+Inf")], count);
        let sum = if count == 0 {
            0.0
        } else {
            // Microsecond precision, without float noise in the text.
            (histogram.mean() * count as f64).round() / 1e6
        };
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], count);
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Latency;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(parse_loopback_addr("127.0.0.1:9464").is_ok());
        assert!(parse_loopback_addr("127.3.4.5:0").is_ok());
        assert!(parse_loopback_addr("[::1]:9464").is_ok());
        for bad in [
            "0.0.0.0:9464",
            "10.1.2.3:80",
            "[::]:9464",
            "[2001:db8::1]:1",
        ] {
            let err = parse_loopback_addr(bad).unwrap_err();
            assert!(err.contains("not a loopback address"), "{bad}: {err}");
        }
        let err = parse_loopback_addr("localhost:9464").unwrap_err();
        assert!(err.contains("expected IP:PORT"), "{err}");
    }

    #[test]
    fn histograms_are_cumulative_with_count_and_sum() {
        let mut latency = Latency::new();
        for ms in [1, 3, 30, 3_000] {
            latency.record(Duration::from_millis(ms));
        }
        let mut out = Exposition::default();
        out.histogram("x_seconds", "help", latency.histogram());
        let text = out.text;
        assert!(text.contains("# TYPE x_seconds histogram\n"), "{text}");
        assert!(
            text.contains("x_seconds_bucket{le=\"0.0005\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_bucket{le=\"0.001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_bucket{le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("x_seconds_bucket{le=\"0.05\"} 3\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"2.5\"} 3\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"5\"} 4\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("x_seconds_count 4\n"), "{text}");
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("x_seconds_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 3.034).abs() < 0.01, "{sum}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Exposition::default();
        out.sample("m", &[("a", "x\"y\\z")], 1);
        assert_eq!(out.text, "m{a=\"x\\\"y\\\\z\"} 1\n");
    }
}
