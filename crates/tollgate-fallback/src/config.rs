//! [`FallbackConfig`]: what a [`FallbackLayer`](crate::FallbackLayer) is built from.

use std::fmt;
use std::sync::Arc;

use crate::target::{FallbackPolicy, Target};

/// The targets a [`FallbackLayer`](crate::FallbackLayer) falls back to, in order, and when it
/// moves on. The targets are services; everything else is data.
///
/// # Examples
///
/// ```
/// use tollgate_fallback::{BoxTarget, FallbackConfig, FallbackLayer, FallbackPolicy, Target};
///
/// # fn with(claude: BoxTarget<String>, gemini: BoxTarget<String>, big: BoxTarget<String>) {
/// let config = FallbackConfig::new([Target::new("claude", claude), Target::new("gemini", gemini)])
///     .with_primary_name("gpt-4o")
///     .with_context_window_targets([Target::new("gpt-4.1", big)])
///     .with_policy(FallbackPolicy::default());
/// let layer = FallbackLayer::new(config);
/// # let _ = layer;
/// # }
/// ```
#[non_exhaustive]
pub struct FallbackConfig<S> {
    /// Where to go, in order, when the primary (the service below the layer) fails in a way
    /// the [`policy`](Self::policy) moves on from.
    pub targets: Vec<Target<S>>,
    /// Where to go, in order, after a context-window failure: larger-context models.
    pub context_window_targets: Vec<Target<S>>,
    /// Where to go, in order, after a content-policy refusal.
    pub content_policy_targets: Vec<Target<S>>,
    /// When to move on, and how long a failed target cools down.
    pub policy: FallbackPolicy,
    /// The primary's name in errors and metrics. Default: `"primary"`.
    pub primary_name: Arc<str>,
}

impl<S> FallbackConfig<S> {
    /// Falls back to `targets`, in order, with the default policy and no context-window or
    /// content-policy chain.
    pub fn new(targets: impl IntoIterator<Item = Target<S>>) -> Self {
        FallbackConfig {
            targets: targets.into_iter().collect(),
            context_window_targets: Vec::new(),
            content_policy_targets: Vec::new(),
            policy: FallbackPolicy::default(),
            primary_name: Arc::from("primary"),
        }
    }

    /// Sets [`context_window_targets`](Self::context_window_targets).
    #[must_use]
    pub fn with_context_window_targets(
        mut self,
        targets: impl IntoIterator<Item = Target<S>>,
    ) -> Self {
        self.context_window_targets = targets.into_iter().collect();
        self
    }

    /// Sets [`content_policy_targets`](Self::content_policy_targets).
    #[must_use]
    pub fn with_content_policy_targets(
        mut self,
        targets: impl IntoIterator<Item = Target<S>>,
    ) -> Self {
        self.content_policy_targets = targets.into_iter().collect();
        self
    }

    /// Sets [`policy`](Self::policy).
    #[must_use]
    pub fn with_policy(mut self, policy: FallbackPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`primary_name`](Self::primary_name).
    #[must_use]
    pub fn with_primary_name(mut self, name: &str) -> Self {
        self.primary_name = Arc::from(name);
        self
    }
}

impl<S: Clone> Clone for FallbackConfig<S> {
    fn clone(&self) -> Self {
        FallbackConfig {
            targets: self.targets.clone(),
            context_window_targets: self.context_window_targets.clone(),
            content_policy_targets: self.content_policy_targets.clone(),
            policy: self.policy.clone(),
            primary_name: Arc::clone(&self.primary_name),
        }
    }
}

impl<S> fmt::Debug for FallbackConfig<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackConfig")
            .field("targets", &self.targets)
            .field("context_window_targets", &self.context_window_targets)
            .field("content_policy_targets", &self.content_policy_targets)
            .field("policy", &self.policy)
            .field("primary_name", &self.primary_name)
            .finish()
    }
}
