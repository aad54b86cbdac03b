//! [`MetricsLayer`] and [`MetricsHandle`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use metrics::SharedString;
use tower_layer::Layer;

use crate::handles::HandleCache;
use crate::service::Metrics;
use crate::snapshot::{Snapshot, Stats};

/// Records every logical request — outcome, latency, tokens, retries, hops — through the
/// `metrics` facade and `tracing`, and, once a [`handle`](Self::handle) is taken, into an
/// in-process [`Snapshot`]. Put it outermost. Its metric handles are registered with the recorder
/// installed when a label set is first seen: install the recorder before sending requests.
///
/// See the [crate docs](crate) for examples.
#[derive(Clone)]
pub struct MetricsLayer {
    provider: SharedString,
    stats: Arc<OnceLock<Arc<Stats>>>,
    cache: Arc<HandleCache>,
}

impl MetricsLayer {
    /// Records to the `metrics` facade (any exporter) and `tracing`, labelled `provider`.
    pub fn new(provider: &str) -> Self {
        let provider = SharedString::from(Arc::<str>::from(provider));
        MetricsLayer {
            cache: Arc::new(HandleCache::new(provider.clone())),
            provider,
            stats: Arc::new(OnceLock::new()),
        }
    }

    /// A handle on in-process figures. The layer, its clones and the services they made
    /// record into a [`Snapshot`] from the first call on: before any handle is taken, they pay
    /// nothing for it.
    pub fn handle(&self) -> MetricsHandle {
        let stats = self.stats.get_or_init(|| Arc::new(Stats::new()));
        MetricsHandle {
            stats: Arc::clone(stats),
        }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Metrics<S> {
        Metrics::new(
            inner,
            self.provider.clone(),
            Arc::clone(&self.stats),
            Arc::clone(&self.cache),
        )
    }
}

impl fmt::Debug for MetricsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsLayer")
            .field("provider", &&*self.provider)
            .field("snapshot", &self.stats.get().is_some())
            .finish()
    }
}

/// Reads the in-process figures of a [`MetricsLayer`], from [`MetricsLayer::handle`]. Cheap to
/// clone.
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
