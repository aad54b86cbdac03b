//! [`MetricsLayer`] and [`MetricsHandle`].

use std::fmt;
use std::sync::Arc;

use metrics::SharedString;
use tower_layer::Layer;

use crate::handles::HandleCache;
use crate::service::Metrics;
use crate::snapshot::{Snapshot, Stats};

/// Records every logical request — outcome, latency, tokens, retries, hops — through the
/// `metrics` facade and `tracing`, and, made with [`pair`](Self::pair), into an in-process
/// [`Snapshot`]. Put it outermost. Its metric handles are registered with the recorder
/// installed when a label set is first seen: install the recorder before sending requests.
///
/// See the [crate docs](crate) for examples.
#[derive(Clone)]
pub struct MetricsLayer {
    provider: SharedString,
    stats: Option<Arc<Stats>>,
    cache: Arc<HandleCache>,
}

impl MetricsLayer {
    /// Records to the `metrics` facade (any exporter) and `tracing`, labelled `provider`.
    pub fn new(provider: &str) -> Self {
        let provider = SharedString::from(Arc::<str>::from(provider));
        MetricsLayer {
            cache: Arc::new(HandleCache::new(provider.clone())),
            provider,
            stats: None,
        }
    }

    /// As [`new`](Self::new), and into an in-process snapshot read through the handle.
    pub fn pair(provider: &str) -> (Self, MetricsHandle) {
        let stats = Arc::new(Stats::new());
        let layer = MetricsLayer {
            stats: Some(Arc::clone(&stats)),
            ..MetricsLayer::new(provider)
        };
        (layer, MetricsHandle { stats })
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Metrics<S> {
        Metrics::new(
            inner,
            self.provider.clone(),
            self.stats.clone(),
            Arc::clone(&self.cache),
        )
    }
}

impl fmt::Debug for MetricsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsLayer")
            .field("provider", &&*self.provider)
            .field("snapshot", &self.stats.is_some())
            .finish()
    }
}

/// Reads the in-process figures of a [`MetricsLayer`] made with [`MetricsLayer::pair`]. Cheap
/// to clone.
#[derive(Clone)]
pub struct MetricsHandle {
    stats: Arc<Stats>,
}

impl MetricsHandle {
    /// The figures now.
    pub fn snapshot(&self) -> Snapshot {
        self.stats.snapshot()
    }
}

impl fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}
