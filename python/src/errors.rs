//! Lookup failures as Python exceptions. The classes and their errno values
//! are defined in Python (`crawldns/_errors.py`); this file only maps the
//! library's error kinds onto them.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// `crawldns._errors`, imported once.
fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || py.import("crawldns._errors").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// A `crawldns.DNSError` (or the subclass for `kind`) for a lookup of `name`.
pub fn dns_error(py: Python<'_>, kind: &str, message: &str, name: &str) -> PyErr {
    let made = errors_module(py)
        .and_then(|m| m.getattr("_from_kind"))
        .and_then(|f| f.call1((kind, message, name)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// The library's error as a Python exception.
pub fn from_error(py: Python<'_>, err: &crawldns::Error) -> PyErr {
    dns_error(py, err.kind().as_str(), &err.to_string(), err.name())
}

/// The kind given to lookups ended by `Resolver.close()`.
pub const CLOSED: &str = "closed";

/// A lookup that did not finish because its resolver was closed.
pub fn closed(py: Python<'_>, name: &str) -> PyErr {
    dns_error(
        py,
        CLOSED,
        &format!("{name}: the resolver was closed before the lookup finished"),
        name,
    )
}

/// `crawldns.ForkedResolverError(message)`.
pub fn forked(message: String) -> PyResult<PyErr> {
    Python::attach(|py| {
        let class = errors_module(py)?.getattr("ForkedResolverError")?;
        Ok(PyErr::from_value(class.call1((message,))?))
    })
}
