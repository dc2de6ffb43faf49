//! Interop of the stream transports with real servers from Debian packages:
//! Knot DNS authoritative for a zone this test writes, Unbound in front of it
//! (a stub zone) serving plain DNS, DNS over TLS (`tls-port`) and DNS over
//! HTTPS (`https-port`, Debian's build has nghttp2) with a test certificate.
//! For every question, the answer over pipelined TCP, DoT and DoH equals
//! `dig`'s over UDP, and `kdig` (knot-dnsutils), a second client, gets the
//! same over DoT and DoH. Needs `knotd`, `unbound`, `dig` and `kdig`
//! (`scripts/test.sh` installs them).

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use super::pipeline::keepalive_timeout;
use super::stream_tests::Client;
use super::tls::TlsOptions;
use super::StreamError;
use crate::config::{NameServer, Protocol, ResolverConfig};
use crate::error::ErrorKind;
use crate::records::{Lookup, QueryType};
use crate::resolver::Resolver;

const ZONE: &str = "interop.test";
/// The name on Unbound's certificate.
const TLS_NAME: &str = "dns.interop.test";
const TIMEOUT: Duration = Duration::from_secs(5);

/// A running daemon, killed when dropped.
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
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- {} log ---\n{log}", self.name);
        }
    }
}

fn find(binary: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{binary} not found: run scripts/test.sh, which installs it"))
}

/// A port free for both UDP and TCP on 127.0.0.1 right now.
fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn spawn(name: &'static str, args: &[&str], dir: &Path) -> Daemon {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(find(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Daemon { name, child, log }
}

fn start_knot(dir: &Path, port: u16) -> Daemon {
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let mut zone = format!(
        "$ORIGIN {ZONE}.\n$TTL 300\n\
         @ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n\
         www A 192.0.2.1\ndual A 192.0.2.2\ndual AAAA 2001:db8::2\n\
         multi A 192.0.2.10\nmulti A 192.0.2.11\nmulti AAAA 2001:db8::10\n\
         alias1 CNAME alias2\nalias2 CNAME dual\n"
    );
    // 100 A records: more than a UDP answer of 1232 bytes holds.
    for i in 0..100 {
        zone.push_str(&format!("big A 192.0.2.{}\n", i + 100));
    }
    std::fs::write(dir.join("zone"), zone).unwrap();
    let conf = format!(
        "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
         \x20   udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
         database:\n    storage: \"{d}/db\"\n\
         log:\n  - target: stderr\n    any: info\n\
         zone:\n  - domain: {ZONE}\n    file: \"{d}/zone\"\n    journal-content: none\n    zonefile-sync: -1\n",
        d = dir.display()
    );
    std::fs::write(dir.join("knot.conf"), conf).unwrap();
    spawn(
        "knotd",
        &["-c", &dir.join("knot.conf").to_string_lossy()],
        dir,
    )
}

/// Ports of Unbound's listeners.
struct Ports {
    dns: u16,
    tls: u16,
    https: u16,
}

fn start_unbound(dir: &Path, ports: &Ports, knot: u16) -> Daemon {
    let conf = format!(
        "server:\n    verbosity: 1\n\
         \x20   interface: 127.0.0.1@{dns}\n    interface: 127.0.0.1@{tls}\n    interface: 127.0.0.1@{https}\n\
         \x20   port: {dns}\n    tls-port: {tls}\n    https-port: {https}\n\
         \x20   tls-service-key: \"{d}/key.pem\"\n    tls-service-pem: \"{d}/cert.pem\"\n\
         \x20   http-endpoint: \"/dns-query\"\n\
         \x20   edns-tcp-keepalive: yes\n    edns-tcp-keepalive-timeout: 30000\n\
         \x20   do-ip4: yes\n    do-ip6: no\n    do-udp: yes\n    do-tcp: yes\n\
         \x20   access-control: 127.0.0.0/8 allow\n    chroot: \"\"\n    username: \"\"\n\
         \x20   directory: \"{d}\"\n    pidfile: \"{d}/unbound.pid\"\n    logfile: \"\"\n    use-syslog: no\n\
         \x20   num-threads: 1\n    so-reuseport: no\n\
         \x20   do-not-query-localhost: no\n    module-config: \"iterator\"\n    qname-minimisation: no\n\
         \x20   domain-insecure: \"{ZONE}\"\n    local-zone: \"test.\" nodefault\n\
         stub-zone:\n    name: \"{ZONE}\"\n    stub-addr: 127.0.0.1@{knot}\n\
         remote-control:\n    control-enable: no\n",
        dns = ports.dns,
        tls = ports.tls,
        https = ports.https,
        d = dir.display()
    );
    std::fs::write(dir.join("unbound.conf"), conf).unwrap();
    spawn(
        "unbound",
        &["-d", "-c", &dir.join("unbound.conf").to_string_lossy()],
        dir,
    )
}

/// Writes a CA and a leaf for [`TLS_NAME`] signed by it: returns the CA PEM.
fn write_certificate(dir: &Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "crawldns interop test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_params = CertificateParams::new(vec![TLS_NAME.to_owned()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    // The chain: the leaf, then the CA.
    std::fs::write(dir.join("cert.pem"), leaf.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    ca_cert.pem()
}

/// What a client saw: the status and the records of the answer section, as
/// comparable text ("CNAME target" or the address), sorted.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: String,
    records: BTreeSet<String>,
}

fn seen_of(message: &Message) -> Seen {
    let status = match message.metadata.response_code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::ServFail => "SERVFAIL",
        _ => "OTHER",
    };
    let records = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            RData::CNAME(c) => Some(format!("CNAME {}", c.0.to_ascii().trim_end_matches('.'))),
            _ => None,
        })
        .collect();
    Seen {
        status: status.to_owned(),
        records,
    }
}

/// What a resolver lookup came to, as [`seen_of`] would read its answer:
/// the CNAME chain followed and the addresses at its end.
fn seen_of_lookup(result: &Result<Lookup, crate::Error>) -> Seen {
    let (status, records) = match result {
        Ok(lookup) => (
            "NOERROR",
            lookup
                .chain()
                .iter()
                .map(|target| format!("CNAME {target}"))
                .chain(lookup.ips().iter().map(ToString::to_string))
                .collect(),
        ),
        Err(e) if e.kind() == ErrorKind::NoData => ("NOERROR", BTreeSet::new()),
        Err(e) if e.kind() == ErrorKind::NxDomain => ("NXDOMAIN", BTreeSet::new()),
        Err(e) => panic!("lookup failed: {e}"),
    };
    Seen {
        status: status.to_owned(),
        records,
    }
}

/// Reads dig's or kdig's default output.
fn seen_of_text(text: &str) -> Seen {
    // The header line (kdig over HTTPS also prints an HTTP status line).
    let header = text.lines().find(|l| l.contains("opcode:")).unwrap_or("");
    let status = header
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split([',', ';']).next())
        .unwrap_or("NO ANSWER")
        .trim()
        .to_owned();
    let mut records = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with(';')) {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            [_, _, "IN", "CNAME", target] => {
                records.insert(format!("CNAME {}", target.trim_end_matches('.')));
            }
            [_, _, "IN", "A" | "AAAA", addr] => {
                records.insert((*addr).to_owned());
            }
            _ => {}
        }
    }
    Seen { status, records }
}

fn dig(port: u16, name: &str, rtype: &str) -> Seen {
    let out = Command::new(find("dig"))
        .args(["@127.0.0.1", "-p", &port.to_string(), "+tries=2", "+time=2"])
        .args([name, rtype])
        .output()
        .expect("dig runs");
    seen_of_text(&String::from_utf8_lossy(&out.stdout))
}

fn kdig(port: u16, extra: &[&str], ca: &Path, name: &str, rtype: &str) -> Seen {
    let out = Command::new(find("kdig"))
        .args(["@127.0.0.1", "-p", &port.to_string(), "+retry=1", "+time=3"])
        .arg(format!("+tls-ca={}", ca.display()))
        .arg(format!("+tls-hostname={TLS_NAME}"))
        .args(extra)
        .args([name, rtype])
        .output()
        .expect("kdig runs");
    seen_of_text(&String::from_utf8_lossy(&out.stdout))
}

/// Polls until Unbound answers over UDP for the zone, up to 20 s.
fn wait_ready(port: u16, daemons: &mut [&mut Daemon]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for daemon in daemons.iter_mut() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
                panic!("{} exited with {status}:\n{log}", daemon.name);
            }
        }
        if dig(port, ZONE, "SOA").status == "NOERROR" {
            return;
        }
        assert!(Instant::now() < deadline, "no answer within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const QUESTIONS: [(&str, RecordType, &str); 9] = [
    ("www", RecordType::A, "NOERROR"),
    ("dual", RecordType::A, "NOERROR"),
    ("dual", RecordType::AAAA, "NOERROR"),
    ("multi", RecordType::A, "NOERROR"),
    ("multi", RecordType::AAAA, "NOERROR"),
    ("alias1", RecordType::A, "NOERROR"),
    ("big", RecordType::A, "NOERROR"),
    ("missing", RecordType::A, "NXDOMAIN"),
    ("www", RecordType::AAAA, "NOERROR"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_dot_and_doh_answers_equal_digs_through_unbound() {
    if std::env::var_os("CRAWLDNS_SKIP_INTEROP").is_some() {
        eprintln!("skipped: CRAWLDNS_SKIP_INTEROP is set");
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "crawldns-stream-interop-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_pem = write_certificate(&dir);
    let knot_port = free_port();
    let ports = Ports {
        dns: free_port(),
        tls: free_port(),
        https: free_port(),
    };
    let mut knot = start_knot(&dir, knot_port);
    let mut unbound = start_unbound(&dir, &ports, knot_port);
    // Blocking for a moment before any lookup is under way is harmless.
    wait_ready(ports.dns, &mut [&mut knot, &mut unbound]);

    let options = TlsOptions::new(TLS_NAME).with_ca_pem(ca_pem.as_bytes());
    let clients = [
        ("tcp", Client::tcp(), ports.dns),
        ("dot", Client::tls(&options), ports.tls),
        ("doh", Client::https(&options, false), ports.https),
        ("doh GET", Client::https(&options, true), ports.https),
    ];
    let ca_file = dir.join("ca.pem");
    // The resolver itself over each stream transport, as a user configures it.
    let resolvers: Vec<(Protocol, Resolver)> = [
        (Protocol::Tcp, ports.dns),
        (Protocol::Tls, ports.tls),
        (Protocol::Https, ports.https),
    ]
    .into_iter()
    .map(|(protocol, port)| {
        let server = NameServer {
            tls_name: protocol.is_encrypted().then(|| TLS_NAME.to_owned()),
            ..NameServer::new(SocketAddr::from(([127, 0, 0, 1], port)), protocol)
        };
        let config = ResolverConfig::builder()
            .push_nameserver(server)
            .ca_file(Some(ca_file.clone()))
            .cache(None)
            .ipv6_egress(Some(true))
            .build();
        (protocol, Resolver::new(config).expect("resolver"))
    })
    .collect();
    for (short, rtype, status) in QUESTIONS {
        let name = format!("{short}.{ZONE}");
        let type_text = rtype.to_string();
        let reference = {
            let (name, type_text) = (name.clone(), type_text.clone());
            let ca_file = ca_file.clone();
            let (dns, tls, https) = (ports.dns, ports.tls, ports.https);
            tokio::task::spawn_blocking(move || {
                (
                    dig(dns, &name, &type_text),
                    kdig(tls, &["+tls"], &ca_file, &name, &type_text),
                    kdig(https, &["+https=/dns-query"], &ca_file, &name, &type_text),
                )
            })
            .await
            .unwrap()
        };
        let (by_dig, by_kdig_tls, by_kdig_https) = reference;
        assert_eq!(by_dig.status, status, "dig {name} {type_text}: {by_dig:?}");
        assert_eq!(by_kdig_tls, by_dig, "kdig over TLS: {name} {type_text}");
        assert_eq!(by_kdig_https, by_dig, "kdig over HTTPS: {name} {type_text}");
        for (client_label, client, port) in &clients {
            let server = SocketAddr::from(([127, 0, 0, 1], *port));
            let message = client
                .ask(server, &name, rtype, TIMEOUT)
                .await
                .unwrap_or_else(|e| panic!("{client_label}: {name} {type_text}: {e:?}"));
            assert_eq!(
                seen_of(&message),
                by_dig,
                "{client_label}: {name} {type_text}"
            );
        }
        let query_type = if rtype == RecordType::AAAA {
            QueryType::Aaaa
        } else {
            QueryType::A
        };
        for (protocol, resolver) in &resolvers {
            let got = resolver.lookup(&name, query_type).await;
            assert_eq!(
                seen_of_lookup(&got),
                by_dig,
                "resolver over {protocol:?}: {name} {type_text}"
            );
        }
        println!(
            "  {name} {type_text}: {} over tcp, dot, doh (transports and resolver) = dig",
            by_dig.status
        );
    }
    // RFC 7828: the first query of a connection asked for edns-tcp-keepalive
    // and Unbound announced its 30 s idle timeout, which the pool adopts.
    let fresh = Client::tcp();
    let server = SocketAddr::from(([127, 0, 0, 1], ports.dns));
    let first = fresh
        .ask(server, &format!("www.{ZONE}"), RecordType::A, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(keepalive_timeout(&first), Some(Duration::from_secs(30)));

    // Many lookups at once over DoT and DoH: a few connections at most.
    for (label, client, port) in &clients[1..3] {
        let server = SocketAddr::from(([127, 0, 0, 1], *port));
        let mut lookups = tokio::task::JoinSet::new();
        for i in 0..2000 {
            let client = client.clone();
            let (short, rtype, _) = QUESTIONS[i % QUESTIONS.len()];
            lookups.spawn(async move {
                client
                    .ask(server, &format!("{short}.{ZONE}"), rtype, TIMEOUT)
                    .await
            });
        }
        while let Some(done) = lookups.join_next().await {
            let message = done.unwrap().unwrap_or_else(|e| panic!("{label}: {e:?}"));
            assert!(
                matches!(
                    message.metadata.response_code,
                    ResponseCode::NoError | ResponseCode::NXDomain
                ),
                "{label}: {message:?}"
            );
        }
        let opened = client.opened();
        assert!((1..=4).contains(&opened), "{label}: {opened} connections");
        println!("  {label}: 2000 concurrent lookups on {opened} connection(s)");
    }

    // A certificate not for the name asked, or from an untrusted CA: a
    // verification error, never an answer.
    let wrong_name = TlsOptions::new("other.interop.test").with_ca_pem(ca_pem.as_bytes());
    let untrusted = TlsOptions::new(TLS_NAME);
    for options in [&wrong_name, &untrusted] {
        for (client, port) in [
            (Client::tls(options), ports.tls),
            (Client::https(options, false), ports.https),
        ] {
            let server = SocketAddr::from(([127, 0, 0, 1], port));
            let result = client
                .ask(server, &format!("www.{ZONE}"), RecordType::A, TIMEOUT)
                .await;
            assert!(
                matches!(result, Err(StreamError::Verification(_))),
                "{}: {result:?}",
                options.name
            );
        }
    }
    for (protocol, resolver) in &resolvers {
        let m = resolver.metrics();
        let sent = m.tcp_sent + m.tls_sent + m.https_sent;
        assert_eq!(
            (m.udp_sent, sent),
            (0, QUESTIONS.len() as u64),
            "{protocol:?}: {m:?}"
        );
        assert_eq!(m.connections_opened, 1, "{protocol:?}: {m:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
