//! The one error type of the resolver, with kinds a crawler acts on differently.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

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
    /// The configuration is unusable (zero attempts, a zero timeout, ...).
    Config,
    /// A DNS-over-TLS or DNS-over-HTTPS server's certificate did not verify:
    /// untrusted, expired, or not valid for the name asked for. Never
    /// retried in the clear.
    Certificate,
}

impl ErrorKind {
    /// Every kind, in a fixed order (for per-kind counters).
    pub const ALL: [ErrorKind; 13] = [
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
        Self::Config,
        Self::Certificate,
    ];

    /// Position in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }

    /// What the kind means, as error messages say it.
    pub fn description(self) -> &'static str {
        match self {
            Self::NxDomain => "name does not exist (NXDOMAIN)",
            Self::NoData => "no records of the requested type (NODATA)",
            Self::ServFail => "server failure (SERVFAIL)",
            Self::Refused => "query refused (REFUSED)",
            Self::Timeout => "timed out",
            Self::Malformed => "malformed answer",
            Self::CnameChain => "CNAME chain loops or is too long",
            Self::Io => "I/O error",
            Self::Resource => "local resources exhausted",
            Self::InvalidName => "invalid name",
            Self::NoNameservers => "no nameservers configured",
            Self::Config => "invalid configuration",
            Self::Certificate => "server certificate not verified",
        }
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
            Self::Config => "config",
            Self::Certificate => "certificate",
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

    /// True for failures of this machine or its set-up rather than of DNS
    /// (sockets, resources, the name or the configuration given, a server
    /// certificate that does not verify): never cached.
    pub fn is_local(self) -> bool {
        matches!(
            self,
            Self::Io
                | Self::Resource
                | Self::InvalidName
                | Self::NoNameservers
                | Self::Config
                | Self::Certificate
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
/// When a socket error caused it, [`std::error::Error::source`] gives that
/// `io::Error`. Equality compares what the error says, not its source.
///
/// `Display` and `source` are written here rather than derived: the
/// `io::Error` is kept behind an `Arc` (so that the error stays `Clone`
/// for the cache and single-flight's waiters), and a derived `source`
/// would hand out the `Arc`, which callers cannot downcast to `io::Error`.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    name: String,
    attempts: Vec<Attempt>,
    detail: Option<String>,
    source: Option<Arc<std::io::Error>>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}{}{}",
            self.name,
            self.kind.description(),
            Detail(&self.detail),
            Tried(&self.attempts)
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|io| io as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.name == other.name
            && self.attempts == other.attempts
            && self.detail == other.detail
    }
}

impl Eq for Error {}

impl Error {
    /// A new error of `kind` for `name`.
    pub fn new(kind: ErrorKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            attempts: Vec::new(),
            detail: None,
            source: None,
        }
    }

    /// Keeps the socket error that caused this one (its
    /// [`std::error::Error::source`]), described in the detail.
    pub fn with_io_source(mut self, err: std::io::Error) -> Self {
        self.detail = Some(describe_io(&err));
        self.source = Some(Arc::new(err));
        self
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

    /// What the error's kind alone does not say (a socket error's text, a
    /// certificate's fault, the configuration value at fault), if anything.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
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

/// `: detail`, when there is one.
struct Detail<'a>(&'a Option<String>);

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(detail) => write!(f, ": {detail}"),
            None => Ok(()),
        }
    }
}

/// ` (tried: server outcome, ...)`, when servers were tried.
struct Tried<'a>(&'a [Attempt]);

impl fmt::Display for Tried<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            let lead = if i == 0 { " (tried: " } else { ", " };
            write!(f, "{lead}{} {}", a.server, a.outcome)?;
        }
        if !self.0.is_empty() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A socket error in the same words wherever it comes from: the kind's
/// description ("connection refused"), without the OS's wording and errno,
/// unless the kind says nothing more specific.
pub(crate) fn describe_io(err: &std::io::Error) -> String {
    let kind = err.kind().to_string();
    // `Other` and the unstable `Uncategorized` say nothing of their own.
    if err.kind() == std::io::ErrorKind::Other || kind == "uncategorized error" {
        err.to_string()
    } else {
        kind
    }
}

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
    fn io_errors_read_the_same_and_keep_their_source() {
        use std::error::Error as _;
        let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(describe_io(&refused), "connection refused");
        let err = Error::new(ErrorKind::Io, "a.test").with_io_source(refused);
        assert_eq!(err.to_string(), "a.test: I/O error: connection refused");
        let source = err.source().expect("the io::Error is kept");
        let io = source.downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(io.raw_os_error(), Some(libc::ECONNREFUSED));
        // Equality is about what the error says.
        assert_eq!(
            err,
            Error::new(ErrorKind::Io, "a.test").with_detail("connection refused")
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
