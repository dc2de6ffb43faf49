//! The crawldns testbed: a local authoritative DNS server with delay and fault
//! injection, and an HTTP host farm on loopback addresses.
//!
//! It depends on nothing of the resolver, so it can lie to it. Only loopback
//! addresses are ever bound or contacted, and the links of the network
//! namespaces it makes ([`separate_host`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use crawldns_testbed::{DnsServer, DnsServerConfig};
//! let server = DnsServer::start(DnsServerConfig::default()).await?;
//! println!("dig @{} -p {} h1.crawl.test", server.addr().ip(), server.addr().port());
//! # Ok(()) }
//! ```

pub mod counters;
pub mod dead_hosts;
pub mod dns_server;
mod doh_server;
pub mod faults;
pub mod hosts;
pub mod http_farm;
pub mod netns;
mod plan;
pub mod separate_host;
mod stream_server;
pub mod tls;
pub mod zone;

pub use counters::{ConnectionStats, Counters, Totals, Transport};
pub use dead_hosts::{refused_addr, BlackHole};
pub use dns_server::{DnsServer, DnsServerConfig, DnsServerError, ALPN_DOT, ALPN_H2};
pub use doh_server::{DNS_MESSAGE, DOH_PATH};
pub use faults::{Delay, Faults, RcodeFault, SlowNames};
pub use hosts::{host_name, host_v4, MAX_HOSTS, ZONE};
pub use tls::{TestCa, TlsError};
pub use zone::{AaaaAnswer, ZoneConfig, FORGED_V4};
