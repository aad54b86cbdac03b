//! [`PermitBody`]: a response body that holds its request's slot until it ends.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::shared::Permit;

pin_project! {
    /// The response body of [`ConcurrencyLimit`](crate::ConcurrencyLimit): the inner body,
    /// holding the request's slot until its last frame, an error, or its drop (when the layer
    /// holds slots until the body ends; otherwise the slot is already free). A body that is
    /// empty from the start frees the slot when it is first polled or dropped.
    #[derive(Debug)]
    pub struct PermitBody<B> {
        #[pin]
        inner: B,
        permit: Option<Permit>,
    }
}

impl<B> PermitBody<B> {
    pub(crate) fn new(inner: B, permit: Option<Permit>) -> Self {
        PermitBody { inner, permit }
    }

    /// The inner body, giving the slot back at once.
    pub fn into_inner(self) -> B {
        self.inner
    }

    /// Whether it still holds its request's slot.
    pub fn holds_permit(&self) -> bool {
        self.permit.is_some()
    }
}

impl<B: Body> Body for PermitBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            // The end, or an error: the request is over.
            *this.permit = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
