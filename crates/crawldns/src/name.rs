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

/// True for `localhost` and names under it (RFC 6761 §6.3).
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
    fn localhost_names() {
        assert!(is_localhost("localhost"));
        assert!(is_localhost("foo.localhost"));
        assert!(!is_localhost("notlocalhost"));
    }
}
