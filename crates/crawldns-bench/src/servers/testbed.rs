//! The testbed DNS server on a dedicated thread (pinned to a CPU of its
//! own where asked), so its work is neither the client's CPU time nor in the
//! client's event loop.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use crawldns_testbed::{AaaaAnswer, Delay, DnsServer, DnsServerConfig, Totals, ZoneConfig};
use tokio::sync::{mpsc, oneshot};

use crate::measure::{pin_current_thread, ThreadCpuClock};

/// A running testbed server. Dropping it stops the server and its thread.
#[derive(Debug)]
pub struct TestbedThread {
    addr: SocketAddr,
    clock: ThreadCpuClock,
    requests: mpsc::UnboundedSender<oneshot::Sender<Totals>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The longest a testbed server thread lives, even if never stopped.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

impl TestbedThread {
    /// Starts a server for hosts `h0 … h<hosts-1>` on `addr` (port 0: any),
    /// answering after `delay`, with IPv4-mapped AAAA records.
    pub fn start(
        addr: SocketAddr,
        hosts: u32,
        delay: Duration,
        cpu: Option<usize>,
    ) -> Result<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (req_tx, mut req_rx) = mpsc::unbounded_channel::<oneshot::Sender<Totals>>();
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("testbed-dns".into())
            .spawn(move || {
                let setup = (|| -> Result<(tokio::runtime::Runtime, ThreadCpuClock)> {
                    if let Some(cpu) = cpu {
                        pin_current_thread(cpu)?;
                    }
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("testbed runtime")?;
                    Ok((runtime, ThreadCpuClock::current()?))
                })();
                let (runtime, clock) = match setup {
                    Ok(ok) => ok,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let config = DnsServerConfig {
                        addr,
                        zone: ZoneConfig {
                            hosts,
                            aaaa: AaaaAnswer::MappedV4,
                            ..ZoneConfig::default()
                        },
                        delay: Delay::uniform(delay),
                        ..DnsServerConfig::default()
                    };
                    let server = match DnsServer::start(config).await {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = ready_tx.send(Err(anyhow!("testbed DNS server: {e}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok((server.addr(), clock)));
                    // Serve until the handle is dropped (or, bounded, an hour).
                    let deadline = tokio::time::sleep(MAX_LIFETIME);
                    tokio::pin!(deadline);
                    loop {
                        tokio::select! {
                            Some(reply) = req_rx.recv() => {
                                let _ = reply.send(server.counters().totals());
                            }
                            _ = &mut stop_rx => break,
                            _ = &mut deadline => break,
                        }
                    }
                    server.shutdown();
                });
            })
            .context("spawning the testbed server thread")?;
        let (addr, clock) = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .context("testbed server did not start")??;
        Ok(Self {
            addr,
            clock,
            requests: req_tx,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The address the server answers on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CPU clock of the server's thread.
    pub fn cpu_clock(&self) -> ThreadCpuClock {
        self.clock
    }

    /// A handle that can ask the server for its counters from any runtime.
    pub fn counters(&self) -> CountersHandle {
        CountersHandle(Some(self.requests.clone()))
    }
}

impl Drop for TestbedThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Asks a [`TestbedThread`] for the server's counters.
#[derive(Debug, Clone)]
pub struct CountersHandle(Option<mpsc::UnboundedSender<oneshot::Sender<Totals>>>);

impl CountersHandle {
    /// A handle that has no server (counters unknown).
    pub fn none() -> Self {
        Self(None)
    }

    /// The server's totals, or `None` without a testbed server.
    pub async fn totals(&self) -> Option<Totals> {
        let requests = self.0.as_ref()?;
        let (tx, rx) = oneshot::channel();
        requests.send(tx).ok()?;
        rx.await.ok()
    }
}
