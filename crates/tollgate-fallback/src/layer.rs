//! [`FallbackLayer`]: the layer.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::service::{Fallback, Shared};
use crate::target::{FallbackPolicy, Target};

/// Falls back from the inner service (the primary) to other targets, in order, when a verdict
/// says so; to a context-window chain of larger-context models and a content-policy chain.
/// The service it makes and that service's clones share the cooldowns.
///
/// See the [crate docs](crate) for examples.
pub struct FallbackLayer<S> {
    policy: FallbackPolicy,
    primary_name: Arc<str>,
    fallbacks: Vec<Target<S>>,
    context_window: Vec<Target<S>>,
    content_policy: Vec<Target<S>>,
}

impl<S> FallbackLayer<S> {
    /// Falls back to `fallbacks`, in order, with the default policy.
    pub fn new(fallbacks: impl IntoIterator<Item = Target<S>>) -> Self {
        FallbackLayer {
            policy: FallbackPolicy::default(),
            primary_name: Arc::from("primary"),
            fallbacks: fallbacks.into_iter().collect(),
            context_window: Vec::new(),
            content_policy: Vec::new(),
        }
    }

    /// Names the primary in errors (`"primary"` by default).
    #[must_use]
    pub fn primary_name(mut self, name: &str) -> Self {
        self.primary_name = Arc::from(name);
        self
    }

    /// Moves on as `policy` says.
    #[must_use]
    pub fn with_policy(mut self, policy: FallbackPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// After a context-window failure, tries `targets` — larger-context models — in order.
    #[must_use]
    pub fn on_context_window(mut self, targets: impl IntoIterator<Item = Target<S>>) -> Self {
        self.context_window = targets.into_iter().collect();
        self
    }

    /// After a content-policy refusal, tries `targets` in order.
    #[must_use]
    pub fn on_content_policy(mut self, targets: impl IntoIterator<Item = Target<S>>) -> Self {
        self.content_policy = targets.into_iter().collect();
        self
    }
}

impl<S: Clone> Layer<S> for FallbackLayer<S> {
    type Service = Fallback<S>;

    /// The cooldowns are shared by the clones of the service this makes.
    fn layer(&self, primary: S) -> Fallback<S> {
        Fallback::new(
            primary,
            Arc::new(Shared::new(
                self.policy.clone(),
                Arc::clone(&self.primary_name),
                self.fallbacks.clone(),
                self.context_window.clone(),
                self.content_policy.clone(),
            )),
        )
    }
}

impl<S: Clone> Clone for FallbackLayer<S> {
    fn clone(&self) -> Self {
        FallbackLayer {
            policy: self.policy.clone(),
            primary_name: Arc::clone(&self.primary_name),
            fallbacks: self.fallbacks.clone(),
            context_window: self.context_window.clone(),
            content_policy: self.content_policy.clone(),
        }
    }
}

impl<S> fmt::Debug for FallbackLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer")
            .field("policy", &self.policy)
            .field("fallbacks", &self.fallbacks)
            .field("context_window", &self.context_window)
            .field("content_policy", &self.content_policy)
            .finish()
    }
}
