//! [`Store`]: the trait every quota store implements, in this process or shared.

use std::future::Future;
use std::time::Duration;

use tollgate_core::keyed::KeyStats;
use tollgate_core::{BoxError, Cost, Dimension, RouteKey};

use super::{Feedback, Outlook, QuotaDecision};
use crate::limit::Limits;

/// Quota state behind [`RateLimitLayer`](crate::RateLimitLayer): per key, the [`Limits`] and
/// how much of each has been used.
///
/// Implement it to keep state elsewhere (a later `tollgate-redis` does). `None` as a key is the
/// one unkeyed quota. Every method takes `now` from the layer.
pub trait Store: Send + Sync + 'static {
    /// The answer to [`admit`](Store::admit). [`MemoryStore`] answers at once (`Ready`).
    ///
    /// [`MemoryStore`]: super::MemoryStore
    type Future: Future<Output = Result<QuotaDecision, BoxError>> + Send + Unpin + 'static;

    /// Admits `cost` for `key` against every limit, all or nothing.
    ///
    /// With `ahead: Some(..)` the caller is queued behind waiters that will spend `ahead` first:
    /// spend nothing, and answer how long until `ahead + cost` could have been admitted
    /// ([`QuotaDecision::Wait`], or [`QuotaDecision::Admitted`] only when no limit applies).
    fn admit(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> Self::Future;

    /// Applies what a response said.
    fn feedback(&self, key: Option<&RouteKey>, feedback: &Feedback, now: Duration);

    /// Replaces the limits of `key` (`None`: the unkeyed quota and every key without limits of
    /// its own). What each key has used carries over.
    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits);

    /// The limits `key` is held to.
    fn limits(&self, key: Option<&RouteKey>) -> Limits;

    /// How many keys hold state.
    fn keys(&self) -> usize;

    /// What admitting `cost` for `key` at `now` would decide, and the headroom it would leave,
    /// without spending anything. A store that cannot tell cheaply answers `None`.
    fn outlook(&self, key: Option<&RouteKey>, cost: &Cost, now: Duration) -> Option<Outlook> {
        let _ = (key, cost, now);
        None
    }

    /// How much of each limit of `key` is in use at `now`, as `(dimension, used fraction)`;
    /// for observers (the metrics layer). A store that cannot tell cheaply answers nothing.
    fn utilization(&self, key: Option<&RouteKey>, now: Duration) -> Vec<(Dimension, f64)> {
        let _ = (key, now);
        Vec::new()
    }

    /// The request rate an adaptive limit has learned for `key` at `now`, in requests per
    /// second; `None` without an adaptive limit, or when the store cannot tell.
    fn learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        let _ = (key, now);
        None
    }

    /// Whether the quota is shared with other processes right now, for a store that shares
    /// it (`Some(false)`: it cannot reach them, and applies its fallback); `None` for an
    /// in-process store. Asked after each admission, for observers: keep it cheap.
    fn sharing(&self) -> Option<bool> {
        None
    }

    /// The learned rate, when it moved by 1 % or more since it was last reported here (for
    /// events); marks it reported.
    fn report_learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        let _ = (key, now);
        None
    }

    /// The keys held in this process, the cap on them, and what the cap has cost (entries
    /// evicted, keys refused), for a store that caps its keys; `None` otherwise.
    fn key_stats(&self) -> Option<KeyStats> {
        None
    }

    /// How many keys were evicted at the cap since the last call (for events); asked after
    /// each admission of a request with an observer: keep it cheap.
    fn take_evicted(&self) -> u64 {
        0
    }
}
