//! Getting one question answered by one server: UDP with many queries per
//! socket; TCP for truncated answers or TCP-only servers, pipelined on
//! long-lived connections ([`pipeline::StreamPool`] over [`tcp::TcpDial`]);
//! DNS over TLS (the same pool over [`tls::TlsDial`]); DNS over HTTPS
//! ([`doh::DohClient`]).

pub mod doh;
pub mod endpoint;
pub mod gso;
pub mod in_flight;
pub mod pipeline;
pub mod recv_batch;
pub mod sockbuf;
#[cfg(test)]
mod stream_tests;
pub mod tcp;
pub mod tls;
pub mod udp;
#[cfg(test)]
mod unbound_tests;

use hickory_proto::op::Message;

/// Why one exchange with one server produced no answer.
#[derive(Debug)]
pub enum TransportError {
    /// Nothing matching arrived in time.
    Timeout,
    /// The server's reply matched the question but did not parse.
    Malformed,
    /// A socket operation failed.
    Io(std::io::Error),
}

/// The result of one exchange.
pub type Exchange = Result<Message, TransportError>;

/// Why one exchange over a stream transport (pipelined TCP, TLS, HTTPS)
/// produced no answer: a [`TransportError`] as over UDP, or a server whose
/// certificate does not verify, which is never retried in the clear.
#[derive(Debug)]
pub enum StreamError {
    /// As over UDP: timeout, malformed answer, I/O error.
    Transport(TransportError),
    /// The server's certificate is untrusted, expired, or not valid for the
    /// name asked for (the text says which).
    Verification(String),
}

impl From<TransportError> for StreamError {
    fn from(err: TransportError) -> Self {
        Self::Transport(err)
    }
}

impl StreamError {
    /// An I/O error of `kind` with a message.
    pub(crate) fn io(kind: std::io::ErrorKind, detail: impl Into<String>) -> Self {
        Self::Transport(TransportError::Io(std::io::Error::new(kind, detail.into())))
    }

    /// A copy (an I/O error is rebuilt from its kind and text), to give the
    /// same failure to every query that waited on one connection.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Transport(TransportError::Timeout) => Self::Transport(TransportError::Timeout),
            Self::Transport(TransportError::Malformed) => {
                Self::Transport(TransportError::Malformed)
            }
            Self::Transport(TransportError::Io(err)) => Self::io(err.kind(), err.to_string()),
            Self::Verification(why) => Self::Verification(why.clone()),
        }
    }
}

/// The result of one exchange over a stream transport.
pub type StreamExchange = Result<Message, StreamError>;
