//! `crawldns fetch` as a user runs it: the built binary crawling the
//! testbed's HTTP farm through its DNS server (both started in this
//! process, on loopback). Records are parsed as JSON and checked field by
//! field.

crawldns_testkit::bind_crawldns_binary!();

use crawldns_testkit::cli::{json_lines, texts, Bed, BedConfig, TempDir};
use serde_json::Value;

/// The record of `url`.
fn by_url<'a>(records: &'a [Value], url: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["url"] == url)
        .unwrap_or_else(|| panic!("no record for {url} in {records:?}"))
}

/// A phase timing that must be present: a number of ms, at least 0.
fn ms(record: &Value, phase: &str) -> f64 {
    record["ms"][phase]
        .as_f64()
        .unwrap_or_else(|| panic!("no ms.{phase} in {record}"))
}

#[test]
fn records_for_ok_500_nxdomain_and_a_bad_line() {
    let bed = Bed::start(BedConfig::default());
    let ok = bed.url(1, "/page");
    let five_hundred = bed.url(2, "/status/500");
    let nxdomain = format!("http://nope.crawl.test:{}/", bed.port());
    let bytes = bed.url(3, "/bytes/10");
    let dir = TempDir::new("fetch");
    let list = dir.file(
        "urls.txt",
        &format!("{ok}\n{five_hundred}\n# skipped\n{nxdomain}\nnot a url\n\n{bytes}\n"),
    );
    let out = fetch_v4(&bed, &[list.to_str().unwrap()], "");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(records.len(), 5, "{stdout}");

    let r = by_url(&records, &ok);
    assert_eq!(r["final_url"], ok.as_str());
    assert_eq!(r["host"], "h1.crawl.test");
    assert_eq!(r["status"], 200);
    assert_eq!(r["bytes"], 1000);
    assert_eq!(r["redirects"], 0);
    assert_eq!(r["reused_connection"], false);
    assert_eq!(r["error"], Value::Null);
    for phase in ["queue", "dns", "connect", "ttfb", "total"] {
        assert!(ms(r, phase) >= 0.0, "{r}");
    }
    assert_eq!(r["ms"]["tls"], Value::Null, "no TLS over http");
    assert!(ms(r, "ttfb") <= ms(r, "total"), "{r}");

    let r = by_url(&records, &five_hundred);
    assert_eq!(r["status"], 500);
    assert_eq!(r["error"]["class"], "http_status");
    assert_eq!(r["error"]["detail"], 500);
    assert!(ms(r, "ttfb") >= 0.0);

    let r = by_url(&records, &nxdomain);
    assert_eq!(r["status"], Value::Null);
    assert_eq!(r["bytes"], 0);
    assert_eq!(r["error"]["class"], "dns");
    assert_eq!(r["error"]["detail"], "nxdomain");
    assert_eq!(r["ms"]["connect"], Value::Null, "DNS failed: no connect");
    assert_eq!(r["ms"]["ttfb"], Value::Null);

    let r = by_url(&records, "not a url");
    assert_eq!(r["error"]["class"], "url");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("line 5: not a URL"), "{message}");

    let r = by_url(&records, &bytes);
    assert_eq!(r["status"], 200);
    assert_eq!(r["bytes"], 10);

    // Every record carries its input line, written first.
    let lines: Vec<(String, u64)> = [&ok, &five_hundred, &nxdomain, "not a url", &bytes]
        .iter()
        .map(|url| {
            (
                url.to_string(),
                by_url(&records, url)["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [1, 2, 4, 5, 7];
    for ((url, line), want) in lines.iter().zip(expected) {
        assert_eq!(*line, want, "{url}");
    }
    assert!(
        stdout.lines().all(|l| l.starts_with("{\"line\":")),
        "{stdout}"
    );

    assert!(
        stderr.contains("line 5: \"not a url\": not a URL"),
        "{stderr}"
    );
    assert!(stderr.contains("fetched 5 URLs in "), "{stderr}");
    assert!(stderr.contains(": 2 ok, 3 failed"), "{stderr}");
    assert!(
        stderr.contains("errors: dns/nxdomain 1, http_status/500 1, url 1"),
        "{stderr}"
    );
    let ttfb = stderr
        .lines()
        .find(|l| l.starts_with("ttfb "))
        .unwrap_or_else(|| panic!("no ttfb row: {stderr}"));
    assert!(ttfb.trim_end().ends_with(" 3"), "3 TTFB samples: {ttfb}");
    assert!(
        stderr.contains("resolver: crawldns; pre-warm on"),
        "{stderr}"
    );
}

#[test]
fn every_url_ok_is_exit_0_and_keep_alive_reuses() {
    let bed = Bed::start(BedConfig::default());
    let urls: Vec<String> = (0..6).map(|i| bed.url(4, &format!("/p{i}"))).collect();
    let out = run(
        &[
            "fetch",
            "--nameserver",
            &bed.nameserver(),
            "--per-host",
            "1",
            "--no-prewarm",
            "-",
        ],
        &urls.join("\n"),
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(records.len(), 6);
    let reused = records
        .iter()
        .filter(|r| r["reused_connection"] == true)
        .count();
    assert_eq!(reused, 5, "one connection for six requests: {stdout}");
    assert!(
        stderr.contains("connections: 1 opened, 5 reused"),
        "{stderr}"
    );
    assert!(stderr.contains("pre-warm off"), "{stderr}");
}

#[test]
fn https_with_a_ca_file() {
    let bed = Bed::start(BedConfig {
        tls: true,
        ..BedConfig::default()
    });
    let url = bed.url(5, "/bytes/7");
    assert!(url.starts_with("https://"), "{url}");
    let dir = TempDir::new("fetch-tls");
    let ca = dir.file("ca.pem", &bed.farm().ca_pem().expect("a TLS farm has a CA"));

    let out = run(
        &[
            "fetch",
            "--nameserver",
            &bed.nameserver(),
            "--ca-file",
            ca.to_str().unwrap(),
        ],
        &url,
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(records[0]["status"], 200);
    assert_eq!(records[0]["bytes"], 7);
    assert!(ms(&records[0], "tls") >= 0.0);

    // Without the CA the certificate is not trusted: a `tls` error.
    let out = run(&["fetch", "--nameserver", &bed.nameserver()], &url);
    assert_eq!(out.status.code(), Some(3), "{:?}", texts(&out));
    assert_eq!(json_lines(&out)[0]["error"]["class"], "tls");
}

#[test]
fn bad_input_and_options() {
    // An unreadable list.
    let out = run(
        &[
            "fetch",
            "--nameserver",
            "127.0.0.1:5353",
            "/nonexistent/urls.txt",
        ],
        "",
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("cannot read /nonexistent/urls.txt: No such file"),
        "{stderr}"
    );

    // An unreadable CA file.
    let out = run(
        &[
            "fetch",
            "--nameserver",
            "127.0.0.1:5353",
            "--ca-file",
            "/nonexistent/ca.pem",
        ],
        "",
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read --ca-file /nonexistent/ca.pem"),
        "{stderr}"
    );

    for (args, expected) in [
        (vec!["fetch", "--nameserver", "nope"], "invalid nameserver"),
        (vec!["fetch"], "no nameserver"),
        (
            vec!["fetch", "--system-resolver", "--nameserver", "127.0.0.1"],
            "cannot be used with",
        ),
        (
            vec![
                "fetch",
                "--nameserver",
                "127.0.0.1",
                "--system-dns-cache",
                "10",
            ],
            "--system-resolver",
        ),
        (
            vec!["fetch", "--nameserver", "127.0.0.1", "--per-host-rate", "0"],
            "positive number",
        ),
        (
            vec!["fetch", "--nameserver", "127.0.0.1", "--per-host", "0"],
            "--per-host",
        ),
        (
            vec!["fetch", "--nameserver", "127.0.0.1", "--user-agent", "a\nb"],
            "cannot hold the control character 0x0a",
        ),
    ] {
        let out = run(&args, "");
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
}

#[test]
fn the_system_resolver_fetches_ip_literals() {
    // glibc is only asked about names; an IP literal needs no resolver, so
    // this runs without pointing the system at the testbed.
    let bed = Bed::start(BedConfig::default());
    let addr = bed.farm().addr(2).expect("host 2 exists");
    let url = format!("http://{addr}/bytes/3");
    let out = run(&["fetch", "--system-resolver"], &url);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(records[0]["status"], 200);
    assert_eq!(records[0]["bytes"], 3);
    assert_eq!(
        records[0]["ms"]["dns"],
        Value::Null,
        "no lookup for a literal"
    );
    assert!(
        stderr.contains("resolver: getaddrinfo on 32 threads"),
        "{stderr}"
    );
}

#[test]
fn output_to_dev_null_is_fine() {
    let bed = Bed::start(BedConfig::default());
    let url = bed.url(1, "/page");
    let ns = bed.nameserver();
    let out = run(&["fetch", "--nameserver", &ns, "-o", "/dev/null"], &url);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("1 ok, 0 failed"), "{stderr}");
}

#[test]
fn the_system_resolver_with_a_dns_cache_says_so() {
    let bed = Bed::start(BedConfig::default());
    let addr = bed.farm().addr(2).expect("host 2 exists");
    let url = format!("http://{addr}/bytes/3");
    let out = run(
        &["fetch", "--system-resolver", "--system-dns-cache", "10"],
        &url,
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(json_lines(&out)[0]["status"], 200);
    assert!(
        stderr.contains("resolver: getaddrinfo on 32 threads, answers kept 10 s"),
        "{stderr}"
    );
}

#[test]
fn text_format_and_line_numbers_of_a_url_given_twice() {
    let bed = Bed::start(BedConfig::default());
    let ok = bed.url(1, "/page");
    let nxdomain = format!("http://nope.crawl.test:{}/", bed.port());
    let input = format!("{ok}\n{nxdomain}\n{ok}\n");
    let args = [
        "fetch",
        "--nameserver",
        &bed.nameserver(),
        "--strategy",
        "v4",
    ];
    let out = run(&args, &input);
    let records = json_lines(&out);
    let mut lines: Vec<(String, u64)> = records
        .iter()
        .map(|r| {
            (
                r["url"].as_str().unwrap().to_owned(),
                r["line"].as_u64().unwrap(),
            )
        })
        .collect();
    lines.sort_by_key(|(_, line)| *line);
    assert_eq!(
        lines,
        [(ok.clone(), 1), (nxdomain.clone(), 2), (ok.clone(), 3)]
    );

    let out = run(&[&args[..], &["--format", "text"]].concat(), &input);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let (failed, fetched): (Vec<&str>, Vec<&str>) =
        stdout.lines().partition(|l| l.starts_with(&nxdomain));
    assert_eq!((failed.len(), fetched.len()), (1, 2), "{stdout}");
    assert!(
        failed[0].starts_with(&format!("{nxdomain} error=dns/nxdomain total=")),
        "{stdout}"
    );
    assert!(
        failed[0].ends_with("name does not exist (NXDOMAIN)"),
        "{stdout}"
    );
    for line in fetched {
        assert!(
            line.starts_with(&format!("{ok} 200 1000B ttfb=")),
            "{stdout}"
        );
        assert!(line.contains(" total="), "{line}");
    }

    let out = run(
        &[
            &args[..],
            &["--format", "text", "-o", "x.jsonl", "--resume"],
        ]
        .concat(),
        &input,
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--resume reads the JSON records"),
        "{stderr}"
    );
}

#[test]
fn robots_obeys_each_hosts_robots_txt() {
    let bed = Bed::start(BedConfig::default());
    let allowed = bed.url(1, "/page");
    let disallowed = bed.url(1, "/private/page");
    let unavailable = bed.url(8, "/page");
    let input = format!("{allowed}\n{disallowed}\n{unavailable}\n");
    let out = fetch_v4(&bed, &["--robots"], &input);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let records = json_lines(&out);
    assert_eq!(by_url(&records, &allowed)["status"], 200);
    assert_eq!(by_url(&records, &disallowed)["error"]["class"], "robots");
    assert_eq!(
        by_url(&records, &disallowed)["error"]["message"],
        "disallowed by robots.txt"
    );
    assert_eq!(by_url(&records, &unavailable)["error"]["class"], "robots");
    assert!(stderr.contains("errors: robots 2"), "{stderr}");
    // robots.txt and the allowed page: nothing disallowed was asked for.
    assert_eq!(bed.farm().host_stats(1).unwrap().requests, 2);
    assert_eq!(bed.farm().host_stats(8).unwrap().requests, 1);

    // Without --robots, the same list is fetched whole.
    let out = run(
        &[
            "fetch",
            "--nameserver",
            &bed.nameserver(),
            "--strategy",
            "v4",
        ],
        &input,
    );
    let records = json_lines(&out);
    assert_eq!(by_url(&records, &disallowed)["status"], 200);
}

/// `crawldns fetch` against `bed`'s DNS, IPv4 only, with `extra` options.
fn fetch_v4(bed: &Bed, extra: &[&str], stdin: &str) -> std::process::Output {
    let nameserver = bed.nameserver();
    let args = [
        &["fetch", "--nameserver", &nameserver, "--strategy", "v4"],
        extra,
    ]
    .concat();
    run(&args, stdin)
}
