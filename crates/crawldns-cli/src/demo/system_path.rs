//! The system path: a child process (`crawldns demo-system-path`) in a
//! network namespace whose resolv.conf names the child's own testbed on
//! 127.0.0.1:53, crawling through glibc `getaddrinfo` on a thread pool.

use std::net::IpAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use crawldns_testbed::host_v4;

use super::crawl::{crawl, CrawlReport};
use super::scenario::Scenario;
use crate::netns;
use crate::Outcome;

/// How long the namespaced child may take, testbed start included.
const CHILD_LIMIT: Duration = Duration::from_secs(180);

/// Options of the hidden `crawldns demo-system-path`.
#[derive(Debug, Clone, Args)]
pub struct SystemPathArgs {
    /// The scenario, as JSON.
    #[arg(long, value_name = "JSON")]
    pub scenario: String,

    /// Keep each host's addresses this many seconds (0: no cache).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub dns_cache_secs: u64,
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
    let pool: Arc<dyn crawldns_fetch::HostResolver> = Arc::new(
        crawldns_fetch::gai::GaiPool::new(threads)
            .context("cannot start the getaddrinfo threads")?,
    );
    let resolver: Arc<dyn crawldns_fetch::HostResolver> = match args.dns_cache_secs {
        0 => pool,
        secs => Arc::new(crawldns_fetch::ttl_cache::TtlCached::new(
            pool,
            Duration::from_secs(secs),
        )),
    };
    let report = crawl(&scenario, &farm, resolver, true).await?;
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

/// Runs the system path in a fresh namespace and reads its report; with
/// `dns_cache_secs` above 0, behind a cache keeping answers that long.
pub(super) async fn system_path(scenario: &Scenario, dns_cache_secs: u64) -> Result<CrawlReport> {
    let namespace = netns::Namespace::create().context("cannot set up the network namespace")?;
    tracing::info!(namespace = namespace.name(), "system path");
    let exe = std::env::current_exe().context("cannot find the crawldns binary")?;
    let json = serde_json::to_string(scenario).context("cannot encode the scenario")?;
    let mut command = namespace.command(
        &exe,
        &[
            "demo-system-path".to_owned(),
            "--scenario".to_owned(),
            json,
            "--dns-cache-secs".to_owned(),
            dns_cache_secs.to_string(),
        ],
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
