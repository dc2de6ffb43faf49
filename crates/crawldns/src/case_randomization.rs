//! DNS 0x20 (draft-vixie-dnsext-dns0x20): letters of a query's name get a
//! random case, and an answer must echo it exactly (checked in
//! `wire::judge`), which adds up to one bit per letter to what an off-path
//! forger must guess.

use crate::rng::Random;

/// Flips ASCII letters of a wire-form name to random case. Length octets are
/// at most 63, below every letter, so they are never touched.
pub(crate) fn apply(wire: &mut [u8], rng: &mut impl Random) {
    let mut bits: u64 = 0;
    let mut left = 0;
    for byte in wire.iter_mut().filter(|b| b.is_ascii_alphabetic()) {
        if left == 0 {
            bits = rng.bits();
            left = 64;
        }
        if bits & 1 == 1 {
            byte.make_ascii_uppercase();
        }
        bits >>= 1;
        left -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Sequence;

    #[test]
    fn one_bit_per_letter_and_digits_and_lengths_untouched() {
        let mut wire = *b"\x02h1\x05crawl\x04test\x00";
        apply(&mut wire, &mut Sequence::new(&[0b1010_1011]));
        // Letters in order: h c r a w l t e s t; bits 1,1,0,1,0,1,0,1,0,0.
        assert_eq!(&wire, b"\x02H1\x05CrAwL\x04tEst\x00");
    }

    #[test]
    fn long_names_draw_more_bits() {
        let mut wire = [b'a'; 70];
        apply(&mut wire, &mut Sequence::new(&[0, u64::MAX]));
        assert!(wire[..64].iter().all(|b| *b == b'a'));
        assert!(wire[64..].iter().all(|b| *b == b'A'));
    }
}
