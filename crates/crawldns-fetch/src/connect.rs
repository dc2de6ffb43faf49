//! Connection attempts per RFC 8305 §5 ("happy eyeballs"): addresses in the
//! resolver's order, the next attempt started after a delay or as soon as
//! the previous one fails, earlier attempts kept running; the first
//! connection wins and the others are dropped.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// RFC 8305's recommended connection-attempt delay.
pub const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to one of `addrs` (in order) on `port`.
pub async fn happy_connect(
    addrs: &[IpAddr],
    port: u16,
    attempt_delay: Duration,
) -> io::Result<(TcpStream, SocketAddr)> {
    let mut remaining = addrs.iter().map(|ip| SocketAddr::new(*ip, port));
    let mut attempts: JoinSet<(SocketAddr, io::Result<TcpStream>)> = JoinSet::new();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no addresses to connect to");
    let start = |attempts: &mut JoinSet<_>, addr: SocketAddr| {
        attempts.spawn(async move { (addr, TcpStream::connect(addr).await) });
    };
    match remaining.next() {
        Some(first) => start(&mut attempts, first),
        None => return Err(last_error),
    }
    let mut more = true;
    loop {
        let delay = tokio::time::sleep(attempt_delay);
        tokio::select! {
            finished = attempts.join_next() => match finished {
                Some(Ok((addr, Ok(stream)))) => {
                    let _ = stream.set_nodelay(true);
                    return Ok((stream, addr));
                }
                Some(Ok((_, Err(err)))) => {
                    last_error = err;
                    // A failure starts the next attempt at once.
                    if attempts.is_empty() {
                        match remaining.next() {
                            Some(next) => start(&mut attempts, next),
                            None => return Err(last_error),
                        }
                    }
                }
                Some(Err(join)) => last_error = io::Error::other(join.to_string()),
                None => match remaining.next() {
                    Some(next) => start(&mut attempts, next),
                    None => return Err(last_error),
                },
            },
            _ = delay, if more => match remaining.next() {
                Some(next) => start(&mut attempts, next),
                None => more = false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn falls_through_refused_addresses_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // ::1 and 127.0.0.3 refuse (nothing listens there on this port).
        let addrs: Vec<IpAddr> = ["::1", "127.0.0.3", "127.0.0.1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let started = std::time::Instant::now();
        let (_, addr) = happy_connect(&addrs, port, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(addr, SocketAddr::new("127.0.0.1".parse().unwrap(), port));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "refusals must not wait for the delay"
        );
    }

    #[tokio::test]
    async fn all_refused_is_an_error() {
        let addrs: Vec<IpAddr> = vec!["127.0.0.3".parse().unwrap()];
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = happy_connect(&addrs, port, DEFAULT_ATTEMPT_DELAY)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(happy_connect(&[], port, DEFAULT_ATTEMPT_DELAY)
            .await
            .is_err());
    }
}
