//! A Redis URL whose credentials never reach a log line or an error.
//!
//! `redis://[user:password@]host[:port][/db]` and `rediss://` (TLS) are
//! accepted. [`RedisUrl`]'s `Display` and `Debug` mask the user name and the
//! password; errors from the client are scrubbed of them too.

use std::fmt;

use crate::error::FleetError;

/// A parsed Redis URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    full: String,
    masked: String,
    secrets: Vec<String>,
}

impl RedisUrl {
    /// Parses `text`; the error names the URL masked.
    pub fn parse(text: &str) -> Result<Self, FleetError> {
        let text = text.trim();
        let masked_text = mask_text(text);
        let bad = |why: &str| FleetError::BadUrl {
            url: masked_text.clone(),
            why: why.to_owned(),
        };
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(bad("the scheme must be redis:// or rediss://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        let mut secrets = Vec::new();
        let mut masked = url.clone();
        if !url.username().is_empty() {
            secrets.push(url.username().to_owned());
            let _ = masked.set_username("***");
        }
        if let Some(password) = url.password() {
            secrets.push(password.to_owned());
            if let Ok(decoded) = percent_decode(password) {
                secrets.push(decoded);
            }
            let _ = masked.set_password(Some("***"));
        }
        // Short secrets would mask unrelated text; they are masked in the
        // URL all the same.
        secrets.retain(|s| s.len() >= 3);
        redis::IntoConnectionInfo::into_connection_info(text).map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            full: text.to_owned(),
            masked: masked.to_string(),
            secrets,
        })
    }

    /// The URL with its credentials, for the client only.
    pub(crate) fn secret(&self) -> &str {
        &self.full
    }

    /// Whether the connection uses TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.full.starts_with("rediss:")
    }

    /// `text` with every credential of this URL replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.full, &self.masked);
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }
}

/// Masks what lies between `://` (or the start) and the last `@` of a
/// string that did not parse, so that even a broken URL's password is not
/// echoed.
fn mask_text(text: &str) -> String {
    let start = text.find("://").map_or(0, |s| s + 3);
    match text.rfind('@') {
        Some(at) if at >= start => format!("{}***@{}", &text[..start], &text[at + 1..]),
        _ => text.to_owned(),
    }
}

fn percent_decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3).ok_or(())?).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.masked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_everywhere() {
        let url = RedisUrl::parse("redis://crawler:s3cr%40t@10.0.0.5:6380/2").unwrap();
        assert_eq!(url.to_string(), "redis://***:***@10.0.0.5:6380/2");
        assert_eq!(
            format!("{url:?}"),
            "RedisUrl(redis://***:***@10.0.0.5:6380/2)"
        );
        assert_eq!(
            url.scrub("auth failed for crawler with s3cr@t (s3cr%40t)"),
            "auth failed for *** with *** (***)"
        );
        assert!(!url.is_tls());
        let tls = RedisUrl::parse("rediss://:hunter2@cache.example:6379").unwrap();
        assert_eq!(tls.to_string(), "rediss://:***@cache.example:6379");
        assert!(tls.is_tls());
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_the_password() {
        for bad in [
            "http://:pw-secret@host/",
            "redis://:pw-secret@",
            "not a url :pw-secret@",
        ] {
            let err = RedisUrl::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid Redis URL"), "{bad}: {err}");
            assert!(!err.contains("pw-secret"), "{bad}: {err}");
        }
    }
}
