//! [`Stack`]: the built service; the type erasure and the request rewriting behind it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use pin_project_lite::pin_project;
use tollgate_cache::CacheHandle;
use tollgate_core::BoxError;
use tollgate_core::body::BufferedBody;
use tollgate_core::rewrite::Rewrite;
use tower::Service;

use super::error::{RewriteFailed, UnknownModel};
use super::future::{BoxFuture, ResponseFuture};
use super::provider::Rewrites;

/// The response body of a [`Stack`]: the provider's body, as it sent it, boxed.
pub type StackBody = UnsyncBoxBody<Bytes, BoxError>;

/// An HTTP client a [`Stack`] can be built over: a cloneable, `Send + Sync`
/// `tower::Service` from `http::Request<BufferedBody>` to `http::Response<Body>`, whose
/// errors, and whose body's errors, convert into [`BoxError`]. A hyper-util legacy `Client`,
/// a reqwest adapter and a `tower::service_fn` in tests all are.
///
/// It spells out, in one place, what [`StackBuilder::build`](super::StackBuilder::build) and
/// [`StackConfig::build`](super::StackConfig::build) ask of their transport. Every such
/// service implements it: there is nothing to implement by hand. Inside the crate it also
/// names the layers a stack is made of, as `Transport<Body = StackBody>`.
pub trait Transport:
    Service<
        Request<BufferedBody>,
        Response = Response<<Self as Transport>::Body>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The response body.
    type Body: http_body::Body<Data = Bytes, Error: Into<BoxError> + Send> + Send + 'static;
}

impl<T, B> Transport for T
where
    T: Service<
            Request<BufferedBody>,
            Response = Response<B>,
            Error: Into<BoxError>,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static,
    B: http_body::Body<Data = Bytes, Error: Into<BoxError> + Send> + Send + 'static,
{
    type Body = B;
}

/// A built stack: a cloneable, `Send + Sync` [`Service`] from `http::Request<BufferedBody>` to
/// `http::Response<StackBody>`, with [`BoxError`] errors.
///
/// Clones share every layer's state (quotas, breakers, cooldowns, metrics), so clone it into
/// as many tasks as you like. Errors are the layers' own: downcast to
/// [`RetriesExhausted`](crate::retry::RetriesExhausted),
/// [`AllTargetsFailed`](crate::fallback::AllTargetsFailed),
/// [`CircuitOpen`](crate::circuit_breaker::CircuitOpen),
/// [`Classified`](crate::Classified) (a transport error, with its verdict),
/// [`RewriteFailed`], ….
///
/// See the [module docs](super) for examples.
#[derive(Clone)]
pub struct Stack {
    inner: Erased,
    description: Arc<Description>,
}

#[derive(Debug)]
pub(crate) struct Description {
    pub(crate) primary: String,
    pub(crate) fallback: Vec<String>,
    pub(crate) context_window: Vec<String>,
    pub(crate) metrics: bool,
    pub(crate) cache: Option<CacheHandle>,
}

impl Stack {
    pub(crate) fn new(inner: Erased, description: Description) -> Self {
        Stack {
            inner,
            description: Arc::new(description),
        }
    }

    /// The primary provider's name.
    pub fn primary(&self) -> &str {
        &self.description.primary
    }

    /// The fallback chain's provider names, in order.
    pub fn fallback(&self) -> &[String] {
        &self.description.fallback
    }

    /// The context-window chain's provider names, in order.
    pub fn context_window(&self) -> &[String] {
        &self.description.context_window
    }

    /// A handle on the cache's store, if the stack has a
    /// [cache](super::StackBuilder::with_cache): its size, and `clear`. A stack built from a
    /// configuration with `[stack.cache]` has one too.
    pub fn cache(&self) -> Option<&CacheHandle> {
        self.description.cache.as_ref()
    }
}

impl Service<Request<BufferedBody>> for Stack {
    type Response = Response<StackBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<BufferedBody>) -> ResponseFuture {
        ResponseFuture::new(self.inner.call(request))
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("primary", &self.description.primary)
            .field("fallback", &self.description.fallback)
            .field("context_window", &self.description.context_window)
            .field("metrics", &self.description.metrics)
            .field("cache", &self.description.cache.is_some())
            .finish()
    }
}

// ===== type erasure =====

/// A service behind a trait object, its future boxed once.
trait Dyn: Send + Sync {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>>;
    fn call(&mut self, request: Request<BufferedBody>) -> BoxFuture;
    fn clone_box(&self) -> Box<dyn Dyn>;
}

/// A type-erased, cloneable service answering with a [`StackBody`].
pub(crate) struct Erased(Box<dyn Dyn>);

impl Erased {
    /// Erases `service`, whose responses already have a [`StackBody`].
    pub(crate) fn new<S>(service: S) -> Self
    where
        S: Transport<Body = StackBody>,
    {
        Erased(Box::new(Plain(service)))
    }

    /// Erases `service`, boxing its response bodies.
    pub(crate) fn boxing_body<S>(service: S) -> Self
    where
        S: Transport,
    {
        Erased::new(BoxBodies(service))
    }
}

impl Clone for Erased {
    fn clone(&self) -> Self {
        Erased(self.0.clone_box())
    }
}

impl fmt::Debug for Erased {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Erased").finish_non_exhaustive()
    }
}

impl Service<Request<BufferedBody>> for Erased {
    type Response = Response<StackBody>;
    type Error = BoxError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<BufferedBody>) -> BoxFuture {
        self.0.call(request)
    }
}

#[derive(Clone)]
struct Plain<S>(S);

impl<S> Dyn for Plain<S>
where
    S: Transport<Body = StackBody>,
{
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<BufferedBody>) -> BoxFuture {
        // Built straight into the box's argument: no `async` block to move it through first.
        Box::pin(ErrInto {
            inner: self.0.call(request),
        })
    }

    fn clone_box(&self) -> Box<dyn Dyn> {
        Box::new(self.clone())
    }
}

pin_project! {
    /// `inner`'s output, its error converted into a [`BoxError`].
    struct ErrInto<F> {
        #[pin]
        inner: F,
    }
}

impl<F, E> Future for ErrInto<F>
where
    F: Future<Output = Result<Response<StackBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<StackBody>, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map_err(Into::into)
    }
}

// ===== concrete glue, erased by none of it =====

/// `S`, its response bodies boxed into a [`StackBody`] and its errors into a [`BoxError`]:
/// one allocation per response, for the body; the future is `S`'s, wrapped, not boxed.
#[derive(Clone, Debug)]
pub(crate) struct BoxBodies<S>(pub(crate) S);

impl<S, B> Service<Request<BufferedBody>> for BoxBodies<S>
where
    S: Service<Request<BufferedBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static,
{
    type Response = Response<StackBody>;
    type Error = BoxError;
    type Future = BoxBodiesFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        BoxBodiesFuture {
            inner: self.0.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`BoxBodies`].
    pub(crate) struct BoxBodiesFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for BoxBodiesFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static,
{
    type Output = Result<Response<StackBody>, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.poll(cx) {
            Poll::Ready(Ok(response)) => Poll::Ready(Ok(response.map(box_body))),
            Poll::Ready(Err(error)) => Poll::Ready(Err(error.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// `body` as a [`StackBody`].
fn box_body<B>(body: B) -> StackBody
where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static,
{
    body.map_err(Into::into).boxed_unsync()
}

/// One of two services answering alike, chosen when the stack is built: an optional layer
/// (`Left`, the layer over the service; `Right`, the service alone) without erasing either.
#[derive(Clone, Debug)]
pub(crate) enum Either<A, B> {
    /// The first.
    Left(A),
    /// The second.
    Right(B),
}

impl<A, B> Service<Request<BufferedBody>> for Either<A, B>
where
    A: Service<Request<BufferedBody>, Response = Response<StackBody>, Error: Into<BoxError>>,
    B: Service<Request<BufferedBody>, Response = Response<StackBody>, Error: Into<BoxError>>,
{
    type Response = Response<StackBody>;
    type Error = BoxError;
    type Future = EitherFuture<A::Future, B::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Either::Left(service) => service.poll_ready(cx).map_err(Into::into),
            Either::Right(service) => service.poll_ready(cx).map_err(Into::into),
        }
    }

    #[inline]
    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        match self {
            Either::Left(service) => EitherFuture::Left {
                inner: service.call(request),
            },
            Either::Right(service) => EitherFuture::Right {
                inner: service.call(request),
            },
        }
    }
}

pin_project! {
    /// The response future of [`Either`].
    #[project = EitherProj]
    pub(crate) enum EitherFuture<A, B> {
        /// The first service's.
        Left { #[pin] inner: A },
        /// The second service's.
        Right { #[pin] inner: B },
    }
}

impl<A, B, T, EA, EB> Future for EitherFuture<A, B>
where
    A: Future<Output = Result<T, EA>>,
    B: Future<Output = Result<T, EB>>,
    EA: Into<BoxError>,
    EB: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            EitherProj::Left { inner } => inner.poll(cx).map_err(Into::into),
            EitherProj::Right { inner } => inner.poll(cx).map_err(Into::into),
        }
    }
}

// ===== request rewriting =====

/// Rewrites each request for one provider — endpoint, credentials, model — then sends it
/// down that provider's stack. It is not erased: a [`Stack`] boxes its whole future once.
#[derive(Clone)]
pub(crate) struct Rewritten<S> {
    rewrites: Arc<Rewrites>,
    inner: S,
}

impl<S> Rewritten<S> {
    /// `service`, each request rewritten for its provider first.
    pub(crate) fn new(rewrites: Rewrites, service: S) -> Self {
        Rewritten {
            rewrites: Arc::new(rewrites),
            inner: service,
        }
    }

    fn rewrite(&self, request: &mut Request<BufferedBody>) -> Result<(), BoxError> {
        let rewrites = &*self.rewrites;
        rewrites.endpoint.rewrite(request)?;
        if let Some(credentials) = &rewrites.credentials {
            credentials.rewrite(request)?;
        }
        if let Some(model) = &rewrites.model {
            model.rewrite(request)?;
        }
        if let Some(include_usage) = &rewrites.include_usage {
            include_usage.rewrite(request)?;
        }
        Ok(())
    }
}

impl<S> Service<Request<BufferedBody>> for Rewritten<S>
where
    S: Service<Request<BufferedBody>, Response = Response<StackBody>, Error: Into<BoxError>>,
{
    type Response = Response<StackBody>;
    type Error = BoxError;
    type Future = RewrittenFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<BufferedBody>) -> Self::Future {
        if let Some(models) = &self.rewrites.refused_models
            && models.names_unknown(&request)
        {
            let error = UnknownModel::new(Arc::clone(&self.rewrites.provider));
            return RewrittenFuture::Refused {
                error: Some(error.into()),
            };
        }
        match self.rewrite(&mut request) {
            Ok(()) => RewrittenFuture::Called {
                inner: self.inner.call(request),
            },
            Err(source) => {
                let error = RewriteFailed::new(Arc::clone(&self.rewrites.provider), source);
                RewrittenFuture::Refused {
                    error: Some(error.into()),
                }
            }
        }
    }
}

pin_project! {
    /// The response future of [`Rewritten`].
    #[project = RewrittenProj]
    pub(crate) enum RewrittenFuture<F> {
        /// Refused before anything was sent: the error, until polled.
        Refused { error: Option<BoxError> },
        /// Sent down the provider's stack.
        Called { #[pin] inner: F },
    }
}

impl<F, E> Future for RewrittenFuture<F>
where
    F: Future<Output = Result<Response<StackBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<StackBody>, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RewrittenProj::Called { inner } => inner.poll(cx).map_err(Into::into),
            RewrittenProj::Refused { error } => {
                Poll::Ready(Err(error.take().expect("polled after completion")))
            }
        }
    }
}
