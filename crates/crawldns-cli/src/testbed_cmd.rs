//! `crawldns testbed`: runs the testbed's DNS server and HTTP host farm in
//! this process until SIGINT (Ctrl-C) or SIGTERM, then prints their counters.
//!
//! What it prints on stdout, in order: where everything is (the lines
//! starting `dns: ` and `http: ` carry the DNS address and the HTTP port, as
//! the first word after the prefix; with `--dot-addr`/`--doh-addr`, the lines
//! `dot: `, `doh: ` and `ca: ` carry the DNS-over-TLS address, the DoH URL
//! and the path of the test CA's certificate), a line that is exactly
//! `ready` once everything is serving, and after the signal a summary of the
//! counters.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use crawldns_testbed::http_farm::{HttpFarm, HttpFarmConfig};
use crawldns_testbed::{
    host_v4, AaaaAnswer, Delay, DnsServer, DnsServerConfig, Faults, RcodeFault, SlowNames,
    Transport, ZoneConfig, DOH_PATH, MAX_HOSTS, ZONE,
};
use hickory_proto::rr::RecordType;
use tokio::signal::unix::{signal, SignalKind};

/// Options of `crawldns testbed`.
#[derive(Debug, Clone, Args)]
pub struct TestbedArgs {
    /// Number of synthetic hosts: h0 .. h<N-1>.crawl.test, each with its own
    /// address in 127.0.0.0/8 (h0 = 127.1.0.1) and, unless --no-http, its own
    /// HTTP listener there.
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_HOSTS)))]
    pub hosts: u32,

    /// Where the DNS server listens, UDP and TCP. Must be a loopback address;
    /// port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5353",
          value_parser = parse_loopback_addr)]
    pub dns_addr: SocketAddr,

    /// Also serve DNS over TLS (RFC 7858) here, with a certificate from a
    /// test CA made at start (valid for `*.crawl.test`, `localhost` and
    /// 127.0.0.1). Loopback only; port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    pub dot_addr: Option<SocketAddr>,

    /// Also serve DNS over HTTPS (RFC 8484, HTTP/2, path /dns-query) here,
    /// with the same test certificate. Loopback only; port 0 picks a free
    /// port.
    #[arg(long, value_name = "ADDR")]
    pub doh_addr: Option<SocketAddr>,

    /// Where to write the test CA's certificate (PEM) that DoT/DoH clients
    /// must trust. Default: crawldns-testbed-ca-<PID>.pem in the temporary
    /// directory.
    #[arg(long, value_name = "PATH")]
    pub ca_out: Option<PathBuf>,

    /// Delay before every DNS answer, in milliseconds (timer-driven: many
    /// delayed queries at once cost nothing).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub dns_delay_ms: u64,

    /// Delay before AAAA answers, in milliseconds, overriding --dns-delay-ms
    /// for that type (e.g. to model a slow IPv6 path).
    #[arg(long, value_name = "MS")]
    pub dns_delay_aaaa_ms: Option<u64>,

    /// A long tail: this fraction of the names (the same ones every run)
    /// answered after a delay of their own between MIN and MAX ms, e.g.
    /// `0.02:1000-3000` for 2% of names at 1 to 3 s.
    #[arg(long, value_name = "FRACTION:MIN-MAX", value_parser = parse_slow)]
    pub dns_slow: Option<SlowNames>,

    /// TTL of positive records, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub ttl: u32,

    /// Leave the zone's SOA out of negative answers (NXDOMAIN/NODATA), so
    /// resolvers have no negative-caching TTL (RFC 2308).
    #[arg(long)]
    pub no_negative_soa: bool,

    /// What AAAA records of h<N> hold: `loopback` is ::1 for every host,
    /// `mapped` is ::ffff:127.x.y.z, the host's own IPv4 address.
    #[arg(long, value_enum, value_name = "KIND", default_value_t = AaaaKind::Loopback)]
    pub aaaa: AaaaKind,

    /// The port every HTTP host listens on (0 picks a port free on all of
    /// them).
    #[arg(long, value_name = "PORT", default_value_t = 8080)]
    pub http_port: u16,

    /// Delay before every HTTP response's headers, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub http_delay_ms: u64,

    /// Body size of ordinary HTTP responses, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub body_size: usize,

    /// Run the DNS server only, without the HTTP farm.
    #[arg(long)]
    pub no_http: bool,

    /// Fault injection for the DNS server.
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// The DNS server's fault switches (all off by default).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "DNS faults")]
pub struct FaultArgs {
    /// Silently drop this fraction of queries (0 to 1), UDP and TCP.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0, value_parser = parse_fraction)]
    pub drop: f64,

    /// Answer every query with SERVFAIL.
    #[arg(long, conflicts_with = "refused")]
    pub servfail: bool,

    /// Answer every query with REFUSED.
    #[arg(long)]
    pub refused: bool,

    /// Answer every UDP query with TC=1 and no records (TCP answers normally).
    #[arg(long)]
    pub truncate: bool,

    /// Answer with bytes that are not a valid DNS message.
    #[arg(long)]
    pub malformed: bool,

    /// Send a forged answer with the wrong ID before each genuine UDP answer.
    #[arg(long)]
    pub wrong_id: bool,

    /// Send a forged answer for a different name before each genuine UDP
    /// answer.
    #[arg(long)]
    pub wrong_question: bool,

    /// Send a forged answer from another source port before each genuine UDP
    /// answer.
    #[arg(long)]
    pub wrong_port: bool,

    /// Receive and count queries but never answer.
    #[arg(long)]
    pub down: bool,

    /// TCP, DoT: close each connection after it carried N answers; queries
    /// still pending on it stay unanswered. DoH: send GOAWAY after N
    /// answers; requests it already accepted are still answered, later
    /// ones must go on a new connection.
    #[arg(long, value_name = "N")]
    pub close_after: Option<u32>,

    /// TCP, DoT, DoH: after N answers on a connection, send half of the
    /// next one and then nothing more (DoH: half of each later body).
    #[arg(long, value_name = "N")]
    pub stall_after: Option<u32>,
}

/// What AAAA records hold (`--aaaa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AaaaKind {
    /// `::1` for every host.
    Loopback,
    /// `::ffff:127.x.y.z`, the IPv4-mapped form of the host's own address.
    Mapped,
}

impl From<AaaaKind> for AaaaAnswer {
    fn from(kind: AaaaKind) -> Self {
        match kind {
            AaaaKind::Loopback => AaaaAnswer::Loopback,
            AaaaKind::Mapped => AaaaAnswer::MappedV4,
        }
    }
}

/// Parses `--dns-slow`: `FRACTION:MIN-MAX`, the delays in milliseconds.
pub(crate) fn parse_slow(text: &str) -> Result<SlowNames, String> {
    let usage = || format!("expected FRACTION:MIN-MAX (e.g. 0.02:1000-3000), not {text:?}");
    let (fraction, range) = text.trim().split_once(':').ok_or_else(usage)?;
    let (min, max) = range.split_once('-').ok_or_else(usage)?;
    let fraction = parse_fraction(fraction)?;
    let ms = |v: &str| v.trim().parse::<u64>().map_err(|_| usage());
    let (min, max) = (ms(min)?, ms(max)?);
    if min > max {
        return Err(format!(
            "the slow delays go from MIN to MAX, and {min} > {max}"
        ));
    }
    Ok(SlowNames {
        fraction,
        min: Duration::from_millis(min),
        max: Duration::from_millis(max),
    })
}

/// Parses a fraction (`--drop`, `--dns-drop`): a number from 0 to 1.
pub(crate) fn parse_fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("the fraction must be a number from 0 to 1, not {text:?}"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "the fraction must be from 0 to 1 (0.1 is one in ten), not {text}"
        ))
    }
}

impl FaultArgs {
    /// The testbed's fault settings these switches stand for.
    fn to_faults(&self) -> Faults {
        let rcode = if self.servfail {
            Some(RcodeFault::ServFail)
        } else if self.refused {
            Some(RcodeFault::Refused)
        } else {
            None
        };
        Faults {
            drop_fraction: self.drop,
            rcode,
            truncate: self.truncate,
            malformed: self.malformed,
            wrong_id: self.wrong_id,
            wrong_question: self.wrong_question,
            wrong_port: self.wrong_port,
            down: self.down,
            close_after: self.close_after,
            stall_after: self.stall_after,
        }
    }

    /// The active faults, as flags, for the banner.
    fn describe(&self) -> String {
        let mut active = Vec::new();
        if self.drop > 0.0 {
            active.push(format!("--drop {}", self.drop));
        }
        let switches = [
            (self.servfail, "--servfail"),
            (self.refused, "--refused"),
            (self.truncate, "--truncate"),
            (self.malformed, "--malformed"),
            (self.wrong_id, "--wrong-id"),
            (self.wrong_question, "--wrong-question"),
            (self.wrong_port, "--wrong-port"),
            (self.down, "--down"),
        ];
        active.extend(
            switches
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, flag)| (*flag).to_owned()),
        );
        if let Some(n) = self.close_after {
            active.push(format!("--close-after {n}"));
        }
        if let Some(n) = self.stall_after {
            active.push(format!("--stall-after {n}"));
        }
        if active.is_empty() {
            "none".to_owned()
        } else {
            active.join(" ")
        }
    }
}

impl TestbedArgs {
    /// The DNS server's configuration.
    fn dns_config(&self) -> DnsServerConfig {
        let mut delay = Delay::uniform(Duration::from_millis(self.dns_delay_ms));
        if let Some(ms) = self.dns_delay_aaaa_ms {
            delay = delay.with_type(RecordType::AAAA, Duration::from_millis(ms));
        }
        if let Some(slow) = self.dns_slow {
            delay = delay.with_slow(slow);
        }
        DnsServerConfig {
            addr: self.dns_addr,
            zone: ZoneConfig {
                hosts: self.hosts,
                ttl: self.ttl,
                negative_soa: !self.no_negative_soa,
                aaaa: self.aaaa.into(),
                ..ZoneConfig::default()
            },
            delay,
            faults: self.faults.to_faults(),
            dot_addr: self.dot_addr,
            doh_addr: self.doh_addr,
            tls: None,
        }
    }

    /// The HTTP farm's configuration.
    fn farm_config(&self) -> HttpFarmConfig {
        HttpFarmConfig {
            hosts: self.hosts,
            port: self.http_port,
            response_delay: Duration::from_millis(self.http_delay_ms),
            body_size: self.body_size,
            ..HttpFarmConfig::default()
        }
    }
}

/// Runs `crawldns testbed` until SIGINT or SIGTERM.
pub async fn run(args: TestbedArgs) -> Result<()> {
    if !args.no_http {
        raise_fd_limit();
    }
    // Before anything is announced, so that a signal sent right after
    // `ready` stops the testbed cleanly instead of killing the process.
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;

    let dns = DnsServer::start(args.dns_config())
        .await
        .context("cannot start the DNS server")?;
    tracing::info!(addr = %dns.addr(), recv_buffer = dns.recv_buffer(), "DNS server up");
    let ca_path = match dns.tls() {
        Some(ca) => {
            let path = args.ca_out.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("crawldns-testbed-ca-{}.pem", std::process::id()))
            });
            std::fs::write(&path, ca.ca_pem()).with_context(|| {
                format!("cannot write the test CA certificate to {}", path.display())
            })?;
            Some(path)
        }
        None => None,
    };

    let farm = if args.no_http {
        None
    } else {
        let farm = HttpFarm::start(args.farm_config()).await.with_context(|| {
            format!(
                "cannot start the HTTP farm ({} hosts on port {})",
                args.hosts, args.http_port
            )
        })?;
        tracing::info!(hosts = farm.hosts(), port = farm.port(), "HTTP farm up");
        Some(farm)
    };

    print_stdout(&banner(&args, &dns, farm.as_ref(), ca_path.as_deref()))?;

    let signal_name = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
    };
    tracing::info!(signal = signal_name, "stopping");

    let summary = summary(signal_name, &dns, farm.as_ref());
    if let Some(farm) = farm {
        farm.shutdown().await;
    }
    dns.shutdown();
    if args.ca_out.is_none() {
        if let Some(path) = &ca_path {
            let _ = std::fs::remove_file(path);
        }
    }
    print_stdout(&summary)
}

/// Where everything is, ending in the `ready` line.
fn banner(
    args: &TestbedArgs,
    dns: &DnsServer,
    farm: Option<&HttpFarm>,
    ca_path: Option<&std::path::Path>,
) -> String {
    let hosts = args.hosts;
    let last = hosts.saturating_sub(1);
    let example = last.min(1);
    let addr_of = |n: u32| host_v4(n).map_or_else(|| "?".to_owned(), |ip| ip.to_string());
    let aaaa = match args.aaaa {
        AaaaKind::Loopback => "::1",
        AaaaKind::Mapped => "::ffff:<A>",
    };
    let dns_addr = dns.addr();

    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        text,
        "zone: {ZONE} with {hosts} hosts h0 .. h{last} (A h0 = {}, h{last} = {}; AAAA {aaaa}; ttl {}s)",
        addr_of(0),
        addr_of(last),
        args.ttl,
    );
    let _ = writeln!(text, "dns: {dns_addr} (UDP and TCP)");
    let _ = writeln!(
        text,
        "  dig @{} -p {} h{example}.crawl.test",
        dns_addr.ip(),
        dns_addr.port()
    );
    let _ = writeln!(text, "  faults: {}", args.faults.describe());
    if let Some(dot) = dns.dot_addr() {
        let _ = writeln!(
            text,
            "dot: {dot} (DNS over TLS; name localhost or *.crawl.test)"
        );
        if let Some(ca) = ca_path {
            let _ = writeln!(
                text,
                "  kdig @{} -p {} +tls-ca={} +tls-hostname=localhost h{example}.crawl.test",
                dot.ip(),
                dot.port(),
                ca.display()
            );
        }
    }
    if let Some(doh) = dns.doh_addr() {
        let _ = writeln!(
            text,
            "doh: https://{doh}{DOH_PATH} (DNS over HTTPS, HTTP/2; name localhost or *.crawl.test)"
        );
        if let Some(ca) = ca_path {
            let _ = writeln!(
                text,
                "  kdig @{} -p {} +https=/dns-query +tls-ca={} +tls-hostname=localhost h{example}.crawl.test",
                doh.ip(),
                doh.port(),
                ca.display()
            );
        }
    }
    if let Some(ca) = ca_path {
        let _ = writeln!(text, "ca: {} (the test CA to trust)", ca.display());
    }
    match farm {
        Some(farm) => {
            let port = farm.port();
            let _ = writeln!(
                text,
                "http: port {port} on {} hosts, {} .. {} (h0 .. h{last})",
                farm.hosts(),
                addr_of(0),
                addr_of(last),
            );
            let _ = writeln!(
                text,
                "  url: http://h<N>.crawl.test:{port}/ (host N answers on its own address)"
            );
            let _ = writeln!(
                text,
                "  curl --resolve h{example}.crawl.test:{port}:{} http://h{example}.crawl.test:{port}/",
                addr_of(example),
            );
        }
        None => {
            let _ = writeln!(text, "http: off (--no-http)");
        }
    }
    let _ = writeln!(text, "ready");
    text
}

/// The counters after the run.
fn summary(signal_name: &str, dns: &DnsServer, farm: Option<&HttpFarm>) -> String {
    let totals = dns.counters().totals();
    let kernel_drops = dns
        .kernel_drops()
        .map_or_else(|| "n/a".to_owned(), |n| n.to_string());
    let mut text = String::new();
    let _ = writeln!(text, "stopped by {signal_name}; summary:");
    let _ = writeln!(
        text,
        "  dns queries: udp {}, tcp {} ({} tcp connections), unparsable {}",
        totals.udp_queries, totals.tcp_queries, totals.tcp_connections, totals.unparsable
    );
    if dns.dot_addr().is_some() || dns.doh_addr().is_some() {
        let counters = dns.counters();
        let _ = writeln!(
            text,
            "  dns queries: dot {} ({} connections), doh {} ({} connections)",
            totals.tls_queries,
            counters.connection_count(Transport::Tls),
            totals.https_queries,
            counters.connection_count(Transport::Https),
        );
    }
    let _ = writeln!(
        text,
        "  dns answers: responses {}, dropped {}, forged {}, kernel drops {kernel_drops}",
        totals.responses, totals.dropped, totals.forgeries
    );
    match farm {
        Some(farm) => {
            let stats = farm.stats();
            let _ = writeln!(
                text,
                "  http: requests {}, connections {}, max concurrent {}, accept errors {}",
                stats.total.requests,
                stats.total.connections,
                stats.total.max_concurrent_connections,
                stats.accept_errors
            );
        }
        None => {
            let _ = writeln!(text, "  http: off");
        }
    }
    text
}

/// Writes `text` to stdout and flushes it.
fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// Raises the soft open-file limit to the hard one: the farm holds one
/// listener per host plus every open connection. Failure is only logged: a
/// farm of many hosts that hits the limit reports it itself.
pub fn raise_fd_limit() {
    match crawldns_sys::rlimit::raise_fd_limit() {
        Ok(limit) if limit.now > limit.before => tracing::debug!(
            from = limit.before,
            to = limit.now,
            "raised the open-file limit"
        ),
        Ok(_) => {}
        Err(err) => tracing::debug!("cannot raise the open-file limit: {err}"),
    }
}

/// Parses `--dns-addr`: a socket address on loopback (a bad command line,
/// exit 2, otherwise; nothing is bound).
fn parse_loopback_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("{text:?} is not an address with a port, e.g. 127.0.0.1:5353"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "{addr} is not a loopback address: the testbed serves on loopback only (127.0.0.0/8, ::1)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_fraction_is_checked() {
        assert_eq!(parse_fraction("0"), Ok(0.0));
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert_eq!(parse_fraction("1"), Ok(1.0));
        for bad in ["2", "-0.1", "NaN", "inf", "", "half"] {
            let err = parse_fraction(bad).expect_err(bad);
            assert!(err.contains("the fraction must be"), "{err}");
        }
    }

    #[test]
    fn slow_names_are_a_fraction_and_a_range() {
        let slow = parse_slow("0.02:1000-3000").unwrap();
        assert_eq!(slow.fraction, 0.02);
        assert_eq!(
            (slow.min, slow.max),
            (Duration::from_millis(1000), Duration::from_millis(3000))
        );
        for (bad, says) in [
            ("0.02", "expected FRACTION:MIN-MAX"),
            ("0.02:1000", "expected FRACTION:MIN-MAX"),
            ("0.02:a-b", "expected FRACTION:MIN-MAX"),
            ("2:1-2", "the fraction must be"),
            ("0.1:3000-1000", "3000 > 1000"),
        ] {
            let err = parse_slow(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn switches_map_onto_faults() {
        let faults = FaultArgs {
            drop: 0.5,
            servfail: false,
            refused: true,
            truncate: true,
            malformed: false,
            wrong_id: false,
            wrong_question: false,
            wrong_port: true,
            down: false,
            close_after: Some(3),
            stall_after: None,
        };
        assert_eq!(
            faults.to_faults(),
            Faults {
                drop_fraction: 0.5,
                rcode: Some(RcodeFault::Refused),
                truncate: true,
                wrong_port: true,
                close_after: Some(3),
                ..Faults::default()
            }
        );
        assert_eq!(
            faults.describe(),
            "--drop 0.5 --refused --truncate --wrong-port --close-after 3"
        );
    }
}
