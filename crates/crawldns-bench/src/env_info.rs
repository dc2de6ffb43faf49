//! The machine and the versions of everything measured, for the report.

use std::process::Command;

use serde::{Deserialize, Serialize};

/// Facts about the run's machine and software.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvInfo {
    /// When the run started (UTC).
    pub date: String,
    /// CPUs available.
    pub cpus: usize,
    /// CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
    /// crawldns version and commit.
    pub crawldns: String,
    /// hickory-resolver crate version.
    pub hickory: String,
    /// c-ares library version and the crates around it.
    pub cares: String,
    /// glibc, from `ldd --version`.
    pub glibc: String,
    /// `knotd --version`, if installed.
    pub knot: Option<String>,
    /// dnsperf version, if installed.
    pub dnsperf: Option<String>,
    /// rustc that built the harness.
    pub rustc: String,
    /// tokio version.
    pub tokio: String,
    /// Cargo profile of the harness build.
    pub profile: String,
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn crawldns_version() -> String {
    // A build from an exported tree (no .git) can be labelled at build time.
    if let Some(rev) = option_env!("CRAWLDNS_BENCH_REV") {
        return format!("{} (commit {rev})", env!("CARGO_PKG_VERSION"));
    }
    let dir = env!("CARGO_MANIFEST_DIR");
    let commit = command_line("git", &["-C", dir, "rev-parse", "--short", "HEAD"]);
    let dirty = Command::new("git")
        .args(["-C", dir, "status", "--porcelain", "--", "../crawldns"])
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    match commit {
        Some(commit) if dirty => format!(
            "{} (commit {commit}, plus uncommitted changes to crates/crawldns)",
            env!("CARGO_PKG_VERSION")
        ),
        Some(commit) => format!("{} (commit {commit})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}

impl EnvInfo {
    /// Collects the facts now.
    pub fn collect() -> Self {
        Self {
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .unwrap_or_else(|| "unknown".into()),
            cpus: crate::measure::cpu_count(),
            cpu_model: cpu_model(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            crawldns: crawldns_version(),
            hickory: env!("BENCH_HICKORY_VERSION").to_string(),
            cares: format!(
                "{} (vendored by c-ares-sys {}, through c-ares-resolver {})",
                crate::peers::cares::library_version(),
                env!("BENCH_CARES_SYS_VERSION"),
                env!("BENCH_CARES_RESOLVER_VERSION")
            ),
            glibc: command_line("ldd", &["--version"]).unwrap_or_else(|| "unknown".into()),
            knot: crate::servers::knot::version(),
            dnsperf: crate::servers::dnsperf::version(),
            rustc: env!("BENCH_RUSTC_VERSION").to_string(),
            tokio: env!("BENCH_TOKIO_VERSION").to_string(),
            profile: env!("BENCH_PROFILE").to_string(),
        }
    }
}
