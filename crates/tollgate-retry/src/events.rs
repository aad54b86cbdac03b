//! [`OnRetry`]: a hook told of every scheduled retry and of giving up.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use tollgate_core::{DelaySource, ErrorClass};

use crate::policy::GaveUp;

/// What the retry layer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryEvent {
    /// Attempt `attempt` failed and another follows after `delay`.
    Scheduled {
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Its class.
        class: Option<ErrorClass>,
        /// Its status, for a response.
        status: Option<StatusCode>,
        /// The wait before the next attempt.
        delay: Duration,
        /// Where the wait came from (`DelaySource::None`: the backoff).
        source: DelaySource,
    },
    /// The layer gave up after `attempts` attempts.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's class.
        class: Option<ErrorClass>,
        /// Why.
        reason: GaveUp,
    },
}

/// Told of every [`RetryEvent`]. `()` ignores them; [`on_retry_fn`] takes a closure.
pub trait OnRetry {
    /// Called as each event happens.
    fn on_retry(&self, event: &RetryEvent);
}

impl OnRetry for () {
    fn on_retry(&self, _: &RetryEvent) {}
}

/// A hook from a closure; see [`on_retry_fn`].
#[derive(Clone, Copy)]
pub struct OnRetryFn<F> {
    f: F,
}

/// An [`OnRetry`] hook from a closure.
///
/// # Examples
///
/// ```
/// use tollgate_retry::{OnRetry, RetryEvent, on_retry_fn};
///
/// # fn check(_: &impl OnRetry) {}
///
/// let hook = on_retry_fn(|event: &RetryEvent| {
///     if let RetryEvent::Scheduled { attempt, delay, .. } = event {
///         eprintln!("attempt {attempt} failed; retrying in {delay:?}");
///     }
/// });
/// # check(&hook);
/// ```
pub const fn on_retry_fn<F: Fn(&RetryEvent)>(f: F) -> OnRetryFn<F> {
    OnRetryFn { f }
}

impl<F> fmt::Debug for OnRetryFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnRetryFn").finish_non_exhaustive()
    }
}

impl<F: Fn(&RetryEvent)> OnRetry for OnRetryFn<F> {
    fn on_retry(&self, event: &RetryEvent) {
        (self.f)(event)
    }
}
