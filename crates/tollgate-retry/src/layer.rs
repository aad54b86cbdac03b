//! [`RetryLayer`]: the layer.

use std::fmt;
use std::sync::{Arc, Mutex};

use tollgate_providers::OpenAi;
use tower_layer::Layer;

use crate::budget::RetryBudget;
use crate::judge::HttpJudge;
use crate::policy::RetryPolicy;
use crate::rng::HasherRng;
use crate::service::{Retry, Shared};

/// Retries failed attempts as the [`RetryPolicy`] says: the server's delay when it gives one,
/// jittered backoff otherwise; within a retry budget and the request's deadline.
///
/// See the [crate docs](crate) for examples.
pub struct RetryLayer<J = HttpJudge, R = HasherRng, H = ()> {
    policy: RetryPolicy,
    judge: J,
    rng: Arc<Mutex<R>>,
    hook: H,
    budget: Option<RetryBudget>,
}

impl RetryLayer {
    /// Retries as `policy` says, judging HTTP responses by their verdict (or the generic
    /// classifier's).
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer {
            policy,
            judge: HttpJudge::new(),
            rng: Arc::new(Mutex::new(HasherRng::default())),
            hook: (),
            budget: None,
        }
    }
}

impl RetryLayer<HttpJudge<OpenAi>> {
    /// The official OpenAI SDK's behaviour ([`RetryPolicy::openai`]), judging responses without
    /// a verdict with the OpenAI classifier, so `x-should-retry` is honoured.
    pub fn openai() -> Self {
        RetryLayer {
            policy: RetryPolicy::openai(),
            judge: HttpJudge::with_classifier(OpenAi::new()),
            rng: Arc::new(Mutex::new(HasherRng::default())),
            hook: (),
            budget: None,
        }
    }
}

impl<J, R, H> RetryLayer<J, R, H> {
    /// Judges outcomes with `judge` (for non-HTTP services: [`judge_fn`](crate::judge_fn)).
    pub fn with_judge<J2>(self, judge: J2) -> RetryLayer<J2, R, H> {
        RetryLayer {
            policy: self.policy,
            judge,
            rng: self.rng,
            hook: self.hook,
            budget: self.budget,
        }
    }

    /// Draws the backoff's jitter and the server delays' spread from `rng` (for tests,
    /// [`rng_fn`](crate::rng_fn) pins it).
    pub fn with_rng<R2>(self, rng: R2) -> RetryLayer<J, R2, H> {
        RetryLayer {
            policy: self.policy,
            judge: self.judge,
            rng: Arc::new(Mutex::new(rng)),
            hook: self.hook,
            budget: self.budget,
        }
    }

    /// Tells `hook` of every scheduled retry and of giving up.
    pub fn on_retry<H2>(self, hook: H2) -> RetryLayer<J, R, H2> {
        RetryLayer {
            policy: self.policy,
            judge: self.judge,
            rng: self.rng,
            hook,
            budget: self.budget,
        }
    }

    /// Retries only while `budget` (shared by its clones) allows.
    #[must_use]
    pub fn with_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl<S, J: Clone, R, H: Clone> Layer<S> for RetryLayer<J, R, H> {
    type Service = Retry<S, J, R, H>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(
            inner,
            Arc::new(Shared {
                policy: self.policy.clone(),
                judge: self.judge.clone(),
                rng: Arc::clone(&self.rng),
                hook: self.hook.clone(),
                budget: self.budget.clone(),
            }),
        )
    }
}

impl<J: Clone, R, H: Clone> Clone for RetryLayer<J, R, H> {
    /// A clone shares the random source and the budget.
    fn clone(&self) -> Self {
        RetryLayer {
            policy: self.policy.clone(),
            judge: self.judge.clone(),
            rng: Arc::clone(&self.rng),
            hook: self.hook.clone(),
            budget: self.budget.clone(),
        }
    }
}

impl<J: fmt::Debug, R, H> fmt::Debug for RetryLayer<J, R, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("policy", &self.policy)
            .field("judge", &self.judge)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}
