//! Starting a scenario's testbed: its DNS server and its HTTP farm.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use crawldns_testbed::http_farm::{HttpFarm, HttpFarmConfig};
use crawldns_testbed::{AaaaAnswer, Delay, DnsServer, DnsServerConfig, Faults, ZoneConfig};

use super::scenario::Scenario;

impl Scenario {
    /// Starts this scenario's DNS server on `dns_addr` and its HTTP farm.
    pub(super) async fn start_testbed(
        &self,
        dns_addr: SocketAddr,
    ) -> Result<(DnsServer, HttpFarm)> {
        let mut delay = Delay::uniform(Duration::from_millis(self.dns_delay_ms));
        if let Some(text) = &self.dns_slow {
            let slow = crate::testbed_cmd::parse_slow(text).map_err(anyhow::Error::msg)?;
            delay = delay.with_slow(slow);
        }
        let dns = DnsServer::start(DnsServerConfig {
            addr: dns_addr,
            zone: ZoneConfig {
                hosts: self.hosts,
                // Every address the zone gives out is reachable: AAAA is the
                // host's own IPv4 address, mapped.
                aaaa: AaaaAnswer::MappedV4,
                ..ZoneConfig::default()
            },
            delay,
            faults: Faults {
                drop_fraction: self.dns_drop,
                ..Faults::default()
            },
            ..DnsServerConfig::default()
        })
        .await
        .with_context(|| format!("cannot start the testbed DNS server on {dns_addr}"))?;
        let farm = HttpFarm::start(HttpFarmConfig {
            hosts: self.hosts,
            port: 0,
            response_delay: Duration::from_millis(self.http_delay_ms),
            body_size: self.body_size,
            ..HttpFarmConfig::default()
        })
        .await
        .with_context(|| format!("cannot start the HTTP farm ({} hosts)", self.hosts))?;
        Ok((dns, farm))
    }
}
