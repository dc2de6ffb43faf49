//! dnsperf measures what the authoritative server itself can answer on
//! this machine: the ceiling the resolvers are compared against.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// One dnsperf run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DnsperfRun {
    /// Queries kept outstanding (`-q`).
    pub outstanding: usize,
    /// Queries per second completed.
    pub qps: f64,
    /// Queries sent.
    pub sent: u64,
    /// Queries lost (unanswered within dnsperf's timeout).
    pub lost: u64,
    /// Run time dnsperf reports, seconds.
    pub run_s: f64,
    /// The server's CPU time during the run, seconds, when known.
    pub server_cpu_s: Option<f64>,
    /// dnsperf's own CPU time (user + system), seconds, when known: what a
    /// bare load generator spends on this kernel, a floor for any client.
    #[serde(default)]
    pub client_cpu_s: Option<f64>,
}

impl DnsperfRun {
    /// The server's CPU microseconds per completed query, when known.
    pub fn server_us_per_query(&self) -> Option<f64> {
        let completed = (self.qps * self.run_s).max(1.0);
        self.server_cpu_s.map(|s| s * 1e6 / completed)
    }

    /// dnsperf's own CPU microseconds per completed query, when known.
    pub fn client_us_per_query(&self) -> Option<f64> {
        let completed = (self.qps * self.run_s).max(1.0);
        self.client_cpu_s.map(|s| s * 1e6 / completed)
    }

    /// Fraction of the run the server spent on a CPU, when known.
    pub fn server_busy(&self) -> Option<f64> {
        self.server_cpu_s.map(|s| s / self.run_s.max(1e-9))
    }
}

/// The version dnsperf prints, or `None` when it is not installed.
pub fn version() -> Option<String> {
    // dnsperf has no version flag; its usage text does not carry one either,
    // so ask the package manager, and fall back to "installed".
    Command::new("dnsperf")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "dnsperf"])
        .output()
        .ok();
    Some(match out {
        Some(out) if out.status.success() && !out.stdout.is_empty() => {
            format!("dnsperf {}", String::from_utf8_lossy(&out.stdout).trim())
        }
        _ => "dnsperf (version unknown)".to_string(),
    })
}

/// Runs dnsperf against `server` for `seconds` with `outstanding` queries in
/// flight, reading names from `query_file`, pinned to `cpu` when given.
pub fn run(
    server: SocketAddr,
    query_file: &std::path::Path,
    seconds: u64,
    outstanding: usize,
    cpu: Option<usize>,
) -> Result<DnsperfRun> {
    if !server.ip().is_loopback() {
        bail!("dnsperf only runs against loopback servers, not {server}");
    }
    let mut command = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg("dnsperf");
            c
        }
        None => Command::new("dnsperf"),
    };
    command
        .arg("-s")
        .arg(server.ip().to_string())
        .arg("-p")
        .arg(server.port().to_string())
        .arg("-d")
        .arg(query_file)
        .arg("-l")
        .arg(seconds.to_string())
        .arg("-c")
        .arg("1")
        .arg("-q")
        .arg(outstanding.to_string())
        .stdin(Stdio::null());
    let deadline = Duration::from_secs(seconds + 30);
    // dnsperf is the only child reaped while it runs (the server is reaped
    // only when it stops), so the growth of RUSAGE_CHILDREN is dnsperf's.
    let children_before = crate::measure::children_cpu().ok();
    let output =
        crate::process::output_with_timeout(&mut command, deadline).context("running dnsperf")?;
    let children_after = crate::measure::children_cpu().ok();
    let text = String::from_utf8_lossy(&output.stdout);
    let mut run = parse(&text).with_context(|| format!("unexpected dnsperf output:\n{text}"))?;
    run.outstanding = outstanding;
    if let (Some(before), Some(after)) = (children_before, children_after) {
        run.client_cpu_s = Some(after.saturating_sub(before).as_secs_f64());
    }
    Ok(run)
}

fn field(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Reads the statistics block of dnsperf's output.
pub fn parse(text: &str) -> Result<DnsperfRun> {
    let qps = field(text, "Queries per second:").context("no 'Queries per second'")?;
    let sent = field(text, "Queries sent:").context("no 'Queries sent'")? as u64;
    let lost = field(text, "Queries lost:").unwrap_or(0.0) as u64;
    let run_s = field(text, "Run time (s):").context("no 'Run time (s)'")?;
    Ok(DnsperfRun {
        outstanding: 0,
        qps,
        sent,
        lost,
        run_s,
        server_cpu_s: None,
        client_cpu_s: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_statistics() {
        let text = "Statistics:\n\n  Queries sent:         332892\n  Queries completed:    332586 (99.91%)\n  Queries lost:         306 (0.09%)\n\n  Run time (s):         3.002295\n  Queries per second:   110777.255400\n";
        let run = parse(text).unwrap();
        assert_eq!(run.sent, 332_892);
        assert_eq!(run.lost, 306);
        assert!((run.qps - 110_777.255_4).abs() < 1e-6);
        assert!((run.run_s - 3.002_295).abs() < 1e-9);
    }
}
