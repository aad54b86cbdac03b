//! [`StreamReport`]: how a streamed response ended — completed with its usage, failed with a
//! class, or abandoned — for the layers that handed the response on long before.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::class::ErrorClass;
use crate::verdict::Usage;

/// What a subscriber is told when the stream ends.
type Subscriber = Box<dyn FnOnce(&StreamEnd) + Send>;

/// How a streamed response ended, as told to [`StreamReport::on_end`] subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamEnd {
    /// Completed, failed, or abandoned by the caller.
    pub outcome: StreamOutcome,
    /// The usage the stream reported: only for a completed stream that reported one (an
    /// interrupted stream's usage is partial at best, and the estimate charged for it stays).
    pub usage: Option<Usage>,
    /// When the first event carrying data passed, if one did.
    pub first_data_at: Option<Instant>,
    /// When the stream ended.
    pub ended_at: Instant,
}

impl StreamEnd {
    /// The time from the first event carrying data to the end of the stream, if one passed.
    pub fn streaming_time(&self) -> Option<Duration> {
        self.first_data_at
            .map(|first| self.ended_at.saturating_duration_since(first))
    }
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamOutcome {
    /// The stream reached its terminal event (or, for a body not followed as events, its end).
    Completed,
    /// The stream failed after its response was handed on: an error event, a missing terminal
    /// event ([`ErrorClass::Truncated`]), a cut connection, a time limit. The class of the
    /// verdict it failed with.
    Failed(ErrorClass),
    /// Every handle on the report was dropped before the stream ended: the caller stopped
    /// reading. Neither a success nor a failure of the upstream.
    Abandoned,
}

/// How a streamed response ends, told to the layers above that handed it on at its head:
/// the rate limiter reconciles its token estimate with the usage reported at the end, the
/// breaker counts a stream that fails half-way as a failure, the metrics record tokens, time
/// to first token and time per output token.
///
/// The layer that follows the stream (`ClassifyLayer`) puts one in the response's extensions
/// for each successful event stream, marks [`first_data`](Self::first_data) and ends it with
/// [`complete`](Self::complete) or [`fail`](Self::fail); a layer between that ends the body
/// itself (a time limit) may [`fail`](Self::fail) it first. The first end wins; later ones
/// change nothing. A report dropped unended — the caller dropped the body — ends
/// [`Abandoned`](StreamOutcome::Abandoned).
///
/// Clones share one report.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tollgate_core::{ErrorClass, StreamOutcome, StreamReport, Usage};
///
/// let report = StreamReport::new();
/// let seen = Arc::new(Mutex::new(None));
/// let sink = Arc::clone(&seen);
/// report.on_end(move |end| *sink.lock().unwrap() = Some((end.outcome, end.usage)));
/// // … the stream passes, then ends with its usage:
/// report.complete(Some(Usage::new().with_input_tokens(12).with_output_tokens(40)));
/// report.fail(ErrorClass::Timeout); // too late: the first end wins
/// let (outcome, usage) = seen.lock().unwrap().unwrap();
/// assert_eq!(outcome, StreamOutcome::Completed);
/// assert_eq!(usage.unwrap().output_tokens, Some(40));
/// ```
#[derive(Clone, Default)]
pub struct StreamReport {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    subscribers: Vec<Subscriber>,
    first_data_at: Option<Instant>,
    ended: Option<StreamEnd>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A subscriber runs outside the lock: nothing panics while it is held.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn end(&self, outcome: StreamOutcome, usage: Option<Usage>) {
        let (end, subscribers) = {
            let mut state = self.lock();
            if state.ended.is_some() {
                return;
            }
            let end = ended(&state, outcome, usage);
            state.ended = Some(end);
            (end, std::mem::take(&mut state.subscribers))
        };
        for subscriber in subscribers {
            subscriber(&end);
        }
    }
}

fn ended(state: &State, outcome: StreamOutcome, usage: Option<Usage>) -> StreamEnd {
    StreamEnd {
        outcome,
        usage: usage.filter(|_| outcome == StreamOutcome::Completed),
        first_data_at: state.first_data_at,
        ended_at: Instant::now(),
    }
}

impl StreamReport {
    /// A report still to come.
    pub fn new() -> Self {
        StreamReport::default()
    }

    /// The report in a response's extensions, if its stream is followed.
    pub fn of<B>(response: &http::Response<B>) -> Option<&StreamReport> {
        response.extensions().get::<StreamReport>()
    }

    /// Calls `f` when the stream ends: at once if it has ended already.
    pub fn on_end(&self, f: impl FnOnce(&StreamEnd) + Send + 'static) {
        let mut state = self.shared.lock();
        match state.ended {
            None => state.subscribers.push(Box::new(f)),
            Some(end) => {
                drop(state);
                f(&end);
            }
        }
    }

    /// The first event carrying data passes now. Later calls change nothing.
    pub fn first_data(&self) {
        let mut state = self.shared.lock();
        if state.first_data_at.is_none() && state.ended.is_none() {
            state.first_data_at = Some(Instant::now());
        }
    }

    /// The stream completed, having reported `usage`.
    pub fn complete(&self, usage: Option<Usage>) {
        self.shared.end(StreamOutcome::Completed, usage);
    }

    /// The stream failed with a verdict of `class`.
    pub fn fail(&self, class: ErrorClass) {
        self.shared.end(StreamOutcome::Failed(class), None);
    }

    /// Whether the stream has ended.
    pub fn has_ended(&self) -> bool {
        self.shared.lock().ended.is_some()
    }
}

impl Drop for Shared {
    /// A report never ended — every clone dropped mid-stream — ends abandoned.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if state.ended.is_none() && !state.subscribers.is_empty() {
            let end = ended(state, StreamOutcome::Abandoned, None);
            for subscriber in std::mem::take(&mut state.subscribers) {
                subscriber(&end);
            }
        }
    }
}

impl fmt::Debug for StreamReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("StreamReport")
            .field("subscribers", &state.subscribers.len())
            .field("first_data_at", &state.first_data_at)
            .field("ended", &state.ended)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_subscriber_is_told_once() {
        let report = StreamReport::new();
        let told = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let told = Arc::clone(&told);
            report.on_end(move |end| {
                assert_eq!(end.outcome, StreamOutcome::Completed);
                assert_eq!(end.usage.and_then(|u| u.input_tokens), Some(7));
                told.fetch_add(1, Ordering::SeqCst);
            });
        }
        report.complete(Some(Usage::new().with_input_tokens(7)));
        report.fail(ErrorClass::Truncated);
        // A late subscriber is told at once.
        let late = Arc::clone(&told);
        report.on_end(move |end| {
            assert_eq!(end.outcome, StreamOutcome::Completed);
            late.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(told.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_failed_stream_reports_no_usage() {
        let report = StreamReport::new();
        let told = Arc::new(Mutex::new(None));
        let sink = Arc::clone(&told);
        report.on_end(move |end| *sink.lock().unwrap() = Some(*end));
        report.fail(ErrorClass::Overloaded);
        report.complete(Some(Usage::new().with_output_tokens(3)));
        let end = told.lock().unwrap().unwrap();
        assert_eq!(end.outcome, StreamOutcome::Failed(ErrorClass::Overloaded));
        assert_eq!(end.usage, None);
    }

    #[test]
    fn a_report_dropped_unended_is_abandoned() {
        let report = StreamReport::new();
        let told = Arc::new(Mutex::new(None));
        let sink = Arc::clone(&told);
        report.on_end(move |end| *sink.lock().unwrap() = Some(end.outcome));
        drop(report);
        assert_eq!(*told.lock().unwrap(), Some(StreamOutcome::Abandoned));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_data_is_timed() {
        let report = StreamReport::new();
        let told = Arc::new(Mutex::new(None));
        let sink = Arc::clone(&told);
        report.on_end(move |end| *sink.lock().unwrap() = end.streaming_time());
        tokio::time::sleep(Duration::from_millis(300)).await;
        report.first_data();
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        report.first_data();
        tokio::time::sleep(Duration::from_millis(800)).await;
        report.complete(None);
        assert_eq!(*told.lock().unwrap(), Some(Duration::from_millis(2_000)));
    }
}
