//! The one tokio runtime of the process: a single worker thread
//! (`crawldns-runtime`) owns every resolver's sockets and timers. Python
//! threads only start lookups on it and read results delivered to their
//! event loops (see [`crate::channel`]); nothing here holds the GIL.
//!
//! After `fork()` the child has a copy of the runtime's memory but not its
//! thread, and its epoll instance is shared with the parent. The child
//! therefore never touches what it inherited: objects made before the fork
//! refuse to work ([`Generation::check`]), their sockets are leaked rather
//! than deregistered (deregistering would remove the parent's
//! registrations), and the first use in the child starts a fresh runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::PyResult;
use tokio::runtime::{Builder, Handle, Runtime};

/// Forks seen by this process's lineage; bumped in the child by a
/// `pthread_atfork` handler, so a check is one relaxed load.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// The runtime of the current generation. Runtimes are leaked on purpose:
/// a child must not drop the parent's (its worker thread does not exist
/// there), and a process has one runtime per generation.
static RUNTIME: Mutex<Option<(u64, &'static Runtime)>> = Mutex::new(None);

extern "C" fn after_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Installs the fork handler (once per process).
pub fn install_fork_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a handler that only does an atomic increment,
        // which is async-signal-safe and valid in a forked child.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
}

/// The fork generation an object was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl Generation {
    /// The current generation.
    pub fn current() -> Self {
        Self(FORKS.load(Ordering::Relaxed))
    }

    /// Whether this process is the one the object was made in.
    pub fn is_current(self) -> bool {
        self == Self::current()
    }

    /// An error for objects used in a child made by `fork()` after them.
    pub fn check(self, what: &str) -> PyResult<()> {
        if self.is_current() {
            Ok(())
        } else {
            Err(forked_error(what))
        }
    }
}

fn forked_error(what: &str) -> pyo3::PyErr {
    crate::errors::forked(format!(
        "this {what} was created before fork() and cannot be used in the child \
         process (its sockets and runtime thread belong to the parent); \
         create a new crawldns.Resolver in the child"
    ))
    .unwrap_or_else(|e| e)
}

/// The runtime of this process, started on first use (again after a fork).
pub fn handle() -> PyResult<Handle> {
    let generation = FORKS.load(Ordering::Relaxed);
    let mut slot = RUNTIME.lock();
    if let Some((made_in, runtime)) = *slot {
        if made_in == generation {
            return Ok(runtime.handle().clone());
        }
    }
    let runtime = Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .thread_name("crawldns-runtime")
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the crawldns runtime: {e}")))?;
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    *slot = Some((generation, runtime));
    Ok(runtime.handle().clone())
}

/// Tasks alive on this process's runtime (0 before it started).
pub fn alive_tasks() -> usize {
    let generation = FORKS.load(Ordering::Relaxed);
    match *RUNTIME.lock() {
        Some((made_in, runtime)) if made_in == generation => runtime.metrics().num_alive_tasks(),
        _ => 0,
    }
}
