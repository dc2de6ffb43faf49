//! Content decoding (`Content-Encoding: gzip, deflate, br, zstd`) as a
//! reader over the body as received, so the caller pulls decoded bytes in
//! chunks of the size it chooses: a decompression bomb never gets to
//! produce more than the caller asks for.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder};
use bytes::{Buf, Bytes};
use hyper::body::{Body, Incoming};
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

/// The `Accept-Encoding` the fetcher sends.
pub const ACCEPT_ENCODING: &str = "gzip, br, zstd";

/// The body as received (after transfer decoding): counted, and kept when
/// asked.
pub(crate) struct Wire {
    body: Incoming,
    chunk: Bytes,
    /// Bytes received so far.
    pub bytes: u64,
    /// The bytes received, when kept.
    pub kept: Option<Vec<u8>>,
}

impl Wire {
    pub fn new(body: Incoming, keep: bool) -> Self {
        Self {
            body,
            chunk: Bytes::new(),
            bytes: 0,
            kept: keep.then(Vec::new),
        }
    }
}

impl AsyncBufRead for Wire {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.chunk.is_empty() {
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                None => break,
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.bytes += data.len() as u64;
                        if let Some(kept) = &mut this.kept {
                            kept.extend_from_slice(&data);
                        }
                        this.chunk = data;
                    }
                }
            }
        }
        Poll::Ready(Ok(&this.chunk[..]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.chunk.advance(amt.min(this.chunk.len()));
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let available = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

/// The body with its content coding undone.
pub(crate) enum Decoded {
    Identity(Wire),
    Gzip(GzipDecoder<Wire>),
    Deflate(ZlibDecoder<Wire>),
    Brotli(BrotliDecoder<Wire>),
    Zstd(ZstdDecoder<Wire>),
}

impl Decoded {
    /// A decoder for `content_encoding` (the header's value); an unknown
    /// coding is an error.
    pub fn new(wire: Wire, content_encoding: Option<&str>) -> Result<Self, String> {
        let coding = content_encoding
            .map(|c| c.trim().to_ascii_lowercase())
            .unwrap_or_default();
        Ok(match coding.as_str() {
            "" | "identity" => Self::Identity(wire),
            "gzip" | "x-gzip" => {
                let mut decoder = GzipDecoder::new(wire);
                decoder.multiple_members(true);
                Self::Gzip(decoder)
            }
            "deflate" => Self::Deflate(ZlibDecoder::new(wire)),
            "br" => Self::Brotli(BrotliDecoder::new(wire)),
            "zstd" => Self::Zstd(ZstdDecoder::new(wire)),
            other => return Err(format!("unsupported content encoding {other:?}")),
        })
    }

    /// The body as received underneath.
    pub fn wire(&self) -> &Wire {
        match self {
            Self::Identity(w) => w,
            Self::Gzip(d) => d.get_ref(),
            Self::Deflate(d) => d.get_ref(),
            Self::Brotli(d) => d.get_ref(),
            Self::Zstd(d) => d.get_ref(),
        }
    }

    pub fn wire_mut(&mut self) -> &mut Wire {
        match self {
            Self::Identity(w) => w,
            Self::Gzip(d) => d.get_mut(),
            Self::Deflate(d) => d.get_mut(),
            Self::Brotli(d) => d.get_mut(),
            Self::Zstd(d) => d.get_mut(),
        }
    }

    /// True when bytes pass through unchanged.
    pub fn is_identity(&self) -> bool {
        matches!(self, Self::Identity(_))
    }
}

impl AsyncRead for Decoded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Identity(r) => Pin::new(r).poll_read(cx, buf),
            Self::Gzip(r) => Pin::new(r).poll_read(cx, buf),
            Self::Deflate(r) => Pin::new(r).poll_read(cx, buf),
            Self::Brotli(r) => Pin::new(r).poll_read(cx, buf),
            Self::Zstd(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}
