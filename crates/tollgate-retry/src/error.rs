//! [`RetriesExhausted`]: the error the retry layer adds.

use std::any::Any;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tollgate_core::{BoxError, Classified, Verdict};

use crate::policy::GaveUp;

/// The layer gave up on a retryable failure: out of retries or budget, past the deadline, or
/// asked by the server to wait longer than honoured. It keeps the last attempt's response or
/// error and its verdict.
///
/// # Examples
///
/// ```
/// # fn handle(err: tollgate_core::BoxError) {
/// use tollgate_retry::RetriesExhausted;
///
/// if let Some(exhausted) = err.downcast_ref::<RetriesExhausted>() {
///     eprintln!("{} after {} attempts", exhausted.reason(), exhausted.attempts());
///     if let Some(wait) = exhausted.retry_after() {
///         eprintln!("the provider asked for {wait:?}");
///     }
/// }
/// # }
/// ```
pub struct RetriesExhausted {
    attempts: u32,
    reason: GaveUp,
    verdict: Verdict,
    last: Last,
    /// Its source: the verdict and the last error (or a note that it was a response), so that
    /// [`Verdict::of_error`] finds the verdict from any layer above.
    source: Classified,
}

enum Last {
    /// Behind a lock so the error is `Sync` whatever the response type.
    Response(Mutex<Option<Box<dyn Any + Send>>>),
    /// The error, inside the source.
    Error,
}

/// The source of a [`RetriesExhausted`] that ended in a response.
#[derive(Debug)]
struct LastWasResponse;

impl fmt::Display for LastWasResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the last attempt was answered")
    }
}

impl std::error::Error for LastWasResponse {}

impl RetriesExhausted {
    pub(crate) fn response<R: Send + 'static>(
        attempts: u32,
        reason: GaveUp,
        verdict: Verdict,
        response: R,
    ) -> Self {
        RetriesExhausted {
            attempts,
            reason,
            source: Classified::new(carried(&verdict, reason), LastWasResponse),
            verdict,
            last: Last::Response(Mutex::new(Some(Box::new(response)))),
        }
    }

    pub(crate) fn error(attempts: u32, reason: GaveUp, verdict: Verdict, error: BoxError) -> Self {
        RetriesExhausted {
            attempts,
            reason,
            source: Classified::new(carried(&verdict, reason), error),
            verdict,
            last: Last::Error,
        }
    }

    /// Attempts made, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why the layer gave up.
    pub fn reason(&self) -> GaveUp {
        self.reason
    }

    /// The wait that was not taken: the server's delay above the cap, the wait past the
    /// deadline, or else the delay the last response asked for (so a fallback can cool the
    /// target down for it).
    pub fn retry_after(&self) -> Option<Duration> {
        self.reason.retry_after().or(self.verdict.delay())
    }

    /// The verdict on the last attempt.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Takes the last attempt's response, when it ended in one of type `R` (the inner
    /// service's response type); `None` after the first take or when it ended in an error.
    pub fn take_response<R: 'static>(&self) -> Option<R> {
        let Last::Response(slot) = &self.last else {
            return None;
        };
        let mut slot = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.take()?.downcast::<R>() {
            Ok(response) => Some(*response),
            Err(other) => {
                *slot = Some(other);
                None
            }
        }
    }

    /// The last attempt's error, when it ended in one.
    pub fn last_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match &self.last {
            Last::Error => Some(self.source.inner()),
            Last::Response(_) => None,
        }
    }
}

/// The verdict the error carries for the layers above ([`Verdict::of_error`]): the last
/// attempt's, with the wait that was not taken as its delay, so that a fallback cools the
/// target down for it.
fn carried(verdict: &Verdict, reason: GaveUp) -> Verdict {
    match reason.retry_after() {
        Some(wait) => verdict.clone().with_wait(wait),
        None => verdict.clone(),
    }
}

impl fmt::Debug for RetriesExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetriesExhausted")
            .field("attempts", &self.attempts)
            .field("reason", &self.reason)
            .field("class", &self.verdict.class())
            .field("last_error", &self.last_error())
            .finish()
    }
}

impl fmt::Display for RetriesExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gave up after {} attempts: {}",
            self.attempts, self.reason
        )
    }
}

impl std::error::Error for RetriesExhausted {
    /// A [`Classified`] with the last verdict: its own source is the last error, if the last
    /// attempt ended in one.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
