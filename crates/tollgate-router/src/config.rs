//! [`RouterConfig`]: what a [`RouterLayer`](crate::RouterLayer) is built from.

use std::time::Duration;

use crate::context::ContextWindows;
use crate::deployment::Deployment;
use crate::strategy::Strategy;

/// The deployments a [`RouterLayer`](crate::RouterLayer) spreads requests over, and how.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_router::{Deployment, RouterConfig, RouterLayer, Strategy};
///
/// let config = RouterConfig::new([
///     Deployment::new("east").with_model("gpt-4o"),
///     Deployment::new("west").with_model("gpt-4o"),
/// ])
/// .with_strategy(Strategy::LeastLoaded)
/// .with_max_wait(Duration::from_secs(5));
/// let layer = RouterLayer::new(config)?;
/// # let _ = layer;
/// # Ok::<(), tollgate_router::error::BuildError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RouterConfig {
    /// The deployments: at least one, at most 64, each with a name of its own.
    pub deployments: Vec<Deployment>,
    /// How to choose among the deployments that can take a request. Default: round-robin.
    pub strategy: Strategy,
    /// Context windows by model name, for deployments without a
    /// [`context_window`](Deployment::with_context_window) of their own.
    pub context_windows: ContextWindows,
    /// How long a deployment stays out of rotation after its key is rejected (`Unauthorized`,
    /// `PermissionDenied`) or its quota reported spent (`QuotaExhausted`). Default: 5 min.
    pub eject_for: Duration,
    /// How long a request without a [`Deadline`](tollgate_core::Deadline) may wait for a
    /// deployment (for one out of rotation or open to come back, or in a quota's queue) before
    /// it fails with [`NoDeployment`](crate::error::NoDeployment); a deadline, when sooner,
    /// counts instead. Default: 60 s.
    pub max_wait: Duration,
    /// Requests that may wait for a deployment at once; one more is refused with
    /// [`NoDeployment`](crate::error::NoDeployment) (its `retry_after` the wait, and
    /// `waiting` the number waiting), so memory held by waiters is bounded. Default 1,024.
    /// Each deployment's own quota queue is capped the same way.
    pub max_queue: u32,
}

impl RouterConfig {
    /// Routes over `deployments` with the defaults above.
    pub fn new(deployments: impl IntoIterator<Item = Deployment>) -> Self {
        RouterConfig {
            deployments: deployments.into_iter().collect(),
            strategy: Strategy::default(),
            context_windows: ContextWindows::default(),
            eject_for: Duration::from_secs(300),
            max_wait: Duration::from_secs(60),
            max_queue: 1_024,
        }
    }

    /// Sets [`strategy`](Self::strategy).
    #[must_use]
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets [`context_windows`](Self::context_windows).
    #[must_use]
    pub fn with_context_windows(mut self, windows: ContextWindows) -> Self {
        self.context_windows = windows;
        self
    }

    /// Sets [`eject_for`](Self::eject_for).
    #[must_use]
    pub fn with_eject_for(mut self, duration: Duration) -> Self {
        self.eject_for = duration;
        self
    }

    /// Sets [`max_queue`](Self::max_queue) (0: nobody waits).
    #[must_use]
    pub fn with_max_queue(mut self, max_queue: u32) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// Sets [`max_wait`](Self::max_wait).
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}
