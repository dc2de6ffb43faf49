//! Host name validation and IDNA (UTS #46) conversion.

use std::borrow::Cow;

use crate::error::{Error, ErrorKind};

/// Longest name in presentation form without the final dot (RFC 1035 §2.3.4).
const MAX_NAME: usize = 253;
/// Longest label.
const MAX_LABEL: usize = 63;

/// Turns user input into a lower-case ASCII host name without the final dot,
/// converting internationalized names to their `xn--` form. Underscores are
/// accepted (they occur in real host names); spaces, control characters and
/// empty labels are not. Input that is already normal is borrowed, not
/// copied, so the cache-hit path allocates nothing.
pub fn normalize(input: &str) -> Result<Cow<'_, str>, Error> {
    let invalid =
        |why: &str| Error::new(ErrorKind::InvalidName, input).with_detail(why.to_string());
    let trimmed = input.strip_suffix('.').unwrap_or(input);
    if trimmed.is_empty() {
        return Err(invalid("empty name"));
    }
    let ascii: Cow<'_, str> = if !trimmed.is_ascii() {
        let converted = idna::domain_to_ascii(trimmed)
            .map_err(|_| invalid("not a valid internationalized name"))?;
        Cow::Owned(converted)
    } else if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    };
    if ascii.len() > MAX_NAME {
        return Err(invalid("longer than 253 characters"));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(invalid("empty label"));
        }
        if label.len() > MAX_LABEL {
            return Err(invalid("label longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "only letters, digits, '-' and '_' are allowed in labels",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label starts or ends with '-'"));
        }
    }
    Ok(ascii)
}

/// `input` without its final dot, when it is already what [`normalize`]
/// would return and cannot be read as an IP address: lower-case ASCII
/// letters, digits, '-' and '_' in labels of 1 to 63 bytes that neither
/// start nor end with '-', at most 253 bytes, with at least one byte that is
/// not a digit (so not an IPv4 literal; an IPv6 literal needs a ':', which
/// no name has). One pass, no allocation: the cache-hit path of a crawler,
/// which asks for the same lower-case names again and again. `None` means
/// "take the full path" ([`normalize`] and the IP-literal check), never
/// "invalid".
pub(crate) fn already_normal(input: &str) -> Option<&str> {
    let name = input.strip_suffix('.').unwrap_or(input);
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_NAME {
        return None;
    }
    // Per byte: one table load, one OR, one rarely taken branch (dots and
    // anything the fast path does not take).
    let mut seen = 0;
    let mut label_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let class = CLASS[usize::from(b)];
        seen |= class;
        if class >= DOT {
            if class != DOT || !label_ok(bytes, label_start, i) {
                return None;
            }
            label_start = i + 1;
        }
    }
    (label_ok(bytes, label_start, bytes.len()) && seen & NON_DIGIT != 0).then_some(name)
}

/// Byte classes for [`already_normal`]; zero (or `OTHER`) for the rest.
const NON_DIGIT: u8 = 1; // a-z, '_', '-'
const DIGIT: u8 = 2;
const DOT: u8 = 4;
const OTHER: u8 = 8; // upper case, non-ASCII, invalid: the full path decides

static CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'a'..=b'z' | b'_' | b'-' => NON_DIGIT,
            b'0'..=b'9' => DIGIT,
            b'.' => DOT,
            _ => OTHER,
        };
        b += 1;
    }
    table
};

/// `bytes[start..end]` is a label: 1 to 63 bytes, neither starting nor
/// ending with '-' (its bytes were checked by the caller).
fn label_ok(bytes: &[u8], start: usize, end: usize) -> bool {
    let len = end - start;
    (1..=MAX_LABEL).contains(&len) && bytes[start] != b'-' && bytes[end - 1] != b'-'
}

/// True for `localhost` and names under it (RFC 6761 §6.3).
#[inline]
pub fn is_localhost(normalized: &str) -> bool {
    normalized == "localhost" || normalized.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_rejects() {
        assert_eq!(normalize("Example.COM.").unwrap(), "example.com");
        assert_eq!(
            normalize("_dmarc.example.com").unwrap(),
            "_dmarc.example.com"
        );
        assert_eq!(normalize("bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(normalize("例え.テスト").unwrap(), "xn--r8jz45g.xn--zckzah");
        for bad in [
            "",
            ".",
            "a..b",
            "-a.com",
            "a-.com",
            "a b.com",
            "a/b",
            "a\0b",
            &"a".repeat(64),
            &"a.".repeat(128),
        ] {
            let err = normalize(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{bad:?}");
        }
        assert!(normalize(&format!("{}.com", "a".repeat(63))).is_ok());
        assert_eq!(normalize(&"a.".repeat(127)).unwrap().len(), 253);
    }

    #[test]
    fn the_fast_path_agrees_with_normalize() {
        let long_label = "a".repeat(63);
        let too_long_label = "a".repeat(64);
        let long_name = "a.".repeat(126) + "a";
        let too_long_name = "a.".repeat(126) + "ab";
        let inputs = [
            "example.com",
            "example.com.",
            "h12.crawl.test",
            "_dmarc.example.com",
            "a-b.c_d.e",
            "x",
            "1x",
            "1-2.3",
            "1.2.3.4",
            "1.2.3.4.",
            "1234",
            "1.2.3.x",
            "::1",
            "[::1]",
            "fe80::1",
            "Example.COM",
            "bücher.de",
            "",
            ".",
            "..",
            "a..b",
            ".a",
            "a.",
            "a..",
            "-a.com",
            "a-.com",
            "a.-b",
            "a.b-",
            "a b.com",
            "a/b",
            "a\0b",
            &long_label,
            &too_long_label,
            &format!("{long_label}.com"),
            &format!("{too_long_label}.com"),
            &format!("x.{too_long_label}"),
            &long_name,
            &format!("{long_name}."),
            &too_long_name,
        ];
        for input in inputs {
            match already_normal(input) {
                Some(fast) => {
                    let full = normalize(input).unwrap();
                    assert!(matches!(full, Cow::Borrowed(_)), "{input:?}");
                    assert_eq!(fast, full, "{input:?}");
                    assert!(fast.parse::<std::net::IpAddr>().is_err(), "{input:?}");
                    assert!(input.parse::<std::net::IpAddr>().is_err(), "{input:?}");
                }
                None => {
                    // Only names the fast path cannot vouch for: upper-case,
                    // non-ASCII, all-digit, or invalid.
                    let full = normalize(input);
                    assert!(
                        full.is_err()
                            || !input.is_ascii()
                            || input.bytes().any(|b| b.is_ascii_uppercase())
                            || input.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
                        "{input:?} fell back needlessly"
                    );
                }
            }
        }
        assert_eq!(already_normal("h12.crawl.test."), Some("h12.crawl.test"));
        assert_eq!(already_normal(&long_name).map(str::len), Some(253));
        assert_eq!(already_normal(&too_long_name), None);
    }

    #[test]
    fn localhost_names() {
        assert!(is_localhost("localhost"));
        assert!(is_localhost("foo.localhost"));
        assert!(!is_localhost("notlocalhost"));
    }
}
