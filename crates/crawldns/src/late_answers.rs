//! Late answers: a UDP query whose attempt timed out keeps listening while
//! the question goes on, and its answer, when it comes, answers the
//! question, as glibc's stub does when a retry's wait catches the first
//! query's answer.
//!
//! An attempt's timeout adapts to the server's RTT (5 × SRTT), which is
//! right for the server and wrong for a slow name on it (a zone whose own
//! servers take seconds): every attempt at that name times out, though the
//! answer is on its way. So the queries of timed-out attempts stay
//! registered; any of them answering ends the question. When the attempts
//! are used up, the question keeps waiting for them until its time budget
//! (the configured timeout × attempts, what the same settings give glibc)
//! only while their server shows it is alive by answering other queries
//! meanwhile: a dead server's question ends when its attempts do.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use tokio::time::{Instant, Sleep};

use crate::health::Health;
use crate::transport::udp::SentQuery;
use crate::transport::Exchange;

/// A query of a timed-out attempt, still listening.
struct Listening {
    server: usize,
    sent: Instant,
    /// The server's answers when it was sent ([`Health::answers`]).
    answers_at_send: u64,
    query: SentQuery,
}

/// What came first.
pub(crate) enum Waited {
    /// The current attempt's result.
    This(Exchange),
    /// An earlier attempt's answer: to server `server`, sent at `sent`.
    Late {
        server: usize,
        sent: Instant,
        message: Message,
    },
    /// The current attempt's deadline.
    Deadline,
}

/// The timed-out queries of one question.
#[derive(Default)]
pub(crate) struct LateAnswers {
    listening: Vec<Listening>,
}

/// Whether a late reply answers the question: an answer to act on, not a
/// truncation or an error RCODE (which its attempt would have moved on from
/// anyway).
fn usable(exchange: Exchange) -> Option<Message> {
    let message = exchange.ok()?;
    let rcode = message.metadata.response_code;
    (!message.metadata.truncation
        && matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain))
    .then_some(message)
}

impl LateAnswers {
    /// Keeps listening for `query`, sent to `server` at `sent` when the
    /// server had given `answers_at_send` answers.
    pub(crate) fn keep(
        &mut self,
        server: usize,
        sent: Instant,
        answers_at_send: u64,
        query: SentQuery,
    ) {
        self.listening.push(Listening {
            server,
            sent,
            answers_at_send,
            query,
        });
    }

    /// Waits for `current` until `sleep` ends, or for an earlier query's
    /// answer. An earlier query that fails, or answers with nothing usable,
    /// stops listening. The attempt's timer is lent, so that the attempt
    /// re-arms one timer in place instead of making one per wait.
    pub(crate) fn wait_first<'a>(
        &'a mut self,
        current: &'a mut SentQuery,
        mut sleep: Pin<&'a mut Sleep>,
    ) -> impl Future<Output = Waited> + 'a {
        poll_fn(move |cx| {
            if let Poll::Ready(result) = current.poll_answer(cx) {
                return Poll::Ready(Waited::This(result));
            }
            if let Some(late) = self.poll_late(cx) {
                return Poll::Ready(late);
            }
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Waited::Deadline);
            }
            Poll::Pending
        })
    }

    /// When the attempts are used up: keeps listening only to the queries
    /// whose server answered others since they were sent (it is alive;
    /// their names are slow). Returns whether any is left.
    pub(crate) fn retain_alive(&mut self, health: &Health) -> bool {
        self.listening
            .retain(|l| health.answers(l.server) > l.answers_at_send);
        !self.listening.is_empty()
    }

    /// Waits until `budget_end` for an answer to the queries still
    /// listening. `None` when none answered in time.
    pub(crate) async fn wait_late(&mut self, budget_end: Instant) -> Option<Waited> {
        if self.listening.is_empty() || Instant::now() >= budget_end {
            return None;
        }
        let sleep = tokio::time::sleep_until(budget_end);
        tokio::pin!(sleep);
        poll_fn(|cx| {
            if let Some(late) = self.poll_late(cx) {
                return Poll::Ready(Some(late));
            }
            if self.listening.is_empty() || sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }

    fn poll_late(&mut self, cx: &mut std::task::Context<'_>) -> Option<Waited> {
        let mut i = 0;
        while i < self.listening.len() {
            match self.listening[i].query.poll_answer(cx) {
                Poll::Pending => i += 1,
                Poll::Ready(result) => {
                    let done = self.listening.swap_remove(i);
                    if let Some(message) = usable(result) {
                        return Some(Waited::Late {
                            server: done.server,
                            sent: done.sent,
                            message,
                        });
                    }
                }
            }
        }
        None
    }
}

/// A question's time budget: the configured timeout for each attempt.
pub(crate) fn budget(timeout: Duration, attempts: usize) -> Duration {
    timeout.saturating_mul(u32::try_from(attempts.max(1)).unwrap_or(u32::MAX))
}
