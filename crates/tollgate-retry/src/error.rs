//! [`RetriesExhausted`]: the error the retry layer adds.

use std::any::Any;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tollgate_core::{BoxError, Verdict};

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
}

enum Last {
    /// Behind a lock so the error is `Sync` whatever the response type.
    Response(Mutex<Option<Box<dyn Any + Send>>>),
    Error(BoxError),
}

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
            verdict,
            last: Last::Response(Mutex::new(Some(Box::new(response)))),
        }
    }

    pub(crate) fn error(attempts: u32, reason: GaveUp, verdict: Verdict, error: BoxError) -> Self {
        RetriesExhausted {
            attempts,
            reason,
            verdict,
            last: Last::Error(error),
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
    pub fn last_error(&self) -> Option<&BoxError> {
        match &self.last {
            Last::Error(error) => Some(error),
            Last::Response(_) => None,
        }
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
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.last {
            Last::Error(error) => Some(&**error),
            Last::Response(_) => None,
        }
    }
}
