//! The DNS options `resolve`, `fetch` share, and the resolver they build.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use crawldns::{Batching, IpStrategy, NameServer, Protocol, Resolver, ResolverConfig};

use crate::UsageError;

/// Which nameservers to ask and how.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "DNS")]
pub struct DnsArgs {
    /// A nameserver to ask: an IP address with an optional port (default
    /// 53), e.g. 127.0.0.1:5353 or [::1]:53, over UDP; or a URL naming the
    /// transport: tcp://IP[:53], tls://IP[:853] (DNS over TLS),
    /// https://IP[:443][/PATH] (DNS over HTTPS, path /dns-query by default).
    /// Repeat for several, in order of preference; they may mix transports.
    #[arg(long = "nameserver", value_name = "IP[:PORT]|URL", value_parser = parse_nameserver)]
    pub nameservers: Vec<NameServer>,

    /// Nameservers from a file, one per line as for --nameserver (blank
    /// lines and lines starting with # skipped), after any --nameserver.
    #[arg(short = 'r', long = "resolvers", value_name = "FILE")]
    pub resolvers_file: Option<PathBuf>,

    /// Answer names from a hosts file before the cache and the network, as
    /// glibc reads /etc/hosts (aliases, IPv4 and IPv6, later lines adding
    /// addresses): /etc/hosts when given without a value, or
    /// --hosts-file=PATH. crawldns never reads it unless asked.
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true,
          default_missing_value = "/etc/hosts")]
    pub hosts_file: Option<PathBuf>,

    /// The name tls:// and https:// nameservers' certificates must be valid
    /// for (and the SNI sent), e.g. dns.example; by default their IP
    /// address.
    #[arg(long, value_name = "NAME")]
    pub tls_name: Option<String>,

    /// Ask https:// nameservers with GET ?dns= instead of POST.
    #[arg(long)]
    pub doh_get: bool,

    /// Also use the nameservers and options (timeout, attempts, rotate) of a
    /// resolv.conf file: /etc/resolv.conf when given without a value, or
    /// --resolv-conf=PATH. crawldns never reads it unless asked.
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true,
          default_missing_value = "/etc/resolv.conf")]
    pub resolv_conf: Option<PathBuf>,

    /// Rounds over all servers (default 2, or resolv.conf's attempts);
    /// past them, a query lost at a server that answers others is asked
    /// again, backing off, within timeout × attempts.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=20))]
    pub attempts: Option<u64>,

    /// Which address families an address lookup (type IP) asks for and in
    /// what order it returns them.
    #[arg(long, value_enum, value_name = "STRATEGY", default_value_t = Strategy::Both)]
    pub strategy: Strategy,

    /// Whether address lookups (type IP) ask for AAAA records: auto asks
    /// only when this machine has an IPv6 route; always and never override.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Ipv6::Auto)]
    pub ipv6: Ipv6,

    /// Ask the nameservers given with --nameserver as IP[:PORT] over TCP
    /// only (as if given as tcp://).
    #[arg(long)]
    pub tcp: bool,

    /// How queries leave a socket. Batched queries are padded to a 64-byte
    /// block (EDNS(0) Padding) and sent several per system call (UDP GSO,
    /// Linux): about half the kernel CPU per query under load.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = SendMode::WhenBusy)]
    pub batching: SendMode,

    /// Bulk mode, for resolving a long list as cheaply as possible: the
    /// same as --batching always, and `crawldns resolve` drives its typed
    /// lookups (--type A, MX, ...) in one loop without a cache, each name
    /// and type its own query.
    #[arg(long, conflicts_with = "batching")]
    pub bulk: bool,

    /// The cache keeps answers at least this many seconds (default 30).
    #[arg(long, value_name = "SECS", help_heading = "Cache")]
    pub ttl_floor: Option<u32>,

    /// The cache keeps answers at most this many seconds (default 86400;
    /// never below the floor).
    #[arg(long, value_name = "SECS", help_heading = "Cache")]
    pub ttl_ceiling: Option<u32>,

    /// Serve expired answers for up to SECS after expiry while refreshing
    /// them, and while every server fails (RFC 8767). Off by default.
    #[arg(long, value_name = "SECS", help_heading = "Cache")]
    pub serve_stale: Option<u32>,

    /// Do not refresh popular entries in the last 10% of their TTL.
    #[arg(long, help_heading = "Cache")]
    pub no_prefetch: bool,

    /// No cache: every lookup goes to the wire (concurrent lookups of one
    /// name still share one query). For a list of distinct names, where
    /// a cache only costs: a million names evict each other from it.
    #[arg(long, help_heading = "Cache",
          conflicts_with_all = ["ttl_floor", "ttl_ceiling", "serve_stale", "no_prefetch"])]
    pub no_cache: bool,

    /// DNS 0x20: randomize the case of every query's name and drop answers
    /// that do not echo it (spoofing resistance).
    #[arg(long)]
    pub dns0x20: bool,
}

/// `--batching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SendMode {
    /// One system call per query, unpadded.
    Off,
    /// Batch a socket's queries only while it has several in flight; a lone
    /// query leaves at once, unpadded.
    WhenBusy,
    /// Batch every query: the cheapest per query, for bulk resolution.
    Always,
}

impl From<SendMode> for Batching {
    fn from(mode: SendMode) -> Self {
        match mode {
            SendMode::Off => Batching::Off,
            SendMode::WhenBusy => Batching::WhenBusy,
            SendMode::Always => Batching::Always,
        }
    }
}

/// `--ipv6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ipv6 {
    /// Ask for AAAA when the machine has an IPv6 route.
    Auto,
    /// Always ask for AAAA.
    Always,
    /// Never ask for AAAA (per --strategy's families).
    Never,
}

impl Ipv6 {
    /// `ResolverConfig::ipv6_egress`.
    fn egress(self) -> Option<bool> {
        match self {
            Self::Auto => None,
            Self::Always => Some(true),
            Self::Never => Some(false),
        }
    }
}

/// `--strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// A records only.
    V4,
    /// AAAA records only.
    V6,
    /// A and AAAA in parallel, interleaved IPv6 first (happy eyeballs).
    Both,
    /// A and AAAA; IPv4 addresses first.
    PreferV4,
    /// A and AAAA; IPv6 addresses first.
    PreferV6,
}

impl From<Strategy> for IpStrategy {
    fn from(strategy: Strategy) -> Self {
        match strategy {
            Strategy::V4 => IpStrategy::V4Only,
            Strategy::V6 => IpStrategy::V6Only,
            Strategy::Both => IpStrategy::Both,
            Strategy::PreferV4 => IpStrategy::PreferV4,
            Strategy::PreferV6 => IpStrategy::PreferV6,
        }
    }
}

/// Parses `--nameserver`: `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6
/// address (UDP), or a `udp://`, `tcp://`, `tls://` or `https://` URL.
/// Host names are refused: a nameserver must be an address.
pub fn parse_nameserver(text: &str) -> Result<NameServer, String> {
    let text = text.trim();
    let bad = |why: &str| {
        format!(
            "invalid nameserver {text:?}: {why} (expected an IP address with an optional port, \
             e.g. 127.0.0.1, 127.0.0.1:5353 or [::1]:53, or a URL such as tls://127.0.0.1:853 \
             or https://127.0.0.1/dns-query)"
        )
    };
    if text.contains("://") {
        let server = NameServer::from_url(text).map_err(|e| {
            let detail = e.detail().unwrap_or_default();
            let why = detail
                .strip_prefix(&format!("invalid nameserver {text:?}: "))
                .unwrap_or(detail);
            bad(why)
        })?;
        return usable(server.addr).map(|_| server).map_err(&bad);
    }
    let addr = if let Ok(ip) = text.parse::<IpAddr>() {
        SocketAddr::new(ip, 53)
    } else if let Ok(addr) = text.parse::<SocketAddr>() {
        addr
    } else if let Some(ip) = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<IpAddr>().ok())
    {
        SocketAddr::new(ip, 53)
    } else if text.is_empty() {
        return Err(bad("empty"));
    } else if let Some(port) = port_out_of_range(text) {
        return Err(bad(&format!("port {port} is out of range (1 to 65535)")));
    } else {
        return Err(bad("not an IP address"));
    };
    usable(addr).map_err(&bad)?;
    Ok(NameServer::new(addr, Protocol::Udp))
}

/// Why `addr` cannot be a nameserver's address, if it cannot.
fn usable(addr: SocketAddr) -> Result<(), &'static str> {
    if addr.port() == 0 {
        return Err("port 0");
    }
    if addr.ip().is_unspecified() {
        return Err("the unspecified address");
    }
    Ok(())
}

/// The port of `IP:PORT` or `[IPv6]:PORT` when the address is good and the
/// port is a number too large for one.
fn port_out_of_range(text: &str) -> Option<&str> {
    let (ip, port) = text.rsplit_once(':')?;
    let ip = ip
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(ip);
    let is_v4 = ip.parse::<std::net::Ipv4Addr>().is_ok();
    let bracketed_v6 = text.starts_with('[') && ip.parse::<std::net::Ipv6Addr>().is_ok();
    let too_large = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_err();
    ((is_v4 || bracketed_v6) && too_large).then_some(port)
}

impl DnsArgs {
    /// True when no nameserver was asked for at all.
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty() && self.resolv_conf.is_none() && self.resolvers_file.is_none()
    }

    /// The servers of `--resolvers FILE`: an unreadable file is an error
    /// (exit 1), a line that is not a nameserver a bad command line (exit 2).
    fn servers_from_file(path: &Path) -> Result<Vec<NameServer>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --resolvers {}", path.display()))?;
        let mut servers = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let server = parse_nameserver(line).map_err(|why| {
                UsageError(format!(
                    "--resolvers {} line {}: {why}",
                    path.display(),
                    number + 1
                ))
            })?;
            servers.push(server);
        }
        if servers.is_empty() {
            return Err(UsageError(format!(
                "--resolvers {} names no nameserver",
                path.display()
            ))
            .into());
        }
        Ok(servers)
    }

    /// The resolver configuration these options describe, with `timeout_ms`
    /// as the per-attempt timeout when given (the option is `--timeout-ms`
    /// for `resolve`, `--dns-timeout-ms` for `fetch`).
    /// `ca_file` is trusted by tls:// and https:// nameservers besides the
    /// Mozilla roots (each command names the option: `resolve --ca-file`,
    /// and for `fetch` the same `--ca-file` its HTTPS fetches trust).
    pub fn config(
        &self,
        timeout_ms: Option<u64>,
        ca_file: Option<&Path>,
    ) -> Result<ResolverConfig> {
        if self.is_empty() {
            return Err(UsageError(
                "no nameserver: pass --nameserver IP[:PORT] (repeatable), -r/--resolvers FILE or --resolv-conf \
                 (crawldns reads /etc/resolv.conf only when asked)"
                    .to_owned(),
            )
            .into());
        }
        let mut builder = ResolverConfig::builder();
        if let Some(path) = &self.resolv_conf {
            builder = builder
                .resolv_conf(path)
                .with_context(|| format!("cannot use --resolv-conf={}", path.display()))?;
        }
        let from_file = match &self.resolvers_file {
            Some(path) => Self::servers_from_file(path)?,
            None => Vec::new(),
        };
        for server in self.nameservers.iter().chain(&from_file) {
            let mut server = server.clone();
            if self.tcp && server.protocol == Protocol::Udp {
                server.protocol = Protocol::Tcp;
            }
            if server.protocol.is_encrypted() {
                server.tls_name.clone_from(&self.tls_name);
            }
            builder = builder.push_nameserver(server);
        }
        if self.tls_name.is_some() && !self.nameservers.iter().any(|s| s.protocol.is_encrypted()) {
            return Err(UsageError(
                "--tls-name applies to tls:// and https:// nameservers, and none was given"
                    .to_owned(),
            )
            .into());
        }
        if let Some(ms) = timeout_ms {
            builder = builder.timeout(Duration::from_millis(ms));
        }
        if let Some(attempts) = self.attempts {
            builder = builder.attempts(usize::try_from(attempts).unwrap_or(usize::MAX));
        }
        let defaults = crawldns::CacheConfig::default();
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        let cache = crawldns::CacheConfig {
            min_ttl: self.ttl_floor.map_or(defaults.min_ttl, secs),
            max_ttl: self.ttl_ceiling.map_or(defaults.max_ttl, secs),
            serve_stale: self.serve_stale.map(secs),
            prefetch: !self.no_prefetch,
            ..defaults
        };
        Ok(builder
            .ca_file(ca_file.map(Path::to_path_buf))
            .hosts_file(self.hosts_file.clone())
            .doh_get(self.doh_get)
            .cache((!self.no_cache).then_some(cache))
            .case_randomization(self.dns0x20)
            .ip_strategy(self.strategy.into())
            .ipv6_egress(self.ipv6.egress())
            .batching(if self.bulk {
                Batching::Always
            } else {
                self.batching.into()
            })
            .build())
    }

    /// A resolver for these options (see [`DnsArgs::config`]).
    pub fn resolver(&self, timeout_ms: Option<u64>, ca_file: Option<&Path>) -> Result<Resolver> {
        let config = self.config(timeout_ms, ca_file)?;
        if config.nameservers.is_empty() {
            let from = self
                .resolv_conf
                .as_ref()
                .map_or_else(String::new, |p| format!(" ({} names none)", p.display()));
            return Err(UsageError(format!(
                "no nameserver to ask{from}: pass --nameserver IP[:PORT]"
            ))
            .into());
        }
        Resolver::new(config).context("cannot start the resolver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_take_an_optional_port() {
        let ok = |text: &str| parse_nameserver(text).unwrap().addr.to_string();
        assert_eq!(ok("127.0.0.1"), "127.0.0.1:53");
        assert_eq!(ok("127.0.0.1:5353"), "127.0.0.1:5353");
        assert_eq!(ok("::1"), "[::1]:53");
        assert_eq!(ok("[::1]"), "[::1]:53");
        assert_eq!(ok("[::1]:5353"), "[::1]:5353");
        for bad in [
            "",
            "dns.example",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "300.1.1.1",
            "0.0.0.0",
            "1.2.3.4:x",
        ] {
            let err = parse_nameserver(bad).unwrap_err();
            assert!(err.contains("invalid nameserver"), "{bad:?}: {err}");
        }
        let why = |text: &str| {
            let err = parse_nameserver(text).unwrap_err();
            err[err.find(": ").unwrap() + 2..err.find(" (expected").unwrap()].to_owned()
        };
        assert_eq!(
            why("127.0.0.1:99999"),
            "port 99999 is out of range (1 to 65535)"
        );
        assert_eq!(
            why("[::1]:65536"),
            "port 65536 is out of range (1 to 65535)"
        );
        assert_eq!(why("300.1.1.1:99999"), "not an IP address");
        assert_eq!(why("dns.example:99999"), "not an IP address");
    }

    #[test]
    fn nameserver_urls_name_the_transport() {
        let url = |text: &str| parse_nameserver(text).unwrap().url();
        assert_eq!(url("127.0.0.1:5353"), "udp://127.0.0.1:5353");
        assert_eq!(url("tcp://127.0.0.1"), "tcp://127.0.0.1:53");
        assert_eq!(url("tls://127.0.0.1"), "tls://127.0.0.1:853");
        assert_eq!(url("tls://[::1]:8853"), "tls://[::1]:8853");
        assert_eq!(url("https://127.0.0.1"), "https://127.0.0.1:443/dns-query");
        assert_eq!(url("https://127.0.0.1:8443/q"), "https://127.0.0.1:8443/q");
        for bad in [
            "tls://dns.example",
            "quic://127.0.0.1",
            "tls://0.0.0.0",
            "tcp://127.0.0.1:0",
        ] {
            let err = parse_nameserver(bad).unwrap_err();
            assert!(err.starts_with("invalid nameserver"), "{bad:?}: {err}");
        }
    }
}
