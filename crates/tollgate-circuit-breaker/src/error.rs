//! [`CircuitOpen`]: the error the breaker adds.

use std::fmt;
use std::time::Duration;

use tollgate_core::{DelaySource, ErrorClass, Judged, RetryAdvice, RouteKey, Verdict};

/// The breaker refused the call without sending it: open, half-open with every probe slot
/// taken, or forced open.
///
/// Its [`source`](std::error::Error::source) is its verdict, which every layer reads with
/// [`Verdict::of_error`]: an overload, to be tried elsewhere, after the time the breaker stays
/// open ([`DelaySource::BreakerOpen`]), refused locally (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitOpen {
    key: Option<RouteKey>,
    retry_after: Option<Duration>,
    verdict: Judged,
}

impl CircuitOpen {
    pub(crate) fn new(key: Option<RouteKey>, retry_after: Option<Duration>) -> Self {
        let mut verdict = Verdict::failure(ErrorClass::Overloaded)
            .with_advice(RetryAdvice::Elsewhere)
            .refused_locally();
        if let Some(wait) = retry_after {
            verdict = verdict.with_delay(wait, DelaySource::BreakerOpen);
        }
        CircuitOpen {
            key,
            retry_after,
            verdict: Judged::new(verdict),
        }
    }

    /// The verdict: an overload, elsewhere, after [`retry_after`](Self::retry_after).
    pub fn verdict(&self) -> &Verdict {
        self.verdict.verdict()
    }

    /// When a probe will be let through: the rest of the open period. `None` while the
    /// half-open probes are in flight, or when forced open.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whose breaker (`None`: the unkeyed one).
    pub fn key(&self) -> Option<&RouteKey> {
        self.key.as_ref()
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("circuit open")?;
        if let Some(key) = &self.key {
            write!(f, " for {key}")?;
        }
        match self.retry_after {
            Some(wait) => write!(f, "; a probe in {wait:?}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for CircuitOpen {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.verdict)
    }
}
