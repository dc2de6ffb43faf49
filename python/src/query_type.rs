//! Record-type names from Python (`"A"`, `"mx"`, …) to the library's
//! [`QueryType`]: the one place a new type is added.

use crawldns::QueryType;
use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

/// Types the library answers, by their zone-file name.
const SUPPORTED: [(&str, QueryType); 3] = [
    ("A", QueryType::A),
    ("AAAA", QueryType::Aaaa),
    ("CNAME", QueryType::Cname),
];

/// Well-known types the library does not ask for yet.
const NOT_YET: [&str; 8] = ["MX", "TXT", "NS", "SOA", "PTR", "SRV", "CAA", "HTTPS"];

/// The [`QueryType`] named `text` (any case), or a `ValueError` that says
/// whether the type is unknown or just not supported yet.
pub fn parse(text: &str) -> Result<QueryType, PyErr> {
    let upper = text.trim().to_ascii_uppercase();
    if let Some((_, qtype)) = SUPPORTED.iter().find(|(name, _)| *name == upper) {
        return Ok(*qtype);
    }
    let supported: Vec<&str> = SUPPORTED.iter().map(|(name, _)| *name).collect();
    let supported = supported.join(", ");
    if NOT_YET.contains(&upper.as_str()) {
        Err(PyValueError::new_err(format!(
            "record type {upper} is not supported by this crawldns yet (supported: {supported})"
        )))
    } else {
        Err(PyValueError::new_err(format!(
            "unknown record type {text:?} (supported: {supported})"
        )))
    }
}
