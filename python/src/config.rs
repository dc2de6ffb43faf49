//! `crawldns.Resolver(...)`'s keyword options to a [`ResolverConfig`]. Every
//! option left out keeps the library's default, so the defaults live in
//! one place (crates/crawldns/src/config.rs).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crawldns::{Batching, CacheConfig, IpStrategy, NameServer, Protocol, ResolverConfig};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// How long stale answers are served with `serve_stale=True` (RFC 8767
/// suggests one to three days).
const SERVE_STALE_DEFAULT: Duration = Duration::from_secs(86_400);

/// The configuration `options` describe.
pub fn from_options(options: Option<&Bound<'_, PyDict>>) -> PyResult<ResolverConfig> {
    let mut builder = ResolverConfig::builder();
    let mut cache = Some(CacheConfig::default());
    let mut have_servers = false;
    let mut tls_name: Option<String> = None;
    let Some(options) = options else {
        return Err(no_servers());
    };
    for (key, value) in options.iter() {
        let key: String = key.extract()?;
        if value.is_none() {
            continue;
        }
        let value = &value;
        builder = match key.as_str() {
            "nameservers" | "tcp_nameservers" => {
                let tcp = key == "tcp_nameservers";
                for server in value.try_iter()? {
                    let mut server = nameserver(&server?)?;
                    if tcp && server.protocol == Protocol::Udp {
                        server.protocol = Protocol::Tcp;
                    }
                    builder = builder.push_nameserver(server);
                    have_servers = true;
                }
                builder
            }
            "tls_name" => {
                tls_name = Some(value.extract()?);
                builder
            }
            "ca_file" => builder.ca_file(Some(value.extract()?)),
            "doh_get" => builder.doh_get(value.extract()?),
            "resolv_conf" => {
                let path: std::path::PathBuf = value.extract()?;
                let before = builder.clone().build().nameservers.len();
                let builder = builder
                    .resolv_conf(&path)
                    .map_err(|e| PyValueError::new_err(e.to_string()))?;
                have_servers |= builder.clone().build().nameservers.len() > before;
                builder
            }
            "timeout" => builder.timeout(seconds(value, &key)?),
            "min_timeout" => builder.min_timeout(seconds(value, &key)?),
            "attempts" => builder.attempts(value.extract()?),
            "rotate" => builder.rotate(value.extract()?),
            "edns_payload" => builder.edns_payload(value.extract()?),
            "case_randomization" => builder.case_randomization(value.extract()?),
            "strategy" => builder.ip_strategy(strategy(&value.extract::<String>()?)?),
            "resolution_delay" => builder.resolution_delay(seconds(value, &key)?),
            "ipv6_egress" => builder.ipv6_egress(Some(value.extract()?)),
            "udp_sockets" => builder.udp_sockets(value.extract()?),
            "batching" => builder.batching(batching(&value.extract::<String>()?)?),
            "max_in_flight" => builder.max_in_flight(value.extract()?),
            "max_pending" => builder.max_pending(value.extract()?),
            "max_cname_depth" => builder.max_cname_depth(value.extract()?),
            "cache" => {
                if !value.extract::<bool>()? {
                    cache = None;
                }
                builder
            }
            _ => {
                // With cache=False the cache's options are checked, unused.
                let mut unused = CacheConfig::default();
                cache_option(cache.as_mut().unwrap_or(&mut unused), &key, value)?;
                builder
            }
        };
    }
    if !have_servers {
        return Err(no_servers());
    }
    let mut config = builder.cache(cache).build();
    for server in &mut config.nameservers {
        if server.protocol.is_encrypted() {
            server.tls_name.clone_from(&tls_name);
        }
    }
    Ok(config)
}

fn no_servers() -> PyErr {
    PyValueError::new_err(
        "crawldns.Resolver needs nameservers=[\"IP[:PORT]\", ...] or resolv_conf=PATH \
         (it never reads /etc/resolv.conf unless asked)",
    )
}

/// One of the cache's options.
fn cache_option(cache: &mut CacheConfig, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
    match key {
        "cache_size" => cache.max_entries = value.extract()?,
        "ttl_floor" => cache.min_ttl = seconds(value, key)?,
        "ttl_ceiling" => cache.max_ttl = seconds(value, key)?,
        "negative_ttl_ceiling" => cache.negative_max_ttl = seconds(value, key)?,
        "failure_ttl" => cache.failure_ttl = seconds(value, key)?,
        "prefetch" => cache.prefetch = value.extract()?,
        "serve_stale" => {
            cache.serve_stale = match value.extract::<bool>() {
                Ok(true) => Some(SERVE_STALE_DEFAULT),
                Ok(false) => None,
                Err(_) => Some(seconds(value, key)?),
            }
        }
        _ => {
            return Err(PyTypeError::new_err(format!(
                "crawldns.Resolver() got an unexpected option {key:?}"
            )))
        }
    }
    Ok(())
}

/// A duration in seconds (int or float, not negative).
fn seconds(value: &Bound<'_, PyAny>, key: &str) -> PyResult<Duration> {
    let secs: f64 = value.extract()?;
    Duration::try_from_secs_f64(secs).map_err(|_| {
        PyValueError::new_err(format!(
            "{key} must be a number of seconds >= 0, not {secs}"
        ))
    })
}

/// `"IP"`, `"IP:PORT"`, `"[IPv6]:PORT"` or `(IP, PORT)` (UDP, port 53 by
/// default), or a URL: `"tcp://IP"`, `"tls://IP[:853]"`,
/// `"https://IP[:443][/PATH]"`.
fn nameserver(value: &Bound<'_, PyAny>) -> PyResult<NameServer> {
    if let Ok((ip, port)) = value.extract::<(String, u16)>() {
        let ip: IpAddr = ip.parse().map_err(|_| bad_server(&ip))?;
        return Ok(NameServer::new(SocketAddr::new(ip, port), Protocol::Udp));
    }
    let text: String = value.extract()?;
    if text.contains("://") {
        return NameServer::from_url(&text).map_err(|e| PyValueError::new_err(e.to_string()));
    }
    let addr = match text.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => SocketAddr::new(text.parse().map_err(|_| bad_server(&text))?, 53),
    };
    Ok(NameServer::new(addr, Protocol::Udp))
}

fn bad_server(text: &str) -> PyErr {
    PyValueError::new_err(format!(
        "nameserver {text:?} is not an IP address (\"IP\", \"IP:PORT\", \"[IPv6]:PORT\", (IP, PORT) \
         or a URL such as \"tls://IP\")"
    ))
}

/// `strategy=`: `"v4"`, `"v6"`, `"both"`, `"prefer_v4"`, `"prefer_v6"`.
fn strategy(text: &str) -> PyResult<IpStrategy> {
    match text.replace('-', "_").as_str() {
        "v4" | "v4_only" => Ok(IpStrategy::V4Only),
        "v6" | "v6_only" => Ok(IpStrategy::V6Only),
        "both" => Ok(IpStrategy::Both),
        "prefer_v4" => Ok(IpStrategy::PreferV4),
        "prefer_v6" => Ok(IpStrategy::PreferV6),
        _ => Err(PyValueError::new_err(format!(
            "strategy must be \"v4\", \"v6\", \"both\", \"prefer_v4\" or \"prefer_v6\", not {text:?}"
        ))),
    }
}

/// `batching=`: `"off"`, `"when_busy"`, `"always"`.
fn batching(text: &str) -> PyResult<Batching> {
    match text.replace('-', "_").as_str() {
        "off" => Ok(Batching::Off),
        "when_busy" => Ok(Batching::WhenBusy),
        "always" => Ok(Batching::Always),
        _ => Err(PyValueError::new_err(format!(
            "batching must be \"off\", \"when_busy\" or \"always\", not {text:?}"
        ))),
    }
}
