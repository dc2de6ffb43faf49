//! Does this machine have a route to IPv6 destinations? Asked without
//! sending a packet: connecting a UDP socket only consults the routing table.

use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;

/// True when a global IPv6 destination is routable from here. Probed once
/// per process; connecting a UDP socket sends no traffic.
pub fn has_ipv6_route() -> bool {
    static ROUTE: OnceLock<bool> = OnceLock::new();
    *ROUTE.get_or_init(|| {
        // 2001:db8::/32 is the documentation prefix (RFC 3849): routed by a
        // default route like any global address, and never contacted here.
        let target: SocketAddr = SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 53));
        UdpSocket::bind("[::]:0")
            .and_then(|s| s.connect(target))
            .is_ok()
    })
}
