//! The response body: a whole buffer, or SSE frames paced by a timer.
//!
//! A stream may end in one of the stream faults ([`Ending`]): cleanly after its last frame,
//! stalled (pending until the server shuts down), or cut (a body error, which makes hyper close
//! the connection without ending the chunked encoding, or reset the HTTP/2 stream).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;
use tokio::time::Sleep;

/// Anything that must live until the body has been sent (concurrency slots, in-flight counts).
pub(crate) type Guard = Box<dyn Send + Sync + 'static>;

/// The error that makes hyper drop the connection: returned by the service, it sends no
/// response (the reset fault); returned by a body, it cuts the response mid-stream.
#[derive(Debug)]
pub(crate) struct ConnectionReset;

impl fmt::Display for ConnectionReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection reset by the mock")
    }
}

impl std::error::Error for ConnectionReset {}

/// A response body.
pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Stream(SseBody),
}

impl fmt::Debug for MockBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MockBody::Full(b) => f.debug_tuple("Full").field(b).finish(),
            MockBody::Stream(s) => f
                .debug_struct("Stream")
                .field("frames_left", &s.frames.len())
                .field("ending", &s.ending)
                .finish(),
        }
    }
}

/// What a stream does once its frames are sent.
pub(crate) enum Ending {
    /// Ends the body.
    Clean,
    /// Stays pending until the server shuts down (this future resolves), then cuts.
    Stall(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// Fails the body; `flushed` once it has yielded to let hyper flush the frames before.
    Cut { flushed: bool },
}

impl fmt::Debug for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Clean => f.write_str("Clean"),
            Ending::Stall(_) => f.write_str("Stall"),
            Ending::Cut { .. } => f.write_str("Cut"),
        }
    }
}

impl Ending {
    /// A stall that ends (with a cut) when `shutdown` turns true.
    pub(crate) fn stall(mut shutdown: watch::Receiver<bool>) -> Self {
        Ending::Stall(Box::pin(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        }))
    }

    /// A cut.
    pub(crate) fn cut() -> Self {
        Ending::Cut { flushed: false }
    }
}

/// SSE frames sent one by one, `interval` apart (the first one `first_delay` later still), then
/// the [`Ending`]; guards are dropped when the body ends or fails.
pub(crate) struct SseBody {
    frames: VecDeque<Bytes>,
    interval: Duration,
    first_delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    ending: Ending,
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
            first_delay: Duration::ZERO,
            sleep: None,
            ending: Ending::Clean,
            guards,
        })
    }

    /// Adds `delay` before the first frame (a stream only).
    pub(crate) fn with_first_delay(mut self, delay: Duration) -> Self {
        if let MockBody::Stream(s) = &mut self {
            s.first_delay = delay;
        }
        self
    }

    /// Sets what happens after the last frame (a stream only).
    pub(crate) fn with_ending(mut self, ending: Ending) -> Self {
        if let MockBody::Stream(s) = &mut self {
            s.ending = ending;
        }
        self
    }
}

impl SseBody {
    fn poll_ending(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ConnectionReset>>> {
        match &mut self.ending {
            Ending::Clean => {
                self.guards.clear();
                Poll::Ready(None)
            }
            Ending::Stall(shutdown) => {
                ready!(shutdown.as_mut().poll(cx));
                self.ending = Ending::cut();
                self.poll_ending(cx)
            }
            Ending::Cut { flushed } => {
                if !*flushed {
                    // hyper flushes what it buffered when the body is pending, and would drop
                    // it on an error: yield once so the frames sent so far reach the client.
                    *flushed = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                self.guards.clear();
                Poll::Ready(Some(Err(ConnectionReset)))
            }
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = ConnectionReset;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ConnectionReset>>> {
        match self.get_mut() {
            MockBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(s) => {
                if s.frames.is_empty() {
                    return s.poll_ending(cx);
                }
                let wait = s.interval + s.first_delay;
                if !wait.is_zero() {
                    let sleep = s
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
                    ready!(sleep.as_mut().poll(cx));
                    s.sleep = None;
                }
                s.first_delay = Duration::ZERO;
                let frame = s.frames.pop_front().map(|b| Ok(Frame::data(b)));
                if s.frames.is_empty() && matches!(s.ending, Ending::Clean) {
                    s.guards.clear();
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(b) => b.is_none(),
            MockBody::Stream(s) => s.frames.is_empty() && matches!(s.ending, Ending::Clean),
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
