//! Errors a followed event stream ends with.
//!
//! Both arrive as body errors of a [`PeekedBody`](super::PeekedBody), wrapped in
//! [`Classified`](tollgate_core::Classified): layers read the verdict with
//! [`Verdict::of_error`](tollgate_core::Verdict::of_error), a caller may downcast the
//! `Classified`'s [`inner`](tollgate_core::Classified::inner) error to these types.

use std::fmt;

/// Provider text kept in a [`StreamFailed`] is cut to this many bytes (at a char boundary).
const MAX_TEXT: usize = 1024;

/// An event stream reported an error after its `200` head: OpenAI's `data: {"error":…}` or
/// `response.failed`, Anthropic's `event: error`, an OpenRouter chunk with `"error"` or
/// `finish_reason: "error"`, Gemini's `{"error":…}` chunk.
///
/// # Examples
///
/// ```
/// # use tollgate_providers::classify_layer::error::StreamFailed;
/// # fn show(err: &StreamFailed) {
/// println!("{err}"); // "event stream failed: overloaded_error"
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFailed {
    kind: Option<String>,
    message: Option<String>,
    event: Option<String>,
}

impl StreamFailed {
    pub(crate) fn new(kind: Option<&str>, message: Option<&str>, event: Option<&str>) -> Self {
        StreamFailed {
            kind: kind.map(cut),
            message: message.map(cut),
            event: event.map(cut),
        }
    }

    /// The provider's error type or code (`overloaded_error`, `rate_limit_exceeded`,
    /// `RESOURCE_EXHAUSTED`, `502`), if the event named one.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// The provider's error message, if the event carried one (cut to 1 KiB).
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The event's name (its `event:` field: `error`, `response.failed`), if it had one.
    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }
}

impl fmt::Display for StreamFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message is left out: it is provider text, reachable through `message()`.
        match &self.kind {
            Some(kind) => write!(f, "event stream failed: {kind}"),
            None => f.write_str("event stream failed"),
        }
    }
}

impl std::error::Error for StreamFailed {}

/// An event stream ended without its terminal event (`data: [DONE]`, Anthropic's
/// `message_stop`, OpenAI's `response.completed`, Gemini's chunk with a `finishReason`), or
/// without any event at all: the answer the caller received is incomplete.
///
/// # Examples
///
/// ```
/// # use tollgate_providers::classify_layer::error::StreamTruncated;
/// # fn show(err: &StreamTruncated) {
/// println!("{err}"); // "event stream truncated; expected data: [DONE]"
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTruncated {
    expected: Option<&'static str>,
}

impl StreamTruncated {
    pub(crate) const fn new(expected: Option<&'static str>) -> Self {
        StreamTruncated { expected }
    }

    /// The terminal event the stream's format calls for (`data: [DONE]`, `event: message_stop`,
    /// `event: response.completed`, `a chunk with finishReason`), or `None` when the stream
    /// ended before its first event, so its format is unknown.
    pub const fn expected(&self) -> Option<&'static str> {
        self.expected
    }
}

impl fmt::Display for StreamTruncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Some(expected) => write!(f, "event stream truncated; expected {expected}"),
            None => f.write_str("event stream truncated before its first event"),
        }
    }
}

impl std::error::Error for StreamTruncated {}

/// `text` cut to [`MAX_TEXT`] bytes at a char boundary.
fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
