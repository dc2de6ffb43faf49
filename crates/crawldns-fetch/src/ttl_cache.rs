//! What aiohttp does by default (`TCPConnector(ttl_dns_cache=10)`): a host's
//! addresses kept for a fixed time, whatever the records' TTLs, in front of
//! another resolver, with no single-flight: lookups of a host that miss at
//! the same time all ask the resolver behind. Failures are not kept. Here
//! to be compared with, as the middle ground between the bare system path
//! and crawldns (what caching alone buys).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::host_resolver::{BoxFuture, DnsFailure, HostResolver};

/// A host's addresses and when they were stored.
type Stored = (Arc<[IpAddr]>, Instant);

/// Answers kept for a fixed time. No I/O and no clock: `now` comes in.
#[derive(Debug)]
pub struct TtlCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Stored>>,
}

impl TtlCache {
    /// An empty cache keeping answers for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The addresses of `host` stored less than the TTL before `now`.
    pub fn get(&self, host: &str, now: Instant) -> Option<Arc<[IpAddr]>> {
        let mut entries = self.entries.lock();
        match entries.get(host) {
            Some((addrs, stored)) if now.saturating_duration_since(*stored) < self.ttl => {
                Some(addrs.clone())
            }
            Some(_) => {
                entries.remove(host);
                None
            }
            None => None,
        }
    }

    /// Stores the addresses of `host` at `now`.
    pub fn put(&self, host: &str, addrs: Arc<[IpAddr]>, now: Instant) {
        self.entries.lock().insert(host.to_owned(), (addrs, now));
    }
}

/// A resolver behind a [`TtlCache`].
pub struct TtlCached {
    inner: Arc<dyn HostResolver>,
    cache: TtlCache,
}

impl TtlCached {
    /// `inner` with its answers kept for `ttl`.
    pub fn new(inner: Arc<dyn HostResolver>, ttl: Duration) -> Self {
        Self {
            inner,
            cache: TtlCache::new(ttl),
        }
    }
}

impl HostResolver for TtlCached {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Arc<[IpAddr]>, DnsFailure>> {
        Box::pin(async move {
            if let Some(addrs) = self.cache.get(host, Instant::now()) {
                return Ok(addrs);
            }
            let addrs = self.inner.resolve(host).await?;
            self.cache.put(host, addrs.clone(), Instant::now());
            Ok(addrs)
        })
    }

    fn name(&self) -> &'static str {
        "ttl-cached"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn answers_are_kept_for_the_ttl_exactly() {
        let cache = TtlCache::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let addrs: Arc<[IpAddr]> = Arc::from([IpAddr::from([10, 0, 0, 1])]);
        assert_eq!(cache.get("a.test", t0), None);
        cache.put("a.test", addrs.clone(), t0);
        let just_before = t0 + Duration::from_secs(10) - Duration::from_nanos(1);
        assert_eq!(cache.get("a.test", just_before), Some(addrs.clone()));
        assert_eq!(cache.get("a.test", t0 + Duration::from_secs(10)), None);
        // Expired entries are dropped, not served later.
        assert_eq!(cache.get("a.test", just_before), None);
        assert_eq!(cache.get("b.test", t0), None);
    }

    /// Counts calls; answers after the test lets it.
    struct Counting {
        calls: AtomicUsize,
        gate: tokio::sync::Semaphore,
    }

    impl HostResolver for Counting {
        fn resolve<'a>(
            &'a self,
            host: &'a str,
        ) -> BoxFuture<'a, Result<Arc<[IpAddr]>, DnsFailure>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                let _permit = self.gate.acquire().await;
                if host == "nope.test" {
                    return Err(DnsFailure {
                        kind: crawldns::ErrorKind::NxDomain,
                        message: "nope".into(),
                    });
                }
                Ok(Arc::from([IpAddr::from([10, 0, 0, 1])]))
            })
        }

        fn name(&self) -> &'static str {
            "counting"
        }
    }

    #[tokio::test]
    async fn concurrent_misses_all_ask_and_failures_are_not_kept() {
        let inner = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            gate: tokio::sync::Semaphore::new(0),
        });
        let cached = Arc::new(TtlCached::new(inner.clone(), Duration::from_secs(60)));
        let herd: Vec<_> = (0..5)
            .map(|_| {
                let cached = cached.clone();
                tokio::spawn(async move { cached.resolve("a.test").await })
            })
            .collect();
        // Every one of the five is waiting on the resolver behind.
        while inner.calls.load(Ordering::SeqCst) < 5 {
            tokio::task::yield_now().await;
        }
        inner.gate.add_permits(100);
        for lookup in herd {
            assert!(lookup.await.unwrap().is_ok());
        }
        // Now kept: no sixth call.
        assert!(cached.resolve("a.test").await.is_ok());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 5);
        // Failures go to the resolver every time.
        assert!(cached.resolve("nope.test").await.is_err());
        assert!(cached.resolve("nope.test").await.is_err());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 7);
    }
}
