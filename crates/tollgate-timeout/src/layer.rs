//! [`TimeoutLayer`]: the layer.

use tower_layer::Layer;

use crate::config::TimeoutConfig;
use crate::service::Timeout;

/// Holds each attempt to the time limits of a [`TimeoutConfig`].
///
/// See the [crate docs](crate) for examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutLayer {
    config: TimeoutConfig,
}

impl TimeoutLayer {
    /// A layer holding attempts to `config`'s limits.
    pub const fn new(config: TimeoutConfig) -> Self {
        TimeoutLayer { config }
    }

    /// The limits.
    pub const fn config(&self) -> &TimeoutConfig {
        &self.config
    }
}

impl Default for TimeoutLayer {
    /// The defaults for LLM calls ([`TimeoutConfig::default`]).
    fn default() -> Self {
        TimeoutLayer::new(TimeoutConfig::default())
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout::new(inner, self.config)
    }
}
