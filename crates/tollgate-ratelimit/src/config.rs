//! [`RateLimitConfig`]: what a [`RateLimitLayer`](crate::RateLimitLayer) is built from.

use std::time::Duration;

use tollgate_core::keyed::DEFAULT_MAX_KEYS;

use crate::limit::Limits;

/// The limits a [`RateLimitLayer`](crate::RateLimitLayer) holds requests to, and how long a
/// request may wait for quota.
///
/// A bare [`Limits`] converts into one that waits as long as it takes, so
/// `RateLimitLayer::new(limits)` is the common case.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use tollgate_ratelimit::algorithm::Quota;
/// use tollgate_ratelimit::{Limit, Limits, RateLimitConfig, RateLimitLayer};
///
/// let limits = Limits::new([Limit::requests(Quota::per_minute(NonZeroU64::new(500).unwrap()))]);
/// // Wait up to 10 s for quota; a longer wait fails at once with `RateLimited`.
/// let layer = RateLimitLayer::new(RateLimitConfig::new(limits).with_max_wait(Duration::from_secs(10)));
/// assert_eq!(layer.config().max_wait, Some(Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// The limits of the unkeyed quota and of every key without limits of its own.
    pub limits: Limits,
    /// The longest a request waits for quota; one that would wait longer is refused with
    /// [`RateLimited`](crate::error::RateLimited) and its `retry_after` (its deadline, when
    /// sooner, counts too). `Some(Duration::ZERO)`: never wait. `None` (the default): wait as
    /// long as it takes. It bounds the wait for *quota*: a shared store's round trip is not
    /// counted (the store's own timeout bounds it), so a request that will not wait is still
    /// admitted while the quota has room, however many are on their way to the store.
    pub max_wait: Option<Duration>,
    /// Requests that may wait for quota at once, over every key; one more is refused with
    /// [`RateLimited`](crate::error::RateLimited) (its [`retry_after`] the quota's wait, and
    /// [`waiting`] the queue's length), so memory held by waiters is bounded. Default 1,024. A
    /// request the quota admits at once never counts.
    ///
    /// [`retry_after`]: crate::error::RateLimited::retry_after
    /// [`waiting`]: crate::error::RateLimited::waiting
    pub max_queue: u32,
    /// The most keys the layer's in-process store holds state for (default 100,000): beyond,
    /// a new key evicts the least recently used keys, which lose what they had used of their
    /// quota ([`MemoryStore`](crate::MemoryStore)'s Memory section). A layer built
    /// [`from_store`](crate::RateLimitLayer::from_store) uses its store's own cap.
    pub max_keys: usize,
}

/// The default [`RateLimitConfig::max_queue`].
const DEFAULT_MAX_QUEUE: u32 = 1_024;

impl RateLimitConfig {
    /// `limits`, waiting as long as it takes.
    pub fn new(limits: Limits) -> Self {
        RateLimitConfig {
            limits,
            max_wait: None,
            max_queue: DEFAULT_MAX_QUEUE,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }

    /// Sets [`max_keys`](Self::max_keys).
    #[must_use]
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Sets [`max_queue`](Self::max_queue) (0: nobody waits).
    #[must_use]
    pub fn with_max_queue(mut self, max_queue: u32) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// Sets [`max_wait`](Self::max_wait); `Duration::ZERO` refuses at once whatever does not
    /// fit now.
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }
}

impl From<Limits> for RateLimitConfig {
    fn from(limits: Limits) -> Self {
        RateLimitConfig::new(limits)
    }
}
