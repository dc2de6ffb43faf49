//! A clean stop on SIGINT or SIGTERM: the first signal asks the command to
//! stop reading input and finish what is in flight; a second signal, or
//! the grace period running out, stops it at once. Either way the command
//! writes every completed record, prints its summary and exits 130.

use std::task::Poll;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

/// The default grace period for in-flight work after the first signal.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// The name of the next SIGINT or SIGTERM.
async fn next_signal(interrupt: &mut Signal, terminate: &mut Signal) -> &'static str {
    tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

/// Where the stop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    /// Stop reading input; finish what is in flight.
    Draining,
    /// Stop now.
    Forced,
}

/// The stop state, fed by the signal handlers.
#[derive(Debug, Clone)]
pub struct Shutdown {
    phase: watch::Receiver<Phase>,
}

impl Shutdown {
    /// Installs the SIGINT and SIGTERM handlers; after the first signal,
    /// in-flight work has `grace` to finish.
    pub fn install(grace: Duration) -> Result<Self> {
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let (tx, phase) = watch::channel(Phase::Running);
        tokio::spawn(async move {
            let first = next_signal(&mut interrupt, &mut terminate).await;
            eprintln!(
                "{first}: stopping: no new input; finishing what is in flight (up to {:.1} s; signal again to stop at once)",
                grace.as_secs_f64()
            );
            tx.send_replace(Phase::Draining);
            tokio::select! {
                second = next_signal(&mut interrupt, &mut terminate) => eprintln!("{second}: stopping now"),
                () = tokio::time::sleep(grace) => eprintln!("grace period over: stopping now"),
            }
            tx.send_replace(Phase::Forced);
        });
        Ok(Self { phase })
    }

    /// True once a stop was asked for.
    pub fn requested(&self) -> bool {
        *self.phase.borrow() >= Phase::Draining
    }

    /// Completes when in-flight work must be dropped.
    pub async fn forced(&self) {
        self.reached(Phase::Forced).await;
    }

    async fn reached(&self, phase: Phase) {
        let mut rx = self.phase.clone();
        // The sender lives as long as the handler task, i.e. the process.
        let _ = rx.wait_for(|p| *p >= phase).await;
        if *rx.borrow() < phase {
            std::future::pending::<()>().await;
        }
    }

    /// `future`, or `None` once a stop is asked for.
    pub async fn until_requested<T>(
        &self,
        future: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        self.until(Phase::Draining, future).await
    }

    /// `future`, or `None` once in-flight work must be dropped.
    pub async fn until_forced<T>(&self, future: impl std::future::Future<Output = T>) -> Option<T> {
        self.until(Phase::Forced, future).await
    }

    /// `future`, or `None` once `phase` is reached. The phase is read
    /// first, and a future ready at once is taken without registering for
    /// the signal's wake-up: the commands call this once per lookup.
    async fn until<T>(
        &self,
        phase: Phase,
        future: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        if *self.phase.borrow() >= phase {
            return None;
        }
        let mut future = std::pin::pin!(future);
        let first = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        if let Poll::Ready(value) = first {
            return Some(value);
        }
        tokio::select! {
            biased;
            () = self.reached(phase) => None,
            value = future => Some(value),
        }
    }
}
