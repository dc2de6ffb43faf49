//! `crawldns resolve`: bulk resolution of a list of names with the crawldns
//! resolver, one JSON line (or text line) per name and record type, and a
//! summary on stderr.
//!
//! Results are written as lookups finish, not in input order; each carries
//! the input line number. A name that is not a valid host name is reported
//! on stderr with its line number and gets a record with the error
//! `invalid_name`; the run goes on.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use crawldns::{ErrorKind, QueryType, Resolver};

use crate::records_json::{escape_text, JsonRecord};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use futures_util::FutureExt as _;
use serde::Serialize;

use crate::dns_args::DnsArgs;
use crate::input::{Entry, Input, Source};
use crate::metrics_http::{MetricsArgs, Sources};
use crate::output::{Format, Output, Progress};
use crate::rate::{parse_rate, period};
use crate::resume::RunArgs;
use crate::stats::{fmt_opt_ms, json_ms, Latency};
use crate::{Outcome, UsageError};

/// Options of `crawldns resolve`.
#[derive(Debug, Clone, Args)]
pub struct ResolveArgs {
    /// The names to resolve, one per line (blank lines and lines starting
    /// with # are skipped). Without FILE, or with -, names are read from
    /// stdin.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Record type to look up for every name; repeat for several. IP is an
    /// address lookup: A and AAAA per --strategy, ordered for connecting.
    /// PTR of an IP address asks for its reverse name.
    #[arg(long = "type", value_enum, value_name = "TYPE", ignore_case = true,
          default_values_t = [RecordKind::Ip])]
    pub types: Vec<RecordKind>,

    /// Reverse lookups: the input lines are IP addresses, and each is asked
    /// for its PTR records (the same as --type PTR).
    #[arg(short = 'x', long = "reverse", conflicts_with = "types")]
    pub reverse: bool,

    /// Lookups in flight at once.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub concurrency: u64,

    /// Output format on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Json)]
    pub format: Format,

    /// No progress bar and no summary on stderr (errors and warnings stay).
    #[arg(long)]
    pub silent: bool,

    /// Start at most this many lookups per second (each name and type is
    /// one lookup), e.g. to stay under a resolver's rate limit.
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Which nameservers to ask, and how.
    #[command(flatten)]
    pub dns: DnsArgs,

    /// A PEM file of CA certificates that tls:// and https:// nameservers
    /// may chain to, besides the built-in Mozilla roots.
    #[arg(long, value_name = "PEM", help_heading = "DNS")]
    pub ca_file: Option<PathBuf>,

    /// Time to wait for one attempt at one server, in milliseconds (default
    /// 2000, or resolv.conf's timeout). It adapts down to the measured RTT.
    #[arg(long, value_name = "MS", help_heading = "DNS",
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: Option<u64>,

    /// The metrics endpoint.
    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// Where records go, resuming, and the grace period of a stop.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `--type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordKind {
    /// IPv4 addresses.
    #[value(name = "A")]
    A,
    /// IPv6 addresses.
    #[value(name = "AAAA")]
    Aaaa,
    /// The name's own CNAME record.
    #[value(name = "CNAME")]
    Cname,
    /// Mail exchangers.
    #[value(name = "MX")]
    Mx,
    /// Text strings.
    #[value(name = "TXT")]
    Txt,
    /// Name servers.
    #[value(name = "NS")]
    Ns,
    /// Start of authority.
    #[value(name = "SOA")]
    Soa,
    /// Pointer; an IP address as input asks for its reverse name.
    #[value(name = "PTR")]
    Ptr,
    /// Service locations.
    #[value(name = "SRV")]
    Srv,
    /// Certification authority authorization.
    #[value(name = "CAA")]
    Caa,
    /// HTTPS service bindings (ALPN, port, address hints).
    #[value(name = "HTTPS")]
    Https,
    /// General service bindings.
    #[value(name = "SVCB")]
    Svcb,
    /// The addresses to connect to: A and AAAA per --strategy.
    #[value(name = "IP")]
    Ip,
}

impl RecordKind {
    fn label(self) -> &'static str {
        match self.query_type() {
            Some(query_type) => query_type.as_str(),
            None => "IP",
        }
    }

    /// The resolver's type, for every kind but `IP` (an address lookup).
    fn query_type(self) -> Option<QueryType> {
        Some(match self {
            Self::A => QueryType::A,
            Self::Aaaa => QueryType::Aaaa,
            Self::Cname => QueryType::Cname,
            Self::Mx => QueryType::Mx,
            Self::Txt => QueryType::Txt,
            Self::Ns => QueryType::Ns,
            Self::Soa => QueryType::Soa,
            Self::Ptr => QueryType::Ptr,
            Self::Srv => QueryType::Srv,
            Self::Caa => QueryType::Caa,
            Self::Https => QueryType::Https,
            Self::Svcb => QueryType::Svcb,
            Self::Ip => return None,
        })
    }
}

/// One lookup's result, as printed.
#[derive(Debug, Clone, Serialize)]
struct ResolveRecord {
    /// The input line number.
    line: u64,
    /// The name as given.
    name: String,
    /// A, AAAA, CNAME or IP.
    #[serde(rename = "type")]
    query_type: &'static str,
    /// Addresses found (empty for CNAME lookups and errors): the lookup's
    /// own, shared, not copied.
    addresses: Arc<[IpAddr]>,
    /// The CNAME target, for CNAME lookups.
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    /// CNAMEs followed to reach the addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    chain: Vec<String>,
    /// The records, with typed fields, for the types beyond addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    records: Vec<crate::records_json::JsonRecord>,
    /// The record's remaining TTL, in seconds (the smallest on the way).
    ttl: Option<u32>,
    /// Seconds crawldns's cache keeps the answer still: `ttl` raised to the
    /// cache's floor or lowered to its ceiling.
    cache_ttl: Option<u32>,
    /// No AAAA was asked for: this machine has no IPv6 route (`--ipv6`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    aaaa_skipped: bool,
    /// The response code the answer carried, when one did.
    rcode: Option<&'static str>,
    /// The error kind (`nxdomain`, `timeout`, ...), when the lookup failed.
    error: Option<&'static str>,
    /// What went wrong, for errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// Time the lookup took, in milliseconds.
    ms: f64,
}

impl ResolveRecord {
    fn failed(
        line: u64,
        name: String,
        kind: RecordKind,
        error: ErrorKind,
        message: String,
    ) -> Self {
        Self {
            line,
            name,
            query_type: kind.label(),
            addresses: Arc::from([]),
            target: None,
            chain: Vec::new(),
            records: Vec::new(),
            ttl: None,
            cache_ttl: None,
            aaaa_skipped: false,
            rcode: rcode_of(error),
            error: Some(error.as_str()),
            message: Some(message),
            ms: 0.0,
        }
    }

    /// The outcome label the summary counts: `ok` or the error kind.
    fn outcome(&self) -> &'static str {
        self.error.unwrap_or("ok")
    }

    fn text(&self) -> String {
        let mut line = format!("{} {} ", escape_text(&self.name), self.query_type);
        match (self.error, &self.target) {
            (Some(error), _) => {
                let _ = write!(line, "error={error}");
                if let Some(rcode) = self.rcode {
                    let _ = write!(line, " rcode={rcode}");
                }
            }
            (None, Some(target)) => line.push_str(target),
            (None, None) if !self.records.is_empty() => {
                let records: Vec<String> = self.records.iter().map(|r| r.presentation()).collect();
                line.push_str(&escape_text(&records.join(" | ")));
            }
            (None, None) => {
                let addrs: Vec<String> = self.addresses.iter().map(IpAddr::to_string).collect();
                line.push_str(&addrs.join(","));
            }
        }
        if let Some(ttl) = self.ttl {
            let _ = write!(line, " ttl={ttl}");
        }
        let _ = write!(line, " {:.1}ms", self.ms);
        line
    }
}

/// The RCODE behind an error kind, when the server sent one.
fn rcode_of(kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::NxDomain => Some("NXDOMAIN"),
        ErrorKind::NoData => Some("NOERROR"),
        ErrorKind::ServFail => Some("SERVFAIL"),
        ErrorKind::Refused => Some("REFUSED"),
        _ => None,
    }
}

/// `Display` of a resolver error without the leading `NAME: `.
fn error_text(name: &str, error: &crawldns::Error) -> String {
    let text = error.to_string();
    match text.strip_prefix(&format!("{name}: ")) {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// One lookup.
async fn lookup(resolver: Resolver, line: u64, name: String, kind: RecordKind) -> ResolveRecord {
    let started = Instant::now();
    let result = match kind.query_type() {
        None => resolver.lookup_ip(&name).await.map(|found| Found {
            addresses: found.addrs,
            target: None,
            chain: Vec::new(),
            records: Vec::new(),
            ttls: (found.ttl, found.cache_ttl),
            aaaa_skipped: found.aaaa_skipped,
        }),
        Some(query_type) => resolver.lookup(&name, query_type).await.map(Found::from),
    };
    record(line, name, kind, result, started.elapsed())
}

/// What a lookup found, as a record shows it.
struct Found {
    addresses: Arc<[IpAddr]>,
    target: Option<String>,
    chain: Vec<String>,
    records: Vec<JsonRecord>,
    ttls: (u32, u32),
    aaaa_skipped: bool,
}

impl From<crawldns::Lookup> for Found {
    fn from(found: crawldns::Lookup) -> Self {
        Self {
            addresses: found.shared_ips(),
            records: found.records().iter().map(JsonRecord::from).collect(),
            target: found.target().map(str::to_owned),
            chain: found.chain().to_vec(),
            ttls: (found.ttl(), found.cache_ttl()),
            aaaa_skipped: false,
        }
    }
}

/// The record of a lookup of `name` (input line `line`) for `kind` that
/// took `took`.
fn record(
    line: u64,
    name: String,
    kind: RecordKind,
    result: Result<Found, crawldns::Error>,
    took: Duration,
) -> ResolveRecord {
    let ms = json_ms(took);
    match result {
        Ok(found) => ResolveRecord {
            line,
            name,
            query_type: kind.label(),
            addresses: found.addresses,
            target: found.target,
            chain: found.chain,
            records: found.records,
            ttl: Some(found.ttls.0),
            cache_ttl: Some(found.ttls.1),
            aaaa_skipped: found.aaaa_skipped,
            rcode: Some("NOERROR"),
            error: None,
            message: None,
            ms,
        },
        Err(error) => {
            let message = error_text(&name, &error);
            ResolveRecord {
                ms,
                ..ResolveRecord::failed(line, name, kind, error.kind(), message)
            }
        }
    }
}

/// The lookups in flight: futures polled by the command's task, or (with
/// `--bulk`, for typed lookups) the resolver's [`crawldns::Bulk`], which
/// drives them all in one loop without a future each.
enum InFlight<F> {
    Futures(FuturesUnordered<F>),
    Bulk {
        bulk: Box<crawldns::Bulk>,
        /// Per tag (an index, reused once its lookup is done): input line,
        /// name, type and start of the lookup.
        lookups: Vec<Option<(u64, String, RecordKind, Instant)>>,
        /// Tags free for reuse.
        free: Vec<u64>,
    },
}

impl<F: Future<Output = ResolveRecord>> InFlight<F> {
    fn len(&self) -> usize {
        match self {
            Self::Futures(futures) => futures.len(),
            Self::Bulk { bulk, .. } => bulk.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_futures(&self) -> bool {
        matches!(self, Self::Futures(_))
    }

    /// Starts the lookup of `name` for `kind` (`future` is it, when it is
    /// not one for the bulk).
    fn push(&mut self, line: u64, name: String, kind: RecordKind, future: impl FnOnce() -> F) {
        match self {
            Self::Bulk {
                bulk,
                lookups,
                free,
            } if kind.query_type().is_some() => {
                let tag = free.pop().unwrap_or(lookups.len() as u64);
                if let Some(query_type) = kind.query_type() {
                    bulk.push(tag, &name, query_type);
                }
                let entry = Some((line, name, kind, Instant::now()));
                match lookups.get_mut(tag as usize) {
                    Some(slot) => *slot = entry,
                    None => lookups.push(entry),
                }
            }
            Self::Bulk { .. } => unreachable!("the bulk is only used when every type is typed"),
            Self::Futures(futures) => futures.push(future()),
        }
    }

    /// The next finished lookup's record. Cancel-safe.
    async fn next(&mut self) -> Option<ResolveRecord> {
        match self {
            Self::Futures(futures) => futures.next().await,
            Self::Bulk {
                bulk,
                lookups,
                free,
            } => {
                let (tag, result) = bulk.next().await?;
                let (line, name, kind, started) = lookups.get_mut(tag as usize)?.take()?;
                free.push(tag);
                Some(record(
                    line,
                    name,
                    kind,
                    result.map(Found::from),
                    started.elapsed(),
                ))
            }
        }
    }
}

/// What the run counted.
#[derive(Default)]
struct Tally {
    names: u64,
    invalid_lines: u64,
    by_outcome: BTreeMap<&'static str, u64>,
    latency: Latency,
}

/// Writes records and counts them.
struct Writer {
    out: Output,
    format: Format,
    tally: Tally,
    /// The note that AAAA was skipped has been printed.
    noted_aaaa_skipped: bool,
}

impl Writer {
    fn record(&mut self, record: &ResolveRecord) -> Result<()> {
        if record.aaaa_skipped && !self.noted_aaaa_skipped {
            self.noted_aaaa_skipped = true;
            self.out.progress().eprintln(
                "note: AAAA not asked for (no IPv6 route, or --ipv6 never): address \
                 lookups return IPv4 addresses only; --ipv6 always asks anyway",
            );
        }
        match self.format {
            Format::Json => self.out.json_line(record)?,
            Format::Text => {
                let written = self.out.line(&record.text());
                written.with_context(|| format!("cannot write to {}", self.out.name()))?;
            }
        }
        *self.tally.by_outcome.entry(record.outcome()).or_default() += 1;
        self.out.progress().inc();
        Ok(())
    }

    /// Writes out what is buffered.
    fn flush(&mut self) -> Result<()> {
        let flushed = self.out.flush();
        flushed.with_context(|| format!("cannot write to {}", self.out.name()))
    }

    fn lookup_done(&mut self, record: &ResolveRecord) -> Result<()> {
        self.tally
            .latency
            .record(Duration::from_secs_f64(record.ms / 1e3));
        self.record(record)
    }
}

/// Runs `crawldns resolve`.
pub async fn run(mut args: ResolveArgs) -> Result<Outcome> {
    let mut types = if args.reverse {
        vec![RecordKind::Ptr]
    } else {
        args.types.clone()
    };
    dedup_in_order(&mut types);
    // --bulk with typed lookups: one loop drives them all, each name and
    // type its own query, so no cache (the names it leaves to the resolver
    // would be cached, and reported so, while the others are not).
    let bulk = args.dns.bulk && types.iter().all(|t| t.query_type().is_some());
    args.dns.no_cache |= bulk;
    let resolver = args
        .dns
        .resolver(args.timeout_ms, args.ca_file.as_deref())?;

    let source = Source::from_arg(args.file.as_deref());
    let show_progress = !args.silent && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut input = Input::open(source, show_progress)?;
    let metrics = args
        .metrics
        .start(Sources {
            resolver: Some(resolver.clone()),
            fetch: None,
        })
        .await?;

    let total = input.total.map(|n| n * types.len() as u64);
    if args.run.resume && args.format != Format::Json {
        return Err(UsageError(
            "--resume reads the JSON records of -o FILE: it needs --format json".into(),
        )
        .into());
    }
    let progress = if args.silent {
        Progress::hidden()
    } else {
        Progress::new(total, "lookups")
    };
    let (out, mut done) = args.run.open(progress, record_key)?;
    let shutdown = args.run.shutdown()?;
    let mut writer = Writer {
        out,
        format: args.format,
        tally: Tally::default(),
        // --silent: no note either.
        noted_aaaa_skipped: args.silent,
    };
    let started = Instant::now();
    let concurrency = usize::try_from(args.concurrency).unwrap_or(usize::MAX);
    let mut pacer = args.rate.map(|rate| {
        // After a stall (a full window, a slow writer) it does not catch up
        // with a burst: the rate is a ceiling.
        let mut pacer = tokio::time::interval(period(rate));
        pacer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        pacer
    });
    // The lookups in flight, polled by this task: a tokio task each cost
    // more than the lookup's own work (a task cell, the scheduler's lists).
    // With --bulk, typed lookups go through one `Bulk` instead.
    let mut tasks = if bulk {
        InFlight::Bulk {
            bulk: Box::new(resolver.bulk()),
            lookups: Vec::new(),
            free: Vec::new(),
        }
    } else {
        InFlight::Futures(FuturesUnordered::new())
    };

    loop {
        // While the input has no line ready, lookups that finish are
        // written and flushed at once: results stream even when the input
        // trickles in (a pipe kept open). Both futures are cancel-safe.
        let next = loop {
            if tasks.is_empty() {
                break shutdown.until_requested(input.entries.recv()).await;
            }
            tokio::select! {
                biased;
                next = shutdown.until_requested(input.entries.recv()) => break next,
                Some(done) = tasks.next() => {
                    writer.lookup_done(&done)?;
                    writer.flush()?;
                }
            }
        };
        let Some(Some(entry)) = next else { break };
        let (number, name, invalid) = match entry {
            Entry::Line { number, text } => {
                let invalid = crawldns::normalize_host(&text)
                    .err()
                    .map(|e| (e.kind(), error_text(&text, &e)));
                (number, text, invalid)
            }
            Entry::NotUtf8 { number, lossy } => (
                number,
                lossy,
                Some((
                    ErrorKind::InvalidName,
                    "the line is not valid UTF-8".to_owned(),
                )),
            ),
        };
        writer.tally.names += 1;
        if let Some((kind, message)) = invalid {
            writer.tally.invalid_lines += 1;
            writer
                .out
                .progress()
                .eprintln(&format!("line {number}: {name:?}: {message}"));
            for &t in types
                .iter()
                .filter(|t| done.is_empty() || !done.take(&key_of(&name, t.label())))
            {
                writer.record(&ResolveRecord::failed(
                    number,
                    name.clone(),
                    t,
                    kind,
                    message.clone(),
                ))?;
            }
            continue;
        }
        for &t in types
            .iter()
            .filter(|t| done.is_empty() || !done.take(&key_of(&name, t.label())))
        {
            while tasks.len() >= concurrency {
                match shutdown.until_forced(tasks.next()).await {
                    Some(Some(done)) => writer.lookup_done(&done)?,
                    Some(None) => {}
                    None => break,
                }
            }
            if shutdown.requested() && tasks.len() >= concurrency {
                break;
            }
            if let Some(pacer) = pacer.as_mut() {
                // The lookups in flight go on while the pacer waits.
                let ticked = loop {
                    tokio::select! {
                        biased;
                        ticked = shutdown.until_forced(pacer.tick()) => break ticked.is_some(),
                        Some(done) = tasks.next() => writer.lookup_done(&done)?,
                    }
                };
                if !ticked {
                    break;
                }
            }
            tasks.push(number, name.clone(), t, || {
                lookup(resolver.clone(), number, name.clone(), t)
            });
        }
        // Futures: take what finished meanwhile. Not the bulk: polling it
        // after each push would send that one query by itself; its queries
        // leave together once it has no result ready (`bulk.rs`).
        if tasks.is_futures() {
            while let Some(Some(done)) = tasks.next().now_or_never() {
                writer.lookup_done(&done)?;
            }
        }
    }
    while let Some(Some(done)) = shutdown.until_forced(tasks.next()).await {
        writer.lookup_done(&done)?;
    }
    let dropped = tasks.len();
    drop(tasks);
    let elapsed = started.elapsed();
    writer.out.finish()?;
    let interrupted = shutdown.requested();
    // After a stop the input may still be open (a pipe): do not wait for it.
    let (entries, reader) = input.into_parts();
    drop(entries);
    let read = if interrupted { Ok(()) } else { reader.finish() };

    if !args.silent {
        eprint!(
            "{}",
            summary(&writer.tally, types.len(), elapsed, &resolver)
        );
    }
    if done.skipped > 0 {
        eprintln!(
            "resumed: {} lookups already in {} were skipped",
            done.skipped,
            writer.out.name()
        );
    }
    args.metrics.finish(metrics).await;
    if interrupted {
        let written: u64 = writer.tally.by_outcome.values().sum();
        eprintln!(
            "interrupted: {written} records written, {dropped} lookups in flight dropped; run again with -o FILE --resume to do the rest"
        );
        return Ok(Outcome::Interrupted);
    }
    read?;

    let ok = writer.tally.by_outcome.get("ok").copied().unwrap_or(0);
    let lookups: u64 = writer.tally.by_outcome.values().sum();
    Ok(if ok == lookups {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}

/// The input key of a record, for `--resume`: name and type.
fn key_of(name: &str, query_type: &str) -> String {
    format!("{name}\t{query_type}")
}

/// The input key of a JSON record read back.
fn record_key(record: &serde_json::Value) -> Option<String> {
    Some(key_of(
        record.get("name")?.as_str()?,
        record.get("type")?.as_str()?,
    ))
}

/// Removes repeated entries, keeping the first of each.
fn dedup_in_order<T: PartialEq + Copy>(items: &mut Vec<T>) {
    let mut seen = Vec::with_capacity(items.len());
    items.retain(|item| {
        if seen.contains(item) {
            false
        } else {
            seen.push(*item);
            true
        }
    });
}

/// The summary printed on stderr at the end.
fn summary(tally: &Tally, types: usize, elapsed: Duration, resolver: &Resolver) -> String {
    let lookups: u64 = tally.by_outcome.values().sum();
    let mut outcomes: Vec<String> = Vec::new();
    if let Some(ok) = tally.by_outcome.get("ok") {
        outcomes.push(format!("{ok} ok"));
    }
    outcomes.extend(
        tally
            .by_outcome
            .iter()
            .filter(|(k, _)| **k != "ok")
            .map(|(k, n)| format!("{n} {k}")),
    );
    let mut text = String::new();
    let _ = writeln!(
        text,
        "resolved {} names ({} type{}, {lookups} lookups) in {:.2} s: {}",
        tally.names,
        types,
        if types == 1 { "" } else { "s" },
        elapsed.as_secs_f64(),
        if outcomes.is_empty() {
            "nothing to do".to_owned()
        } else {
            outcomes.join(", ")
        }
    );
    if tally.invalid_lines > 0 {
        let _ = writeln!(
            text,
            "invalid lines: {} (reported above with their line numbers)",
            tally.invalid_lines
        );
    }
    let l = &tally.latency;
    let _ = writeln!(
        text,
        "latency: p50 {}, p99 {}, max {} over {} lookups",
        fmt_opt_ms(l.quantile(0.5)),
        fmt_opt_ms(l.quantile(0.99)),
        fmt_opt_ms(l.max()),
        l.count()
    );
    let m = resolver.metrics();
    let _ = writeln!(
        text,
        "resolver: {} queries sent (udp {}, tcp {}, tls {}, https {}), {} retries, {} timeouts; cache {} hits, {} misses, {} coalesced",
        m.udp_sent + m.tcp_sent + m.tls_sent + m.https_sent,
        m.udp_sent,
        m.tcp_sent,
        m.tls_sent,
        m.https_sent,
        m.retries,
        m.timeouts,
        m.cache_hits,
        m.cache_misses,
        m.coalesced
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcodes_follow_the_error_kind() {
        assert_eq!(rcode_of(ErrorKind::NxDomain), Some("NXDOMAIN"));
        assert_eq!(rcode_of(ErrorKind::NoData), Some("NOERROR"));
        assert_eq!(rcode_of(ErrorKind::ServFail), Some("SERVFAIL"));
        assert_eq!(rcode_of(ErrorKind::Refused), Some("REFUSED"));
        assert_eq!(rcode_of(ErrorKind::Timeout), None);
    }

    #[test]
    fn text_lines() {
        let ok = ResolveRecord {
            line: 1,
            name: "h1.crawl.test".into(),
            query_type: "IP",
            addresses: Arc::from(["127.1.0.2".parse().unwrap(), "::1".parse().unwrap()]),
            target: None,
            chain: Vec::new(),
            records: Vec::new(),
            ttl: Some(300),
            cache_ttl: Some(300),
            aaaa_skipped: false,
            rcode: Some("NOERROR"),
            error: None,
            message: None,
            ms: 20.44,
        };
        assert_eq!(ok.text(), "h1.crawl.test IP 127.1.0.2,::1 ttl=300 20.4ms");
        let nx = ResolveRecord::failed(
            2,
            "nope.crawl.test".into(),
            RecordKind::A,
            ErrorKind::NxDomain,
            "name does not exist".into(),
        );
        assert_eq!(
            nx.text(),
            "nope.crawl.test A error=nxdomain rcode=NXDOMAIN 0.0ms"
        );
        assert_eq!(nx.outcome(), "nxdomain");
    }

    #[test]
    fn repeated_types_are_asked_once() {
        let mut types = vec![RecordKind::A, RecordKind::Ip, RecordKind::A];
        dedup_in_order(&mut types);
        assert_eq!(types, [RecordKind::A, RecordKind::Ip]);
    }
}
