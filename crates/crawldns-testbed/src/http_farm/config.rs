//! The farm's configuration and its start-up errors.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::tls::TlsError;

/// Configuration of an [`HttpFarm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFarmConfig {
    /// Number of hosts; the farm serves host indices `0..hosts`.
    pub hosts: u32,
    /// The port every host listens on. `0` picks a port that is free on the
    /// first host's address and then binds every other host on that same
    /// port, picking again (a few times) if some address has it taken.
    pub port: u16,
    /// Delay before the response headers are sent (all paths but `/slow-body`).
    pub response_delay: Duration,
    /// Body size in bytes of ordinary responses (the body is all `b'x'`).
    pub body_size: usize,
    /// Serve HTTPS: generate a [`TestCa`] at start and do a TLS handshake on
    /// every connection before HTTP (see the module docs).
    pub tls: bool,
    /// With `tls`, also offer HTTP/2 by ALPN (`h2` first, then
    /// `http/1.1`), and serve HTTP/2 on connections that choose it.
    pub h2: bool,
}

impl Default for HttpFarmConfig {
    /// 100 hosts, any free port, no delay, 1024-byte bodies, plain HTTP.
    fn default() -> Self {
        Self {
            hosts: 100,
            port: 0,
            response_delay: Duration::ZERO,
            body_size: 1024,
            tls: false,
            h2: false,
        }
    }
}

/// Why an [`HttpFarm`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum FarmError {
    /// The configuration asked for no hosts at all.
    #[error("the HTTP farm needs at least one host (config.hosts is 0)")]
    NoHosts,
    /// The configuration asked for more hosts than have loopback addresses.
    #[error(
        "the HTTP farm cannot serve {requested} hosts: at most {max} hosts have a loopback address"
    )]
    TooManyHosts {
        /// The requested host count.
        requested: u32,
        /// [`MAX_HOSTS`].
        max: u32,
    },
    /// The process (or system) ran out of file descriptors while binding.
    #[error(
        "ran out of file descriptors binding {addr} for host {host} \
         ({hosts} listeners needed; raise the open-file limit, e.g. `ulimit -n`, or use fewer hosts): {source}"
    )]
    TooManyOpenFiles {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The host index of that address.
        host: u32,
        /// How many listeners the farm needs in all.
        hosts: u32,
        /// The underlying error (`EMFILE` or `ENFILE`).
        #[source]
        source: io::Error,
    },
    /// Binding or listening on a host's address failed.
    #[error("cannot listen on {addr} (host {host}): {source}")]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The host index of that address.
        host: u32,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// With `port: 0`, no port was free on every host address.
    #[error(
        "found no port free on all {hosts} host addresses after {attempts} attempts; \
         last failure: cannot listen on {addr} (host {host}): {source}"
    )]
    NoCommonPort {
        /// How many host addresses needed the port.
        hosts: u32,
        /// How many ports were tried.
        attempts: u32,
        /// The address of the last failure.
        addr: SocketAddr,
        /// The host index of that address.
        host: u32,
        /// The last underlying error.
        #[source]
        source: io::Error,
    },
    /// With `tls: true`, the certificates or the TLS configuration could not
    /// be made.
    #[error("cannot set up TLS for the HTTP farm: {0}")]
    Tls(#[from] TlsError),
}
