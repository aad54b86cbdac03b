//! Per-request hints that travel as `http::Request` extensions: [`Cost`], [`Priority`],
//! [`RouteKey`] and [`Deadline`] (with [`Sooner`], what [`Deadline::sooner`] answers).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tollgate_core::{Cost, Deadline, Dimension, Priority, RouteKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(Cost::requests(1).with(Dimension::Tokens, 1_500));
//! request.extensions_mut().insert(Priority::HIGH);
//! request.extensions_mut().insert(RouteKey::new("gpt-4o"));
//! request.extensions_mut().insert(Deadline::after(Duration::from_secs(30)));
//!
//! let cost = Cost::of(&request).unwrap();
//! assert_eq!(cost.get(Dimension::Tokens), 1_500);
//! assert_eq!(Priority::of(&request), Priority::HIGH);
//! assert_eq!(RouteKey::of(&request).map(RouteKey::as_str), Some("gpt-4o"));
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::Dimension;

/// What a request will spend of each rate-limit [`Dimension`]: a request count and token
/// estimates. Set it on a request to override the rate limiter's estimator.
///
/// # Examples
///
/// ```
/// use tollgate_core::{Cost, Dimension};
///
/// // Anthropic charges input and output tokens separately.
/// let cost = Cost::requests(1)
///     .with(Dimension::InputTokens, 2_000)
///     .with(Dimension::OutputTokens, 1_024);
/// assert_eq!(cost.get(Dimension::Requests), 1);
/// assert_eq!(cost.get(Dimension::Tokens), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cost {
    amounts: [u64; 4],
}

impl Cost {
    /// Nothing at all.
    pub const ZERO: Cost = Cost { amounts: [0; 4] };

    /// A cost of `n` requests and no tokens.
    pub const fn requests(n: u64) -> Self {
        Cost::ZERO.with(Dimension::Requests, n)
    }

    /// Sets the amount for one dimension.
    #[must_use]
    pub const fn with(mut self, dimension: Dimension, amount: u64) -> Self {
        self.amounts[dimension.index()] = amount;
        self
    }

    /// The amount for one dimension (0 when unset).
    pub const fn get(&self, dimension: Dimension) -> u64 {
        self.amounts[dimension.index()]
    }

    /// Every dimension with its amount, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (Dimension, u64)> + '_ {
        Dimension::ALL.into_iter().map(|d| (d, self.get(d)))
    }

    /// The cost set on a request, if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<&Cost> {
        request.extensions().get::<Cost>()
    }
}

/// A request's priority class: higher goes first when requests wait for capacity; within a class,
/// first come, first served. Requests without the extension are [`Priority::NORMAL`].
///
/// # Examples
///
/// ```
/// use tollgate_core::Priority;
///
/// assert!(Priority::HIGH > Priority::NORMAL);
/// assert_eq!(Priority::default(), Priority::NORMAL);
/// assert_eq!(Priority::new(200).get(), 200);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Priority(u8);

impl Priority {
    /// Background work: batch jobs, evaluations.
    pub const LOW: Priority = Priority(64);
    /// The default.
    pub const NORMAL: Priority = Priority(128);
    /// Interactive traffic.
    pub const HIGH: Priority = Priority(192);

    /// A priority class; higher goes first.
    pub const fn new(class: u8) -> Self {
        Priority(class)
    }

    /// The class as a number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The priority set on a request, or [`Priority::NORMAL`].
    pub fn of<B>(request: &http::Request<B>) -> Priority {
        request
            .extensions()
            .get::<Priority>()
            .copied()
            .unwrap_or_default()
    }
}

impl Default for Priority {
    fn default() -> Self {
        Priority::NORMAL
    }
}

/// The key a request's keyed state is found under: a model, an API key's name, a tenant.
///
/// Cheap to clone. `Debug` prints the key; put a name or a hash here, never a secret.
///
/// # Examples
///
/// ```
/// use tollgate_core::RouteKey;
///
/// let key = RouteKey::new("tenant-42");
/// assert_eq!(key.as_str(), "tenant-42");
/// assert_eq!(key, RouteKey::from(String::from("tenant-42")));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey(Arc<str>);

impl RouteKey {
    /// A key.
    pub fn new(key: impl Into<Arc<str>>) -> Self {
        RouteKey(key.into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's shared string, without copying it.
    pub fn to_shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// The key set on a request, if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<&RouteKey> {
        request.extensions().get::<RouteKey>()
    }
}

impl fmt::Debug for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RouteKey").field(&&*self.0).finish()
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RouteKey {
    fn from(key: &str) -> Self {
        RouteKey::new(key)
    }
}

impl From<String> for RouteKey {
    fn from(key: String) -> Self {
        RouteKey::new(key)
    }
}

/// The instant by which a request must be answered, on tokio's clock. Layers that wait (for
/// quota, for a retry, for a cooling target) fail at once when the wait would pass it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::Deadline;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let deadline = Deadline::after(Duration::from_secs(10));
/// assert!(deadline.allows(Duration::from_secs(9)));
/// assert!(!deadline.allows(Duration::from_secs(11)));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// A deadline at an instant.
    pub const fn at(instant: Instant) -> Self {
        Deadline(instant)
    }

    /// A deadline `timeout` from now. A timeout too large to represent is clamped to about 30
    /// years.
    pub fn after(timeout: Duration) -> Self {
        Deadline(later(Instant::now(), timeout))
    }

    /// The instant.
    pub const fn instant(self) -> Instant {
        self.0
    }

    /// Time left before the deadline (zero once it has passed).
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether waiting `wait` from now still ends at or before the deadline.
    pub fn allows(self, wait: Duration) -> bool {
        wait <= self.remaining()
    }

    /// The deadline set on a request, if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<Deadline> {
        request.extensions().get::<Deadline>().copied()
    }

    /// Whichever ends first: the request's `deadline` or a layer's own `limit` counted from
    /// `from()`, and which of them it is; `None` when there is neither.
    ///
    /// Every layer that waits or times out gives up at the sooner of the two (a queue's
    /// longest wait, an attempt's time limit). `from` is called only when there is a limit,
    /// so a layer without one reads no clock. On a tie the limit wins. A limit too large to
    /// represent is clamped to about 30 years, as in [`after`](Self::after).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use tollgate_core::{Deadline, Sooner};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let now = Instant::now();
    /// let deadline = Some(Deadline::after(Duration::from_secs(10)));
    /// let max_wait = Some(Duration::from_secs(30));
    ///
    /// let end = Deadline::sooner(deadline, max_wait, || now);
    /// assert_eq!(end, Some(Sooner::Deadline(now + Duration::from_secs(10))));
    /// assert!(end.is_some_and(Sooner::is_deadline));
    ///
    /// let end = Deadline::sooner(None, max_wait, || now).map(Sooner::instant);
    /// assert_eq!(end, Some(now + Duration::from_secs(30)));
    ///
    /// let never = Deadline::sooner(None, None, || unreachable!("no limit, no clock"));
    /// assert_eq!(never, None);
    /// # }
    /// ```
    #[inline]
    pub fn sooner(
        deadline: Option<Deadline>,
        limit: Option<Duration>,
        from: impl FnOnce() -> Instant,
    ) -> Option<Sooner> {
        let by_limit = limit.map(|limit| later(from(), limit));
        match (by_limit, deadline) {
            (Some(limit), Some(Deadline(deadline))) if deadline < limit => {
                Some(Sooner::Deadline(deadline))
            }
            (Some(limit), _) => Some(Sooner::Limit(limit)),
            (None, deadline) => deadline.map(|Deadline(at)| Sooner::Deadline(at)),
        }
    }
}

/// `duration` after `from`, clamped to about 30 years when it cannot be represented.
#[inline]
fn later(from: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    from.checked_add(duration)
        .or_else(|| from.checked_add(FAR))
        .unwrap_or(from)
}

/// What [`Deadline::sooner`] answers: the instant to give up at, and whether the request's
/// deadline or the layer's own limit sets it.
///
/// # Examples
///
/// ```
/// use tokio::time::Instant;
/// use tollgate_core::Sooner;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let at = Instant::now();
/// assert_eq!(Sooner::Limit(at).instant(), at);
/// assert!(!Sooner::Limit(at).is_deadline());
/// assert!(Sooner::Deadline(at).is_deadline());
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sooner {
    /// The layer's own limit ends first (or at the same instant as the deadline).
    Limit(Instant),
    /// The request's deadline ends first.
    Deadline(Instant),
}

impl Sooner {
    /// The instant it ends at.
    #[inline]
    pub const fn instant(self) -> Instant {
        match self {
            Sooner::Limit(at) | Sooner::Deadline(at) => at,
        }
    }

    /// Whether the request's deadline is what ends first.
    #[inline]
    pub const fn is_deadline(self) -> bool {
        matches!(self, Sooner::Deadline(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadline_counts_down_on_tokio_clock() {
        let deadline = Deadline::after(Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(deadline.remaining(), Duration::from_secs(3));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(deadline.remaining(), Duration::ZERO);
        assert!(deadline.allows(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn huge_timeout_does_not_panic() {
        let deadline = Deadline::after(Duration::MAX);
        assert!(deadline.allows(Duration::from_secs(86_400 * 365)));
    }

    #[tokio::test(start_paused = true)]
    async fn sooner_picks_the_earlier_end_and_says_which() {
        let now = Instant::now();
        let secs = Duration::from_secs;
        let deadline = |s| Some(Deadline::at(now + secs(s)));
        let sooner = |d, l| Deadline::sooner(d, l, || now);
        assert_eq!(
            sooner(deadline(5), Some(secs(9))),
            Some(Sooner::Deadline(now + secs(5)))
        );
        assert_eq!(
            sooner(deadline(9), Some(secs(5))),
            Some(Sooner::Limit(now + secs(5)))
        );
        // A tie goes to the limit.
        assert_eq!(
            sooner(deadline(5), Some(secs(5))),
            Some(Sooner::Limit(now + secs(5)))
        );
        assert_eq!(
            sooner(deadline(5), None),
            Some(Sooner::Deadline(now + secs(5)))
        );
        assert_eq!(
            sooner(None, Some(secs(5))),
            Some(Sooner::Limit(now + secs(5)))
        );
        assert_eq!(sooner(None, None), None);
        // A deadline already passed still ends first.
        let passed = Some(Deadline::at(now));
        tokio::time::advance(secs(1)).await;
        assert_eq!(
            Deadline::sooner(passed, Some(secs(1)), Instant::now),
            Some(Sooner::Deadline(now))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sooner_reads_the_clock_only_for_a_limit() {
        let deadline = Some(Deadline::after(Duration::from_secs(1)));
        let end = Deadline::sooner(deadline, None, || unreachable!("no limit"));
        assert!(end.is_some_and(Sooner::is_deadline));
    }

    #[tokio::test(start_paused = true)]
    async fn sooner_clamps_a_huge_limit() {
        let now = Instant::now();
        let end = Deadline::sooner(None, Some(Duration::MAX), || now).unwrap();
        assert_eq!(end.instant(), Deadline::after(Duration::MAX).instant());
        assert!(end.instant() > now + Duration::from_secs(86_400 * 365 * 29));
    }

    #[test]
    fn cost_iterates_every_dimension() {
        let cost = Cost::requests(1).with(Dimension::OutputTokens, 9);
        let all: Vec<_> = cost.iter().collect();
        assert_eq!(
            all,
            [
                (Dimension::Requests, 1),
                (Dimension::Tokens, 0),
                (Dimension::InputTokens, 0),
                (Dimension::OutputTokens, 9)
            ]
        );
    }
}
