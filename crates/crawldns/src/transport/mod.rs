//! Getting one question answered by one server: UDP with many queries per
//! socket, and TCP for truncated answers or TCP-only servers.

pub mod gso;
pub mod recv_batch;
pub mod sockbuf;
pub mod tcp;
pub mod udp;

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
