//! Fault injection and delay settings, switchable at run time per server.

use std::collections::HashMap;
use std::time::Duration;

use hickory_proto::rr::RecordType;

/// What a misbehaving server does. Every field is independent; the default is
/// a well-behaved server.
///
/// `drop_fraction`, `rcode`, `malformed` and `down` apply to UDP and TCP;
/// `truncate` and the forgeries (`wrong_id`, `wrong_question`, `wrong_port`)
/// apply to UDP, where they make sense; `close_after` and `stall_after` to the
/// stream transports (TCP, TLS, HTTPS).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Fraction of queries silently dropped, 0.0 ..= 1.0.
    pub drop_fraction: f64,
    /// Answer every query with this rcode (e.g. SERVFAIL or REFUSED) instead.
    pub rcode: Option<RcodeFault>,
    /// Answer every UDP query with TC=1 and no records (TCP answers normally).
    pub truncate: bool,
    /// Answer with bytes that are not a valid DNS message (a matching ID and
    /// QR bit, then a compression loop and junk). No genuine answer follows.
    pub malformed: bool,
    /// Before the genuine answer, send a forged one whose ID is wrong.
    pub wrong_id: bool,
    /// Before the genuine answer, send one (right ID) for a different name.
    pub wrong_question: bool,
    /// Before the genuine answer, send a forged one (right ID and question)
    /// from a different source port of the server's address.
    pub wrong_port: bool,
    /// Receive queries and count them, but never answer.
    pub down: bool,
    /// Stream transports (TCP, TLS, HTTPS): close each connection once it
    /// has carried this many answers (HTTPS: a GOAWAY, then the close).
    /// Queries still pending on it are never answered.
    pub close_after: Option<u32>,
    /// Stream transports: after this many complete answers on a connection,
    /// send only the first half of the next one (HTTPS: half its body) and
    /// stall: that connection sends nothing more.
    pub stall_after: Option<u32>,
}

/// The error rcodes a server can be told to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcodeFault {
    /// SERVFAIL (2).
    ServFail,
    /// REFUSED (5).
    Refused,
}

/// How long the server waits before answering, per record type, with a
/// slow fraction of the names on top (a long-tailed DNS).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delay {
    /// Delay for every query whose type has no entry in `per_type`.
    pub base: Duration,
    /// Overrides for some record types (e.g. a slower AAAA).
    pub per_type: HashMap<RecordType, Duration>,
    /// Names answered much later than the rest.
    pub slow: Option<SlowNames>,
}

/// A fraction of the names, the same ones on every server and every run,
/// each answered after its own delay between `min` and `max` (every query
/// for it, any type): the slow zones of a real crawl.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowNames {
    /// The fraction of names that are slow, 0.0 ..= 1.0.
    pub fraction: f64,
    /// The shortest slow delay.
    pub min: Duration,
    /// The longest slow delay.
    pub max: Duration,
}

impl SlowNames {
    /// The delay of `name` (any case) if it is one of the slow names: a
    /// hash of the name picks whether and how slow, so it is fixed per
    /// name.
    pub fn delay_of(&self, name: &str) -> Option<Duration> {
        // FNV-1a, lower-cased: stable across processes and versions.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.trim_end_matches('.').bytes() {
            hash ^= u64::from(byte.to_ascii_lowercase());
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        let unit = |bits: u64| (bits >> 11) as f64 / (1u64 << 53) as f64;
        if unit(hash) >= self.fraction {
            return None;
        }
        let spread = self.max.saturating_sub(self.min);
        let again = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (hash >> 29);
        Some(self.min + spread.mul_f64(unit(again)))
    }
}

impl Delay {
    /// The same delay for every query.
    pub fn uniform(delay: Duration) -> Self {
        Self {
            base: delay,
            per_type: HashMap::new(),
            slow: None,
        }
    }

    /// With a slow fraction of the names.
    pub fn with_slow(mut self, slow: SlowNames) -> Self {
        self.slow = Some(slow);
        self
    }

    /// Sets the delay for one record type.
    pub fn with_type(mut self, rtype: RecordType, delay: Duration) -> Self {
        self.per_type.insert(rtype, delay);
        self
    }

    /// The delay that applies to a query of `rtype`.
    pub fn for_type(&self, rtype: RecordType) -> Duration {
        self.per_type.get(&rtype).copied().unwrap_or(self.base)
    }

    /// The delay of a query for `name` of `rtype`: a slow name's own
    /// delay, else the type's.
    pub fn for_query(&self, name: &str, rtype: RecordType) -> Duration {
        self.slow
            .and_then(|slow| slow.delay_of(name))
            .unwrap_or_else(|| self.for_type(rtype))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn slow(fraction: f64) -> SlowNames {
        SlowNames {
            fraction,
            min: 1000 * MS,
            max: 3000 * MS,
        }
    }

    #[test]
    fn slow_names_are_a_fixed_fraction_with_fixed_delays_in_range() {
        let names: Vec<String> = (0..10_000).map(|i| format!("h{i}.crawl.test")).collect();
        let two_percent = slow(0.02);
        let delays: Vec<Duration> = names
            .iter()
            .filter_map(|n| two_percent.delay_of(n))
            .collect();
        // 200 expected; three standard deviations (14) either side.
        assert!((158..=242).contains(&delays.len()), "{}", delays.len());
        assert!(delays.iter().all(|d| (1000 * MS..=3000 * MS).contains(d)));
        // Spread over the range, not bunched at one end.
        assert!(delays.iter().any(|d| *d < 1500 * MS) && delays.iter().any(|d| *d > 2500 * MS));
        // The same name is as slow every time, in any case, with a final dot.
        let name = names
            .iter()
            .find(|n| two_percent.delay_of(n).is_some())
            .unwrap();
        let upper = format!("{}.", name.to_ascii_uppercase());
        assert_eq!(two_percent.delay_of(name), two_percent.delay_of(&upper));
        assert!(names.iter().all(|n| slow(0.0).delay_of(n).is_none()));
        assert!(names.iter().all(|n| slow(1.0).delay_of(n).is_some()));
    }

    #[test]
    fn a_query_takes_its_name_s_slow_delay_else_its_type_s() {
        let delay = Delay::uniform(30 * MS)
            .with_type(RecordType::AAAA, 50 * MS)
            .with_slow(slow(1.0));
        assert!(delay.for_query("a.test", RecordType::A) >= 1000 * MS);
        let fast = Delay::uniform(30 * MS).with_type(RecordType::AAAA, 50 * MS);
        assert_eq!(fast.for_query("a.test", RecordType::A), 30 * MS);
        assert_eq!(fast.for_query("a.test", RecordType::AAAA), 50 * MS);
    }
}
