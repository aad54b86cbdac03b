//! [`ConcurrencyConfig`]: what a [`ConcurrencyLayer`](crate::ConcurrencyLayer) is built from.

use std::time::Duration;

use tollgate_core::keyed::DEFAULT_MAX_KEYS;

use crate::adaptive::Cap;

/// How many requests may be in flight, how many may wait, and for how long.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_concurrency::{Cap, ConcurrencyConfig, ConcurrencyLayer};
///
/// // DeepSeek-style: at most 500 in flight per account, waiting at most 2 s for a slot.
/// let config = ConcurrencyConfig::new(500).with_max_wait(Duration::from_secs(2));
/// assert_eq!(config.cap, Cap::Fixed(500));
/// let layer = ConcurrencyLayer::new(config);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConcurrencyConfig {
    /// The cap: fixed, or adapting to the provider's signals.
    pub cap: Cap,
    /// Requests that may wait for a slot; one more is refused with
    /// [`Saturated`](crate::Saturated) (0: never wait). Default 1,024.
    pub max_queue: u32,
    /// The longest a request waits for a slot before it is refused with
    /// [`Saturated`](crate::Saturated); `None` (the default): no limit of its own, the
    /// request's deadline still counts.
    pub max_wait: Option<Duration>,
    /// Whether a slot is held until the response body ends (the default: streamed responses
    /// keep the provider busy until they end) or freed when the response head arrives.
    pub hold_until_body_end: bool,
    /// The most keys a keyed limit holds a gate for (default 100,000). Beyond, a new key
    /// evicts the least recently used gates with nothing in flight and nobody waiting, or,
    /// when every one is busy, is refused with
    /// [`TooManyKeys`](tollgate_core::keyed::TooManyKeys).
    pub max_keys: usize,
}

impl ConcurrencyConfig {
    /// At most `max` in flight (at least 1); the defaults above otherwise.
    pub const fn new(max: u32) -> Self {
        ConcurrencyConfig::from_cap(Cap::Fixed(max))
    }

    /// With a fixed or adaptive cap; the defaults above otherwise.
    pub const fn from_cap(cap: Cap) -> Self {
        ConcurrencyConfig {
            cap,
            max_queue: 1_024,
            max_wait: None,
            hold_until_body_end: true,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }

    /// Sets [`max_queue`](Self::max_queue).
    #[must_use]
    pub const fn with_max_queue(mut self, max_queue: u32) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// Sets [`max_wait`](Self::max_wait).
    #[must_use]
    pub const fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// Sets [`max_keys`](Self::max_keys).
    #[must_use]
    pub const fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Sets [`hold_until_body_end`](Self::hold_until_body_end).
    #[must_use]
    pub const fn with_hold_until_body_end(mut self, hold: bool) -> Self {
        self.hold_until_body_end = hold;
        self
    }
}

impl From<Cap> for ConcurrencyConfig {
    fn from(cap: Cap) -> Self {
        ConcurrencyConfig::from_cap(cap)
    }
}
