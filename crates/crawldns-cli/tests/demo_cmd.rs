//! `crawldns demo` as a user runs it, in a small variant. The system path
//! (glibc in a network namespace) needs root: the tests that check it are
//! `#[ignore]`d and run by the root-only step of `scripts/test.sh` (CI runs
//! as root); elsewhere they show as skipped. Without root the demo must say
//! plainly that the system path was skipped: checked by running it as an
//! unprivileged user (as root) or as ourselves (otherwise).

crawldns_testkit::bind_crawldns_binary!();

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crawldns_testkit::cli::{texts, TempDir};

/// Why the root-only tests of this file need root.
const NEEDS_ROOT: &str = "network namespaces need root (and `ip`)";

/// The uid and gid of `nobody`, what the demo runs as to show how it
/// behaves without root when the tests run as root.
const NOBODY: u32 = 65_534;

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
    small_demo_as(crawldns(), extra, plot)
}

/// [`small_demo`] with `command` as the binary (to run it as another user).
fn small_demo_as(mut command: Command, extra: &[&str], plot: &Path) -> (u32, std::process::Output) {
    let child = command
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
#[ignore = "needs root: network namespaces for the system path"]
fn a_small_demo_prints_the_table_and_plots_the_four_crawls() {
    assert!(namespaces_possible(), "{NEEDS_ROOT}");
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

    // Four columns (the system path bare and with a 10 s cache, then
    // crawldns without and with pre-warm) and a ratio against each of the
    // first two.
    let header = stdout
        .lines()
        .find(|l| l.contains("system path") && l.contains("crawldns") && l.contains("ratio"))
        .unwrap_or_else(|| panic!("no table header in:\n{stdout}"));
    let titles: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        titles,
        [
            "system path",
            "system + cache",
            "crawldns",
            "crawldns",
            "ratio",
            "ratio"
        ],
        "{header}"
    );
    assert!(
        stdout.contains("x32 + 10 s cache") && stdout.contains("vs cached"),
        "{stdout}"
    );
    assert!(stdout.contains("no pre-warm"), "{stdout}");
    for name in [
        "TTFB p50",
        "TTFB p99 ",
        "TTFB p99.9",
        "DNS p50",
        "DNS p99",
        "wall time",
    ] {
        let cells = row(&stdout, name);
        assert_eq!(cells.len(), 6, "{name}: {cells:?}");
        assert!(cells[..4].iter().all(|c| c.ends_with(" ms")), "{cells:?}");
        assert!(
            cells[4..].iter().all(|c| c.ends_with('x')),
            "{name} ratios: {cells:?}"
        );
    }
    assert_eq!(row(&stdout, "errors"), ["0", "0", "0", "0"], "{stdout}");
    assert_eq!(
        row(&stdout, "ok"),
        ["40/40", "40/40", "40/40", "40/40"],
        "{stdout}"
    );
    // The notes say what the middle column is.
    assert!(
        stdout.contains("system + cache keeps each host's addresses 10 s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("DNS is the resolution time of new connections"),
        "{stdout}"
    );

    // The plot has the four series, labelled, each in its own color.
    assert!(
        svg.contains("\nsystem path (getaddrinfo x32)\n</text>"),
        "system series label"
    );
    assert!(
        svg.contains("\nsystem + cache (x32 + 10 s cache)\n</text>"),
        "cached series label"
    );
    assert!(svg.contains("stroke=\"#E66E14\""), "system line");
    assert!(svg.contains("stroke=\"#28963C\""), "cached line");
    assert!(
        svg.contains("\ncrawldns (no pre-warm)\n</text>"),
        "no-pre-warm series label"
    );
    assert!(stdout.contains("(CDF of TTFB, 4 crawls)"), "{stdout}");

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

/// Without root there is no system path: the demo says why, shows
/// crawldns alone, and still plots it. As root, the demo runs as `nobody`
/// to see it.
#[test]
fn without_root_the_demo_says_the_system_path_was_skipped() {
    let dir = TempDir::new("demo-unprivileged");
    let mut command = crawldns();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // `nobody` must be able to write the plot.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod the temporary directory");
        // ... and to run the binary, which a checkout in a private
        // directory (`mktemp -d` is 0700) would hide from it: a copy here.
        let binary = dir.path().join("crawldns");
        std::fs::copy(env!("CARGO_BIN_EXE_crawldns"), &binary).expect("copy the binary");
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the binary");
        command = Command::new(&binary);
        command.uid(NOBODY).gid(NOBODY);
    }
    let plot = dir.path().join("unprivileged.svg");
    let (_, out) = small_demo_as(command, &[], &plot);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("system path: skipped: not running as root"),
        "{stdout}"
    );
    assert!(stdout.contains("showing crawldns alone."), "{stdout}");
    assert_eq!(row(&stdout, "ok"), ["40/40", "40/40"], "{stdout}");
    assert!(!stdout.contains("ratio"), "{stdout}");
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.contains("\ncrawldns\n</text>"), "crawldns series label");
    assert!(stdout.contains("(CDF of TTFB, crawldns only)"), "{stdout}");
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
    assert_eq!(row(&stdout, "errors"), ["0", "0"], "{stdout}");
    assert_eq!(row(&stdout, "ok"), ["40/40", "40/40"], "{stdout}");
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
#[ignore = "needs root: network namespaces"]
fn leftovers_of_a_dead_run_are_removed() {
    assert!(namespaces_possible(), "{NEEDS_ROOT}");
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
