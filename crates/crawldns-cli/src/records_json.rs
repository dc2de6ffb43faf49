//! Typed records as `resolve` prints them: JSON objects with typed fields
//! (not only presentation strings), and a zone-file-like presentation for
//! the text format. Text that came from the network or the input is
//! escaped before it reaches a terminal.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crawldns::RecordData;
use serde::Serialize;

/// One record of a type beyond addresses, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum JsonRecord {
    /// MX.
    Mx { preference: u16, exchange: String },
    /// TXT: the character-strings (invalid UTF-8 replaced), and the bytes
    /// in hex when they are not UTF-8.
    Txt {
        strings: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        hex: Option<Vec<String>>,
    },
    /// NS, PTR.
    Host { host: String },
    /// SOA.
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    /// SRV.
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    /// CAA.
    Caa {
        critical: bool,
        tag: String,
        value: String,
    },
    /// HTTPS, SVCB.
    ServiceBinding {
        priority: u16,
        target: String,
        alpn: Vec<String>,
        no_default_alpn: bool,
        port: Option<u16>,
        ipv4hint: Vec<Ipv4Addr>,
        ipv6hint: Vec<Ipv6Addr>,
        ech: bool,
    },
    /// A type this CLI does not know yet.
    Other { data: String },
}

impl From<&RecordData> for JsonRecord {
    fn from(data: &RecordData) -> Self {
        match data {
            RecordData::Mx {
                preference,
                exchange,
            } => Self::Mx {
                preference: *preference,
                exchange: exchange.clone(),
            },
            RecordData::Txt(strings) => {
                let all_utf8 = strings.iter().all(|s| std::str::from_utf8(s).is_ok());
                Self::Txt {
                    strings: strings
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect(),
                    hex: (!all_utf8).then(|| strings.iter().map(|s| hex(s)).collect()),
                }
            }
            RecordData::Ns(host) | RecordData::Ptr(host) => Self::Host { host: host.clone() },
            RecordData::Soa(soa) => Self::Soa {
                mname: soa.mname.clone(),
                rname: soa.rname.clone(),
                serial: soa.serial,
                refresh: soa.refresh,
                retry: soa.retry,
                expire: soa.expire,
                minimum: soa.minimum,
            },
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => Self::Srv {
                priority: *priority,
                weight: *weight,
                port: *port,
                target: target.clone(),
            },
            RecordData::Caa {
                critical,
                tag,
                value,
            } => Self::Caa {
                critical: *critical,
                tag: tag.clone(),
                value: String::from_utf8_lossy(value).into_owned(),
            },
            RecordData::ServiceBinding(b) => Self::ServiceBinding {
                priority: b.priority,
                target: b.target.clone(),
                alpn: b.alpn.clone(),
                no_default_alpn: b.no_default_alpn,
                port: b.port,
                ipv4hint: b.ipv4hint.clone(),
                ipv6hint: b.ipv6hint.clone(),
                ech: b.ech,
            },
            other => Self::Other {
                data: format!("{other:?}"),
            },
        }
    }
}

impl JsonRecord {
    /// The record as a zone file writes its data (`10 mx1.example`).
    pub fn presentation(&self) -> String {
        match self {
            Self::Mx {
                preference,
                exchange,
            } => format!("{preference} {exchange}"),
            Self::Txt { strings, .. } => strings
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" "),
            Self::Host { host } => host.clone(),
            Self::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            } => format!("{mname} {rname} {serial} {refresh} {retry} {expire} {minimum}"),
            Self::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("{priority} {weight} {port} {target}"),
            Self::Caa {
                critical,
                tag,
                value,
            } => format!("{} {tag} {value:?}", if *critical { 128 } else { 0 }),
            Self::ServiceBinding {
                priority,
                target,
                alpn,
                no_default_alpn,
                port,
                ipv4hint,
                ipv6hint,
                ech,
            } => {
                let mut text = format!("{priority} {target}");
                if !alpn.is_empty() {
                    let _ = write!(text, " alpn={}", alpn.join(","));
                }
                if *no_default_alpn {
                    text.push_str(" no-default-alpn");
                }
                if let Some(port) = port {
                    let _ = write!(text, " port={port}");
                }
                if !ipv4hint.is_empty() {
                    let hints: Vec<String> = ipv4hint.iter().map(|a| a.to_string()).collect();
                    let _ = write!(text, " ipv4hint={}", hints.join(","));
                }
                if *ech {
                    text.push_str(" ech");
                }
                if !ipv6hint.is_empty() {
                    let hints: Vec<String> = ipv6hint.iter().map(|a| a.to_string()).collect();
                    let _ = write!(text, " ipv6hint={}", hints.join(","));
                }
                text
            }
            Self::Other { data } => data.clone(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// `text` with control characters (and backslashes) escaped as Rust
/// escapes, so that bytes from an input file or a server cannot drive the
/// terminal that shows the text format.
pub fn escape_text(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() || c == '\\') {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() || c == '\\' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crawldns::ServiceBinding;

    #[test]
    fn typed_fields_in_json_and_a_presentation_for_text() {
        let mx = JsonRecord::from(&RecordData::Mx {
            preference: 10,
            exchange: "mx1.example".into(),
        });
        assert_eq!(
            serde_json::to_string(&mx).unwrap(),
            r#"{"preference":10,"exchange":"mx1.example"}"#
        );
        assert_eq!(mx.presentation(), "10 mx1.example");
        let https = JsonRecord::from(&RecordData::ServiceBinding(ServiceBinding {
            priority: 1,
            target: ".".into(),
            alpn: vec!["h2".into(), "h3".into()],
            port: Some(8443),
            ipv4hint: vec![Ipv4Addr::new(192, 0, 2, 1)],
            ..ServiceBinding::default()
        }));
        assert_eq!(
            serde_json::to_string(&https).unwrap(),
            r#"{"priority":1,"target":".","alpn":["h2","h3"],"no_default_alpn":false,"port":8443,"ipv4hint":["192.0.2.1"],"ipv6hint":[],"ech":false}"#
        );
        assert_eq!(
            https.presentation(),
            "1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.1"
        );
        let txt = JsonRecord::from(&RecordData::Txt(vec![b"v=spf1".to_vec(), vec![0xff]]));
        assert_eq!(
            serde_json::to_string(&txt).unwrap(),
            "{\"strings\":[\"v=spf1\",\"\u{fffd}\"],\"hex\":[\"763d73706631\",\"ff\"]}"
        );
    }

    #[test]
    fn control_bytes_are_escaped_for_the_terminal() {
        assert_eq!(escape_text("h1.crawl.test"), "h1.crawl.test");
        assert_eq!(escape_text("bad\u{1b}[31mname"), "bad\\u{1b}[31mname");
        assert_eq!(escape_text("tab\there\\"), "tab\\there\\\\");
    }
}
