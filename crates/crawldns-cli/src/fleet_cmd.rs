//! `crawldns fleet`: many workers share one frontier on Redis Streams.
//!
//! - `enqueue` puts URLs into the partition streams (hash(host) mod P),
//!   waiting while the frontier is at its cap;
//! - `work` runs one worker: it leases partitions, fetches their URLs with
//!   the crawldns fetcher (the `fetch` command's limits and DNS options)
//!   and stores each result, the `fetch` command's JSON record, before
//!   acknowledging it;
//! - `status` shows partitions, owners, lag, pending and per-worker rates
//!   and DNS hit ratios;
//! - `collect` writes each URL's result once to a file and trims the
//!   result stream behind it.
//!
//! The Redis URL may carry a password (`redis://:PASSWORD@host:6379`, or
//! `rediss://` for TLS); it is never printed: every message shows it
//! masked. `CRAWLDNS_REDIS_URL` keeps it out of the process list too.

use std::fs::OpenOptions;
use std::future::Future;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use crawldns::Resolver;
use crawldns_fetch::{Fetcher, WarcWriter};
use crawldns_fleet::collector::Dedup;
use crawldns_fleet::{
    worker, CollectOptions, DnsStats, EnqueueOptions, Enqueuer, Fetch, Fetched, FleetRedis,
    FleetStatus, LeaseConfig, RedisUrl, WorkerConfig,
};

use crate::dns_args::DnsArgs;
use crate::fetch_cmd::LimitArgs;
use crate::fetch_tally::Timing;
use crate::input::{Entry, Input, Source};
use crate::Outcome;

/// Options of `crawldns fleet`.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// What to do.
    #[command(subcommand)]
    command: FleetCommand,
}

#[derive(Debug, Subcommand)]
enum FleetCommand {
    /// Put URLs (one per line, from FILE or stdin) into the frontier.
    Enqueue(EnqueueArgs),
    /// Run one crawl worker until stopped (SIGTERM/SIGINT) or, with
    /// --until-done, until the crawl is done.
    Work(Box<WorkArgs>),
    /// Show partitions, owners, lag, pending, and per-worker rates and DNS
    /// hit ratios.
    Status(StatusArgs),
    /// Write every URL's result once (JSON lines) to a file, trimming the
    /// result stream behind.
    Collect(CollectArgs),
}

/// Where the fleet lives.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Redis")]
struct RedisArgs {
    /// The Redis URL: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], or
    /// rediss:// for TLS. Credentials are never printed.
    #[arg(
        long = "redis",
        value_name = "URL",
        env = "CRAWLDNS_REDIS_URL",
        hide_env_values = true
    )]
    redis: String,

    /// Prefix of the fleet's keys: several fleets can share one Redis.
    #[arg(long, value_name = "NAME", default_value = "crawldns")]
    namespace: String,
}

impl RedisArgs {
    fn url(&self) -> Result<RedisUrl> {
        RedisUrl::parse(&self.redis).map_err(|e| crate::UsageError(e.to_string()).into())
    }

    async fn connect(&self) -> Result<FleetRedis> {
        let url = self.url()?;
        Ok(FleetRedis::connect(&url, &self.namespace).await?)
    }
}

#[derive(Debug, Args)]
struct EnqueueArgs {
    #[command(flatten)]
    redis: RedisArgs,

    /// The URLs, one per line (blank lines and # comments skipped); stdin
    /// without FILE or with -.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,

    /// Partitions P, for a new fleet (an existing one keeps its own).
    #[arg(long, value_name = "P", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    partitions: u32,

    /// The most entries the frontier may hold; enqueueing waits below it.
    #[arg(long, value_name = "ENTRIES", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    cap: u64,
}

#[derive(Debug, Args)]
struct WorkArgs {
    #[command(flatten)]
    redis: RedisArgs,

    /// This worker's id, unique in the fleet (default: HOSTNAME-PID).
    #[arg(long, value_name = "ID")]
    id: Option<String>,

    /// Partitions P, if this worker sets the fleet up.
    #[arg(long, value_name = "P", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    partitions: u32,

    /// Lease time of a partition: a dead worker's partitions move after it.
    #[arg(long, value_name = "MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(300..=600_000))]
    lease_ms: u64,

    /// Entries unacknowledged this long are claimed from their consumer
    /// (default: the lease time).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    claim_idle_ms: Option<u64>,

    /// On SIGTERM, how long running fetches may finish before they are
    /// requeued.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    drain_ms: u64,

    /// Exit once the crawl is done (no enqueuer running, frontier empty).
    #[arg(long)]
    until_done: bool,

    /// Also archive every response this worker fetches as WARC 1.1 in FILE
    /// (as `crawldns fetch --warc`). Bodies stay on the worker: only the
    /// JSON records travel through Redis. Give each worker its own file; a
    /// URL fetched again after its first worker died may be in two.
    #[arg(long, value_name = "FILE")]
    warc: Option<PathBuf>,

    /// The fetcher's limits (--concurrency is the worker's fetches in flight).
    #[command(flatten)]
    limits: LimitArgs,

    /// The nameservers: the shared recursive tier (Unbound), and a second
    /// one to fail over to.
    #[command(flatten)]
    dns: DnsArgs,

    /// Time to wait for one DNS attempt at one server, in milliseconds.
    #[arg(long, value_name = "MS", help_heading = "DNS",
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    dns_timeout_ms: Option<u64>,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    redis: RedisArgs,

    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,

    /// A worker silent for longer than this is shown dead.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    lease_ms: u64,
}

#[derive(Debug, Args)]
struct CollectArgs {
    #[command(flatten)]
    redis: RedisArgs,

    /// The output file (JSON lines, appended to; the ids already in it are
    /// not written again).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,

    /// Keep collecting after the crawl is done, until SIGTERM/SIGINT.
    #[arg(long)]
    follow: bool,
}

/// Runs `crawldns fleet ...`.
pub async fn run(args: FleetArgs) -> Result<Outcome> {
    match args.command {
        FleetCommand::Enqueue(args) => enqueue(args).await,
        FleetCommand::Work(args) => work(*args).await,
        FleetCommand::Status(args) => status(args).await,
        FleetCommand::Collect(args) => collect(args).await,
    }
}

async fn enqueue(args: EnqueueArgs) -> Result<Outcome> {
    let redis = args.redis.connect().await?;
    let input = Input::open(Source::from_arg(args.file.as_deref()), false)?;
    let (mut entries, reader) = input.into_parts();
    let started = Instant::now();
    let mut enqueuer = Enqueuer::start(
        &redis,
        EnqueueOptions {
            partitions: args.partitions,
            cap: args.cap,
            ..EnqueueOptions::default()
        },
    )
    .await?;
    let mut batch = Vec::with_capacity(1000);
    let mut pushed = Ok(());
    loop {
        let entry = entries.recv().await;
        let end = entry.is_none();
        match entry {
            Some(Entry::Line { text, .. }) => batch.push(text),
            Some(Entry::NotUtf8 { lossy, .. }) => batch.push(lossy),
            None => {}
        }
        if batch.len() >= 1000 || (end && !batch.is_empty()) {
            pushed = enqueuer.push(&batch).await;
            batch.clear();
            if pushed.is_err() {
                break;
            }
        }
        if end {
            break;
        }
    }
    let partitions = enqueuer.partitions();
    let report = enqueuer.finish().await?;
    pushed?;
    reader.finish()?;
    eprintln!(
        "enqueued {} URLs into {partitions} partitions in {:.2} s{}",
        report.urls,
        started.elapsed().as_secs_f64(),
        if report.waits > 0 {
            format!(
                " (waited {} times for the frontier to drain below its cap)",
                report.waits
            )
        } else {
            String::new()
        }
    );
    Ok(Outcome::Success)
}

/// The crawldns fetcher as a fleet worker's fetch: the `fetch` command's
/// record as the line, its error class as the outcome.
struct FetcherFetch {
    fetcher: Arc<Fetcher>,
    resolver: Resolver,
    /// `--warc`: the archive, with its path.
    warc: Option<Arc<Archive>>,
}

/// A worker's WARC file. A write that fails stops the archiving (said once
/// on stderr); the JSON records go on.
struct Archive {
    path: PathBuf,
    writer: std::sync::Mutex<Option<WarcWriter>>,
}

impl Archive {
    fn write(&self, record: &crawldns_fetch::FetchRecord) {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(warc) = writer.as_mut() {
            if let Err(e) = warc.write(record) {
                eprintln!(
                    "warc: cannot write to {}: {e}; archiving stopped, the JSON records go on",
                    self.path.display()
                );
                *writer = None;
            }
        }
    }

    /// Flushes the file; the responses archived.
    fn finish(&self) -> Result<u64> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match writer.as_mut() {
            Some(warc) => {
                warc.finish()
                    .with_context(|| format!("cannot write to {}", self.path.display()))?;
                Ok(warc.responses())
            }
            None => Ok(0),
        }
    }
}

impl Fetch for FetcherFetch {
    fn fetch(&self, url: String) -> Pin<Box<dyn Future<Output = Fetched> + Send + 'static>> {
        let fetcher = self.fetcher.clone();
        let warc = self.warc.clone();
        Box::pin(async move {
            let record = fetcher.fetch(&url).await;
            if let Some(warc) = &warc {
                warc.write(&record);
            }
            let class = Timing::from(&record)
                .class
                .unwrap_or_else(|| "ok".to_owned());
            // The same line `crawldns fetch` writes.
            let line = record.to_json_line();
            Fetched { line, class }
        })
    }

    fn dns(&self) -> DnsStats {
        let m = self.resolver.metrics();
        DnsStats {
            lookups: m.lookups,
            cache_hits: m.cache_hits,
            cache_misses: m.cache_misses,
            queries: m.udp_sent + m.tcp_sent + m.tls_sent + m.https_sent,
            retries: m.retries,
        }
    }
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn work(args: WorkArgs) -> Result<Outcome> {
    let url = args.redis.url()?;
    let resolver = args
        .dns
        .resolver(args.dns_timeout_ms, args.limits.ca_file.as_deref())?;
    let mut fetcher_config = args.limits.config()?;
    fetcher_config.keep_wire_body = args.warc.is_some();
    // An unwritable archive fails before the worker joins the fleet.
    let warc = match &args.warc {
        Some(path) => Some(Arc::new(Archive {
            writer: std::sync::Mutex::new(Some(
                WarcWriter::create(path, concat!("crawldns/", env!("CARGO_PKG_VERSION")))
                    .with_context(|| format!("cannot write --warc {}", path.display()))?,
            )),
            path: path.clone(),
        })),
        None => None,
    };
    let fetcher = Arc::new(
        Fetcher::new(fetcher_config, Arc::new(resolver.clone()))
            .context("cannot set up the fetcher")?,
    );
    let lease = LeaseConfig::with_ttl(Duration::from_millis(args.lease_ms));
    let mut config = WorkerConfig::new(args.id.unwrap_or_else(default_worker_id));
    config.partitions = args.partitions;
    config.lease = lease;
    config.claim_idle = args.claim_idle_ms.map_or(lease.ttl, Duration::from_millis);
    config.drain_timeout = Duration::from_millis(args.drain_ms);
    config.until_done = args.until_done;
    config.concurrency = usize::try_from(args.limits.concurrency).unwrap_or(usize::MAX);
    config.per_host = usize::try_from(args.limits.per_host).unwrap_or(usize::MAX);
    let id = config.id.clone();
    let started = Instant::now();
    let fetch = Arc::new(FetcherFetch {
        fetcher,
        resolver,
        warc: warc.clone(),
    });
    let stats = worker::run(&url, &args.redis.namespace, config, fetch, stop_signal()).await?;
    if let Some(warc) = &warc {
        let archived = warc.finish()?;
        eprintln!(
            "warc: {archived} responses archived in {}",
            warc.path.display()
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let percent = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0));
    let (ratio, url_ratio) = (
        percent(stats.dns.hit_ratio()),
        percent(stats.url_hit_ratio()),
    );
    eprintln!(
        "worker {id}: {} URLs in {elapsed:.2} s ({} ok), {} claimed from others, {} requeued, DNS cache hits {ratio} of lookups, {url_ratio} of URLs, {} DNS queries",
        stats.done,
        stats.ok(),
        stats.claimed,
        stats.requeued,
        stats.dns.queries
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&stats)?).context("cannot write to stdout")?;
    Ok(Outcome::Success)
}

async fn status(args: StatusArgs) -> Result<Outcome> {
    let redis = args.redis.connect().await?;
    let status = FleetStatus::read(&redis, args.lease_ms).await?;
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&status)?)
    } else {
        status.render()
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")?;
    Ok(Outcome::Success)
}

async fn collect(args: CollectArgs) -> Result<Outcome> {
    let redis = args.redis.connect().await?;
    let mut dedup = Dedup::default();
    if let Ok(file) = std::fs::File::open(&args.output) {
        let lines = dedup.load(BufReader::new(file))?;
        if lines > 0 {
            eprintln!(
                "{}: {lines} lines already, {} URL ids; going on after them",
                args.output.display(),
                dedup.len()
            );
        }
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.output)
        .with_context(|| format!("cannot open {}", args.output.display()))?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let started = Instant::now();
    let report = crawldns_fleet::collect(
        &redis,
        &mut dedup,
        &mut out,
        |out| {
            out.flush()?;
            out.get_ref().sync_data()
        },
        CollectOptions {
            follow: args.follow,
            ..CollectOptions::default()
        },
        stop_signal(),
    )
    .await?;
    out.flush().context("cannot write the output")?;
    eprintln!(
        "collected {} results ({} ok) into {} in {:.2} s; {} duplicates dropped; {} URL ids in the file",
        report.written,
        report.ok,
        args.output.display(),
        started.elapsed().as_secs_f64(),
        report.duplicates,
        dedup.len()
    );
    Ok(Outcome::Success)
}
