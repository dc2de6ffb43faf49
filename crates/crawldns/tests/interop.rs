//! Interop with real servers from Debian packages: Knot DNS (`knot`) as the
//! authoritative server of a zone this test writes, and Unbound (`unbound`)
//! as a recursive resolver in front of it (a stub zone pointing at Knot).
//! For every name and type, crawldns must give the same answer as `dig`
//! (`bind9-dnsutils`) through both: addresses equal as sets, the CNAME
//! chain followed in order, NXDOMAIN and NODATA as such, and the answer too
//! large for UDP fetched over TCP.
//!
//! The binaries are required: without them this test fails and says to run
//! `scripts/test.sh` (which installs them), unless `CRAWLDNS_SKIP_INTEROP=1`.
//! With `CRAWLDNS_WRITE_FUZZ_SEEDS=1` it also saves a few raw answers of
//! both servers to `fuzz/corpus/answer_decode/` (see `scripts/fuzz.sh seed`).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crawldns::internals::wire::{encode_query, Question};
use crawldns::{Batching, CacheConfig, ErrorKind, QueryType, RecordData, Resolver, ResolverConfig};
use hickory_proto::rr::RecordType;

const ZONE: &str = "interop.test";
/// Records in `big.interop.test`: 100 A records are ~1.7 KB, more than the
/// 1232-byte EDNS payload crawldns advertises, so UDP answers are truncated.
const BIG: u8 = 100;

/// A running daemon, killed when the guard is dropped.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(&self.log) {
                eprintln!("--- {} log ({}) ---\n{log}", self.name, self.log.display());
            }
        }
    }
}

/// A temporary directory, removed when dropped (kept if the test failed).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "crawldns-interop-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn find(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
}

/// A port free for both UDP and TCP on `ip` right now.
fn free_port(ip: [u8; 4]) -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind(SocketAddr::from((ip, 0))).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(SocketAddr::from((ip, port))).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip:?}");
}

fn zone_file() -> String {
    let mut z = format!(
        "$ORIGIN {ZONE}.\n$TTL 300\n\
         @        SOA   ns hostmaster 1 3600 600 86400 60\n\
         @        NS    ns\n\
         ns       A     127.0.0.1\n\
         www      A     192.0.2.1\n\
         dual     A     192.0.2.2\n\
         dual     AAAA  2001:db8::2\n\
         v6only   AAAA  2001:db8::6\n\
         multi    A     192.0.2.10\n\
         multi    A     192.0.2.11\n\
         multi    A     192.0.2.12\n\
         multi    AAAA  2001:db8::10\n\
         multi    AAAA  2001:db8::11\n\
         alias1   CNAME alias2\n\
         alias2   CNAME alias3\n\
         alias3   CNAME dual\n\
         dangling CNAME nowhere\n\
         short    60 A  192.0.2.3\n\
         mail     MX    10 mx1\n\
         mail     MX    20 mx2.example.net.\n\
         mail     MX    10 mx3\n\
         txt      TXT   \"v=spf1 -all\"\n\
         txt      TXT   \"first string\" \"second string\" \"with \\\"quote\\\"\"\n\
         _sip._udp SRV  10 60 5060 sip\n\
         _sip._udp SRV  20 0 5061 sip2\n\
         caa      CAA   0 issue \"letsencrypt.org\"\n\
         caa      CAA   128 iodef \"mailto:sec@interop.test\"\n\
         svc      HTTPS 1 . alpn=\"h2,h3\" port=8443 ipv4hint=192.0.2.1 ipv6hint=2001:db8::1\n\
         svc      HTTPS 2 alt alpn=h2 no-default-alpn\n\
         alias-svc CNAME svc\n\
         _dns     SVCB  1 dns alpn=dot port=853\n"
    );
    for i in 0..BIG {
        z.push_str(&format!("big      A     192.0.2.{}\n", i + 100));
    }
    z
}

/// The reverse zone of 192.0.2.0/24, for PTR lookups.
const REVERSE_ZONE: &str = "2.0.192.in-addr.arpa";

fn reverse_zone_file() -> String {
    format!(
        "$ORIGIN {REVERSE_ZONE}.\n$TTL 300\n\
         @   SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60\n\
         @   NS  ns.{ZONE}.\n\
         1   PTR www.{ZONE}.\n\
         2   PTR dual.{ZONE}.\n"
    )
}

fn start_knot(dir: &Path, port: u16) -> Daemon {
    let knotd = find("knotd").unwrap();
    std::fs::create_dir_all(dir.join("db")).unwrap();
    std::fs::write(dir.join("zone"), zone_file()).unwrap();
    std::fs::write(dir.join("reverse.zone"), reverse_zone_file()).unwrap();
    let conf = format!(
        "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
         \x20   udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
         database:\n    storage: \"{d}/db\"\n\
         log:\n  - target: stderr\n    any: info\n\
         zone:\n  - domain: {ZONE}\n    file: \"{d}/zone\"\n    journal-content: none\n    zonefile-sync: -1\n\
         \x20 - domain: {REVERSE_ZONE}\n    file: \"{d}/reverse.zone\"\n    journal-content: none\n    zonefile-sync: -1\n",
        d = dir.display()
    );
    std::fs::write(dir.join("knot.conf"), conf).unwrap();
    spawn(
        "knotd",
        &knotd,
        &["-c", &dir.join("knot.conf").to_string_lossy()],
        dir,
    )
}

fn start_unbound(dir: &Path, port: u16, knot_port: u16) -> Daemon {
    let unbound = find("unbound").unwrap();
    // Unbound serves `test.` itself (RFC 6761) unless told not to.
    let conf = format!(
        "server:\n    verbosity: 1\n    interface: 127.0.0.1@{port}\n    port: {port}\n\
         \x20   do-ip4: yes\n    do-ip6: no\n    do-udp: yes\n    do-tcp: yes\n\
         \x20   access-control: 127.0.0.0/8 allow\n    chroot: \"\"\n    username: \"\"\n\
         \x20   directory: \"{d}\"\n    pidfile: \"{d}/unbound.pid\"\n    logfile: \"\"\n    use-syslog: no\n\
         \x20   num-threads: 1\n    outgoing-range: 64\n    num-queries-per-thread: 64\n    so-reuseport: no\n\
         \x20   do-not-query-localhost: no\n    module-config: \"iterator\"\n    qname-minimisation: no\n\
         \x20   domain-insecure: \"{ZONE}\"\n    local-zone: \"test.\" nodefault\n\
         \x20   domain-insecure: \"{REVERSE_ZONE}\"\n    local-zone: \"{REVERSE_ZONE}.\" nodefault\n\
         stub-zone:\n    name: \"{ZONE}\"\n    stub-addr: 127.0.0.1@{knot_port}\n\
         stub-zone:\n    name: \"{REVERSE_ZONE}\"\n    stub-addr: 127.0.0.1@{knot_port}\n\
         remote-control:\n    control-enable: no\n",
        d = dir.display()
    );
    std::fs::write(dir.join("unbound.conf"), conf).unwrap();
    spawn(
        "unbound",
        &unbound,
        &["-d", "-c", &dir.join("unbound.conf").to_string_lossy()],
        dir,
    )
}

fn spawn(name: &'static str, binary: &Path, args: &[&str], dir: &Path) -> Daemon {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    Daemon { name, child, log }
}

/// What `dig` says about one question.
#[derive(Debug, PartialEq, Eq)]
struct DigAnswer {
    status: String,
    /// CNAME targets in answer order, without the final dot.
    cnames: Vec<String>,
    /// Addresses of the type asked for.
    addrs: BTreeSet<IpAddr>,
    /// The smallest TTL in the answer section.
    ttl: Option<u32>,
    /// Whether dig had to retry over TCP (its output says "Truncated").
    truncated: bool,
}

/// `dig @server name rtype` with the header comments and the answer section.
fn run_dig(server: SocketAddr, name: &str, rtype: &str) -> std::process::Output {
    Command::new(find("dig").unwrap())
        .args([
            &format!("@{}", server.ip()),
            "-p",
            &server.port().to_string(),
            "+noall",
            "+comments",
            "+answer",
            "+tries=2",
            "+time=2",
            name,
            rtype,
        ])
        .output()
        .expect("dig runs")
}

/// The status dig printed (`NOERROR`, `NXDOMAIN`, ...).
fn status_of(text: &str) -> String {
    text.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("NO ANSWER")
        .to_string()
}

fn dig(server: SocketAddr, name: &str, rtype: &str) -> DigAnswer {
    let output = run_dig(server, name, rtype);
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let status = status_of(&text);
    let mut cnames = Vec::new();
    let mut addrs = BTreeSet::new();
    let mut ttl: Option<u32> = None;
    for line in text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let Some(t) = fields.get(1).and_then(|t| t.parse().ok()) {
            ttl = Some(ttl.map_or(t, |min: u32| min.min(t)));
        }
        match fields.as_slice() {
            [_, _, "IN", "CNAME", target] => cnames.push(target.trim_end_matches('.').to_string()),
            [_, _, "IN", t, addr] if *t == rtype => {
                addrs.insert(addr.parse().unwrap());
            }
            _ => {}
        }
    }
    DigAnswer {
        status,
        cnames,
        addrs,
        ttl,
        truncated: text.contains("Truncated"),
    }
}

/// Polls `server` with dig until it answers for the zone, up to 20 s.
fn wait_ready(server: SocketAddr, daemon: &mut Daemon) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
            panic!(
                "{} exited with {status} before serving:\n{log}",
                daemon.name
            );
        }
        if dig(server, ZONE, "SOA").status == "NOERROR" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} on {server} did not answer within 20 s",
            daemon.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The questions asked of both servers: (name, type, expected outcome as
/// dig reports it). The expectations pin the zone; the comparison with dig
/// is the test.
fn questions() -> Vec<(String, QueryType, &'static str)> {
    let q = |n: &str, t, s| (format!("{n}.{ZONE}"), t, s);
    vec![
        q("www", QueryType::A, "NOERROR"),
        q("dual", QueryType::A, "NOERROR"),
        q("dual", QueryType::Aaaa, "NOERROR"),
        q("multi", QueryType::A, "NOERROR"),
        q("multi", QueryType::Aaaa, "NOERROR"),
        q("alias1", QueryType::A, "NOERROR"),
        q("alias1", QueryType::Aaaa, "NOERROR"),
        q("alias3", QueryType::A, "NOERROR"),
        q("alias1", QueryType::Cname, "NOERROR"),
        q("big", QueryType::A, "NOERROR"),
        q("short", QueryType::A, "NOERROR"),
        q("missing", QueryType::A, "NXDOMAIN"),
        q("deep.missing", QueryType::Aaaa, "NXDOMAIN"),
        q("dangling", QueryType::A, "NXDOMAIN"),
        q("www", QueryType::Aaaa, "NOERROR"), // NODATA
        q("v6only", QueryType::A, "NOERROR"), // NODATA
    ]
}

/// One socket, so that questions asked all at once are in flight on it
/// together (and, when batching, leave in batches).
fn config(server: SocketAddr, case_randomization: bool, batching: Batching) -> ResolverConfig {
    ResolverConfig::builder()
        .nameserver(server)
        .timeout(Duration::from_secs(3))
        .min_timeout(Duration::from_secs(3))
        .attempts(2)
        .case_randomization(case_randomization)
        .batching(batching)
        .udp_sockets(1)
        .ipv6_egress(Some(true))
        .cache(Some(CacheConfig::default()))
        .build()
}

/// What a lookup came to, comparable across resolvers (addresses sorted:
/// Unbound rotates the order of an RRset).
fn outcome(got: &Result<crawldns::Lookup, crawldns::Error>) -> String {
    match got {
        Ok(l) => {
            let ips: BTreeSet<IpAddr> = l.ips().iter().copied().collect();
            format!("{ips:?} {:?} {:?}", l.target(), l.chain())
        }
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// Compares crawldns with dig for every question through `server`. When
/// batching, the questions are also asked all at once, so they leave padded
/// (and, as the workers' timing allows, in GSO batches: the resolver's own
/// tests count those), and must come back as they do one by one.
async fn compare(
    label: &str,
    server: SocketAddr,
    case_randomization: bool,
    batching: Batching,
) -> Resolver {
    let concurrent = if batching != Batching::Off {
        let resolver = Resolver::new(config(server, case_randomization, batching)).unwrap();
        let mut lookups = tokio::task::JoinSet::new();
        for (i, (name, query_type, _)) in questions().into_iter().enumerate() {
            let resolver = resolver.clone();
            lookups.spawn(async move { (i, outcome(&resolver.lookup(&name, query_type).await)) });
        }
        let mut results = vec![String::new(); questions().len()];
        while let Some(done) = lookups.join_next().await {
            let (i, result) = done.unwrap();
            results[i] = result;
        }
        let m = resolver.metrics();
        assert_eq!(m.mismatched, 0, "{label}: {m:?}");
        Some(results)
    } else {
        None
    };
    let resolver = Resolver::new(config(server, case_randomization, batching)).unwrap();
    for (name, query_type, expected) in questions() {
        let dig_type = query_type.as_str();
        let want = {
            let name = name.clone();
            tokio::task::spawn_blocking(move || dig(server, &name, dig_type))
                .await
                .unwrap()
        };
        assert_eq!(
            want.status, expected,
            "{label}: dig {name} {dig_type}: {want:?}"
        );
        let got = resolver.lookup(&name, query_type).await;
        let what = format!("{label} (0x20 {case_randomization}, {batching:?}): {name} {dig_type}");
        match (want.status.as_str(), &got) {
            ("NXDOMAIN", Err(e)) => assert_eq!(e.kind(), ErrorKind::NxDomain, "{what}: {e}"),
            ("NOERROR", Err(e)) if want.addrs.is_empty() && want.cnames.is_empty() => {
                assert_eq!(e.kind(), ErrorKind::NoData, "{what}: {e}")
            }
            ("NOERROR", Ok(lookup)) if query_type == QueryType::Cname => {
                assert_eq!(
                    lookup.target(),
                    want.cnames.first().map(String::as_str),
                    "{what}"
                );
            }
            ("NOERROR", Ok(lookup)) => {
                let addrs: BTreeSet<IpAddr> = lookup.ips().iter().copied().collect();
                assert_eq!(addrs, want.addrs, "{what}: addresses");
                assert_eq!(lookup.ips().len(), want.addrs.len(), "{what}: duplicates");
                assert_eq!(lookup.chain(), want.cnames, "{what}: CNAME chain");
                assert!(!addrs.is_empty(), "{what}: no addresses");
                // Knot's TTLs are constant; Unbound's count down in its cache.
                let ttl = want.ttl.unwrap();
                if label == "knot" {
                    assert_eq!(lookup.ttl(), ttl, "{what}: ttl");
                } else {
                    assert!(
                        lookup.ttl() <= 300 && ttl <= 300,
                        "{what}: ttl {} vs {ttl}",
                        lookup.ttl()
                    );
                }
            }
            _ => panic!("{what}: dig says {want:?}, crawldns {got:?}"),
        }
        println!("  {what}: {} ok", want.status);
    }
    if let Some(concurrent) = concurrent {
        for ((name, query_type, _), at_once) in questions().into_iter().zip(concurrent) {
            let one_by_one = outcome(&resolver.lookup(&name, query_type).await);
            assert_eq!(
                at_once, one_by_one,
                "{label}: {name} {query_type:?} asked at once"
            );
        }
    }
    // lookup_ip: the union of both families, in happy-eyeballs order.
    let both = resolver.lookup_ip(&format!("multi.{ZONE}")).await.unwrap();
    assert_eq!(both.addrs.len(), 5);
    assert!(both.addrs[0].is_ipv6(), "IPv6 first: {:?}", both.addrs);
    // The big answer came over TCP after a truncated UDP answer.
    let m = resolver.metrics();
    assert!(m.truncated >= 1, "{label}: no truncated answer seen: {m:?}");
    assert!(m.tcp_sent >= 1, "{label}: no TCP query: {m:?}");
    assert_eq!(m.mismatched, 0, "{label}: {m:?}");
    resolver
}

fn write_seeds(label: &str, server: SocketAddr) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/answer_decode");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (name, query_type, _)) in questions().into_iter().enumerate() {
        let rtype: RecordType = query_type.as_str().parse().unwrap();
        let q = Question::new(&name, rtype, true).unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        socket
            .send_to(&encode_query(i as u16, &q, 1232), server)
            .unwrap();
        let mut buf = vec![0u8; 65_535];
        let Ok((len, _)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let selector = match rtype {
            RecordType::AAAA => 1,
            RecordType::CNAME => 2,
            _ => 0,
        };
        let mut seed = vec![(8 << 4) | (selector << 1) | 1];
        seed.extend_from_slice(&buf[..len]);
        let short = name.trim_end_matches(&format!(".{ZONE}")).replace('.', "_");
        std::fs::write(
            dir.join(format!("{label}-{short}-{}", query_type.as_str())),
            seed,
        )
        .unwrap();
    }
}

/// The record types beyond addresses: (name or address, type, dig's status).
fn typed_questions() -> Vec<(String, QueryType, &'static str)> {
    let q = |n: &str, t, s| (format!("{n}.{ZONE}"), t, s);
    vec![
        q("mail", QueryType::Mx, "NOERROR"),
        q("txt", QueryType::Txt, "NOERROR"),
        q("_sip._udp", QueryType::Srv, "NOERROR"),
        q("caa", QueryType::Caa, "NOERROR"),
        q("svc", QueryType::Https, "NOERROR"),
        q("alias-svc", QueryType::Https, "NOERROR"),
        q("_dns", QueryType::Svcb, "NOERROR"),
        (ZONE.to_string(), QueryType::Ns, "NOERROR"),
        (ZONE.to_string(), QueryType::Soa, "NOERROR"),
        // Reverse lookups: crawldns takes the address, dig the arpa name.
        ("192.0.2.1".to_string(), QueryType::Ptr, "NOERROR"),
        ("192.0.2.2".to_string(), QueryType::Ptr, "NOERROR"),
        q("www", QueryType::Mx, "NOERROR"), // NODATA
        q("missing", QueryType::Txt, "NXDOMAIN"),
    ]
}

/// dig's status and the rdata of the answer records of `rtype`, as text.
fn dig_rdata(server: SocketAddr, name: &str, rtype: &str) -> (String, BTreeSet<String>) {
    let text = String::from_utf8_lossy(&run_dig(server, name, rtype).stdout).into_owned();
    let status = status_of(&text);
    let rdata = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
        .filter_map(|line| {
            // owner ttl class type rdata... (dig pads with tabs; no rdata
            // here has runs of spaces inside quotes).
            let fields: Vec<&str> = line.split_whitespace().collect();
            let t = *fields.get(3)?;
            let rest = fields.get(4..)?.join(" ");
            (t == rtype).then(|| normal_rdata(rtype, &rest))
        })
        .collect();
    (status, rdata)
}

/// Service-binding values are compared without their optional quotes.
fn normal_rdata(rtype: &str, text: &str) -> String {
    if rtype == "HTTPS" || rtype == "SVCB" {
        text.replace('"', "")
    } else {
        text.to_string()
    }
}

fn fqdn(name: &str) -> String {
    if name == "." {
        ".".into()
    } else {
        format!("{name}.")
    }
}

/// A character-string as dig prints it: quoted, `"` and `\` escaped,
/// other unprintable bytes as `\DDD`.
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// crawldns's typed record in dig's presentation format.
fn present(data: &RecordData) -> String {
    match data {
        RecordData::Mx {
            preference,
            exchange,
        } => format!("{preference} {}", fqdn(exchange)),
        RecordData::Txt(strings) => strings
            .iter()
            .map(|s| quoted(s))
            .collect::<Vec<_>>()
            .join(" "),
        RecordData::Ns(host) | RecordData::Ptr(host) => fqdn(host),
        RecordData::Soa(soa) => format!(
            "{} {} {} {} {} {} {}",
            fqdn(&soa.mname),
            fqdn(&soa.rname),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        ),
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => format!("{priority} {weight} {port} {}", fqdn(target)),
        RecordData::Caa {
            critical,
            tag,
            value,
        } => format!(
            "{} {tag} {}",
            if *critical { 128 } else { 0 },
            quoted(value)
        ),
        RecordData::ServiceBinding(b) => {
            let mut text = format!("{} {}", b.priority, fqdn(&b.target));
            if !b.alpn.is_empty() {
                text.push_str(&format!(" alpn={}", b.alpn.join(",")));
            }
            if b.no_default_alpn {
                text.push_str(" no-default-alpn");
            }
            if let Some(port) = b.port {
                text.push_str(&format!(" port={port}"));
            }
            if !b.ipv4hint.is_empty() {
                let hints: Vec<String> = b.ipv4hint.iter().map(|a| a.to_string()).collect();
                text.push_str(&format!(" ipv4hint={}", hints.join(",")));
            }
            if !b.ipv6hint.is_empty() {
                let hints: Vec<String> = b.ipv6hint.iter().map(|a| a.to_string()).collect();
                text.push_str(&format!(" ipv6hint={}", hints.join(",")));
            }
            text
        }
        other => panic!("a record type this test does not present: {other:?}"),
    }
}

/// Every typed question through `server`: crawldns's records equal dig's,
/// as sets of rdata in dig's presentation format.
async fn compare_types(label: &str, server: SocketAddr) {
    let resolver = Resolver::new(config(server, true, Batching::WhenBusy)).unwrap();
    for (name, query_type, expected) in typed_questions() {
        let dig_type = query_type.as_str();
        let dig_name = match name.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => {
                let [a, b, c, d] = v4.octets();
                format!("{d}.{c}.{b}.{a}.in-addr.arpa")
            }
            _ => name.clone(),
        };
        let (status, want) =
            tokio::task::spawn_blocking(move || dig_rdata(server, &dig_name, dig_type))
                .await
                .unwrap();
        let what = format!("{label}: {name} {dig_type}");
        assert_eq!(status, expected, "{what}: dig");
        match resolver.lookup(&name, query_type).await {
            Ok(lookup) => {
                assert!(
                    !want.is_empty(),
                    "{what}: dig has no records, crawldns {lookup:?}"
                );
                let got: BTreeSet<String> = lookup
                    .records()
                    .iter()
                    .map(|r| normal_rdata(dig_type, &present(r)))
                    .collect();
                assert_eq!(got, want, "{what}");
                assert_eq!(lookup.records().len(), want.len(), "{what}: duplicates");
                if name.starts_with("alias-svc") {
                    assert_eq!(lookup.chain(), [format!("svc.{ZONE}")], "{what}: chain");
                }
            }
            Err(e) if status == "NXDOMAIN" => assert_eq!(e.kind(), ErrorKind::NxDomain, "{what}"),
            Err(e) => {
                assert!(want.is_empty(), "{what}: dig has {want:?}, crawldns {e}");
                assert_eq!(e.kind(), ErrorKind::NoData, "{what}: {e}");
            }
        }
        println!("  {what}: {status} ok ({} records)", want.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawldns_agrees_with_dig_through_knot_and_unbound() {
    let missing: Vec<&str> = ["knotd", "unbound", "dig"]
        .into_iter()
        .filter(|b| find(b).is_none())
        .collect();
    if !missing.is_empty() {
        let message = format!(
            "interop test needs {} (Debian packages: knot, unbound, bind9-dnsutils); \
             run scripts/test.sh, which installs them, or set CRAWLDNS_SKIP_INTEROP=1 to skip",
            missing.join(", ")
        );
        if std::env::var("CRAWLDNS_SKIP_INTEROP").as_deref() == Ok("1") {
            eprintln!("skipped: {message}");
            return;
        }
        panic!("{message}");
    }

    let dir = TempDir::new();
    let knot_addr = SocketAddr::from(([127, 0, 0, 1], free_port([127, 0, 0, 1])));
    let mut knot = start_knot(&dir.0, knot_addr.port());
    wait_ready(knot_addr, &mut knot);
    let unbound_addr = SocketAddr::from(([127, 0, 0, 1], free_port([127, 0, 0, 1])));
    let mut unbound = start_unbound(&dir.0, unbound_addr.port(), knot_addr.port());
    wait_ready(unbound_addr, &mut unbound);

    // dig itself sees the big answer truncated over UDP (and retries on TCP).
    assert!(dig(knot_addr, &format!("big.{ZONE}"), "A").truncated);

    for (label, addr) in [("knot", knot_addr), ("unbound", unbound_addr)] {
        for (case_randomization, batching) in [
            (false, Batching::Off),
            (true, Batching::WhenBusy),
            (true, Batching::Always),
        ] {
            println!("{label} at {addr}, 0x20 {case_randomization}, {batching:?}:");
            compare(label, addr, case_randomization, batching).await;
        }
        println!("{label} at {addr}, typed records:");
        compare_types(label, addr).await;
        if std::env::var("CRAWLDNS_WRITE_FUZZ_SEEDS").as_deref() == Ok("1") {
            write_seeds(label, addr);
        }
    }
    drop(unbound);
    drop(knot);
}
