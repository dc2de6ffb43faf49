//! Measuring instruments: CPU time, CPU pinning, latency histograms and
//! medians (open descriptors and the file limit: `crawldns_sys`).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// User plus system CPU time of this whole process (all threads), from
/// `getrusage(RUSAGE_SELF)`.
pub fn process_cpu() -> Result<Duration> {
    rusage(libc::RUSAGE_SELF)
}

/// User plus system CPU time of waited-for children, from
/// `getrusage(RUSAGE_CHILDREN)`.
pub fn children_cpu() -> Result<Duration> {
    rusage(libc::RUSAGE_CHILDREN)
}

/// User and system CPU time of this whole process (all threads),
/// separately.
pub fn process_cpu_split() -> Result<(Duration, Duration)> {
    let usage = rusage_raw(libc::RUSAGE_SELF)?;
    Ok((timeval(usage.ru_utime), timeval(usage.ru_stime)))
}

fn rusage_raw(who: libc::c_int) -> Result<libc::rusage> {
    // SAFETY: `getrusage` only writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a properly sized `rusage`.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("getrusage");
    }
    Ok(usage)
}

fn rusage(who: libc::c_int) -> Result<Duration> {
    let usage = rusage_raw(who)?;
    Ok(timeval(usage.ru_utime) + timeval(usage.ru_stime))
}

/// A `timeval` as a duration (negative parts as zero).
pub fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

/// A CPU-time clock of a thread of this process or of another process,
/// readable from any thread.
#[derive(Debug, Clone, Copy)]
pub struct ThreadCpuClock(libc::clockid_t);

impl ThreadCpuClock {
    /// The CPU clock of process `pid` (all its threads).
    pub fn process(pid: u32) -> Result<Self> {
        let mut clock: libc::clockid_t = 0;
        let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
        // SAFETY: valid out-pointer.
        let rc = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
        if rc != 0 {
            bail!("clock_getcpuclockid({pid}) failed: error {rc}");
        }
        Ok(Self(clock))
    }

    /// The CPU clock of the calling thread.
    pub fn current() -> Result<Self> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `pthread_self` is always valid for the calling thread, and
        // `clock` is a valid out-pointer.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
        if rc != 0 {
            bail!("pthread_getcpuclockid failed: error {rc}");
        }
        Ok(Self(clock))
    }

    /// CPU time the thread or process has used so far. Must be read while
    /// it is alive.
    pub fn read(self) -> Result<Duration> {
        // SAFETY: zeroed timespec is valid; clock_gettime writes into it.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: valid clock id and out-pointer.
        let rc = unsafe { libc::clock_gettime(self.0, &mut ts) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("clock_gettime(thread CPU clock)");
        }
        Ok(Duration::new(
            ts.tv_sec.max(0) as u64,
            ts.tv_nsec.max(0) as u32,
        ))
    }
}

/// `RcvbufErrors` of the `Udp:` line of /proc/net/snmp: datagrams the
/// kernel dropped because a socket's receive buffer was full, for the whole
/// network namespace. `None` where it cannot be read.
pub fn udp_receive_errors() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let names = udp.next()?;
    let values = udp.next()?;
    let index = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(index)?.parse().ok()
}

/// Busy and stolen CPU time of the whole machine so far, from the `cpu`
/// line of /proc/stat: (busy = user + nice + system + irq + softirq,
/// steal), in seconds.
pub fn machine_cpu() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let busy = get(0) + get(1) + get(2) + get(5) + get(6);
    Some((busy as f64 / hz, get(7) as f64 / hz))
}

/// A load average as reports print it: two decimals, or "unknown".
pub fn fmt_load(load: Option<f64>) -> String {
    load.map_or("unknown".into(), |l| format!("{l:.2}"))
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Number of CPUs this process may run on.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Pins the calling thread (and the threads it creates afterwards, which
/// inherit the mask) to one CPU.
pub fn pin_current_thread(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes within it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is checked against the set size by the macro's callers;
    // we bound it here.
    if cpu >= 1024 {
        bail!("CPU index {cpu} out of range");
    }
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; the set is valid.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("sched_setaffinity(CPU {cpu})"));
    }
    Ok(())
}

/// Runs `f` on a fresh thread, pinned to `cpu` when given, and returns its
/// result. Threads that `f` creates inherit the pinning.
pub fn on_thread<T: Send + 'static>(
    name: &str,
    cpu: Option<usize>,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            if let Some(cpu) = cpu {
                pin_current_thread(cpu)?;
            }
            f()
        })
        .context("spawning a benchmark thread")?;
    match handle.join() {
        Ok(result) => result,
        Err(_) => bail!("benchmark thread {name} panicked"),
    }
}

/// A latency recorder in microseconds (3 significant figures, up to 60 s).
#[derive(Debug)]
pub struct Latencies(Histogram<u64>);

impl Latencies {
    /// An empty recorder.
    pub fn new() -> Result<Self> {
        Histogram::new_with_bounds(1, 60_000_000, 3)
            .map(Self)
            .context("creating a latency histogram")
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
        // Bounds are checked above, so recording cannot fail.
        let _ = self.0.record(micros);
    }

    /// Number of values recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at quantile `q` (0.0–1.0), in microseconds.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.0.value_at_quantile(q)
    }

    /// The largest value recorded, in microseconds.
    pub fn max_us(&self) -> u64 {
        self.0.max()
    }
}

/// The median of `values` (mean of the middle two for an even count), not
/// finite values left out; `None` when empty. The runs' figures.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let v = sorted_finite(values);
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[mid]),
        _ => Some((v[mid - 1] + v[mid]) / 2.0),
    }
}

/// The upper median of `values`: the middle one, the upper of the two for an
/// even count, so always a value that was measured (the W4 rounds); not
/// finite values left out; `None` when empty.
pub fn upper_median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let v = sorted_finite(values);
    v.get(v.len() / 2).copied()
}

fn sorted_finite(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Counts of verified answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Lookups whose answer was exactly the expected address set.
    pub ok: u64,
    /// Lookups that returned something other than the expected addresses.
    pub wrong: u64,
    /// Of `wrong`, those that returned part of the expected addresses and
    /// nothing else (one address family missing).
    #[serde(default)]
    pub partial: u64,
    /// Lookups that failed (error or timeout).
    pub errors: u64,
}

impl Tally {
    /// All lookups counted.
    pub fn total(&self) -> u64 {
        self.ok + self.wrong + self.errors
    }

    /// Adds another tally.
    pub fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.wrong += other.wrong;
        self.partial += other.partial;
        self.errors += other.errors;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(Vec::<f64>::new()), None);
        assert_eq!(upper_median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(upper_median([4.0, 1.0, 2.0, 3.0]), Some(3.0));
        assert_eq!(upper_median([f64::NAN, 1.0]), Some(1.0));
        assert_eq!(upper_median(Vec::<f64>::new()), None);
    }

    #[test]
    fn process_cpu_grows() {
        let before = process_cpu().unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu().unwrap() >= before);
        assert!(udp_receive_errors().is_some());
    }
}
