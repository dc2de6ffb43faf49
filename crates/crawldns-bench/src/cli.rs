//! The command line: `full`, `smoke`, `run` (one workload, e.g. under a
//! profiler), `cache`, `transports` (issue 17) and the internal
//! `netns-child`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::env_info::EnvInfo;
use crate::peers::PeerKind;
use crate::report::{markdown, merge_notes};
use crate::suite::{run_job, run_plan, Job, JobResult, Plan, RunResults, ServerKind};
use crate::workloads::WorkloadKind;

/// Benchmarks crawldns against hickory-resolver, c-ares and glibc
/// getaddrinfo, side by side, and writes Markdown tables.
#[derive(Debug, Parser)]
#[command(name = "crawldns-bench", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The full benchmark of issue 7 (several minutes; run as root for the
    /// getaddrinfo peers).
    Full(FullArgs),
    /// Tiny counts against the testbed only, no Knot, no namespace (the
    /// test suite runs this).
    Smoke(OutputArgs),
    /// One workload with chosen peers and counts (for profiling).
    Run(RunArgs),
    /// W4 (hot-cache hit cost) and Herd, caches on; prints Markdown.
    Cache {
        /// Rounds (medians are reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Timed lookups per thread (c-ares does a tenth of them).
        #[arg(long, default_value_t = 2_000_000)]
        per_thread: u32,
        /// Run W4 only (skip Herd): for quick before/after comparisons and
        /// for profiling the hit path.
        #[arg(long)]
        w4_only: bool,
        /// Peers to measure (default all): crawldns, crawldns-ip, hickory,
        /// cares. The ratio column is relative to the first one listed.
        #[arg(long, value_delimiter = ',')]
        peers: Vec<crate::cache_suite::CachedPeer>,
    },
    /// Stream transports (issue 17): crawldns over UDP, TCP, DoT and DoH and
    /// hickory-resolver over TCP, DoT and DoH, W1 and W2, against a
    /// `crawldns testbed` process; prints Markdown.
    Transports(TransportsArgs),
    /// What `crawldns resolve` costs per lookup beside the library (issue
    /// 18), against Knot; prints Markdown.
    Cli {
        /// Distinct names per run.
        #[arg(long, default_value_t = 20_000)]
        names: u32,
        /// Rounds (medians are reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// The `crawldns` binary (default: the one next to this executable).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Do not pin Knot to CPU 1.
        #[arg(long)]
        no_pin: bool,
    },
    /// Bulk resolution at scale (issue 18, item 4): `crawldns resolve
    /// --bulk` over N names against Knot serving exactly those, beside
    /// dnsperf's ceiling; prints Markdown.
    Bulk {
        /// Distinct names.
        #[arg(long, default_value_t = 1_000_000)]
        names: u32,
        /// `--concurrency` settings of the CLI runs.
        #[arg(long, value_delimiter = ',', default_value = "500,2000")]
        concurrency: Vec<u32>,
        /// Seconds of each dnsperf run (0: no ceiling).
        #[arg(long, default_value_t = 5)]
        dnsperf_secs: u64,
        /// The `crawldns` binary (default: the one next to this executable).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Do not pin Knot to CPU 1 and the client to CPU 0.
        #[arg(long)]
        no_pin: bool,
    },
    /// Internal: run a job inside the network namespace, print JSON.
    #[command(hide = true)]
    NetnsChild {
        /// The job, as JSON.
        #[arg(long)]
        job: String,
    },
}

/// Where results go.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write the Markdown report here (text from the notes marker on, in an
    /// existing file, is kept).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the raw samples here, as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Options of `full`.
#[derive(Debug, Args)]
pub struct FullArgs {
    /// Output files.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Rounds per workload (at least 3 for the report).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Skip the getaddrinfo peers (no network namespace).
    #[arg(long)]
    pub no_netns: bool,
    /// Use the testbed server for W1 even if Knot is installed.
    #[arg(long)]
    pub no_knot: bool,
    /// Do not pin client and server to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Wait up to this many seconds for the machine to be quiet (1-minute
    /// load average below 0.5) before starting.
    #[arg(long, default_value_t = 0)]
    pub wait_quiet: u64,
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workload.
    #[arg(long, value_enum)]
    pub workload: WorkloadKind,
    /// Peers, comma-separated (in-process peers only: crawldns, hickory,
    /// c-ares, null).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "crawldns")]
    pub peers: Vec<PeerKind>,
    /// Rounds.
    #[arg(long, default_value_t = 1)]
    pub reps: usize,
    /// Names per run (lookups in flight for `fds`).
    #[arg(long, default_value_t = 20_000)]
    pub count: u32,
    /// Lookups in flight (W1).
    #[arg(long, default_value_t = 500)]
    pub in_flight: usize,
    /// Testbed server delay, ms (W2, W3, fds).
    #[arg(long, default_value_t = 20)]
    pub delay_ms: u64,
    /// Query Knot (W1 default) or the testbed.
    #[arg(long)]
    pub testbed: bool,
    /// Do not pin client and server to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Output files.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options of `transports`.
#[derive(Debug, Args)]
pub struct TransportsArgs {
    /// W1 lookups in each run's measured window (the full suite's W1).
    #[arg(long, default_value_t = 20_000)]
    pub lookups: u32,
    /// Rounds (medians are reported; W2's bursts are short, so its CPU
    /// figures need several).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// The `crawldns` binary that runs the testbed (default: the one next
    /// to this executable).
    #[arg(long)]
    pub testbed_bin: Option<PathBuf>,
    /// Run only these rows (e.g. `crawldns-DoH,hickory-DoT`), to profile
    /// one; the tables need all of them.
    #[arg(long, value_delimiter = ',', value_parser = crate::transport_suite::Row::parse)]
    pub rows: Vec<crate::transport_suite::Row>,
    /// Do not pin client and server to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Write the raw samples here, as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Parses the command line and runs it.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Full(args) => {
            if args.reps < 1 {
                bail!("--reps must be at least 1");
            }
            wait_quiet(args.wait_quiet);
            let mut plan = Plan::full();
            plan.reps = args.reps;
            plan.netns &= !args.no_netns;
            plan.knot &= !args.no_knot;
            plan.pin &= !args.no_pin;
            let out = args
                .output
                .out
                .clone()
                .or_else(|| Some(PathBuf::from("bench-results.md")));
            run_and_report(&plan, out.as_deref(), args.output.json.as_deref())
        }
        Command::Smoke(output) => run_and_report(
            &Plan::smoke(),
            output.out.as_deref(),
            output.json.as_deref(),
        ),
        Command::Run(args) => run_one(&args),
        Command::Cache {
            rounds,
            per_thread,
            w4_only,
            peers,
        } => {
            let options = crate::cache_suite::CacheOptions {
                rounds,
                per_thread,
                w4_only,
                peers,
            };
            println!("{}", crate::cache_suite::run_with(&options)?);
            Ok(())
        }
        Command::Transports(args) => run_transports(&args),
        Command::Cli {
            names,
            rounds,
            binary,
            no_pin,
        } => {
            if names < 1 || rounds < 1 {
                bail!("--names and --rounds must be at least 1");
            }
            let options = crate::cli_suite::CliOptions {
                names,
                rounds,
                binary: binary.unwrap_or_else(crate::cli_suite::default_binary),
                pin: !no_pin,
            };
            println!("{}", crate::cli_suite::run(&options)?);
            Ok(())
        }
        Command::Bulk {
            names,
            concurrency,
            dnsperf_secs,
            binary,
            no_pin,
        } => {
            if names < 1 || concurrency.iter().any(|&c| c < 1) {
                bail!("--names and every --concurrency must be at least 1");
            }
            let options = crate::bulk_suite::BulkOptions {
                names,
                concurrency,
                dnsperf_secs,
                binary: binary.unwrap_or_else(crate::cli_suite::default_binary),
                pin: !no_pin,
            };
            println!("{}", crate::bulk_suite::run(&options)?);
            Ok(())
        }
        Command::NetnsChild { job } => {
            let job: Job = serde_json::from_str(&job).context("decoding the job")?;
            let result = run_job(&job)?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
    }
}

fn run_transports(args: &TransportsArgs) -> Result<()> {
    if args.rounds < 1 || args.lookups < 1 {
        bail!("--rounds and --lookups must be at least 1");
    }
    let testbed = args
        .testbed_bin
        .clone()
        .unwrap_or_else(crate::transport_suite::default_testbed_bin);
    let mut options = crate::transport_suite::Options::new(args.lookups, args.rounds, testbed);
    options.pin &= !args.no_pin;
    if !args.rows.is_empty() {
        options.rows = args.rows.clone();
    }
    let results = crate::transport_suite::run(&options)?;
    println!("{}", crate::report::transports_markdown(&results, &options));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Waits up to `seconds` for the 1-minute load average to fall below 0.5.
fn wait_quiet(seconds: u64) {
    let start = std::time::Instant::now();
    while start.elapsed().as_secs() < seconds {
        match crate::measure::load_average() {
            Some(load) if load >= 0.5 => {
                eprintln!("waiting for a quiet machine: load average {load:.2}");
                std::thread::sleep(std::time::Duration::from_secs(10));
            }
            _ => return,
        }
    }
}

fn run_and_report(plan: &Plan, out: Option<&Path>, json: Option<&Path>) -> Result<()> {
    let env = EnvInfo::collect();
    let results = run_plan(plan)?;
    write_outputs(&results, &env, out, json)
}

fn write_outputs(
    results: &RunResults,
    env: &EnvInfo,
    out: Option<&Path>,
    json: Option<&Path>,
) -> Result<()> {
    let text = markdown(results, env);
    println!("{text}");
    if let Some(path) = out {
        let existing = std::fs::read_to_string(path).ok();
        std::fs::write(path, merge_notes(&text, existing.as_deref()))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = json {
        let raw = serde_json::json!({ "env": env, "results": results });
        std::fs::write(path, serde_json::to_string_pretty(&raw)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run_one(args: &RunArgs) -> Result<()> {
    if let Some(p) = args.peers.iter().find(|p| p.is_system()) {
        bail!("{p} only runs inside the network namespace; use `full`");
    }
    let mut plan = Plan::full();
    plan.reps = args.reps.max(1);
    plan.pin = !args.no_pin;
    let use_knot = args.workload == WorkloadKind::W1
        && !args.testbed
        && crate::servers::knot::version().is_some();
    let server = if use_knot {
        ServerKind::Knot
    } else {
        ServerKind::Testbed
    };
    match args.workload {
        WorkloadKind::W1 => {
            plan.w1_names = args.count;
            plan.w1_in_flight = args.in_flight;
        }
        WorkloadKind::W2 | WorkloadKind::W3 => {
            plan.burst_names = args.count;
            plan.burst_delay_ms = args.delay_ms;
        }
        WorkloadKind::Fds => {
            plan.fds_in_flight = args.count;
            plan.fds_delay_ms = args.delay_ms;
        }
    }
    plan.dnsperf_secs = 0;
    let job = plan.job(args.workload, args.peers.clone(), server);
    let started = std::time::Instant::now();
    let result: JobResult = run_job(&job)?;
    let results = RunResults {
        plan: "run".into(),
        workloads: vec![result],
        notes: Vec::new(),
        elapsed_s: started.elapsed().as_secs_f64(),
        machine: None,
    };
    write_outputs(
        &results,
        &EnvInfo::collect(),
        args.output.out.as_deref(),
        args.output.json.as_deref(),
    )
}
