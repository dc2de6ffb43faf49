//! What the fleet tests share: real `redis-server` and `unbound` started
//! on loopback from their Debian packages, the testbed in the test process,
//! `crawldns fleet` processes, and reading the fleet's state from Redis.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crawldns_fleet::{FleetRedis, FleetStatus, RedisUrl, WorkerStats};
use crawldns_testbed::http_farm::HostStats;
pub use crawldns_testbed::separate_host::{SeparateHost, LINK_RANGE, SERVICE_ADDR};
use crawldns_testkit::cli::{Bed, BedConfig};
use tokio::runtime::Runtime;

/// A binary from PATH or the usual sbin directories; the test fails when
/// it is missing (scripts/test.sh installs it).
pub fn find(binary: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{binary} is not installed: run scripts/test.sh, which installs it")
        })
}

/// A port free for both UDP and TCP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A daemon, killed when dropped; its log is printed if the test failed.
pub struct Daemon {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &str, binary: &Path, args: &[&str], log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// Waits (bounded) until the log holds `text`.
    pub fn wait_for_log(&mut self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(text) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before {text:?}:\n{log}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log {text:?} in {within:?}:\n{log}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) {
        signal(&self.child, libc::SIGTERM);
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(&self.log) {
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- {} log (last lines) ---", self.name);
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

pub fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {pid} {sig}");
}

/// `redis-server` on 127.0.0.1 and [`SERVICE_ADDR`] (where workers on
/// separate hosts reach it) with its data (AOF, fsync on every write) in
/// `dir`, so that a restart finds the frontier again.
pub fn start_redis(dir: &Path, port: u16, password: Option<&str>) -> Daemon {
    let redis = find("redis-server");
    let port_text = port.to_string();
    let dir_text = dir.to_string_lossy().into_owned();
    let service = SERVICE_ADDR.to_string();
    let mut args = vec![
        "--port",
        &port_text,
        "--bind",
        "127.0.0.1",
        &service,
        "--dir",
        &dir_text,
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "no",
    ];
    if let Some(pw) = password {
        args.extend(["--requirepass", pw]);
    }
    let log = dir.join(format!(
        "redis-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut daemon = Daemon::spawn("redis-server", &redis, &args, log);
    daemon.wait_for_log("Ready to accept connections", Duration::from_secs(20));
    daemon
}

/// Unbound on 127.0.0.1@`port` and [`SERVICE_ADDR`]@`port`, serving
/// [`SeparateHost`]s' links too, recursive for `crawl.test` through a stub
/// zone at the testbed's DNS server, logging every query it receives.
pub fn start_unbound(dir: &Path, port: u16, stub: SocketAddr) -> Daemon {
    let unbound = find("unbound");
    std::fs::create_dir_all(dir).unwrap();
    let conf = format!(
        "server:\n    verbosity: 1\n    interface: 127.0.0.1@{port}\n    interface: {service}@{port}\n    port: {port}\n\
         \x20   do-ip4: yes\n    do-ip6: no\n    do-udp: yes\n    do-tcp: yes\n\
         \x20   access-control: 127.0.0.0/8 allow\n    access-control: {links}/{bits} allow\n    chroot: \"\"\n    username: \"\"\n\
         \x20   directory: \"{d}\"\n    pidfile: \"{d}/unbound.pid\"\n    logfile: \"{d}/queries.log\"\n    use-syslog: no\n\
         \x20   log-queries: yes\n    num-threads: 1\n    so-reuseport: no\n\
         \x20   do-not-query-localhost: no\n    module-config: \"iterator\"\n    qname-minimisation: no\n\
         \x20   domain-insecure: \"crawl.test\"\n    local-zone: \"test.\" nodefault\n\
         stub-zone:\n    name: \"crawl.test\"\n    stub-addr: {}@{}\n\
         remote-control:\n    control-enable: no\n",
        stub.ip(),
        stub.port(),
        d = dir.display(),
        service = SERVICE_ADDR,
        links = LINK_RANGE.0,
        bits = LINK_RANGE.1,
    );
    std::fs::write(dir.join("unbound.conf"), conf).unwrap();
    let mut daemon = Daemon::spawn(
        "unbound",
        &unbound,
        &["-d", "-c", &dir.join("unbound.conf").to_string_lossy()],
        dir.join("unbound.out"),
    );
    // Unbound is up once it answers; a query through it proves the stub.
    let deadline = Instant::now() + Duration::from_secs(20);
    let dig = find("dig");
    loop {
        let out = Command::new(&dig)
            .args([
                "+short",
                "+time=1",
                "+tries=1",
                "-p",
                &port.to_string(),
                "@127.0.0.1",
                "ready.crawl.test",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success()
            && !text.contains("connection refused")
            && !text.contains("timed out")
        {
            break;
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("unbound exited ({status})");
        }
        assert!(Instant::now() < deadline, "unbound did not come up: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon
}

/// The queries Unbound logged (lines `info: IP NAME. TYPE IN`), from byte
/// `from` of its log on: (lower-case name without the dot, type) → count.
pub fn unbound_queries(dir: &Path, from: u64) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for ((_client, name, rtype), n) in unbound_queries_by_client(dir, from) {
        *counts.entry((name, rtype)).or_default() += n;
    }
    counts
}

/// [`unbound_queries`] by the client's address too: (client, name, type)
/// → count.
pub fn unbound_queries_by_client(dir: &Path, from: u64) -> BTreeMap<(String, String, String), u64> {
    let mut file = std::fs::File::open(dir.join("queries.log")).unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    let text = text.get(usize::try_from(from).unwrap()..).unwrap_or("");
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.split(" info: ").nth(1) else {
            continue;
        };
        let parts: Vec<&str> = rest.split_whitespace().collect();
        if let [client, name, rtype, "IN"] = parts.as_slice() {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            *counts
                .entry(((*client).to_owned(), name, (*rtype).to_owned()))
                .or_default() += 1;
        }
    }
    counts
}

/// The length of Unbound's query log now.
pub fn unbound_log_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("queries.log")).map_or(0, |m| m.len())
}

/// The testbed (DNS server and HTTP farm) on its own runtime: the
/// testkit's bed with small bodies.
pub struct Farm(Bed);

impl Farm {
    pub fn start(hosts: u32, response_delay: Duration) -> Self {
        Self(Bed::start(BedConfig {
            hosts,
            http_delay: response_delay,
            body_size: 256,
            ..BedConfig::default()
        }))
    }

    pub fn dns_addr(&self) -> SocketAddr {
        self.0.dns_addr()
    }

    pub fn url(&self, host: u32, path: &str) -> String {
        self.0.url(host, path)
    }

    pub fn host_stats(&self) -> Vec<HostStats> {
        self.0.farm().stats().hosts
    }
}

/// `URLS` URLs over `hosts` hosts, host-interleaved: URL `i` is on host
/// `i % hosts`.
pub fn url_list(farm: &Farm, urls: u32, hosts: u32) -> Vec<String> {
    (0..urls)
        .map(|i| farm.url(i % hosts, &format!("/u{i}")))
        .collect()
}

/// Reads the fleet's state from Redis.
pub struct Fleet {
    pub runtime: Runtime,
    pub redis: FleetRedis,
}

impl Fleet {
    pub fn connect(url: &str, namespace: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = RedisUrl::parse(url).unwrap();
        let redis = runtime
            .block_on(FleetRedis::connect_retrying(
                &url,
                namespace,
                crawldns_fleet::Backoff::default(),
            ))
            .unwrap();
        Self { runtime, redis }
    }

    /// `INFO section` of the fleet's Redis.
    pub fn info(&self, section: &str) -> String {
        self.runtime.block_on(self.redis.info(section)).unwrap()
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset_stats(&self) {
        self.runtime.block_on(self.redis.reset_stats()).unwrap();
    }

    pub fn status(&self) -> FleetStatus {
        self.runtime
            .block_on(FleetStatus::read(&self.redis, 60_000))
            .unwrap()
    }

    /// Polls the fleet's state until `ready` holds (bounded).
    pub fn wait_until(
        &self,
        what: &str,
        within: Duration,
        mut ready: impl FnMut(&FleetStatus) -> bool,
    ) -> FleetStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(status) = self
                .runtime
                .block_on(FleetStatus::read(&self.redis, 60_000))
            {
                if ready(&status) {
                    return status;
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// A `crawldns fleet work` process.
pub struct Worker {
    pub id: String,
    pub child: Child,
    pub stderr_log: PathBuf,
}

impl Worker {
    pub fn spawn(dir: &Path, redis: &str, namespace: &str, id: &str, extra: &[&str]) -> Self {
        Self::spawn_on(None, dir, redis, namespace, id, extra)
    }

    /// A worker on `host` (run there with `ip netns exec`), or on this one.
    pub fn spawn_on(
        host: Option<&SeparateHost>,
        dir: &Path,
        redis: &str,
        namespace: &str,
        id: &str,
        extra: &[&str],
    ) -> Self {
        let stderr_log = dir.join(format!("{id}.err"));
        let mut command = match host {
            None => super::crawldns(),
            Some(host) => {
                // `ip netns exec` execs the program: the child's pid is the
                // worker's own, so signals reach it.
                let mut c = Command::new("ip");
                c.args(host.exec_args())
                    .arg(super::crawldns().get_program());
                c
            }
        };
        let child = command
            .args(["fleet", "work", "--namespace", namespace, "--id", id])
            .args(extra)
            .env("CRAWLDNS_REDIS_URL", redis)
            // For chasing a failure: CRAWLDNS_TEST_WORKER_LOG=crawldns_fleet=debug
            // logs every lease tick, CRAWLDNS_TEST_KEEP_LOGS=DIR keeps the logs.
            .env(
                "RUST_LOG",
                std::env::var("CRAWLDNS_TEST_WORKER_LOG")
                    .unwrap_or_else(|_| "crawldns_fleet=info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .unwrap();
        Self {
            id: id.to_owned(),
            child,
            stderr_log,
        }
    }

    /// Waits (bounded) for the exit; returns the final stats line.
    pub fn finish(mut self, within: Duration) -> WorkerStats {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Ok(dir) = std::env::var("CRAWLDNS_TEST_KEEP_LOGS") {
                    let copy = Path::new(&dir).join(format!("{}.err", self.id));
                    let _ = std::fs::copy(&self.stderr_log, copy);
                }
                let mut out = String::new();
                self.child
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut out)
                    .unwrap();
                let err = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
                assert!(
                    status.success(),
                    "worker {} failed ({status}):\n{err}",
                    self.id
                );
                return serde_json::from_str(out.trim())
                    .unwrap_or_else(|e| panic!("{e}: {out:?}\n{err}"));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let err = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
                panic!("worker {} did not finish in {within:?}:\n{err}", self.id);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let err = self.stderr();
            let tail: Vec<&str> = err.lines().rev().take(30).collect();
            eprintln!("--- worker {} stderr (last lines) ---", self.id);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Runs `crawldns fleet ARGS` to its end (bounded by the caller's patience
/// in the command itself); returns (stdout, stderr).
pub fn fleet_cmd(redis: &str, args: &[&str]) -> (String, String) {
    let out = super::crawldns()
        .arg("fleet")
        .args(args)
        .env("CRAWLDNS_REDIS_URL", redis)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "crawldns fleet {args:?} failed ({}):\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// The collected output: URL id → (url, worker, `ok` or `CLASS: message`),
/// asserting that no id appears twice.
pub fn read_output(path: &Path) -> HashMap<u64, (String, String, String)> {
    let file = std::fs::File::open(path).unwrap();
    let mut out = HashMap::new();
    for line in BufReader::new(file).lines() {
        let line = line.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let id = v["id"].as_u64().unwrap();
        let url = v["url"].as_str().unwrap().to_owned();
        let worker = v["worker"].as_str().unwrap().to_owned();
        let class = match v["error"]["class"].as_str() {
            None => "ok".to_owned(),
            Some(class) => format!("{class}: {}", v["error"]["message"]),
        };
        assert!(
            out.insert(id, (url, worker, class)).is_none(),
            "id {id} twice in the output"
        );
    }
    out
}
