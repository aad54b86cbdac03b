//! [`Stack`]: the built service; the type erasure and the request rewriting behind it.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
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
        Erased(Box::new(BoxingBody(service)))
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
        let future = self.0.call(request);
        Box::pin(async move { future.await.map_err(Into::into) })
    }

    fn clone_box(&self) -> Box<dyn Dyn> {
        Box::new(self.clone())
    }
}

#[derive(Clone)]
struct BoxingBody<S>(S);

impl<S> Dyn for BoxingBody<S>
where
    S: Transport,
{
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<BufferedBody>) -> BoxFuture {
        let future = self.0.call(request);
        Box::pin(async move {
            let response = future.await.map_err(Into::into)?;
            Ok(response.map(|body| body.map_err(Into::into).boxed_unsync()))
        })
    }

    fn clone_box(&self) -> Box<dyn Dyn> {
        Box::new(self.clone())
    }
}

// ===== request rewriting =====

/// Rewrites each request for one provider — endpoint, credentials, model — then sends it
/// down that provider's stack, erased as [`Plain`] erases it.
#[derive(Clone)]
struct Rewritten<S> {
    rewrites: Arc<Rewrites>,
    inner: Plain<S>,
}

impl<S> Rewritten<S> {
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

impl Erased {
    /// Erases `service`, rewriting each request for its provider first.
    pub(crate) fn rewriting<S>(rewrites: Rewrites, service: S) -> Self
    where
        S: Transport<Body = StackBody>,
    {
        Erased(Box::new(Rewritten {
            rewrites: Arc::new(rewrites),
            inner: Plain(service),
        }))
    }
}

impl<S> Dyn for Rewritten<S>
where
    S: Transport<Body = StackBody>,
{
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<BufferedBody>) -> BoxFuture {
        if let Some(models) = &self.rewrites.refused_models
            && models.names_unknown(&request)
        {
            let error = UnknownModel::new(Arc::clone(&self.rewrites.provider));
            return Box::pin(std::future::ready(Err(error.into())));
        }
        match self.rewrite(&mut request) {
            Ok(()) => self.inner.call(request),
            Err(source) => {
                let error = RewriteFailed::new(Arc::clone(&self.rewrites.provider), source);
                Box::pin(std::future::ready(Err(error.into())))
            }
        }
    }

    fn clone_box(&self) -> Box<dyn Dyn> {
        Box::new(self.clone())
    }
}
