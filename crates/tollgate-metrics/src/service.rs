//! [`Metrics`]: the service.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use metrics::SharedString;
use tokio::time::Instant;
use tollgate_core::observe::Observe;
use tollgate_core::{BoxError, RouteKey};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::handles::HandleCache;
use crate::labels::Labels;
use crate::observer::RequestObserver;
use crate::snapshot::Stats;

/// Records each request it passes on. Built by [`MetricsLayer`](crate::MetricsLayer).
///
/// See the [crate docs](crate) for examples.
#[derive(Clone)]
pub struct Metrics<S> {
    inner: S,
    provider: SharedString,
    stats: Arc<OnceLock<Arc<Stats>>>,
    cache: Arc<HandleCache>,
}

impl<S> Metrics<S> {
    pub(crate) fn new(
        inner: S,
        provider: SharedString,
        stats: Arc<OnceLock<Arc<Stats>>>,
        cache: Arc<HandleCache>,
    ) -> Self {
        Metrics {
            inner,
            provider,
            stats,
            cache,
        }
    }

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

impl<S, B, ResBody> Service<http::Request<B>> for Metrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// Attaches an observer for the layers below to report to, and opens the request's span —
    /// when anything listens: a `metrics` recorder, a [`MetricsHandle`](crate::MetricsHandle)
    /// or a `tracing` subscriber taking this crate's INFO spans. With none, the request passes
    /// through untouched.
    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let stats = self.stats.get();
        if stats.is_none() && !listening() {
            return ResponseFuture::passing(self.inner.call(request));
        }
        let route = RouteKey::of(&request).map_or(SharedString::const_str("none"), |key| {
            SharedString::from(key.to_shared())
        });
        let labels = Labels {
            provider: self.provider.clone(),
            route,
        };
        let span = tracing::info_span!(
            "tollgate.request",
            provider = &*labels.provider,
            route = &*labels.route,
            outcome = tracing::field::Empty,
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
            hops = tracing::field::Empty,
        );
        let observer = Arc::new(RequestObserver {
            labels,
            stats: stats.cloned(),
            cache: Arc::clone(&self.cache),
            retries: AtomicU32::new(0),
            retry_delay_nanos: AtomicU64::new(0),
            hops: AtomicU32::new(0),
        });
        request
            .extensions_mut()
            .insert(Observe::new(Arc::clone(&observer) as Arc<_>));
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ResponseFuture::new(future, observer, span, Instant::now())
    }
}

/// Whether a `metrics` recorder or a `tracing` subscriber would take what a request records:
/// a few nanoseconds, so that a layer nobody listens to costs next to nothing.
///
/// `metrics` falls back to its `NoopRecorder`, a zero-sized type, when no recorder is
/// installed (globally, or for the thread); every recorder that keeps metrics has state, so a
/// zero-sized recorder is taken for none. `tracing` answers from its callsite cache.
fn listening() -> bool {
    metrics::with_recorder(|recorder| std::mem::size_of_val(recorder) != 0)
        || tracing::enabled!(tracing::Level::INFO)
}

impl<S: fmt::Debug> fmt::Debug for Metrics<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("inner", &self.inner)
            .field("provider", &&*self.provider)
            .finish_non_exhaustive()
    }
}
