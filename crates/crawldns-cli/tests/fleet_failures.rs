//! Fleet failures against real servers on loopback: Redis restarted
//! mid-crawl (AOF on, workers and collector wait it out), a worker stopped
//! with SIGTERM (its in-flight entries and leases are given back at once),
//! Unbound down (fail over to a second nameserver; without one, DNS errors
//! are reported as DNS errors), and credentials in the Redis URL never
//! printed.

crawldns_testkit::bind_crawldns_binary!();
mod fleet_support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crawldns_testkit::cli::TempDir;
use fleet_support::*;

fn work_args(nameservers: &[String], lease_ms: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    for ns in nameservers {
        args.extend(["--nameserver".to_owned(), ns.clone()]);
    }
    args.extend(
        [
            "--strategy",
            "v4",
            "--global-connections",
            "16",
            "--lease-ms",
            lease_ms,
            "--partitions",
            "8",
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn spawn_collector(dir: &std::path::Path, redis: &str, namespace: &str) -> std::process::Child {
    crawldns()
        .args(["fleet", "collect", "--namespace", namespace, "-o"])
        .arg(dir.join(format!("{namespace}.jsonl")))
        .env("CRAWLDNS_REDIS_URL", redis)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{namespace}-collect.err"))).unwrap())
        .spawn()
        .unwrap()
}

fn wait_child(child: &mut std::process::Child, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what} failed: {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not finish in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn assert_every_url_once(path: &std::path::Path, list: &[String]) {
    let out = read_output(path);
    assert_eq!(
        out.len(),
        list.len(),
        "results for {} of {} URLs",
        out.len(),
        list.len()
    );
    for (id, (url, _, class)) in &out {
        assert_eq!(url, &list[usize::try_from(id - 1).unwrap()], "id {id}");
        assert_eq!(class, "ok", "id {id}");
    }
}

#[test]
fn redis_restarted_mid_crawl_loses_nothing() {
    let dir = TempDir::new("fleet-restart");
    let farm = Farm::start(100, Duration::from_millis(50));
    let port = free_port();
    let mut redis_daemon = start_redis(dir.path(), port, None);
    let redis = format!("redis://127.0.0.1:{port}");
    let list = url_list(&farm, 1000, 100);
    let file = dir.file("urls.txt", &(list.join("\n") + "\n"));
    let args = work_args(&[farm.dns_addr().to_string()], "3000", &["--until-done"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fleet_cmd(
        &redis,
        &[
            "enqueue",
            "--namespace",
            "r",
            "--partitions",
            "8",
            file.to_str().unwrap(),
        ],
    );
    let fleet = Fleet::connect(&redis, "r");
    let workers: Vec<Worker> = ["a", "b"]
        .iter()
        .map(|id| Worker::spawn(dir.path(), &redis, "r", id, &args))
        .collect();
    let mut collector = spawn_collector(dir.path(), &redis, "r");
    fleet.wait_until("a quarter of the URLs done", Duration::from_secs(60), |s| {
        s.queued <= 750
    });
    drop(fleet);

    // Restart: SIGTERM (Redis writes its AOF and exits), then the same
    // port and directory again.
    redis_daemon.terminate();
    let _redis_again = start_redis(dir.path(), port, None);
    let stats: Vec<_> = workers
        .into_iter()
        .map(|w| w.finish(Duration::from_secs(120)))
        .collect();
    wait_child(&mut collector, Duration::from_secs(60), "the collector");
    assert_every_url_once(&dir.path().join("r.jsonl"), &list);
    let errors: u64 = stats.iter().map(|s| s.redis_errors).sum();
    let done: u64 = stats.iter().map(|s| s.done).sum();
    assert!(
        errors > 0,
        "the workers never noticed the restart: {stats:?}"
    );
    assert!(done >= 1000, "{stats:?}");
}

#[test]
fn sigterm_gives_back_in_flight_entries_and_leases_at_once() {
    let dir = TempDir::new("fleet-sigterm");
    // Slow responses: plenty in flight when the signal comes.
    let farm = Farm::start(40, Duration::from_millis(300));
    let port = free_port();
    let _redis = start_redis(dir.path(), port, None);
    let redis = format!("redis://127.0.0.1:{port}");
    let list = url_list(&farm, 400, 40);
    let file = dir.file("urls.txt", &(list.join("\n") + "\n"));
    // A lease of 60 s and a claim idle time of 60 s: only giving back at
    // once lets the other worker finish within the bound below.
    let dns = [farm.dns_addr().to_string()];
    let stay = work_args(&dns, "60000", &["--until-done", "--claim-idle-ms", "60000"]);
    let stay: Vec<&str> = stay.iter().map(String::as_str).collect();
    let leave = work_args(
        &dns,
        "60000",
        &["--claim-idle-ms", "60000", "--drain-ms", "0"],
    );
    let leave: Vec<&str> = leave.iter().map(String::as_str).collect();
    let fleet = Fleet::connect(&redis, "t");
    let stayer = Worker::spawn(dir.path(), &redis, "t", "stayer", &stay);
    let leaver = Worker::spawn(dir.path(), &redis, "t", "leaver", &leave);
    fleet.wait_until(
        "both workers holding partitions",
        Duration::from_secs(30),
        |s| {
            s.partition.len() == 8
                && s.partition.iter().all(|p| p.owner.is_some())
                && s.partition
                    .iter()
                    .any(|p| p.owner.as_deref() == Some("leaver"))
                && s.partition
                    .iter()
                    .any(|p| p.owner.as_deref() == Some("stayer"))
        },
    );
    let mut collector = spawn_collector(dir.path(), &redis, "t");
    fleet_cmd(
        &redis,
        &["enqueue", "--namespace", "t", file.to_str().unwrap()],
    );
    fleet.wait_until("the leaver fetching", Duration::from_secs(30), |s| {
        s.workers
            .get("leaver")
            .is_some_and(|w| w.stats.in_flight > 0 && w.stats.done > 0)
    });
    let signalled = Instant::now();
    signal(&leaver.child, libc::SIGTERM);
    let left = leaver.finish(Duration::from_secs(20));
    assert_eq!(left.state, "stopped");
    assert!(left.requeued > 0, "nothing was in flight: {left:?}");
    assert!(left.partitions.is_empty(), "leases kept: {left:?}");
    let stayed = stayer.finish(Duration::from_secs(50));
    let took = signalled.elapsed();
    wait_child(&mut collector, Duration::from_secs(30), "the collector");
    assert!(
        took < Duration::from_secs(50),
        "took {took:?}: the leases were not given back at once"
    );
    assert_eq!(
        stayed.claimed, 0,
        "requeued entries are new entries, not claims"
    );
    assert_every_url_once(&dir.path().join("t.jsonl"), &list);
}

#[test]
fn unbound_down_fails_over_and_dns_errors_stay_dns_errors() {
    let dir = TempDir::new("fleet-unbound-down");
    let farm = Farm::start(20, Duration::ZERO);
    let port = free_port();
    let _redis = start_redis(dir.path(), port, None);
    let redis = format!("redis://127.0.0.1:{port}");
    let unbound_port = free_port();
    let mut unbound = start_unbound(&dir.path().join("unbound"), unbound_port, farm.dns_addr());
    let unbound_addr = format!("127.0.0.1:{unbound_port}");
    let second_port = free_port();
    let mut second = start_unbound(&dir.path().join("unbound2"), second_port, farm.dns_addr());
    let second_addr = format!("127.0.0.1:{second_port}");
    unbound.terminate();
    let list = url_list(&farm, 100, 20);
    let file = dir.file("urls.txt", &(list.join("\n") + "\n"));
    let quick = ["--until-done", "--dns-timeout-ms", "300", "--attempts", "1"];

    // The first nameserver is down: every lookup fails over to the second.
    // The worker also archives what it fetches (--warc).
    fleet_cmd(
        &redis,
        &["enqueue", "--namespace", "f", file.to_str().unwrap()],
    );
    let warc = dir.path().join("w.warc.gz");
    let warc_args = ["--warc", warc.to_str().unwrap()];
    let args = work_args(
        &[unbound_addr.clone(), second_addr],
        "3000",
        &[&quick[..], &warc_args].concat(),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stats = Worker::spawn(dir.path(), &redis, "f", "w", &args).finish(Duration::from_secs(60));
    assert_eq!(stats.by_class.get("ok"), Some(&100), "{stats:?}");
    let venv = crawldns_testkit::cli::test_venv_bin();
    let check = std::process::Command::new(venv.join("warcio"))
        .args(["check", warc.to_str().unwrap()])
        .output()
        .expect("warcio check runs");
    assert!(check.status.success(), "warcio check: {check:?}");
    let index = std::process::Command::new(venv.join("warcio"))
        .args([
            "index",
            "-f",
            "warc-type,warc-target-uri",
            warc.to_str().unwrap(),
        ])
        .output()
        .expect("warcio index runs");
    let index = String::from_utf8_lossy(&index.stdout);
    let mut archived: Vec<String> = index
        .lines()
        .filter(|l| l.contains("\"response\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["warc-target-uri"].as_str().map(str::to_owned))
        .collect();
    archived.sort();
    let mut expected = list.clone();
    expected.sort();
    assert_eq!(archived, expected, "one response record per URL");
    fleet_cmd(
        &redis,
        &[
            "collect",
            "--namespace",
            "f",
            "-o",
            dir.path().join("f.jsonl").to_str().unwrap(),
        ],
    );
    assert_every_url_once(&dir.path().join("f.jsonl"), &list);

    // No nameserver up: DNS errors, reported as DNS errors.
    second.terminate();
    fleet_cmd(
        &redis,
        &["enqueue", "--namespace", "d", file.to_str().unwrap()],
    );
    let args = work_args(&[unbound_addr], "3000", &quick);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stats = Worker::spawn(dir.path(), &redis, "d", "w", &args).finish(Duration::from_secs(60));
    assert_eq!(stats.by_class.get("dns"), Some(&100), "{stats:?}");
    fleet_cmd(
        &redis,
        &[
            "collect",
            "--namespace",
            "d",
            "-o",
            dir.path().join("d.jsonl").to_str().unwrap(),
        ],
    );
    let out = read_output(&dir.path().join("d.jsonl"));
    assert_eq!(out.len(), 100);
    assert!(
        out.values().all(|(_, _, class)| class.starts_with("dns: ")),
        "{out:?}"
    );
}

#[test]
fn credentials_never_reach_logs_or_output() {
    const PASSWORD: &str = "s3cret-Pa55word";
    let dir = TempDir::new("fleet-creds");
    let port = free_port();
    let _redis = start_redis(dir.path(), port, Some(PASSWORD));
    let good = format!("redis://:{PASSWORD}@127.0.0.1:{port}");
    let wrong = format!("redis://:{PASSWORD}-wrong@127.0.0.1:{port}");
    let down = format!("redis://:{PASSWORD}@127.0.0.1:{}", free_port());
    let list = "http://h1.crawl.test:1/a\nftp://not-fetched/\n";
    let file = dir.file("urls.txt", list);
    let file = file.to_str().unwrap();
    let out_file = dir.path().join("c.jsonl");
    let out_file = out_file.to_str().unwrap();
    // Resolution fails fast (nothing listens on the nameserver): the point
    // is what is printed, not what is fetched.
    let ns = SocketAddr::from(([127, 0, 0, 1], free_port())).to_string();
    let mut printed = String::new();
    let mut run = |url: &str, args: &[&str], expect_ok: bool| {
        let out = crawldns()
            .args(args)
            .env("CRAWLDNS_REDIS_URL", url)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.success(), expect_ok, "{args:?}: {text}");
        printed.push_str(&text);
        text
    };
    run(&good, &["fleet", "enqueue", "--namespace", "c", file], true);
    run(
        &good,
        &[
            "fleet",
            "work",
            "--namespace",
            "c",
            "--until-done",
            "--nameserver",
            &ns,
            "--dns-timeout-ms",
            "100",
            "--attempts",
            "1",
        ],
        true,
    );
    run(&good, &["fleet", "status", "--namespace", "c"], true);
    run(
        &good,
        &["fleet", "status", "--namespace", "c", "--json"],
        true,
    );
    run(
        &good,
        &["fleet", "collect", "--namespace", "c", "-o", out_file],
        true,
    );
    let wrong_text = run(&wrong, &["fleet", "status"], false);
    assert!(
        wrong_text.contains("redis://:***@127.0.0.1"),
        "{wrong_text}"
    );
    let down_text = run(&down, &["fleet", "status"], false);
    assert!(down_text.contains("redis://:***@127.0.0.1"), "{down_text}");
    // On the command line too (the URL shows in `ps`, but not in output).
    let out = crawldns()
        .args(["fleet", "status", "--redis", &wrong])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(!out.status.success());
    printed.push_str(&String::from_utf8_lossy(&out.stderr));
    let bad = crawldns()
        .args([
            "fleet",
            "status",
            "--redis",
            &format!("http://:{PASSWORD}@x/"),
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    printed.push_str(&String::from_utf8_lossy(&bad.stderr));
    assert!(
        !printed.contains(PASSWORD),
        "the password was printed:\n{printed}"
    );
    assert_eq!(read_output(std::path::Path::new(out_file)).len(), 2);
}

#[test]
fn deploy_unbound_conf_is_valid() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/unbound.conf");
    let out = std::process::Command::new(find("unbound-checkconf"))
        .arg(&conf)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("no errors"), "{text}");
}
