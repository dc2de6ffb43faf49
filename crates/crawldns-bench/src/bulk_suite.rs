//! Bulk resolution at scale (issue 18, item 4): N names (default
//! 1,000,000) from a file through `crawldns resolve --bulk`, as a user runs
//! it, against Knot serving a zone of exactly those names, beside the
//! server's ceiling (dnsperf, the best of several outstanding settings, on
//! the same client CPU). For each run: lookups per second of wall time,
//! the CLI's whole-process CPU per lookup and its peak RSS (both from
//! `wait4`), and the failed lookups counted in its output. Knot's own CPU
//! is read around every run, dnsperf's and the CLI's: how busy the server
//! was says whether a run went at the server's pace, whichever client is
//! the faster, and its CPU per query bounds its rate without any client.

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::measure::{fmt_load, load_average, timeval, ThreadCpuClock};
use crate::servers::dnsperf;
use crate::servers::knot::{self, Knot};
use crate::suite::KNOT_RECV_BUFFER;
use crate::sysctl::{self, Raised};

/// How long one CLI run may take before it is killed.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// What the bulk suite runs.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// Distinct names, each resolved once per run.
    pub names: u32,
    /// `--concurrency` settings to run the CLI at.
    pub concurrency: Vec<u32>,
    /// Seconds of each dnsperf run (0: no ceiling).
    pub dnsperf_secs: u64,
    /// The `crawldns` binary.
    pub binary: PathBuf,
    /// Pin Knot to CPU 1 and the client (CLI, dnsperf) to CPU 0.
    pub pin: bool,
}

/// One CLI run.
#[derive(Debug, Clone, Copy)]
struct CliRun {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
    failed: u64,
}

/// Runs the suite; returns Markdown.
pub fn run(options: &BulkOptions) -> Result<String> {
    let started = Instant::now();
    let load_before = load_average();
    let addr = SocketAddr::from(([127, 0, 0, 1], crate::servers::free_port()?));
    // Knot takes the kernel's default receive buffer (it has no setting of
    // its own): raised while it opens its socket, as for W1, so that a
    // burst is not lost in a full buffer. Put back when this is dropped.
    let raised = Raised::at_least(Path::new(sysctl::RMEM_DEFAULT), KNOT_RECV_BUFFER);
    let knot = Knot::start_with(addr, options.pin.then_some(1), options.names)?;
    let buffer_note = match &raised {
        Ok(Some(r)) => format!(
            " net.core.rmem_default was raised from {} to {} bytes while Knot opened its socket.",
            r.previous(),
            r.now()
        ),
        Ok(None) => String::new(),
        Err(why) => format!(" Knot kept the default receive buffer ({why})."),
    };
    drop(raised);
    let dir = knot.dir().to_path_buf();
    let names_file = dir.join("names.txt");
    knot::write_name_file(&names_file, options.names)?;
    let client_cpu = options.pin.then_some(0);
    let server_clock = ThreadCpuClock::process(knot.pid()).ok();
    let server_cpu = || server_clock.and_then(|c| c.read().ok());
    // The fastest the server went on its own: the least CPU per query it
    // spent in any run, as a rate (one worker, so one CPU's worth).
    let mut server_limit: f64 = 0.0;
    let mut note_server = |us_per_query: Option<f64>| {
        if let Some(us) = us_per_query.filter(|&us| us > 0.0) {
            server_limit = server_limit.max(1e6 / us);
        }
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} names (A), each once per run, against {} serving a zone of exactly those names (1 UDP worker{}).\n",
        options.names,
        knot::version().unwrap_or_else(|| "Knot".into()),
        knot.pinned()
            .map(|c| format!(", on CPU {c}"))
            .unwrap_or_default()
    );

    let mut ceiling: f64 = 0.0;
    if options.dnsperf_secs > 0 {
        let queries = dir.join("queries.txt");
        knot::write_query_file(&queries, options.names)?;
        let _ = writeln!(
            out,
            "| dnsperf outstanding | queries/s | lost | dnsperf's own CPU µs/query | server CPU busy | server CPU µs/query |\n| ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for outstanding in [100, 500, 2000] {
            let before = server_cpu();
            let mut run = dnsperf::run(
                addr,
                &queries,
                options.dnsperf_secs,
                outstanding,
                client_cpu,
            )?;
            run.server_cpu_s = before
                .zip(server_cpu())
                .map(|(b, a)| a.saturating_sub(b).as_secs_f64());
            ceiling = ceiling.max(run.qps);
            note_server(run.server_us_per_query());
            let _ = writeln!(
                out,
                "| {outstanding} | {:.0} | {} | {} | {} | {} |",
                run.qps,
                run.lost,
                fmt_opt(run.client_us_per_query(), 2),
                fmt_percent(run.server_busy()),
                fmt_opt(run.server_us_per_query(), 2),
            );
        }
        let _ = writeln!(
            out,
            "\nServer ceiling (best dnsperf rate): **{ceiling:.0} queries/s**.\n"
        );
    }

    let _ = writeln!(
        out,
        "| `crawldns resolve --bulk` | lookups/s | % of ceiling | CPU µs/lookup | peak RSS | failed | wall s | server CPU busy | server CPU µs/query |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let settings = options
        .concurrency
        .iter()
        .flat_map(|&c| [(c, false), (c, true)]);
    for (concurrency, no_cache) in settings {
        let before = server_cpu();
        let run = cli_bulk_run(
            &options.binary,
            addr,
            &names_file,
            &dir,
            (concurrency, no_cache),
            client_cpu,
        )?;
        // The server's share of the CLI's wall time (which includes its
        // start-up and reading the names: a slight undercount of busy).
        let served = before.zip(server_cpu()).map(|(b, a)| a.saturating_sub(b));
        let server_us = served.map(|d| d.as_secs_f64() * 1e6 / f64::from(options.names));
        note_server(server_us);
        let rate = f64::from(options.names) / run.wall.as_secs_f64();
        let _ = writeln!(
            out,
            "| `--concurrency {concurrency}{}` | {rate:.0} | {} | {:.2} | {:.1} MiB | {} | {:.1} | {} | {} |",
            if no_cache { " --no-cache" } else { "" },
            if ceiling > 0.0 {
                format!("{:.0}%", 100.0 * rate / ceiling)
            } else {
                "—".into()
            },
            run.cpu.as_secs_f64() * 1e6 / f64::from(options.names),
            run.max_rss_kib as f64 / 1024.0,
            run.failed,
            run.wall.as_secs_f64(),
            fmt_percent(served.map(|d| d.as_secs_f64() / run.wall.as_secs_f64())),
            fmt_opt(server_us, 2),
        );
    }
    if server_limit > 0.0 {
        let _ = writeln!(
            out,
            "\nThe server's own limit for traffic like the run it spent least CPU per query in (one worker, so one CPU at most): **{server_limit:.0} queries/s**. Server CPU busy is the server's CPU time over the run's wall time; for the CLI runs that wall time includes start-up and reading the names."
        );
    }
    let _ = writeln!(
        out,
        "\nCPU is user + system of the CLI process (`wait4`), for the whole run (start-up, reading {} names, writing as many JSON lines to a file).{buffer_note} Run took {:.0} s; 1-minute load average {} at the start, {} at the end.",
        options.names,
        started.elapsed().as_secs_f64(),
        fmt_load(load_before),
        fmt_load(load_average()),
    );
    drop(knot);
    Ok(out)
}

/// One `crawldns resolve --bulk` over the names file, its output to a file.
fn cli_bulk_run(
    binary: &Path,
    server: SocketAddr,
    names: &Path,
    dir: &Path,
    (concurrency, no_cache): (u32, bool),
    cpu: Option<usize>,
) -> Result<CliRun> {
    let output = dir.join("out.jsonl");
    let (mut command, _) = knot::pinned_command(binary, cpu);
    command
        .args(["resolve", "--bulk", "--silent", "--type", "A"])
        .args(["--nameserver", &server.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .arg("-o")
        .arg(&output)
        .arg(names)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if no_cache {
        command.arg("--no-cache");
    }
    let started = Instant::now();
    let child = command.spawn().context("starting crawldns resolve")?;
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + RUN_LIMIT;
            while !done.load(Ordering::Acquire) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if !done.load(Ordering::Acquire) {
                // SAFETY: kill(2) on the child's pid, not yet reaped.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        })
    };
    let (status, usage) = wait4(pid)?;
    let wall = started.elapsed();
    done.store(true, Ordering::Release);
    let _ = watchdog.join();
    // The child was reaped by wait4; forget the handle without waiting.
    std::mem::forget(child);
    if status.signal().is_some() {
        bail!("crawldns resolve was killed ({status}) after {wall:?}");
    }
    if !status.success() && status.code() != Some(3) {
        bail!("crawldns resolve failed ({status})");
    }
    let failed = count_failed(&output)?;
    Ok(CliRun {
        wall,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        failed,
    })
}

/// `value` with `decimals` decimals, or a dash when unknown.
fn fmt_opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{v:.decimals$}"))
}

/// `fraction` as a whole percentage, or a dash when unknown.
fn fmt_percent(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "—".into(), |f| format!("{:.0}%", 100.0 * f))
}

/// Waits for `pid` and returns its status and its own resource usage.
fn wait4(pid: u32) -> Result<(std::process::ExitStatus, libc::rusage)> {
    let mut status = 0;
    // SAFETY: wait4 writes into the zeroed `rusage` and `status` we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers; `pid` is our unreaped child.
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if rc == pid as libc::pid_t {
            return Ok((std::process::ExitStatus::from_raw(status), usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
}

/// Lines of the JSON output whose lookup failed.
fn count_failed(path: &Path) -> Result<u64> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut failed = 0;
    for line in std::io::BufReader::new(file).lines() {
        if !line?.contains("\"error\":null") {
            failed += 1;
        }
    }
    Ok(failed)
}
