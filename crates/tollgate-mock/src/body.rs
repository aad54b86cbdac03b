//! The response body: a whole buffer, or SSE frames paced by a timer.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// Anything that must live until the body has been sent (concurrency slots, in-flight counts).
pub(crate) type Guard = Box<dyn Send + Sync + 'static>;

/// A response body.
pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Stream(SseBody),
}

impl std::fmt::Debug for MockBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MockBody::Full(b) => f.debug_tuple("Full").field(b).finish(),
            MockBody::Stream(s) => f
                .debug_struct("Stream")
                .field("frames_left", &s.frames.len())
                .finish(),
        }
    }
}

/// SSE frames sent one by one, `interval` apart; guards are dropped after the last frame.
pub(crate) struct SseBody {
    frames: VecDeque<Bytes>,
    interval: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    guards: Vec<Guard>,
}

impl MockBody {
    pub(crate) fn full(b: Bytes) -> Self {
        MockBody::Full(Some(b))
    }

    pub(crate) fn stream(frames: Vec<Bytes>, interval: Duration, guards: Vec<Guard>) -> Self {
        MockBody::Stream(SseBody {
            frames: frames.into(),
            interval,
            sleep: None,
            guards,
        })
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            MockBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(s) => {
                if s.frames.is_empty() {
                    s.guards.clear();
                    return Poll::Ready(None);
                }
                if !s.interval.is_zero() {
                    let interval = s.interval;
                    let sleep = s
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
                    ready!(sleep.as_mut().poll(cx));
                    s.sleep = None;
                }
                let frame = s.frames.pop_front().map(|b| Ok(Frame::data(b)));
                if s.frames.is_empty() {
                    s.guards.clear();
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(b) => b.is_none(),
            MockBody::Stream(s) => s.frames.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}
