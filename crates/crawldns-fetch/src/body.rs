//! Reading a response body: in chunks, content decoding undone, the cap
//! applied to decoded bytes, and the connection given back to the pool
//! once the body is complete.

use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use crate::conn::Conn;
use crate::decode::Decoded;
use crate::pool::{Origin, Pool};
use crate::record::ErrorClass;

/// A failure: class and message.
pub(crate) type Failure = (ErrorClass, String);

/// Decoded bytes read at most per chunk.
const CHUNK: usize = 64 * 1024;

/// A body being read.
pub(crate) struct BodyReader {
    decoded: Decoded,
    /// The connection, given back to the pool when the body is complete;
    /// dropped (closed) if the body is abandoned.
    conn: Option<(Pool, Origin, Conn)>,
    max_body: u64,
    /// Decoded bytes so far.
    pub bytes: u64,
    done: bool,
}

impl BodyReader {
    pub fn new(decoded: Decoded, conn: (Pool, Origin, Conn), max_body: u64) -> Self {
        Self {
            decoded,
            conn: Some(conn),
            max_body,
            bytes: 0,
            done: false,
        }
    }

    /// The next decoded bytes; `Ok(None)` at the end of the body (then the
    /// connection is back in the pool). More than the cap is a `body` error.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, Failure> {
        if self.done {
            return Ok(None);
        }
        // One byte more than the cap allows tells "exactly the cap" from
        // "over it" without decoding further.
        let room = self.max_body.saturating_sub(self.bytes).saturating_add(1);
        let want = usize::try_from(room).unwrap_or(CHUNK).min(CHUNK);
        let mut buf = vec![0u8; want];
        let n = self
            .decoded
            .read(&mut buf)
            .await
            .map_err(|e| (ErrorClass::Body, body_error(&self.decoded, &e)))?;
        if n == 0 {
            self.finish().await?;
            return Ok(None);
        }
        self.bytes += n as u64;
        if self.bytes > self.max_body {
            self.bytes = self.max_body;
            return Err((
                ErrorClass::Body,
                format!("body exceeds the {} byte cap", self.max_body),
            ));
        }
        buf.truncate(n);
        Ok(Some(buf))
    }

    /// The decoder is done: read the transfer to its end (so an HTTP/1.1
    /// connection is reusable) and give the connection back.
    async fn finish(&mut self) -> Result<(), Failure> {
        let wire = self.decoded.wire_mut();
        loop {
            let n = wire
                .fill_buf()
                .await
                .map_err(|e| (ErrorClass::Body, e.to_string()))?
                .len();
            if n == 0 {
                break;
            }
            wire.consume(n);
        }
        self.done = true;
        if let Some((pool, origin, conn)) = self.conn.take() {
            pool.checkin(&origin, conn);
        }
        Ok(())
    }

    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Bytes received before decoding.
    pub fn wire_bytes(&self) -> u64 {
        self.decoded.wire().bytes
    }

    /// The bytes as received, when kept and different from the decoded
    /// ones.
    pub fn take_wire_body(&mut self) -> Option<Vec<u8>> {
        if self.decoded.is_identity() {
            return None;
        }
        self.decoded.wire_mut().kept.take()
    }
}

/// A read error: a broken transfer, or content that does not decode.
fn body_error(decoded: &Decoded, e: &std::io::Error) -> String {
    if decoded.is_identity() || e.kind() != std::io::ErrorKind::InvalidData {
        e.to_string()
    } else {
        format!("cannot decode the body: {e}")
    }
}
