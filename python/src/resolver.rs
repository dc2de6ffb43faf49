//! `crawldns._native.Resolver`: the library's resolver behind the asyncio
//! wrapper of `crawldns/__init__.py`.
//!
//! A call first runs the lookup right here, on the caller's thread, for as
//! long as it needs no waiting: a cache hit ends there and its value is
//! returned at once (no future, no thread hop). A lookup that must wait
//! (for the network or another lookup of the same name) moves, as it is,
//! onto the runtime thread, and the caller gets an asyncio future that the
//! loop's [`crate::channel::Channel`] completes.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crawldns::{PrewarmOptions, QueryType};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::channel::{self, Channel, InFlight, Submit, Work};
use crate::outcome::Outcome;
use crate::runtime::Generation;

/// The resolver of one `crawldns.Resolver`.
#[pyclass(module = "crawldns._native", name = "Resolver")]
pub struct NativeResolver {
    /// `None` once closed.
    inner: Option<crawldns::Resolver>,
    handle: Handle,
    generation: Generation,
    closed: watch::Sender<bool>,
    in_flight: Arc<AtomicUsize>,
}

#[pymethods]
impl NativeResolver {
    /// A resolver with the keyword options of `crawldns.Resolver`.
    #[new]
    #[pyo3(signature = (**options))]
    fn new(options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let config = crate::config::from_options(options)?;
        let handle = crate::runtime::handle()?;
        // The resolver registers its sockets with the runtime it is made in.
        let inner = {
            let _runtime = handle.enter();
            crawldns::Resolver::new(config).map_err(|e| PyValueError::new_err(e.to_string()))?
        };
        Ok(Self {
            inner: Some(inner),
            handle,
            generation: Generation::current(),
            closed: watch::Sender::new(false),
            in_flight: Arc::default(),
        })
    }

    /// The addresses of `host` (a list of strings, in the order to connect
    /// to them), or an asyncio future of them. `family` is `AF_UNSPEC`
    /// (the configured strategy), `AF_INET` or `AF_INET6`.
    fn resolve(&self, py: Python<'_>, host: &str, family: i32) -> PyResult<Py<PyAny>> {
        let work = self.address_work(py, host, family, Outcome::Ips)?;
        self.run(py, work, host)
    }

    /// As `resolve`, as aiohttp's `ResolveResult` dicts for `port`.
    fn resolve_hosts(
        &self,
        py: Python<'_>,
        host: &str,
        port: u16,
        family: i32,
    ) -> PyResult<Py<PyAny>> {
        let name = host.to_owned();
        let work = self.address_work(py, host, family, move |ips| Outcome::Hosts {
            ips,
            name,
            port,
        })?;
        self.run(py, work, host)
    }

    /// Records of one type (`"A"`, `"AAAA"`, `"CNAME"`) as a dict, or an
    /// asyncio future of it.
    fn lookup(&self, py: Python<'_>, name: &str, rtype: &str) -> PyResult<Py<PyAny>> {
        let qtype = crate::query_type::parse(rtype)?;
        let resolver = self.usable(py, name)?.clone();
        let name_owned = name.to_owned();
        let work: Work = Box::pin(async move {
            match resolver.lookup(&name_owned, qtype).await {
                Ok(found) => Outcome::Lookup(found),
                Err(err) => Outcome::Failed(err),
            }
        });
        self.run(py, work, name)
    }

    /// Resolves `hosts` into the cache; a report dict, or a future of it.
    #[pyo3(signature = (hosts, concurrency, qps))]
    fn prewarm(
        &self,
        py: Python<'_>,
        hosts: Vec<String>,
        concurrency: usize,
        qps: Option<u32>,
    ) -> PyResult<Py<PyAny>> {
        let resolver = self.usable(py, "prewarm")?.clone();
        let options = PrewarmOptions {
            concurrency,
            names_per_second: qps,
            ..PrewarmOptions::default()
        };
        let work: Work =
            Box::pin(async move { Outcome::Prewarm(resolver.prewarm(hosts, options).await) });
        self.run(py, work, "prewarm")
    }

    /// The library's counters, plus `pending` (lookups from Python still
    /// on the runtime) and `cache_entries`.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.generation.check("crawldns.Resolver")?;
        let pending = self.in_flight.load(Ordering::Relaxed);
        match &self.inner {
            Some(inner) => {
                crate::outcome::metrics_dict(py, &inner.metrics(), pending, inner.cache_len())
            }
            None => crate::outcome::metrics_dict(py, &Default::default(), pending, 0),
        }
    }

    /// Ends lookups in flight with a `DNSError` of kind `"closed"` and
    /// releases the resolver's sockets once they are gone. Idempotent.
    fn close(&mut self) {
        self.closed.send_replace(true);
        if let Some(inner) = self.inner.take() {
            if !self.generation.is_current() {
                std::mem::forget(inner);
            }
        }
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_none()
    }
}

impl NativeResolver {
    /// The lookup of `host`'s addresses of `family`, ending in `done(ips)`.
    fn address_work<F>(&self, py: Python<'_>, host: &str, family: i32, done: F) -> PyResult<Work>
    where
        F: FnOnce(Arc<[IpAddr]>) -> Outcome + Send + 'static,
    {
        let resolver = self.usable(py, host)?.clone();
        let host = host.to_owned();
        let qtype = match family {
            libc::AF_UNSPEC => None,
            libc::AF_INET => Some(QueryType::A),
            libc::AF_INET6 => Some(QueryType::Aaaa),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "family must be AF_UNSPEC, AF_INET or AF_INET6, not {family}"
                )))
            }
        };
        Ok(Box::pin(async move {
            let found = match qtype {
                None => resolver.lookup_ip(&host).await.map(|found| found.addrs),
                Some(qtype) => resolver
                    .lookup(&host, qtype)
                    .await
                    .map(|found| found.shared_ips()),
            };
            match found {
                Ok(ips) => done(ips),
                Err(err) => Outcome::Failed(err),
            }
        }))
    }

    /// The resolver, unless closed or inherited through `fork()`.
    fn usable(&self, py: Python<'_>, name: &str) -> PyResult<&crawldns::Resolver> {
        self.generation.check("crawldns.Resolver")?;
        self.inner
            .as_ref()
            .ok_or_else(|| crate::errors::closed(py, name))
    }

    /// Runs `work` here until it must wait, then on the runtime.
    fn run(&self, py: Python<'_>, mut work: Work, name: &str) -> PyResult<Py<PyAny>> {
        let poll = {
            // Spawns (a prefetch, a socket's reader) go to the runtime.
            let _runtime = self.handle.enter();
            work.as_mut().poll(&mut Context::from_waker(Waker::noop()))
        };
        if let Poll::Ready(outcome) = poll {
            return outcome.into_py(py);
        }
        self.submit(py, work, name)
    }

    /// Runs `work` on the runtime; returns the loop's future of it.
    fn submit(&self, py: Python<'_>, work: Work, name: &str) -> PyResult<Py<PyAny>> {
        let (loop_, channel) = current_channel(py)?;
        channel::submit(
            py,
            &loop_,
            &channel,
            Submit {
                work,
                name: name.to_owned(),
                handle: self.handle.clone(),
                closed: self.closed.subscribe(),
                in_flight: InFlight::new(&self.in_flight),
            },
        )
    }
}

impl Drop for NativeResolver {
    fn drop(&mut self) {
        // In a child made by fork(), dropping the sockets would deregister
        // them from the epoll instance it shares with the parent.
        if !self.generation.is_current() {
            if let Some(inner) = self.inner.take() {
                std::mem::forget(inner);
            }
        }
    }
}

/// The running loop and its channel (`crawldns._loops.current_channel()`).
fn current_channel(py: Python<'_>) -> PyResult<(Bound<'_, PyAny>, Bound<'_, Channel>)> {
    static CURRENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let current = CURRENT.get_or_try_init(py, || {
        py.import("crawldns._loops")
            .and_then(|m| m.getattr("current_channel"))
            .map(Bound::unbind)
    })?;
    let pair = current.bind(py).call0()?;
    let pair = pair.cast_into::<PyTuple>()?;
    let loop_ = pair.get_item(0)?;
    let channel = pair.get_item(1)?.cast_into::<Channel>()?;
    Ok((loop_, channel))
}

/// Tasks alive on the runtime (the library's own and lookups in flight).
#[pyfunction]
pub fn runtime_tasks() -> usize {
    crate::runtime::alive_tasks()
}
