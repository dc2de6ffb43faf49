//! A reader for the parts of resolv.conf(5) a stub resolver uses.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What resolv.conf says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines (port 53).
    pub nameservers: Vec<SocketAddr>,
    /// `options timeout:N`.
    pub timeout: Option<Duration>,
    /// `options attempts:N`.
    pub attempts: Option<usize>,
    /// `options rotate`.
    pub rotate: bool,
}

/// Parses resolv.conf text; unknown or malformed lines are ignored, as libc does.
pub fn parse(text: &str) -> ResolvConf {
    let mut conf = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                // Link-local scope ids ("fe80::1%eth0") are not supported here.
                if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                    conf.nameservers.push(SocketAddr::new(ip, 53));
                }
            }
            Some("options") => {
                for option in words {
                    if let Some(n) = option.strip_prefix("timeout:").and_then(|n| n.parse().ok()) {
                        conf.timeout = Some(Duration::from_secs(n));
                    } else if let Some(n) = option
                        .strip_prefix("attempts:")
                        .and_then(|n| n.parse().ok())
                    {
                        conf.attempts = Some(n);
                    } else if option == "rotate" {
                        conf.rotate = true;
                    }
                }
            }
            _ => {}
        }
    }
    conf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nameservers_and_options() {
        let conf = parse(
            "# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver ::1 # v6\nnameserver bogus\n\
             options edns0 timeout:1 attempts:3 rotate\n",
        );
        assert_eq!(
            conf.nameservers,
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(conf.timeout, Some(Duration::from_secs(1)));
        assert_eq!(conf.attempts, Some(3));
        assert!(conf.rotate);
    }
}
