//! Runs `crawldns-bench smoke` (tiny counts, testbed server only, no Knot,
//! no network namespace) and checks that every peer that ran got exactly
//! the right answer for every name, and that the report has its rows.

use std::path::PathBuf;
use std::process::Command;

use crawldns_bench::peers::PeerKind;
use crawldns_bench::suite::{Plan, RunResults};
use crawldns_bench::workloads::{Sample, WorkloadKind};

struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[test]
fn smoke_mode_verifies_every_answer_and_writes_the_tables() {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let md = dir.join(format!("crawldns-bench-smoke-{pid}.md"));
    let json = dir.join(format!("crawldns-bench-smoke-{pid}.json"));
    let _cleanup = TempFiles(vec![md.clone(), json.clone()]);

    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_crawldns-bench"))
        .arg("smoke")
        .arg("--out")
        .arg(&md)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run crawldns-bench smoke");
    assert!(
        out.status.success(),
        "smoke failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("smoke took {:?}", started.elapsed());

    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("read json")).expect("parse json");
    let results: RunResults =
        serde_json::from_value(raw["results"].clone()).expect("decode results");
    let plan = Plan::smoke();
    assert_eq!(results.plan, "smoke");
    let kinds: Vec<WorkloadKind> = results.workloads.iter().map(|w| w.job.workload).collect();
    assert_eq!(
        kinds,
        [
            WorkloadKind::W1,
            WorkloadKind::W2,
            WorkloadKind::W3,
            WorkloadKind::Fds
        ]
    );

    for workload in &results.workloads {
        let job = &workload.job;
        for peer in &workload.peers {
            if peer.peer.is_system() {
                // No namespace in smoke mode: skipped, with the reason.
                assert!(peer.samples.is_empty(), "{:?}", peer.peer);
                assert!(peer.skipped.is_some(), "{:?} has no skip note", peer.peer);
                continue;
            }
            assert!(
                peer.failed.is_none(),
                "{:?} {:?} failed: {:?}",
                job.workload,
                peer.peer,
                peer.failed
            );
            assert_eq!(
                peer.samples.len(),
                plan.reps,
                "{:?} {:?}",
                job.workload,
                peer.peer
            );
            for sample in &peer.samples {
                let expected = match sample {
                    Sample::Throughput(t) => {
                        assert_eq!(t.window_lookups, u64::from(job.count));
                        assert!(t.wall_s > 0.0);
                        u64::from(job.warmup + job.count) + job.in_flight as u64
                    }
                    Sample::Burst(b) => {
                        assert!(b.p50_us <= b.p99_us && b.p99_us <= b.max_us);
                        assert!(
                            b.p50_us >= job.delay_ms * 1000,
                            "{:?} answered before the server's delay",
                            peer.peer
                        );
                        u64::from(job.count)
                    }
                    Sample::Fds(f) => {
                        assert!(f.peak >= f.before);
                        u64::from(job.count)
                    }
                };
                let tally = sample.tally();
                // c-ares's getaddrinfo stops retrying AAAA once A has
                // answered, so a lost AAAA datagram leaves it A-only, by
                // design. That is tolerated for the peers, and only when the
                // kernel counted at least one lost datagram per such answer.
                // crawldns gets no such allowance.
                let excused = match sample {
                    Sample::Burst(b) if !peer.peer.is_crawldns() => {
                        tally.partial.min(b.udp_drops.unwrap_or(0))
                    }
                    _ => 0,
                };
                assert_eq!(
                    (tally.ok + excused, tally.wrong - excused, tally.errors),
                    (expected, 0, 0),
                    "{:?} {:?}: every name must get exactly its address ({:?})",
                    job.workload,
                    peer.peer,
                    peer.first_error
                );
            }
        }
        for kind in [PeerKind::Crawldns, PeerKind::Hickory, PeerKind::Cares] {
            assert!(
                workload
                    .peers
                    .iter()
                    .any(|p| p.peer == kind && !p.samples.is_empty()),
                "{kind:?} did not run {:?}",
                job.workload
            );
        }
    }

    let text = std::fs::read_to_string(&md).expect("read markdown");
    for heading in [
        "## Machine and versions",
        "## Headline: crawldns's ratio to each peer",
        "## W1 cold throughput",
        "## W2 burst",
        "## W3 burst, A and AAAA",
        "## Resources: open file descriptors",
        "## Measured by other commands",
        "## Targets (issue 7)",
    ] {
        assert!(text.contains(heading), "missing {heading}");
    }
    let tables = &text[text.find("## W1 cold throughput").unwrap()
        ..text.find("## Measured by other commands").unwrap()];
    for kind in PeerKind::COMPARED {
        let row = format!("| {} |", kind.label());
        assert_eq!(
            tables.matches(&row).count(),
            4,
            "expected one {row} row per workload table"
        );
    }
    for pending in [
        "| W4 hot cache |",
        "| Herd |",
        "| Memory per cache entry |",
        "| Crawl |",
    ] {
        assert!(text.contains(pending), "missing pending row {pending}");
    }
    assert!(text.contains("measured by `crawldns-bench cache`"));
    assert!(text.contains("The harness itself"));
}
