//! One crawl of the scenario's URLs through a given resolver, and the
//! crawldns path (that crawl in this process).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crawldns::{Resolver, ResolverConfig};
use crawldns_fetch::host_resolver::BoxFuture;
use crawldns_fetch::{DnsFailure, Fetcher, HostResolver, IterSource, VecSink};
use crawldns_testbed::http_farm::HttpFarm;
use serde::{Deserialize, Serialize};

use super::scenario::Scenario;
use crate::fetch_tally::Timing;

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
pub(super) async fn crawl(
    scenario: &Scenario,
    farm: &HttpFarm,
    resolver: Arc<dyn HostResolver>,
    prewarm: bool,
) -> Result<CrawlReport> {
    let timed = Arc::new(TimedPrewarm {
        inner: resolver,
        prewarm: Mutex::new(Duration::ZERO),
    });
    let fetcher = Arc::new(
        Fetcher::new(scenario.fetcher_config(prewarm), timed.clone())
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

/// Runs the crawldns path in this process, pre-warming the hosts first
/// when `prewarm`.
pub(super) async fn crawldns_path(scenario: &Scenario, prewarm: bool) -> Result<CrawlReport> {
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
    let report = crawl(scenario, &farm, Arc::new(resolver), prewarm).await;
    farm.shutdown().await;
    dns.shutdown();
    report
}
