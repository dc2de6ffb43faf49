//! Soak: a million lookups with cache hits, misses, expiries, evictions,
//! query loss and SERVFAIL bursts, sampling open file descriptors and RSS
//! as it goes. They must stay flat. Not part of the test run:
//!
//! ```sh
//! scripts/soak.sh                      # 1,000,000 lookups at 10,000/s, release build
//! scripts/soak.sh --lookups 200000 --max-seconds 120 --rate 0   # unpaced
//! ```
//!
//! Setup: two testbed servers on loopback serving 20,000 hosts (TTL 5 s);
//! the first drops 10% of queries, the second answers SERVFAIL for 250 ms
//! out of every second. Names: 10% do not exist; half the lookups go to 500 hot
//! names, the rest spread over all 20,000; a fifth are `lookup_ip` (A and
//! AAAA), the rest `lookup` A. The cache holds 10,000 entries with a 1 s
//! floor, so hot names hit, cold names miss, entries expire and evict.
//! Every answer is checked against the address the testbed assigns.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crawldns::{Batching, CacheConfig, ErrorKind, QueryType, Resolver, ResolverConfig};
use crawldns_testbed::{host_v4, DnsServer, DnsServerConfig, Faults, RcodeFault, ZoneConfig};
use rand::Rng;

const HOSTS: u32 = 20_000;
const HOT: u32 = 500;
const IN_FLIGHT: usize = 256;

struct Args {
    lookups: u64,
    max_seconds: u64,
    sample_every: u64,
    /// Lookups started per second (0: as fast as they complete).
    rate: u64,
    /// How the resolver sends: its default (batching when busy), `--bulk`
    /// (always batched) or `--unbatched`.
    batching: Batching,
}

fn args() -> Args {
    let mut args = Args {
        lookups: 1_000_000,
        max_seconds: 900,
        sample_every: 50_000,
        rate: 10_000,
        batching: Batching::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bulk" || flag == "--unbatched" {
            args.batching = if flag == "--bulk" {
                Batching::Always
            } else {
                Batching::Off
            };
            continue;
        }
        let value: u64 = it
            .next()
            .and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or_else(|| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--lookups" => args.lookups = value,
            "--max-seconds" => args.max_seconds = value,
            "--sample-every" => args.sample_every = value.max(1),
            "--rate" => args.rate = value,
            other => {
                panic!(
                    "unknown flag {other} (--lookups, --max-seconds, --sample-every, --rate, --bulk, --unbatched)"
                )
            }
        }
    }
    args
}

/// Bytes the allocator has handed out and not had back (glibc), in KiB:
/// what RSS would be without fragmentation and retained free memory.
fn heap_in_use_kib() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        ((info.uordblks + info.hblkhd) / 1024) as u64
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        0
    }
}

fn open_fds() -> usize {
    crawldns_sys::process::open_fds().unwrap_or(0)
}

fn rss_kib() -> u64 {
    crawldns_sys::process::rss_bytes().unwrap_or(0) / 1024
}

#[derive(Default)]
struct Tally {
    done: AtomicU64,
    correct: AtomicU64,
    /// `lookup_ip` answers with one family only.
    partial: AtomicU64,
    wrong: AtomicU64,
    /// Errors by kind, indexed by `ErrorKind::index`.
    errors: [AtomicU64; ErrorKind::ALL.len()],
}

impl Tally {
    fn error(&self, kind: ErrorKind) {
        self.errors[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()].load(Ordering::Relaxed)
    }
}

struct Sample {
    lookups: u64,
    secs: f64,
    rate: f64,
    fds: usize,
    rss_kib: u64,
    heap_kib: u64,
    cache: usize,
    sockets: usize,
    hits: u64,
    misses: u64,
    udp_sent: u64,
    retries: u64,
    wrong: u64,
    errors: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let zone = ZoneConfig {
        hosts: HOSTS,
        ttl: 5,
        negative_ttl: 5,
        ..Default::default()
    };
    let start = |faults: Faults| {
        let zone = zone.clone();
        async move {
            DnsServer::start(DnsServerConfig {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                zone,
                faults,
                ..Default::default()
            })
            .await
            .expect("testbed starts")
        }
    };
    let lossy = start(Faults {
        drop_fraction: 0.10,
        ..Default::default()
    })
    .await;
    let flaky = Arc::new(start(Faults::default()).await);
    let resolver = Resolver::new(
        ResolverConfig::builder()
            .nameserver(lossy.addr())
            .nameserver(flaky.addr())
            .rotate(true)
            .batching(args.batching)
            .attempts(3)
            .timeout(Duration::from_millis(400))
            .min_timeout(Duration::from_millis(100))
            .ipv6_egress(Some(true))
            .cache(Some(CacheConfig {
                max_entries: 10_000,
                min_ttl: Duration::from_secs(1),
                failure_ttl: Duration::from_secs(1),
                ..Default::default()
            }))
            .build(),
    )
    .expect("config");

    // SERVFAIL on the second server for 250 ms out of every second.
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let (flaky, stop) = (flaky.clone(), stop.clone());
        tokio::spawn(async move {
            let mut toggles = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(750)).await;
                flaky.set_faults(Faults {
                    rcode: Some(RcodeFault::ServFail),
                    ..Default::default()
                });
                tokio::time::sleep(Duration::from_millis(250)).await;
                flaky.set_faults(Faults::default());
                toggles += 1;
            }
            toggles
        })
    };

    println!(
        "soak: {} lookups at {}/s (at most {} s), {IN_FLIGHT} in flight, {HOSTS} hosts ({HOT} hot, 10% NXDOMAIN), \
         server 1 drops 10%, server 2 SERVFAIL 250 ms in every 1 s, cache 10,000 entries",
        args.lookups, args.rate, args.max_seconds
    );
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let semaphore = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut samples: Vec<Sample> = Vec::new();
    let mut last = (0u64, started);
    let sample = |tally: &Tally, last: &mut (u64, Instant)| {
        let done = tally.done.load(Ordering::Relaxed);
        let now = Instant::now();
        let m = resolver.metrics();
        let errors: BTreeMap<&str, u64> = ErrorKind::ALL
            .iter()
            .map(|k| (k.as_str(), tally.errors_of(*k)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let s = Sample {
            lookups: done,
            secs: now.duration_since(started).as_secs_f64(),
            rate: (done - last.0) as f64 / now.duration_since(last.1).as_secs_f64().max(1e-9),
            fds: open_fds(),
            rss_kib: rss_kib(),
            heap_kib: heap_in_use_kib(),
            cache: resolver.cache_len(),
            sockets: resolver.open_sockets(),
            hits: m.cache_hits,
            misses: m.cache_misses,
            udp_sent: m.udp_sent,
            retries: m.retries,
            wrong: tally.wrong.load(Ordering::Relaxed),
            errors: errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        *last = (done, now);
        s
    };
    let mut issued = 0u64;
    let mut next_sample = args.sample_every;
    let mut rng = rand::rng();
    while issued < args.lookups && Instant::now() < deadline {
        // Spread the lookups over time, so that TTLs expire, sockets rotate
        // and SERVFAIL bursts come and go many times over the run.
        if args.rate > 0 && issued.is_multiple_of(100) {
            let due = started + Duration::from_secs_f64(issued as f64 / args.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = semaphore.clone().acquire_owned().await.expect("open");
        let n = if rng.random_bool(0.5) {
            rng.random_range(0..HOT)
        } else {
            rng.random_range(0..HOSTS)
        };
        let ip_lookup = rng.random_ratio(1, 5);
        let (task_resolver, task_tally) = (resolver.clone(), tally.clone());
        tokio::spawn(async move {
            let (resolver, tally) = (task_resolver, task_tally);
            let exists = n % 10 != 9;
            let name = if exists {
                format!("h{n}.crawl.test")
            } else {
                format!("nx{n}.crawl.test")
            };
            let v4 = IpAddr::V4(host_v4(n).expect("in range"));
            let (outcome, seen) = if ip_lookup {
                let got = resolver.lookup_ip(&name).await;
                let seen = format!("lookup_ip {got:?}");
                let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
                let ok = got.map(|l| {
                    // A and AAAA (::1); or one family, when the other missed
                    // the resolution delay or failed (RFC 8305: connect to
                    // what there is). Such answers are not cached.
                    if &*l.addrs == [v4].as_slice() || &*l.addrs == [v6].as_slice() {
                        tally.partial.fetch_add(1, Ordering::Relaxed);
                    }
                    &*l.addrs == [v6, v4].as_slice()
                        || &*l.addrs == [v4].as_slice()
                        || &*l.addrs == [v6].as_slice()
                });
                (ok, seen)
            } else {
                let got = resolver.lookup(&name, QueryType::A).await;
                let seen = format!("lookup A {got:?}");
                (got.map(|l| l.ips() == [v4].as_slice()), seen)
            };
            let wrong = match &outcome {
                Ok(true) => !exists,
                Ok(false) => true,
                Err(e) => e.kind() == ErrorKind::NxDomain && exists,
            };
            if wrong && tally.wrong.load(Ordering::Relaxed) < 10 {
                eprintln!("wrong answer for {name}: {seen}");
            }
            match outcome {
                Ok(true) if exists => tally.correct.fetch_add(1, Ordering::Relaxed),
                Ok(_) => tally.wrong.fetch_add(1, Ordering::Relaxed),
                Err(e) if !exists && e.kind() == ErrorKind::NxDomain => {
                    tally.correct.fetch_add(1, Ordering::Relaxed)
                }
                Err(e) => {
                    if e.kind() == ErrorKind::NxDomain {
                        tally.wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    tally.error(e.kind());
                    0
                }
            };
            tally.done.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        });
        issued += 1;
        if issued >= next_sample {
            next_sample += args.sample_every;
            samples.push(sample(&tally, &mut last));
        }
    }
    // Wait for the last lookups.
    let _ = semaphore.acquire_many(IN_FLIGHT as u32).await;
    samples.push(sample(&tally, &mut last));
    stop.store(true, Ordering::Relaxed);
    let toggles = toggler.await.unwrap_or(0);
    let elapsed = started.elapsed();

    println!(
        "\n| lookups | s | lookups/s | open fds | RSS MiB | heap in use MiB | cache entries | UDP sockets | cache hits | cache misses | UDP sent | retries | wrong | errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for s in &samples {
        println!(
            "| {} | {:.1} | {:.0} | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.lookups,
            s.secs,
            s.rate,
            s.fds,
            s.rss_kib as f64 / 1024.0,
            s.heap_kib as f64 / 1024.0,
            s.cache,
            s.sockets,
            s.hits,
            s.misses,
            s.udp_sent,
            s.retries,
            s.wrong,
            if s.errors.is_empty() { "0" } else { &s.errors }
        );
    }
    let fds: Vec<usize> = samples.iter().map(|s| s.fds).collect();
    let rss: Vec<u64> = samples.iter().map(|s| s.rss_kib).collect();
    let heap: Vec<u64> = samples.iter().map(|s| s.heap_kib).collect();
    let m = resolver.metrics();
    let done = tally.done.load(Ordering::Relaxed);
    let correct = tally.correct.load(Ordering::Relaxed);
    let wrong = tally.wrong.load(Ordering::Relaxed);
    println!(
        "\n{done} lookups in {:.1} s ({:.0}/s): {correct} correct ({} of them lookup_ip answers with one family), {wrong} wrong, {} errors; \
         {} SERVFAIL bursts; {} socket rotations; udp sent {}, timeouts {}, server errors {}, mismatched {}",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64(),
        tally.partial.load(Ordering::Relaxed),
        done - correct - wrong,
        toggles,
        m.socket_rotations,
        m.udp_sent,
        m.timeouts,
        m.server_errors,
        m.mismatched,
    );
    println!(
        "open fds: first {}, last {}, max {}; RSS MiB: first {:.1}, last {:.1}, max {:.1}",
        fds.first().copied().unwrap_or(0),
        fds.last().copied().unwrap_or(0),
        fds.iter().max().copied().unwrap_or(0),
        rss.first().copied().unwrap_or(0) as f64 / 1024.0,
        rss.last().copied().unwrap_or(0) as f64 / 1024.0,
        rss.iter().max().copied().unwrap_or(0) as f64 / 1024.0,
    );
    // What of the RSS is the allocator keeping, rather than the program?
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    println!(
        "RSS after malloc_trim(0): {:.1} MiB (the resolver, cache and testbed still alive)",
        rss_kib() as f64 / 1024.0
    );
    println!(
        "heap in use MiB: first {:.1}, last {:.1}, max {:.1}",
        heap.first().copied().unwrap_or(0) as f64 / 1024.0,
        heap.last().copied().unwrap_or(0) as f64 / 1024.0,
        heap.iter().max().copied().unwrap_or(0) as f64 / 1024.0,
    );
    if wrong > 0 {
        eprintln!("FAIL: {wrong} wrong answers");
        std::process::exit(1);
    }
}
