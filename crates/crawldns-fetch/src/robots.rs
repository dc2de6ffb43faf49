//! robots.txt (RFC 9309), opt-in ([`crate::FetcherConfig::robots`]): what
//! one origin's file says, decided from its fetch by [`Rules::from_fetch`]
//! (pure), and a per-origin cache that fetches each file once, however many
//! requests wait for it ([`RobotsCache`]). Parsing is `texting_robots`'s.
//!
//! How a fetch of `/robots.txt` is read (RFC 9309 §2.3.1):
//! - 2xx: its rules, for the user agent's product token (`crawldns` of
//!   `crawldns/0.1`); an unparsable file allows everything.
//! - 4xx (404 and the others): no rules, everything allowed.
//! - 5xx, a timeout or a broken body: the file is unreachable, so
//!   everything is disallowed (class `robots`).
//! - A DNS, connect or dead-host failure: the origin cannot be reached at
//!   all; its URLs fail with that same class, as they would have without
//!   robots, instead of being blamed on robots.txt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use texting_robots::Robot;
use tokio::sync::OnceCell;

use crate::pool::Origin;
use crate::record::ErrorClass;

/// What an origin's robots.txt allows.
#[derive(Debug)]
pub(crate) enum Rules {
    /// No usable file (4xx, or a file that does not parse): all allowed.
    AllowAll,
    /// The file could not be had (5xx, timeout): all disallowed; the text
    /// says why.
    DisallowAll(String),
    /// The origin is unreachable: its URLs fail with this class and text.
    Unreachable(ErrorClass, String),
    /// The file's rules for our user agent.
    Parsed(Box<Robot>),
}

impl Rules {
    /// The rules a fetch of robots.txt gives: its final status (`None`
    /// when no response came), body, and the failure if any.
    pub fn from_fetch(
        status: Option<u16>,
        body: &[u8],
        failure: Option<(ErrorClass, &str)>,
        user_agent: &str,
    ) -> Self {
        match (status, failure) {
            (Some(200..=299), None) => match Robot::new(product_token(user_agent), body) {
                Ok(robot) => Self::Parsed(Box::new(robot)),
                Err(_) => Self::AllowAll,
            },
            (Some(status @ 500..=599), _) => {
                Self::DisallowAll(format!("robots.txt answered {status}: all disallowed"))
            }
            (Some(400..=499), _) => Self::AllowAll,
            (
                _,
                Some((
                    class @ (ErrorClass::Dns(_)
                    | ErrorClass::Connect
                    | ErrorClass::Tls
                    | ErrorClass::HostDown),
                    message,
                )),
            ) => Self::Unreachable(class, message.to_owned()),
            (_, Some((class, message))) => Self::DisallowAll(format!(
                "robots.txt unreachable ({class}: {message}): all disallowed"
            )),
            // A status outside 2xx..5xx with no failure (a redirect loop
            // is a failure): nothing usable.
            (_, None) => Self::AllowAll,
        }
    }

    /// Whether `url` (a full URL) may be fetched; `Err` with the class and
    /// text of the record when not.
    pub fn check(&self, url: &str) -> Result<(), (ErrorClass, String)> {
        match self {
            Self::AllowAll => Ok(()),
            Self::DisallowAll(why) => Err((ErrorClass::Robots, why.clone())),
            Self::Unreachable(class, why) => Err((*class, why.clone())),
            Self::Parsed(robot) if robot.allowed(url) => Ok(()),
            Self::Parsed(_) => Err((ErrorClass::Robots, "disallowed by robots.txt".to_owned())),
        }
    }

    /// The `Crawl-delay` for our user agent, if the file gives one.
    pub fn crawl_delay(&self) -> Option<Duration> {
        match self {
            Self::Parsed(robot) => robot
                .delay
                .filter(|d| d.is_finite() && *d > 0.0)
                .and_then(|d| Duration::try_from_secs_f32(d).ok()),
            _ => None,
        }
    }
}

/// The product token of a User-Agent (`crawldns` of `crawldns/0.1 (+url)`),
/// what robots.txt groups are matched against (RFC 9309 §2.2.1).
pub(crate) fn product_token(user_agent: &str) -> &str {
    let token = user_agent
        .split(|c: char| c == '/' || c.is_whitespace())
        .next()
        .unwrap_or("");
    if token.is_empty() {
        "*"
    } else {
        token
    }
}

/// Each origin's rules, fetched once.
#[derive(Default)]
pub(crate) struct RobotsCache {
    origins: parking_lot::Mutex<HashMap<Origin, Arc<OnceCell<Arc<Rules>>>>>,
}

impl RobotsCache {
    /// The rules of `origin`, fetched with `fetch` by the first caller;
    /// the others wait for that one fetch.
    pub async fn rules<F, Fut>(&self, origin: &Origin, fetch: F) -> Arc<Rules>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Rules>,
    {
        let cell = self
            .origins
            .lock()
            .entry(origin.clone())
            .or_default()
            .clone();
        cell.get_or_init(|| async { Arc::new(fetch().await) })
            .await
            .clone()
    }

    /// The rules of `origin` if they have been fetched.
    pub fn known(&self, origin: &Origin) -> Option<Arc<Rules>> {
        self.origins.lock().get(origin)?.get().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &[u8] = b"User-agent: crawldns\nDisallow: /private/\nCrawl-delay: 0.5\n\n\
User-agent: *\nDisallow: /\n";

    #[test]
    fn a_file_is_obeyed_for_our_product_token() {
        let ours = Rules::from_fetch(Some(200), FILE, None, "crawldns/0.1.0");
        assert_eq!(ours.check("http://h1.crawl.test/page"), Ok(()));
        assert_eq!(
            ours.check("http://h1.crawl.test/private/x"),
            Err((ErrorClass::Robots, "disallowed by robots.txt".into()))
        );
        assert_eq!(ours.crawl_delay(), Some(Duration::from_millis(500)));
        let other = Rules::from_fetch(Some(200), FILE, None, "OtherBot/2.0");
        assert!(other.check("http://h1.crawl.test/page").is_err());
        assert_eq!(other.crawl_delay(), None);
    }

    #[test]
    fn statuses_and_failures_as_rfc_9309_reads_them() {
        let ua = "crawldns/0.1.0";
        let url = "http://h1.crawl.test/page";
        assert_eq!(
            Rules::from_fetch(Some(404), b"", None, ua).check(url),
            Ok(())
        );
        assert_eq!(
            Rules::from_fetch(Some(403), b"", None, ua).check(url),
            Ok(())
        );
        let (class, why) = Rules::from_fetch(Some(503), b"", None, ua)
            .check(url)
            .unwrap_err();
        assert_eq!(class, ErrorClass::Robots);
        assert!(why.contains("503"), "{why}");
        let timeout = Rules::from_fetch(None, b"", Some((ErrorClass::Timeout, "timed out")), ua);
        assert_eq!(timeout.check(url).unwrap_err().0, ErrorClass::Robots);
        let dns = ErrorClass::Dns(crawldns::ErrorKind::NxDomain);
        let gone = Rules::from_fetch(None, b"", Some((dns, "no such name")), ua);
        assert_eq!(gone.check(url), Err((dns, "no such name".into())));
        // Garbage is no rules at all.
        let junk = Rules::from_fetch(Some(200), &[0xff, 0xfe, 0x00], None, ua);
        assert_eq!(junk.check(url), Ok(()));
    }

    #[test]
    fn product_tokens() {
        assert_eq!(product_token("crawldns/0.1.0"), "crawldns");
        assert_eq!(product_token("MyBot (+https://example.com)"), "MyBot");
        assert_eq!(product_token(""), "*");
    }
}
