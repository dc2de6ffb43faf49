//! The fleet's error type.

/// What can go wrong talking to the fleet's Redis or reading its data.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The Redis URL is not valid (the message never holds its password).
    #[error("invalid Redis URL {url}: {why}")]
    BadUrl {
        /// The URL with its credentials masked.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A Redis command failed (connection lost, server error).
    #[error("Redis at {url}: {message}")]
    Redis {
        /// The URL with its credentials masked.
        url: String,
        /// The error, its text scrubbed of the credentials.
        message: String,
        /// Whether retrying may help (I/O, connection refused, loading).
        transient: bool,
    },
    /// Data in Redis that the fleet did not write, or from another version.
    #[error("unexpected data in Redis: {0}")]
    Data(String),
    /// The fleet in Redis was set up with other settings.
    #[error("fleet mismatch: {0}")]
    Mismatch(String),
    /// Reading input or writing output failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl FleetError {
    /// True when the operation may succeed if tried again (Redis away).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Redis {
                transient: true,
                ..
            }
        )
    }
}
