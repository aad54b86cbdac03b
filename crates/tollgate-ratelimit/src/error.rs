//! The errors [`RateLimit`](crate::RateLimit) adds to its inner service's.
//!
//! The service's error type is [`BoxError`](tollgate_core::BoxError); these come out of it with
//! `downcast_ref`. The inner service's own errors pass through unchanged.

use std::fmt;
use std::time::Duration;

use tollgate_core::{DelaySource, Dimension, ErrorClass, Judged, RetryAdvice, Verdict};

/// The request was not admitted: the wait exceeded the maximum wait or the request's deadline,
/// or the layer rejects rather than waits. Nothing was spent.
///
/// # Examples
///
/// ```
/// # fn handle(err: tollgate_core::BoxError) {
/// use tollgate_ratelimit::error::RateLimited;
///
/// if let Some(limited) = err.downcast_ref::<RateLimited>() {
///     println!("try again in {:?}", limited.retry_after());
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    retry_after: Duration,
    /// How many were waiting, when refused because the queue was full.
    queue_full: Option<u32>,
    verdict: Judged,
}

impl RateLimited {
    pub(crate) const fn new(retry_after: Duration) -> Self {
        let verdict = Verdict::failure(ErrorClass::RateLimited)
            .with_advice(RetryAdvice::Elsewhere)
            .with_delay(retry_after, DelaySource::LocalQuota)
            .refused_locally();
        RateLimited {
            retry_after,
            queue_full: None,
            verdict: Judged::new(verdict),
        }
    }

    /// Refused because `waiting` requests already waited, the most the layer lets wait
    /// ([`RateLimitConfig::max_queue`](crate::RateLimitConfig::max_queue)).
    pub(crate) const fn queue_full(retry_after: Duration, waiting: u32) -> Self {
        let mut refused = RateLimited::new(retry_after);
        refused.queue_full = Some(waiting);
        refused
    }

    /// When it was refused because the wait queue was full, how many requests were waiting
    /// then; `None` when it was refused for its wait.
    pub const fn waiting(&self) -> Option<u32> {
        self.queue_full
    }

    /// The verdict: a rate limit, to be tried elsewhere, after
    /// [`retry_after`](Self::retry_after) ([`DelaySource::LocalQuota`]), refused locally.
    pub fn verdict(&self) -> &Verdict {
        self.verdict.verdict()
    }

    /// How long until the request would have been admitted, as computed when it was refused
    /// (for a queued request, an estimate that assumes the waiters ahead are admitted first).
    pub const fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.queue_full {
            Some(waiting) => write!(
                f,
                "rate limited: {waiting} requests already waiting; retry after {:?}",
                self.retry_after
            ),
            None => write!(f, "rate limited; retry after {:?}", self.retry_after),
        }
    }
}

impl std::error::Error for RateLimited {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.verdict)
    }
}

/// The request costs more on one dimension than its limit can ever hold at once, so it can
/// never be admitted. Nothing was spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostTooLarge {
    dimension: Dimension,
    cost: u64,
    capacity: u64,
    period: Duration,
    verdict: Judged,
}

impl CostTooLarge {
    pub(crate) const fn new(
        dimension: Dimension,
        cost: u64,
        capacity: u64,
        period: Duration,
    ) -> Self {
        let verdict = Verdict::failure(ErrorClass::PayloadTooLarge)
            .with_advice(RetryAdvice::Never)
            .refused_locally();
        CostTooLarge {
            dimension,
            cost,
            capacity,
            period,
            verdict: Judged::new(verdict),
        }
    }

    /// The verdict: too large, never to be retried, refused locally.
    pub fn verdict(&self) -> &Verdict {
        self.verdict.verdict()
    }

    /// The dimension.
    pub const fn dimension(&self) -> Dimension {
        self.dimension
    }

    /// What the request costs on it.
    pub const fn cost(&self) -> u64 {
        self.cost
    }

    /// The most the limit admits at once.
    pub const fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The limit's period.
    pub const fn period(&self) -> Duration {
        self.period
    }
}

impl fmt::Display for CostTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request costs {} {} but the limit admits at most {} per {:?}; it can never be admitted",
            self.cost, self.dimension, self.capacity, self.period
        )
    }
}

impl std::error::Error for CostTooLarge {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.verdict)
    }
}
