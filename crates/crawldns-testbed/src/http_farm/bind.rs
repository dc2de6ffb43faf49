//! Binding one listener per host address, all on one port.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use super::config::FarmError;
use crate::hosts::{host_v4, MAX_HOSTS};

/// How many times [`HttpFarm::start`] picks a new port when `port` is 0 and
/// the port it picked is taken on some host address.
const PORT_ATTEMPTS: u32 = 8;

/// Listen backlog of every host listener.
const BACKLOG: i32 = 1024;

pub(super) fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Why binding one round of listeners failed.
struct BindFailure {
    host: u32,
    addr: SocketAddr,
    source: io::Error,
}

/// Binds every host, picking a common port if `port` is 0.
pub(super) fn bind_all(hosts: u32, port: u16) -> Result<Vec<(TcpListener, SocketAddr)>, FarmError> {
    if hosts == 0 {
        return Err(FarmError::NoHosts);
    }
    if hosts > MAX_HOSTS {
        return Err(FarmError::TooManyHosts {
            requested: hosts,
            max: MAX_HOSTS,
        });
    }
    let attempts = if port == 0 { PORT_ATTEMPTS } else { 1 };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let failure = match bind_round(hosts, port) {
            Ok(listeners) => return Ok(listeners),
            Err(failure) => failure,
        };
        let BindFailure { host, addr, source } = failure;
        if is_fd_exhaustion(&source) {
            return Err(FarmError::TooManyOpenFiles {
                addr,
                host,
                hosts,
                source,
            });
        }
        // Only a port that is taken on some other host address is worth a
        // new pick; host 0 bound with port 0 cannot be "taken".
        let retry = port == 0
            && host != 0
            && source.kind() == io::ErrorKind::AddrInUse
            && attempt < attempts;
        if retry {
            continue;
        }
        if port == 0 && source.kind() == io::ErrorKind::AddrInUse {
            return Err(FarmError::NoCommonPort {
                hosts,
                attempts: attempt,
                addr,
                host,
                source,
            });
        }
        return Err(FarmError::Bind { addr, host, source });
    }
}

/// One attempt at binding every host. With `port == 0`, host 0 gets a fresh
/// port and every other host binds that one.
fn bind_round(hosts: u32, port: u16) -> Result<Vec<(TcpListener, SocketAddr)>, BindFailure> {
    let mut listeners = Vec::with_capacity(usize::try_from(hosts).unwrap_or(0));
    let mut port = port;
    for host in 0..hosts {
        let Some(ip) = host_v4(host) else {
            // Unreachable: `hosts <= MAX_HOSTS` was checked.
            return Err(BindFailure {
                host,
                addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
                source: io::Error::new(io::ErrorKind::InvalidInput, "host has no address"),
            });
        };
        debug_assert!(ip.is_loopback());
        let addr = SocketAddrV4::new(ip, port);
        let (listener, local) = bind_one(addr).map_err(|source| BindFailure {
            host,
            addr: addr.into(),
            source,
        })?;
        port = local.port();
        listeners.push((listener, local));
    }
    Ok(listeners)
}

/// A non-blocking listener on `addr` registered with the current runtime,
/// and the address it is bound to.
pub(super) fn bind_one(addr: SocketAddrV4) -> io::Result<(TcpListener, SocketAddr)> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    // Lets a restarted farm reuse a port that still has TIME_WAIT
    // connections; it never lets two listeners share an address.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(addr).into())?;
    socket.listen(BACKLOG)?;
    let listener = TcpListener::from_std(socket.into())?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
