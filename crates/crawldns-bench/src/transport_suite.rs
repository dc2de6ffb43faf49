//! Stream transports (issue 17): crawldns over UDP, TCP, DNS over TLS and
//! DNS over HTTPS, and hickory-resolver over TCP, DoT and DoH, each running
//! W1 (steady) and W2 (burst) against the testbed's DNS server in a process
//! of its own (`crawldns testbed`, so its CPU time is never the client's).
//!
//! Every run gets a fresh server and a fresh resolver: the server's
//! counters, read when it stops, are that run's alone (queries and
//! connections per transport, warm-up included). Rounds run every row once,
//! back to back, like the main suite; figures are medians over rounds.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::measure::{self, on_thread, process_cpu, Tally, ThreadCpuClock};
use crate::names::Family;
use crate::peers::crawldns::CrawldnsPeer;
use crate::peers::hickory::HickoryPeer;
use crate::peers::timed::Timed;
use crate::peers::upstream::{Protocol, Upstream};
use crate::peers::{Peer, PeerSetup};
use crate::servers::testbed::CountersHandle;
use crate::servers::testbed_process::{Endpoints, ServerSummary, TestbedProcess};
use crate::suite::{Plan, W1_RAMP_PER_MS};
use crate::workloads::w1::ServerCpu;
use crate::workloads::{self, WorkloadKind};

/// The name the test certificate is checked against, by both resolvers.
pub const TLS_NAME: &str = "localhost";

/// Which resolver a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Client {
    /// crawldns, the resolver of this workspace.
    Crawldns,
    /// hickory-resolver.
    Hickory,
}

/// One row: a resolver over one transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The resolver.
    pub client: Client,
    /// The transport to the server.
    #[serde(serialize_with = "protocol_name")]
    pub protocol: Protocol,
}

fn protocol_name<S: serde::Serializer>(protocol: &Protocol, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(transport_name(*protocol))
}

/// How a transport is called in the tables.
pub fn transport_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Udp => "UDP",
        Protocol::Tcp => "TCP",
        Protocol::Tls => "DoT",
        Protocol::Https => "DoH",
    }
}

impl Row {
    /// The rows of issue 17, in table order.
    pub const ALL: [Row; 7] = [
        Row::new(Client::Crawldns, Protocol::Udp),
        Row::new(Client::Crawldns, Protocol::Tcp),
        Row::new(Client::Crawldns, Protocol::Tls),
        Row::new(Client::Crawldns, Protocol::Https),
        Row::new(Client::Hickory, Protocol::Tcp),
        Row::new(Client::Hickory, Protocol::Tls),
        Row::new(Client::Hickory, Protocol::Https),
    ];

    /// A row.
    pub const fn new(client: Client, protocol: Protocol) -> Self {
        Self { client, protocol }
    }

    /// The row named `text`, as in tables (`crawldns DoT`), in any case,
    /// with `-` or `_` for the space.
    pub fn parse(text: &str) -> Result<Row, String> {
        let wanted = text.to_ascii_lowercase().replace(['-', '_'], " ");
        Row::ALL
            .into_iter()
            .find(|row| row.label().to_ascii_lowercase() == wanted)
            .ok_or_else(|| {
                let names: Vec<String> = Row::ALL
                    .iter()
                    .map(|r| r.label().replace(' ', "-"))
                    .collect();
                format!("no row {text:?}; the rows are {}", names.join(", "))
            })
    }

    /// The row's name in tables, e.g. `crawldns DoT`.
    pub fn label(self) -> String {
        let client = match self.client {
            Client::Crawldns => "crawldns",
            Client::Hickory => "hickory",
        };
        format!("{client} {}", transport_name(self.protocol))
    }
}

/// What the benchmark runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The rows run (all of [`Row::ALL`] for the tables; fewer to profile
    /// one).
    pub rows: Vec<Row>,
    /// Rounds (every row once per round).
    pub rounds: usize,
    /// W1: lookups in the measured window.
    pub w1_lookups: u32,
    /// W1: lookups in flight.
    pub w1_in_flight: usize,
    /// W1: lookups finished before the window opens.
    pub w1_warmup: u32,
    /// W2: names in the burst.
    pub burst_names: u32,
    /// W2: lookups before the burst (they open the connections).
    pub burst_warmup: u32,
    /// W2: the server's delay, milliseconds.
    pub burst_delay_ms: u64,
    /// Pin the client to CPU 0 and the server to CPU 1.
    pub pin: bool,
    /// The `crawldns` binary that runs the testbed.
    pub testbed_bin: PathBuf,
    /// Time limit of one run, seconds.
    pub limit_s: u64,
}

impl Options {
    /// W1 and W2 as the main suite's full plan defines them, with a W1
    /// window of `w1_lookups`.
    pub fn new(w1_lookups: u32, rounds: usize, testbed_bin: PathBuf) -> Self {
        let full = Plan::full();
        Self {
            rows: Row::ALL.to_vec(),
            rounds,
            w1_lookups,
            w1_in_flight: full.w1_in_flight,
            w1_warmup: full.warmup,
            burst_names: full.burst_names,
            burst_warmup: 8,
            burst_delay_ms: full.burst_delay_ms,
            pin: full.pin,
            testbed_bin,
            limit_s: 60,
        }
    }

    fn w1_params(&self) -> workloads::w1::Params {
        workloads::w1::Params {
            first: 0,
            count: self.w1_lookups,
            in_flight: self.w1_in_flight,
            warmup: self.w1_warmup,
            ramp_per_ms: W1_RAMP_PER_MS,
        }
    }

    /// Hosts the testbed must serve for `workload`.
    fn hosts(&self, workload: WorkloadKind) -> u32 {
        match workload {
            WorkloadKind::W1 => self.w1_params().names_used(),
            _ => self.burst_names + self.burst_warmup,
        }
    }
}

/// `crawldns` next to this executable (both are in the same target
/// directory after `cargo build --release -p crawldns-cli -p crawldns-bench`).
pub fn default_testbed_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("crawldns")))
        .unwrap_or_else(|| PathBuf::from("crawldns"))
}

/// One run of one row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TransportSample {
    /// Verified answers of the measured lookups (W1: every lookup of the
    /// run, warm-up and tail included; W2: the burst).
    pub tally: Tally,
    /// Lookups measured: the W1 window, or the burst.
    pub lookups: u64,
    /// Client CPU (user + system of this process) per measured lookup, µs.
    pub cpu_us: f64,
    /// Server CPU per measured lookup, µs (W1 only).
    pub server_cpu_us: Option<f64>,
    /// Median latency, µs (W1: over every lookup of the run).
    pub p50_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
    /// Lookups per second of wall time (W1: the window; W2: the burst).
    pub lookups_per_s: f64,
    /// The server's counters for the whole run (warm-up included).
    pub server: ServerSummary,
}

impl TransportSample {
    /// Connections the server accepted on the row's transport (UDP: none).
    pub fn connections(&self, protocol: Protocol) -> u64 {
        match protocol {
            Protocol::Udp => 0,
            Protocol::Tcp => self.server.tcp_connections,
            Protocol::Tls => self.server.dot_connections,
            Protocol::Https => self.server.doh_connections,
        }
    }

    /// Queries the server received on other transports than `protocol`
    /// (0 when every query took the row's transport).
    pub fn off_transport_queries(&self, protocol: Protocol) -> u64 {
        let s = &self.server;
        let all = s.udp + s.tcp + s.dot + s.doh;
        let on = match protocol {
            Protocol::Udp => s.udp,
            Protocol::Tcp => s.tcp,
            Protocol::Tls => s.dot,
            Protocol::Https => s.doh,
        };
        all - on
    }
}

/// How one row did in one workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowResult {
    /// The row.
    pub row: Row,
    /// One sample per completed round.
    pub samples: Vec<TransportSample>,
    /// Why a run failed, if one did (its later rounds are then skipped).
    pub failed: Option<String>,
    /// The first lookup error or wrong answer seen, if any.
    pub first_error: Option<String>,
}

/// Everything one workload measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadResult {
    /// W1 or W2.
    pub workload: WorkloadKind,
    /// One result per row run, in [`Row::ALL`]'s order.
    pub rows: Vec<RowResult>,
}

/// Everything the benchmark measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransportResults {
    /// W1, then W2.
    pub workloads: Vec<WorkloadResult>,
    /// 1-minute load average at the start and at the end.
    pub load: (Option<f64>, Option<f64>),
    /// Wall time of the whole run, seconds.
    pub elapsed_s: f64,
    /// Whether client and server were pinned to CPUs 0 and 1.
    pub pinned: bool,
}

/// Runs W1 and W2 for every row.
pub fn run(options: &Options) -> Result<TransportResults> {
    if !options.testbed_bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p crawldns-cli`, or pass --testbed-bin",
            options.testbed_bin.display()
        );
    }
    let _ = crawldns_sys::rlimit::raise_fd_limit();
    let started = Instant::now();
    let load_start = measure::load_average();
    let pin = options.pin && measure::cpu_count() >= 2;
    let (client_cpu, server_cpu) = if pin {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    let mut done = Vec::new();
    for workload in [WorkloadKind::W1, WorkloadKind::W2] {
        eprintln!("{}…", workload.title());
        let options = options.clone();
        let rows = on_thread("bench-client", client_cpu, move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building the client runtime")?;
            runtime.block_on(rounds(&options, workload, server_cpu))
        })?;
        done.push(WorkloadResult { workload, rows });
    }
    Ok(TransportResults {
        workloads: done,
        load: (load_start, measure::load_average()),
        elapsed_s: started.elapsed().as_secs_f64(),
        pinned: pin,
    })
}

async fn rounds(
    options: &Options,
    workload: WorkloadKind,
    server_cpu: Option<usize>,
) -> Result<Vec<RowResult>> {
    let mut results: Vec<RowResult> = options
        .rows
        .iter()
        .map(|&row| RowResult {
            row,
            samples: Vec::new(),
            failed: None,
            first_error: None,
        })
        .collect();
    let limit = Duration::from_secs(options.limit_s.max(1));
    for round in 0..options.rounds {
        for result in results.iter_mut() {
            if result.failed.is_some() {
                continue;
            }
            let started = Instant::now();
            let testbed = TestbedProcess::start(
                &options.testbed_bin,
                options.hosts(workload),
                if workload == WorkloadKind::W1 {
                    0
                } else {
                    options.burst_delay_ms
                },
                server_cpu,
            )?;
            let server = ServerCpu {
                clock: ThreadCpuClock::process(testbed.pid())?,
                in_process: false,
            };
            let run = tokio::time::timeout(
                limit,
                run_once(options, workload, result.row, testbed.endpoints(), server),
            )
            .await;
            // Let the dropped resolver close its connections before the
            // server counts them.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let summary = testbed.stop();
            match (run, summary) {
                (Ok(Ok((mut sample, first_error))), Ok(summary)) => {
                    sample.server = summary;
                    eprintln!(
                        "  {:?} {} round {}: {} ok, {} wrong, {} failed, {:.1} µs CPU/lookup, {} connections ({:.1} s)",
                        workload,
                        result.row.label(),
                        round + 1,
                        sample.tally.ok,
                        sample.tally.wrong,
                        sample.tally.errors,
                        sample.cpu_us,
                        sample.connections(result.row.protocol),
                        started.elapsed().as_secs_f64()
                    );
                    result.samples.push(sample);
                    if result.first_error.is_none() {
                        result.first_error = first_error;
                    }
                }
                (Ok(Err(e)), _) => result.failed = Some(format!("{e:#}")),
                (Err(_), _) => {
                    result.failed = Some(format!("run exceeded the {limit:?} time limit"))
                }
                (_, Err(e)) => {
                    result.failed = Some(format!("reading the server's counters: {e:#}"))
                }
            }
            if let Some(why) = &result.failed {
                eprintln!("  {:?} {} failed: {why}", workload, result.row.label());
            }
        }
    }
    Ok(results)
}

/// The nameserver of `row`'s transport on the testbed at `endpoints`.
fn upstream(protocol: Protocol, endpoints: &Endpoints) -> Upstream {
    let addr = match protocol {
        Protocol::Udp | Protocol::Tcp => endpoints.dns,
        Protocol::Tls => endpoints.dot,
        Protocol::Https => endpoints.doh,
    };
    Upstream {
        protocol,
        addr,
        tls_name: TLS_NAME.to_string(),
        doh_path: endpoints.doh_path.clone(),
        ca_file: endpoints.ca.clone(),
    }
}

async fn run_once(
    options: &Options,
    workload: WorkloadKind,
    row: Row,
    endpoints: &Endpoints,
    server_cpu: ServerCpu,
) -> Result<(TransportSample, Option<String>)> {
    let upstream = upstream(row.protocol, endpoints);
    // The main suite's per-attempt timeout and attempts.
    let setup = PeerSetup::new(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        Duration::from_millis(2_000),
        2,
    );
    match row.client {
        Client::Crawldns => {
            let peer = CrawldnsPeer::over(setup, &upstream)?;
            measure_peer(peer, options, workload, server_cpu).await
        }
        Client::Hickory => {
            let peer = HickoryPeer::over(setup, &upstream)?;
            measure_peer(peer, options, workload, server_cpu).await
        }
    }
}

async fn measure_peer<P: Peer>(
    peer: P,
    options: &Options,
    workload: WorkloadKind,
    server_cpu: ServerCpu,
) -> Result<(TransportSample, Option<String>)> {
    match workload {
        WorkloadKind::W1 => w1(peer, options, server_cpu).await,
        WorkloadKind::W2 => burst(peer, options).await,
        other => bail!("{other:?} is not part of the stream-transport benchmark"),
    }
}

async fn w1<P: Peer>(
    peer: P,
    options: &Options,
    server_cpu: ServerCpu,
) -> Result<(TransportSample, Option<String>)> {
    let peer = Arc::new(Timed::new(peer)?);
    let (sample, first_error) =
        workloads::w1::run(peer.clone(), &options.w1_params(), Some(server_cpu)).await?;
    let latencies = peer.take()?;
    let per_lookup = |s: f64| s * 1e6 / (sample.window_lookups.max(1) as f64);
    Ok((
        TransportSample {
            tally: sample.tally,
            lookups: sample.window_lookups,
            cpu_us: sample.cpu_us_per_lookup(),
            server_cpu_us: sample.server_cpu_s.map(per_lookup),
            p50_us: latencies.quantile_us(0.50),
            p99_us: latencies.quantile_us(0.99),
            lookups_per_s: sample.lookups_per_s(),
            server: ServerSummary::default(),
        },
        first_error,
    ))
}

async fn burst<P: Peer>(peer: P, options: &Options) -> Result<(TransportSample, Option<String>)> {
    let peer = Arc::new(peer);
    // Warm-up names follow the burst's: the burst is h0 … h<names-1>.
    let warm = workloads::drive(
        peer.clone(),
        options.burst_names,
        options.burst_warmup,
        options.burst_warmup as usize,
        Family::V4,
    )
    .await;
    if options.burst_warmup > 0 && warm.tally.ok == 0 {
        bail!(
            "warm-up failed: no correct answer ({})",
            warm.first_error.unwrap_or_default()
        );
    }
    let params = workloads::burst::Params {
        first: 0,
        count: options.burst_names,
        family: Family::V4,
        warmup_first: options.burst_names,
        warmup: 0,
    };
    let cpu_before = process_cpu()?;
    let (sample, first_error) =
        workloads::burst::run(peer, &params, &CountersHandle::none()).await?;
    let cpu = process_cpu()?.saturating_sub(cpu_before);
    let lookups = u64::from(options.burst_names).max(1);
    Ok((
        TransportSample {
            tally: sample.tally,
            lookups,
            cpu_us: cpu.as_secs_f64() * 1e6 / lookups as f64,
            server_cpu_us: None,
            p50_us: sample.p50_us,
            p99_us: sample.p99_us,
            lookups_per_s: lookups as f64 / (sample.wall_us.max(1) as f64 / 1e6),
            server: ServerSummary::default(),
        },
        first_error,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_named_as_in_tables() {
        for row in Row::ALL {
            assert_eq!(Row::parse(&row.label()), Ok(row));
            assert_eq!(Row::parse(&row.label().replace(' ', "-")), Ok(row));
        }
        assert_eq!(
            Row::parse("Crawldns_doh"),
            Ok(Row::new(Client::Crawldns, Protocol::Https))
        );
        assert!(Row::parse("hickory UDP").is_err());
    }
}
