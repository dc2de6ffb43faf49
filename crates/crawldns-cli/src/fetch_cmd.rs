//! `crawldns fetch`: crawls a list of URLs with the crawldns [`Fetcher`]:
//! pre-warm each batch's hosts, fetch under the connection limits, one JSON
//! line per URL (the library's `FetchRecord`: status, bytes, phase timings
//! in ms, error class), and a summary table on stderr.
//!
//! Records are written as fetches finish, not in input order. A line that
//! is not an http(s) URL is reported on stderr with its line number and gets
//! a record with the error class `url`; the run goes on.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use crawldns_fetch::host_resolver::BoxFuture;
use crawldns_fetch::{
    BreakerPolicy, FetchRecord, Fetcher, FetcherConfig, HostResolver, ResultSink, RetryPolicy,
    UrlSource, WarcWriter,
};

use crate::dns_args::DnsArgs;
use crate::fetch_tally::{FetchTally, Timing};
use crate::input::{Entry, Input, Source};
use crate::metrics_http::{MetricsArgs, Sources};
use crate::output::Format;
use crate::output::{Output, Progress};
use crate::rate::parse_rate;
use crate::records_json::escape_text;
use crate::resume::{Done, RunArgs};
use crate::shutdown::Shutdown;
use crate::stats::fmt_opt_ms;
use crate::{Outcome, UsageError};

/// Threads of the `getaddrinfo` pool behind `--system-resolver`.
pub const GAI_THREADS: usize = 32;

/// Options of `crawldns fetch`.
#[derive(Debug, Clone, Args)]
pub struct FetchArgs {
    /// The URLs to fetch (http or https), one per line (blank lines and
    /// lines starting with # are skipped). Without FILE, or with -, URLs
    /// are read from stdin.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// The fetcher's limits.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Resolve names with the system's getaddrinfo (on a pool of 32
    /// threads, as most async stacks do) instead of crawldns, for
    /// comparison. Takes no DNS options: glibc reads /etc/resolv.conf.
    #[arg(long, help_heading = "DNS",
          conflicts_with_all = ["nameservers", "resolv_conf", "dns_timeout_ms", "attempts", "tcp", "strategy"])]
    pub system_resolver: bool,

    /// With --system-resolver: keep each host's addresses for SECS
    /// seconds whatever their TTLs, without single-flight (what aiohttp
    /// does by default, ttl_dns_cache=10). Without it, nothing is kept.
    #[arg(long, value_name = "SECS", help_heading = "DNS",
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub system_dns_cache: Option<u64>,

    /// Which nameservers to ask, and how.
    #[command(flatten)]
    pub dns: DnsArgs,

    /// Time to wait for one DNS attempt at one server, in milliseconds
    /// (default 2000, or resolv.conf's timeout). It adapts down to the
    /// measured RTT.
    #[arg(long, value_name = "MS", help_heading = "DNS",
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub dns_timeout_ms: Option<u64>,

    /// Also archive every response as WARC 1.1 in FILE (gzipped records,
    /// e.g. crawl.warc.gz): a warcinfo record, then a request and a
    /// response record per fetched page. Failed fetches stay in the JSON
    /// lines only.
    #[arg(long, value_name = "FILE", help_heading = "Output and stopping")]
    pub warc: Option<PathBuf>,

    /// The output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Json,
          help_heading = "Output and stopping")]
    pub format: Format,

    /// The metrics endpoint.
    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// Where records go, resuming, and the grace period of a stop.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The fetcher's limits, shared with `crawldns demo`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Open connections at most, all hosts together.
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub global_connections: u64,

    /// Open connections at most per host (scheme, host, port).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub per_host: u64,

    /// Politeness: at most this many request starts per second per host
    /// (default: no limit).
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub per_host_rate: Option<f64>,

    /// Deadline for a whole URL (queue, DNS, connect, redirects, body), in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub timeout_ms: u64,

    /// Deadline for the TCP connection, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub connect_timeout_ms: u64,

    /// Redirects followed at most.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_redirects: u32,

    /// Body bytes read at most; a longer body is a `body` error.
    #[arg(long, value_name = "BYTES", default_value_t = 10 << 20)]
    pub max_body: u64,

    /// The User-Agent header.
    #[arg(long, value_name = "TEXT", value_parser = parse_user_agent)]
    pub user_agent: Option<String>,

    /// Also trust the CA certificates in this PEM file (e.g. a test CA),
    /// for HTTPS fetches and for tls:// and https:// nameservers.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Dead hosts: after this many connect failures in a row (refused,
    /// unreachable, connect timeout, TLS handshake) an origin's URLs fail
    /// at once with class host_down for a cool-down; 0 turns it off.
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub host_down_after: u32,

    /// The first host_down cool-down in milliseconds (it doubles while the
    /// origin stays down, up to an hour); then one probe request decides.
    #[arg(long, value_name = "MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub host_down_cool_down_ms: u64,

    /// Retry transient failures (timeouts, refused or reset connections,
    /// 429/502/503/504, honouring Retry-After) up to N times, with
    /// exponential back-off and jitter; never other 4xx. Every attempt is
    /// in the record (`retries`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,

    /// Do not resolve each batch's hosts before fetching it.
    #[arg(long)]
    pub no_prewarm: bool,

    /// Obey robots.txt: each origin's file is fetched once, its rules for
    /// the User-Agent's product token decide each request (a disallowed URL
    /// is a record of class robots) and its Crawl-delay slows the host when
    /// slower than --per-host-rate. A robots.txt answering 5xx or timing
    /// out disallows the whole origin (RFC 9309).
    #[arg(long)]
    pub robots: bool,

    /// Fetches in flight at once (the connection limits still apply).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub concurrency: u64,

    /// URLs read, pre-warmed and fetched together; the next batch starts
    /// when a batch is done.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub batch: u64,
}

/// Parses `--per-host-rate`: a positive number.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl LimitArgs {
    /// The fetcher configuration these limits describe (reads `--ca-file`).
    pub fn config(&self) -> Result<FetcherConfig> {
        let mut config = FetcherConfig {
            global_connections: to_usize(self.global_connections),
            per_host_connections: to_usize(self.per_host),
            per_host_rate: self.per_host_rate,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            request_timeout: Duration::from_millis(self.timeout_ms),
            max_redirects: self.max_redirects,
            max_body: self.max_body,
            prewarm: !self.no_prewarm,
            robots: self.robots,
            concurrency: to_usize(self.concurrency),
            host_down: BreakerPolicy {
                threshold: self.host_down_after,
                cool_down: Duration::from_millis(self.host_down_cool_down_ms),
                ..BreakerPolicy::default()
            },
            retry: RetryPolicy {
                retries: self.retries,
                ..RetryPolicy::default()
            },
            ..FetcherConfig::default()
        };
        if let Some(agent) = &self.user_agent {
            config.user_agent.clone_from(agent);
        }
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --ca-file {}", path.display()))?;
            config.extra_ca_pem.push(pem);
        }
        Ok(config)
    }
}

/// Writes records to the output and counts them; shared by the URL source
/// (for invalid lines) and the result sink.
struct RecordWriter {
    out: Output,
    /// Inputs already recorded (`--resume`).
    done: Done,
    /// The WARC file (`--warc`) and its path.
    warc: Option<(WarcWriter, PathBuf)>,
    tally: Arc<Mutex<FetchTally>>,
    invalid_lines: u64,
    /// The first write error; every later write fails with it.
    failed: Option<String>,
    format: Format,
    /// The input line numbers of the URLs being fetched, oldest first per
    /// URL (a URL may be on several lines).
    lines: HashMap<String, VecDeque<u64>>,
}

impl RecordWriter {
    /// Writes the record of the fetch of an input line's URL.
    fn write_fetched(&mut self, record: &FetchRecord) -> io::Result<()> {
        let line = match self.lines.get_mut(&record.url) {
            Some(numbers) => {
                let line = numbers.pop_front().unwrap_or(0);
                if numbers.is_empty() {
                    self.lines.remove(&record.url);
                }
                line
            }
            None => 0,
        };
        self.write(line, record)
    }

    fn write(&mut self, line: u64, record: &FetchRecord) -> io::Result<()> {
        if let Some(failed) = &self.failed {
            return Err(io::Error::other(failed.clone()));
        }
        if let Some((warc, path)) = &mut self.warc {
            if let Err(e) = warc.write(record) {
                let failed = format!("cannot write to {}: {e}", path.display());
                self.failed = Some(failed.clone());
                return Err(io::Error::other(failed));
            }
        }
        let text = match self.format {
            Format::Json => with_line(line, &record.to_json_line()),
            Format::Text => text_line(record),
        };
        if let Err(e) = self.out.line(&text) {
            let failed = format!("cannot write to {}: {e}", self.out.name());
            self.failed = Some(failed.clone());
            return Err(io::Error::other(failed));
        }
        lock(&self.tally).add(&Timing::from(record));
        self.out.progress().inc();
        Ok(())
    }

    /// A line that is not a URL: reported on stderr, and a `url` record.
    fn invalid(&mut self, number: u64, text: &str, why: &str) {
        self.invalid_lines += 1;
        self.out
            .progress()
            .eprintln(&format!("line {number}: {text:?}: {why}"));
        let record = FetchRecord::url_error(text, format!("line {number}: {why}"));
        // A failure is kept in `failed` and ends the crawl at the next record.
        let _ = self.write(number, &record);
    }
}

/// A record's JSON line with the input line number as its first field.
fn with_line(line: u64, json: &str) -> String {
    match json.strip_prefix('{') {
        Some(rest) if rest.starts_with('}') => format!("{{\"line\":{line}}}"),
        Some(rest) => format!("{{\"line\":{line},{rest}"),
        None => json.to_owned(),
    }
}

/// A record as one line of text: `URL STATUS BYTES ttfb=… total=…`, or
/// `URL error=CLASS total=… MESSAGE` for a failure.
fn text_line(record: &FetchRecord) -> String {
    let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1e3);
    let url = escape_text(&record.url);
    let total = ms(record.phases.total);
    match &record.error {
        None => {
            let status = record.status.map_or("-".to_owned(), |s| s.to_string());
            let ttfb = record.phases.ttfb.map_or("-".to_owned(), ms);
            format!("{url} {status} {}B ttfb={ttfb} total={total}", record.bytes)
        }
        Some(error) => format!(
            "{url} error={} total={total} {}",
            error.class,
            escape_text(&error.message)
        ),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why `text` is not a URL the fetcher can fetch, as the fetcher decides it.
fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "not an http(s) URL: unsupported scheme {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("not a URL: no host".to_owned());
    }
    Ok(())
}

/// The input key of a fetch record, for `--resume`: its URL as given.
fn record_key(record: &serde_json::Value) -> Option<String> {
    record.get("url")?.as_str().map(str::to_owned)
}

/// URLs from the input, with invalid lines turned into `url` records and
/// inputs already recorded skipped; ends early when a stop is asked for.
struct LineSource {
    entries: crate::input::Entries,
    writer: Arc<Mutex<RecordWriter>>,
    shutdown: Shutdown,
}

impl LineSource {
    /// Handles one entry: the URL to fetch, or `None` after reporting it.
    fn accept(&self, entry: Entry) -> Option<String> {
        let mut writer = lock(&self.writer);
        let key = match &entry {
            Entry::Line { text, .. } => text,
            Entry::NotUtf8 { lossy, .. } => lossy,
        };
        if writer.done.take(key) {
            return None;
        }
        match entry {
            Entry::Line { number, text } => match check_url(&text) {
                Ok(()) => {
                    writer
                        .lines
                        .entry(text.clone())
                        .or_default()
                        .push_back(number);
                    Some(text)
                }
                Err(why) => {
                    writer.invalid(number, &text, &why);
                    None
                }
            },
            Entry::NotUtf8 { number, lossy } => {
                writer.invalid(number, &lossy, "the line is not valid UTF-8");
                None
            }
        }
    }

    fn stopped(&self) -> bool {
        lock(&self.writer).failed.is_some()
    }
}

impl UrlSource for LineSource {
    fn next_url(&mut self) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move {
            loop {
                if self.stopped() || self.shutdown.requested() {
                    return None;
                }
                let entry = self.shutdown.until_requested(self.entries.recv()).await??;
                if let Some(url) = self.accept(entry) {
                    return Some(url);
                }
            }
        })
    }
}

/// Records to the writer.
struct Sink {
    writer: Arc<Mutex<RecordWriter>>,
}

impl ResultSink for Sink {
    fn record(&mut self, record: FetchRecord) -> BoxFuture<'_, io::Result<()>> {
        let result = lock(&self.writer).write_fetched(&record);
        Box::pin(async move { result })
    }
}

/// Runs `crawldns fetch`.
pub async fn run(args: FetchArgs) -> Result<Outcome> {
    // clap's `requires` cannot see a flag's absence (a flag defaults to
    // false, which counts as present).
    if args.system_dns_cache.is_some() && !args.system_resolver {
        return Err(UsageError("--system-dns-cache needs --system-resolver".into()).into());
    }
    let mut config = args.limits.config()?;
    config.keep_wire_body = args.warc.is_some();
    // An unwritable archive fails before anything is fetched.
    let warc = match &args.warc {
        Some(path) => Some((
            WarcWriter::create(path, concat!("crawldns/", env!("CARGO_PKG_VERSION")))
                .with_context(|| format!("cannot write --warc {}", path.display()))?,
            path.clone(),
        )),
        None => None,
    };
    let (host_resolver, resolver): (Arc<dyn HostResolver>, _) = if args.system_resolver {
        let pool: Arc<dyn HostResolver> = Arc::new(
            crawldns_fetch::gai::GaiPool::new(GAI_THREADS)
                .context("cannot start the getaddrinfo threads")?,
        );
        let resolver: Arc<dyn HostResolver> = match args.system_dns_cache.unwrap_or(0) {
            0 => pool,
            secs => Arc::new(crawldns_fetch::ttl_cache::TtlCached::new(
                pool,
                Duration::from_secs(secs),
            )),
        };
        (resolver, None)
    } else {
        let resolver = args
            .dns
            .resolver(args.dns_timeout_ms, args.limits.ca_file.as_deref())?;
        (Arc::new(resolver.clone()), Some(resolver))
    };
    let fetcher =
        Arc::new(Fetcher::new(config, host_resolver).context("cannot set up the fetcher")?);

    let source = Source::from_arg(args.file.as_deref());
    let show_progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let input = Input::open(source, show_progress)?;
    let progress = Progress::new(input.total, "URLs");
    if args.run.resume && args.format != Format::Json {
        return Err(UsageError(
            "--resume reads the JSON records of -o FILE: it needs --format json".into(),
        )
        .into());
    }
    let (out, done) = args.run.open(progress, record_key)?;
    let shutdown = args.run.shutdown()?;
    let tally = Arc::new(Mutex::new(FetchTally::default()));
    let metrics = args
        .metrics
        .start(Sources {
            resolver: resolver.clone(),
            fetch: Some((fetcher.clone(), tally.clone())),
        })
        .await?;

    let writer = Arc::new(Mutex::new(RecordWriter {
        out,
        done,
        tally: tally.clone(),
        invalid_lines: 0,
        failed: None,
        warc,
        format: args.format,
        lines: HashMap::new(),
    }));
    let (entries, reader) = input.into_parts();
    let mut source = LineSource {
        entries,
        writer: writer.clone(),
        shutdown: shutdown.clone(),
    };
    let mut sink = Sink {
        writer: writer.clone(),
    };
    let started = Instant::now();
    let crawled = fetcher
        .crawl_until(
            &mut source,
            &mut sink,
            to_usize(args.limits.batch),
            shutdown.forced(),
        )
        .await;
    let elapsed = started.elapsed();
    // Stops the input thread (it may be blocked handing over a line).
    drop(source);
    let out_name = lock(&writer).out.name().to_owned();
    let crawled = crawled.map_err(|e| {
        anyhow::anyhow!(lock(&writer)
            .failed
            .clone()
            .unwrap_or_else(|| e.to_string()))
    })?;
    let (invalid_lines, skipped, archived) = finish_output(&writer)?;
    let interrupted = shutdown.requested();
    // After a stop the input may still be open (a pipe): do not wait for it.
    let read = if interrupted { Ok(()) } else { reader.finish() };
    let tally = lock(&tally).clone();

    let cache_secs = args.system_dns_cache.unwrap_or(0);
    let resolver_name = if args.system_resolver && cache_secs > 0 {
        format!("getaddrinfo on {GAI_THREADS} threads, answers kept {cache_secs} s")
    } else if args.system_resolver {
        format!("getaddrinfo on {GAI_THREADS} threads")
    } else {
        "crawldns".to_owned()
    };
    eprint!(
        "{}",
        summary(&tally, invalid_lines, elapsed, &fetcher, &resolver_name)
    );
    if skipped > 0 {
        eprintln!("resumed: {skipped} URLs already in {out_name} were skipped");
    }
    if let (Some(archived), Some(path)) = (archived, &args.warc) {
        eprintln!("warc: {archived} responses archived in {}", path.display());
    }
    args.metrics.finish(metrics).await;
    if interrupted {
        eprintln!(
            "interrupted: {} records written, {} fetches in flight dropped; run again with -o FILE --resume to fetch the rest",
            tally.urls, crawled.aborted
        );
        return Ok(Outcome::Interrupted);
    }
    read?;
    Ok(if tally.failed() == 0 {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}

/// After the crawl: fails if a write failed, flushes the outputs, and
/// returns the number of invalid lines, of inputs skipped by --resume, and
/// of responses archived.
fn finish_output(writer: &Mutex<RecordWriter>) -> Result<(u64, u64, Option<u64>)> {
    let mut writer = lock(writer);
    if let Some(failed) = &writer.failed {
        anyhow::bail!("{failed}");
    }
    writer.out.finish()?;
    let archived = match &mut writer.warc {
        Some((warc, path)) => {
            warc.finish()
                .with_context(|| format!("cannot write to {}", path.display()))?;
            Some(warc.responses())
        }
        None => None,
    };
    Ok((writer.invalid_lines, writer.done.skipped, archived))
}

/// The summary table printed on stderr at the end.
fn summary(
    tally: &FetchTally,
    invalid_lines: u64,
    elapsed: Duration,
    fetcher: &Fetcher,
    resolver: &str,
) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "fetched {} URLs in {:.2} s: {} ok, {} failed",
        tally.urls,
        elapsed.as_secs_f64(),
        tally.ok(),
        tally.failed()
    );
    let _ = writeln!(text, "errors: {}", tally.errors_line());
    if invalid_lines > 0 {
        let _ = writeln!(
            text,
            "invalid lines: {invalid_lines} (reported above with their line numbers)"
        );
    }
    let _ = writeln!(
        text,
        "{:<8} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "", "p50", "p90", "p99", "max", "count"
    );
    for (name, latency) in [
        ("ttfb", &tally.ttfb),
        ("dns", &tally.dns),
        ("total", &tally.total),
    ] {
        let _ = writeln!(
            text,
            "{:<8} {:>10} {:>10} {:>10} {:>10} {:>8}",
            name,
            fmt_opt_ms(latency.quantile(0.5)),
            fmt_opt_ms(latency.quantile(0.9)),
            fmt_opt_ms(latency.quantile(0.99)),
            fmt_opt_ms(latency.max()),
            latency.count()
        );
    }
    let down = fetcher.host_down_stats();
    if down.marked_down > 0 {
        let _ = writeln!(
            text,
            "hosts down: marked down {} times, {} URLs failed fast (host_down), {} origins down at the end",
            down.marked_down, down.rejected, down.down_now
        );
    }
    let pool = fetcher.pool_stats();
    let _ = writeln!(
        text,
        "connections: {} opened, {} reused; resolver: {resolver}; pre-warm {}",
        pool.opened,
        pool.reused,
        if fetcher.config().prewarm {
            "on"
        } else {
            "off"
        }
    );
    text
}

/// Parses `--user-agent`: a valid header value (no control characters but
/// tab), or a bad command line (exit 2).
fn parse_user_agent(text: &str) -> Result<String, String> {
    match text
        .bytes()
        .find(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        Some(b) => Err(format!(
            "a header value cannot hold the control character 0x{b:02x}"
        )),
        None => Ok(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_like_the_fetcher_does() {
        assert!(check_url("http://h1.crawl.test:8080/").is_ok());
        assert!(check_url("https://example.com/a?b=c").is_ok());
        assert!(check_url("ftp://example.com/")
            .unwrap_err()
            .contains("unsupported scheme \"ftp\""));
        assert!(check_url("h1.crawl.test/page")
            .unwrap_err()
            .contains("not a URL"));
        assert!(check_url("http://").unwrap_err().contains("not a URL"));
    }
}
