//! [`FallbackLayer`]: the layer.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::config::FallbackConfig;
use crate::service::{Fallback, Shared};

/// Falls back from the inner service (the primary) to other targets, in order, when a verdict
/// says so; to a context-window chain of larger-context models and a content-policy chain.
/// The service it makes and that service's clones share the cooldowns.
///
/// See the [crate docs](crate) for examples.
pub struct FallbackLayer<S> {
    config: FallbackConfig<S>,
}

impl<S> FallbackLayer<S> {
    /// Falls back as `config` says.
    pub fn new(config: FallbackConfig<S>) -> Self {
        FallbackLayer { config }
    }

    /// What the layer was built with.
    pub fn config(&self) -> &FallbackConfig<S> {
        &self.config
    }
}

impl<S: Clone> Layer<S> for FallbackLayer<S> {
    type Service = Fallback<S>;

    /// The cooldowns are shared by the clones of the service this makes.
    fn layer(&self, primary: S) -> Fallback<S> {
        let config = &self.config;
        Fallback::new(
            primary,
            Arc::new(Shared::new(
                config.policy.clone(),
                Arc::clone(&config.primary_name),
                config.targets.clone(),
                config.context_window_targets.clone(),
                config.content_policy_targets.clone(),
            )),
        )
    }
}

impl<S: Clone> Clone for FallbackLayer<S> {
    fn clone(&self) -> Self {
        FallbackLayer {
            config: self.config.clone(),
        }
    }
}

impl<S> fmt::Debug for FallbackLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer")
            .field("config", &self.config)
            .finish()
    }
}
