//! Probes of down servers: a server marked down gets no user queries; a
//! background task re-checks every down server each interval and stops
//! once none is down or the resolver is gone. Users' queries never serve
//! as probes.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What the probe task drives: the resolver core implements it.
pub(crate) trait Probe: Send + Sync + 'static {
    /// The flag that is true while a probe task runs.
    fn probing(&self) -> &AtomicBool;
    /// Indices of the servers that are down now.
    fn down_servers(&self) -> Vec<usize>;
    /// Asks server `server` one probe question; an answer that shows it
    /// serving again marks it up in the health table.
    fn probe(&self, server: usize) -> impl Future<Output = ()> + Send;
}

/// Starts the probe task of `core`, unless one runs already.
pub(crate) fn start<P: Probe>(core: &Arc<P>, interval: Duration) {
    if core.probing().swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(run(Arc::downgrade(core), interval));
}

async fn run<P: Probe>(weak: Weak<P>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(core) = weak.upgrade() else { return };
        let down = core.down_servers();
        if down.is_empty() {
            core.probing().store(false, Ordering::Release);
            // A server may have gone down between the check and the store.
            if core.down_servers().is_empty() || core.probing().swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        for server in down {
            core.probe(server).await;
        }
    }
}
