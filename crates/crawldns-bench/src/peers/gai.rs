//! The system resolver: glibc `getaddrinfo`, called from threads, as crawlers
//! built on thread-pool executors do.
//!
//! glibc reads its nameservers from `/etc/resolv.conf`, so these peers only
//! run inside the harness's network namespace, where that file names the test
//! server on 127.0.0.1:53 and the only interface is loopback. The
//! constructors refuse to run anywhere else, so no query can leave the
//! machine.

use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::oneshot;

use super::{Peer, PeerSetup};
use crate::names::Family;

/// Calls glibc `getaddrinfo` for `name` (`AF_INET` for [`Family::V4`],
/// `AF_UNSPEC` otherwise; `SOCK_STREAM`, as std's `lookup_host` does) and
/// returns the addresses in the order given.
pub fn getaddrinfo(name: &str, family: Family) -> Result<Vec<IpAddr>> {
    let c_name = CString::new(name).context("name contains NUL")?;
    // SAFETY: an all-zero addrinfo is a valid "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = match family {
        Family::V4 => libc::AF_INET,
        Family::Both => libc::AF_UNSPEC,
    };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string, hints and out-pointer.
    let rc = unsafe { libc::getaddrinfo(c_name.as_ptr(), std::ptr::null(), &hints, &mut list) };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static C string.
        let why = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) };
        bail!("getaddrinfo {name}: {}", why.to_string_lossy());
    }
    let mut ips = Vec::new();
    let mut node = list;
    while !node.is_null() {
        // SAFETY: `node` is an element of the list getaddrinfo returned,
        // freed only below.
        let info = unsafe { &*node };
        if !info.ai_addr.is_null() {
            match info.ai_family {
                libc::AF_INET => {
                    // SAFETY: AF_INET entries carry a sockaddr_in.
                    let sa = unsafe { &*(info.ai_addr as *const libc::sockaddr_in) };
                    ips.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))));
                }
                libc::AF_INET6 => {
                    // SAFETY: AF_INET6 entries carry a sockaddr_in6.
                    let sa = unsafe { &*(info.ai_addr as *const libc::sockaddr_in6) };
                    ips.push(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)));
                }
                _ => {}
            }
        }
        node = info.ai_next;
    }
    // SAFETY: `list` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    Ok(ips)
}

/// `getaddrinfo` on tokio's blocking pool: A lookups through
/// `spawn_blocking` (as `tokio::net::lookup_host` does internally, but with
/// `AF_INET`), dual-stack lookups through `tokio::net::lookup_host` itself.
#[derive(Debug)]
pub struct GaiTokioPeer;

impl GaiTokioPeer {
    /// Checks that the system resolver points at the test server only.
    pub fn new(setup: PeerSetup) -> Result<Self> {
        crate::netns::check_isolated(setup.server)?;
        Ok(Self)
    }
}

impl Peer for GaiTokioPeer {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        let name = name.to_string();
        tokio::task::spawn_blocking(move || getaddrinfo(&name, Family::V4))
            .await
            .context("blocking task")?
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((name, 0))
            .await
            .with_context(|| format!("lookup_host {name}"))?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

type Reply = oneshot::Sender<Result<Vec<IpAddr>>>;
type Job = (String, Family, Reply);

/// `getaddrinfo` on a fixed pool of threads sharing one queue, like the
/// default executor of Python's asyncio (`loop.getaddrinfo`).
pub struct GaiPoolPeer {
    queue: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for GaiPoolPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaiPoolPeer")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl GaiPoolPeer {
    /// Starts `threads` worker threads, after checking that the system
    /// resolver points at the test server only.
    pub fn new(setup: PeerSetup, threads: usize) -> Result<Self> {
        crate::netns::check_isolated(setup.server)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("gai-{i}"))
                .spawn(move || worker(&rx))
                .context("spawning a getaddrinfo thread")?;
            handles.push(handle);
        }
        Ok(Self {
            queue: Some(tx),
            threads: handles,
        })
    }

    async fn submit(&self, name: &str, family: Family) -> Result<Vec<IpAddr>> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .as_ref()
            .ok_or_else(|| anyhow!("pool stopped"))?
            .send((name.to_string(), family, reply))
            .map_err(|_| anyhow!("getaddrinfo pool stopped"))?;
        answer
            .await
            .map_err(|_| anyhow!("getaddrinfo thread went away"))?
    }
}

fn worker(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = match queue.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((name, family, reply)) = job else {
            return;
        };
        let _ = reply.send(getaddrinfo(&name, family));
    }
}

impl Drop for GaiPoolPeer {
    fn drop(&mut self) {
        self.queue = None;
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Peer for GaiPoolPeer {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        self.submit(name, Family::V4).await
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        self.submit(name, Family::Both).await
    }
}
