//! `crawldns fetch --warc`: the archive is read back by warcio (the Python
//! library every web-archive tool chain uses): `warcio check` verifies
//! every digest, `warcio index` lists one response per fetched URL with its
//! status, and each payload is what the farm served.

crawldns_testkit::bind_crawldns_binary!();

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use crawldns_fetch::warc::sha1_label;
use crawldns_testkit::cli::{texts, Bed, BedConfig, TempDir};
use serde_json::Value;

/// The test venv's bin directory (scripts/pyenv.sh creates it and installs
/// warcio).
fn warcio() -> PathBuf {
    crawldns_testkit::cli::test_venv_bin()
}

/// Reads every response record: URI, status, payload digest header, and
/// the payload as sent (content coding kept) in hex.
const DUMP: &str = r#"
import json, sys
from warcio.archiveiterator import ArchiveIterator
with open(sys.argv[1], 'rb') as f:
    for r in ArchiveIterator(f):
        if r.rec_type == 'response':
            print(json.dumps({
                'uri': r.rec_headers.get_header('WARC-Target-URI'),
                'ip': r.rec_headers.get_header('WARC-IP-Address'),
                'status': int(r.http_headers.get_statuscode()),
                'digest': r.rec_headers.get_header('WARC-Payload-Digest'),
                'body': r.raw_stream.read().hex(),
            }))
"#;

#[test]
fn a_crawl_archived_as_warc_reads_back_in_warcio() {
    let bed = Bed::start(BedConfig::default());
    let mut paths: Vec<String> = Vec::new();
    for h in 0..20u32 {
        paths.push(format!("/bytes/{}", 100 + h));
    }
    paths.extend(
        [
            "/status/404",
            "/status/500",
            "/enc/gzip/5000",
            "/enc/br/4000",
            "/enc/zstd/3000",
            "/",
        ]
        .map(String::from),
    );
    let urls: Vec<(String, String)> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (bed.url(i as u32 % 20, p), p.clone()))
        .collect();
    let mut list: Vec<String> = urls.iter().map(|(u, _)| u.clone()).collect();
    // No response, no archive record: it stays in the JSON lines.
    list.push(format!("http://nowhere.crawl.test:{}/", bed.port()));
    let dir = TempDir::new("warc");
    let list_path = dir.file("urls.txt", &(list.join("\n") + "\n"));
    let warc = dir.path().join("crawl.warc.gz");
    let out = crawldns()
        .args(["fetch", "--nameserver", &bed.nameserver(), "--warc"])
        .arg(&warc)
        .arg(&list_path)
        .output()
        .expect("crawldns runs");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stdout.lines().count(), list.len());
    assert!(
        stderr.contains(&format!("warc: {} responses archived", urls.len())),
        "{stderr}"
    );

    let bin = warcio();
    let check = Command::new(bin.join("warcio"))
        .args(["check", "-v"])
        .arg(&warc)
        .output()
        .expect("warcio check runs");
    let (check_out, check_err) = texts(&check);
    assert!(
        check.status.success(),
        "warcio check: {check_out}{check_err}"
    );

    let index = Command::new(bin.join("warcio"))
        .args(["index", "-f", "warc-type,warc-target-uri,http:status"])
        .arg(&warc)
        .output()
        .expect("warcio index runs");
    assert!(index.status.success());
    let entries: Vec<Value> = String::from_utf8_lossy(&index.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("index line is JSON"))
        .collect();
    assert_eq!(entries[0]["warc-type"], "warcinfo");
    let mut responses: HashMap<String, u32> = HashMap::new();
    for entry in entries.iter().filter(|e| e["warc-type"] == "response") {
        *responses
            .entry(entry["warc-target-uri"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(responses.len(), urls.len(), "{responses:?}");
    assert!(responses.values().all(|n| *n == 1), "one response per URL");
    let requests = entries
        .iter()
        .filter(|e| e["warc-type"] == "request")
        .count();
    assert_eq!(requests, urls.len());

    let dump = Command::new(bin.join("python"))
        .args(["-c", DUMP])
        .arg(&warc)
        .output()
        .expect("python runs");
    assert!(dump.status.success(), "{}", texts(&dump).1);
    let records: HashMap<String, Value> = String::from_utf8_lossy(&dump.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["uri"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    for (i, (url, path)) in urls.iter().enumerate() {
        let record = &records[url];
        let (status, coding, sent) = bed.farm().reply_for(path).expect("farm path");
        assert_eq!(record["status"], status, "{url}");
        assert_eq!(record["digest"], sha1_label(&sent).as_str(), "{url}");
        assert_eq!(coding.is_some(), path.starts_with("/enc/"));
        let hex: String = sent.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(record["body"].as_str().unwrap(), hex, "{url}");
        let ip = bed.farm().addr(i as u32 % 20).unwrap().ip().to_string();
        assert_eq!(record["ip"], ip.as_str());
    }
}

#[test]
fn an_unwritable_warc_path_fails_before_the_crawl() {
    let bed = Bed::start(BedConfig::default());
    let out = run(
        &[
            "fetch",
            "--nameserver",
            &bed.nameserver(),
            "--warc",
            "/nonexistent-dir/crawl.warc.gz",
        ],
        &format!("{}\n", bed.url(1, "/")),
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: cannot write --warc /nonexistent-dir/crawl.warc.gz: No such file or directory"
        ),
        "{stderr}"
    );
    assert_eq!(bed.farm().total_stats().requests, 0, "nothing was fetched");
}
