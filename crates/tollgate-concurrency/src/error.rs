//! [`Saturated`]: the error the concurrency limit adds.

use std::fmt;
use std::time::Duration;

use tollgate_core::{DelaySource, ErrorClass, Judged, RetryAdvice, Verdict};

/// No slot: the queue was full, or the wait for a slot exceeded the maximum (or the request's
/// deadline). Nothing was sent.
///
/// Its [`source`](std::error::Error::source) is its verdict, which every layer reads with
/// [`Verdict::of_error`]: a rate limit (providers answer a concurrency cap with 429 too), to
/// be tried elsewhere, after the [`retry_after`](Self::retry_after) hint, refused locally
/// (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saturated {
    limit: u32,
    waiting: u32,
    waited: Option<Duration>,
    hint: Duration,
    verdict: Judged,
}

/// The hint when the limit has measured no latency and sets no maximum wait.
pub(crate) const DEFAULT_RETRY_HINT: Duration = Duration::from_secs(1);

impl Saturated {
    pub(crate) fn new(limit: u32, waiting: u32, waited: Option<Duration>, hint: Duration) -> Self {
        let verdict = Verdict::failure(ErrorClass::RateLimited)
            .with_advice(RetryAdvice::Elsewhere)
            .refused_locally()
            .with_delay(hint, DelaySource::LocalQuota);
        Saturated {
            limit,
            waiting,
            waited,
            hint,
            verdict: Judged::new(verdict),
        }
    }

    /// The verdict: a rate limit, elsewhere, refused locally.
    pub fn verdict(&self) -> &Verdict {
        self.verdict.verdict()
    }

    /// The cap on in-flight requests at the time.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How many requests were waiting.
    pub fn waiting(&self) -> u32 {
        self.waiting
    }

    /// How long it waited before giving up; `None` when the queue was full.
    pub fn waited(&self) -> Option<Duration> {
        self.waited
    }

    /// A hint for when to try again: the recent latency of a request when an adaptive cap
    /// has measured it (a slot frees about that often); otherwise the limit's
    /// [`max_wait`](crate::ConcurrencyConfig::max_wait) (a request let in the queue would have
    /// waited that long at most); otherwise one second.
    pub fn retry_after(&self) -> Duration {
        self.hint
    }
}

impl fmt::Display for Saturated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.waited {
            Some(waited) => write!(
                f,
                "no free slot after waiting {waited:?} ({} in flight at most, {} waiting)",
                self.limit, self.waiting
            ),
            None => write!(
                f,
                "no free slot and the queue is full ({} in flight at most, {} waiting)",
                self.limit, self.waiting
            ),
        }
    }
}

impl std::error::Error for Saturated {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.verdict)
    }
}
