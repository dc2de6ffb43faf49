//! Knot DNS as the fast authoritative server: a generated 100,000-name zone
//! and config in a private temporary directory, one UDP worker, pinned to a
//! CPU of its own where asked.

use std::ffi::OsStr;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::names::{expected_v4, host};

/// Hosts in the generated zone (`h0 … h99999`).
pub const ZONE_HOSTS: u32 = 100_000;

/// `knotd --version`, or `None` when Knot is not installed.
pub fn version() -> Option<String> {
    let out = Command::new("knotd").arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    })
}

/// Whether `taskset` can be used to pin a process.
pub fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A command that runs `program` pinned to `cpu` (through `taskset`) when
/// a CPU is given and `taskset` exists, and the CPU it will be pinned to.
pub fn pinned_command(program: impl AsRef<OsStr>, cpu: Option<usize>) -> (Command, Option<usize>) {
    let pinned = cpu.filter(|_| have_taskset());
    let command = match pinned {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    };
    (command, pinned)
}

/// A private scratch directory, removed on drop.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates `$TMPDIR/crawldns-bench-<pid>-<tag>`, replacing a leftover one.
    pub fn new(tag: &str) -> Result<Self> {
        let path =
            std::env::temp_dir().join(format!("crawldns-bench-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the zone `crawl.test` with `hosts` hosts: A = testbed address,
/// AAAA = its IPv4-mapped form (as the testbed's `MappedV4`).
pub fn write_zone(path: &Path, hosts: u32) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "$ORIGIN crawl.test.\n$TTL 300")?;
    writeln!(
        out,
        "@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1"
    )?;
    for n in 0..hosts {
        let v4 = expected_v4(n)?;
        let label = host(n);
        let label = label.trim_end_matches(".crawl.test");
        writeln!(out, "{label} A {v4}\n{label} AAAA {}", v4.to_ipv6_mapped())?;
    }
    out.flush()?;
    Ok(())
}

/// A query file for dnsperf: every host's A record, one per line.
pub fn write_query_file(path: &Path, hosts: u32) -> Result<()> {
    write_host_lines(path, hosts, " A")
}

/// A names file for `crawldns resolve`: every host's name, one per line.
pub fn write_name_file(path: &Path, hosts: u32) -> Result<()> {
    write_host_lines(path, hosts, "")
}

/// One line per host: its name and `suffix`.
fn write_host_lines(path: &Path, hosts: u32, suffix: &str) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for n in 0..hosts {
        writeln!(out, "{}{suffix}", host(n))?;
    }
    out.flush()?;
    Ok(())
}

/// A running knotd. Dropping it kills the process and removes its files.
#[derive(Debug)]
pub struct Knot {
    child: Child,
    addr: SocketAddr,
    dir: ScratchDir,
    pinned: Option<usize>,
}

impl Knot {
    /// Generates the zone and config and starts knotd on `addr` (a loopback
    /// address with a concrete port), pinned to `cpu` when given and
    /// `taskset` exists. Returns once it answers.
    pub fn start(addr: SocketAddr, cpu: Option<usize>) -> Result<Self> {
        Self::start_with(addr, cpu, ZONE_HOSTS)
    }

    /// [`Knot::start`] with a zone of `hosts` hosts.
    pub fn start_with(addr: SocketAddr, cpu: Option<usize>, hosts: u32) -> Result<Self> {
        if !addr.ip().is_loopback() || addr.port() == 0 {
            bail!("Knot must listen on a loopback address with a fixed port, not {addr}");
        }
        let dir = ScratchDir::new(&format!("knot-{}", addr.port()))?;
        let root = dir.path();
        write_zone(&root.join("crawl.test.zone"), hosts)?;
        let config = format!(
            r#"server:
    rundir: "{root}"
    listen: {ip}@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{root}/db"
control:
    listen: "{root}/knot.sock"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{root}"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: crawl.test
    file: "crawl.test.zone"
"#,
            root = root.display(),
            ip = addr.ip(),
            port = addr.port(),
        );
        let config_path = root.join("knot.conf");
        std::fs::write(&config_path, config).context("writing knot.conf")?;
        let log = std::fs::File::create(root.join("knotd.log")).context("creating knotd.log")?;
        let (mut command, pinned) = pinned_command("knotd", cpu);
        command
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = command.spawn().context("starting knotd")?;
        let mut knot = Self {
            child,
            addr,
            dir,
            pinned,
        };
        // A large zone takes a while to load (a million names: seconds).
        let load = Duration::from_secs(30 + u64::from(hosts / 20_000));
        if let Err(e) = super::wait_until_serving(addr, "h0.crawl.test", load) {
            let log =
                std::fs::read_to_string(knot.dir.path().join("knotd.log")).unwrap_or_default();
            knot.stop();
            bail!("{e}; knotd log:\n{log}");
        }
        if let Some(cpu) = knot.pinned {
            // knotd binds each worker thread to a CPU of its own choosing
            // (its UDP worker to CPU 0), whatever `taskset` said: the
            // threads are pinned again now that they all exist.
            pin_threads(knot.pid(), cpu).context("pinning knotd's threads")?;
        }
        Ok(knot)
    }

    /// Where Knot answers.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// knotd's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The CPU Knot is pinned to, if any.
    pub fn pinned(&self) -> Option<usize> {
        self.pinned
    }

    /// The scratch directory (for the dnsperf query file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pins every thread of process `pid` to `cpu`.
fn pin_threads(pid: u32, cpu: usize) -> Result<()> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).context("listing threads")?;
    for task in tasks {
        let tid: libc::pid_t = task?
            .file_name()
            .to_string_lossy()
            .parse()
            .context("a thread id")?;
        // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes
        // inside it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid cpu_set_t of the size given.
        let rc =
            unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("sched_setaffinity(thread {tid}, CPU {cpu})"));
        }
    }
    Ok(())
}
