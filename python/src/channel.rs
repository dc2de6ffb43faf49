//! Delivery of results to the event loop that asked.
//!
//! Each asyncio loop has one [`Channel`] (made by `crawldns/_loops.py`): a
//! queue of finished lookups and a socket pair whose read end the loop
//! watches with `add_reader`. The runtime thread posts a result and, when
//! the queue was empty, writes one byte; it never takes the GIL. The loop
//! then runs [`Channel::drain`], which sets the results of the waiting
//! futures, a whole batch per wake-up.
//!
//! A waiting future whose task is cancelled runs its done callback
//! ([`Interest`]), which forgets it and aborts the lookup's task on the
//! runtime. Lookups already in flight keep running for their other waiters
//! and the cache (single-flight moves the work into a task of its own).

use std::collections::HashMap;
use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::{intern, PyTraverseError, PyVisit};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::outcome::Outcome;
use crate::runtime::Generation;

/// A lookup's future, as it moves to the runtime.
pub type Work = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The part of a channel the runtime thread writes to.
#[derive(Debug)]
struct Mailbox {
    finished: Mutex<Vec<(u64, Outcome)>>,
    wake: UnixStream,
}

impl Mailbox {
    fn post(&self, id: u64, outcome: Outcome) {
        let was_empty = {
            let mut finished = self.finished.lock();
            finished.push((id, outcome));
            finished.len() == 1
        };
        if was_empty {
            // Non-blocking: a full socket already holds a wake-up, and an
            // error (the loop's side is gone) leaves nobody to wake.
            let _ = (&self.wake).write(&[1]);
        }
    }
}

/// Counts a resolver's lookups from Python whose task is still alive on
/// the runtime: up from [`InFlight::new`], down when the task's future is
/// dropped (finished, aborted or cancelled by `close()`).
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// One more in flight on `counter`.
    pub fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a channel needs to start a lookup on the runtime.
pub struct Submit {
    /// The lookup.
    pub work: Work,
    /// The name asked for (for the error when the resolver closes first).
    pub name: String,
    /// The runtime.
    pub handle: Handle,
    /// Turns true when the resolver is closed.
    pub closed: watch::Receiver<bool>,
    /// The resolver's in-flight count.
    pub in_flight: InFlight,
}

/// One asyncio loop's end of the delivery: see the module docs.
#[pyclass(module = "crawldns._native", frozen)]
pub struct Channel {
    mailbox: Arc<Mailbox>,
    read: UnixStream,
    waiting: Mutex<HashMap<u64, Waiting>>,
    next_id: AtomicU64,
    generation: Generation,
}

/// A future on the loop waiting for a task on the runtime.
struct Waiting {
    future: Py<PyAny>,
    task: AbortHandle,
}

#[pymethods]
impl Channel {
    #[new]
    fn new() -> PyResult<Self> {
        let (read, wake) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        wake.set_nonblocking(true)?;
        Ok(Self {
            mailbox: Arc::new(Mailbox {
                finished: Mutex::new(Vec::new()),
                wake,
            }),
            read,
            waiting: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            generation: Generation::current(),
        })
    }

    /// The descriptor the loop watches.
    fn fileno(&self) -> i32 {
        self.read.as_raw_fd()
    }

    /// False in a child made by `fork()` after this channel: the socket
    /// pair is shared with the parent, so the child makes its own.
    fn usable(&self) -> bool {
        self.generation.is_current()
    }

    /// Futures of this loop still waiting for a lookup.
    fn waiting(&self) -> usize {
        self.waiting.lock().len()
    }

    /// Sets the results of every finished lookup (the loop's reader).
    fn drain(&self, py: Python<'_>) {
        if !self.generation.is_current() {
            return;
        }
        let mut buf = [0u8; 64];
        loop {
            match (&self.read).read(&mut buf) {
                Ok(n) if n == buf.len() => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                _ => break,
            }
        }
        let finished = std::mem::take(&mut *self.mailbox.finished.lock());
        for (id, outcome) in finished {
            let Some(waiting) = self.waiting.lock().remove(&id) else {
                continue; // its waiter was cancelled
            };
            if let Err(err) = settle(py, waiting.future.bind(py), outcome) {
                err.write_unraisable(py, Some(waiting.future.bind(py)));
            }
        }
    }

    /// Forgets a waiting future and aborts its task (its done callback).
    fn forget(&self, id: u64) {
        if let Some(waiting) = self.waiting.lock().remove(&id) {
            waiting.task.abort();
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for waiting in self.waiting.lock().values() {
            visit.call(&waiting.future)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        for (_, waiting) in self.waiting.lock().drain() {
            waiting.task.abort();
        }
    }
}

/// The result or exception of `outcome` on `future`, unless it is already
/// done (cancelled, and its done callback has not run yet).
fn settle(py: Python<'_>, future: &Bound<'_, PyAny>, outcome: Outcome) -> PyResult<()> {
    if future.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match outcome.into_py(py) {
        Ok(value) => future.call_method1(intern!(py, "set_result"), (value,))?,
        Err(err) => future.call_method1(intern!(py, "set_exception"), (err.into_value(py),))?,
    };
    Ok(())
}

/// Starts `submit.work` on the runtime; its result comes back to `loop_`
/// through `channel`. Returns the loop's future.
pub fn submit(
    py: Python<'_>,
    loop_: &Bound<'_, PyAny>,
    channel: &Bound<'_, Channel>,
    submit: Submit,
) -> PyResult<Py<PyAny>> {
    let future = loop_.call_method0(intern!(py, "create_future"))?;
    let this = channel.get();
    let id = this.next_id.fetch_add(1, Ordering::Relaxed);
    let mailbox = this.mailbox.clone();
    let Submit {
        work,
        name,
        handle,
        mut closed,
        in_flight,
    } = submit;
    let task = handle.spawn(async move {
        // Dropped with the task when it is aborted (the future was
        // cancelled), and otherwise before the result is posted: a caller
        // that reads `pending` once it has its result sees this lookup
        // counted out.
        let in_flight = in_flight;
        let outcome = tokio::select! {
            biased;
            outcome = work => outcome,
            _ = closed.wait_for(|closed| *closed) => Outcome::Closed(name),
        };
        drop(in_flight);
        mailbox.post(id, outcome);
    });
    // The loop's thread (this one) drains the mailbox, so the result cannot
    // be looked for before it is registered here.
    this.waiting.lock().insert(
        id,
        Waiting {
            future: future.clone().unbind(),
            task: task.abort_handle(),
        },
    );
    let interest = Interest {
        channel: channel.clone().unbind(),
        id,
    };
    future.call_method1(intern!(py, "add_done_callback"), (interest,))?;
    Ok(future.unbind())
}

/// A waiting future's done callback: when the future was cancelled (or
/// completed by someone else), the lookup's task is aborted.
#[pyclass(module = "crawldns._native", frozen)]
struct Interest {
    channel: Py<Channel>,
    id: u64,
}

#[pymethods]
impl Interest {
    fn __call__(&self, py: Python<'_>, _future: &Bound<'_, PyAny>) {
        self.channel.bind(py).get().forget(self.id);
    }
}
