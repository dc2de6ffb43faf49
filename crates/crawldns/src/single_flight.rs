//! Single-flight: concurrent requests for one key share one piece of work.
//!
//! The work runs in its own task, so dropping the first caller's future does
//! not cancel it for the others; every waiter gets a clone of the one
//! result; a guard removes the flight even if the work panics, and waiters
//! of a flight that ended without a result get `None`, never a hang.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

/// Flights in progress, by key.
pub struct SingleFlight<K, V> {
    flights: Arc<Mutex<HashMap<K, watch::Receiver<Option<V>>>>>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            flights: Arc::default(),
        }
    }
}

/// How a caller got its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It started the work.
    Leader,
    /// It joined work already in flight.
    Follower,
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs `work` for `key`, unless a flight for `key` is in progress, in
    /// which case it waits for that one. `None` means the work ended without
    /// a result (it panicked or the runtime is shutting down).
    pub async fn run<F>(&self, key: K, work: impl FnOnce() -> F) -> (Option<V>, Role)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let (mut receiver, role) = {
            let mut flights = self.flights.lock();
            match flights.get(&key) {
                Some(receiver) => (receiver.clone(), Role::Follower),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    flights.insert(key.clone(), receiver.clone());
                    let guard = FlightGuard {
                        flights: self.flights.clone(),
                        key: Some(key),
                    };
                    let work = work();
                    tokio::spawn(async move {
                        let value = work.await;
                        // Leave the table before publishing, so a caller
                        // arriving now finds the result where `work` put it
                        // (the cache) instead of a finished flight.
                        drop(guard);
                        let _ = sender.send(Some(value));
                    });
                    (receiver, Role::Leader)
                }
            }
        };
        let value = receiver
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|v| v.clone());
        (value, role)
    }

    /// Flights in progress.
    pub fn in_flight(&self) -> usize {
        self.flights.lock().len()
    }

    /// Whether a flight for `key` is in progress (joining it costs nothing).
    pub fn contains(&self, key: &K) -> bool {
        self.flights.lock().contains_key(key)
    }
}

/// Removes a flight from the table when its task ends, however it ends.
struct FlightGuard<K: Hash + Eq, V> {
    flights: Arc<Mutex<HashMap<K, watch::Receiver<Option<V>>>>>,
    key: Option<K>,
}

impl<K: Hash + Eq, V> Drop for FlightGuard<K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.flights.lock().remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn a_herd_shares_one_run() {
        let flights: Arc<SingleFlight<&'static str, u32>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..1000 {
            let flights = flights.clone();
            let runs = runs.clone();
            tasks.spawn(async move {
                flights
                    .run("k", || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        42
                    })
                    .await
            });
        }
        let mut leaders = 0;
        while let Some(joined) = tasks.join_next().await {
            let (value, role) = joined.unwrap();
            assert_eq!(value, Some(42));
            leaders += usize::from(role == Role::Leader);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn dropping_the_leader_does_not_cancel_the_work() {
        let flights: Arc<SingleFlight<u8, u8>> = Arc::default();
        let f = flights.clone();
        let leader = tokio::spawn(async move {
            f.run(1, || async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                7
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let follower = flights.run(1, || async { unreachable!("joins the running flight") });
        leader.abort();
        assert_eq!(follower.await, (Some(7), Role::Follower));
    }

    #[tokio::test]
    async fn a_panicking_flight_leaves_no_one_hanging() {
        let flights: Arc<SingleFlight<u8, u8>> = Arc::default();
        let (value, _) = flights.run(1, || async { panic!("work failed") }).await;
        assert_eq!(value, None);
        assert_eq!(flights.in_flight(), 0);
        let (value, role) = flights.run(1, || async { 3 }).await;
        assert_eq!((value, role), (Some(3), Role::Leader));
    }
}
