//! Orchestration: a [`Job`] is one workload run by some peers against one
//! server, repeated in rounds (every peer once per round, back to back); a
//! [`Plan`] is the list of jobs of a full or smoke run.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::measure::{self, on_thread, ThreadCpuClock};
use crate::netns::{self, Namespace};
use crate::peers::{PeerKind, PeerSetup};
use crate::servers::dnsperf::{self, DnsperfRun};
use crate::servers::free_port;
use crate::servers::knot::{self, Knot, ZONE_HOSTS};
use crate::servers::testbed::{CountersHandle, TestbedThread};
use crate::sysctl::{self, Raised};
use crate::workloads::w1::ServerCpu;
use crate::workloads::{self, Sample, WorkloadKind};
use crawldns_sys::process::open_fds;
use crawldns_sys::rlimit::{open_file_limit, raise_fd_limit};

/// `net.core.rmem_default` while a workload runs against Knot, so that
/// knotd's socket can absorb W1's bursts (the testbed sets its own).
pub const KNOT_RECV_BUFFER: u64 = 8 << 20;

/// dnsperf's outstanding-query settings; the ceiling is the best of them
/// (a burst of 500 at once can overflow Knot's socket buffer, and each
/// lost query then holds a slot for dnsperf's 5 s timeout).
pub const DNSPERF_OUTSTANDING: [usize; 3] = [100, 200, 500];

/// W1 starts its lookup tasks 25 per millisecond (500 in 20 ms).
pub const W1_RAMP_PER_MS: usize = 25;

/// Host index where warm-up names start (never measured).
const WARMUP_FIRST: u32 = 99_000;

/// Which server a job queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerKind {
    /// Knot DNS with the generated zone.
    Knot,
    /// The testbed's DNS server, with a delay.
    Testbed,
}

/// One workload, run by some peers against one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// What is measured.
    pub workload: WorkloadKind,
    /// Who is measured, in this order each round.
    pub peers: Vec<PeerKind>,
    /// Rounds.
    pub reps: usize,
    /// Names per run (W1, W2, W3), or lookups in flight (resources).
    pub count: u32,
    /// Lookups outstanding at all times (W1).
    pub in_flight: usize,
    /// Warm-up lookups before each measured run.
    pub warmup: u32,
    /// The testbed server's delay, milliseconds.
    pub delay_ms: u64,
    /// The server.
    pub server: ServerKind,
    /// The server's port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Pin the client to CPU 0 and the server to CPU 1 (when there are 2+).
    pub pin: bool,
    /// Seconds of each dnsperf run against the server (0: none); one run
    /// per round and outstanding setting.
    pub dnsperf_secs: u64,
    /// Time limit of one peer's run, seconds.
    pub limit_s: u64,
    /// Per-attempt timeout of every peer, milliseconds.
    pub timeout_ms: u64,
    /// Attempts of every peer.
    pub attempts: usize,
}

/// How one peer did in a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerResult {
    /// The peer.
    pub peer: PeerKind,
    /// One sample per completed run.
    pub samples: Vec<Sample>,
    /// Why the peer did not run, if it did not.
    pub skipped: Option<String>,
    /// Why a run failed, if one did (later rounds are then skipped).
    pub failed: Option<String>,
    /// The first lookup error or wrong answer seen, if any.
    pub first_error: Option<String>,
}

impl PeerResult {
    fn skipped(peer: PeerKind, why: impl Into<String>) -> Self {
        Self {
            peer,
            samples: Vec::new(),
            skipped: Some(why.into()),
            failed: None,
            first_error: None,
        }
    }
}

/// What a job measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The job.
    pub job: Job,
    /// The server, as described in the report.
    pub server: String,
    /// dnsperf runs against the server, one per round.
    pub dnsperf: Vec<DnsperfRun>,
    /// Per peer, in the job's order.
    pub peers: Vec<PeerResult>,
    /// Remarks for the report (fallbacks, pinning).
    pub notes: Vec<String>,
}

impl Job {
    fn setup(&self, server: SocketAddr) -> PeerSetup {
        PeerSetup::new(
            server,
            Duration::from_millis(self.timeout_ms),
            self.attempts,
        )
    }

    /// Distinct names one run uses.
    fn names_per_run(&self) -> u32 {
        match self.workload {
            WorkloadKind::W1 => workloads::w1::Params {
                first: 0,
                count: self.count,
                in_flight: self.in_flight,
                warmup: self.warmup,
                ramp_per_ms: W1_RAMP_PER_MS,
            }
            .names_used(),
            _ => self.count,
        }
    }

    /// The first host index of round `rep`: rounds use different names.
    fn first_name(&self, rep: usize) -> u32 {
        let per_run = self.names_per_run();
        let span = WARMUP_FIRST.saturating_sub(per_run).max(1);
        ((rep as u64 * u64::from(per_run)) % u64::from(span)) as u32
    }
}

/// Runs `job` in the bench's child (`netns-child`) inside `namespace`, and
/// reads the result it prints as its last JSON line.
fn run_job_in(namespace: &Namespace, job: &Job, limit: Duration) -> Result<JobResult> {
    let spec = serde_json::to_string(job).context("encoding the job")?;
    let text = namespace.run_self(&["netns-child", "--job", &spec], limit)?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("reading the child's result: {text}"))
}

/// Runs a job in this process: starts its server, then the rounds on a
/// client thread with its own single-threaded tokio runtime.
pub fn run_job(job: &Job) -> Result<JobResult> {
    if job.names_per_run() > WARMUP_FIRST {
        anyhow::bail!(
            "{} names per run is more than the zone's {} (lower --count)",
            job.names_per_run(),
            WARMUP_FIRST
        );
    }
    // A resolver with a socket per query needs one per lookup in flight;
    // failing to raise is reported with the Fds figures (the limit is noted).
    let _ = raise_fd_limit();
    let pin = job.pin && measure::cpu_count() >= 2;
    let (client_cpu, server_cpu) = if pin {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    let mut notes = Vec::new();
    let mut dnsperf_runs = Vec::new();
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (peers, server) = match job.server {
        ServerKind::Knot => {
            let port = if job.port == 0 {
                free_port()?
            } else {
                job.port
            };
            let knot = Knot::start(SocketAddr::new(localhost, port), server_cpu)?;
            let desc = format!(
                "{} with a generated zone of {} names, 1 UDP worker{}",
                knot::version().unwrap_or_else(|| "Knot".into()),
                fmt_count(u64::from(ZONE_HOSTS)),
                knot.pinned()
                    .map(|c| format!(", on CPU {c}"))
                    .unwrap_or_default()
            );
            if job.dnsperf_secs > 0 {
                let queries = knot.dir().join("queries.txt");
                knot::write_query_file(&queries, ZONE_HOSTS)?;
                let clock = ThreadCpuClock::process(knot.pid()).ok();
                for _ in 0..job.reps {
                    for outstanding in DNSPERF_OUTSTANDING {
                        let before = clock.and_then(|c| c.read().ok());
                        let mut run = dnsperf::run(
                            knot.addr(),
                            &queries,
                            job.dnsperf_secs,
                            outstanding,
                            client_cpu,
                        )?;
                        if let (Some(c), Some(before)) = (clock, before) {
                            run.server_cpu_s = c
                                .read()
                                .ok()
                                .map(|after| after.saturating_sub(before).as_secs_f64());
                        }
                        dnsperf_runs.push(run);
                    }
                }
            }
            let server_cpu = ThreadCpuClock::process(knot.pid())
                .map(|clock| ServerCpu {
                    clock,
                    in_process: false,
                })
                .ok();
            let peers = run_rounds(
                job,
                knot.addr(),
                server_cpu,
                CountersHandle::none(),
                client_cpu,
            )?;
            (peers, desc)
        }
        ServerKind::Testbed => {
            let testbed = TestbedThread::start(
                SocketAddr::new(localhost, job.port),
                ZONE_HOSTS,
                Duration::from_millis(job.delay_ms),
                server_cpu,
            )?;
            let desc = format!(
                "the testbed DNS server, answering after {} ms{}",
                job.delay_ms,
                server_cpu
                    .map(|c| format!(", on CPU {c}"))
                    .unwrap_or_default()
            );
            let peers = run_rounds(
                job,
                testbed.addr(),
                Some(ServerCpu {
                    clock: testbed.cpu_clock(),
                    in_process: true,
                }),
                testbed.counters(),
                client_cpu,
            )?;
            (peers, desc)
        }
    };
    if let Some(cpu) = client_cpu {
        notes.push(format!("client pinned to CPU {cpu}"));
    }
    if job.workload == WorkloadKind::Fds {
        if let Some(limit) = open_file_limit() {
            notes.push(format!(
                "the process's open-file limit (RLIMIT_NOFILE, raised to its hard limit) was {}",
                fmt_count(limit)
            ));
        }
    }
    Ok(JobResult {
        job: job.clone(),
        server,
        dnsperf: dnsperf_runs,
        peers,
        notes,
    })
}

fn run_rounds(
    job: &Job,
    server: SocketAddr,
    server_cpu: Option<ServerCpu>,
    counters: CountersHandle,
    client_cpu: Option<usize>,
) -> Result<Vec<PeerResult>> {
    let job = job.clone();
    on_thread("bench-client", client_cpu, move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the client runtime")?;
        runtime.block_on(rounds(&job, server, server_cpu, &counters))
    })
}

async fn rounds(
    job: &Job,
    server: SocketAddr,
    server_cpu: Option<ServerCpu>,
    counters: &CountersHandle,
) -> Result<Vec<PeerResult>> {
    let mut results: Vec<PeerResult> = job
        .peers
        .iter()
        .map(|&peer| PeerResult {
            peer,
            samples: Vec::new(),
            skipped: None,
            failed: None,
            first_error: None,
        })
        .collect();
    let limit = Duration::from_secs(job.limit_s.max(1));
    for rep in 0..job.reps {
        for result in results.iter_mut() {
            if result.failed.is_some() {
                continue;
            }
            let started = Instant::now();
            let run = tokio::time::timeout(
                limit,
                run_once(job, result.peer, rep, server, server_cpu, counters),
            )
            .await;
            match run {
                Ok(Ok((sample, first_error))) => {
                    eprintln!(
                        "  {:?} {} round {}: {} ok, {} wrong, {} failed ({:.1} s)",
                        job.workload,
                        result.peer,
                        rep + 1,
                        sample.tally().ok,
                        sample.tally().wrong,
                        sample.tally().errors,
                        started.elapsed().as_secs_f64()
                    );
                    result.samples.push(sample);
                    if result.first_error.is_none() {
                        result.first_error = first_error;
                    }
                }
                Ok(Err(e)) => result.failed = Some(format!("{e:#}")),
                Err(_) => result.failed = Some(format!("run exceeded the {limit:?} time limit")),
            }
            // Let the dropped resolver's background tasks wind down.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(results)
}

async fn run_once(
    job: &Job,
    kind: PeerKind,
    rep: usize,
    server: SocketAddr,
    server_cpu: Option<ServerCpu>,
    counters: &CountersHandle,
) -> Result<(Sample, Option<String>)> {
    let setup = job.setup(server);
    let first = job.first_name(rep);
    let warmup = job.warmup.min(ZONE_HOSTS - WARMUP_FIRST);
    let before = open_fds().context("reading /proc/self/fd")?;
    crate::with_peer!(kind, setup, |peer| {
        match job.workload {
            WorkloadKind::W1 => {
                let params = workloads::w1::Params {
                    first,
                    count: job.count,
                    in_flight: job.in_flight,
                    warmup: job.warmup,
                    ramp_per_ms: W1_RAMP_PER_MS,
                };
                let (s, e) = workloads::w1::run(peer, &params, server_cpu).await?;
                Ok((Sample::Throughput(s), e))
            }
            WorkloadKind::W2 | WorkloadKind::W3 => {
                let params = workloads::burst::Params {
                    first,
                    count: job.count,
                    family: job.workload.family(),
                    warmup_first: WARMUP_FIRST,
                    warmup,
                };
                let (s, e) = workloads::burst::run(peer, &params, counters).await?;
                Ok((Sample::Burst(s), e))
            }
            WorkloadKind::Fds => {
                let params = workloads::fds::Params {
                    first,
                    count: job.count,
                };
                let (s, e) = workloads::fds::run(peer, &params, before).await?;
                Ok((Sample::Fds(s), e))
            }
        }
    })
}

/// Formats a count with thousands separators.
pub fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let first = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = String::from(&digits[..first.min(digits.len())]);
    for chunk in digits.as_bytes()[first.min(digits.len())..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
    }
    out
}

/// What a full or smoke run does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// "full" or "smoke".
    pub name: &'static str,
    /// Rounds per workload.
    pub reps: usize,
    /// Peers compared (the getaddrinfo ones run in the namespace).
    pub peers: Vec<PeerKind>,
    /// Add the harness-floor peer to W1.
    pub harness_floor: bool,
    /// W1 names per run.
    pub w1_names: u32,
    /// W1 lookups in flight.
    pub w1_in_flight: usize,
    /// Warm-up lookups before each run.
    pub warmup: u32,
    /// Use Knot for W1 (when installed).
    pub knot: bool,
    /// Seconds per dnsperf run (0: none).
    pub dnsperf_secs: u64,
    /// W2/W3 names per burst.
    pub burst_names: u32,
    /// W2/W3 server delay, ms.
    pub burst_delay_ms: u64,
    /// Resources: lookups in flight.
    pub fds_in_flight: u32,
    /// Resources: server delay, ms.
    pub fds_delay_ms: u64,
    /// Run the getaddrinfo peers in a network namespace (needs root).
    pub netns: bool,
    /// Pin client and server to CPUs 0 and 1.
    pub pin: bool,
    /// Time limit of one peer's run, seconds.
    pub limit_s: u64,
    /// Workloads run.
    pub workloads: Vec<WorkloadKind>,
}

impl Plan {
    /// The full benchmark of issue 7.
    pub fn full() -> Self {
        Self {
            name: "full",
            reps: 3,
            peers: PeerKind::COMPARED.to_vec(),
            harness_floor: true,
            w1_names: 20_000,
            w1_in_flight: 500,
            warmup: 1_000,
            knot: true,
            dnsperf_secs: 5,
            burst_names: 500,
            burst_delay_ms: 20,
            fds_in_flight: 10_000,
            fds_delay_ms: 1_000,
            netns: true,
            pin: true,
            limit_s: 120,
            workloads: vec![
                WorkloadKind::W1,
                WorkloadKind::W2,
                WorkloadKind::W3,
                WorkloadKind::Fds,
            ],
        }
    }

    /// Tiny counts, testbed only, no namespace: for the test suite.
    pub fn smoke() -> Self {
        Self {
            name: "smoke",
            reps: 1,
            peers: PeerKind::COMPARED.to_vec(),
            harness_floor: true,
            w1_names: 200,
            w1_in_flight: 50,
            warmup: 20,
            knot: false,
            dnsperf_secs: 0,
            burst_names: 200,
            burst_delay_ms: 20,
            fds_in_flight: 200,
            fds_delay_ms: 200,
            netns: false,
            pin: false,
            limit_s: 60,
            workloads: vec![
                WorkloadKind::W1,
                WorkloadKind::W2,
                WorkloadKind::W3,
                WorkloadKind::Fds,
            ],
        }
    }

    /// The job of `workload` for `peers` against `server`, with this plan's counts.
    pub fn job(&self, workload: WorkloadKind, peers: Vec<PeerKind>, server: ServerKind) -> Job {
        let (count, in_flight, delay_ms) = match workload {
            WorkloadKind::W1 => (self.w1_names, self.w1_in_flight, 0),
            WorkloadKind::W2 | WorkloadKind::W3 => (
                self.burst_names,
                self.burst_names as usize,
                self.burst_delay_ms,
            ),
            WorkloadKind::Fds => (
                self.fds_in_flight,
                self.fds_in_flight as usize,
                self.fds_delay_ms,
            ),
        };
        let warmup = match workload {
            WorkloadKind::W1 => self.warmup,
            WorkloadKind::W2 | WorkloadKind::W3 => 8,
            WorkloadKind::Fds => 0,
        };
        Job {
            workload,
            peers,
            reps: self.reps,
            count,
            in_flight,
            warmup,
            delay_ms,
            server,
            port: 0,
            pin: self.pin,
            dnsperf_secs: if workload == WorkloadKind::W1 && server == ServerKind::Knot {
                self.dnsperf_secs
            } else {
                0
            },
            limit_s: self.limit_s,
            timeout_ms: 2_000,
            attempts: 2,
        }
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// "full" or "smoke".
    pub plan: String,
    /// One result per workload, in order.
    pub workloads: Vec<JobResult>,
    /// Remarks for the report.
    pub notes: Vec<String>,
    /// Wall time of the whole run, seconds.
    pub elapsed_s: f64,
    /// What else the machine was doing during the run.
    pub machine: Option<MachineLoad>,
}

/// CPU used on the machine during a run by everything but the run itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MachineLoad {
    /// 1-minute load average when the run started.
    pub load_at_start: f64,
    /// CPU-seconds the run itself used (this process and its children).
    pub own_cpu_s: f64,
    /// CPU-seconds the rest of the machine used meanwhile.
    pub other_cpu_s: f64,
    /// CPU-seconds stolen by the hypervisor meanwhile.
    pub steal_s: f64,
    /// CPUs of the machine.
    pub cpus: usize,
}

impl MachineLoad {
    /// Average number of CPUs kept busy by other processes.
    pub fn other_cpus_busy(&self, elapsed_s: f64) -> f64 {
        self.other_cpu_s / elapsed_s.max(1e-9)
    }
}

fn own_cpu() -> Option<f64> {
    Some((measure::process_cpu().ok()? + measure::children_cpu().ok()?).as_secs_f64())
}

/// Runs a plan: each workload with the in-process peers, then the
/// getaddrinfo peers in the network namespace (or skipped, with the reason).
pub fn run_plan(plan: &Plan) -> Result<RunResults> {
    let started = Instant::now();
    let load_at_start = measure::load_average();
    let machine_before = measure::machine_cpu();
    let own_before = own_cpu();
    let mut notes = Vec::new();
    let system: Vec<PeerKind> = plan
        .peers
        .iter()
        .copied()
        .filter(|p| p.is_system())
        .collect();
    let in_process: Vec<PeerKind> = plan
        .peers
        .iter()
        .copied()
        .filter(|p| !p.is_system())
        .collect();
    let namespace: Result<Namespace, String> = if system.is_empty() {
        Err("not requested".into())
    } else if !plan.netns {
        Err("skipped: this run does not create a network namespace (smoke mode or --no-netns); glibc cannot be pointed at the test server otherwise".into())
    } else {
        Namespace::create().map_err(|e| format!("skipped: {e:#}"))
    };
    let knot_version = knot::version();
    if plan.knot && knot_version.is_none() {
        notes.push("knotd is not installed: W1 ran against the testbed DNS server instead of Knot, and without a dnsperf ceiling (apt-get install knot dnsperf).".into());
    }
    if plan.knot && plan.dnsperf_secs > 0 && knot_version.is_some() && dnsperf::version().is_none()
    {
        notes.push(
            "dnsperf is not installed: no server ceiling measured (apt-get install dnsperf)."
                .into(),
        );
    }
    let mut workloads_done = Vec::new();
    for &workload in &plan.workloads {
        eprintln!("{}…", workload.title());
        let server = if workload == WorkloadKind::W1 && plan.knot && knot_version.is_some() {
            ServerKind::Knot
        } else {
            ServerKind::Testbed
        };
        let mut peers = in_process.clone();
        if workload == WorkloadKind::W1 && plan.harness_floor {
            peers.push(PeerKind::Null);
        }
        let mut job = plan.job(workload, peers, server);
        if job.dnsperf_secs > 0 && dnsperf::version().is_none() {
            job.dnsperf_secs = 0;
        }
        // Knot takes the kernel's default receive buffer; raise it while
        // this workload's Knot instances open their sockets (see `sysctl`).
        let raised_rmem = (server == ServerKind::Knot)
            .then(|| Raised::at_least(Path::new(sysctl::RMEM_DEFAULT), KNOT_RECV_BUFFER));
        let mut result = run_job(&job).with_context(|| workload.title().to_string())?;
        match &raised_rmem {
            Some(Ok(Some(raised))) => result.notes.push(format!(
                "net.core.rmem_default was raised from {} to {} bytes for this workload, so knotd's socket (Knot has no setting for it) and the peers' got that receive buffer unless they set their own; it was put back after",
                fmt_count(raised.previous()),
                fmt_count(raised.now())
            )),
            Some(Err(why)) => result.notes.push(format!(
                "knotd kept the kernel's default socket receive buffer ({why}): at these rates its full buffer drops queries (the drops column), and each drop costs a timeout"
            )),
            _ => {}
        }
        for &peer in &system {
            let why = if workload == WorkloadKind::Fds {
                Some("not measured: a thread pool has at most its thread count of lookups in flight, each with its own socket".to_string())
            } else {
                namespace.as_ref().err().cloned()
            };
            if let Some(why) = why {
                result.peers.push(PeerResult::skipped(peer, why));
            }
        }
        if let (Ok(ns), WorkloadKind::W1 | WorkloadKind::W2 | WorkloadKind::W3) =
            (&namespace, workload)
        {
            let mut child_job = plan.job(workload, system.clone(), server);
            child_job.port = netns::SERVER.port();
            child_job.dnsperf_secs = 0;
            let limit =
                Duration::from_secs(plan.limit_s * plan.reps as u64 * system.len() as u64 + 120);
            eprintln!("  (getaddrinfo peers, in network namespace {})", ns.name());
            match run_job_in(ns, &child_job, limit) {
                Ok(child) => {
                    result.peers.extend(child.peers);
                    result.notes.push(format!(
                        "the getaddrinfo peers ran in network namespace `{}` against their own instance of the same server ({}), listening on 127.0.0.1:53 there (glibc only uses port 53)",
                        ns.name(),
                        child.server
                    ));
                }
                Err(e) => {
                    for &peer in &system {
                        let mut failed = PeerResult::skipped(peer, "");
                        failed.skipped = None;
                        failed.failed = Some(format!("{e:#}"));
                        result.peers.push(failed);
                    }
                }
            }
        }
        workloads_done.push(result);
    }
    drop(namespace);
    let machine = match (
        load_at_start,
        machine_before,
        measure::machine_cpu(),
        own_before,
        own_cpu(),
    ) {
        (Some(load), Some((busy0, steal0)), Some((busy1, steal1)), Some(own0), Some(own1)) => {
            let own = own1 - own0;
            Some(MachineLoad {
                load_at_start: load,
                own_cpu_s: own,
                other_cpu_s: ((busy1 - busy0) - own).max(0.0),
                steal_s: (steal1 - steal0).max(0.0),
                cpus: measure::cpu_count(),
            })
        }
        _ => None,
    };
    Ok(RunResults {
        plan: plan.name.to_string(),
        workloads: workloads_done,
        notes,
        elapsed_s: started.elapsed().as_secs_f64(),
        machine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_separators() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(20_000), "20,000");
        assert_eq!(fmt_count(1_234_567), "1,234,567");
    }

    #[test]
    fn names_stay_below_the_warmup_range() {
        let job = Plan::full().job(WorkloadKind::W1, vec![], ServerKind::Knot);
        for rep in 0..10 {
            let first = job.first_name(rep);
            assert!(first + job.names_per_run() <= WARMUP_FIRST);
        }
    }
}
