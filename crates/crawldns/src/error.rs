//! The one error type of the resolver, with kinds a crawler acts on differently.

use std::fmt;
use std::net::SocketAddr;

/// What went wrong, in the terms a crawler decides on: give up on the host
/// (`NxDomain`, `NoData`, `InvalidName`), retry later (`ServFail`,
/// `Refused`, `Timeout`, `Malformed`), or look at the local machine
/// (`Io`, `Resource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The name does not exist (RCODE 3).
    NxDomain,
    /// The name exists but has no record of the type asked for.
    NoData,
    /// The server failed to answer (RCODE 2).
    ServFail,
    /// The server refused to answer (RCODE 5).
    Refused,
    /// No answer arrived in time from any server, after all attempts.
    Timeout,
    /// An answer arrived but was not a valid DNS message, or made no sense
    /// (e.g. an error RCODE the resolver does not act on).
    Malformed,
    /// A CNAME chain looped or ran longer than the resolver follows.
    CnameChain,
    /// A socket operation failed.
    Io,
    /// A local resource ran out (file descriptors, buffers, in-flight slots):
    /// never an answer from DNS.
    Resource,
    /// The name is not a valid host name.
    InvalidName,
    /// No nameserver is configured.
    NoNameservers,
}

impl ErrorKind {
    /// Every kind, in a fixed order (for per-kind counters).
    pub const ALL: [ErrorKind; 11] = [
        Self::NxDomain,
        Self::NoData,
        Self::ServFail,
        Self::Refused,
        Self::Timeout,
        Self::Malformed,
        Self::CnameChain,
        Self::Io,
        Self::Resource,
        Self::InvalidName,
        Self::NoNameservers,
    ];

    /// Position in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }

    /// A short stable label, as used in metrics and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NxDomain => "nxdomain",
            Self::NoData => "nodata",
            Self::ServFail => "servfail",
            Self::Refused => "refused",
            Self::Timeout => "timeout",
            Self::Malformed => "malformed",
            Self::CnameChain => "cname_chain",
            Self::Io => "io",
            Self::Resource => "resource",
            Self::InvalidName => "invalid_name",
            Self::NoNameservers => "no_nameservers",
        }
    }

    /// True for answers the name's authority gave (the name is definitely
    /// unusable), as opposed to failures to get an answer.
    pub fn is_authoritative_negative(self) -> bool {
        matches!(self, Self::NxDomain | Self::NoData)
    }

    /// True when asking again later may succeed: the servers failed to
    /// answer (SERVFAIL, REFUSED, timeout, malformed) or a local socket or
    /// resource failed. NXDOMAIN and NODATA are answers; an invalid name,
    /// a CNAME loop and a configuration error stay what they are. The one
    /// classification behind pre-warm's retry passes, the cache's failure
    /// entries and the lookups that skip them.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::ServFail
                | Self::Refused
                | Self::Timeout
                | Self::Malformed
                | Self::Io
                | Self::Resource
        )
    }

    /// True for failures of this machine rather than of DNS (sockets,
    /// resources, the name or the configuration given): never cached.
    pub fn is_local(self) -> bool {
        matches!(
            self,
            Self::Io | Self::Resource | Self::InvalidName | Self::NoNameservers
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one server did with one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The server asked.
    pub server: SocketAddr,
    /// What came of it.
    pub outcome: ErrorKind,
}

/// A failed lookup: its kind, the name, the servers tried and a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    name: String,
    attempts: Vec<Attempt>,
    detail: Option<String>,
}

impl Error {
    /// A new error of `kind` for `name`.
    pub fn new(kind: ErrorKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            attempts: Vec::new(),
            detail: None,
        }
    }

    /// Adds a human-readable detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Records the attempts made.
    pub fn with_attempts(mut self, attempts: Vec<Attempt>) -> Self {
        self.attempts = attempts;
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The name that was looked up, as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every attempt made, in order.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The distinct servers tried, in the order first tried.
    pub fn servers_tried(&self) -> Vec<SocketAddr> {
        let mut servers: Vec<SocketAddr> = Vec::new();
        for a in &self.attempts {
            if !servers.contains(&a.server) {
                servers.push(a.server);
            }
        }
        servers
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::NxDomain => "name does not exist (NXDOMAIN)",
            ErrorKind::NoData => "no records of the requested type (NODATA)",
            ErrorKind::ServFail => "server failure (SERVFAIL)",
            ErrorKind::Refused => "query refused (REFUSED)",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Malformed => "malformed answer",
            ErrorKind::CnameChain => "CNAME chain loops or is too long",
            ErrorKind::Io => "I/O error",
            ErrorKind::Resource => "local resources exhausted",
            ErrorKind::InvalidName => "invalid name",
            ErrorKind::NoNameservers => "no nameservers configured",
        };
        write!(f, "{}: {what}", self.name)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if !self.attempts.is_empty() {
            let tried: Vec<String> = self
                .attempts
                .iter()
                .map(|a| format!("{} {}", a.server, a.outcome))
                .collect();
            write!(f, " (tried: {})", tried.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Classifies a local socket error: exhaustion is not an I/O fault.
pub(crate) fn io_kind(err: &std::io::Error) -> ErrorKind {
    match err.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => ErrorKind::Resource,
        _ => ErrorKind::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_is_not_io() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert_eq!(
                io_kind(&std::io::Error::from_raw_os_error(errno)),
                ErrorKind::Resource
            );
        }
        assert_eq!(
            io_kind(&std::io::Error::from_raw_os_error(libc::ENETUNREACH)),
            ErrorKind::Io
        );
    }

    #[test]
    fn display_names_the_servers_tried() {
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let err = Error::new(ErrorKind::Timeout, "a.test").with_attempts(vec![
            Attempt {
                server,
                outcome: ErrorKind::Timeout,
            },
            Attempt {
                server,
                outcome: ErrorKind::ServFail,
            },
        ]);
        assert_eq!(
            err.to_string(),
            "a.test: timed out (tried: 127.0.0.1:53 timeout, 127.0.0.1:53 servfail)"
        );
        assert_eq!(err.servers_tried(), [server]);
    }
}
