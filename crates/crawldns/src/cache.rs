//! The answer cache: positive answers with clamped TTLs, negative answers
//! per RFC 2308, brief failure entries, serve-stale (RFC 8767) and the
//! prefetch window. Storage is `quick_cache` (sharded, CLOCK-Pro-like
//! eviction that keeps hot names); this module holds the policy.
//!
//! Time is an argument (`now`), so the policy is exact under tokio's paused
//! clock.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quick_cache::Equivalent;
use tokio::time::Instant;

use crate::cache_front;
use crate::clock::{CacheClock, Tick};
use crate::error::Error;
use crate::records::{Answer, Lookup, QueryType};

/// Cache tunables, each with its default.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Most entries kept (default 100,000). Each name costs up to three
    /// entries: A, AAAA, and the combined `lookup_ip` answer.
    pub max_entries: usize,
    /// Positive TTLs below this are raised to it (default 30 s).
    pub min_ttl: Duration,
    /// Positive TTLs above this are lowered to it (default 1 day).
    pub max_ttl: Duration,
    /// Ceiling for NXDOMAIN/NODATA entries (default 1 h).
    pub negative_max_ttl: Duration,
    /// Negative TTL when the server sent no SOA (default 15 s).
    pub negative_fallback_ttl: Duration,
    /// How long SERVFAIL, REFUSED, malformed answers and timeouts are
    /// remembered (default 5 s; RFC 2308 §7 allows at most 5 min). Zero
    /// disables failure caching.
    pub failure_ttl: Duration,
    /// Serve expired positive answers for up to this long after expiry,
    /// refreshing in the background, and while every server fails
    /// (RFC 8767). `None` (default) disables it.
    pub serve_stale: Option<Duration>,
    /// TTL reported on a stale answer (default 30 s, RFC 8767 §4).
    pub stale_answer_ttl: u32,
    /// Refresh an entry in the background when it is hit in the last 10% of
    /// its TTL (default true).
    pub prefetch: bool,
    /// The clock expiry is judged by (default [`CacheClock::Coarse`]; tests
    /// that pause tokio's clock use [`CacheClock::Tokio`]).
    pub clock: CacheClock,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(86_400),
            negative_max_ttl: Duration::from_secs(3_600),
            negative_fallback_ttl: Duration::from_secs(15),
            failure_ttl: Duration::from_secs(5),
            serve_stale: None,
            stale_answer_ttl: 30,
            prefetch: true,
            clock: CacheClock::Coarse,
        }
    }
}

/// What a cache entry is for: one record type, or the combined, ordered
/// answer of `lookup_ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// A typed lookup.
    Type(QueryType),
    /// The ordered addresses of `lookup_ip`.
    Ip,
}

impl Slot {
    /// One byte per slot: the query type's index, or `u8::MAX`.
    fn tag(self) -> u8 {
        match self {
            Slot::Type(query_type) => query_type.index(),
            Slot::Ip => u8::MAX,
        }
    }
}

/// An owned cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    name: Box<str>,
    slot: Slot,
}

impl Key {
    /// A key for `name` (normalized) and `slot`.
    pub fn new(name: &str, slot: Slot) -> Self {
        Self {
            name: name.into(),
            slot,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The slot.
    pub fn slot(&self) -> Slot {
        self.slot
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        KeyRef(&self.name, self.slot).hash(state);
    }
}

/// A borrowed key, so that a hit needs no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyRef<'a>(&'a str, Slot);

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The name's bytes and one byte for the slot: every hit hashes
        // this, and the derived `Slot` hash would be two more writes.
        state.write(self.0.as_bytes());
        state.write_u8(self.1.tag());
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.1 == key.slot && *self.0 == *key.name
    }
}

/// What an entry holds (the large variants boxed, so an entry of the
/// common kind, `Ips`, stays small).
#[derive(Debug, Clone)]
pub enum Value {
    /// A typed answer reached through CNAMEs, or a CNAME answer (its TTLs
    /// are the entry's, not these).
    Lookup(Lookup),
    /// `lookup_ip` addresses, ordered; or a typed answer's addresses when
    /// no CNAME was on the way (the rest of it is the key).
    Ips(Arc<[IpAddr]>),
    /// A negative answer or a remembered failure.
    Error(Arc<Error>),
}

impl Value {
    /// How a typed answer is cached: a plain address answer (the common
    /// case) as its addresses alone, so that a hit shares one reference
    /// count with nobody but the answer it returns; anything else whole.
    pub fn of_lookup(lookup: &Lookup) -> Self {
        if lookup.target().is_none() && lookup.chain().is_empty() && lookup.records().is_empty() {
            Value::Ips(lookup.shared_ips())
        } else {
            Value::Lookup(lookup.clone())
        }
    }
}

/// One cached answer, stored inline in the cache's slots and cloned out
/// on a hit (a reference-count increment). Kept small: at a million
/// entries every byte here is a megabyte; the stale window and the TTL
/// floor and ceiling are the cache's, not stored per entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The answer.
    pub value: Value,
    /// When it expires, on the cache's timeline.
    expires: Tick,
    /// Seconds. A positive answer: the record's TTL as the server gave it
    /// (the TTL kept is the cache's clamp of it, [`Bounds::kept`], so the
    /// record's own remaining TTL can be reported); a failure: the TTL kept.
    ttl: u32,
    prefetch_claimed: bool,
}

/// The floor and ceiling positive TTLs are clamped to, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    floor: u64,
    ceiling: u64,
}

impl Bounds {
    fn of(config: &CacheConfig) -> Self {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Self {
            floor: nanos(config.min_ttl),
            ceiling: nanos(config.max_ttl.max(config.min_ttl)),
        }
    }

    /// How long a positive answer whose record TTL is `record` seconds is
    /// kept, in nanoseconds.
    fn kept(self, record: u32) -> u64 {
        (u64::from(record) * NANOS_PER_SECOND).clamp(self.floor, self.ceiling)
    }
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;

impl Entry {
    /// Seconds left, rounded up; zero once expired.
    pub fn remaining(&self, now: Instant) -> u32 {
        seconds_left(self.expires.nanos_since(Tick::of(now)))
    }

    /// Whether the entry is past its TTL.
    pub fn expired(&self, now: Instant) -> bool {
        Tick::of(now) >= self.expires
    }

    /// Whether `now` is in the entry's prefetch window (its last 10%) and
    /// its one prefetch has not been claimed.
    fn prefetch_due(&self, now: Instant, bounds: Bounds) -> bool {
        // `now + window >= expires` and not expired.
        let left = self.expires.nanos_since(Tick::of(now));
        !self.prefetch_claimed && left > 0 && left <= self.prefetch_window(bounds)
    }

    /// The TTL kept, in nanoseconds.
    fn kept(&self, bounds: Bounds) -> u64 {
        if self.positive() {
            bounds.kept(self.ttl)
        } else {
            u64::from(self.ttl) * NANOS_PER_SECOND
        }
    }

    /// The last 10% of the TTL kept, in nanoseconds.
    fn prefetch_window(&self, bounds: Bounds) -> u64 {
        self.kept(bounds) / 10
    }

    /// Nanoseconds left of the record's own TTL when `left` are left of
    /// the TTL kept (the same for a failure).
    fn record_left(&self, left: u64, bounds: Bounds) -> u64 {
        if self.positive() {
            left.saturating_add(u64::from(self.ttl) * NANOS_PER_SECOND)
                .saturating_sub(self.kept(bounds))
        } else {
            left
        }
    }

    /// True for a remembered transient failure ([`crate::ErrorKind::is_transient`]):
    /// SERVFAIL, REFUSED, a timeout or the like, not an answer.
    pub fn is_transient_failure(&self) -> bool {
        matches!(&self.value, Value::Error(e) if e.kind().is_transient())
    }

    fn positive(&self) -> bool {
        !matches!(self.value, Value::Error(_))
    }
}

/// Seconds in `left` nanoseconds, rounded up after truncating to
/// milliseconds (what `as_millis().div_ceil(1000)` of the `Duration` gives,
/// without a 128-bit division).
fn seconds_left(left: u64) -> u32 {
    let seconds = left / 1_000_000_000 + u64::from(left % 1_000_000_000 >= 1_000_000);
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

/// A live entry with the time it has left, so that a hit compares times
/// once: expiry, the seconds reported and the prefetch window all follow
/// from `left`.
#[derive(Debug)]
pub(crate) struct Fresh {
    /// The entry.
    pub(crate) entry: Entry,
    /// Nanoseconds to expiry; never zero.
    left: u64,
    /// Nanoseconds left of the record's own TTL (at most `left` when the
    /// floor raised it, more when the ceiling lowered it).
    record_left: u64,
}

impl Fresh {
    /// Seconds the cache keeps the entry still, rounded up (as
    /// [`Entry::remaining`]).
    pub(crate) fn remaining(&self) -> u32 {
        seconds_left(self.left)
    }

    /// Seconds left of the record's own TTL, rounded up.
    pub(crate) fn record_remaining(&self) -> u32 {
        seconds_left(self.record_left)
    }
}

/// [`Hit`], with the time a fresh entry has left.
#[derive(Debug)]
pub(crate) enum Found {
    /// A live entry.
    Fresh(Fresh),
    /// An expired positive entry inside the serve-stale window.
    Stale(Entry),
    /// Nothing usable.
    Miss,
}

/// The cache policy's verdict on a lookup, for the resolver to carry out:
/// the policy (freshness, the prefetch window and its one claim,
/// serve-stale) is decided here, from `now`, and executed there.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Answer from this live entry.
    Fresh(Fresh),
    /// Answer from this live entry, and refresh it in the background: it is
    /// in the last 10% of its TTL and this lookup claimed its one prefetch.
    Prefetch(Fresh),
    /// Answer from this expired entry (serve-stale, RFC 8767) and refresh
    /// it in the background.
    Stale(Entry),
    /// Ask the wire.
    Miss,
}

/// The result of looking in the cache.
#[derive(Debug)]
pub enum Hit {
    /// A live entry.
    Fresh(Entry),
    /// An expired positive entry inside the serve-stale window.
    Stale(Entry),
    /// Nothing usable.
    Miss,
}

/// Counts the entries evicted for room, and says so when the cache starts
/// evicting (an info event on the 1st, 2nd, 4th, 8th, ... eviction).
#[derive(Debug, Clone, Default)]
pub struct Evictions {
    count: Arc<AtomicU64>,
    capacity: usize,
}

impl quick_cache::Lifecycle<Key, Entry> for Evictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), key: Key, _entry: Entry) {
        let evicted = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if evicted.is_power_of_two() {
            tracing::info!(
                evicted,
                capacity = self.capacity,
                last = %key.name,
                "answer cache full: evicting the least used entries"
            );
        }
    }
}

type Store = quick_cache::sync::Cache<
    Key,
    Entry,
    quick_cache::UnitWeighter,
    quick_cache::DefaultHashBuilder,
    Evictions,
>;

/// The cache.
pub struct Cache {
    config: CacheConfig,
    bounds: Bounds,
    store: Store,
    evictions: Arc<AtomicU64>,
    /// This cache's id in the per-thread fronts, and their hash of a key.
    front_owner: u64,
    front_hash: quick_cache::DefaultHashBuilder,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("entries", &self.store.len())
            .finish()
    }
}

impl Cache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        let capacity = config.max_entries.max(1);
        let evictions = Evictions {
            count: Arc::new(AtomicU64::new(0)),
            capacity,
        };
        let count = evictions.count.clone();
        let store = Store::with(
            capacity,
            capacity as u64,
            quick_cache::UnitWeighter,
            quick_cache::DefaultHashBuilder::default(),
            evictions,
        );
        let bounds = Bounds::of(&config);
        Self {
            config,
            bounds,
            store,
            evictions: count,
            front_owner: cache_front::owner_id(),
            front_hash: quick_cache::DefaultHashBuilder::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The current time on the cache's clock.
    pub fn now(&self) -> Instant {
        self.config.clock.now()
    }

    /// The current time on the cache's clock, for [`Cache::find`].
    pub(crate) fn tick(&self) -> Tick {
        self.config.clock.tick()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Entries evicted for room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Looks `name`/`slot` up at time `now`. Allocates nothing.
    pub fn get(&self, name: &str, slot: Slot, now: Instant) -> Hit {
        match self.find(name, slot, Tick::of(now)) {
            Found::Fresh(fresh) => Hit::Fresh(fresh.entry),
            Found::Stale(entry) => Hit::Stale(entry),
            Found::Miss => Hit::Miss,
        }
    }

    /// [`Cache::get`] for the resolver's hit paths: a fresh entry comes with
    /// the time it has left.
    pub(crate) fn find(&self, name: &str, slot: Slot, now: Tick) -> Found {
        let Some(entry) = self.store.get(&KeyRef(name, slot)) else {
            return Found::Miss;
        };
        // Zero exactly when `now >= expires` (expired).
        let left = entry.expires.nanos_since(now);
        if left > 0 {
            let record_left = entry.record_left(left, self.bounds);
            Found::Fresh(Fresh {
                entry,
                left,
                record_left,
            })
        } else if entry.positive()
            && self
                .config
                .serve_stale
                .is_some_and(|stale| now < entry.expires.add(stale))
        {
            Found::Stale(entry)
        } else {
            Found::Miss
        }
    }

    /// The policy's [`Decision`] for a lookup of `name`/`slot` at `now`.
    /// Claims the entry's prefetch when that is the decision.
    #[inline(always)]
    pub(crate) fn decide(&self, name: &str, slot: Slot, now: Tick) -> Decision {
        let place = cache_front::Place {
            owner: self.front_owner,
            hash: self.front_hash.hash_one(KeyRef(name, slot)),
            kind: slot.tag(),
            name,
        };
        if let Some(held) = cache_front::get(place, now) {
            // Held only while fresh, so `left` is not zero.
            let left = held.expires.nanos_since(now);
            let entry = Entry {
                value: match held.answer {
                    cache_front::Copied::Ips(ips) => Value::Ips(ips),
                    cache_front::Copied::Typed(lookup) => Value::Lookup(lookup),
                },
                expires: held.expires,
                ttl: held.ttl,
                prefetch_claimed: false,
            };
            let record_left = entry.record_left(left, self.bounds);
            return Decision::Fresh(Fresh {
                entry,
                left,
                record_left,
            });
        }
        match self.find(name, slot, now) {
            Found::Fresh(fresh) if self.claim_prefetch_fresh(name, slot, &fresh) => {
                Decision::Prefetch(fresh)
            }
            Found::Fresh(fresh) => {
                self.hold_in_front(place, slot, &fresh, now);
                Decision::Fresh(fresh)
            }
            Found::Stale(entry) => Decision::Stale(entry),
            Found::Miss => Decision::Miss,
        }
    }

    /// Holds a copy of a fresh address answer in this thread's front until
    /// its prefetch window (its expiry when prefetch is off). For a typed
    /// slot the copy is a whole [`Lookup`], so that a hit returns it
    /// without building it.
    fn hold_in_front(&self, place: cache_front::Place<'_>, slot: Slot, fresh: &Fresh, now: Tick) {
        let window = if self.config.prefetch {
            fresh.entry.prefetch_window(self.bounds)
        } else {
            0
        };
        let Some(before_window) = fresh.left.checked_sub(window).filter(|&n| n > 0) else {
            return;
        };
        let copy = match (&fresh.entry.value, slot) {
            (Value::Ips(ips), Slot::Ip) => cache_front::Copied::Ips(Arc::from(&ips[..])),
            (Value::Ips(ips), Slot::Type(query_type)) => cache_front::Copied::Typed(Lookup::new(
                Answer::ips(place.name.to_owned(), query_type, Arc::from(&ips[..])),
                0,
                0,
            )),
            // Only plain address answers, as before typed ones were held:
            // the rest (CNAME chains, other types) stay the shared cache's.
            (Value::Lookup(_) | Value::Error(_), _) => return,
        };
        let until = now.add(Duration::from_nanos(before_window));
        cache_front::put(place, copy, fresh.entry.expires, fresh.entry.ttl, until);
    }

    /// Stores a positive answer whose smallest TTL is `ttl` seconds, kept
    /// for that clamped to the floor and ceiling. Returns the seconds kept.
    pub fn insert_positive(&self, key: Key, value: Value, ttl: u32, now: Instant) -> u32 {
        let kept = Duration::from_nanos(self.bounds.kept(ttl));
        self.store.insert(key, entry(value, now, kept, ttl));
        u32::try_from(kept.as_secs()).unwrap_or(u32::MAX)
    }

    /// Stores a failure. NXDOMAIN and NODATA are kept for `negative_ttl`
    /// (from the SOA; the fallback when absent) up to the ceiling; other
    /// failures for `failure_ttl`; local errors (I/O, resources, invalid
    /// names) are never stored. A failure never displaces a positive answer
    /// that may still be served stale: when every server fails, the stale
    /// answer is what the crawler gets. Returns true when stored.
    pub fn insert_error(
        &self,
        key: Key,
        error: &Error,
        negative_ttl: Option<u32>,
        now: Instant,
    ) -> bool {
        let kind = error.kind();
        let ttl = if kind.is_authoritative_negative() {
            negative_ttl
                .map_or(self.config.negative_fallback_ttl, |s| {
                    Duration::from_secs(u64::from(s))
                })
                .min(self.config.negative_max_ttl)
        } else if kind.is_local() {
            return false;
        } else {
            // Transient failures (and CNAME loops, a fault of the zone's
            // data) are remembered briefly.
            if let Hit::Stale(_) = self.get(&key.name, key.slot, now) {
                return false;
            }
            self.config.failure_ttl
        };
        if ttl.is_zero() {
            return false;
        }
        let secs = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
        let value = Value::Error(Arc::new(error.clone()));
        self.store.insert(key, entry(value, now, ttl, secs));
        true
    }

    /// Claims the one background refresh `entry` (just read for
    /// `name`/`slot`) gets when hit in the last 10% of its TTL. Two racing
    /// claimers may both win; single-flight makes that one query anyway.
    pub fn claim_prefetch(&self, name: &str, slot: Slot, entry: &Entry, now: Instant) -> bool {
        if !self.config.prefetch || !entry.prefetch_due(now, self.bounds) {
            return false;
        }
        self.mark_prefetch_claimed(name, slot, entry)
    }

    /// [`Cache::claim_prefetch`] for an entry just found fresh: the same
    /// test (`now + window >= expires` is `left <= window`), without
    /// reading the clock or converting times again.
    pub(crate) fn claim_prefetch_fresh(&self, name: &str, slot: Slot, fresh: &Fresh) -> bool {
        let entry = &fresh.entry;
        if !self.config.prefetch
            || entry.prefetch_claimed
            || fresh.left > entry.prefetch_window(self.bounds)
        {
            return false;
        }
        self.mark_prefetch_claimed(name, slot, entry)
    }

    fn mark_prefetch_claimed(&self, name: &str, slot: Slot, entry: &Entry) -> bool {
        let mut claimed = entry.clone();
        claimed.prefetch_claimed = true;
        // Soft: an entry evicted meanwhile is not brought back.
        self.store
            .replace(Key::new(name, slot), claimed, true)
            .is_ok()
    }

    /// The stale positive entry for `name`/`slot`, if one may be served.
    pub fn stale(&self, name: &str, slot: Slot, now: Instant) -> Option<Entry> {
        match self.get(name, slot, now) {
            Hit::Stale(entry) => Some(entry),
            _ => None,
        }
    }
}

/// An entry kept for `kept`, whose [`Entry::ttl`] is `ttl`.
fn entry(value: Value, now: Instant, kept: Duration, ttl: u32) -> Entry {
    Entry {
        value,
        expires: Tick::of(now).add(kept),
        ttl,
        prefetch_claimed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const S: Duration = Duration::from_secs(1);

    fn lookup(ttl: u32) -> Value {
        Value::Lookup(Lookup::new(
            crate::records::Answer::ips(
                "a.test".into(),
                QueryType::A,
                Arc::from([IpAddr::from([127, 0, 0, 2])]),
            ),
            ttl,
            0,
        ))
    }

    fn key() -> Key {
        Key::new("a.test", Slot::Type(QueryType::A))
    }

    fn cache(config: CacheConfig) -> Cache {
        Cache::new(config)
    }

    #[test]
    fn ttl_floor_ceiling_and_expiry() {
        let c = cache(CacheConfig {
            max_ttl: 3600 * S,
            ..Default::default()
        });
        let t0 = Instant::now();
        assert_eq!(
            c.insert_positive(key(), lookup(5), 5, t0),
            30,
            "raised to the floor"
        );
        let slot = Slot::Type(QueryType::A);
        assert!(matches!(c.get("a.test", slot, t0 + 29 * S), Hit::Fresh(_)));
        assert!(matches!(c.get("a.test", slot, t0 + 30 * S), Hit::Miss));
        assert_eq!(
            c.insert_positive(key(), lookup(999_999), 999_999, t0),
            3600,
            "lowered to the ceiling"
        );
        let Hit::Fresh(e) = c.get("a.test", slot, t0 + 100 * S) else {
            panic!()
        };
        assert_eq!(e.remaining(t0 + 100 * S), 3500);
        assert!(matches!(
            c.get("a.test", Slot::Type(QueryType::Aaaa), t0),
            Hit::Miss
        ));
        assert!(matches!(c.get("b.test", slot, t0), Hit::Miss));
    }

    #[test]
    fn negative_and_failure_ttls() {
        let c = cache(CacheConfig::default());
        let t0 = Instant::now();
        let slot = Slot::Type(QueryType::A);
        let nx = Error::new(ErrorKind::NxDomain, "a.test");
        assert!(c.insert_error(key(), &nx, Some(60), t0));
        assert!(matches!(c.get("a.test", slot, t0 + 59 * S), Hit::Fresh(_)));
        assert!(matches!(c.get("a.test", slot, t0 + 60 * S), Hit::Miss));
        assert!(c.insert_error(key(), &nx, Some(86_400), t0));
        assert!(
            matches!(c.get("a.test", slot, t0 + 3599 * S), Hit::Fresh(_)),
            "capped at 1 h"
        );
        assert!(matches!(c.get("a.test", slot, t0 + 3600 * S), Hit::Miss));
        assert!(c.insert_error(key(), &Error::new(ErrorKind::NoData, "a.test"), None, t0));
        assert!(
            matches!(c.get("a.test", slot, t0 + 14 * S), Hit::Fresh(_)),
            "no SOA: fallback 15 s"
        );
        assert!(matches!(c.get("a.test", slot, t0 + 15 * S), Hit::Miss));
        assert!(c.insert_error(key(), &Error::new(ErrorKind::ServFail, "a.test"), None, t0));
        assert!(matches!(c.get("a.test", slot, t0 + 4 * S), Hit::Fresh(_)));
        assert!(matches!(c.get("a.test", slot, t0 + 5 * S), Hit::Miss));
        for local in [ErrorKind::Io, ErrorKind::Resource, ErrorKind::InvalidName] {
            assert!(!c.insert_error(key(), &Error::new(local, "a.test"), None, t0 + 10 * S));
        }
    }

    #[test]
    fn serve_stale_survives_failures_but_not_nxdomain() {
        let c = cache(CacheConfig {
            serve_stale: Some(3600 * S),
            ..Default::default()
        });
        let t0 = Instant::now();
        let slot = Slot::Type(QueryType::A);
        c.insert_positive(key(), lookup(60), 60, t0);
        let later = t0 + 120 * S;
        assert!(matches!(c.get("a.test", slot, later), Hit::Stale(_)));
        assert!(!c.insert_error(
            key(),
            &Error::new(ErrorKind::Timeout, "a.test"),
            None,
            later
        ));
        assert!(matches!(c.get("a.test", slot, later), Hit::Stale(_)));
        assert!(
            matches!(c.get("a.test", slot, t0 + 60 * S + 3600 * S), Hit::Miss),
            "past max staleness"
        );
        assert!(c.insert_error(
            key(),
            &Error::new(ErrorKind::NxDomain, "a.test"),
            Some(60),
            later
        ));
        assert!(
            matches!(c.get("a.test", slot, later), Hit::Fresh(e) if matches!(e.value, Value::Error(_)))
        );
    }

    #[test]
    fn the_record_ttl_is_kept_beside_the_clamp() {
        let c = cache(CacheConfig {
            max_ttl: 3600 * S,
            ..Default::default()
        });
        let t0 = Instant::now();
        let slot = Slot::Type(QueryType::A);
        let both = |now: Instant| match c.find("a.test", slot, Tick::of(now)) {
            Found::Fresh(f) => (f.record_remaining(), f.remaining()),
            _ => panic!("not fresh"),
        };
        assert_eq!(c.insert_positive(key(), lookup(5), 5, t0), 30);
        assert_eq!(both(t0), (5, 30), "raised to the floor");
        assert_eq!(both(t0 + 3 * S), (2, 27));
        assert_eq!(
            both(t0 + 10 * S),
            (0, 20),
            "the record expired, the entry not"
        );
        assert_eq!(c.insert_positive(key(), lookup(7200), 7200, t0), 3600);
        assert_eq!(both(t0 + 100 * S), (7100, 3500), "lowered to the ceiling");
        assert_eq!(c.insert_positive(key(), lookup(60), 60, t0), 60);
        assert_eq!(both(t0 + 59 * S), (1, 1), "within bounds: the same");
        let nx = Error::new(ErrorKind::NxDomain, "a.test");
        assert!(c.insert_error(key(), &nx, Some(10), t0));
        assert_eq!(both(t0 + 4 * S), (6, 6), "a failure: the TTL kept");
    }

    #[test]
    fn prefetch_window_is_claimed_once() {
        let c = cache(CacheConfig::default());
        let t0 = Instant::now();
        c.insert_positive(key(), lookup(100), 100, t0);
        let Hit::Fresh(e) = c.get("a.test", Slot::Type(QueryType::A), t0) else {
            panic!()
        };
        let slot = Slot::Type(QueryType::A);
        assert!(!c.claim_prefetch("a.test", slot, &e, t0 + 89 * S));
        assert!(c.claim_prefetch("a.test", slot, &e, t0 + 91 * S));
        let Hit::Fresh(e) = c.get("a.test", slot, t0 + 92 * S) else {
            panic!()
        };
        assert!(!c.claim_prefetch("a.test", slot, &e, t0 + 92 * S));
    }

    #[test]
    fn the_fast_forms_agree_with_the_plain_ones() {
        for ttl in [0, 1, 7, 30, 99, 100, 86_400, u32::MAX] {
            let e = entry(
                lookup(ttl),
                Instant::now(),
                Duration::from_secs(u64::from(ttl)),
                ttl,
            );
            let unclamped = Bounds {
                floor: 0,
                ceiling: u64::MAX,
            };
            assert_eq!(
                u128::from(e.prefetch_window(unclamped)),
                (Duration::from_secs(u64::from(ttl)) / 10).as_nanos(),
                "{ttl}"
            );
        }
        for left in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(999),
            Duration::from_millis(1),
            Duration::from_millis(999),
            Duration::from_millis(1000),
            Duration::from_nanos(1_000_999_999),
            Duration::from_millis(1001),
            Duration::from_secs(59) + Duration::from_nanos(999_999_999),
            Duration::from_secs(u64::from(u32::MAX)),
            Duration::from_secs(u64::from(u32::MAX) + 5),
        ] {
            let plain = u32::try_from(left.as_millis().div_ceil(1000)).unwrap_or(u32::MAX);
            let nanos = u64::try_from(left.as_nanos()).unwrap();
            assert_eq!(seconds_left(nanos), plain, "{left:?}");
        }
        // Around expiry and the prefetch window, `find` + the fresh claim
        // say what `get` + `claim_prefetch` say.
        let t0 = Instant::now();
        let slot = Slot::Type(QueryType::A);
        let ms = Duration::from_millis(1);
        for offset in [0, 1, 89_999, 90_000, 90_001, 99_999, 100_000, 100_001] {
            let now = t0 + offset * ms;
            let plain = cache(CacheConfig::default());
            let fast = cache(CacheConfig::default());
            plain.insert_positive(key(), lookup(100), 100, t0);
            fast.insert_positive(key(), lookup(100), 100, t0);
            let plain_claim = match plain.get("a.test", slot, now) {
                Hit::Fresh(e) => Some((
                    e.remaining(now),
                    plain.claim_prefetch("a.test", slot, &e, now),
                )),
                _ => None,
            };
            let fast_claim = match fast.find("a.test", slot, Tick::of(now)) {
                Found::Fresh(f) => {
                    Some((f.remaining(), fast.claim_prefetch_fresh("a.test", slot, &f)))
                }
                _ => None,
            };
            assert_eq!(plain_claim, fast_claim, "at {offset} ms");
        }
    }

    #[test]
    fn a_million_names_keep_it_at_its_bound_and_hot_names_stay() {
        let c = cache(CacheConfig {
            max_entries: 10_000,
            ..Default::default()
        });
        let t0 = Instant::now();
        let hot: Vec<String> = (0..500).map(|i| format!("hot{i}.test")).collect();
        for name in &hot {
            c.insert_positive(Key::new(name, Slot::Ip), Value::Ips(Arc::from([])), 60, t0);
        }
        for i in 0..1_000_000 {
            c.insert_positive(
                Key::new(&format!("cold{i}.test"), Slot::Ip),
                Value::Ips(Arc::from([])),
                60,
                t0,
            );
            // The crawler keeps hitting its hot hosts between cold ones.
            if i % 20 == 0 {
                let name = &hot[(i / 20) % hot.len()];
                assert!(
                    !matches!(c.get(name, Slot::Ip, t0), Hit::Miss),
                    "{name} evicted at {i}"
                );
            }
            if i % 100_000 == 0 {
                assert!(c.len() <= 10_000 + 10_000 / 10, "{} entries", c.len());
            }
        }
        assert!(c.len() <= 10_000 + 10_000 / 10, "{} entries", c.len());
        let hot_left = hot
            .iter()
            .filter(|n| !matches!(c.get(n, Slot::Ip, t0), Hit::Miss))
            .count();
        assert_eq!(hot_left, hot.len());
        // Every entry that is not held was evicted for room, and counted.
        assert_eq!(c.evictions() + c.len() as u64, 1_000_500);
    }

    #[test]
    fn decisions_follow_the_entry_through_its_life() {
        let c = cache(CacheConfig {
            serve_stale: Some(Duration::from_secs(60)),
            ..CacheConfig::default()
        });
        let t0 = Instant::now();
        let tick = |s: u64| Tick::of(t0 + Duration::from_secs(s));
        let name = key().name().to_owned();
        let slot = key().slot();
        assert!(matches!(c.decide(&name, slot, tick(0)), Decision::Miss));
        c.insert_positive(key(), lookup(100), 100, t0);
        assert!(matches!(c.decide(&name, slot, tick(0)), Decision::Fresh(_)));
        assert!(matches!(
            c.decide(&name, slot, tick(89)),
            Decision::Fresh(_)
        ));
        // The last 10%: one lookup gets the prefetch, the next does not.
        match c.decide(&name, slot, tick(91)) {
            Decision::Prefetch(fresh) => assert_eq!(fresh.remaining(), 9),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.decide(&name, slot, tick(92)),
            Decision::Fresh(_)
        ));
        // Expired: served stale for 60 s, then a miss.
        assert!(matches!(
            c.decide(&name, slot, tick(100)),
            Decision::Stale(_)
        ));
        assert!(matches!(
            c.decide(&name, slot, tick(159)),
            Decision::Stale(_)
        ));
        assert!(matches!(c.decide(&name, slot, tick(160)), Decision::Miss));
        // A negative answer is never served stale.
        c.insert_error(
            key(),
            &Error::new(ErrorKind::NxDomain, "a.test"),
            Some(10),
            t0,
        );
        assert!(matches!(c.decide(&name, slot, tick(5)), Decision::Fresh(_)));
        assert!(matches!(c.decide(&name, slot, tick(10)), Decision::Miss));
    }

    #[test]
    fn without_prefetch_the_window_is_just_fresh() {
        let c = cache(CacheConfig {
            prefetch: false,
            ..CacheConfig::default()
        });
        let t0 = Instant::now();
        c.insert_positive(key(), lookup(100), 100, t0);
        let at = Tick::of(t0 + Duration::from_secs(95));
        assert!(matches!(
            c.decide(key().name(), key().slot(), at),
            Decision::Fresh(_)
        ));
    }

    #[test]
    fn stays_within_its_bound() {
        let c = cache(CacheConfig {
            max_entries: 1000,
            ..Default::default()
        });
        let t0 = Instant::now();
        for i in 0..20_000 {
            c.insert_positive(
                Key::new(&format!("h{i}.test"), Slot::Ip),
                Value::Ips(Arc::from([])),
                60,
                t0,
            );
        }
        assert!(c.len() <= 1000, "{}", c.len());
    }
}
