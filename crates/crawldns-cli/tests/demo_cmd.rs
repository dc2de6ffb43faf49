//! `crawldns demo` as a user runs it, in a small variant. The system path
//! (glibc in a network namespace) needs root: as root (CI runs as root) the
//! table must have both columns and the plot both series; otherwise the
//! demo must say plainly that the system path was skipped, and these tests
//! say so too.

crawldns_testkit::bind_crawldns_binary!();

use std::path::Path;
use std::process::{Command, Stdio};

use crawldns_testkit::cli::{texts, TempDir};

/// Whether the system path can run here: root, with `ip`.
fn namespaces_possible() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The row of the table starting with `name`, split into cells.
fn row<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no `{name}` row in:\n{stdout}"));
    line[name.len()..]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn small_demo(extra: &[&str], plot: &Path) -> (u32, std::process::Output) {
    let child = crawldns()
        .args([
            "demo",
            "--hosts",
            "20",
            "--urls-per-host",
            "2",
            "--dns-delay-ms",
            "20",
            "--http-delay-ms",
            "5",
            "--plot",
            plot.to_str().unwrap(),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("crawldns starts");
    let pid = child.id();
    (pid, child.wait_with_output().expect("crawldns runs"))
}

#[test]
fn a_small_demo_prints_the_table_and_plots_both_crawls() {
    let dir = TempDir::new("demo");
    let plot = dir.path().join("demo.svg");
    let (pid, out) = small_demo(&[], &plot);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("crawldns demo: 20 hosts x 2 URLs = 40 URLs"),
        "{stdout}"
    );
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.starts_with("<svg"), "not an SVG");
    assert!(
        stdout.contains(&format!("plot: {}", plot.display())),
        "{stdout}"
    );
    assert!(svg.contains("\ncrawldns\n</text>"), "crawldns series label");
    assert!(svg.contains("stroke=\"#1E5AC8\""), "crawldns line");

    if !namespaces_possible() {
        eprintln!("skipped the system-path checks: not root (or no `ip`); the demo must say so");
        assert!(
            stdout.contains("system path: skipped: not running as root"),
            "{stdout}"
        );
        assert!(stdout.contains("showing crawldns alone."), "{stdout}");
        assert_eq!(row(&stdout, "ok"), ["40/40"], "{stdout}");
        return;
    }

    // Both columns and a ratio.
    let header = stdout
        .lines()
        .find(|l| l.contains("system path") && l.contains("crawldns") && l.contains("ratio"))
        .unwrap_or_else(|| panic!("no table header in:\n{stdout}"));
    assert!(header.trim_start().starts_with("system path"), "{header}");
    for name in ["TTFB p50", "TTFB p99", "DNS p50", "DNS p99", "wall time"] {
        let cells = row(&stdout, name);
        assert_eq!(cells.len(), 3, "{name}: {cells:?}");
        assert!(
            cells[0].ends_with(" ms") && cells[1].ends_with(" ms"),
            "{cells:?}"
        );
        assert!(cells[2].ends_with('x'), "{name} ratio: {cells:?}");
    }
    assert_eq!(row(&stdout, "errors"), ["0", "0"], "{stdout}");
    assert_eq!(row(&stdout, "ok"), ["40/40", "40/40"], "{stdout}");
    assert!(
        stdout.contains("DNS is the resolution time of new connections"),
        "{stdout}"
    );

    // The plot has both series, labelled, each in its own color.
    assert!(
        svg.contains("\nsystem path (getaddrinfo x32)\n</text>"),
        "system series label"
    );
    assert!(svg.contains("stroke=\"#E66E14\""), "system line");
    assert!(stdout.contains("(CDF of TTFB, both crawls)"), "{stdout}");

    // The namespace and its /etc/netns files are gone.
    let name = format!("crawldns-demo-{pid}");
    assert!(
        !Path::new("/run/netns").join(&name).exists(),
        "{name} left behind"
    );
    assert!(
        !Path::new("/etc/netns").join(&name).exists(),
        "/etc/netns/{name} left behind"
    );
}

#[test]
fn no_system_path_shows_crawldns_alone() {
    let dir = TempDir::new("demo-alone");
    let plot = dir.path().join("alone.svg");
    let (_, out) = small_demo(&["--no-system-path"], &plot);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("system path: skipped (--no-system-path)"),
        "{stdout}"
    );
    assert_eq!(row(&stdout, "errors"), ["0"], "{stdout}");
    assert_eq!(row(&stdout, "ok"), ["40/40"], "{stdout}");
    assert!(!stdout.contains("ratio"), "{stdout}");
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.contains("\ncrawldns\n</text>"));
    assert!(!svg.contains("system path"));
}

#[test]
fn an_unwritable_plot_path_is_exit_1() {
    let (_, out) = small_demo(
        &["--no-system-path"],
        Path::new("/nonexistent/dir/plot.svg"),
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write /nonexistent/dir/"),
        "{stderr}"
    );
}

#[test]
fn leftovers_of_a_dead_run_are_removed() {
    if !namespaces_possible() {
        eprintln!("skipped: creating network namespaces needs root (and `ip`)");
        return;
    }
    // A pid above pid_max can never be alive.
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(4_194_304);
    let name = format!("crawldns-demo-{}", pid_max + 1);
    let status = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .expect("ip runs");
    assert!(status.success(), "ip netns add {name}");
    let etc = Path::new("/etc/netns").join(&name);
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();

    let dir = TempDir::new("demo-leftover");
    let (_, out) = small_demo(&[], &dir.path().join("p.svg"));
    let (stdout, stderr) = texts(&out);
    let removed = !Path::new("/run/netns").join(&name).exists() && !etc.exists();
    if !removed {
        let _ = Command::new("ip").args(["netns", "delete", &name]).status();
        let _ = std::fs::remove_dir_all(&etc);
    }
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(removed, "the leftover {name} was not removed");
}

#[test]
fn the_system_path_child_refuses_to_run_outside_its_namespace() {
    let out = crawldns()
        .args(["demo-system-path", "--scenario", "{}"])
        .env_remove("CRAWLDNS_DEMO_NETNS")
        .stdin(Stdio::null())
        .output()
        .expect("crawldns runs");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("only runs inside `crawldns demo`'s network namespace"),
        "{stderr}"
    );
}
