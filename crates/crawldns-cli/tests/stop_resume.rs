//! A real SIGINT to the built binary mid-run: exit 130 with every counted
//! record written whole; `--resume` then does the rest, and together the
//! two runs cover every input exactly once. Also: a full output fails
//! clearly and keeps what it wrote readable.

crawldns_testkit::bind_crawldns_binary!();

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crawldns_testkit::cli::{texts, Bed, BedConfig, TempDir};
use serde_json::Value;

fn sigint(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) with a live child's pid and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
}

/// Waits (bounded) until `ready` holds, checking every 5 ms.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every line of `path` parsed as JSON; panics on a partial or bad line.
fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("output file");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a cut-off last line"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// `N` of "interrupted: N records written".
fn interrupted_count(stderr: &str) -> usize {
    let at = stderr
        .find("interrupted: ")
        .unwrap_or_else(|| panic!("no interrupted line in {stderr}"));
    stderr[at + "interrupted: ".len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stderr}"))
}

/// `COMMAND OPTIONS --nameserver NS -o OUT LIST [--resume]`.
fn command_args(command: &[&str], bed: &Bed, out: &Path, list: &Path, resume: bool) -> Vec<String> {
    let mut args: Vec<String> = command.iter().map(|a| (*a).to_owned()).collect();
    args.extend(["--nameserver".to_owned(), bed.nameserver(), "-o".to_owned()]);
    args.push(out.display().to_string());
    args.push(list.display().to_string());
    if resume {
        args.push("--resume".into());
    }
    args
}

fn counts<'a>(keys: impl Iterator<Item = &'a str>) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for key in keys {
        *map.entry(key.to_owned()).or_default() += 1;
    }
    map
}

#[test]
fn fetch_stops_on_sigint_and_resume_does_the_rest() {
    let bed = Bed::start(BedConfig {
        hosts: 20,
        http_delay: Duration::from_millis(100),
        ..BedConfig::default()
    });
    let dir = TempDir::new("fetch-resume");
    // 400 URLs, each host twice over 10 paths, plus 3 whose body never
    // completes in time: these are in flight when the second signal comes.
    let mut urls: Vec<String> = (0..400)
        .map(|i| bed.url(i % 20, &format!("/p{}", i % 200)))
        .collect();
    for (i, h) in [(5, 1), (6, 2), (7, 3)] {
        urls.insert(i, bed.url(h, "/slow-body"));
    }
    let list = dir.file("urls.txt", &(urls.join("\n") + "\n"));
    let out = dir.path().join("out.jsonl");
    let args = |resume: bool| {
        command_args(
            &["fetch", "--concurrency", "20", "--timeout-ms", "2000"],
            &bed,
            &out,
            &list,
            resume,
        )
    };

    let mut child = crawldns()
        .args(args(false))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("crawldns starts");
    wait_until("60 requests at the farm", || {
        bed.farm().total_stats().requests >= 60
    });
    sigint(&child);
    // The first signal is acknowledged on stderr; the second stops at once
    // (the slow bodies in flight are dropped).
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("stderr line");
    assert!(first.starts_with("SIGINT: stopping"), "{first}");
    sigint(&child);
    let mut rest = String::new();
    for line in stderr.lines() {
        rest.push_str(&line.expect("stderr"));
        rest.push('\n');
    }
    let status = child.wait().expect("crawldns ends");
    assert_eq!(status.code(), Some(130), "{first}{rest}");
    let written = records(&out);
    assert_eq!(interrupted_count(&rest), written.len(), "{rest}");
    assert!(
        written.len() >= 40 && written.len() < urls.len(),
        "{}",
        written.len()
    );
    assert!(
        rest.contains(&format!("fetched {} URLs", written.len())),
        "the summary counts what is in the file: {rest}"
    );
    assert!(written
        .iter()
        .all(|r| r["url"].as_str().is_some() && r["ms"].is_object()));

    let second = crawldns()
        .args(args(true))
        .stdin(Stdio::null())
        .output()
        .expect("crawldns runs");
    let (_, stderr) = texts(&second);
    // The slow bodies time out in the second run: exit 3, every URL done.
    assert_eq!(second.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("resumed: {} URLs already in", written.len())),
        "{stderr}"
    );
    let all = records(&out);
    assert_eq!(
        counts(all.iter().map(|r| r["url"].as_str().unwrap())),
        counts(urls.iter().map(String::as_str)),
        "every input exactly once"
    );
    let timeouts = all
        .iter()
        .filter(|r| r["error"]["class"] == "timeout")
        .count();
    assert_eq!(timeouts, 3, "only the slow bodies fail");
}

#[test]
fn resolve_stops_on_sigint_and_resume_does_the_rest() {
    let bed = Bed::start(BedConfig {
        hosts: 3000,
        dns_delay: Duration::from_millis(40),
        http: false,
        ..BedConfig::default()
    });
    let dir = TempDir::new("resolve-resume");
    let names: Vec<String> = (0..3000).map(|i| format!("h{i}.crawl.test")).collect();
    let list = dir.file("names.txt", &(names.join("\n") + "\n"));
    let out = dir.path().join("out.jsonl");
    let args = |resume: bool| {
        command_args(
            &["resolve", "--type", "A", "--concurrency", "50"],
            &bed,
            &out,
            &list,
            resume,
        )
    };
    let child = crawldns()
        .args(args(false))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("crawldns starts");
    wait_until("300 queries at the server", || {
        bed.dns().counters().totals().udp_queries >= 300
    });
    sigint(&child);
    let first = child.wait_with_output().expect("crawldns ends");
    let (_, stderr) = texts(&first);
    assert_eq!(first.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("SIGINT: stopping"), "{stderr}");
    let written = records(&out);
    assert_eq!(interrupted_count(&stderr), written.len(), "{stderr}");
    assert!(
        written.len() >= 250 && written.len() < names.len(),
        "{}",
        written.len()
    );
    assert!(written
        .iter()
        .all(|r| r["error"].is_null() && r["ttl"].is_u64()));

    let second = crawldns()
        .args(args(true))
        .stdin(Stdio::null())
        .output()
        .expect("crawldns runs");
    let (_, stderr) = texts(&second);
    assert_eq!(second.status.code(), Some(0), "{stderr}");
    let all = records(&out);
    assert_eq!(
        counts(all.iter().map(|r| r["name"].as_str().unwrap())),
        counts(names.iter().map(String::as_str)),
        "every input exactly once"
    );
}

#[test]
fn a_full_disk_is_a_clear_error() {
    let bed = Bed::start(BedConfig::default());
    let urls: Vec<String> = (0..50).map(|i| bed.url(i % 20, &format!("/{i}"))).collect();
    let dir = TempDir::new("full");
    let list = dir.file("urls.txt", &(urls.join("\n") + "\n"));
    for target in ["-o", "stdout"] {
        let mut command = crawldns();
        command.args(["fetch", "--nameserver", &bed.nameserver()]);
        if target == "-o" {
            command.args(["-o", "/dev/full"]);
        } else {
            command.stdout(std::fs::File::create("/dev/full").expect("/dev/full"));
        }
        let out = command
            .arg(&list)
            .stderr(Stdio::piped())
            .output()
            .expect("crawldns runs");
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let name = if target == "-o" {
            "/dev/full"
        } else {
            "stdout"
        };
        assert!(
            stderr.contains(&format!(
                "error: cannot write to {name}: No space left on device"
            )),
            "{stderr}"
        );
    }
}

/// A 256 KiB tmpfs (mounting needs root): the disk fills mid-crawl.
#[test]
#[ignore = "needs root (mounts a small tmpfs); run by scripts/test.sh as root"]
fn root_only_a_disk_full_mid_crawl_stops_with_whole_records() {
    let bed = Bed::start(BedConfig::default());
    let urls: Vec<String> = (0..2000)
        .map(|i| bed.url(i % 20, &format!("/{i}")))
        .collect();
    let dir = TempDir::new("tmpfs");
    let list = dir.file("urls.txt", &(urls.join("\n") + "\n"));
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mount)
        .status()
        .expect("mount runs");
    assert!(mounted.success(), "mount -t tmpfs failed");
    let out_path = mount.join("out.jsonl");
    let out = crawldns()
        .args(["fetch", "--nameserver", &bed.nameserver(), "-o"])
        .arg(&out_path)
        .arg(&list)
        .stderr(Stdio::piped())
        .output()
        .expect("crawldns runs");
    let written = std::fs::read_to_string(&out_path).expect("output file");
    let _ = std::process::Command::new("umount").arg(&mount).status();
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains("out.jsonl"),
        "{stderr}"
    );
    assert!(written.ends_with('\n'), "the file ends with a whole record");
    let lines: Vec<Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a whole record"))
        .collect();
    assert!(
        lines.len() > 300 && lines.len() < urls.len(),
        "{} records",
        lines.len()
    );
}
