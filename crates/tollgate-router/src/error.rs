//! The errors [`Router`](crate::Router) adds to its deployments'.
//!
//! The service's error type is [`BoxError`](tollgate_core::BoxError); these come out of it with
//! `downcast_ref`. A deployment's own errors pass through unchanged.

use std::fmt;
use std::time::Duration;

use tollgate_core::{DelaySource, ErrorClass, Judged, RetryAdvice, Verdict};

/// No deployment can take the request within its deadline (or the router's maximum wait):
/// every one is out of rotation, open or out of quota. Nothing was sent.
///
/// Its [`source`](std::error::Error::source) is the verdict layers above act on
/// ([`Verdict::of_error`]) — `RateLimited` for `retry_after` (a `LocalQuota` delay), to be
/// tried elsewhere, refused locally — so `FallbackLayer` moves to another provider when the
/// wait is long, as after a provider's 429.
#[derive(Debug)]
pub struct NoDeployment {
    retry_after: Option<Duration>,
    /// How many were waiting, when refused because the router's wait queue was full.
    queue_full: Option<u32>,
    verdict: Judged,
}

impl NoDeployment {
    pub(crate) fn new(retry_after: Option<Duration>) -> Self {
        let mut verdict = Verdict::failure(ErrorClass::RateLimited)
            .with_advice(RetryAdvice::Elsewhere)
            .refused_locally();
        if let Some(wait) = retry_after {
            verdict = verdict.with_delay(wait, DelaySource::LocalQuota);
        }
        NoDeployment {
            retry_after,
            queue_full: None,
            verdict: Judged::new(verdict),
        }
    }

    /// Refused with `waiting` requests already waiting for a deployment, the most the router
    /// lets wait ([`RouterConfig::max_queue`](crate::RouterConfig::max_queue)).
    pub(crate) fn queue_full(retry_after: Duration, waiting: u32) -> Self {
        let mut refused = NoDeployment::new(Some(retry_after));
        refused.queue_full = Some(waiting);
        refused
    }

    /// When refused because the router's wait queue was full, how many requests were waiting
    /// then; `None` otherwise.
    pub const fn waiting(&self) -> Option<u32> {
        self.queue_full
    }

    /// How long until the first deployment could take it; `None` when none ever can (the
    /// request costs more than any deployment's quota holds at once).
    pub const fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for NoDeployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.retry_after, self.queue_full) {
            (Some(wait), Some(waiting)) => write!(
                f,
                "no deployment can take the request now and {waiting} requests already wait; \
                 retry after {wait:?}"
            ),
            (Some(wait), None) => write!(
                f,
                "no deployment can take the request; retry after {wait:?}"
            ),
            (None, _) => f.write_str("the request is larger than any deployment's quota"),
        }
    }
}

impl std::error::Error for NoDeployment {
    /// The verdict: a rate limit, to be tried elsewhere.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.verdict)
    }
}

/// The request's estimated input plus its requested output is more than the context window of
/// every deployment's model, so it was not sent: it could only fail.
///
/// Its [`source`](std::error::Error::source) is a `ContextWindowExceeded` verdict, refused
/// locally, so `FallbackLayer` sends the request to its context-window chain of
/// larger-context models, as after the provider's own error.
#[derive(Debug)]
pub struct ContextWindowTooSmall {
    needed: u64,
    largest: u64,
    verdict: Judged,
}

impl ContextWindowTooSmall {
    pub(crate) fn new(needed: u64, largest: u64) -> Self {
        ContextWindowTooSmall {
            needed,
            largest,
            verdict: Judged::new(
                Verdict::failure(ErrorClass::ContextWindowExceeded).refused_locally(),
            ),
        }
    }

    /// Tokens the request needs: its estimated input plus the output it asks for.
    pub const fn needed(&self) -> u64 {
        self.needed
    }

    /// The largest context window among the deployments, in tokens.
    pub const fn largest(&self) -> u64 {
        self.largest
    }
}

impl fmt::Display for ContextWindowTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request needs {} tokens (estimated input plus requested output); the largest \
             context window among the deployments is {} tokens",
            self.needed, self.largest
        )
    }
}

impl std::error::Error for ContextWindowTooSmall {
    /// The verdict: the context window is exceeded.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.verdict)
    }
}

/// A router that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No deployments were given.
    NoDeployments,
    /// More deployments than the router handles (64).
    TooManyDeployments(usize),
    /// Two deployments share a name, which events, metrics and errors would confuse.
    DuplicateName(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoDeployments => f.write_str("a router needs at least one deployment"),
            BuildError::TooManyDeployments(n) => {
                write!(f, "{n} deployments; a router handles at most 64")
            }
            BuildError::DuplicateName(name) => write!(f, "two deployments are named {name:?}"),
        }
    }
}

impl std::error::Error for BuildError {}
