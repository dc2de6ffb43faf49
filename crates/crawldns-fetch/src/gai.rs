//! The system path: glibc `getaddrinfo` on a fixed pool of blocking threads
//! (as Python's asyncio and most async stacks do by default), and tokio's
//! `lookup_host` (its blocking pool). Here to be compared with, not used.

use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use crawldns::ErrorKind;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::host_resolver::{BoxFuture, DnsFailure, HostResolver};

type Job = (String, oneshot::Sender<Result<Arc<[IpAddr]>, DnsFailure>>);

/// `getaddrinfo` on `threads` dedicated threads.
pub struct GaiPool {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl GaiPool {
    /// Starts `threads` worker threads (32 is the default executor size of
    /// the Python async stacks crawlers use).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            let handle = thread::Builder::new()
                .name(format!("gai-{i}"))
                .spawn(move || loop {
                    let job = receiver.lock().recv();
                    let Ok((host, reply)) = job else { return };
                    let _ = reply.send(getaddrinfo(&host));
                })?;
            handles.push(handle);
        }
        Ok(Self {
            jobs: Mutex::new(Some(sender)),
            threads: handles,
        })
    }
}

impl Drop for GaiPool {
    fn drop(&mut self) {
        // Closing the channel ends every worker after its current call.
        self.jobs.lock().take();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl HostResolver for GaiPool {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Arc<[IpAddr]>, DnsFailure>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let sent = self
                .jobs
                .lock()
                .as_ref()
                .map(|jobs| jobs.send((host.to_string(), reply)));
            if !matches!(sent, Some(Ok(()))) {
                return Err(failure(
                    ErrorKind::Resource,
                    "getaddrinfo pool is shut down",
                ));
            }
            answer
                .await
                .unwrap_or_else(|_| Err(failure(ErrorKind::Resource, "getaddrinfo worker died")))
        })
    }

    fn name(&self) -> &'static str {
        "getaddrinfo"
    }
}

/// tokio's `lookup_host`: `getaddrinfo` on tokio's blocking pool.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioLookupHost;

impl HostResolver for TokioLookupHost {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Arc<[IpAddr]>, DnsFailure>> {
        Box::pin(async move {
            match tokio::net::lookup_host((host, 0)).await {
                Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect::<Vec<_>>().into()),
                Err(err) => Err(failure(ErrorKind::NxDomain, &err.to_string())),
            }
        })
    }

    fn name(&self) -> &'static str {
        "tokio-lookup_host"
    }
}

fn failure(kind: ErrorKind, message: &str) -> DnsFailure {
    DnsFailure {
        kind,
        message: message.to_string(),
    }
}

/// One blocking `getaddrinfo(host, NULL, {AF_UNSPEC, SOCK_STREAM})` call.
pub fn getaddrinfo(host: &str) -> Result<Arc<[IpAddr]>, DnsFailure> {
    let Ok(c_host) = CString::new(host) else {
        return Err(failure(ErrorKind::InvalidName, "host contains a NUL byte"));
    };
    // SAFETY: zeroed addrinfo is a valid "no hints" value; we set two fields.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings and pointers; `list` is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut list) };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static string for any code.
        let text = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
            .to_string_lossy()
            .into_owned();
        let kind = match rc {
            libc::EAI_NONAME => ErrorKind::NxDomain,
            libc::EAI_NODATA => ErrorKind::NoData,
            libc::EAI_AGAIN => ErrorKind::Timeout,
            libc::EAI_FAIL => ErrorKind::ServFail,
            libc::EAI_MEMORY => ErrorKind::Resource,
            libc::EAI_SYSTEM => ErrorKind::Io,
            _ => ErrorKind::Malformed,
        };
        return Err(failure(kind, &format!("{host}: {text}")));
    }
    let mut addrs = Vec::new();
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: getaddrinfo returned a valid linked list we walk read-only.
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
    let mut unique: Vec<IpAddr> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !unique.contains(&addr) {
            unique.push(addr);
        }
    }
    Ok(unique.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_literals_and_localhost_through_the_pool() {
        let pool = GaiPool::new(2).unwrap();
        let got = pool.resolve("127.0.0.1").await.unwrap();
        assert_eq!(&*got, &[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let local = pool.resolve("localhost").await.unwrap();
        assert!(
            local.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{local:?}"
        );
        let err = pool.resolve("bad\0name").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidName);
    }
}
