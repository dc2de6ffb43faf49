//! Nameserver URLs: how a user names a server and its transport, e.g. on the
//! command line. `IP[:PORT]` and `udp://` mean UDP (TCP for truncated
//! answers), `tcp://` TCP only, `tls://` DNS over TLS (port 853),
//! `https://IP[:PORT]/PATH` DNS over HTTPS (port 443, path `/dns-query` when
//! none is given). The host must be an IP address: a resolver cannot look up
//! its own nameserver. The name a TLS certificate is checked against is
//! given apart (`--tls-name`); without one it is the IP address itself
//! (public resolvers' certificates carry their addresses).

use std::net::{IpAddr, SocketAddr};

/// How the stub talks to a nameserver, and the scheme of its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// UDP, falling back to TCP for truncated answers (the default; no
    /// scheme, or `udp://`).
    #[default]
    Udp,
    /// TCP only (`tcp://`), many queries pipelined on a few long-lived
    /// connections (RFC 7766).
    Tcp,
    /// DNS over TLS (`tls://`, RFC 7858), pipelined like TCP; queries
    /// padded (RFC 8467).
    Tls,
    /// DNS over HTTPS (`https://`, RFC 8484): HTTP/2, queries multiplexed
    /// on one connection.
    Https,
}

impl Protocol {
    /// True for the encrypted transports, whose servers are authenticated
    /// by certificate and never asked in the clear instead.
    pub fn is_encrypted(self) -> bool {
        matches!(self, Self::Tls | Self::Https)
    }

    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Udp | Self::Tcp => 53,
            Self::Tls => 853,
            Self::Https => 443,
        }
    }

    /// The URL scheme: `udp`, `tcp`, `tls` or `https`.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Https => "https",
        }
    }
}

/// A parsed nameserver URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The transport.
    pub protocol: Protocol,
    /// Address and port.
    pub addr: SocketAddr,
    /// For `https://`, the URL path (`/dns-query` unless given).
    pub path: Option<String>,
}

/// The DoH path used when an `https://` URL gives none.
pub const DEFAULT_DOH_PATH: &str = "/dns-query";

/// Parses a nameserver URL (see the module documentation).
pub fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    let text = text.trim();
    let (scheme, rest) = match text.split_once("://") {
        None => (Protocol::Udp, text),
        Some((name, rest)) => {
            let scheme = match name.to_ascii_lowercase().as_str() {
                "udp" => Protocol::Udp,
                "tcp" => Protocol::Tcp,
                "tls" => Protocol::Tls,
                "https" => Protocol::Https,
                other => {
                    return Err(format!(
                    "unknown scheme {other:?} in {text:?}: use udp://, tcp://, tls:// or https://"
                ))
                }
            };
            (scheme, rest)
        }
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    };
    let path = match (scheme, path) {
        (Protocol::Https, None | Some("/")) => Some(DEFAULT_DOH_PATH.to_owned()),
        (Protocol::Https, Some(path)) => Some(path.to_owned()),
        (_, None) => None,
        (_, Some(_)) => return Err(format!("{text:?}: only https:// takes a path")),
    };
    let addr = parse_authority(authority, scheme.default_port())
        .map_err(|why| format!("invalid nameserver {text:?}: {why}"))?;
    Ok(Endpoint {
        protocol: scheme,
        addr,
        path,
    })
}

/// `IP`, `IP:PORT`, `[IPv6]`, `[IPv6]:PORT` or a bare IPv6 address.
fn parse_authority(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, default_port)),
        Err(_) => Err("expected an IP address with an optional port, not a host name".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (Protocol, String, Option<String>) {
        let e = parse_endpoint(text).unwrap();
        (e.protocol, e.addr.to_string(), e.path)
    }

    #[test]
    fn schemes_ports_and_paths() {
        assert_eq!(ok("8.8.8.8"), (Protocol::Udp, "8.8.8.8:53".into(), None));
        assert_eq!(
            ok("127.0.0.1:5353"),
            (Protocol::Udp, "127.0.0.1:5353".into(), None)
        );
        assert_eq!(
            ok("tcp://1.1.1.1"),
            (Protocol::Tcp, "1.1.1.1:53".into(), None)
        );
        assert_eq!(
            ok("tls://1.1.1.1"),
            (Protocol::Tls, "1.1.1.1:853".into(), None)
        );
        assert_eq!(
            ok("TLS://[::1]:8853"),
            (Protocol::Tls, "[::1]:8853".into(), None)
        );
        assert_eq!(
            ok("https://1.1.1.1"),
            (
                Protocol::Https,
                "1.1.1.1:443".into(),
                Some("/dns-query".into())
            )
        );
        assert_eq!(
            ok("https://127.0.0.1:8443/resolve"),
            (
                Protocol::Https,
                "127.0.0.1:8443".into(),
                Some("/resolve".into())
            )
        );
        assert_eq!(
            ok("https://[2606:4700::1111]/"),
            (
                Protocol::Https,
                "[2606:4700::1111]:443".into(),
                Some("/dns-query".into())
            )
        );
        assert_eq!(
            ok("2001:db8::1"),
            (Protocol::Udp, "[2001:db8::1]:53".into(), None)
        );
    }

    #[test]
    fn host_names_unknown_schemes_and_stray_paths_are_refused() {
        for bad in [
            "dns.google",
            "tls://dns.google",
            "https://cloudflare-dns.com/dns-query",
            "quic://1.1.1.1",
            "tls://1.1.1.1/dns-query",
            "udp://1.1.1.1:99999",
            "",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad:?}");
        }
    }
}
