//! Resources: how many file descriptors a resolver holds with many lookups
//! in flight at once (the server delays every answer, so they all are).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::task::JoinSet;

use super::{check_one, FdSample};
use crate::measure::Tally;
use crate::names::Family;
use crate::peers::Peer;
use crawldns_sys::process::open_fds;

/// What one run does.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// First host index.
    pub first: u32,
    /// Lookups issued at once.
    pub count: u32,
}

/// Issues `count` lookups at once and samples the process's open fds until
/// they have all finished. `before` is the fd count taken before the peer
/// was built.
pub async fn run<P: Peer>(
    peer: Arc<P>,
    params: &Params,
    before: usize,
) -> Result<(FdSample, Option<String>)> {
    let issued = Arc::new(AtomicU32::new(0));
    let finished = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (issued, finished, done) = (issued.clone(), finished.clone(), done.clone());
        tokio::spawn(async move {
            let (mut peak, mut max_in_flight) = (0usize, 0u32);
            // Bounded: stops when the lookups are done, or after 10 minutes.
            for _ in 0..300_000 {
                if done.load(Ordering::Acquire) {
                    break;
                }
                let in_flight = issued
                    .load(Ordering::Acquire)
                    .saturating_sub(finished.load(Ordering::Acquire));
                max_in_flight = max_in_flight.max(in_flight);
                if let Ok(fds) = open_fds() {
                    peak = peak.max(fds);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (peak, max_in_flight)
        })
    };
    let mut tasks = JoinSet::new();
    for i in 0..params.count {
        let peer = peer.clone();
        let (issued, finished) = (issued.clone(), finished.clone());
        let n = params.first + i;
        tasks.spawn(async move {
            issued.fetch_add(1, Ordering::AcqRel);
            let outcome = check_one(&*peer, n, Family::V4).await;
            finished.fetch_add(1, Ordering::AcqRel);
            outcome
        });
    }
    let mut tally = Tally::default();
    let mut first_error = None;
    while let Some(outcome) = tasks.join_next().await {
        match outcome {
            Ok(checked) => checked.count(&mut tally, &mut first_error),
            Err(e) => {
                tally.errors += 1;
                first_error.get_or_insert(format!("lookup task failed: {e}"));
            }
        }
    }
    done.store(true, Ordering::Release);
    let (peak, max_in_flight) = sampler.await.unwrap_or((0, 0));
    Ok((
        FdSample {
            tally,
            before,
            peak: peak.max(before),
            max_in_flight,
        },
        first_error,
    ))
}
