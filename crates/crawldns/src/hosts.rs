//! A hosts file (`/etc/hosts` format), read as glibc's `files` backend does:
//! `ADDRESS NAME [ALIAS...]` per line, `#` starts a comment, names are
//! case-insensitive, IPv4 and IPv6 alike; a name on several lines has the
//! addresses of all of them, in file order (glibc's `multi on`). Lines with
//! an unparsable address (or a scoped one such as `fe80::1%eth0`) and
//! invalid names are skipped. The resolver answers a name found here for a
//! family it lists before the cache and the network; a family the file does
//! not list for a name goes to DNS, as glibc's `hosts: files dns` does.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::IpStrategy;
use crate::happy_eyeballs::interleave;
use crate::name::normalize;

/// The addresses of one name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Addrs {
    v4: Vec<IpAddr>,
    v6: Vec<IpAddr>,
}

/// A parsed hosts file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Hosts {
    names: HashMap<String, Addrs>,
}

impl Hosts {
    /// Parses the text of a hosts file.
    pub fn parse(text: &str) -> Self {
        let mut names: HashMap<String, Addrs> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
                continue;
            };
            for name in fields {
                let Ok(name) = normalize(name) else {
                    continue;
                };
                let addrs = names.entry(name.into_owned()).or_default();
                let family = if ip.is_ipv4() {
                    &mut addrs.v4
                } else {
                    &mut addrs.v6
                };
                if !family.contains(&ip) {
                    family.push(ip);
                }
            }
        }
        Self { names }
    }

    /// Names listed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// The addresses of `name` (normalized) of one family (`v6`: AAAA, else
    /// A); `None` when the file lists none of that family for it.
    pub fn family(&self, name: &str, v6: bool) -> Option<&[IpAddr]> {
        let addrs = self.names.get(name)?;
        let family = if v6 { &addrs.v6 } else { &addrs.v4 };
        (!family.is_empty()).then_some(family.as_slice())
    }

    /// The addresses of `name` (normalized) to connect to, ordered as
    /// `strategy` says (IPv6 left out when `ipv6` is false and the strategy
    /// asks for both families); `None` when the file lists none of them.
    pub fn addresses(&self, name: &str, strategy: IpStrategy, ipv6: bool) -> Option<Vec<IpAddr>> {
        let addrs = self.names.get(name)?;
        let v6: &[IpAddr] = if ipv6 { &addrs.v6 } else { &[] };
        let ordered = match strategy {
            IpStrategy::V4Only => addrs.v4.clone(),
            IpStrategy::V6Only => addrs.v6.clone(),
            IpStrategy::Both => interleave(v6, &addrs.v4),
            IpStrategy::PreferV4 => addrs.v4.iter().chain(v6).copied().collect(),
            IpStrategy::PreferV6 => v6.iter().chain(&addrs.v4).copied().collect(),
        };
        (!ordered.is_empty()).then_some(ordered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    const FILE: &str = "\
# The usual start
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
10.0.0.5   Crawler.Example.  crawler   # trailing comment
10.0.0.6   crawler.example
2001:db8::5 crawler.example
10.0.0.5   crawler.example
not-an-ip  ignored.example
fe80::1%eth0 scoped.example
10.0.0.7   bad_name! fine.example
   # only a comment
10.0.0.8
";

    #[test]
    fn aliases_families_comments_and_later_duplicates() {
        let hosts = Hosts::parse(FILE);
        // Every line naming a host adds its address, in file order, once.
        assert_eq!(
            hosts.family("crawler.example", false),
            Some(&ips(&["10.0.0.5", "10.0.0.6"])[..])
        );
        assert_eq!(
            hosts.family("crawler.example", true),
            Some(&ips(&["2001:db8::5"])[..])
        );
        // Aliases, any case, final dot or not.
        assert_eq!(
            hosts.family("crawler", false),
            Some(&ips(&["10.0.0.5"])[..])
        );
        assert_eq!(hosts.family("ip6-loopback", true), Some(&ips(&["::1"])[..]));
        // A family the file does not list goes to DNS.
        assert_eq!(hosts.family("crawler", true), None);
        // Bad addresses and names are skipped, the rest of their line kept.
        assert_eq!(hosts.family("ignored.example", false), None);
        assert_eq!(hosts.family("scoped.example", true), None);
        assert_eq!(
            hosts.family("fine.example", false),
            Some(&ips(&["10.0.0.7"])[..])
        );
        assert_eq!(
            hosts.len(),
            [
                "localhost",
                "ip6-localhost",
                "ip6-loopback",
                "crawler.example",
                "crawler",
                "fine.example"
            ]
            .len()
        );
    }

    #[test]
    fn addresses_follow_the_strategy_and_ipv6_egress() {
        let hosts = Hosts::parse(FILE);
        let name = "crawler.example";
        let got = |strategy, ipv6| hosts.addresses(name, strategy, ipv6);
        assert_eq!(
            got(IpStrategy::Both, true),
            Some(ips(&["2001:db8::5", "10.0.0.5", "10.0.0.6"]))
        );
        assert_eq!(
            got(IpStrategy::PreferV4, true),
            Some(ips(&["10.0.0.5", "10.0.0.6", "2001:db8::5"]))
        );
        assert_eq!(
            got(IpStrategy::PreferV6, true),
            Some(ips(&["2001:db8::5", "10.0.0.5", "10.0.0.6"]))
        );
        assert_eq!(got(IpStrategy::V6Only, true), Some(ips(&["2001:db8::5"])));
        assert_eq!(
            got(IpStrategy::Both, false),
            Some(ips(&["10.0.0.5", "10.0.0.6"]))
        );
        // Asked for IPv6 only of a name the file lists with IPv4 only: DNS.
        assert_eq!(hosts.addresses("crawler", IpStrategy::V6Only, true), None);
        assert_eq!(
            hosts.addresses("nowhere.example", IpStrategy::Both, true),
            None
        );
    }
}
