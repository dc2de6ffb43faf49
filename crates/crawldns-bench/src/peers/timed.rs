//! A peer wrapped so that every lookup's latency is recorded, for the
//! workloads that do not measure latency themselves (W1). The cost — two
//! clock reads and an uncontended lock per lookup — is the same for every
//! peer wrapped.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, Result};

use super::Peer;
use crate::measure::Latencies;

/// `P`, with the latency of each lookup (answered or failed) recorded.
#[derive(Debug)]
pub struct Timed<P> {
    inner: P,
    latencies: Mutex<Latencies>,
}

impl<P> Timed<P> {
    /// Wraps `inner`, with nothing recorded yet.
    pub fn new(inner: P) -> Result<Self> {
        Ok(Self {
            inner,
            latencies: Mutex::new(Latencies::new()?),
        })
    }

    /// The wrapped peer.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The latencies recorded so far, leaving an empty recorder behind.
    pub fn take(&self) -> Result<Latencies> {
        let mut latencies = self
            .latencies
            .lock()
            .map_err(|_| anyhow!("latency recorder poisoned"))?;
        Ok(std::mem::replace(&mut *latencies, Latencies::new()?))
    }

    fn record(&self, since: Instant) {
        if let Ok(mut latencies) = self.latencies.lock() {
            latencies.record(since.elapsed());
        }
    }
}

impl<P: Peer> Peer for Timed<P> {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        let started = Instant::now();
        let answer = self.inner.lookup_a(name).await;
        self.record(started);
        answer
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        let started = Instant::now();
        let answer = self.inner.lookup_ip(name).await;
        self.record(started);
        answer
    }
}
