//! [`TimeoutBody`]: a response body held to the idle and total limits, handing on first what
//! the response future already read.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tollgate_core::timer::poll_sleep;
use tollgate_core::{BoxError, ErrorClass, StreamReport};

use crate::config::unpack;
use crate::error::{TimeLimit, TimedOut};
use crate::future::sooner;

/// A response body under [`Timeout`](crate::Timeout): its first chunks (read before the
/// response was handed on), then the rest of the inner body, each chunk of real data within
/// the idle limit of the previous one and the whole body within the total limit or the
/// request's deadline. A limit that runs out ends the body with a [`TimedOut`] error carrying
/// a `Timeout` verdict; the inner body is dropped then, which closes its connection. A
/// followed stream's [`StreamReport`] is told it failed with a timeout, so the breaker and
/// the metrics above count it.
///
/// # Cancellation
///
/// Dropping it drops the inner body and its timer.
pub struct TimeoutBody<B> {
    /// The first real data, read before the response was handed on.
    first: Option<Bytes>,
    /// The rest of the body, if it had not ended with its first chunk (boxed: a body read at
    /// once, the common answer, keeps the response small, and it is moved several times on
    /// its way up the stack).
    rest: Option<Box<Rest<B>>>,
}

/// A body still open after its first chunk, or with keep-alives read before it.
struct Rest<B> {
    /// Keep-alives read before the response was handed on (rarely any); handed on first.
    held: VecDeque<Frame<Bytes>>,
    /// `None` once it ended.
    inner: Option<B>,
    limits: BodyLimits,
    /// Set the first time the body waits: a body read at once never needs them.
    timers: Option<Timers>,
    /// The followed stream's report, told when a limit ends the body.
    report: Option<StreamReport>,
}

/// What the body's limits are counted from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// In nanoseconds, `u64::MAX` for none (see `Packed`).
    pub(crate) idle: u64,
    pub(crate) total: u64,
    /// When the attempt began, if a limit already read the clock; else the body's first wait.
    pub(crate) start: Option<Instant>,
    pub(crate) deadline: Option<Instant>,
}

/// When the idle and total limits run out, and the sleep that waits for the sooner.
struct Timers {
    /// Counted from the last real data.
    idle_at: Option<Instant>,
    /// The total limit or the deadline, whichever is sooner, and which.
    total_at: Option<(Instant, TimeLimit, Duration)>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl BodyLimits {
    /// Whether any limit applies to the body.
    pub(crate) fn any(&self) -> bool {
        unpack(self.idle).is_some() || unpack(self.total).is_some() || self.deadline.is_some()
    }

    fn timers(&self, sleep: Option<Pin<Box<Sleep>>>) -> Timers {
        let now = Instant::now();
        let start = self.start.unwrap_or(now);
        Timers {
            idle_at: unpack(self.idle).map(|idle| now + idle),
            total_at: sooner(start, unpack(self.total), TimeLimit::Total, self.deadline),
            sleep,
        }
    }
}

impl Timers {
    /// Waits for the sooner limit; `Ready` with the one that ran out.
    fn poll_expired(&mut self, idle: Option<Duration>, cx: &mut Context<'_>) -> Poll<TimedOut> {
        let idle = self
            .idle_at
            .zip(idle)
            .map(|(at, d)| (at, TimeLimit::Idle, d));
        let sooner = match (idle, self.total_at) {
            (Some(a), Some(b)) => Some(if b.0 <= a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
        let Some((at, limit, after)) = sooner else {
            return Poll::Pending;
        };
        ready!(poll_sleep(&mut self.sleep, at, cx));
        Poll::Ready(TimedOut::new(limit, after))
    }
}

/// Whether `frame` is real data: a data frame of nothing but event-stream comment lines
/// (`: keep-alive`) and blank lines is not (nor, in any other body, is whitespace-only
/// padding), and trailers are not.
#[inline]
pub(crate) fn is_real_data(frame: &Frame<Bytes>) -> bool {
    frame.data_ref().is_some_and(|data| !is_keep_alive(data))
}

/// Whether `chunk` is nothing but SSE comment lines (`: …`) and blank lines.
fn is_keep_alive(chunk: &[u8]) -> bool {
    // Data (`data: …`, `{…`) is told by its first byte, without a scan.
    if chunk
        .first()
        .is_some_and(|b| !matches!(b, b'\n' | b'\r' | b':'))
    {
        return false;
    }
    chunk.split(|b| *b == b'\n').all(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line.is_empty() || line[0] == b':'
    })
}

impl<B> TimeoutBody<B> {
    /// A body read at once: its only chunk (or none), and its end.
    #[inline]
    pub(crate) fn read(first: Option<Bytes>) -> Self {
        TimeoutBody { first, rest: None }
    }

    /// A body with more to come (`inner`; `None` when it ended with its first chunk), or
    /// keep-alives read before its first chunk (`held`).
    pub(crate) fn rest(
        inner: Option<B>,
        held: VecDeque<Frame<Bytes>>,
        first: Option<Bytes>,
        limits: BodyLimits,
        sleep: Option<Pin<Box<Sleep>>>,
        report: Option<StreamReport>,
    ) -> Self {
        let rest = Box::new(Rest {
            held,
            inner,
            // A sleep the response future made is reused rather than dropped.
            timers: sleep.map(|sleep| limits.timers(Some(sleep))),
            limits,
            report,
        });
        TimeoutBody {
            first,
            rest: Some(rest),
        }
    }

    /// The inner body, until it ends.
    pub fn get_ref(&self) -> Option<&B> {
        self.rest.as_ref().and_then(|rest| rest.inner.as_ref())
    }
}

impl<B> Rest<B> {
    /// Ends the body: the inner body (and its connection) and the timer are dropped.
    fn end(&mut self) {
        self.inner = None;
        self.timers = None;
    }
}

impl<B> Body for TimeoutBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(frame) = this.rest.as_mut().and_then(|rest| rest.held.pop_front()) {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(data) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let Some(rest) = this.rest.as_deref_mut() else {
            return Poll::Ready(None);
        };
        let Some(inner) = rest.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(timers), Some(idle)) = (rest.timers.as_mut(), unpack(rest.limits.idle))
                {
                    if is_real_data(&frame) {
                        timers.idle_at = Some(Instant::now() + idle);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                rest.end();
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                rest.end();
                Poll::Ready(None)
            }
            Poll::Pending => {
                let limits = rest.limits;
                let timers = rest.timers.get_or_insert_with(|| limits.timers(None));
                let timed_out = ready!(timers.poll_expired(unpack(limits.idle), cx));
                // Told before the inner body is dropped, which would abandon the stream.
                if let Some(report) = rest.report.take() {
                    report.fail(ErrorClass::Timeout);
                }
                rest.end();
                Poll::Ready(Some(Err(timed_out.classified())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none()
            && self.rest.as_ref().is_none_or(|rest| {
                rest.held.is_empty() && rest.inner.as_ref().is_none_or(Body::is_end_stream)
            })
    }

    fn size_hint(&self) -> SizeHint {
        let held: u64 = self
            .rest
            .iter()
            .flat_map(|rest| rest.held.iter())
            .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
            .chain(self.first.as_ref().map(|d| d.len() as u64))
            .sum();
        let inner = self
            .get_ref()
            .map(Body::size_hint)
            .unwrap_or_else(|| SizeHint::with_exact(0));
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(held));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(held));
        }
        hint
    }
}

impl<B> fmt::Debug for TimeoutBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.rest.as_ref().map_or(0, |rest| rest.held.len());
        f.debug_struct("TimeoutBody")
            .field("held", &(held + usize::from(self.first.is_some())))
            .field("ended", &self.get_ref().is_none())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::is_keep_alive;

    #[test]
    fn keep_alives_are_comments_and_blank_lines() {
        assert!(is_keep_alive(b": keep-alive\n\n"));
        assert!(is_keep_alive(b"\r\n\r\n"));
        assert!(is_keep_alive(b""));
        assert!(!is_keep_alive(b"data: {}\n\n"));
        assert!(!is_keep_alive(b": ping\nevent: ping\n\n"));
        // The middle of a data line split across chunks is data.
        assert!(!is_keep_alive(b"lo\"}\n\n"));
    }
}
