//! `crawldns._native`: the crawldns resolver for Python's asyncio. The
//! public API is the Python package around it (`python/crawldns`).
//!
//! One file per mechanism: [`runtime`] (the one runtime thread, fork),
//! [`channel`] (results back to the asking event loop), [`resolver`] (the
//! resolver object), [`config`] (keyword options), [`query_type`] (record
//! type names), [`outcome`] (results as Python objects), [`errors`].

mod channel;
mod config;
mod errors;
mod outcome;
mod query_type;
mod resolver;
mod runtime;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    runtime::install_fork_handler();
    m.add_class::<resolver::NativeResolver>()?;
    m.add_class::<channel::Channel>()?;
    m.add_function(wrap_pyfunction!(resolver::runtime_tasks, m)?)?;
    Ok(())
}
