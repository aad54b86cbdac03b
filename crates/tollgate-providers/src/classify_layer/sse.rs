//! Following a `text/event-stream` body as it passes: the SSE framing, read incrementally.
//!
//! The follower sees every data frame after it was handed on: it never holds one back and keeps
//! only the current incomplete line and the current event's `data` (each at most
//! [`MAX_EVENT`]). A complete event is inspected for an error (then the stream fails with a
//! [`StreamFailed`]) and for the stream's terminal event; a stream that ends without its
//! terminal event fails with a [`StreamTruncated`].
//!
//! Lines end at `\n` or `\r\n`; a lone `\r` (allowed by the SSE grammar, sent by no LLM API) is
//! not taken as a line end.

use std::io::IoSlice;
use std::sync::{Arc, LazyLock};

use bytes::Buf;
use http::{HeaderMap, StatusCode};
use memchr::memmem;
use serde_json::{Map, Value};
use tollgate_core::{BoxError, Classified, Classify, ErrorClass, ResponseView, Usage, Verdict};

use crate::body::ErrorBody;

use super::error::{StreamFailed, StreamTruncated};

/// An event (its lines, or its joined `data`) larger than this is not inspected: it is passed
/// on, and never fails the stream.
pub(crate) const MAX_EVENT: usize = 64 * 1024;

/// The classifier of the layer, shared with every followed body.
pub(crate) type SharedClassifier = Arc<dyn Classify + Send + Sync>;

/// The stream's format, told by its events; it decides the terminal event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Nothing recognised yet.
    Unknown,
    /// OpenAI-compatible chat completions: ends with `data: [DONE]`.
    Chat,
    /// Anthropic Messages: `message_start` … `message_stop`.
    Anthropic,
    /// OpenAI Responses: `response.created` … `response.completed` / `response.incomplete`.
    Responses,
    /// Gemini's native `streamGenerateContent`: the last chunk has a `finishReason`.
    Gemini,
}

impl Format {
    fn terminal(self) -> Option<&'static str> {
        match self {
            Format::Unknown => None,
            Format::Chat => Some("data: [DONE]"),
            Format::Anthropic => Some("event: message_stop"),
            Format::Responses => Some("event: response.completed"),
            Format::Gemini => Some("a chunk with a finishReason"),
        }
    }
}

/// The `event:` field of the current event, as far as it matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    /// No `event:` field (a plain `message`).
    None,
    /// `error` (Anthropic; OpenAI Responses).
    Error,
    /// `message_start`.
    MessageStart,
    /// `message_stop`.
    MessageStop,
    /// `response.created`.
    ResponseCreated,
    /// `response.completed`, `response.incomplete`.
    ResponseDone,
    /// `response.failed`.
    ResponseFailed,
    /// Anything else.
    Other,
}

impl Name {
    fn of(value: &[u8]) -> Self {
        match value {
            b"error" => Name::Error,
            b"message_start" => Name::MessageStart,
            b"message_stop" => Name::MessageStop,
            b"response.created" => Name::ResponseCreated,
            b"response.completed" | b"response.incomplete" => Name::ResponseDone,
            b"response.failed" => Name::ResponseFailed,
            _ => Name::Other,
        }
    }

    fn as_str(self) -> Option<&'static str> {
        match self {
            Name::Error => Some("error"),
            Name::ResponseFailed => Some("response.failed"),
            _ => None,
        }
    }
}

/// The state of one followed event stream.
pub(crate) struct Follower {
    classifier: SharedClassifier,
    /// The current line's bytes, when it started in an earlier chunk.
    line: Vec<u8>,
    /// The current line outgrew [`MAX_EVENT`]: the rest of it is skipped.
    line_skipped: bool,
    /// The current event's name.
    name: Name,
    /// The current event's `data` lines, joined with `\n`.
    data: Vec<u8>,
    /// Whether the current event has a `data` line.
    has_data: bool,
    /// The current event outgrew [`MAX_EVENT`]: it is not inspected.
    skipped: bool,
    /// Whether any event was dispatched.
    seen_event: bool,
    /// The error event was the stream's first event.
    failed_first: bool,
    /// The usage reported so far (each report replaces the fields it gives: Anthropic's
    /// output count is cumulative).
    usage: Option<Usage>,
    format: Format,
    /// The terminal event was seen (or following gave up): nothing more is inspected.
    finished: bool,
}

impl Follower {
    pub(crate) fn new(classifier: SharedClassifier) -> Self {
        Follower {
            classifier,
            line: Vec::new(),
            line_skipped: false,
            name: Name::None,
            data: Vec::new(),
            has_data: false,
            skipped: false,
            seen_event: false,
            failed_first: false,
            usage: None,
            format: Format::Unknown,
            finished: false,
        }
    }

    /// Follows one data frame; returns the error the stream fails with when the frame
    /// completed an error event.
    pub(crate) fn feed(&mut self, chunk: &impl Buf) -> Option<BoxError> {
        if self.finished {
            return None;
        }
        let single = chunk.chunk();
        if single.len() == chunk.remaining() {
            return self.feed_slice(single);
        }
        let mut slices = [IoSlice::new(&[]); 16];
        let filled = chunk.chunks_vectored(&mut slices);
        let seen: usize = slices[..filled].iter().map(|s| s.len()).sum();
        if seen < chunk.remaining() {
            // A frame in more pieces than we can see without consuming it: stop judging rather
            // than judge from a gap.
            self.finished = true;
            return None;
        }
        slices[..filled]
            .iter()
            .find_map(|slice| self.feed_slice(slice))
    }

    /// The usage the stream reported, if any.
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether an event was dispatched: the stream's first data has passed.
    pub(crate) fn has_seen_event(&self) -> bool {
        self.seen_event
    }

    /// Whether the stream failed on its very first event (nothing before it to hand on).
    pub(crate) fn failed_on_first_event(&self) -> bool {
        self.failed_first
    }

    /// Whether nothing more is inspected: the terminal event or an error event was seen, or
    /// following gave up.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// The inner body ended: the error the stream ends with, if any.
    pub(crate) fn finish(&mut self) -> Option<BoxError> {
        if self.finished {
            return None;
        }
        // An event cut off before its blank line is still judged.
        if !self.line.is_empty() || self.line_skipped {
            if let Some(error) = self.buffered_line_ended() {
                return Some(error);
            }
        }
        if let Some(error) = self.dispatch() {
            return Some(error);
        }
        if self.finished {
            return None;
        }
        let expected = self.format.terminal();
        if expected.is_none() && self.seen_event {
            // A stream of a format we do not know: it may end where it likes.
            return None;
        }
        let verdict = Verdict::failure(ErrorClass::Truncated);
        Some(Classified::new(verdict, StreamTruncated::new(expected)).into())
    }

    fn feed_slice(&mut self, mut bytes: &[u8]) -> Option<BoxError> {
        while !bytes.is_empty() && !self.finished {
            let Some(end) = find_byte(bytes, b'\n') else {
                self.keep(bytes);
                return None;
            };
            let (line, rest) = (&bytes[..end], &bytes[end + 1..]);
            bytes = rest;
            let outcome = if self.line.is_empty() && !self.line_skipped {
                if line.len() > MAX_EVENT {
                    // Too long to read, as when it comes in pieces (see `keep`): wherever the
                    // frames are cut, a line over the cap is skipped alike.
                    self.line_skipped = true;
                    self.buffered_line_ended()
                } else {
                    self.line_ended(line)
                }
            } else {
                self.keep(line);
                self.buffered_line_ended()
            };
            if outcome.is_some() {
                return outcome;
            }
        }
        None
    }

    /// Keeps the start of a line that continues in the next chunk.
    fn keep(&mut self, bytes: &[u8]) {
        if self.line_skipped {
            return;
        }
        if self.line.len() + bytes.len() > MAX_EVENT {
            self.line_skipped = true;
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// The line kept in [`Self::line`] ended.
    fn buffered_line_ended(&mut self) -> Option<BoxError> {
        if std::mem::take(&mut self.line_skipped) {
            // Too long to read: whatever it was, this event is not inspected.
            self.skipped = true;
            self.has_data = true;
            return None;
        }
        let line = std::mem::take(&mut self.line);
        let outcome = self.line_ended(&line);
        self.line = line;
        self.line.clear();
        outcome
    }

    fn line_ended(&mut self, line: &[u8]) -> Option<BoxError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None; // a comment, such as `: keep-alive`
        }
        let (field, value) = match find_byte(line, b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                let had_data = std::mem::replace(&mut self.has_data, true);
                if !self.skipped {
                    if self.data.len() + value.len() + 1 > MAX_EVENT {
                        self.skipped = true;
                        self.data = Vec::new();
                    } else {
                        if had_data {
                            self.data.push(b'\n');
                        }
                        self.data.extend_from_slice(value);
                    }
                }
            }
            b"event" => self.name = Name::of(value),
            _ => {} // `id`, `retry`, unknown fields
        }
        None
    }

    /// A blank line: the current event is complete.
    fn dispatch(&mut self) -> Option<BoxError> {
        if !self.has_data && self.name == Name::None && !self.skipped {
            return None;
        }
        let first = !self.seen_event;
        self.seen_event = true;
        let outcome = if self.skipped { None } else { self.inspect() };
        self.failed_first = outcome.is_some() && first;
        self.name = Name::None;
        self.data.clear();
        self.has_data = false;
        self.skipped = false;
        outcome
    }

    fn inspect(&mut self) -> Option<BoxError> {
        match self.name {
            Name::Error | Name::ResponseFailed => return Some(self.failed()),
            Name::MessageStart => self.format = Format::Anthropic,
            Name::ResponseCreated => self.format = Format::Responses,
            Name::MessageStop | Name::ResponseDone => {
                self.finished = true;
                return None;
            }
            Name::None | Name::Other => {}
        }
        let data = &self.data[..];
        if data == b"[DONE]" {
            self.finished = true;
            return None;
        }
        // `"error"` can only be a key or a whole string value: escaped in a model's text it
        // reads `\"error\"`. A cheap (vectorised) test before any parse.
        if contains(data, &FINDERS.error) && is_error(data) {
            return Some(self.failed());
        }
        if let Some(reported) = usage_in(data) {
            self.usage = Some(merge(self.usage, reported));
        }
        match self.format {
            Format::Unknown => {
                if contains(data, &FINDERS.choices) {
                    self.format = Format::Chat;
                } else if contains(data, &FINDERS.candidates) {
                    self.format = Format::Gemini;
                    self.finished = contains(data, &FINDERS.finish_reason);
                }
            }
            Format::Gemini => self.finished = contains(data, &FINDERS.finish_reason),
            Format::Chat | Format::Anthropic | Format::Responses => {}
        }
        None
    }

    /// The current event is an error event: its verdict, from the layer's classifier.
    fn failed(&mut self) -> BoxError {
        self.finished = true;
        let event = self.name.as_str();
        let parsed = serde_json::from_slice::<Value>(&self.data).ok();
        let Some(Value::Object(object)) = parsed else {
            let verdict = self.verdict(StatusCode::INTERNAL_SERVER_ERROR, &self.data);
            return Classified::new(verdict, StreamFailed::new(None, None, event)).into();
        };
        let nested = object
            .get("response")
            .and_then(|r| r.get("error"))
            .filter(|e| e.is_object());
        let error = match (object.get("error"), nested) {
            (Some(Value::Object(error)), _) => Some(error),
            (_, Some(Value::Object(error))) => Some(error),
            // OpenAI Responses' `error` event: `{"type":"error","code","message"}`.
            _ if object.contains_key("code") || object.contains_key("message") => Some(&object),
            _ => None,
        };
        let message = error
            .and_then(|e| e.get("message"))
            .or_else(|| object.get("error").filter(|e| e.is_string()))
            .and_then(Value::as_str);
        let status = error.map_or(StatusCode::INTERNAL_SERVER_ERROR, implied_status);
        // The classifiers read `{"error":{…}}` (and Anthropic's shape, which has it too).
        let verdict = match (nested, object.get("error")) {
            (Some(nested), None) => {
                let body = serde_json::json!({ "error": nested }).to_string();
                self.verdict(status, body.as_bytes())
            }
            _ => self.verdict(status, &self.data),
        };
        let kind = error.and_then(kind_of);
        let failed = StreamFailed::new(kind.as_deref(), message, event);
        Classified::new(verdict, failed).into()
    }

    fn verdict(&self, status: StatusCode, body: &[u8]) -> Verdict {
        let verdict = self
            .classifier
            .classify(&ResponseView::new(status, &HeaderMap::new(), body));
        if verdict.is_success() {
            // A classifier that knows no failure for this status still must not call an error
            // event a success.
            Verdict::failure(ErrorClass::ServerError)
        } else {
            verdict
        }
    }
}

/// The keys looked for in every event, searched for with prebuilt (vectorised) finders.
struct Finders {
    error: memmem::Finder<'static>,
    usage: memmem::Finder<'static>,
    choices: memmem::Finder<'static>,
    candidates: memmem::Finder<'static>,
    finish_reason: memmem::Finder<'static>,
}

static FINDERS: LazyLock<Finders> = LazyLock::new(|| Finders {
    error: memmem::Finder::new(b"\"error\""),
    usage: memmem::Finder::new(b"\"usage"),
    choices: memmem::Finder::new(b"\"choices\""),
    candidates: memmem::Finder::new(b"\"candidates\""),
    finish_reason: memmem::Finder::new(b"\"finishReason\""),
});

/// The usage an event reports: a `usage` object (OpenAI's final chunk, Anthropic's
/// `message_delta`), Anthropic's `message_start` (`message.usage`), or Gemini's
/// `usageMetadata`. A `"usage": null` (every OpenAI chunk but the last) is none, found without a
/// parse.
fn usage_in(data: &[u8]) -> Option<Usage> {
    // One search finds both keys: `"usage"` and `"usageMetadata"` begin alike.
    let reported = FINDERS.usage.find_iter(data).any(|at| {
        let rest = &data[at + b"\"usage".len()..];
        let rest = rest
            .strip_prefix(b"\"")
            .or_else(|| rest.strip_prefix(b"Metadata\""));
        rest.is_some_and(|rest| {
            let mut value = rest
                .iter()
                .skip_while(|b| b.is_ascii_whitespace() || **b == b':');
            value.next() == Some(&b'{')
        })
    });
    if !reported {
        return None;
    }
    let parsed = ErrorBody::parse(data).usage;
    parsed.or_else(|| {
        // Anthropic's `message_start` nests it in the message.
        let value = serde_json::from_slice::<Value>(data).ok()?;
        let nested = value.get("message")?.get("usage")?.to_string();
        ErrorBody::parse(format!("{{\"usage\":{nested}}}").as_bytes()).usage
    })
}

/// `earlier` with the fields `later` reports replaced.
fn merge(earlier: Option<Usage>, later: Usage) -> Usage {
    let Some(mut usage) = earlier else {
        return later;
    };
    usage.input_tokens = later.input_tokens.or(usage.input_tokens);
    usage.output_tokens = later.output_tokens.or(usage.output_tokens);
    usage.cached_input_tokens = later.cached_input_tokens.or(usage.cached_input_tokens);
    usage.total_tokens = later.total_tokens.or(usage.total_tokens);
    usage
}

fn contains(haystack: &[u8], finder: &memmem::Finder<'_>) -> bool {
    finder.find(haystack).is_some()
}

/// Whether a JSON event is an error: a non-null `error`, a `"type":"error"`, or a choice with
/// `finish_reason: "error"` (OpenRouter).
fn is_error(data: &[u8]) -> bool {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(data) else {
        return false;
    };
    let error = object.get("error").is_some_and(|e| !e.is_null());
    let typed = object.get("type").and_then(Value::as_str) == Some("error");
    let finish = object
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|choices| {
            choices
                .iter()
                .any(|c| c.get("finish_reason").and_then(Value::as_str) == Some("error"))
        });
    error || typed || finish
}

/// The provider's error type or code: a text `code` (OpenAI), a `status` (Gemini), a `type`
/// (Anthropic), else a numeric `code` (OpenRouter).
fn kind_of(error: &Map<String, Value>) -> Option<String> {
    let text = |key: &str| {
        error
            .get(key)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && *t != "error")
    };
    text("code")
        .or_else(|| text("status"))
        .or_else(|| text("type"))
        .map(str::to_owned)
        .or_else(|| {
            error
                .get("code")
                .and_then(Value::as_i64)
                .map(|n| n.to_string())
        })
}

/// The status an error object implies: its numeric `code` (OpenRouter, Gemini), its gRPC
/// `status` (Gemini), its `code` or `type` (OpenAI, Anthropic), else 500.
fn implied_status(error: &Map<String, Value>) -> StatusCode {
    let numeric = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (400..=599).contains(n));
    let named = || {
        ["status", "code", "type"]
            .into_iter()
            .filter_map(|key| error.get(key).and_then(Value::as_str))
            .find_map(status_named)
    };
    numeric
        .or_else(named)
        .and_then(|n| StatusCode::from_u16(n).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The status that goes with a provider's error name (PROVIDERS.md §1, §2).
fn status_named(name: &str) -> Option<u16> {
    let status = match name {
        "rate_limit_exceeded"
        | "rate_limit_error"
        | "slow_down"
        | "insufficient_quota"
        | "tokens"
        | "requests"
        | "RESOURCE_EXHAUSTED" => 429,
        "overloaded_error" => 529,
        "server_is_overloaded" | "overloaded" | "UNAVAILABLE" => 503,
        "api_error" | "server_error" | "internal_error" | "INTERNAL" => 500,
        "timeout_error" | "timeout" | "DEADLINE_EXCEEDED" => 504,
        "authentication_error" | "invalid_api_key" | "UNAUTHENTICATED" => 401,
        "permission_error" | "PERMISSION_DENIED" => 403,
        "not_found_error" | "model_not_found" | "NOT_FOUND" => 404,
        "request_too_large" => 413,
        "billing_error" => 402,
        "invalid_request_error"
        | "context_length_exceeded"
        | "content_filter"
        | "INVALID_ARGUMENT"
        | "FAILED_PRECONDITION" => 400,
        _ => return None,
    };
    Some(status)
}

/// The first `byte` in `haystack` (vectorised).
fn find_byte(haystack: &[u8], byte: u8) -> Option<usize> {
    memchr::memchr(byte, haystack)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stream` fed cut at `cuts`, then ended: the error it ends with (its `Debug`), and
    /// whether an event passed.
    fn followed(stream: &[u8], cuts: &[usize]) -> (Option<String>, bool) {
        let mut follower = Follower::new(Arc::new(crate::OpenAi::new()));
        let mut start = 0;
        for &cut in cuts.iter().chain([stream.len()].iter()) {
            if let Some(error) = follower.feed(&&stream[start..cut]) {
                return (Some(format!("{error:?}")), follower.has_seen_event());
            }
            start = cut;
        }
        let end = follower.finish().map(|error| format!("{error:?}"));
        (end, follower.has_seen_event())
    }

    /// Found by the `event_stream` fuzz target: a line over [`MAX_EVENT`] made its event
    /// uninspected (and an event) only when it came in pieces; whole in one frame, it was read
    /// as any line. So where the frames were cut changed how the stream ended: a long comment
    /// alone was truncated in one frame and complete in two, and a long line in the event of
    /// `data: [DONE]` hid the terminal event in two frames only.
    #[test]
    fn a_line_over_the_cap_counts_alike_however_cut() {
        let long = |prefix: &str, len: usize| {
            let mut line = prefix.as_bytes().to_vec();
            line.resize(len, b'p');
            line
        };
        let streams = [
            [long(": ", MAX_EVENT + 1), b"\n\n".to_vec()].concat(),
            [long(": ", MAX_EVENT), b"\n\n".to_vec()].concat(),
            [
                b"data: {\"choices\":[]}\r\n\r\ndata: [DONE]\r\n".to_vec(),
                long("id: ", MAX_EVENT + 1),
                b"\r\n\r\n".to_vec(),
            ]
            .concat(),
            [
                b"data: {\"choices\":[]}\n\ndata: [DONE]\n".to_vec(),
                long("x", MAX_EVENT + 7),
                b"\n\n".to_vec(),
            ]
            .concat(),
            [
                long("data: ", MAX_EVENT + 1),
                b"\n\ndata: [DONE]\n\n".to_vec(),
            ]
            .concat(),
        ];
        for stream in &streams {
            let whole = followed(stream, &[]);
            for cuts in [&[10][..], &[3, MAX_EVENT], &[stream.len() - 3]] {
                assert_eq!(followed(stream, cuts), whole, "cut at {cuts:?}");
            }
        }
        // A comment over the cap is an event not inspected; one within it is a comment.
        assert_eq!(followed(&streams[0], &[]), (None, true));
        assert!(
            followed(&streams[1], &[]).0.is_some(),
            "no event: truncated"
        );
        // A line over the cap in the `[DONE]` event hides it: the chat stream is truncated.
        let (end, _) = followed(&streams[2], &[]);
        assert!(
            end.is_some_and(|e| e.contains("StreamTruncated")),
            "truncated"
        );
    }

    #[test]
    fn find_byte_finds_the_first() {
        for len in 0..40 {
            for at in 0..len {
                let mut hay = vec![b'a'; len];
                hay[at] = b'\n';
                if at + 3 < len {
                    hay[at + 3] = b'\n';
                }
                assert_eq!(find_byte(&hay, b'\n'), Some(at), "len {len} at {at}");
            }
            assert_eq!(find_byte(&vec![b'a'; len], b'\n'), None);
        }
        // Bytes around the pattern (borrows in the word trick) do not confuse it.
        assert_eq!(find_byte(b"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\n", b'\n'), Some(7));
        assert_eq!(find_byte(b"\x8a\x0a", b'\n'), Some(1));
        assert_eq!(
            find_byte(b"\x8a\x8a\x8a\x8a\x8a\x8a\x8a\x8a\x0a", b'\n'),
            Some(8)
        );
    }

    #[test]
    fn statuses_follow_the_error_names() {
        let object = |json: &str| match serde_json::from_str::<Value>(json).unwrap() {
            Value::Object(o) => o,
            _ => unreachable!(),
        };
        assert_eq!(
            implied_status(&object(r#"{"type":"overloaded_error"}"#)).as_u16(),
            529
        );
        assert_eq!(
            implied_status(&object(r#"{"code":502,"message":"x"}"#)).as_u16(),
            502
        );
        assert_eq!(
            implied_status(&object(r#"{"code":429,"status":"RESOURCE_EXHAUSTED"}"#)).as_u16(),
            429
        );
        assert_eq!(
            implied_status(&object(r#"{"code":"server_is_overloaded"}"#)).as_u16(),
            503
        );
        assert_eq!(implied_status(&object(r#"{"message":"?"}"#)).as_u16(), 500);
    }
}
