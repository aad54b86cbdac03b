//! The error [`Timeout`](crate::Timeout) adds: [`TimedOut`], carried in a
//! [`Classified`] with a `Timeout` verdict.

use std::fmt;
use std::time::Duration;

use tollgate_core::{BoxError, Classified, ErrorClass, Verdict};

/// Which time limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeLimit {
    /// The time to the response head.
    ResponseHead,
    /// The time from the head to the first chunk of real data (the first token).
    FirstChunk,
    /// The time between two chunks of real data.
    Idle,
    /// The time from the call to the end of the body.
    Total,
    /// The request's [`Deadline`](tollgate_core::Deadline).
    Deadline,
}

impl TimeLimit {
    /// A stable `snake_case` name for labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeLimit::ResponseHead => "response_head",
            TimeLimit::FirstChunk => "first_chunk",
            TimeLimit::Idle => "idle",
            TimeLimit::Total => "total",
            TimeLimit::Deadline => "deadline",
        }
    }
}

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An attempt ran out of time: `limit` passed after `after`.
///
/// It comes wrapped in a [`Classified`] whose verdict is `ErrorClass::Timeout` (retry on the
/// same target; counted by a circuit breaker; moved on by a fallback), so every layer above
/// recognises it with [`Verdict::of_error`]. A caller finds it with
/// [`find`](TimedOut::find).
///
/// # Examples
///
/// ```
/// # fn handle(error: tollgate_core::BoxError) {
/// use tollgate_timeout::{TimeLimit, TimedOut};
///
/// if let Some(timed_out) = TimedOut::find(&*error) {
///     if timed_out.limit() == TimeLimit::FirstChunk {
///         println!("no first token after {:?}", timed_out.after());
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    limit: TimeLimit,
    after: Duration,
}

impl TimedOut {
    pub(crate) const fn new(limit: TimeLimit, after: Duration) -> Self {
        TimedOut { limit, after }
    }

    /// The limit that ran out.
    pub const fn limit(&self) -> TimeLimit {
        self.limit
    }

    /// The limit's length: how long the attempt waited (for [`TimeLimit::Deadline`], what was left
    /// of the deadline when the attempt began).
    pub const fn after(&self) -> Duration {
        self.after
    }

    /// The `TimedOut` in `error` or its sources, if any.
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a TimedOut> {
        let mut current = Some(error);
        while let Some(err) = current {
            if let Some(timed_out) = err.downcast_ref::<TimedOut>() {
                return Some(timed_out);
            }
            current = err.source();
        }
        None
    }

    /// Wrapped with its `Timeout` verdict, as the layer and its bodies fail.
    pub(crate) fn classified(self) -> BoxError {
        Box::new(Classified::new(Verdict::failure(ErrorClass::Timeout), self))
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.limit {
            TimeLimit::ResponseHead => "no response head",
            TimeLimit::FirstChunk => "no first chunk of the body",
            TimeLimit::Idle => "no chunk of the body",
            TimeLimit::Total => "the response did not end",
            TimeLimit::Deadline => "the request's deadline passed",
        };
        write!(f, "timed out: {what} within {:?}", self.after)
    }
}

impl std::error::Error for TimedOut {}
