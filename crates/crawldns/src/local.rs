//! Local answers: IP literals (`127.0.0.1`, `::1`, `[::1]`,
//! `::ffff:1.2.3.4`) and `localhost` names (RFC 6761 §6.3) are answered
//! without the network and never cached.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::IpStrategy;
use crate::error::{Error, ErrorKind};
use crate::name::{is_localhost, normalize};
use crate::records::{LookupIp, QueryType};

pub(crate) fn localhost(strategy: IpStrategy) -> LookupIp {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let addrs: Vec<IpAddr> = match strategy {
        IpStrategy::V4Only => vec![v4],
        IpStrategy::V6Only => vec![v6],
        IpStrategy::PreferV4 => vec![v4, v6],
        IpStrategy::Both | IpStrategy::PreferV6 => vec![v6, v4],
    };
    LookupIp {
        addrs: addrs.into(),
        ttl: 0,
        cache_ttl: 0,
        aaaa_skipped: false,
    }
}

/// The name a reverse (PTR) lookup of `ip` asks for: `4.3.2.1.in-addr.arpa`,
/// or the 32 nibbles of an IPv6 address under `ip6.arpa` (RFC 3596 §2.5).
pub(crate) fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
                name.push('.');
                name.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
                name.push('.');
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// `host` as the resolver looks it up: an IP literal in its canonical form,
/// or a name normalized (lower-case ASCII, no final dot).
pub fn normalize_host(host: &str) -> Result<Cow<'_, str>, Error> {
    if let Some(ip) = parse_ip_literal(host) {
        return Ok(Cow::Owned(ip.to_string()));
    }
    normalize(host)
}

/// `127.0.0.1`, `::1`, `[::1]` and `::ffff:1.2.3.4` are addresses, not names.
pub(crate) fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    // IPv4 literals are digits and dots, IPv6 ones have a ':': anything
    // else is rejected here, before the (much slower) parsers run.
    let maybe_ip = bare.contains(':') || bare.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !maybe_ip {
        return None;
    }
    bare.parse().ok()
}

/// Answers for IP literals and `localhost` names, without the network.
pub(crate) fn local_answer(
    name: &str,
    query_type: QueryType,
) -> Option<Result<Vec<IpAddr>, Error>> {
    let ip = match parse_ip_literal(name) {
        Some(ip) => ip,
        None if is_localhost(name) => match query_type {
            QueryType::A => IpAddr::V4(Ipv4Addr::LOCALHOST),
            QueryType::Aaaa => IpAddr::V6(Ipv6Addr::LOCALHOST),
            _ => return Some(Err(Error::new(ErrorKind::NoData, name))),
        },
        None => return None,
    };
    let fits = matches!(
        (ip, query_type),
        (IpAddr::V4(_), QueryType::A) | (IpAddr::V6(_), QueryType::Aaaa)
    );
    Some(if fits {
        Ok(vec![ip])
    } else {
        Err(Error::new(ErrorKind::NoData, name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_of_both_families_are_addresses() {
        for (text, ip) in [
            ("127.0.0.1", "127.0.0.1"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("[2001:DB8::1]", "2001:db8::1"),
        ] {
            assert_eq!(parse_ip_literal(text), ip.parse().ok(), "{text}");
            assert_eq!(normalize_host(text).unwrap(), ip, "{text}");
        }
        for not_ip in ["1.2.3", "h1.crawl.test", "[h1]", "::g", "1.2.3.4.5"] {
            assert_eq!(parse_ip_literal(not_ip), None, "{not_ip}");
        }
    }

    #[test]
    fn reverse_names_of_both_families() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn literals_answer_their_own_family_only() {
        assert_eq!(
            local_answer("::1", QueryType::Aaaa).unwrap().unwrap(),
            ["::1".parse::<IpAddr>().unwrap()]
        );
        let err = local_answer("::1", QueryType::A).unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoData);
        assert_eq!(
            local_answer("localhost", QueryType::A).unwrap().unwrap(),
            [IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
        assert!(local_answer("h1.crawl.test", QueryType::A).is_none());
        assert_eq!(
            &*localhost(IpStrategy::Both).addrs,
            [
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            ]
        );
    }
}
