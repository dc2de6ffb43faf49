//! A per-thread front for the cache's hot answers: a hit on it writes no
//! memory that another thread reads or writes.
//!
//! A hit on the shared cache takes its shard's read lock and clones the
//! entry's `Arc` out: two atomic writes to lines every thread hitting the
//! same entries also writes, so two threads hitting a hot set cost each
//! other more than they gain. The front keeps, per thread, a small
//! direct-mapped table of fresh address answers, each with its own copy of
//! the addresses (so the reference count a hit bumps is this thread's).
//!
//! Expiry stays exact: an answer is held only while it is fresh and before
//! its prefetch window (`fresh_until`), so the shared cache still sees
//! every lookup that must decide a prefetch, a stale answer or a miss. A
//! held answer may outlive its shared entry (evicted for room, or replaced
//! by a refresh); it is still within its own TTL, as any copy a caller
//! keeps is. No clock and no I/O: the caller passes `now`.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::Tick;
use crate::records::Lookup;

/// Sets per thread per process (all resolvers share them), of [`WAYS`]
/// slots each: 1,024 address answers of a few dozen bytes each. Two ways,
/// so that two hot names whose hashes meet do not evict each other on
/// every hit, as they would in a direct-mapped table.
const SETS: usize = 512;
const WAYS: usize = 2;

/// This thread's own copy of a fresh answer (so the reference count a
/// hit bumps is this thread's).
#[derive(Debug, Clone)]
pub(crate) enum Copied {
    /// Addresses (a `lookup_ip` entry).
    Ips(Arc<[IpAddr]>),
    /// A typed answer (its TTLs are the entry's, not these).
    Typed(Lookup),
}

/// A fresh answer as the front holds it.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// This thread's copy of the answer.
    pub answer: Copied,
    /// When the entry expires.
    pub expires: Tick,
    /// The entry's TTL field (the record's TTL as the server gave it).
    pub ttl: u32,
}

/// Where an answer lives in the front: its cache, key hash, slot kind and
/// name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    /// The cache's id (see [`owner_id`]).
    pub owner: u64,
    /// The key's hash.
    pub hash: u64,
    /// The key's slot, as one byte.
    pub kind: u8,
    /// The key's name.
    pub name: &'a str,
}

#[derive(Debug)]
struct Slot {
    /// The cache this answer came from (see [`owner_id`]).
    owner: u64,
    hash: u64,
    kind: u8,
    name: Box<str>,
    held: Held,
    /// Held until then: the entry's expiry, or the start of its prefetch
    /// window.
    fresh_until: Tick,
}

/// One set: its ways, and the way the next put replaces when both hold
/// live answers.
#[derive(Debug, Default)]
struct Set {
    ways: [Option<Slot>; WAYS],
    next: usize,
}

thread_local! {
    static FRONT: RefCell<Vec<Set>> = const { RefCell::new(Vec::new()) };
}

/// A fresh id for a cache, so that the fronts of two caches (two
/// resolvers in one process) never answer for each other.
pub(crate) fn owner_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn index(hash: u64) -> usize {
    // The hash's high bits: the low ones also pick the shared cache's shard.
    (hash >> 32) as usize % SETS
}

impl Slot {
    fn is(&self, place: Place<'_>) -> bool {
        self.hash == place.hash
            && self.owner == place.owner
            && self.kind == place.kind
            && *self.name == *place.name
    }
}

/// This thread's copy of the answer at `place`, if it holds one fresh at
/// `now` (before its prefetch window).
pub(crate) fn get(place: Place<'_>, now: Tick) -> Option<Held> {
    FRONT.with(|front| {
        let front = front.try_borrow().ok()?;
        let set = front.get(index(place.hash))?;
        let slot = set.ways.iter().flatten().find(|slot| slot.is(place))?;
        (now < slot.fresh_until).then(|| slot.held.clone())
    })
}

/// Holds `answer` (this thread's copy; expiring at `expires`, with TTL
/// field `ttl`) at `place` on this thread until `fresh_until`, in place of
/// whatever its slot held.
pub(crate) fn put(place: Place<'_>, answer: Copied, expires: Tick, ttl: u32, fresh_until: Tick) {
    FRONT.with(|front| {
        let Ok(mut front) = front.try_borrow_mut() else {
            return;
        };
        if front.is_empty() {
            front.resize_with(SETS, Set::default);
        }
        let set = &mut front[index(place.hash)];
        // The way holding this key, else an empty one, else the one whose
        // turn it is.
        let way = match set
            .ways
            .iter()
            .position(|w| w.as_ref().is_some_and(|s| s.is(place)))
        {
            Some(way) => way,
            None => match set.ways.iter().position(Option::is_none) {
                Some(way) => way,
                None => {
                    let way = set.next;
                    set.next = (way + 1) % WAYS;
                    way
                }
            },
        };
        set.ways[way] = Some(Slot {
            owner: place.owner,
            hash: place.hash,
            kind: place.kind,
            name: place.name.into(),
            held: Held {
                answer,
                expires,
                ttl,
            },
            fresh_until,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(owner: u64, hash: u64, name: &str, kind: u8) -> Place<'_> {
        Place {
            owner,
            hash,
            kind,
            name,
        }
    }

    #[test]
    fn held_until_fresh_until_and_only_for_its_owner_name_and_kind() {
        let t0 = Tick::of(tokio::time::Instant::now());
        let until = t0.add(Duration::from_secs(270));
        let expires = t0.add(Duration::from_secs(300));
        let ips = [IpAddr::from([10, 0, 0, 1])];
        let owner = owner_id();
        put(
            at(owner, 7 << 32, "a.test", 1),
            Copied::Ips(Arc::from(ips)),
            expires,
            300,
            until,
        );
        let got = get(at(owner, 7 << 32, "a.test", 1), t0).unwrap();
        let Copied::Ips(got_ips) = &got.answer else {
            panic!("not addresses: {got:?}");
        };
        assert_eq!(&got_ips[..], &ips[..]);
        assert_eq!((got.expires, got.ttl), (expires, 300));
        assert!(get(
            at(owner, 7 << 32, "a.test", 1),
            t0.add(Duration::from_secs(269))
        )
        .is_some());
        assert!(get(at(owner, 7 << 32, "a.test", 1), until).is_none());
        assert!(get(at(owner + 1_000_000, 7 << 32, "a.test", 1), t0).is_none());
        assert!(get(at(owner, 7 << 32, "b.test", 1), t0).is_none());
        assert!(get(at(owner, 7 << 32, "a.test", 2), t0).is_none());
        assert!(get(at(owner, 8 << 32, "a.test", 1), t0).is_none());
    }

    #[test]
    fn a_set_holds_the_last_two_answers_put_and_other_threads_see_nothing() {
        let t0 = Tick::of(tokio::time::Instant::now());
        let until = t0.add(Duration::from_secs(10));
        let owner = owner_id();
        // Three names whose hashes pick the same set.
        let names = ["a.test", "b.test", "c.test"];
        let place = |i: usize| at(owner, (3 + (i * SETS) as u64) << 32, names[i], 1);
        let hold = |i: usize| {
            put(
                place(i),
                Copied::Ips(Arc::from([IpAddr::from([10, 0, 0, i as u8])])),
                until,
                10,
                until,
            )
        };
        let held = |i: usize| get(place(i), t0).is_some();
        hold(0);
        hold(1);
        assert_eq!((held(0), held(1)), (true, true));
        // A third replaces the first way, then the first the second.
        hold(2);
        assert_eq!((held(0), held(1), held(2)), (false, true, true));
        hold(0);
        assert_eq!((held(0), held(1), held(2)), (true, false, true));
        let b = place(2).hash;
        let elsewhere = std::thread::spawn(move || get(at(owner, b, "c.test", 1), t0).is_none());
        assert!(elsewhere.join().unwrap());
    }
}
