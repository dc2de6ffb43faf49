//! `crawldns demo`: the system resolver path and crawldns, side by side, on
//! a local testbed.
//!
//! The same crawl runs twice, each against its own copy of the testbed (an
//! authoritative DNS server whose answers are delayed like a real
//! resolver's round trip, and an HTTP farm of hundreds of hosts), with the
//! same URLs and the same fetcher limits:
//!
//! 1. the system path: glibc `getaddrinfo` on a pool of 32 threads, the
//!    default of the async stacks most crawlers use. glibc only asks the
//!    nameservers of `/etc/resolv.conf`, on port 53, so this crawl runs in a
//!    child process (`crawldns demo-system-path`) inside a network
//!    namespace whose resolv.conf names 127.0.0.1, where the child runs its
//!    own testbed (see [`crate::netns`]). That needs root; without it, the
//!    demo says so and shows crawldns alone.
//! 2. crawldns, in this process: pre-warm the hosts, then fetch.
//!
//! It prints a table (TTFB and DNS percentiles, wall time, errors, ratios)
//! and writes an SVG plot of both TTFB distributions.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use crawldns::{Resolver, ResolverConfig};
use crawldns_fetch::host_resolver::BoxFuture;
use crawldns_fetch::{DnsFailure, Fetcher, FetcherConfig, HostResolver, IterSource, VecSink};
use crawldns_testbed::http_farm::{HttpFarm, HttpFarmConfig};
use crawldns_testbed::{host_v4, AaaaAnswer, Delay, DnsServer, DnsServerConfig, ZoneConfig};
use serde::{Deserialize, Serialize};

use crate::fetch_cmd::{FetchTally, Timing};
use crate::netns;
use crate::plot;
use crate::stats::{fmt_ms, fmt_opt_ms};
use crate::Outcome;

/// How long the namespaced child may take, testbed start included.
const CHILD_LIMIT: Duration = Duration::from_secs(180);

/// The crawl both paths run, and the testbed it runs against.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct Scenario {
    /// Synthetic hosts h0 .. h<N-1>.crawl.test, each on its own loopback
    /// address.
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub hosts: u32,

    /// URLs per host. URLs are ordered host by host in rounds (every host's
    /// first page, then every host's second, ...), as a polite frontier
    /// hands them out.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub urls_per_host: u32,

    /// Delay before every DNS answer, in milliseconds: the round trip to a
    /// real recursive resolver.
    #[arg(long, value_name = "MS", default_value_t = 30)]
    pub dns_delay_ms: u64,

    /// Delay before every HTTP response, in milliseconds: the server's own
    /// time.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    pub http_delay_ms: u64,

    /// Body size of every response, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 2048)]
    pub body_size: usize,

    /// Open connections at most, all hosts together (both crawls).
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub global_connections: u64,

    /// Open connections at most per host (both crawls).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub per_host: u64,

    /// Threads of the system path's getaddrinfo pool.
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=1_024))]
    pub gai_threads: u64,

    /// Deadline for each URL, in milliseconds (both crawls).
    #[arg(long, value_name = "MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
}

/// Options of `crawldns demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The crawl and its testbed.
    #[command(flatten)]
    pub scenario: Scenario,

    /// Where to write the SVG plot of both TTFB distributions.
    #[arg(long, value_name = "PATH", default_value = "crawldns-demo.svg")]
    pub plot: PathBuf,

    /// Skip the system path (no network namespace, no root needed) and show
    /// crawldns alone.
    #[arg(long)]
    pub no_system_path: bool,
}

/// Options of the hidden `crawldns demo-system-path`.
#[derive(Debug, Clone, Args)]
pub struct SystemPathArgs {
    /// The scenario, as JSON.
    #[arg(long, value_name = "JSON")]
    pub scenario: String,
}

impl Scenario {
    fn urls(&self, farm: &HttpFarm) -> Vec<String> {
        (0..self.urls_per_host)
            .flat_map(|page| (0..self.hosts).map(move |host| (host, page)))
            .map(|(host, page)| farm.url(host, &format!("/page{page}")))
            .collect()
    }

    fn url_count(&self) -> u64 {
        u64::from(self.hosts) * u64::from(self.urls_per_host)
    }

    fn fetcher_config(&self) -> FetcherConfig {
        FetcherConfig {
            global_connections: usize::try_from(self.global_connections).unwrap_or(usize::MAX),
            per_host_connections: usize::try_from(self.per_host).unwrap_or(usize::MAX),
            request_timeout: Duration::from_millis(self.timeout_ms),
            prewarm: true,
            ..FetcherConfig::default()
        }
    }

    /// Starts this scenario's DNS server on `dns_addr` and its HTTP farm.
    async fn start_testbed(&self, dns_addr: SocketAddr) -> Result<(DnsServer, HttpFarm)> {
        let dns = DnsServer::start(DnsServerConfig {
            addr: dns_addr,
            zone: ZoneConfig {
                hosts: self.hosts,
                // Every address the zone gives out is reachable: AAAA is the
                // host's own IPv4 address, mapped.
                aaaa: AaaaAnswer::MappedV4,
                ..ZoneConfig::default()
            },
            delay: Delay::uniform(Duration::from_millis(self.dns_delay_ms)),
            ..DnsServerConfig::default()
        })
        .await
        .with_context(|| format!("cannot start the testbed DNS server on {dns_addr}"))?;
        let farm = HttpFarm::start(HttpFarmConfig {
            hosts: self.hosts,
            port: 0,
            response_delay: Duration::from_millis(self.http_delay_ms),
            body_size: self.body_size,
            ..HttpFarmConfig::default()
        })
        .await
        .with_context(|| format!("cannot start the HTTP farm ({} hosts)", self.hosts))?;
        Ok((dns, farm))
    }
}

/// What one crawl measured; the namespaced child prints it as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrawlReport {
    /// Wall time of the crawl, pre-warm included, in ms.
    pub wall_ms: f64,
    /// Time spent pre-warming before the first request, in ms.
    pub prewarm_ms: f64,
    /// Connections opened.
    pub connections_opened: u64,
    /// Requests over kept-alive connections.
    pub connections_reused: u64,
    /// Every record's outcome and timings.
    pub timings: Vec<Timing>,
}

/// A resolver that times the fetcher's pre-warm calls.
struct TimedPrewarm {
    inner: Arc<dyn HostResolver>,
    prewarm: Mutex<Duration>,
}

impl HostResolver for TimedPrewarm {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Arc<[IpAddr]>, DnsFailure>> {
        self.inner.resolve(host)
    }

    fn prewarm<'a>(&'a self, hosts: Vec<String>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let started = Instant::now();
            self.inner.prewarm(hosts).await;
            *self.prewarm.lock().unwrap_or_else(PoisonError::into_inner) += started.elapsed();
        })
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

/// Crawls the scenario's URLs on `farm` with `resolver`.
async fn crawl(
    scenario: &Scenario,
    farm: &HttpFarm,
    resolver: Arc<dyn HostResolver>,
) -> Result<CrawlReport> {
    let timed = Arc::new(TimedPrewarm {
        inner: resolver,
        prewarm: Mutex::new(Duration::ZERO),
    });
    let fetcher = Arc::new(
        Fetcher::new(scenario.fetcher_config(), timed.clone())
            .context("cannot set up the fetcher")?,
    );
    let urls = scenario.urls(farm);
    let batch = urls.len();
    let mut source = IterSource(urls.into_iter());
    let mut sink = VecSink::default();
    let started = Instant::now();
    fetcher
        .crawl(&mut source, &mut sink, batch)
        .await
        .context("the crawl stopped")?;
    let wall = started.elapsed();
    let prewarm = *timed.prewarm.lock().unwrap_or_else(PoisonError::into_inner);
    let pool = fetcher.pool_stats();
    Ok(CrawlReport {
        wall_ms: wall.as_secs_f64() * 1e3,
        prewarm_ms: prewarm.as_secs_f64() * 1e3,
        connections_opened: pool.opened,
        connections_reused: pool.reused,
        timings: sink.0.iter().map(Timing::from).collect(),
    })
}

/// Runs `crawldns demo-system-path`: inside the demo's namespace, start a
/// testbed with its DNS on 127.0.0.1:53, crawl through glibc, print the
/// report as one JSON line.
pub async fn run_system_path(args: SystemPathArgs) -> Result<Outcome> {
    netns::check_isolated()?;
    let scenario: Scenario =
        serde_json::from_str(&args.scenario).context("cannot read --scenario")?;
    crate::testbed_cmd::raise_fd_limit();
    let (dns, farm) = scenario.start_testbed(netns::SERVER).await?;

    // glibc must reach the testbed: one lookup before the crawl.
    let probe = tokio::task::spawn_blocking(|| crawldns_fetch::gai::getaddrinfo("h0.crawl.test"))
        .await
        .context("the getaddrinfo probe did not finish")?;
    let expected = host_v4(0).map(IpAddr::V4);
    match probe {
        Ok(addrs) if expected.is_some_and(|ip| addrs.contains(&ip)) => {}
        Ok(addrs) => {
            bail!("getaddrinfo(h0.crawl.test) gave {addrs:?}, not the testbed's {expected:?}")
        }
        Err(e) => bail!(
            "getaddrinfo(h0.crawl.test) failed inside the namespace: {}",
            e.message
        ),
    }

    let threads = usize::try_from(scenario.gai_threads).unwrap_or(32);
    let pool = crawldns_fetch::gai::GaiPool::new(threads)
        .context("cannot start the getaddrinfo threads")?;
    let report = crawl(&scenario, &farm, Arc::new(pool)).await?;
    let json = serde_json::to_string(&report).context("cannot encode the report")?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{json}")
            .and_then(|()| out.flush())
            .context("cannot write to stdout")?;
    }
    farm.shutdown().await;
    dns.shutdown();
    Ok(Outcome::Success)
}

/// Runs the system path in a fresh namespace and reads its report.
async fn system_path(scenario: &Scenario) -> Result<CrawlReport> {
    let namespace = netns::Namespace::create().context("cannot set up the network namespace")?;
    tracing::info!(namespace = namespace.name(), "system path");
    let exe = std::env::current_exe().context("cannot find the crawldns binary")?;
    let json = serde_json::to_string(scenario).context("cannot encode the scenario")?;
    let mut command = namespace.command(
        &exe,
        &["demo-system-path".to_owned(), "--scenario".to_owned(), json],
    );
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .context("cannot start `ip netns exec` for the system path")?;
    let output = tokio::time::timeout(CHILD_LIMIT, child.wait_with_output())
        .await
        .map_err(|_| anyhow::anyhow!("the system-path crawl took longer than {CHILD_LIMIT:?}"))?
        .context("cannot wait for the system-path crawl")?;
    drop(namespace);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let why = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        bail!(
            "the crawl in the namespace failed ({}): {why}",
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the crawl in the namespace printed no report")?;
    serde_json::from_str(line).context("cannot read the report of the crawl in the namespace")
}

/// Runs the crawldns path in this process.
async fn crawldns_path(scenario: &Scenario) -> Result<CrawlReport> {
    let (dns, farm) = scenario
        .start_testbed(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await?;
    // The same timeout and attempts as glibc gets from the namespace's
    // resolv.conf.
    let resolver = Resolver::new(
        ResolverConfig::builder()
            .nameserver(dns.addr())
            .timeout(Duration::from_secs(2))
            .attempts(2)
            .build(),
    )
    .context("cannot start the resolver")?;
    let report = crawl(scenario, &farm, Arc::new(resolver)).await;
    farm.shutdown().await;
    dns.shutdown();
    report
}

/// One column of the table.
struct Column {
    title: &'static str,
    subtitle: String,
    tally: FetchTally,
    report: CrawlReport,
}

impl Column {
    fn new(title: &'static str, subtitle: String, report: CrawlReport) -> Self {
        let mut tally = FetchTally::default();
        for timing in &report.timings {
            tally.add(timing);
        }
        Self {
            title,
            subtitle,
            tally,
            report,
        }
    }
}

/// Runs `crawldns demo`. Ctrl-C (or SIGTERM) stops it and removes the
/// namespace.
pub async fn run(args: DemoArgs) -> Result<Outcome> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    tokio::select! {
        result = demo(args) => result,
        _ = sigint.recv() => bail!("interrupted (SIGINT); the namespace, if any, was removed"),
        _ = sigterm.recv() => bail!("stopped (SIGTERM); the namespace, if any, was removed"),
    }
}

async fn demo(args: DemoArgs) -> Result<Outcome> {
    let s = &args.scenario;
    crate::testbed_cmd::raise_fd_limit();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "crawldns demo: {} hosts x {} URLs = {} URLs; DNS answers delayed {} ms, HTTP responses {} ms",
        s.hosts,
        s.urls_per_host,
        s.url_count(),
        s.dns_delay_ms,
        s.http_delay_ms
    );
    let _ = writeln!(
        out,
        "both crawls: same testbed settings, same URLs, same limits ({} connections, {} per host)",
        s.global_connections, s.per_host
    );
    say(out.trim_end());

    let both = !args.no_system_path && netns::unavailable().is_none();
    let system = if args.no_system_path {
        Err("skipped (--no-system-path)".to_owned())
    } else if let Some(why) = netns::unavailable() {
        Err(format!("skipped: {why}"))
    } else {
        say(&format!(
            "\n[1/2] system path: glibc getaddrinfo on {} threads, in a network namespace ...",
            s.gai_threads
        ));
        match system_path(s).await {
            Ok(report) => {
                say(&format!("      done in {:.2} s", report.wall_ms / 1e3));
                Ok(report)
            }
            Err(e) => Err(format!("failed: {}", crate::render_error(&e))),
        }
    };
    if let Err(why) = &system {
        say(&format!("\nsystem path: {why}\nshowing crawldns alone."));
    }
    say(&format!(
        "\n{}crawldns: pre-warm, then fetch, in this process ...",
        if both { "[2/2] " } else { "" }
    ));
    let crawldns = crawldns_path(s).await?;
    say(&format!("      done in {:.2} s", crawldns.wall_ms / 1e3));

    let system = system.ok().map(|report| {
        Column::new(
            "system path",
            format!("getaddrinfo x{}", s.gai_threads),
            report,
        )
    });
    let crawldns = Column::new("crawldns", "pre-warm + cache".to_owned(), crawldns);
    say(&format!("\n{}", table(system.as_ref(), &crawldns)));
    say(&notes(s, system.as_ref(), &crawldns));

    let mut series = Vec::new();
    if let Some(system) = &system {
        series.push(plot::Series {
            label: format!("system path (getaddrinfo x{})", s.gai_threads),
            latency: &system.tally.ttfb,
            color: plot::SYSTEM_COLOR,
        });
    }
    series.push(plot::Series {
        label: "crawldns".to_owned(),
        latency: &crawldns.tally.ttfb,
        color: plot::CRAWLDNS_COLOR,
    });
    let title = format!(
        "Time to first byte: {} URLs on {} hosts, DNS RTT {} ms",
        s.url_count(),
        s.hosts,
        s.dns_delay_ms
    );
    let svg = plot::ttfb_cdf_svg(&title, &series)?;
    plot::write_file(&args.plot, &svg)?;
    say(&format!(
        "plot: {} (CDF of TTFB, {})",
        args.plot.display(),
        if system.is_some() {
            "both crawls"
        } else {
            "crawldns only"
        }
    ));
    Ok(Outcome::Success)
}

/// Prints to stdout at once (the demo talks as it goes).
fn say(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    // The demo's output is for a person; a closed stdout only loses that.
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// `system / crawldns`, as `12.3x`.
fn ratio(system: Option<Duration>, crawldns: Option<Duration>) -> String {
    match (system, crawldns) {
        (Some(a), Some(b)) if !b.is_zero() => {
            let r = a.as_secs_f64() / b.as_secs_f64();
            if r >= 1000.0 {
                // A cache hit against a network round trip: the exact
                // factor says nothing more.
                ">1000x".to_owned()
            } else if r >= 100.0 {
                format!("{r:.0}x")
            } else {
                format!("{r:.1}x")
            }
        }
        _ => "-".to_owned(),
    }
}

/// The side-by-side table.
fn table(system: Option<&Column>, crawldns: &Column) -> String {
    let mut text = String::new();
    let mut columns: Vec<&Column> = Vec::new();
    columns.extend(system);
    columns.push(crawldns);
    let row = |text: &mut String, name: &str, cells: &[String], ratio: Option<String>| {
        let _ = write!(text, "{name:<14}");
        for cell in cells {
            let _ = write!(text, " {cell:>18}");
        }
        if let Some(ratio) = ratio {
            let _ = write!(text, " {ratio:>8}");
        }
        text.push('\n');
    };
    let with_ratio = system.is_some();
    let ratio_of = |f: &dyn Fn(&Column) -> Option<Duration>| {
        with_ratio.then(|| ratio(system.and_then(f), f(crawldns)))
    };
    row(
        &mut text,
        "",
        &columns
            .iter()
            .map(|c| c.title.to_owned())
            .collect::<Vec<_>>(),
        with_ratio.then(|| "ratio".to_owned()),
    );
    row(
        &mut text,
        "",
        &columns
            .iter()
            .map(|c| c.subtitle.clone())
            .collect::<Vec<_>>(),
        with_ratio.then(String::new),
    );
    type Metric = (&'static str, fn(&Column) -> Option<Duration>);
    let metrics: [Metric; 5] = [
        ("TTFB p50", |c| c.tally.ttfb.quantile(0.5)),
        ("TTFB p99", |c| c.tally.ttfb.quantile(0.99)),
        ("DNS p50", |c| c.tally.dns.quantile(0.5)),
        ("DNS p99", |c| c.tally.dns.quantile(0.99)),
        ("wall time", |c| {
            Some(Duration::from_secs_f64(c.report.wall_ms.max(0.0) / 1e3))
        }),
    ];
    for (name, metric) in metrics {
        row(
            &mut text,
            name,
            &columns
                .iter()
                .map(|c| fmt_opt_ms(metric(c)))
                .collect::<Vec<_>>(),
            ratio_of(&metric),
        );
    }
    row(
        &mut text,
        "errors",
        &columns
            .iter()
            .map(|c| c.tally.failed().to_string())
            .collect::<Vec<_>>(),
        with_ratio.then(String::new),
    );
    row(
        &mut text,
        "ok",
        &columns
            .iter()
            .map(|c| format!("{}/{}", c.tally.ok(), c.tally.urls))
            .collect::<Vec<_>>(),
        with_ratio.then(String::new),
    );
    text
}

/// What the numbers mean, and anything odd about them.
fn notes(s: &Scenario, system: Option<&Column>, crawldns: &Column) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "TTFB runs from the moment a request holds a connection slot (waiting for the limits is \
         not in it) to the first byte of the response: DNS, connect and the server's {} ms are.",
        s.http_delay_ms
    );
    let _ = writeln!(
        text,
        "DNS is the resolution time of new connections ({} of them for crawldns{}).",
        crawldns.tally.dns.count(),
        system.map_or_else(String::new, |c| format!(
            ", {} for the system path",
            c.tally.dns.count()
        )),
    );
    let _ =
        writeln!(
        text,
        "crawldns pre-warmed {} hosts in {} before its first request; that time is in its wall \
         time, not in its TTFB.",
        s.hosts,
        fmt_ms(Duration::from_secs_f64(crawldns.report.prewarm_ms.max(0.0) / 1e3)),
    );
    for column in system.into_iter().chain([crawldns]) {
        if column.tally.failed() > 0 {
            let _ = writeln!(
                text,
                "errors ({}): {}",
                column.title,
                column.tally.errors_line()
            );
        }
    }
    text
}

/// Only for tests: a column from TTFB values.
#[cfg(test)]
fn column_for_test(title: &'static str, ttfb_ms: &[f64], wall_ms: f64) -> Column {
    let timings = ttfb_ms
        .iter()
        .map(|&ms| Timing {
            class: None,
            error: None,
            ttfb_ms: Some(ms),
            dns_ms: Some(ms / 2.0),
            total_ms: ms,
        })
        .collect();
    Column::new(
        title,
        "test".to_owned(),
        CrawlReport {
            wall_ms,
            prewarm_ms: 0.0,
            connections_opened: 0,
            connections_reused: 0,
            timings,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        let ms = Duration::from_millis;
        assert_eq!(ratio(Some(ms(400)), Some(ms(40))), "10.0x");
        assert_eq!(ratio(Some(ms(4000)), Some(ms(10))), "400x");
        assert_eq!(
            ratio(Some(ms(40)), Some(Duration::from_micros(1))),
            ">1000x"
        );
        assert_eq!(ratio(None, Some(ms(40))), "-");
        assert_eq!(ratio(Some(ms(40)), Some(Duration::ZERO)), "-");
    }

    #[test]
    fn the_table_has_both_columns_and_ratios() {
        let system = column_for_test("system path", &[400.0; 10], 3_000.0);
        let crawldns = column_for_test("crawldns", &[40.0; 10], 1_000.0);
        let text = table(Some(&system), &crawldns);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("system path") && lines[0].contains("crawldns"));
        let p50 = lines.iter().find(|l| l.starts_with("TTFB p50")).unwrap();
        assert!(
            p50.contains("400.") && p50.contains("40.0 ms") && p50.ends_with("10.0x"),
            "{p50}"
        );
        let wall = lines.iter().find(|l| l.starts_with("wall time")).unwrap();
        assert!(wall.ends_with("3.0x"), "{wall}");
        let ok = lines.iter().find(|l| l.starts_with("ok")).unwrap();
        assert!(ok.contains("10/10"), "{ok}");

        let alone = table(None, &crawldns);
        assert!(
            !alone.contains("system path") && !alone.contains("ratio"),
            "{alone}"
        );
    }

    #[test]
    fn urls_go_round_robin_over_hosts() {
        let scenario = Scenario {
            hosts: 3,
            urls_per_host: 2,
            dns_delay_ms: 0,
            http_delay_ms: 0,
            body_size: 1,
            global_connections: 1,
            per_host: 1,
            gai_threads: 1,
            timeout_ms: 1,
        };
        assert_eq!(scenario.url_count(), 6);
        let json = serde_json::to_string(&scenario).unwrap();
        let back: Scenario = serde_json::from_str(&json).unwrap();
        assert_eq!(back.hosts, 3);
    }
}
