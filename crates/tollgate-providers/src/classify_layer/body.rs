//! [`PeekedBody`]: a response body handed on untouched after classification, and followed when
//! it is an event stream.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tollgate_core::{BoxError, Classified, ErrorClass, StreamReport, transport_verdict};

use super::sse::{Follower, SharedClassifier};

pin_project! {
    /// The body of a response that went through a [`ClassifyLayer`](super::ClassifyLayer).
    ///
    /// A success body is the inner body itself, polled in place. An error body was read ahead
    /// (at most the peek limit) to classify it; its frames — data and trailers, and the error if
    /// reading failed — are replayed first, in order and unchanged, then the rest of the inner
    /// body follows. Every frame is the inner body's own, so nothing the server sent is altered
    /// or lost.
    ///
    /// A successful event stream (`text/event-stream`) is also *followed*: each frame is handed
    /// on as soon as it is read, and inspected after; an error event or a missing terminal event
    /// ends the body with an error (see the [module docs](super#event-streams)).
    ///
    /// # Errors
    ///
    /// The inner body's errors, boxed. A followed stream also ends with a
    /// [`Classified`](tollgate_core::Classified) wrapping a
    /// [`StreamFailed`](super::error::StreamFailed) or a
    /// [`StreamTruncated`](super::error::StreamTruncated). After any error the body ends.
    pub struct PeekedBody<B: Body> {
        #[pin]
        kind: Kind<B>,
        follow: Option<Box<Follow>>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B: Body> {
        Direct { #[pin] body: B },
        Replayed { replay: Replay<B> },
    }
}

/// An event stream being followed.
struct Follow {
    follower: Follower,
    /// Told how the stream ends (dropped unended: abandoned).
    report: StreamReport,
    /// The report was told of the first event.
    first_told: bool,
    /// The error the stream fails with, yielded at the next poll.
    pending: Option<BoxError>,
    /// The body ended (cleanly or with an error).
    done: bool,
}

/// What the response future read ahead, then the rest of the body (boxed: it was polled in the
/// future and moved here; only error bodies take this path).
pub(crate) struct Replay<B: Body> {
    pub(crate) frames: VecDeque<Frame<B::Data>>,
    /// Bytes of data in `frames`.
    pub(crate) buffered: u64,
    pub(crate) error: Option<B::Error>,
    /// `None` once the inner body ended (or failed).
    pub(crate) rest: Option<Pin<Box<B>>>,
}

impl<B: Body> PeekedBody<B> {
    pub(crate) fn direct(body: B) -> Self {
        PeekedBody {
            kind: Kind::Direct { body },
            follow: None,
        }
    }

    /// A successful event stream, followed as it passes.
    pub(crate) fn followed(body: B, classifier: SharedClassifier, report: StreamReport) -> Self {
        PeekedBody {
            kind: Kind::Direct { body },
            follow: Some(Box::new(Follow {
                follower: Follower::new(classifier),
                report,
                first_told: false,
                pending: None,
                done: false,
            })),
        }
    }

    pub(crate) fn replayed(replay: Replay<B>) -> Self {
        PeekedBody {
            kind: Kind::Replayed { replay },
            follow: None,
        }
    }

    /// Whether the body was read ahead for classification (an error response) rather than
    /// passed through as it is.
    pub fn was_peeked(&self) -> bool {
        matches!(self.kind, Kind::Replayed { .. })
    }

    /// Whether the body is a successful event stream followed as it passes, so an error event
    /// or a missing terminal event ends it with an error.
    pub fn follows_events(&self) -> bool {
        self.follow.is_some()
    }
}

/// What [`Body::poll_frame`] returns for a body `B`.
type Polled<B> = Poll<Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>>;

impl<B: Body> Replay<B> {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Polled<B> {
        if let Some(frame) = self.frames.pop_front() {
            if let Some(data) = frame.data_ref() {
                self.buffered -= data.remaining() as u64;
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(error) = self.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        let Some(rest) = self.rest.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = rest.as_mut().poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.rest = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(|rest| rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let Some(rest) = &self.rest else {
            return SizeHint::with_exact(self.buffered);
        };
        let inner = rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(self.buffered));
        if let Some(upper) = inner.upper().and_then(|u| u.checked_add(self.buffered)) {
            hint.set_upper(upper);
        }
        hint
    }
}

impl<B: Body> Kind<B> {
    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<B> {
        match self.project() {
            KindProj::Direct { body } => body.poll_frame(cx),
            KindProj::Replayed { replay } => replay.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Kind::Direct { body } => body.is_end_stream(),
            Kind::Replayed { replay } => replay.is_end_stream(),
        }
    }
}

impl<B> Body for PeekedBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(follow) = this.follow.as_deref_mut() else {
            return this
                .kind
                .poll_frame(cx)
                .map(|frame| frame.map(|result| result.map_err(Classified::transport)));
        };
        if let Some(error) = follow.pending.take() {
            follow.done = true;
            return Poll::Ready(Some(Err(error)));
        }
        if follow.done {
            return Poll::Ready(None);
        }
        // Handed on as read: the follower only looks at the frame on its way out.
        Poll::Ready(match ready!(this.kind.poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    follow.pending = follow.follower.feed(data);
                    if !follow.first_told && follow.follower.has_seen_event() {
                        follow.first_told = true;
                        follow.report.first_data();
                    }
                }
                if let Some(error) = &follow.pending {
                    follow.report.fail(class_of(&**error));
                }
                // An error event as the stream's first event: the error instead of its bytes,
                // so that no byte reaches the caller and a layer above may still retry (the
                // zero-chunk rule). (A frame carrying events before it is handed on whole.)
                match follow.pending.take() {
                    Some(error) if follow.follower.failed_on_first_event() => {
                        follow.done = true;
                        Some(Err(error))
                    }
                    pending => {
                        follow.pending = pending;
                        Some(Ok(frame))
                    }
                }
            }
            Some(Err(error)) => {
                follow.done = true;
                let error = Classified::transport(error);
                follow.report.fail(class_of(&*error));
                Some(Err(error))
            }
            None => {
                follow.done = true;
                match follow.follower.finish() {
                    Some(error) => {
                        follow.report.fail(class_of(&*error));
                        Some(Err(error))
                    }
                    None => {
                        follow.report.complete(follow.follower.usage());
                        None
                    }
                }
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        match &self.follow {
            None => self.kind.is_end_stream(),
            Some(follow) => {
                follow.pending.is_none()
                    && (follow.done || (follow.follower.is_finished() && self.kind.is_end_stream()))
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Direct { body } => body.size_hint(),
            Kind::Replayed { replay } => replay.size_hint(),
        }
    }
}

/// The class of the error a followed stream fails with.
fn class_of(error: &(dyn std::error::Error + 'static)) -> ErrorClass {
    transport_verdict(error)
        .class()
        .unwrap_or(ErrorClass::Unknown)
}

impl<B: Body> fmt::Debug for PeekedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Direct { .. } => f
                .debug_struct("PeekedBody")
                .field("follows_events", &self.follow.is_some())
                .finish_non_exhaustive(),
            Kind::Replayed { replay } => f
                .debug_struct("PeekedBody")
                .field("replayed_frames", &replay.frames.len())
                .field("replayed_bytes", &replay.buffered)
                .field("replays_error", &replay.error.is_some())
                .finish_non_exhaustive(),
        }
    }
}
