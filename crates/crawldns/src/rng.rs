//! The one source of randomness (as c-ares's `ares_rand.c`): query IDs,
//! source ports and DNS 0x20 case bits all come from a [`Random`], so the
//! mechanisms that use them take it as an input and their tests can fix it.
//! In use it is the thread's CSPRNG ([`system`]): IDs and ports are what
//! stands between a resolver and off-path forgery (RFC 5452).

use rand::RngCore;

/// Random bits, as the resolver's mechanisms draw them.
pub(crate) trait Random {
    /// 64 random bits.
    fn bits(&mut self) -> u64;

    /// A query ID.
    fn id(&mut self) -> u16 {
        self.bits() as u16
    }

    /// A source port in the unprivileged range 1024..=65535.
    fn port(&mut self) -> u16 {
        const SPAN: u64 = 65536 - 1024;
        // The modulo bias is below 2^-47: negligible.
        1024 + (self.bits() % SPAN) as u16
    }
}

/// The thread's cryptographically secure generator.
pub(crate) struct System(rand::rngs::ThreadRng);

impl Random for System {
    #[inline]
    fn bits(&mut self) -> u64 {
        self.0.next_u64()
    }
}

/// The generator the resolver uses outside tests.
#[inline]
pub(crate) fn system() -> System {
    System(rand::rng())
}

/// A fixed sequence of values, repeated: for exact tests.
#[cfg(test)]
pub(crate) struct Sequence<'a> {
    values: &'a [u64],
    next: usize,
}

#[cfg(test)]
impl<'a> Sequence<'a> {
    pub(crate) fn new(values: &'a [u64]) -> Self {
        Self { values, next: 0 }
    }
}

#[cfg(test)]
impl Random for Sequence<'_> {
    fn bits(&mut self) -> u64 {
        let value = self.values[self.next % self.values.len()];
        self.next += 1;
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_stay_unprivileged_and_ids_take_the_low_bits() {
        let mut fixed = Sequence::new(&[0, 64511, 64512, u64::MAX, 0x1_2345]);
        assert_eq!(fixed.port(), 1024);
        assert_eq!(fixed.port(), 65535);
        assert_eq!(fixed.port(), 1024);
        assert_eq!(fixed.port(), 1024 + (u64::MAX % 64512) as u16);
        assert_eq!(fixed.id(), 0x2345);
        let mut system = system();
        for _ in 0..1000 {
            assert!(system.port() >= 1024);
        }
    }
}
