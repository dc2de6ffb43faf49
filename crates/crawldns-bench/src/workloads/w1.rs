//! W1 cold throughput: distinct names (A), a fixed number in flight, against
//! a fast authoritative server. Measures lookups per second and client CPU
//! time per lookup, in steady state.
//!
//! `in_flight` tasks each take the next name as soon as their lookup ends;
//! they start `ramp_per_ms` per millisecond, so that the first queries do
//! not arrive as one burst that overflows the server's socket buffer (a
//! lost query holds its task for a whole timeout). The measured window opens when the first `warmup` lookups have finished
//! (sockets open, code paged in, the start-up burst absorbed) and closes
//! when `count` more have; lookups keep being issued until then, so the
//! window always has `in_flight` outstanding, and the trailing ones finish
//! outside it. Every answer, in the window or not, is checked.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::task::JoinSet;

use super::{check_one, ThroughputSample};
use crate::measure::{process_cpu_split, udp_receive_errors, Tally, ThreadCpuClock};
use crate::names::Family;
use crate::peers::Peer;

/// What one W1 run does.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// First host index used.
    pub first: u32,
    /// Lookups in the measured window.
    pub count: u32,
    /// Lookups outstanding at all times.
    pub in_flight: usize,
    /// Lookups finished before the window opens.
    pub warmup: u32,
    /// Tasks started per millisecond at the beginning (0: all at once).
    pub ramp_per_ms: usize,
}

impl Params {
    /// Distinct names one run uses: warm-up, window, and the tail still in
    /// flight when the window closes.
    pub fn names_used(&self) -> u32 {
        self.warmup + self.count + self.in_flight as u32
    }
}

/// The server's CPU clock, and whether the server runs inside the client
/// process (its time is then subtracted from the client's).
#[derive(Debug, Clone, Copy)]
pub struct ServerCpu {
    /// The clock: the testbed thread's, or knotd's process clock.
    pub clock: ThreadCpuClock,
    /// True for the in-process testbed server.
    pub in_process: bool,
}

/// A reading at one edge of the window.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    user: Duration,
    system: Duration,
    server_cpu: Duration,
}

struct Window {
    server_cpu: Option<ServerCpu>,
    open_after: u32,
    close_after: u32,
    finished: AtomicU32,
    marks: Mutex<(Option<Mark>, Option<Mark>)>,
}

impl Window {
    fn mark(&self) -> Option<Mark> {
        let (user, system) = process_cpu_split().ok()?;
        Some(Mark {
            at: Instant::now(),
            user,
            system,
            server_cpu: match self.server_cpu {
                Some(server) => server.clock.read().ok()?,
                None => Duration::ZERO,
            },
        })
    }

    /// Counts one finished lookup, and reads the clocks at the window's edges.
    fn finished_one(&self) {
        let done = self.finished.fetch_add(1, Ordering::AcqRel) + 1;
        if done == self.open_after || done == self.close_after {
            let mark = self.mark();
            if let Ok(mut marks) = self.marks.lock() {
                if done == self.open_after {
                    marks.0 = mark;
                } else {
                    marks.1 = mark;
                }
            }
        }
    }
}

/// Runs W1 once. `server_cpu` is the server's CPU clock: reported, and
/// subtracted from the client's time when the server runs in-process.
pub async fn run<P: Peer>(
    peer: Arc<P>,
    params: &Params,
    server_cpu: Option<ServerCpu>,
) -> Result<(ThroughputSample, Option<String>)> {
    let total = params.names_used();
    let drops_before = udp_receive_errors();
    let window = Arc::new(Window {
        server_cpu,
        open_after: params.warmup.max(1),
        close_after: params.warmup.max(1) + params.count,
        finished: AtomicU32::new(0),
        marks: Mutex::new((None, None)),
    });
    let next = Arc::new(AtomicU32::new(0));
    let mut tasks = JoinSet::new();
    for k in 0..params.in_flight.clamp(1, total as usize) {
        let (peer, next, window) = (peer.clone(), next.clone(), window.clone());
        let first = params.first;
        let start_after = match params.ramp_per_ms {
            0 => Duration::ZERO,
            per_ms => Duration::from_millis((k / per_ms) as u64),
        };
        tasks.spawn(async move {
            if !start_after.is_zero() {
                tokio::time::sleep(start_after).await;
            }
            let mut tally = Tally::default();
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let outcome = check_one(&*peer, first + i, Family::V4).await;
                window.finished_one();
                outcome.count(&mut tally, &mut first_error);
            }
            (tally, first_error)
        });
    }
    let mut tally = Tally::default();
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        let (part, error) = done.context("W1 worker task failed")?;
        tally.add(part);
        if first_error.is_none() {
            first_error = error;
        }
    }
    let (open, close) = match window.marks.lock() {
        Ok(marks) => *marks,
        Err(_) => bail!("W1 window lock poisoned"),
    };
    let (Some(open), Some(close)) = (open, close) else {
        bail!("W1 window never closed: {} lookups finished", tally.total());
    };
    let mut user = close.user.saturating_sub(open.user);
    let mut system = close.system.saturating_sub(open.system);
    let server = close.server_cpu.saturating_sub(open.server_cpu);
    if server_cpu.is_some_and(|s| s.in_process) {
        // The in-process server's time cannot be split into user and
        // system; take it from the system part first (it is mostly socket
        // work), the rest from the user part.
        let from_system = server.min(system);
        system -= from_system;
        user = user.saturating_sub(server - from_system);
    }
    let client_cpu = user + system;
    let udp_drops = match (drops_before, udp_receive_errors()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok((
        ThroughputSample {
            tally,
            window_lookups: u64::from(params.count),
            wall_s: close.at.duration_since(open.at).as_secs_f64(),
            cpu_s: client_cpu.as_secs_f64(),
            user_s: user.as_secs_f64(),
            server_cpu_s: server_cpu.map(|_| server.as_secs_f64()),
            udp_drops,
        },
        first_error,
    ))
}
