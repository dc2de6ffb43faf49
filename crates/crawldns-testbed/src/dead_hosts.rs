//! Hosts that are down, two ways a crawler meets them: a blackholed
//! address, where a connection attempt hangs until the client gives up,
//! and a refused one, where it fails at once.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// Connections held to fill the accept queue at most.
const MAX_FILLERS: usize = 16;

/// A listener that never accepts and whose accept queue is full: the
/// kernel drops further SYNs, so a connection attempt hangs as to a
/// blackholed address. Only loopback addresses are accepted.
#[derive(Debug)]
pub struct BlackHole {
    addr: SocketAddr,
    _listener: Socket,
    _fillers: Vec<TcpStream>,
}

impl BlackHole {
    /// Binds `addr` (loopback; port 0 picks one) with the smallest backlog
    /// and fills its queue.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the testbed only binds loopback addresses",
            ));
        }
        let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        listener.set_reuse_address(true)?;
        listener.bind(&addr.into())?;
        listener.listen(0)?;
        let addr = listener
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("the listener has no socket address"))?;
        let mut fillers = Vec::new();
        while fillers.len() < MAX_FILLERS {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(stream) => fillers.push(stream),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Ok(Self {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(
            "the accept queue did not fill: connections would not hang",
        ))
    }

    /// The address connections hang on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// An address on loopback `ip` where nothing listens: connecting is
/// refused at once.
pub fn refused_addr(ip: IpAddr) -> io::Result<SocketAddr> {
    if !ip.is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the testbed only uses loopback addresses",
        ));
    }
    let listener = TcpListener::bind((ip, 0))?;
    listener.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_black_hole_hangs_and_a_refused_address_refuses() {
        let hole = BlackHole::bind("127.0.77.1:0".parse().unwrap()).unwrap();
        let err = TcpStream::connect_timeout(&hole.addr(), Duration::from_millis(300)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let refused = refused_addr("127.0.77.2".parse().unwrap()).unwrap();
        let err = TcpStream::connect(refused).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(BlackHole::bind("10.0.0.1:80".parse().unwrap()).is_err());
    }
}
