//! [`StreamUsage`]: the token usage a streamed response reports at its end, for the layers
//! that handed the response on long before.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::verdict::Usage;

/// What a subscriber is told when the stream ends: the usage it reported, if any.
type Subscriber = Box<dyn FnOnce(Option<&Usage>) + Send>;

/// The usage of a streamed answer, known only when its stream ends: OpenAI's final usage chunk
/// (`stream_options.include_usage`), Anthropic's `message_start` and `message_delta` usage,
/// Gemini's `usageMetadata`.
///
/// The layer that follows the stream (`ClassifyLayer`) puts one in the response's extensions
/// and [`finish`](Self::finish)es it when the stream ends; layers above that handed the
/// response on long before — the rate limiter reconciling its token estimate, the metrics
/// recording tokens — subscribe with [`on_end`](Self::on_end). A stream dropped or failed
/// before it reported ends with `None`: an interrupted stream may never report its usage, and
/// the estimate charged for it stays (PROVIDERS.md §6).
///
/// Clones share one report.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tollgate_core::{StreamUsage, Usage};
///
/// let usage = StreamUsage::new();
/// let seen = Arc::new(Mutex::new(None));
/// let sink = Arc::clone(&seen);
/// usage.on_end(move |usage| *sink.lock().unwrap() = usage.copied());
/// // … the stream passes, then ends with its usage:
/// usage.finish(Some(Usage::new().with_input_tokens(12).with_output_tokens(40)));
/// assert_eq!(seen.lock().unwrap().unwrap().output_tokens, Some(40));
/// ```
#[derive(Clone, Default)]
pub struct StreamUsage {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

enum State {
    Streaming(Vec<Subscriber>),
    Ended(Option<Usage>),
}

impl Default for State {
    fn default() -> Self {
        State::Streaming(Vec::new())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A subscriber runs outside the lock: nothing panics while it is held.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn end(&self, usage: Option<Usage>) {
        let subscribers = {
            let mut state = self.lock();
            match &mut *state {
                State::Ended(_) => return,
                State::Streaming(subscribers) => {
                    let subscribers = std::mem::take(subscribers);
                    *state = State::Ended(usage);
                    subscribers
                }
            }
        };
        for subscriber in subscribers {
            subscriber(usage.as_ref());
        }
    }
}

impl StreamUsage {
    /// A report still to come.
    pub fn new() -> Self {
        StreamUsage::default()
    }

    /// The report in a response's extensions, if its stream reports one.
    pub fn of<B>(response: &http::Response<B>) -> Option<&StreamUsage> {
        response.extensions().get::<StreamUsage>()
    }

    /// Calls `f` when the stream ends, with its usage (`None` if it reported none): at once if
    /// it has ended already.
    pub fn on_end(&self, f: impl FnOnce(Option<&Usage>) + Send + 'static) {
        let mut state = self.shared.lock();
        match &mut *state {
            State::Streaming(subscribers) => subscribers.push(Box::new(f)),
            State::Ended(usage) => {
                let usage = *usage;
                drop(state);
                f(usage.as_ref());
            }
        }
    }

    /// The stream ended, having reported `usage`: every subscriber is told, once. Later calls
    /// change nothing.
    pub fn finish(&self, usage: Option<Usage>) {
        self.shared.end(usage);
    }

    /// Whether the stream has ended.
    pub fn has_ended(&self) -> bool {
        matches!(*self.shared.lock(), State::Ended(_))
    }
}

impl Drop for Shared {
    /// A report never finished — every clone dropped mid-stream — ends with no usage.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let State::Streaming(subscribers) = std::mem::take(state) {
            for subscriber in subscribers {
                subscriber(None);
            }
        }
    }
}

impl fmt::Debug for StreamUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        match &*state {
            State::Streaming(subscribers) => f
                .debug_struct("StreamUsage")
                .field("subscribers", &subscribers.len())
                .finish(),
            State::Ended(usage) => f.debug_struct("StreamUsage").field("usage", usage).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_subscriber_is_told_once() {
        let report = StreamUsage::new();
        let told = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let told = Arc::clone(&told);
            report.on_end(move |usage| {
                assert_eq!(usage.and_then(|u| u.input_tokens), Some(7));
                told.fetch_add(1, Ordering::SeqCst);
            });
        }
        report.finish(Some(Usage::new().with_input_tokens(7)));
        report.finish(None);
        // A late subscriber is told at once.
        let late = Arc::clone(&told);
        report.on_end(move |_| {
            late.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(told.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_report_dropped_unfinished_ends_with_none() {
        let report = StreamUsage::new();
        let told = Arc::new(Mutex::new(Some(Usage::new())));
        let sink = Arc::clone(&told);
        report.on_end(move |usage| *sink.lock().unwrap() = usage.copied());
        drop(report);
        assert_eq!(*told.lock().unwrap(), None);
    }
}
