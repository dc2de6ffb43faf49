//! Resolver configuration: every tunable with its default beside it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cache::CacheConfig;
use crate::error::{Error, ErrorKind};

/// How queries leave a UDP socket: one system call each, or padded and
/// batched into UDP GSO sends (Linux; where the kernel refuses GSO, queries
/// are sent one by one).
///
/// A batched query is padded with EDNS(0) Padding (RFC 7830) to a multiple
/// of 64 bytes, so that most queries share one size, and those of one size
/// leave in one GSO send, which the kernel splits into datagrams. That
/// pays the kernel's per-datagram work (routing, socket, loopback or device
/// delivery) once per batch: about half the CPU per query under fan-out,
/// for up to 63 extra bytes per query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Batching {
    /// Every query is sent at once by its lookup, unpadded.
    Off,
    /// A query to a socket that already has a few queries in flight joins
    /// that socket's batch; each batch of 8 leaves at once, sent by the
    /// lookup that filled it, and a smaller one leaves once the lookups
    /// ready now have run. A query to a quiet socket is sent at once,
    /// unpadded. Latency stays that of [`Batching::Off`] within a few
    /// microseconds; under load the CPU per query is close to bulk's.
    #[default]
    WhenBusy,
    /// Bulk: every query joins its socket's batch, which leaves (up to 32
    /// datagrams per send) once the lookups ready now have run. The
    /// cheapest per query; a burst's queries reach the server together, so
    /// a burst's answers also come back together.
    Always,
}

/// Which address families `lookup_ip` asks for and in what order it returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpStrategy {
    /// A only.
    V4Only,
    /// AAAA only.
    V6Only,
    /// A and AAAA in parallel, interleaved IPv6 first, with the RFC 8305
    /// resolution delay when A answers first (the default).
    #[default]
    Both,
    /// A and AAAA in parallel; all IPv4 addresses, then all IPv6.
    PreferV4,
    /// A and AAAA in parallel; all IPv6 addresses, then all IPv4.
    PreferV6,
}

pub use crate::transport::endpoint::Protocol;

/// One pinned nameserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameServer {
    /// Address and port.
    pub addr: SocketAddr,
    /// Transport to use.
    pub protocol: Protocol,
    /// For TLS and HTTPS: the name its certificate must be valid for (and
    /// the SNI sent). `None`: the server's IP address.
    pub tls_name: Option<String>,
    /// For HTTPS: the URL path (`None`: `/dns-query`).
    pub path: Option<String>,
}

impl NameServer {
    /// A server at `addr` over `protocol`, its certificate (if any) checked
    /// against its IP address, DoH at `/dns-query`.
    pub fn new(addr: SocketAddr, protocol: Protocol) -> Self {
        Self {
            addr,
            protocol,
            tls_name: None,
            path: None,
        }
    }

    /// A server given as a URL: `IP[:PORT]` or `udp://` (UDP, TCP for
    /// truncated answers), `tcp://IP[:53]`, `tls://IP[:853]`,
    /// `https://IP[:443][/PATH]` (path `/dns-query` by default). The host
    /// must be an IP address; the certificate name is set apart
    /// ([`NameServer::tls_name`]). Fails with [`ErrorKind::Config`].
    pub fn from_url(url: &str) -> Result<Self, Error> {
        use crate::transport::endpoint::parse_endpoint;
        let endpoint = parse_endpoint(url)
            .map_err(|why| Error::new(ErrorKind::Config, url.trim()).with_detail(why))?;
        Ok(Self {
            path: endpoint.path,
            ..Self::new(endpoint.addr, endpoint.protocol)
        })
    }

    /// The name the server's certificate is checked against.
    pub fn verified_name(&self) -> String {
        self.tls_name
            .clone()
            .unwrap_or_else(|| self.addr.ip().to_string())
    }

    /// The server as a URL (`udp://`, `tcp://`, `tls://`, `https://`).
    pub fn url(&self) -> String {
        let scheme = self.protocol.scheme();
        let path = match self.protocol {
            Protocol::Https => self
                .path
                .as_deref()
                .unwrap_or(crate::transport::endpoint::DEFAULT_DOH_PATH),
            _ => "",
        };
        format!("{scheme}://{}{path}", self.addr)
    }
}

/// The resolver's configuration. Build it with [`ResolverConfig::builder`].
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// Nameservers, in the order given (default: none; required).
    pub nameservers: Vec<NameServer>,
    /// Time to wait for one attempt at one server (default 2 s). Once a
    /// server's RTT is known, the wait adapts down to 5 × SRTT, at least
    /// `min_timeout`.
    pub timeout: Duration,
    /// Lower bound of the adaptive per-attempt timeout (default 250 ms).
    pub min_timeout: Duration,
    /// Rounds over all servers (default 2): each round tries every server
    /// once. Past them, a query lost at a server that goes on answering
    /// others is asked again, each wait twice the last, until `timeout` ×
    /// `attempts` has passed since the first send: the retry budget is
    /// time. A server that answers nothing gets the rounds only.
    pub attempts: usize,
    /// Spread queries over equally healthy servers instead of always
    /// starting with the fastest (default false).
    pub rotate: bool,
    /// EDNS0 UDP payload size advertised (default 1232).
    pub edns_payload: u16,
    /// Randomize the case of query names (DNS 0x20) and require answers to
    /// echo it exactly (default false).
    pub case_randomization: bool,
    /// Which families `lookup_ip` asks for (default [`IpStrategy::Both`]).
    pub ip_strategy: IpStrategy,
    /// Wait this long for AAAA when A answers first (RFC 8305 "resolution
    /// delay", default 50 ms).
    pub resolution_delay: Duration,
    /// Whether this machine can reach IPv6 destinations. `None` (default):
    /// detect it once, without sending traffic; `Some` overrides.
    pub ipv6_egress: Option<bool>,
    /// UDP sockets per nameserver, each connected to it (default 4).
    pub udp_sockets: usize,
    /// Queries sent on a socket before it is replaced by one on a fresh
    /// random port (default 50,000).
    pub queries_per_socket: u64,
    /// How queries are sent (default [`Batching::WhenBusy`]).
    pub batching: Batching,
    /// Receive buffer asked for each UDP socket (default 4 MiB).
    pub recv_buffer: usize,
    /// Most queries in flight at once; more wait for a slot (default 10,000).
    pub max_in_flight: usize,
    /// Most distinct names being resolved at once, waiting for a slot or on
    /// the wire (default 100,000). A `lookup` waiting for a slot costs
    /// about 900 bytes with its task, one on the wire about 1.9 KiB (and
    /// those are bounded by `max_in_flight`): 1,000,000 pending names fit
    /// in 1 GiB.
    /// Past it, a lookup that would start another fails at once with
    /// [`ErrorKind::Resource`] instead of growing memory without bound.
    pub max_pending: usize,
    /// Longest CNAME chain followed (default 8).
    pub max_cname_depth: usize,
    /// Consecutive failures after which a server counts as down and is
    /// re-checked by background probes (default 3).
    pub down_after_failures: u32,
    /// Interval between probes of a down server (default 1 s).
    pub probe_interval: Duration,
    /// The answer cache; `None` turns caching off (single-flight stays on).
    /// Default: [`CacheConfig::default`].
    pub cache: Option<CacheConfig>,
    /// PEM file of CA certificates that TLS and HTTPS servers may chain to,
    /// in addition to the webpki (Mozilla) roots (default none).
    pub ca_file: Option<PathBuf>,
    /// Ask DoH servers with `GET ?dns=` instead of `POST` (default false).
    pub doh_get: bool,
    /// Most connections per TCP or TLS server (default 4); each carries up
    /// to 128 pipelined queries.
    pub stream_connections: usize,
    /// A hosts file (`/etc/hosts` format) whose names are answered before
    /// the cache and the network (default none: crawldns reads no system
    /// file unless asked). Read once, when the resolver is made.
    pub hosts_file: Option<PathBuf>,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(2),
            min_timeout: Duration::from_millis(250),
            attempts: 2,
            rotate: false,
            edns_payload: 1232,
            case_randomization: false,
            ip_strategy: IpStrategy::Both,
            resolution_delay: Duration::from_millis(50),
            ipv6_egress: None,
            udp_sockets: 4,
            queries_per_socket: 50_000,
            batching: Batching::default(),
            recv_buffer: 4 << 20,
            max_in_flight: 10_000,
            max_pending: 100_000,
            max_cname_depth: 8,
            down_after_failures: 3,
            probe_interval: Duration::from_secs(1),
            cache: Some(CacheConfig::default()),
            ca_file: None,
            doh_get: false,
            stream_connections: 4,
            hosts_file: None,
        }
    }
}

impl ResolverConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ResolverConfigBuilder {
        ResolverConfigBuilder {
            config: Self::default(),
        }
    }

    /// Checks the configuration for values the resolver cannot work with.
    pub fn validate(&self) -> Result<(), Error> {
        let bad =
            |why: &str| Err(Error::new(ErrorKind::Config, "config").with_detail(why.to_string()));
        if self.nameservers.is_empty() {
            return Err(Error::new(ErrorKind::NoNameservers, "config")
                .with_detail("at least one nameserver is required"));
        }
        if self.attempts == 0 {
            return bad("attempts must be at least 1");
        }
        if self.timeout.is_zero() {
            return bad("timeout must be positive");
        }
        if self.udp_sockets == 0 || self.max_in_flight == 0 || self.stream_connections == 0 {
            return bad("udp_sockets, max_in_flight and stream_connections must be at least 1");
        }
        Ok(())
    }
}

/// Builds a [`ResolverConfig`].
#[derive(Debug, Clone)]
pub struct ResolverConfigBuilder {
    config: ResolverConfig,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl ResolverConfigBuilder {
    /// Adds a nameserver reached over UDP (TCP for truncated answers).
    pub fn nameserver(mut self, addr: SocketAddr) -> Self {
        self.config
            .nameservers
            .push(NameServer::new(addr, Protocol::Udp));
        self
    }

    /// Adds a nameserver reached over TCP only.
    pub fn tcp_nameserver(mut self, addr: SocketAddr) -> Self {
        self.config
            .nameservers
            .push(NameServer::new(addr, Protocol::Tcp));
        self
    }

    /// Adds a DNS-over-TLS nameserver whose certificate must be valid for
    /// `tls_name` (a DNS name, or the address itself as text).
    pub fn tls_nameserver(mut self, addr: SocketAddr, tls_name: impl Into<String>) -> Self {
        self.config.nameservers.push(NameServer {
            tls_name: Some(tls_name.into()),
            ..NameServer::new(addr, Protocol::Tls)
        });
        self
    }

    /// Adds a DNS-over-HTTPS nameserver at `https://addr{path}` whose
    /// certificate must be valid for `tls_name`.
    pub fn https_nameserver(
        mut self,
        addr: SocketAddr,
        tls_name: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        self.config.nameservers.push(NameServer {
            tls_name: Some(tls_name.into()),
            path: Some(path.into()),
            ..NameServer::new(addr, Protocol::Https)
        });
        self
    }

    /// Adds a nameserver given as a URL (see [`NameServer::from_url`]);
    /// `tls_name` is the name TLS and HTTPS certificates are checked
    /// against (`None`: the IP address).
    pub fn nameserver_url(mut self, url: &str, tls_name: Option<&str>) -> Result<Self, Error> {
        let mut server = NameServer::from_url(url)?;
        if server.protocol.is_encrypted() {
            server.tls_name = tls_name.map(str::to_owned);
        }
        self.config.nameservers.push(server);
        Ok(self)
    }

    /// Adds `server` as it is.
    pub fn push_nameserver(mut self, server: NameServer) -> Self {
        self.config.nameservers.push(server);
        self
    }

    /// Adds the nameservers (and `options timeout:`/`attempts:`/`rotate`) of
    /// a resolv.conf file, e.g. `/etc/resolv.conf`.
    pub fn resolv_conf(mut self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(ErrorKind::Io, path.display().to_string())
                .with_detail(format!("cannot read: {e}"))
        })?;
        let parsed = crate::resolv_conf::parse(&text);
        for addr in parsed.nameservers {
            self = self.nameserver(addr);
        }
        if let Some(timeout) = parsed.timeout {
            self.config.timeout = timeout;
        }
        if let Some(attempts) = parsed.attempts {
            self.config.attempts = attempts;
        }
        self.config.rotate |= parsed.rotate;
        Ok(self)
    }

    setter!(/// Per-attempt timeout.
        timeout: Duration);
    setter!(/// Lower bound of the adaptive timeout.
        min_timeout: Duration);
    setter!(/// Rounds over all servers.
        attempts: usize);
    setter!(/// Spread load over equally healthy servers.
        rotate: bool);
    setter!(/// EDNS0 payload size.
        edns_payload: u16);
    setter!(/// DNS 0x20 case randomization.
        case_randomization: bool);
    setter!(/// Address families for `lookup_ip`.
        ip_strategy: IpStrategy);
    setter!(/// RFC 8305 resolution delay.
        resolution_delay: Duration);
    setter!(/// Override IPv6 egress detection.
        ipv6_egress: Option<bool>);
    setter!(/// UDP sockets per nameserver.
        udp_sockets: usize);
    setter!(/// Queries per socket before rotation.
        queries_per_socket: u64);
    setter!(/// How queries are sent: one by one, batched when busy, or always batched.
        batching: Batching);
    setter!(/// Receive buffer per UDP socket.
        recv_buffer: usize);
    setter!(/// Most queries in flight.
        max_in_flight: usize);
    setter!(/// Most distinct names pending at once.
        max_pending: usize);
    setter!(/// Longest CNAME chain followed.
        max_cname_depth: usize);
    setter!(/// Failures before a server counts as down.
        down_after_failures: u32);
    setter!(/// Probe interval for down servers.
        probe_interval: Duration);
    setter!(/// The answer cache (`None` disables it).
        cache: Option<CacheConfig>);
    setter!(/// Extra CA certificates (PEM file) for TLS and HTTPS servers.
        ca_file: Option<PathBuf>);
    setter!(/// DoH queries as `GET` instead of `POST`.
        doh_get: bool);
    setter!(/// Most connections per TCP or TLS server.
        stream_connections: usize);
    setter!(/// A hosts file answered before the cache and the network.
        hosts_file: Option<PathBuf>);

    /// The finished configuration.
    pub fn build(self) -> ResolverConfig {
        self.config
    }
}
