//! [`ResponseFuture`]: waits for the response head, then for the first chunk of real data,
//! each within its limit.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tollgate_core::{BoxError, Classified, Deadline, Sooner, StreamReport};

use crate::body::{BodyLimits, TimeoutBody, is_real_data};
use crate::config::Packed;
use crate::error::{TimeLimit, TimedOut};
use tollgate_core::timer::poll_sleep;

/// Frames of keep-alives held before the first real data, at most; past that the response is
/// handed on as it is.
const MAX_HELD: usize = 64;

pin_project! {
    /// The response future of [`Timeout`](crate::Timeout).
    ///
    /// It resolves once the response head *and* the first chunk of real data have arrived (or
    /// the body ended before any), so that a failure before the first byte — no head, no first
    /// token, a connection cut or a body error before any data — is an error of the attempt,
    /// which a retry or a fallback above can handle without the caller seeing anything.
    ///
    /// # Cancellation
    ///
    /// Dropping it drops the inner future or the response being read, and the timer.
    #[must_use = "futures do nothing unless polled"]
    #[project = ResponseFutureProj]
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        limits: Packed,
        // The request's deadline.
        deadline: Option<Instant>,
        // When the attempt began, read the first time a limit needs it.
        start: Option<Instant>,
        sleep: Option<Pin<Box<Sleep>>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Head { #[pin] future: F },
        // The head arrived; the body has been pending, or sent only keep-alives (boxed: a
        // response read at once never gets here, and the future stays small).
        FirstChunk { waiting: Box<Waiting<B>> },
        Expired { error: Option<TimedOut> },
        Done,
    }
}

/// A response whose first chunk is awaited.
struct Waiting<B> {
    response: Option<http::Response<B>>,
    held: VecDeque<Frame<Bytes>>,
    /// When the first-chunk limit (or the deadline) runs out.
    expires: Option<(Instant, TimeLimit, Duration)>,
}

/// What reading the first chunk came to.
enum First {
    /// Real data, or the end of the body: hand the response on.
    Ready(Option<Bytes>),
    /// A keep-alive: hold it and read on.
    KeepAlive(Frame<Bytes>),
    /// A body error before any data.
    Failed(BoxError),
    Pending,
}

#[inline]
fn read_first<B>(body: &mut B, cx: &mut Context<'_>, held: usize) -> First
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    match Pin::new(body).poll_frame(cx) {
        Poll::Ready(Some(Ok(frame))) if is_real_data(&frame) || held >= MAX_HELD => {
            match frame.into_data() {
                Ok(data) => First::Ready(Some(data)),
                Err(trailers) => First::KeepAlive(trailers),
            }
        }
        Poll::Ready(Some(Ok(keep_alive))) => First::KeepAlive(keep_alive),
        Poll::Ready(Some(Err(error))) => First::Failed(Classified::transport(error)),
        Poll::Ready(None) => First::Ready(None),
        Poll::Pending => First::Pending,
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn new(future: F, limits: Packed, deadline: Option<Instant>) -> Self {
        ResponseFuture {
            state: State::Head { future },
            limits,
            deadline,
            start: None,
            sleep: None,
        }
    }

    /// An attempt whose request's deadline had already passed: it fails at once.
    pub(crate) fn expired(limits: Packed) -> Self {
        ResponseFuture {
            state: State::Expired {
                error: Some(TimedOut::new(TimeLimit::Deadline, Duration::ZERO)),
            },
            limits,
            deadline: None,
            start: None,
            sleep: None,
        }
    }
}

/// The sooner of a limit counted from `from` and the deadline (the limit on a tie), which of
/// them it is, and how long after `from` it ends.
pub(crate) fn sooner(
    from: Instant,
    limit: Option<Duration>,
    which: TimeLimit,
    deadline: Option<Instant>,
) -> Option<(Instant, TimeLimit, Duration)> {
    Some(
        match Deadline::sooner(deadline.map(Deadline::at), limit, || from)? {
            Sooner::Limit(at) => (at, which, limit.unwrap_or_default()),
            Sooner::Deadline(at) => (at, TimeLimit::Deadline, at.saturating_duration_since(from)),
        },
    )
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Into<BoxError>,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Output = Result<http::Response<TimeoutBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Head { future } => {
                    let Poll::Ready(result) = future.poll(cx) else {
                        let from = *this.start.get_or_insert_with(Instant::now);
                        let head = this.limits.response_head();
                        let expires = sooner(from, head, TimeLimit::ResponseHead, *this.deadline);
                        return this.expire(expires, cx);
                    };
                    let mut response = result.map_err(Into::into)?;
                    // The common case, decided here: the first chunk is there already.
                    match read_first(response.body_mut(), cx, 0) {
                        First::Ready(first) => {
                            this.state.set(State::Done);
                            let response = this.hand_on(response, VecDeque::new(), first);
                            return Poll::Ready(Ok(response));
                        }
                        First::Failed(error) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(error));
                        }
                        First::KeepAlive(frame) => this.state.set(State::FirstChunk {
                            waiting: Box::new(Waiting {
                                response: Some(response),
                                held: VecDeque::from([frame]),
                                expires: None,
                            }),
                        }),
                        First::Pending => this.state.set(State::FirstChunk {
                            waiting: Box::new(Waiting {
                                response: Some(response),
                                held: VecDeque::new(),
                                expires: None,
                            }),
                        }),
                    }
                }
                StateProj::FirstChunk { waiting } => {
                    let Waiting {
                        response,
                        held,
                        expires,
                    } = &mut **waiting;
                    let body = response.as_mut().expect("read until handed on").body_mut();
                    match read_first(body, cx, held.len()) {
                        First::Ready(first) => {
                            let response = response.take().expect("handed on once");
                            let held = std::mem::take(held);
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(this.hand_on(response, held, first)));
                        }
                        First::Failed(error) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(error));
                        }
                        First::KeepAlive(frame) => held.push_back(frame),
                        First::Pending => {
                            // Counted from the head: from the first time the body is found
                            // pending, right after it.
                            if expires.is_none() {
                                let first = this.limits.first_chunk();
                                let from = Instant::now();
                                *expires =
                                    sooner(from, first, TimeLimit::FirstChunk, *this.deadline);
                            }
                            let expires = *expires;
                            return this.expire(expires, cx);
                        }
                    }
                }
                StateProj::Expired { error } => {
                    let error = error.take().expect("an expired attempt fails once");
                    this.state.set(State::Done);
                    return Poll::Ready(Err(error.classified()));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

impl<F, B: Body> ResponseFutureProj<'_, F, B> {
    /// Waits for `expires`, if any: then the attempt fails with it.
    fn expire<T>(
        &mut self,
        expires: Option<(Instant, TimeLimit, Duration)>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, BoxError>> {
        let Some((at, limit, after)) = expires else {
            return Poll::Pending;
        };
        ready!(poll_sleep(self.sleep, at, cx));
        self.state.set(State::Done);
        Poll::Ready(Err(TimedOut::new(limit, after).classified()))
    }

    /// The response with its body under the idle and total limits, the frames read so far
    /// first.
    #[inline]
    fn hand_on(
        &mut self,
        response: http::Response<B>,
        held: VecDeque<Frame<Bytes>>,
        first: Option<Bytes>,
    ) -> http::Response<TimeoutBody<B>> {
        // `None` for the first chunk: the body ended.
        let open = first.is_some() && !response.body().is_end_stream();
        if !open && held.is_empty() {
            // The common answer, read at once: nothing left to time.
            return response.map(|_| TimeoutBody::read(first));
        }
        let limits = BodyLimits {
            idle: self.limits.idle(),
            total: self.limits.total(),
            start: *self.start,
            deadline: *self.deadline,
        };
        let sleep = self.sleep.take();
        // A followed stream that a body limit may end is told so (looked up only then).
        let report = (open && limits.any())
            .then(|| StreamReport::of(&response).cloned())
            .flatten();
        response.map(|body| {
            let inner = open.then_some(body);
            TimeoutBody::rest(inner, held, first, limits, sleep, report)
        })
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("limits", &self.limits)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
