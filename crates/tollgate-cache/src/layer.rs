//! [`CacheLayer`] and [`CacheHandle`].

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::policy::CacheConfig;
use crate::service::Cache;
use crate::store::Shared;

/// Answers identical requests from a bounded cache and coalesces concurrent ones. The store is
/// made with the layer: every service it makes, their clones and the layer's clones share it.
///
/// See the [crate docs](crate) for examples.
#[derive(Clone)]
pub struct CacheLayer {
    shared: Arc<Shared>,
}

impl CacheLayer {
    /// A cache configured by `config`.
    pub fn new(config: CacheConfig) -> Self {
        CacheLayer {
            shared: Arc::new(Shared::new(config)),
        }
    }

    /// A handle on the store, for its size and to clear it.
    pub fn handle(&self) -> CacheHandle {
        CacheHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.shared.config
    }
}

impl Default for CacheLayer {
    /// [`CacheConfig::default`]: opt-in requests, 5 minutes, 10 000 entries, 64 MiB.
    fn default() -> Self {
        CacheLayer::new(CacheConfig::default())
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = Cache<S>;

    fn layer(&self, inner: S) -> Cache<S> {
        Cache::new(inner, Arc::clone(&self.shared))
    }
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

/// A side handle on a [`CacheLayer`]'s store.
#[derive(Clone)]
pub struct CacheHandle {
    shared: Arc<Shared>,
}

impl CacheHandle {
    /// Entries held (responses, and aliases from raw bodies to their normalised form). moka
    /// applies evictions in batches: call [`run_pending_tasks`](Self::run_pending_tasks) first
    /// for an exact figure.
    pub fn entry_count(&self) -> u64 {
        self.shared.entry_count()
    }

    /// An upper bound on the bytes held, by the same measure as
    /// [`max_bytes`](CacheConfig::max_bytes).
    pub fn size_bytes(&self) -> u64 {
        self.shared.weighted_bytes()
    }

    /// Applies pending evictions and expirations now.
    pub fn run_pending_tasks(&self) {
        self.shared.run_pending_tasks();
    }

    /// Drops every entry; requests in flight are unaffected.
    pub fn clear(&self) {
        self.shared.invalidate_all();
    }
}

impl fmt::Debug for CacheHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheHandle")
            .field("entries", &self.entry_count())
            .finish()
    }
}
