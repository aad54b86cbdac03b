//! [`buffer_request`]: reading a request body into memory, up to a limit, with its future
//! [`BufferFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::Body;
use pin_project_lite::pin_project;

use super::{BodyTooLarge, BufferedBody};
use crate::BoxError;

/// The default limit for a buffered request body: 32 MiB, Anthropic's cap for the Messages API.
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Reads a request's body into memory, up to `limit` bytes, and returns the request with a
/// [`BufferedBody`]. Head and extensions are kept.
///
/// # Errors
///
/// The future fails with a [`BoxError`] that is either a [`BodyTooLarge`] (the body has, or
/// announces through its size hint, more than `limit` bytes; it fails before reading when the
/// hint says so) or the body's own error.
///
/// # Cancellation
///
/// Dropping the future drops the request and whatever was read.
pub fn buffer_request<B>(request: http::Request<B>, limit: usize) -> BufferFuture<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    BufferFuture {
        parts: Some(parts),
        body,
        limit,
        first: None,
        rest: BytesMut::new(),
    }
}

pin_project! {
    /// The future of [`buffer_request`].
    #[must_use = "futures do nothing unless polled"]
    pub struct BufferFuture<B> {
        parts: Option<http::request::Parts>,
        #[pin]
        body: B,
        limit: usize,
        // The first chunk, kept as is so that a one-chunk body is never copied.
        first: Option<Bytes>,
        // Every later chunk, appended to a copy of the first.
        rest: BytesMut,
    }
}

impl<B> fmt::Debug for BufferFuture<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferFuture")
            .field("limit", &self.limit)
            .field("read", &buffered_len(self.first.as_ref(), &self.rest))
            .finish()
    }
}

/// How many bytes are held: `rest` starts with a copy of `first` once it is in use.
fn buffered_len(first: Option<&Bytes>, rest: &BytesMut) -> usize {
    if rest.is_empty() {
        first.map_or(0, Bytes::len)
    } else {
        rest.len()
    }
}

impl<B> Future for BufferFuture<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<http::Request<BufferedBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let limit = *this.limit;
        assert!(this.parts.is_some(), "BufferFuture polled after completion");
        if this.first.is_none() && this.rest.is_empty() {
            let lower = this.body.size_hint().lower();
            if usize::try_from(lower).map_or(true, |lower| lower > limit) {
                *this.parts = None;
                return Poll::Ready(Err(BodyTooLarge { limit }.into()));
            }
        }
        loop {
            match ready!(this.body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(mut data) = frame.into_data() else {
                        // Request trailers are not sent to LLM APIs; they are dropped.
                        continue;
                    };
                    let read = buffered_len(this.first.as_ref(), this.rest);
                    if data.remaining() > limit - read {
                        // Done: a later poll must not read on and send what is left.
                        *this.parts = None;
                        *this.first = None;
                        this.rest.clear();
                        return Poll::Ready(Err(BodyTooLarge { limit }.into()));
                    }
                    if data.remaining() == 0 {
                        continue;
                    }
                    match this.first {
                        None => *this.first = Some(data.copy_to_bytes(data.remaining())),
                        Some(first) => {
                            if this.rest.is_empty() {
                                this.rest.reserve(first.len() + data.remaining());
                                this.rest.extend_from_slice(first);
                            }
                            while data.has_remaining() {
                                let chunk = data.chunk();
                                let n = chunk.len();
                                this.rest.extend_from_slice(chunk);
                                data.advance(n);
                            }
                        }
                    }
                }
                Some(Err(err)) => {
                    *this.parts = None;
                    *this.first = None;
                    this.rest.clear();
                    return Poll::Ready(Err(err.into()));
                }
                None => {
                    let bytes = if this.rest.is_empty() {
                        this.first.take().unwrap_or_default()
                    } else {
                        std::mem::take(this.rest).freeze()
                    };
                    let Some(parts) = this.parts.take() else {
                        panic!("BufferFuture polled after completion");
                    };
                    return Poll::Ready(Ok(http::Request::from_parts(
                        parts,
                        BufferedBody::new(bytes),
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use std::collections::VecDeque;

    /// A body that yields the given frames, one per poll.
    struct Frames(VecDeque<Result<Frame<Bytes>, BoxError>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.get_mut().0.pop_front())
        }
    }

    fn chunked(chunks: &[&'static [u8]]) -> Frames {
        Frames(
            chunks
                .iter()
                .map(|c| Ok(Frame::data(Bytes::from_static(c))))
                .collect(),
        )
    }

    #[tokio::test]
    async fn single_chunk_is_not_copied() {
        let bytes = Bytes::from_static(b"hello");
        let ptr = bytes.as_ptr();
        let req = http::Request::new(BufferedBody::new(bytes));
        let out = buffer_request(req, 16).await.unwrap();
        assert_eq!(out.body().bytes().as_ptr(), ptr);
        // and again
        let out = buffer_request(out, 16).await.unwrap();
        assert_eq!(out.body().bytes().as_ptr(), ptr);
    }

    #[tokio::test]
    async fn many_chunks_are_joined() {
        let req = http::Request::new(chunked(&[b"ab", b"", b"cd", b"e"]));
        let out = buffer_request(req, 5).await.unwrap();
        assert_eq!(out.body().bytes(), &Bytes::from_static(b"abcde"));
    }

    #[tokio::test]
    async fn over_the_limit_while_streaming() {
        let req = http::Request::new(chunked(&[b"ab", b"cd", b"e"]));
        let err = buffer_request(req, 4).await.unwrap_err();
        assert_eq!(err.downcast_ref::<BodyTooLarge>().unwrap().limit(), 4);
    }

    #[tokio::test]
    async fn exactly_the_limit_is_fine() {
        let req = http::Request::new(BufferedBody::from("abcd"));
        assert!(buffer_request(req, 4).await.is_ok());
    }

    #[tokio::test]
    async fn keeps_head_and_extensions() {
        let mut req = http::Request::post("http://x/v1/chat/completions")
            .header("x-api-key", "k")
            .body(BufferedBody::from("{}"))
            .unwrap();
        req.extensions_mut().insert(crate::Priority::HIGH);
        let out = buffer_request(req, 16).await.unwrap();
        assert_eq!(out.method(), http::Method::POST);
        assert_eq!(out.headers()["x-api-key"], "k");
        assert_eq!(out.extensions().get(), Some(&crate::Priority::HIGH));
    }

    #[tokio::test]
    async fn body_errors_pass_through() {
        let frames = Frames(VecDeque::from([
            Ok(Frame::data(Bytes::from_static(b"a"))),
            Err("connection reset".into()),
        ]));
        let req = http::Request::new(frames);
        let err = buffer_request(req, 16).await.unwrap_err();
        assert_eq!(err.to_string(), "connection reset");
    }
}
