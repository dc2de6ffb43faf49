//! `/slow-body`: a body that trickles in.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Time between two body chunks of `/slow-body` (and before the first one).
pub const SLOW_BODY_CHUNK_INTERVAL: Duration = Duration::from_millis(100);

/// Number of body chunks `/slow-body` sends.
pub const SLOW_BODY_CHUNKS: usize = 100;

/// Size in bytes of each `/slow-body` chunk.
pub const SLOW_BODY_CHUNK_SIZE: usize = 16;

/// One `/slow-body` chunk.
static SLOW_CHUNK: [u8; SLOW_BODY_CHUNK_SIZE] = [b'x'; SLOW_BODY_CHUNK_SIZE];

/// The `/slow-body` body: a chunk every [`SLOW_BODY_CHUNK_INTERVAL`].
pub(super) struct SlowBody {
    remaining: usize,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl SlowBody {
    pub(super) fn new() -> Self {
        Self {
            remaining: SLOW_BODY_CHUNKS,
            sleep: Box::pin(tokio::time::sleep(SLOW_BODY_CHUNK_INTERVAL)),
        }
    }
}

impl Body for SlowBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.remaining -= 1;
        let next = tokio::time::Instant::now() + SLOW_BODY_CHUNK_INTERVAL;
        self.sleep.as_mut().reset(next);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&SLOW_CHUNK)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        let bytes = self.remaining.saturating_mul(SLOW_BODY_CHUNK_SIZE);
        SizeHint::with_exact(u64::try_from(bytes).unwrap_or(u64::MAX))
    }
}
