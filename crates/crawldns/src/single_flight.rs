//! Single-flight: concurrent requests for one key share one piece of work.
//!
//! The first caller (the leader) runs the work inline, in its own task: no
//! task is spawned for an uncontended lookup. Should the leader's future be
//! dropped before the work ends, the work moves into a task of its own and
//! finishes there, so the callers that joined it (and the cache it fills)
//! still get its result. Every follower gets a clone of the one result; a
//! guard removes the flight however it ends, and followers of a flight that
//! ended without a result (it panicked, or the runtime is shutting down) get
//! `None`, never a hang.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use hashbrown::HashTable;
use parking_lot::Mutex;

type Table<K, V> = Arc<Mutex<Flights<K, V>>>;

/// The flights in progress: each key's landing. A flight is found by its
/// key and removed by its hash and landing, so that a leader need not keep
/// a copy of its key (a pending name's third).
struct Flights<K, V> {
    table: HashTable<(K, Arc<Landing<V>>)>,
    /// foldhash with a per-process random seed: fast, and keys (host
    /// names) cannot be chosen to collide without knowing the seed.
    hasher: foldhash::fast::RandomState,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl<K: Hash + Eq, V: Clone> Flights<K, V> {
    /// Joins `key`'s flight, or starts it.
    fn join(&mut self, key: K) -> Joined<V> {
        let hash = self.hasher.hash_one(&key);
        if let Some((_, landing)) = self.table.find(hash, |(k, _)| *k == key) {
            return Joined::Follower(landing.clone());
        }
        let landing = Arc::new(Landing::new());
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, (key, landing.clone()), |(k, _)| hasher.hash_one(k));
        Joined::Leader(hash, landing)
    }

    /// Removes the flight of `landing`, whose key hashed to `hash`.
    fn leave(&mut self, hash: u64, landing: &Arc<Landing<V>>) {
        if let Ok(entry) = self
            .table
            .find_entry(hash, |(_, l)| Arc::ptr_eq(l, landing))
        {
            entry.remove();
        }
    }

    fn contains(&self, key: &K) -> bool {
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |(k, _)| k == key).is_some()
    }
}

/// What a flight's followers wait on: its result, once it has landed, and
/// their wakers. (A `watch` channel did the same with eight `Notify`s and a
/// version counter; a `Notify` made every follower's wait 104 bytes, where
/// a waker in this list and its index are 24.)
struct Landing<V> {
    state: Mutex<Landed<V>>,
}

struct Landed<V> {
    /// `None` while in flight; `Some(None)` when it ended without a result.
    /// Boxed: a result is only ever landed for followers, and inline it
    /// doubled every flight's landing.
    result: Option<Box<Option<V>>>,
    /// The followers waiting. A follower dropped before the landing leaves
    /// its waker here until then: the list lives no longer than the flight.
    waiting: Vec<Waker>,
}

impl<V: Clone> Landing<V> {
    fn new() -> Self {
        Self {
            state: Mutex::new(Landed {
                result: None,
                waiting: Vec::new(),
            }),
        }
    }

    /// Publishes `result` and wakes every follower waiting.
    fn land(&self, result: Option<V>) {
        let waiting = {
            let mut state = self.state.lock();
            state.result = Some(Box::new(result));
            std::mem::take(&mut state.waiting)
        };
        for waker in waiting {
            waker.wake();
        }
    }
}

/// A follower's wait: its result, once landed (`None` for a flight that
/// ended without one).
struct Follow<V> {
    landing: Arc<Landing<V>>,
    /// Where its waker is in the landing's list, once registered.
    waiting: Option<usize>,
}

impl<V: Clone> Future for Follow<V> {
    type Output = Option<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<V>> {
        let this = self.get_mut();
        // Looked at and registered under one lock: a landing in between
        // cannot be missed.
        let mut state = this.landing.state.lock();
        if let Some(result) = state.result.as_deref() {
            return Poll::Ready(result.clone());
        }
        match this.waiting {
            Some(i) => {
                if !state.waiting[i].will_wake(cx.waker()) {
                    state.waiting[i] = cx.waker().clone();
                }
            }
            None => {
                this.waiting = Some(state.waiting.len());
                state.waiting.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

/// Flights in progress, by key.
pub struct SingleFlight<K, V> {
    flights: Table<K, V>,
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

/// What a caller found in the table.
enum Joined<V> {
    /// It started the flight, whose key hashed to this.
    Leader(u64, Arc<Landing<V>>),
    Follower(Arc<Landing<V>>),
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs `work` for `key`, unless a flight for `key` is in progress, in
    /// which case it waits for that one. `None` means the flight joined
    /// ended without a result. A panic in `work` reaches the leader.
    ///
    /// The flight is joined (or started) when this is called, not when the
    /// future is first polled; the future holds only what its role needs,
    /// so a pending follower is a landing to wait on and a pending leader a
    /// boxed work, and neither keeps `work` or `key` beside them.
    pub fn run<W, F>(&self, key: K, work: W) -> Running<K, V, F>
    where
        K: Unpin,
        W: FnOnce() -> F,
        F: Future<Output = V> + Send + 'static,
    {
        let joined = self.flights.lock().join(key);
        match joined {
            Joined::Follower(landing) => Running(Run::Follower(Follow {
                landing,
                waiting: None,
            })),
            Joined::Leader(hash, landing) => Running(Run::Leader(Flight {
                flights: self.flights.clone(),
                hash,
                landing: Some(landing),
                work: Some(Box::pin(work())),
            })),
        }
    }

    /// Flights in progress.
    pub fn in_flight(&self) -> usize {
        self.flights.lock().table.len()
    }

    /// Whether a flight for `key` is in progress (joining it costs nothing).
    pub fn contains(&self, key: &K) -> bool {
        self.flights.lock().contains(key)
    }
}

/// A caller's part in a flight, from [`SingleFlight::run`]: the result and
/// how it was got.
pub struct Running<K, V, F>(Run<K, V, F>)
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + Sync + 'static,
    F: Future<Output = V> + Send + 'static;

enum Run<K, V, F>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + Sync + 'static,
    F: Future<Output = V> + Send + 'static,
{
    Leader(Flight<K, V, F>),
    Follower(Follow<V>),
}

impl<K, V, F> Future for Running<K, V, F>
where
    K: Hash + Eq + Send + Unpin + 'static,
    V: Clone + Send + Sync + 'static,
    F: Future<Output = V> + Send + 'static,
{
    type Output = (Option<V>, Role);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Run::Follower(follow) => Pin::new(follow)
                .poll(cx)
                .map(|value| (value, Role::Follower)),
            Run::Leader(flight) => {
                let Some(work) = flight.work.as_mut() else {
                    panic!("a flight's result was taken already: polled after it ended");
                };
                let value = std::task::ready!(work.as_mut().poll(cx));
                flight.work = None;
                flight.land(&value);
                Poll::Ready((Some(value), Role::Leader))
            }
        }
    }
}

/// A leader's flight: its table entry, the channel to its followers, and
/// the work while it has not finished.
struct Flight<K, V, F>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + Sync + 'static,
    F: Future<Output = V> + Send + 'static,
{
    flights: Table<K, V>,
    /// Its key's hash, to leave the table by.
    hash: u64,
    /// Until it has landed.
    landing: Option<Arc<Landing<V>>>,
    work: Option<Pin<Box<F>>>,
}

impl<K, V, F> Flight<K, V, F>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + Sync + 'static,
    F: Future<Output = V> + Send + 'static,
{
    /// Leaves the table, then publishes `value` to the followers, if any.
    /// Leaving first means a caller arriving now finds the result where the
    /// work put it (the cache) instead of a finished flight.
    fn land(&mut self, value: &V) {
        if let Some(landing) = self.landing.take() {
            self.flights.lock().leave(self.hash, &landing);
            // Out of the table (under its lock, which every follower took
            // to join): any other reference is a follower's.
            if Arc::strong_count(&landing) > 1 {
                landing.land(Some(value.clone()));
            }
        }
    }
}

impl<K, V, F> Drop for Flight<K, V, F>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + Sync + 'static,
    F: Future<Output = V> + Send + 'static,
{
    /// The leader went away before the work ended: the work finishes in a
    /// task of its own. Unless the work panicked or there is no runtime to
    /// run it; then the flight ends, and its followers get `None`.
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            if !std::thread::panicking() {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let mut rest: Flight<K, V, F> = Flight {
                        flights: self.flights.clone(),
                        hash: self.hash,
                        landing: self.landing.take(),
                        work: None,
                    };
                    runtime.spawn(async move {
                        let value = work.await;
                        rest.land(&value);
                    });
                    return;
                }
            }
        }
        // Ended without a result: the followers get `None`, never a hang.
        if let Some(landing) = self.landing.take() {
            self.flights.lock().leave(self.hash, &landing);
            landing.land(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    // Paused time: the runtime advances the clock only when every task
    // is idle, so each sleep below ends after everything else has run.
    #[tokio::test(start_paused = true)]
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

    #[tokio::test(start_paused = true)]
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

    #[tokio::test(start_paused = true)]
    async fn a_panicking_flight_leaves_no_one_hanging() {
        let flights: Arc<SingleFlight<u8, u8>> = Arc::default();
        let f = flights.clone();
        let leader = tokio::spawn(async move {
            f.run(1, || async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                panic!("work failed")
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (value, role) = flights.run(1, || async { unreachable!("joins") }).await;
        assert_eq!((value, role), (None, Role::Follower));
        assert!(
            leader.await.unwrap_err().is_panic(),
            "the leader sees the panic"
        );
        assert_eq!(flights.in_flight(), 0);
        let (value, role) = flights.run(1, || async { 3 }).await;
        assert_eq!((value, role), (Some(3), Role::Leader));
    }

    #[tokio::test(start_paused = true)]
    async fn work_abandoned_by_every_caller_still_finishes() {
        let flights: Arc<SingleFlight<u8, u8>> = Arc::default();
        let finished = Arc::new(AtomicUsize::new(0));
        let done = finished.clone();
        let leader = flights.run(1, move || async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            done.fetch_add(1, Ordering::SeqCst);
            5
        });
        // Polled once, then dropped: the work is handed to a task.
        assert!(tokio::time::timeout(Duration::from_millis(5), leader)
            .await
            .is_err());
        assert_eq!(flights.in_flight(), 1);
        let (value, role) = flights.run(1, || async { unreachable!("joins") }).await;
        assert_eq!((value, role), (Some(5), Role::Follower));
        assert_eq!(finished.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_follower_moved_to_another_task_is_woken_there() {
        let flights: Arc<SingleFlight<u8, u8>> = Arc::default();
        let (go, gate) = tokio::sync::oneshot::channel::<()>();
        let leader = flights.run(1, || async move {
            let _ = gate.await;
            9
        });
        let leader = tokio::spawn(leader);
        let mut follower = flights.run(1, || async { unreachable!("joins") });
        // First polled with a waker that wakes nothing: its registration
        // must be replaced when the task below polls it.
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut follower).poll(&mut cx).is_pending());
        let follower = tokio::spawn(follower);
        tokio::task::yield_now().await;
        go.send(()).unwrap();
        // Paused time: the timeout fires only if nothing else can run, that
        // is, if the follower's task was never woken.
        let followed = tokio::time::timeout(Duration::from_secs(5), follower).await;
        assert_eq!(
            followed.expect("the follower was woken").unwrap(),
            (Some(9), Role::Follower)
        );
        assert_eq!(leader.await.unwrap(), (Some(9), Role::Leader));
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_lone_leader_runs_the_work_without_a_task() {
        let flights: SingleFlight<u8, usize> = SingleFlight::default();
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let before = tasks();
        let (during, role) = flights.run(1, || async move { tasks() }).await;
        assert_eq!((during, role), (Some(before), Role::Leader));
        assert_eq!(flights.in_flight(), 0);
    }
}
