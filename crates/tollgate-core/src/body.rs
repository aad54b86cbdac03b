//! Buffering a request body once so later layers can read and replay it.
//!
//! Retry, fallback and token estimation must see a request's bytes, and retry and fallback must
//! send them more than once. The first layer that needs them calls [`buffer_request`], which
//! collects the body into one [`Bytes`] up to a limit ([`DEFAULT_BODY_LIMIT`], 32 MiB, by
//! default) and returns a `Request<`[`BufferedBody`]`>`. A `BufferedBody` is cheap to clone
//! (reference-counted), and buffering one again is free: its single chunk is handed back without
//! copying. Above the limit the request fails with [`BodyTooLarge`]; nothing is truncated.
//! As a layer, [`BufferBodyLayer`] does the same for every request before the service below
//! it, so retry and fallback underneath can clone requests freely.
//!
//! # Examples
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tollgate_core::body::{buffer_request, BodyTooLarge};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let request = http::Request::new(Full::new(Bytes::from_static(br#"{"model":"gpt-4o"}"#)));
//! let buffered = buffer_request(request, 1024).await.unwrap();
//! assert_eq!(buffered.body().bytes(), &Bytes::from_static(br#"{"model":"gpt-4o"}"#));
//!
//! // A second attempt is a clone, not a second read.
//! let again = buffered.clone();
//! assert_eq!(again.body().len(), 18);
//!
//! let too_big = http::Request::new(Full::new(Bytes::from(vec![b'x'; 2048])));
//! let err = buffer_request(too_big, 1024).await.unwrap_err();
//! assert_eq!(err.downcast_ref::<BodyTooLarge>().unwrap().limit(), 1024);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::BoxError;

/// The default limit for a buffered request body: 32 MiB, Anthropic's cap for the Messages API.
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// A request body held in memory: one [`Bytes`], cheap to clone, replayable.
///
/// As an [`http_body::Body`] it yields its bytes as one frame (none when empty) and never fails.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BufferedBody {
    bytes: Bytes,
    /// Set once the bytes have been yielded as a frame.
    done: bool,
}

impl BufferedBody {
    /// A body of these bytes.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        BufferedBody {
            bytes: bytes.into(),
            done: false,
        }
    }

    /// An empty body.
    pub const fn empty() -> Self {
        BufferedBody {
            bytes: Bytes::new(),
            done: false,
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl fmt::Debug for BufferedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies can hold prompts and secrets: show the size only.
        f.debug_struct("BufferedBody")
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl AsRef<[u8]> for BufferedBody {
    /// The whole body, for readers such as token estimators.
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<Bytes> for BufferedBody {
    fn from(bytes: Bytes) -> Self {
        BufferedBody::new(bytes)
    }
}

impl From<Vec<u8>> for BufferedBody {
    fn from(bytes: Vec<u8>) -> Self {
        BufferedBody::new(bytes)
    }
}

impl From<String> for BufferedBody {
    fn from(text: String) -> Self {
        BufferedBody::new(text)
    }
}

impl From<&'static str> for BufferedBody {
    fn from(text: &'static str) -> Self {
        BufferedBody::new(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for BufferedBody {
    fn from(bytes: &'static [u8]) -> Self {
        BufferedBody::new(Bytes::from_static(bytes))
    }
}

impl Body for BufferedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done || this.bytes.is_empty() {
            this.done = true;
            return Poll::Ready(None);
        }
        this.done = true;
        Poll::Ready(Some(Ok(Frame::data(this.bytes.clone()))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.bytes.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            SizeHint::with_exact(0)
        } else {
            SizeHint::with_exact(self.bytes.len() as u64)
        }
    }
}

/// A request body was larger than the buffering limit.
///
/// # Examples
///
/// ```
/// # use tollgate_core::body::BodyTooLarge;
/// # fn show(err: &BodyTooLarge) {
/// println!("{err}"); // "request body too large; limit is 1024 bytes"
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyTooLarge {
    limit: usize,
}

impl BodyTooLarge {
    /// The limit that was exceeded, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request body too large; limit is {} bytes", self.limit)
    }
}

impl std::error::Error for BodyTooLarge {}

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

// ===== impl BufferBodyLayer =====

/// Buffers each request's body once, before the inner service sees it: the inner service gets
/// `http::Request<`[`BufferedBody`]`>`, which is `Clone` and replays its bytes, so retry and
/// fallback above it can send it again. A body above the limit fails with [`BodyTooLarge`].
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tollgate_core::body::{BufferBodyLayer, BufferedBody};
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let inner = tower::service_fn(|request: http::Request<BufferedBody>| async move {
///     Ok::<_, std::convert::Infallible>(request.body().len())
/// });
/// let service = BufferBodyLayer::new().layer(inner);
/// let request = http::Request::new(Full::new(Bytes::from_static(b"hello")));
/// assert_eq!(service.oneshot(request).await.unwrap(), 5);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BufferBodyLayer {
    limit: usize,
}

impl BufferBodyLayer {
    /// Buffers up to [`DEFAULT_BODY_LIMIT`] (32 MiB).
    pub const fn new() -> Self {
        BufferBodyLayer {
            limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Buffers up to `limit` bytes.
    #[must_use]
    pub const fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

impl Default for BufferBodyLayer {
    fn default() -> Self {
        BufferBodyLayer::new()
    }
}

impl<S> tower_layer::Layer<S> for BufferBodyLayer {
    type Service = BufferBody<S>;

    fn layer(&self, inner: S) -> BufferBody<S> {
        BufferBody {
            inner,
            limit: self.limit,
        }
    }
}

/// The service of [`BufferBodyLayer`].
///
/// `poll_ready` readies the inner service; `call` hands it (swapped for a clone) and the request
/// to the response future, which reads the body, then calls it. Dropping the future drops the
/// request.
#[derive(Debug, Clone)]
pub struct BufferBody<S> {
    inner: S,
    limit: usize,
}

impl<S> BufferBody<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> tower_service::Service<http::Request<B>> for BufferBody<S>
where
    S: tower_service::Service<http::Request<BufferedBody>> + Clone,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BufferBodyFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        BufferBodyFuture {
            state: BufferState::Reading {
                read: buffer_request(request, self.limit),
                service: Some(service),
            },
        }
    }
}

pin_project! {
    /// The response future of [`BufferBody`].
    #[must_use = "futures do nothing unless polled"]
    pub struct BufferBodyFuture<S, B>
    where
        S: tower_service::Service<http::Request<BufferedBody>>,
    {
        #[pin]
        state: BufferState<S, B, S::Future>,
    }
}

pin_project! {
    #[project = BufferStateProj]
    enum BufferState<S, B, F> {
        Reading {
            #[pin]
            read: BufferFuture<B>,
            service: Option<S>,
        },
        Calling {
            #[pin]
            future: F,
        },
    }
}

impl<S, B> Future for BufferBodyFuture<S, B>
where
    S: tower_service::Service<http::Request<BufferedBody>>,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                BufferStateProj::Reading { read, service } => {
                    let request = ready!(read.poll(cx))?;
                    let mut service = service.take().expect("read once");
                    let future = service.call(request);
                    this.state.set(BufferState::Calling { future });
                }
                BufferStateProj::Calling { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
            }
        }
    }
}

impl<S, B> fmt::Debug for BufferBodyFuture<S, B>
where
    S: tower_service::Service<http::Request<BufferedBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferBodyFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
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

    #[tokio::test]
    async fn buffered_body_replays_from_clones() {
        let body = BufferedBody::from("xyz");
        let first = body.clone().collect().await.unwrap().to_bytes();
        let second = body.collect().await.unwrap().to_bytes();
        assert_eq!(first, second);
    }
}
