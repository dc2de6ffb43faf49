//! The system path: glibc `getaddrinfo`, one blocking call, and a fixed pool
//! of threads making those calls (as Python's asyncio and most thread-pool
//! executors do). Here to be compared with and to probe the system's view,
//! not to resolve for crawldns.

use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use tokio::sync::oneshot;

/// Which addresses to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `AF_INET`: IPv4 only.
    V4,
    /// `AF_UNSPEC`: IPv4 and IPv6.
    Any,
}

/// Why a lookup through the system path failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaiFailure {
    /// The host contains a NUL byte: it cannot be passed to C.
    InvalidName,
    /// `EAI_NONAME`: the name does not exist.
    NoName,
    /// `EAI_NODATA`: the name exists without addresses.
    NoData,
    /// `EAI_AGAIN`: a temporary failure (the servers did not answer).
    Again,
    /// `EAI_FAIL`: a permanent failure of the servers.
    Fail,
    /// `EAI_MEMORY`: out of memory.
    Memory,
    /// `EAI_SYSTEM`: an I/O error.
    System,
    /// Another `EAI_*` code.
    Other(i32),
    /// The pool is shut down or its worker went away.
    PoolStopped,
}

/// A failed lookup: the reason and a message naming the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GaiError {
    /// What failed.
    pub failure: GaiFailure,
    /// `host: gai_strerror text`, or what happened to the pool.
    pub message: String,
}

/// One blocking `getaddrinfo(host, NULL, {family, SOCK_STREAM})` call (the
/// hints std's `lookup_host` uses). Addresses in the order glibc gives them,
/// repeats included.
pub fn getaddrinfo(host: &str, family: Family) -> Result<Vec<IpAddr>, GaiError> {
    let Ok(c_host) = CString::new(host) else {
        return Err(GaiError {
            failure: GaiFailure::InvalidName,
            message: format!("{host:?}: contains a NUL byte"),
        });
    };
    // SAFETY: an all-zero addrinfo is a valid "no hints" value; two fields are set.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = match family {
        Family::V4 => libc::AF_INET,
        Family::Any => libc::AF_UNSPEC,
    };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: a valid C string, hints and out-pointer; `list` is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut list) };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static string for any code.
        let text = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }.to_string_lossy();
        let failure = match rc {
            libc::EAI_NONAME => GaiFailure::NoName,
            libc::EAI_NODATA => GaiFailure::NoData,
            libc::EAI_AGAIN => GaiFailure::Again,
            libc::EAI_FAIL => GaiFailure::Fail,
            libc::EAI_MEMORY => GaiFailure::Memory,
            libc::EAI_SYSTEM => GaiFailure::System,
            other => GaiFailure::Other(other),
        };
        return Err(GaiError {
            failure,
            message: format!("{host}: {text}"),
        });
    }
    let mut addrs = Vec::new();
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: an element of the list getaddrinfo returned, walked
        // read-only and freed only below.
        let info = unsafe { &*cursor };
        if !info.ai_addr.is_null() {
            match info.ai_family {
                libc::AF_INET => {
                    // SAFETY: AF_INET entries point at a sockaddr_in.
                    let sin = unsafe { &*(info.ai_addr as *const libc::sockaddr_in) };
                    addrs.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        sin.sin_addr.s_addr,
                    ))));
                }
                libc::AF_INET6 => {
                    // SAFETY: AF_INET6 entries point at a sockaddr_in6.
                    let sin6 = unsafe { &*(info.ai_addr as *const libc::sockaddr_in6) };
                    addrs.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                }
                _ => {}
            }
        }
        cursor = info.ai_next;
    }
    // SAFETY: `list` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    Ok(addrs)
}

type Reply = oneshot::Sender<Result<Vec<IpAddr>, GaiError>>;
type Job = (String, Family, Reply);

/// [`getaddrinfo`] on a fixed number of threads sharing one queue.
pub struct GaiPool {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for GaiPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaiPool")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl GaiPool {
    /// Starts `threads` worker threads (at least one) named `gai-N`.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut handles = Vec::with_capacity(threads.max(1));
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            let handle = thread::Builder::new()
                .name(format!("gai-{i}"))
                .spawn(move || worker(&receiver))?;
            handles.push(handle);
        }
        Ok(Self {
            jobs: Mutex::new(Some(sender)),
            threads: handles,
        })
    }

    /// Queues one lookup and waits for a worker to answer it.
    pub async fn lookup(&self, host: &str, family: Family) -> Result<Vec<IpAddr>, GaiError> {
        let stopped = |why: &str| GaiError {
            failure: GaiFailure::PoolStopped,
            message: why.to_string(),
        };
        let (reply, answer) = oneshot::channel();
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs
                .as_ref()
                .is_some_and(|jobs| jobs.send((host.to_string(), family, reply)).is_ok()),
            Err(_) => false,
        };
        if !sent {
            return Err(stopped("getaddrinfo pool is shut down"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(stopped("getaddrinfo worker died")))
    }
}

fn worker(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok((host, family, reply)) = job else {
            return;
        };
        let _ = reply.send(getaddrinfo(&host, family));
    }
}

impl Drop for GaiPool {
    fn drop(&mut self) {
        // Closing the queue ends every worker after its current call.
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_literals_and_localhost_through_the_pool() {
        let pool = GaiPool::new(2).unwrap();
        let got = pool.lookup("127.0.0.1", Family::Any).await.unwrap();
        assert_eq!(got, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let local = pool.lookup("localhost", Family::V4).await.unwrap();
        assert!(local.iter().all(IpAddr::is_ipv4), "{local:?}");
        assert!(
            local.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{local:?}"
        );
        let err = pool.lookup("bad\0name", Family::Any).await.unwrap_err();
        assert_eq!(err.failure, GaiFailure::InvalidName);
    }
}
