//! `crawldns resolve` as a user runs it: the built binary against the
//! testbed's DNS server (started in this process, on loopback), including
//! the bad-input cases and their exit codes.

crawldns_testkit::bind_crawldns_binary!();

use std::process::Stdio;

use crawldns_testkit::cli::{json_lines, texts, Bed, BedConfig, TempDir};
use serde_json::Value;

fn dns_only() -> Bed {
    Bed::start(BedConfig {
        http: false,
        ..BedConfig::default()
    })
}

/// The record of input line `line`.
fn by_line(records: &[Value], line: u64) -> &Value {
    records
        .iter()
        .find(|r| r["line"] == line)
        .unwrap_or_else(|| panic!("no record for line {line} in {records:?}"))
}

#[test]
fn json_lines_for_answers_nxdomain_and_an_invalid_line() {
    let bed = dns_only();
    let dir = TempDir::new("resolve-json");
    let names = dir.file(
        "names.txt",
        "h1.crawl.test\n# a comment\n\nnope.crawl.test\na b.crawl.test\n  C7.crawl.test.  \n",
    );
    let out = run(
        &[
            "resolve",
            "--nameserver",
            &bed.nameserver(),
            "--strategy",
            "v4",
            names.to_str().unwrap(),
        ],
        "",
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(records.len(), 4, "{stdout}");

    let h1 = by_line(&records, 1);
    assert_eq!(h1["name"], "h1.crawl.test");
    assert_eq!(h1["type"], "IP");
    assert_eq!(h1["addresses"], serde_json::json!(["127.1.0.2"]));
    assert_eq!(h1["ttl"], 300);
    assert_eq!(h1["cache_ttl"], 300);
    assert_eq!(h1["rcode"], "NOERROR");
    assert_eq!(h1["error"], Value::Null);
    assert!(h1["ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{h1}");

    let nope = by_line(&records, 4);
    assert_eq!(nope["name"], "nope.crawl.test");
    assert_eq!(nope["addresses"], serde_json::json!([]));
    assert_eq!(nope["ttl"], Value::Null);
    assert_eq!(nope["rcode"], "NXDOMAIN");
    assert_eq!(nope["error"], "nxdomain");

    let invalid = by_line(&records, 5);
    assert_eq!(invalid["name"], "a b.crawl.test");
    assert_eq!(invalid["error"], "invalid_name");
    assert_eq!(invalid["rcode"], Value::Null);

    // Trimmed, case and final dot as given; resolved all the same.
    let c7 = by_line(&records, 6);
    assert_eq!(c7["name"], "C7.crawl.test.");
    assert_eq!(c7["addresses"], serde_json::json!(["127.1.0.8"]));

    assert!(
        stderr.contains("line 5: \"a b.crawl.test\": invalid name"),
        "{stderr}"
    );
    assert!(
        stderr.contains("resolved 4 names (1 type, 4 lookups)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(": 2 ok, 1 invalid_name, 1 nxdomain"),
        "{stderr}"
    );
    assert!(stderr.contains("latency: p50 "), "{stderr}");
}

#[test]
fn text_format_from_stdin_with_several_types_exits_0() {
    let bed = dns_only();
    let out = run(
        &[
            "resolve",
            "--nameserver",
            &bed.nameserver(),
            "--format",
            "text",
            "--type",
            "A",
            "--type",
            "cname",
            "-",
        ],
        "c7.crawl.test\nh3.crawl.test\n",
    );
    let (stdout, stderr) = texts(&out);
    // h3 has no CNAME (NODATA), so not everything succeeded.
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].starts_with("c7.crawl.test A 127.1.0.8 ttl=300 "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("c7.crawl.test CNAME h7.crawl.test ttl=300 "),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("h3.crawl.test A 127.1.0.4 ttl=300 "),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with("h3.crawl.test CNAME error=nodata rcode=NOERROR "),
        "{stdout}"
    );
    for line in &lines {
        assert!(line.ends_with("ms"), "{line}");
    }

    let out = run(
        &["resolve", "--nameserver", &bed.nameserver(), "--type", "A"],
        "h1.crawl.test\nh2.crawl.test\n",
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    assert_eq!(json_lines(&out).len(), 2);
}

#[test]
fn an_unreadable_file_is_exit_1_with_the_path() {
    let missing = "/nonexistent/crawldns/names.txt";
    let out = run(&["resolve", "--nameserver", "127.0.0.1:5353", missing], "");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!("error: cannot read {missing}: No such file")),
        "{stderr}"
    );

    let dir = TempDir::new("resolve-dir");
    let out = run(
        &[
            "resolve",
            "--nameserver",
            "127.0.0.1:5353",
            dir.path().to_str().unwrap(),
        ],
        "",
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("it is a directory"), "{stderr}");
}

#[test]
fn bad_nameservers_and_options_are_exit_2() {
    let dir = TempDir::new("resolve-exit-2");
    let empty = dir.file("empty.conf", "# no nameserver here\noptions timeout:1\n");
    let empty_resolv_conf = format!("--resolv-conf={}", empty.display());
    for (args, expected) in [
        (
            vec!["resolve", "--nameserver", "dns.example"],
            "invalid nameserver \"dns.example\"",
        ),
        (
            vec!["resolve", "--nameserver", "127.0.0.1:99999"],
            "port 99999 is out of range (1 to 65535)",
        ),
        (
            vec!["resolve", &empty_resolv_conf],
            "empty.conf names none): pass --nameserver IP[:PORT]",
        ),
        (vec!["resolve"], "no nameserver"),
        (
            vec!["resolve", "--nameserver", "127.0.0.1", "--concurrency", "0"],
            "--concurrency",
        ),
        (
            vec!["resolve", "--nameserver", "127.0.0.1", "--type", "NAPTR"],
            "--type",
        ),
    ] {
        let out = run(&args, "h1.crawl.test\n");
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
}

#[test]
fn a_resolv_conf_that_cannot_be_read_is_exit_1() {
    let out = run(
        &["resolve", "--resolv-conf=/nonexistent/resolv.conf"],
        "h1.crawl.test\n",
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot use --resolv-conf=/nonexistent/resolv.conf"),
        "{stderr}"
    );
}

#[test]
fn resolv_conf_brings_servers_and_options() {
    let bed = dns_only();
    let dir = TempDir::new("resolv-conf");
    // Nothing listens on 127.77.0.1:53: the kernel answers with ICMP port
    // unreachable, and crawldns moves on at once. (A resolv.conf cannot name
    // a port, so the testbed comes with --nameserver.)
    let conf = dir.file(
        "resolv.conf",
        "nameserver 127.77.0.1\noptions timeout:1 attempts:1\n",
    );
    let resolv_conf = format!("--resolv-conf={}", conf.display());

    // The refusing server first, then the testbed: no timeout is waited.
    let out = run(
        &[
            "resolve",
            &resolv_conf,
            "--nameserver",
            &bed.nameserver(),
            "--type",
            "A",
            "--timeout-ms",
            "3000",
        ],
        "h5.crawl.test\n",
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(records[0]["addresses"], serde_json::json!(["127.1.0.6"]));
    let ms = records[0]["ms"].as_f64().unwrap();
    assert!(ms < 2500.0, "the refusal was not waited out: {ms}");
    assert!(stderr.contains("0 timeouts"), "{stderr}");

    // The file alone: its one server, refusing.
    let out = run(&["resolve", &resolv_conf, "--type", "A"], "h5.crawl.test\n");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(records[0]["error"], "io");
    assert_eq!(records[0]["rcode"], Value::Null);
    let message = records[0]["message"].as_str().unwrap();
    assert!(message.contains("refused"), "{message}");
    assert!(message.contains("tried: 127.77.0.1:53 io)"), "{message}");
}

#[test]
#[ignore = "needs root: binds 127.77.0.2:53"]
fn resolv_conf_timeout_and_attempts_apply_to_a_silent_server() {
    // A server that receives and never answers, on port 53 (resolv.conf
    // cannot name another port): binding it needs root.
    let silent = std::net::UdpSocket::bind("127.77.0.2:53").expect("binding port 53 needs root");
    let dir = TempDir::new("resolv-conf-silent");
    let conf = dir.file(
        "resolv.conf",
        "nameserver 127.77.0.2\noptions timeout:1 attempts:1\n",
    );
    let resolv_conf = format!("--resolv-conf={}", conf.display());
    let out = run(&["resolve", &resolv_conf, "--type", "A"], "h5.crawl.test\n");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(records[0]["error"], "timeout");
    assert_eq!(records[0]["rcode"], Value::Null);
    let message = records[0]["message"].as_str().unwrap();
    assert!(
        message.contains("tried: 127.77.0.2:53 timeout)"),
        "{message}"
    );
    let ms = records[0]["ms"].as_f64().unwrap();
    assert!(ms >= 900.0, "resolv.conf's timeout:1: {ms}");
    assert!(stderr.contains("1 timeout"), "{stderr}");
    // Exactly one query reached the silent server (attempts:1).
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let mut received = 0;
    while silent.recv(&mut buf).is_ok() {
        received += 1;
    }
    assert_eq!(received, 1);
}

#[test]
fn a_failed_write_to_stdout_is_reported_and_exit_1() {
    let bed = dns_only();
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full here");
        return;
    };
    let out = crawldns()
        .args(["resolve", "--nameserver", &bed.nameserver(), "--type", "A"])
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped");
            stdin.write_all(b"h1.crawl.test\nh2.crawl.test\n")?;
            drop(stdin);
            child.wait_with_output()
        })
        .expect("crawldns runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
}

/// `--bulk` with typed lookups goes through `Resolver::bulk`: its records
/// are the resolver path's, field for field (timing aside), for answers,
/// NXDOMAIN, NODATA, and the names it leaves to the resolver (an IP
/// literal, upper case, an invalid line). The cache is not used in bulk,
/// so the comparison is with `--no-cache`.
#[test]
fn bulk_typed_lookups_give_the_resolver_path_s_records() {
    let bed = dns_only();
    let dir = TempDir::new("resolve-bulk-typed");
    let list: String = (0..30).map(|i| format!("h{i}.crawl.test\n")).collect();
    let names = dir.file(
        "names.txt",
        &format!("{list}nope.crawl.test\n192.0.2.1\nH5.Crawl.Test\nbad..name\n"),
    );
    let nameserver = bed.nameserver();
    let resolve = |mode: &[&str]| {
        let mut args = vec![
            "resolve",
            "--nameserver",
            &nameserver,
            "--type",
            "A",
            "--type",
            "AAAA",
        ];
        args.extend_from_slice(mode);
        args.push(names.to_str().unwrap());
        let out = run(&args, "");
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(3), "{mode:?}: {stdout}\n{stderr}");
        let mut records: Vec<Value> = json_lines(&out)
            .into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("ms");
                r
            })
            .collect();
        records.sort_by_key(|r| (r["line"].as_u64(), r["type"].to_string()));
        records
    };
    let bulk = resolve(&["--bulk"]);
    assert_eq!(bulk.len(), 34 * 2);
    let h1_a = bulk
        .iter()
        .find(|r| r["name"] == "h1.crawl.test" && r["type"] == "A")
        .unwrap();
    assert_eq!(h1_a["addresses"], serde_json::json!(["127.1.0.2"]));
    let plain = resolve(&["--no-cache"]);
    assert_eq!(plain.len(), bulk.len());
    for (b, p) in bulk.iter().zip(&plain) {
        assert_eq!(b, p, "--bulk, then --no-cache");
    }
}

#[test]
fn every_batching_mode_resolves_a_list_alike() {
    let bed = dns_only();
    let dir = TempDir::new("resolve-bulk");
    let list: String = (0..300).map(|i| format!("h{i}.crawl.test\n")).collect();
    let names = dir.file("names.txt", &format!("{list}nope.crawl.test\n"));
    let nameserver = bed.nameserver();
    let resolve = |mode: &[&str]| {
        let mut args = vec!["resolve", "--nameserver", &nameserver, "--strategy", "v4"];
        args.extend_from_slice(mode);
        args.push(names.to_str().unwrap());
        let out = run(&args, "");
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(3), "{mode:?}: {stdout}\n{stderr}");
        let mut records: Vec<(u64, Value, Value)> = json_lines(&out)
            .into_iter()
            .map(|r| {
                (
                    r["line"].as_u64().unwrap(),
                    r["addresses"].clone(),
                    r["error"].clone(),
                )
            })
            .collect();
        records.sort_by_key(|r| r.0);
        records
    };
    let bulk = resolve(&["--bulk"]);
    assert_eq!(bulk.len(), 301);
    assert_eq!(bulk[1].1, serde_json::json!(["127.1.0.2"]), "h1");
    assert_eq!(bulk[300].2, "nxdomain");
    assert_eq!(bulk, resolve(&[]), "the default, batching when busy");
    assert_eq!(bulk, resolve(&["--batching", "off"]));
    assert_eq!(bulk, resolve(&["--batching", "always"]));

    let out = run(&["resolve", "--bulk", "--batching", "off", "-"], "");
    assert_eq!(out.status.code(), Some(2), "--bulk and --batching conflict");
    let out = run(&["resolve", "--batching", "sometimes", "-"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(texts(&out).1.contains("when-busy"), "{}", texts(&out).1);
}

/// Every record type beyond addresses has typed JSON fields; `-x` asks
/// for the PTR records of an address's reverse name; text output escapes
/// control bytes of an input line.
#[test]
fn record_types_reverse_lookups_and_escaped_text() {
    let bed = dns_only();
    let ns = bed.nameserver();
    let out = run(
        &[
            "resolve",
            "--nameserver",
            &ns,
            "--type",
            "MX",
            "--type",
            "txt",
            "--type",
            "HTTPS",
        ],
        "h3.crawl.test\n",
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    let of = |t: &str| {
        records
            .iter()
            .find(|r| r["type"] == t)
            .unwrap_or_else(|| panic!("no {t} in {records:?}"))
    };
    assert_eq!(
        of("MX")["records"],
        serde_json::json!([{"preference": 10, "exchange": "mail.crawl.test"}])
    );
    assert_eq!(
        of("TXT")["records"],
        serde_json::json!([{"strings": ["crawldns testbed host 3"]}])
    );
    assert_eq!(
        of("HTTPS")["records"],
        serde_json::json!([{
            "priority": 1, "target": ".", "alpn": ["h2", "http/1.1"],
            "no_default_alpn": false, "port": null,
            "ipv4hint": ["127.1.0.4"], "ipv6hint": [], "ech": false
        }])
    );

    // -x: the testbed serves no reverse zone, so it refuses the reverse
    // name; the error names the name that was asked.
    let out = run(&["resolve", "--nameserver", &ns, "-x"], "127.0.0.1\n::1\n");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(records.len(), 2, "{stdout}");
    for r in &records {
        assert_eq!(r["type"], "PTR");
        assert_eq!(r["error"], "refused", "{r}");
    }
    assert!(
        stdout.contains("1.0.0.127.in-addr.arpa: query refused"),
        "{stdout}"
    );

    // IPv6 literals are addresses, as IPv4 ones are.
    let out = run(
        &["resolve", "--nameserver", &ns, "--format", "text"],
        "::1\n[::1]\n::ffff:1.2.3.4\n",
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("::1 IP ::1 ttl=0"), "{stdout}");
    assert!(stdout.contains("[::1] IP ::1 ttl=0"), "{stdout}");
    assert!(
        stdout.contains("::ffff:1.2.3.4 IP ::ffff:1.2.3.4 ttl=0"),
        "{stdout}"
    );

    // A control byte in an input line never reaches the terminal raw.
    let out = run(
        &["resolve", "--nameserver", &ns, "--format", "text"],
        "bad\u{1b}[31m.crawl.test\n",
    );
    let (stdout, _) = texts(&out);
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(
        stdout.contains("bad\\u{1b}[31m.crawl.test IP error=invalid_name"),
        "{stdout:?}"
    );
}

/// Issue 13 item 3: AAAA left out for want of an IPv6 route is said, in
/// the record and once on stderr; `--ipv6 always` asks anyway.
#[test]
fn a_skipped_aaaa_is_said_once_and_ipv6_always_asks_anyway() {
    let bed = dns_only();
    let nameserver = bed.nameserver();
    let input = "h1.crawl.test\nh2.crawl.test\n";
    let out = run(
        &["resolve", "--nameserver", &nameserver, "--ipv6", "never"],
        input,
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let records = json_lines(&out);
    assert_eq!(records.len(), 2, "{stdout}");
    assert_eq!(
        by_line(&records, 1)["addresses"],
        serde_json::json!(["127.1.0.2"])
    );
    assert!(
        records.iter().all(|r| r["aaaa_skipped"] == true),
        "{stdout}"
    );
    assert_eq!(stderr.matches("no IPv6 route").count(), 1, "{stderr}");

    let out = run(
        &["resolve", "--nameserver", &nameserver, "--ipv6", "always"],
        input,
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let records = json_lines(&out);
    assert_eq!(
        by_line(&records, 1)["addresses"],
        serde_json::json!(["::1", "127.1.0.2"]),
        "{stdout}"
    );
    assert!(
        records.iter().all(|r| r.get("aaaa_skipped").is_none()),
        "{stdout}"
    );
    assert!(!stderr.contains("no IPv6 route"), "{stderr}");
    assert_eq!(
        bed.dns().counters().totals().udp_queries,
        6,
        "2 A, then 2 A and 2 AAAA"
    );
}

/// Issue 13 item 2: with records of TTL 5 (`crawldns testbed --ttl 5`),
/// the default `--type IP` prints the record's TTL, as `--type A` does,
/// not the cache's 30 s floor; the floor shows as `cache_ttl`.
#[test]
fn the_printed_ttl_is_the_records_and_cache_ttl_the_cache_s() {
    let bed = Bed::start(BedConfig {
        http: false,
        dns_ttl: 5,
        ..BedConfig::default()
    });
    let nameserver = bed.nameserver();
    for types in [&["--type", "IP"][..], &[], &["--type", "A"]] {
        let mut args = vec!["resolve", "--nameserver", &nameserver];
        args.extend_from_slice(types);
        let out = run(&args, "h1.crawl.test\n");
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{types:?}: {stderr}");
        let records = json_lines(&out);
        assert_eq!(records.len(), 1, "{stdout}");
        assert_eq!(records[0]["ttl"], 5, "{types:?}: {stdout}");
        assert_eq!(records[0]["cache_ttl"], 30, "{types:?}: {stdout}");
        let text = run(
            &[&args[..], &["--format", "text"]].concat(),
            "h1.crawl.test\n",
        );
        let (stdout, _) = texts(&text);
        assert!(stdout.contains(" ttl=5 "), "{types:?}: {stdout}");
    }
}

/// Issue 13 item 9: `resolve` streams. With stdin kept open (a pipe, not a
/// terminal) the record of a name is printed as its lookup finishes, before
/// the next name is even written.
#[test]
fn results_stream_while_the_input_stays_open() {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::mpsc;
    use std::time::Duration;

    let bed = dns_only();
    let mut child = crawldns()
        .args(["resolve", "--nameserver", &bed.nameserver(), "--type", "A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("crawldns starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // A generous bound, only so that a regression fails instead of hanging.
    let next_line = || {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a record while stdin is still open");
        serde_json::from_str::<Value>(&line).expect("a JSON record")
    };
    for (n, name) in ["h1.crawl.test", "h2.crawl.test"].into_iter().enumerate() {
        writeln!(stdin, "{name}").expect("write a name");
        stdin.flush().expect("flush stdin");
        let record = next_line();
        assert_eq!(record["name"], name);
        assert_eq!(record["line"], n as u64 + 1);
        assert_eq!(record["error"], Value::Null, "{record}");
    }
    drop(stdin);
    let status = child.wait().expect("crawldns exits");
    assert_eq!(status.code(), Some(0));
    reader.join().expect("reader thread");
    assert!(lines.try_recv().is_err(), "no more records");
}

/// Issue 13 item 10: `RUST_LOG=crawldns=debug` shows one line per query
/// with its server and round-trip time, and stderr (a pipe here) carries no
/// ANSI colour codes.
#[test]
fn debug_logs_show_each_query_with_server_and_rtt_in_plain_text() {
    let bed = dns_only();
    let out = with_log(
        &["resolve", "--nameserver", &bed.nameserver(), "--type", "A"],
        "crawldns=debug",
        "h1.crawl.test\nh2.crawl.test\nnope.crawl.test\n",
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let server = format!("server={}", bed.nameserver());
    let queries: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" query ") || l.ends_with(" query"))
        .collect();
    assert_eq!(queries.len(), 3, "{stderr}");
    for line in &queries {
        assert!(line.contains("DEBUG"), "{line}");
        assert!(line.contains(&server), "{line}");
        assert!(line.contains("rtt_us="), "{line}");
        assert!(line.contains("qtype=A"), "{line}");
    }
    assert_eq!(
        bed.dns().counters().totals().udp_queries,
        3,
        "one line per query sent"
    );
    assert!(!stderr.contains('\u{1b}'), "no ANSI codes: {stderr:?}");
}

/// Issue 13 "the flags bulk-DNS users expect": the cache's floor and
/// ceiling from the command line, seen in `cache_ttl`.
#[test]
fn ttl_floor_and_ceiling_set_what_the_cache_keeps() {
    let bed = Bed::start(BedConfig {
        http: false,
        dns_ttl: 5,
        ..BedConfig::default()
    });
    let nameserver = bed.nameserver();
    for (flags, cache_ttl) in [
        (&["--ttl-floor", "60"][..], 60),
        (&["--ttl-floor", "0", "--ttl-ceiling", "3"], 3),
        (&["--ttl-floor", "0", "--no-prefetch", "--dns0x20"], 5),
        (&["--serve-stale", "600"], 30),
    ] {
        let mut args = vec!["resolve", "--nameserver", &nameserver, "--type", "A"];
        args.extend_from_slice(flags);
        let out = run(&args, "h1.crawl.test\n");
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {stderr}");
        let records = json_lines(&out);
        assert_eq!(records[0]["ttl"], 5, "{flags:?}: {stdout}");
        assert_eq!(records[0]["cache_ttl"], cache_ttl, "{flags:?}: {stdout}");
    }
}

/// `--silent`: the records on stdout, nothing on stderr.
#[test]
fn silent_prints_no_summary() {
    let bed = dns_only();
    let nameserver = bed.nameserver();
    let input = "h1.crawl.test\nh2.crawl.test\n";
    let loud = run(&["resolve", "--nameserver", &nameserver], input);
    assert!(texts(&loud).1.contains("resolved 2 names"));
    // `--ipv6 never`: the note a skipped AAAA would get is silenced too.
    let out = run(
        &[
            "resolve",
            "--nameserver",
            &nameserver,
            "--silent",
            "--ipv6",
            "never",
        ],
        input,
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(json_lines(&out).len(), 2, "{stdout}");
    assert_eq!(stderr, "", "nothing on stderr");
}

#[test]
fn resolve_over_dns_over_tls_and_https_with_a_ca_file_and_tls_name() {
    let bed = Bed::start(BedConfig {
        http: false,
        dns_tls: true,
        ..BedConfig::default()
    });
    let dir = TempDir::new("resolve-encrypted");
    let ca = dir.file("ca.pem", &bed.dns_ca_pem());
    let ca = ca.to_str().unwrap();
    for scheme in ["tls", "https"] {
        let url = bed.dns_url(scheme);
        let args = [
            "resolve",
            "--nameserver",
            &url,
            "--tls-name",
            "dns.crawl.test",
            "--ca-file",
            ca,
            "--type",
            "A",
        ];
        let out = run(&args, "h1.crawl.test\nh7.crawl.test\n");
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{scheme}: {stdout}\n{stderr}");
        let records = json_lines(&out);
        assert_eq!(
            by_line(&records, 1)["addresses"],
            serde_json::json!(["127.1.0.2"])
        );
        assert_eq!(
            by_line(&records, 2)["addresses"],
            serde_json::json!(["127.1.0.8"])
        );

        // Without the CA the certificate is untrusted: an error of its own
        // kind, exit 3, and nothing asked over UDP instead.
        let out = run(
            &[
                "resolve",
                "--nameserver",
                &url,
                "--tls-name",
                "dns.crawl.test",
            ],
            "h1.crawl.test\n",
        );
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(3), "{scheme}: {stdout}\n{stderr}");
        let record = &json_lines(&out)[0];
        assert_eq!(record["error"], "certificate", "{scheme}: {record}");
        let message = record["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("server certificate not verified")
                && message.contains("UnknownIssuer"),
            "{scheme}: {record}"
        );
        // One attempt: a server whose certificate failed is not asked again.
        assert!(stderr.contains(", 0 retries,"), "{scheme}: {stderr}");
    }
    assert_eq!(bed.dns().counters().totals().udp_queries, 0);

    // Bad command lines (exit 2): a host name, --tls-name with no encrypted
    // server; an unreadable CA file is exit 1, as an unreadable resolv.conf.
    let plain = bed.nameserver();
    for (args, code, expected) in [
        (
            vec!["resolve", "--nameserver", "tls://dns.crawl.test"],
            2,
            "invalid nameserver \"tls://dns.crawl.test\"",
        ),
        (
            vec![
                "resolve",
                "--nameserver",
                "tls://127.0.0.1:853",
                "--ca-file",
                "/nonexistent/ca.pem",
            ],
            1,
            "/nonexistent/ca.pem: invalid configuration: cannot read the CA file",
        ),
        (
            vec![
                "resolve",
                "--nameserver",
                &plain,
                "--tls-name",
                "dns.crawl.test",
            ],
            2,
            "--tls-name applies to tls:// and https:// nameservers",
        ),
    ] {
        exits_with(&args, code, expected);
    }
}

#[test]
fn resolvers_file_hosts_file_and_rate() {
    let bed = dns_only();
    let dir = TempDir::new("resolve-bulk-flags");
    let resolvers = dir.file(
        "resolvers.txt",
        &format!("# one a line\n\n{}\n", bed.nameserver()),
    );
    let hosts = dir.file("hosts", "10.9.9.9 pinned.crawl.test # from the file\n");
    let names: String = (0..10).map(|i| format!("h{i}.crawl.test\n")).collect();
    let started = std::time::Instant::now();
    let out = run(
        &[
            "resolve",
            "-r",
            resolvers.to_str().unwrap(),
            &format!("--hosts-file={}", hosts.display()),
            "--type",
            "A",
            "--rate",
            "20",
        ],
        &format!("pinned.crawl.test\n{names}"),
    );
    let took = started.elapsed();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(records.len(), 11, "{stdout}");
    assert_eq!(
        by_line(&records, 1)["addresses"],
        serde_json::json!(["10.9.9.9"])
    );
    assert_eq!(
        by_line(&records, 2)["addresses"],
        serde_json::json!(["127.1.0.1"])
    );
    // 11 lookups at 20 a second: 10 intervals of 50 ms at least.
    assert!(took >= std::time::Duration::from_millis(500), "{took:?}");
    let counters = bed.dns().counters();
    assert_eq!(
        counters.queries_any("pinned.crawl.test", hickory_proto::rr::RecordType::A),
        0
    );
    assert_eq!(counters.totals().udp_queries, 10);

    let bad = dir.file("bad-resolvers.txt", "127.0.0.1\ndns.example\n");
    for (args, code, expected) in [
        (
            vec!["resolve", "-r", bad.to_str().unwrap()],
            2,
            "bad-resolvers.txt line 2: invalid nameserver \"dns.example\"",
        ),
        (
            vec!["resolve", "-r", "/nonexistent/resolvers.txt"],
            1,
            "cannot read --resolvers /nonexistent/resolvers.txt",
        ),
        (
            vec![
                "resolve",
                "--nameserver",
                "127.0.0.1",
                "--hosts-file=/nonexistent/hosts",
            ],
            1,
            "/nonexistent/hosts: invalid configuration: cannot read the hosts file",
        ),
        (
            vec!["resolve", "--nameserver", "127.0.0.1", "--rate", "0"],
            2,
            "the rate must be a positive number",
        ),
    ] {
        exits_with(&args, code, expected);
    }
}

/// Runs `crawldns ARGS` on one name and checks that it fails before any
/// lookup: exit `code`, `expected` on stderr, nothing on stdout.
fn exits_with(args: &[&str], code: i32, expected: &str) {
    let out = run(args, "h1.crawl.test\n");
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {stdout}\n{stderr}"
    );
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert!(stdout.is_empty(), "{args:?}: {stdout}");
}

#[test]
fn a_server_marked_down_is_logged_as_a_warning() {
    // Port 1 refuses: every lookup fails there at once, and after three in
    // a row the server is marked down (one warning) and probed.
    let names: String = (0..6).map(|i| format!("h{i}.crawl.test\n")).collect();
    let out = with_log(
        &[
            "resolve",
            "--nameserver",
            "127.0.0.1:1",
            "--type",
            "A",
            "--concurrency",
            "1",
        ],
        "crawldns=warn",
        &names,
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("nameserver marked down"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("server=127.0.0.1:1"),
        "{}",
        warnings[0]
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes into a pipe: {stderr:?}"
    );
}

/// Runs `crawldns ARGS` with `RUST_LOG=filter`, `stdin` as its input.
fn with_log(args: &[&str], filter: &str, stdin: &str) -> std::process::Output {
    crawldns()
        .args(args)
        .env("RUST_LOG", filter)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(stdin.as_bytes())?;
            child.wait_with_output()
        })
        .expect("crawldns runs")
}

/// `--no-cache`: a name listed twice, one after the other (`--concurrency
/// 1`), goes to the wire twice; with the cache, once. It conflicts with the
/// cache's own options.
#[test]
fn no_cache_asks_the_wire_for_every_lookup() {
    let input = "h1.crawl.test\nh1.crawl.test\n";
    for (extra, queries) in [(None, 1), (Some("--no-cache"), 2)] {
        let bed = dns_only();
        let nameserver = bed.nameserver();
        let mut args = vec![
            "resolve",
            "--nameserver",
            &nameserver,
            "--type",
            "A",
            "--concurrency",
            "1",
        ];
        args.extend(extra);
        let out = run(&args, input);
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {stderr}");
        assert_eq!(json_lines(&out).len(), 2);
        assert_eq!(
            bed.dns().counters().totals().udp_queries,
            queries,
            "{extra:?}"
        );
    }
    let out = run(
        &[
            "resolve",
            "--nameserver",
            "127.0.0.1",
            "--no-cache",
            "--ttl-floor",
            "5",
        ],
        "",
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}
