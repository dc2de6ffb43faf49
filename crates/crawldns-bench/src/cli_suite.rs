//! What a user's `crawldns resolve` costs beside the library (issue 18):
//! the same names against the same Knot, CPU per lookup of the whole
//! process. The library rows run in this process, 500 lookups in flight,
//! `lookup(name, A)`, cache on as in the CLI: on a current-thread tokio
//! runtime (as W1 measures the library, and as `crawldns resolve` runs)
//! and on a multi-threaded one (a thread per CPU); the CLI rows run the
//! built binary as a user does,
//! `crawldns resolve --type A --concurrency 500 --silent FILE > /dev/null`,
//! by default and with `--bulk`, their CPU read from `wait4`'s rusage
//! (their JSON lines are read by this process, after the child's CPU).
//! Rounds alternate the rows; the table gives medians.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crawldns::{QueryType, Resolver, ResolverConfig};
use tokio::task::JoinSet;

use crate::measure::{children_cpu, fmt_load, process_cpu};
use crate::names::host;
use crate::servers::free_port;
use crate::servers::knot::{self, Knot};

/// Lookups in flight, as the issue measured the CLI.
const IN_FLIGHT: usize = 500;

/// What to run.
#[derive(Debug, Clone)]
pub struct CliOptions {
    /// Distinct names resolved per run.
    pub names: u32,
    /// Rounds (medians are reported).
    pub rounds: usize,
    /// The `crawldns` binary.
    pub binary: PathBuf,
    /// Pin Knot to CPU 1 (the client is not pinned: the CLI's runtime has
    /// a thread per CPU, as a user runs it).
    pub pin: bool,
}

/// One row's samples: CPU per lookup (µs) and wall time (s) per run.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The row's label.
    pub label: &'static str,
    /// CPU µs per lookup, one per run.
    pub cpu_us: Vec<f64>,
    /// Wall seconds, one per run.
    pub wall_s: Vec<f64>,
    /// Failed lookups, all runs together.
    pub failed: u64,
}

/// The default binary: `crawldns` next to this executable.
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("crawldns")))
        .unwrap_or_else(|| PathBuf::from("crawldns"))
}

/// Runs every row `options.rounds` times and returns the Markdown report.
pub fn run(options: &CliOptions) -> Result<String> {
    if !options.binary.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p crawldns-cli`",
            options.binary.display()
        );
    }
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port()?);
    let knot = Knot::start(addr, options.pin.then_some(1))?;
    let names_file = knot.dir().join("names.txt");
    let names: Vec<String> = (0..options.names).map(host).collect();
    std::fs::write(&names_file, names.join("\n") + "\n").context("writing the names")?;
    let names = Arc::new(names);
    let mut rows = [
        Row {
            label: "library: `Resolver::lookup` (A), 500 in flight, current-thread runtime",
            ..Row::default()
        },
        Row {
            label: "library: the same on a multi-threaded runtime",
            ..Row::default()
        },
        Row {
            label: "CLI: `crawldns resolve --type A --concurrency 500`",
            ..Row::default()
        },
        Row {
            label: "CLI: the same with `--bulk`",
            ..Row::default()
        },
    ];
    let started = Instant::now();
    let load_before = crate::measure::load_average();
    for round in 0..options.rounds {
        for (i, multi_thread) in [(0, false), (1, true)] {
            let run = library_run(addr, &names, multi_thread)?;
            push(&mut rows[i], run, names.len());
        }
        for (i, bulk) in [(2, false), (3, true)] {
            let run = cli_run(&options.binary, addr, &names_file, bulk)?;
            push(&mut rows[i], run, names.len());
        }
        let each: Vec<String> = rows
            .iter()
            .map(|r| format!("{:.2}", r.cpu_us[round]))
            .collect();
        eprintln!("  round {}: µs per lookup {}", round + 1, each.join(", "));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} names (A) per run against {} (1 UDP worker{}), {} rounds, medians; CPU is user + system of the whole process. Run took {:.0} s; 1-minute load average {} at the start, {} at the end.\n",
        options.names,
        knot::version().unwrap_or_else(|| "Knot".into()),
        knot.pinned().map_or(String::new(), |c| format!(", on CPU {c}")),
        options.rounds,
        started.elapsed().as_secs_f64(),
        fmt_load(load_before),
        fmt_load(crate::measure::load_average()),
    );
    let library = median(&rows[0].cpu_us);
    let _ = writeln!(
        out,
        "| row | CPU µs per lookup | each run | wall s | failed (all runs) | × library |"
    );
    let _ = writeln!(out, "| --- | ---: | --- | ---: | ---: | ---: |");
    for row in &rows {
        let cpu = median(&row.cpu_us);
        let each: Vec<String> = row.cpu_us.iter().map(|v| format!("{v:.2}")).collect();
        let _ = writeln!(
            out,
            "| {} | {cpu:.2} | {} | {:.2} | {} | {:.2}× |",
            row.label,
            each.join(", "),
            median(&row.wall_s),
            row.failed,
            cpu / library
        );
    }
    let _ = writeln!(out);
    for row in &rows[2..] {
        let ratio = median(&row.cpu_us) / library;
        let verdict = if ratio <= 1.25 { "met" } else { "**missed**" };
        let _ = writeln!(
            out,
            "- target \"{} within 1.25× of the library\": {ratio:.2}×, {verdict}",
            row.label
        );
    }
    Ok(out)
}

fn push(row: &mut Row, (cpu, wall, failed): (Duration, Duration, u64), lookups: usize) {
    row.cpu_us
        .push(cpu.as_secs_f64() * 1e6 / lookups.max(1) as f64);
    row.wall_s.push(wall.as_secs_f64());
    row.failed += failed;
}

/// The library in this process, 500 in flight.
fn library_run(
    server: SocketAddr,
    names: &Arc<Vec<String>>,
    multi_thread: bool,
) -> Result<(Duration, Duration, u64)> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("building the runtime")?;
    let names = names.clone();
    let cpu_before = process_cpu()?;
    let started = Instant::now();
    let failed = runtime.block_on(async move {
        let resolver = Resolver::new(ResolverConfig::builder().nameserver(server).build())?;
        let mut set = JoinSet::new();
        let mut failed = 0u64;
        for i in 0..names.len() {
            while set.len() >= IN_FLIGHT {
                if let Some(Ok(Err(_))) = set.join_next().await {
                    failed += 1;
                }
            }
            let (resolver, names) = (resolver.clone(), names.clone());
            set.spawn(async move { resolver.lookup(&names[i], QueryType::A).await });
        }
        while let Some(done) = set.join_next().await {
            if !matches!(done, Ok(Ok(_))) {
                failed += 1;
            }
        }
        anyhow::Ok(failed)
    })?;
    let wall = started.elapsed();
    let cpu = process_cpu()? - cpu_before;
    drop(runtime);
    Ok((cpu, wall, failed))
}

/// The CLI binary, as a user runs it, output to /dev/null.
fn cli_run(
    binary: &Path,
    server: SocketAddr,
    names: &Path,
    bulk: bool,
) -> Result<(Duration, Duration, u64)> {
    let cpu_before = children_cpu()?;
    let started = Instant::now();
    let mut command = Command::new(binary);
    command
        .args(["resolve", "--nameserver", &server.to_string()])
        .args(["--type", "A", "--concurrency", "500", "--silent"])
        .arg(names)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if bulk {
        command.arg("--bulk");
    }
    let output = crate::process::output_with_timeout(&mut command, Duration::from_secs(300))?;
    let wall = started.elapsed();
    let cpu = children_cpu()? - cpu_before;
    // Exit 3: some lookups failed (counted below); anything else is an error.
    if !output.status.success() && output.status.code() != Some(3) {
        bail!(
            "crawldns resolve failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let failed = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.contains("\"error\":null"))
        .count() as u64;
    Ok((cpu, wall, failed))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_take_the_upper_middle() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(&[]).is_nan());
    }
}
