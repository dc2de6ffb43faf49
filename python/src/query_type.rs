//! Record-type names from Python (`"A"`, `"mx"`, …) to the library's
//! [`QueryType`]: the one place a new type is added.

use crawldns::QueryType;
use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

/// The [`QueryType`] named `text` (any case), or a `ValueError` naming the
/// types there are.
pub fn parse(text: &str) -> Result<QueryType, PyErr> {
    QueryType::from_name(text.trim()).ok_or_else(|| {
        let supported: Vec<&str> = QueryType::ALL.iter().map(|t| t.as_str()).collect();
        PyValueError::new_err(format!(
            "unknown record type {text:?} (supported: {})",
            supported.join(", ")
        ))
    })
}
