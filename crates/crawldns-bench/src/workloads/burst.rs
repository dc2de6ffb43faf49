//! W2 and W3, the burst: distinct names all asked at once of a server that
//! answers after a delay. Measures each lookup's latency (p50, p99, max) and
//! the burst's wall time. W2 asks for A; W3 asks for A and AAAA per name.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tokio::task::JoinSet;

use super::{check_one, BurstSample};
use crate::measure::{udp_receive_errors, Latencies, Tally};
use crate::names::Family;
use crate::peers::Peer;
use crate::servers::testbed::CountersHandle;

/// What one burst does.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// First host index of the burst.
    pub first: u32,
    /// Names in the burst, all issued at once.
    pub count: u32,
    /// A, or A and AAAA.
    pub family: Family,
    /// First host index of the warm-up.
    pub warmup_first: u32,
    /// Warm-up lookups (issued together) before the burst.
    pub warmup: u32,
}

/// Runs one burst.
pub async fn run<P: Peer>(
    peer: Arc<P>,
    params: &Params,
    counters: &CountersHandle,
) -> Result<(BurstSample, Option<String>)> {
    if params.warmup > 0 {
        let warm = super::drive(
            peer.clone(),
            params.warmup_first,
            params.warmup,
            params.warmup as usize,
            params.family,
        )
        .await;
        if warm.tally.ok == 0 {
            anyhow::bail!(
                "warm-up failed: no correct answer ({})",
                warm.first_error.unwrap_or_default()
            );
        }
    }
    let queries_before = counters.totals().await;
    let drops_before = udp_receive_errors();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..params.count {
        let peer = peer.clone();
        let n = params.first + i;
        let family = params.family;
        tasks.spawn(async move {
            let issued = Instant::now();
            let outcome = check_one(&*peer, n, family).await;
            (outcome, issued.elapsed(), Instant::now())
        });
    }
    let mut latencies = Latencies::new()?;
    let mut tally = Tally::default();
    let mut first_error = None;
    let mut last = start;
    while let Some(done) = tasks.join_next().await {
        let (outcome, latency, finished) = match done {
            Ok(v) => v,
            Err(e) => {
                tally.errors += 1;
                first_error.get_or_insert(format!("lookup task failed: {e}"));
                continue;
            }
        };
        last = last.max(finished);
        latencies.record(latency);
        outcome.count(&mut tally, &mut first_error);
    }
    let wall = last.duration_since(start);
    let queries_after = counters.totals().await;
    let udp_drops = match (drops_before, udp_receive_errors()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let server_queries = match (queries_before, queries_after) {
        (Some(a), Some(b)) => {
            Some((b.udp_queries + b.tcp_queries).saturating_sub(a.udp_queries + a.tcp_queries))
        }
        _ => None,
    };
    Ok((
        BurstSample {
            tally,
            p50_us: latencies.quantile_us(0.50),
            p99_us: latencies.quantile_us(0.99),
            max_us: latencies.max_us(),
            wall_us: wall.as_micros() as u64,
            server_queries,
            udp_drops,
        },
        first_error,
    ))
}
