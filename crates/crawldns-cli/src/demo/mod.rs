//! `crawldns demo`: the system resolver path and crawldns, side by side, on
//! a local testbed.
//!
//! The same crawl runs three times, each against its own copy of the testbed (an
//! authoritative DNS server whose answers are delayed like a real
//! resolver's round trip, and an HTTP farm of hundreds of hosts), with the
//! same URLs and the same fetcher limits:
//!
//! 1. the system path: glibc `getaddrinfo` on a pool of 32 threads, the
//!    default of the async stacks most crawlers use. glibc only asks the
//!    nameservers of `/etc/resolv.conf`, on port 53, so this crawl runs in a
//!    child process (`crawldns demo-system-path`) inside a network
//!    namespace whose resolv.conf names 127.0.0.1, where the child runs its
//!    own testbed (see [`crate::netns`] and [`system_path`]). That needs root; without it, the
//!    demo says so and shows crawldns alone.
//! 2. the same with each host's addresses kept 10 s and no single-flight,
//!    as aiohttp does by default (`ttl_dns_cache=10`): what caching alone
//!    buys (`--system-dns-cache 0` leaves it out).
//! 3. crawldns, in this process: pre-warm the hosts, then fetch.
//!
//! It prints a table (TTFB and DNS percentiles, wall time, errors, ratios)
//! and writes an SVG plot of the TTFB distributions.

//!
//! One file per part: [`scenario`] (the crawl and its options),
//! [`testbed`] (starting it), [`crawl`] (one crawl, and the crawldns path),
//! [`system_path`] (the namespaced child), [`report`] (the table and notes),
//! [`plot`] (the SVG).

mod crawl;
mod plot;
mod report;
mod scenario;
mod system_path;
mod testbed;

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::netns;
use crate::Outcome;
use crawl::crawldns_path;
use report::{notes, table, Column};
pub use scenario::Scenario;
pub use system_path::{run_system_path, SystemPathArgs};

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
        "every crawl: same testbed settings, same URLs, same limits ({} connections, {} per host)",
        s.global_connections, s.per_host
    );
    say(out.trim_end());

    let skipped = if args.no_system_path {
        Some("skipped (--no-system-path)".to_owned())
    } else {
        netns::unavailable().map(|why| format!("skipped: {why}"))
    };
    // The system path's runs: its getaddrinfo pool alone, then (unless 0)
    // behind a TTL cache.
    let mut runs: Vec<(&'static str, &'static str, String, u64)> = Vec::new();
    if skipped.is_none() {
        runs.push((
            "system path",
            "system",
            format!("getaddrinfo x{}", s.gai_threads),
            0,
        ));
        if s.system_dns_cache > 0 {
            runs.push((
                "system + cache",
                "cached",
                format!("x{} + {} s cache", s.gai_threads, s.system_dns_cache),
                s.system_dns_cache,
            ));
        }
    }
    let steps = runs.len() + 2;
    let mut baselines = Vec::new();
    for (step, (title, short, subtitle, cache_secs)) in runs.into_iter().enumerate() {
        say(&format!(
            "\n[{}/{steps}] {title}: glibc getaddrinfo on {} threads{}, in a network namespace ...",
            step + 1,
            s.gai_threads,
            if cache_secs > 0 {
                format!(", answers kept {cache_secs} s")
            } else {
                String::new()
            }
        ));
        match system_path::system_path(s, cache_secs).await {
            Ok(report) => {
                say(&format!("      done in {:.2} s", report.wall_ms / 1e3));
                baselines.push(Column::new(title, short, subtitle, report));
            }
            Err(e) => say(&format!(
                "      {title} failed: {}",
                crate::render_error(&e)
            )),
        }
    }
    if let Some(why) = &skipped {
        say(&format!("\nsystem path: {why}\nshowing crawldns alone."));
    }
    // crawldns twice: without pre-warm (what the cache and single-flight
    // do alone, each host's first connection waiting for its lookup), then
    // with it.
    let mut crawls = Vec::new();
    for (step, prewarm) in [(steps - 1, false), (steps, true)] {
        say(&format!(
            "\n[{step}/{steps}] crawldns: {}, in this process ...",
            if prewarm {
                "pre-warm, then fetch"
            } else {
                "fetch, no pre-warm"
            }
        ));
        let report = crawldns_path(s, prewarm).await?;
        say(&format!("      done in {:.2} s", report.wall_ms / 1e3));
        crawls.push(if prewarm {
            Column::new(
                "crawldns",
                "crawldns",
                "pre-warm + cache".to_owned(),
                report,
            )
        } else {
            Column::new("crawldns", "no pre-warm", "no pre-warm".to_owned(), report)
        });
    }
    let baselines: Vec<&Column> = baselines.iter().collect();
    let crawls: Vec<&Column> = crawls.iter().collect();
    say(&format!("\n{}", table(&baselines, &crawls)));
    say(&notes(s, &baselines, &crawls));

    plot::write(&args.plot, s, &baselines, &crawls)?;
    say(&format!(
        "plot: {} (CDF of TTFB, {})",
        args.plot.display(),
        match baselines.len() {
            0 => "crawldns only".to_owned(),
            n => format!("{} crawls", n + crawls.len()),
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
