//! [`PeekedBody`]: a response body handed on untouched after classification.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The body of a response that went through a [`ClassifyLayer`](super::ClassifyLayer).
    ///
    /// A success body is the inner body itself, polled in place. An error body was read ahead
    /// (at most the peek limit) to classify it; its frames — data and trailers, and the error if
    /// reading failed — are replayed first, in order and unchanged, then the rest of the inner
    /// body follows. Data and error types are the inner body's, so nothing the server sent is
    /// altered or lost.
    pub struct PeekedBody<B: Body> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B: Body> {
        Direct { #[pin] body: B },
        Replayed { replay: Replay<B> },
    }
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
        }
    }

    pub(crate) fn replayed(replay: Replay<B>) -> Self {
        PeekedBody {
            kind: Kind::Replayed { replay },
        }
    }

    /// Whether the body was read ahead for classification (an error response) rather than
    /// passed through as it is.
    pub fn was_peeked(&self) -> bool {
        matches!(self.kind, Kind::Replayed { .. })
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

impl<B: Body> Body for PeekedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Direct { body } => body.poll_frame(cx),
            KindProj::Replayed { replay } => replay.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Direct { body } => body.is_end_stream(),
            Kind::Replayed { replay } => replay.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Direct { body } => body.size_hint(),
            Kind::Replayed { replay } => replay.size_hint(),
        }
    }
}

impl<B: Body> fmt::Debug for PeekedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Direct { .. } => f.debug_struct("PeekedBody").finish_non_exhaustive(),
            Kind::Replayed { replay } => f
                .debug_struct("PeekedBody")
                .field("replayed_frames", &replay.frames.len())
                .field("replayed_bytes", &replay.buffered)
                .field("replays_error", &replay.error.is_some())
                .finish_non_exhaustive(),
        }
    }
}
