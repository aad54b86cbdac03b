//! Translation of an answer's server-sent-event stream, frame by frame: [`StreamTranslator`].
//!
//! The upstream's bytes are parsed incrementally as server-sent events (lines end at `\n` or
//! `\r\n`, an event ends at a blank line, its `event:` field names it and its `data:` lines are
//! joined by `\n`; comments and other fields are ignored), each event is translated as it
//! completes, and the caller's shape is written at once: nothing waits for the end of the stream.
//!
//! # Failure is visible, never silent
//!
//! A caller cannot use a garbled translation, so whatever cannot be translated ends the
//! translation with one error event in the caller's shape, after which all further input is
//! ignored:
//!
//! - an event (or a line of one) longer than [`MAX_EVENT`] bytes, so memory stays bounded
//!   (`upstream event too large`);
//! - an event whose data is not JSON, or not the shape its API documents (`upstream event
//!   malformed: …`), including an id or model name longer than [`MAX_NAME`] bytes (it is repeated
//!   in every OpenAI chunk, so a longer one would let the output outgrow the input);
//! - what the other shape cannot express: OpenAI chunks for a choice other than index 0, or
//!   argument fragments of a tool call whose block was already closed (calls interleaved);
//! - the upstream's own error event, translated (OpenAI's ends a failed stream without
//!   `[DONE]`; Anthropic's is an `error` event without `message_stop`).
//!
//! A stream that ends without its terminal event (`message_stop`, `data: [DONE]`) gets no
//! invented terminal event from [`StreamTranslator::finish`]: the caller must see the truncation,
//! as it would have without the gateway. At the end of the stream, a last event whose lines all
//! ended but whose blank line is missing is still translated; an unterminated last line is
//! dropped (it may have been cut anywhere).
//!
//! # What is unknown when
//!
//! Anthropic's `message_start` carries the input usage and OpenAI's first chunk carries none: an
//! OpenAI stream translated to Anthropic's says `"input_tokens": 0` in `message_start`, and the
//! usage (from OpenAI's `include_usage` chunk, zeros if the upstream sent none) comes in
//! `message_delta`, which Anthropic's clients add up.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::Api;

/// The longest event (or line of one) the translator buffers, in bytes: 1 MiB.
pub(crate) const MAX_EVENT: usize = 1 << 20;

/// The longest message id or model name accepted from the upstream, in bytes.
pub(crate) const MAX_NAME: usize = 256;

/// Translates a server-sent-event stream of API `from` into one of API `to`, frame by frame.
///
/// Between the same API the bytes pass through unchanged, nothing parsed. Otherwise see the
/// [module docs](self) for when the translation stops with an error event.
#[derive(Debug)]
pub(crate) struct StreamTranslator {
    /// The translation proper, or the passthrough.
    mode: Mode,
    /// The server-sent-event parser's pending bytes.
    sse: Sse,
    /// The translation is over (terminal event sent, or an error): input is ignored.
    done: bool,
}

/// What a [`StreamTranslator`] does with its input.
#[derive(Debug)]
enum Mode {
    /// The same API on both sides: bytes pass through.
    Passthrough,
    /// Anthropic Messages events to OpenAI Chat chunks.
    ToChat(ToChat),
    /// OpenAI Chat chunks to Anthropic Messages events.
    ToMessages(ToMessages),
}

// ===== impl StreamTranslator =====

impl StreamTranslator {
    /// A translator of a stream of API `from` into one of API `to`.
    pub(crate) fn new(from: Api, to: Api) -> Self {
        let mode = match (from, to) {
            (Api::Messages, Api::Chat) => Mode::ToChat(ToChat::default()),
            (Api::Chat, Api::Messages) => Mode::ToMessages(ToMessages::default()),
            _ => Mode::Passthrough,
        };
        StreamTranslator {
            mode,
            sse: Sse::default(),
            done: false,
        }
    }

    /// For Messages → Chat: whether the caller asked for usage (`stream_options.include_usage`);
    /// then a final usage chunk (`"choices": []`, `"usage": {...}`) goes before `[DONE]`, and
    /// every other chunk says `"usage": null`, as OpenAI does. Other directions ignore it.
    #[must_use]
    pub(crate) fn with_usage(mut self, include_usage: bool) -> Self {
        if let Mode::ToChat(t) = &mut self.mode {
            t.include_usage = include_usage;
        }
        self
    }

    /// For Messages → Chat: the chunks' `created` (Unix seconds) instead of the clock's reading
    /// at `message_start`, for tests. Other directions ignore it.
    #[must_use]
    #[allow(dead_code, reason = "only the tests inject the time")]
    pub(crate) fn with_created(mut self, secs: u64) -> Self {
        if let Mode::ToChat(t) = &mut self.mode {
            t.created = Some(secs);
        }
        self
    }

    /// Feeds the next bytes of the upstream stream (split anywhere: mid-line, mid-UTF-8);
    /// returns the bytes to send to the caller now (maybe empty).
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Bytes {
        if let Mode::Passthrough = self.mode {
            return Bytes::copy_from_slice(chunk);
        }
        let mut out = Vec::new();
        let mut rest = chunk;
        while !self.done && !rest.is_empty() {
            let (line, ended) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = if ended { &rest[line.len() + 1..] } else { &[] };
            if self.sse.pending().saturating_add(line.len()) > MAX_EVENT {
                self.fail("upstream event too large", &mut out);
                break;
            }
            self.sse.line.extend_from_slice(line);
            if ended {
                self.end_line(&mut out);
            }
        }
        Bytes::from(out)
    }

    /// The upstream stream ended: returns any last bytes to send.
    ///
    /// A stream that ended without its terminal event gets no invented terminal event: the
    /// caller must see the truncation. A last event whose lines all ended but whose blank line
    /// is missing is translated; an unterminated last line is dropped.
    pub(crate) fn finish(&mut self) -> Bytes {
        let mut out = Vec::new();
        if !self.done && !matches!(self.mode, Mode::Passthrough) {
            self.sse.line.clear();
            self.end_line(&mut out);
        }
        self.done = true;
        Bytes::from(out)
    }

    /// Handles the complete line in `self.sse.line`.
    fn end_line(&mut self, out: &mut Vec<u8>) {
        let mut line = std::mem::take(&mut self.sse.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            let name = std::mem::take(&mut self.sse.event);
            let data = std::mem::take(&mut self.sse.data);
            if std::mem::take(&mut self.sse.has_data) {
                self.dispatch(&name, &data, out);
            }
        } else if line[0] != b':' {
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(i) => {
                    let value = &line[i + 1..];
                    (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (&line[..], &[][..]),
            };
            match field {
                b"event" => {
                    self.sse.event.clear();
                    self.sse.event.extend_from_slice(value);
                }
                b"data" => {
                    if self.sse.has_data {
                        self.sse.data.push(b'\n');
                    }
                    self.sse.data.extend_from_slice(value);
                    self.sse.has_data = true;
                }
                _ => {}
            }
        }
        line.clear();
        self.sse.line = line;
    }

    /// Translates one complete event.
    fn dispatch(&mut self, name: &[u8], data: &[u8], out: &mut Vec<u8>) {
        let step = match &mut self.mode {
            Mode::Passthrough => Ok(Step::Continue),
            Mode::ToChat(t) => t.event(name, data, out),
            Mode::ToMessages(t) => t.event(data, out),
        };
        match step {
            Ok(Step::Continue) => {}
            Ok(Step::Done) => self.done = true,
            Err(why) => self.fail(&why, out),
        }
    }

    /// Ends the translation with an error event in the caller's shape saying `message`.
    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        match self.mode {
            Mode::Passthrough => {}
            Mode::ToChat(_) => chat_error(out, message, "server_error"),
            Mode::ToMessages(_) => messages_error(out, "api_error", message),
        }
        self.done = true;
    }
}

/// The server-sent-event parser's state between feeds.
#[derive(Debug, Default)]
struct Sse {
    /// The current line, not yet ended.
    line: Vec<u8>,
    /// The current event's `event:` field.
    event: Vec<u8>,
    /// The current event's `data:` lines, joined by `\n`.
    data: Vec<u8>,
    /// Whether the current event has a `data:` line (an event without one is not dispatched).
    has_data: bool,
}

impl Sse {
    /// The bytes buffered for the current event.
    fn pending(&self) -> usize {
        self.line.len() + self.event.len() + self.data.len()
    }
}

/// What the translation does after an event.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Goes on.
    Continue,
    /// Its terminal event was sent: stops.
    Done,
}

/// Why an event ends the translation: the error event's message.
type Failure = String;

/// Parses an event's data as a JSON object.
fn object(data: &[u8]) -> Result<Map<String, Value>, Failure> {
    match serde_json::from_slice(data) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(malformed("data is not a JSON object")),
        Err(_) => Err(malformed("data is not JSON")),
    }
}

/// The failure for an event not of its API's shape.
fn malformed(what: &str) -> Failure {
    format!("upstream event malformed: {what}")
}

/// A string member of `o`, `""` when missing or null; an error when of another type.
fn opt_str<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str, Failure> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(malformed(&format!("{key} is not a string"))),
    }
}

/// A required string member of `o`.
fn req_str<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str, Failure> {
    match o.get(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(malformed(&format!("{key} is not a string"))),
    }
}

/// A name (id, model) of at most [`MAX_NAME`] bytes.
fn name<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str, Failure> {
    let s = opt_str(o, key)?;
    if s.len() > MAX_NAME {
        return Err(malformed(&format!("{key} longer than {MAX_NAME} bytes")));
    }
    Ok(s)
}

/// A token count member of `o`, if present and a count.
fn count(o: Option<&Map<String, Value>>, key: &str) -> Option<u64> {
    o?.get(key)?.as_u64()
}

/// An object member of `o`, if present and an object.
fn member<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    o.get(key)?.as_object()
}

/// `s` as a JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Writes OpenAI's stream error frame: `data: {"error":{"message","type","code":null}}`.
fn chat_error(out: &mut Vec<u8>, message: &str, kind: &str) {
    let frame = format!(
        "data: {{\"error\":{{\"message\":{},\"type\":{},\"code\":null}}}}\n\n",
        js(message),
        js(kind)
    );
    out.extend_from_slice(frame.as_bytes());
}

/// Writes Anthropic's stream error event: `event: error` with `{"type":"error","error":{…}}`.
fn messages_error(out: &mut Vec<u8>, kind: &str, message: &str) {
    let data = format!(
        "{{\"type\":\"error\",\"error\":{{\"type\":{},\"message\":{}}}}}",
        js(kind),
        js(message)
    );
    messages_event(out, "error", &data);
}

/// Writes one Anthropic event: `event: <name>\ndata: <data>\n\n`.
fn messages_event(out: &mut Vec<u8>, name: &str, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

// ===== Anthropic Messages → OpenAI Chat =====

/// The state of an Anthropic stream's translation into OpenAI chunks.
#[derive(Debug, Default)]
struct ToChat {
    /// Whether the caller asked for usage (`stream_options.include_usage`).
    include_usage: bool,
    /// The `created` to use instead of the clock's.
    created: Option<u64>,
    /// Every chunk's beginning, `{"id":…,"object":…,"created":…,"model":…,`, once
    /// `message_start` came.
    head: Option<String>,
    /// The content block open: its index and kind.
    block: Option<(u64, Block)>,
    /// The number of tool calls begun so far: the next one's OpenAI index.
    tool_calls: u64,
    /// Input tokens, not counting the cache.
    input: u64,
    /// Input tokens read from the cache.
    cache_read: u64,
    /// Input tokens written to the cache.
    cache_creation: u64,
    /// Output tokens.
    output: u64,
    /// The OpenAI finish reason, from `message_delta`'s stop reason.
    finish: Option<&'static str>,
}

/// An Anthropic content block's kind, as the translation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Text: its deltas become `content`.
    Text,
    /// A tool call, with its OpenAI index.
    Tool(u64),
    /// Thinking and unknown kinds: dropped with their deltas.
    Ignored,
}

impl ToChat {
    /// Translates one Anthropic event.
    fn event(&mut self, name: &[u8], data: &[u8], out: &mut Vec<u8>) -> Result<Step, Failure> {
        // The event's name says its type; an unnamed one says it in its data.
        let parsed;
        let kind: &[u8] = if name.is_empty() {
            parsed = Some(object(data)?);
            parsed
                .as_ref()
                .and_then(|o| o.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .as_bytes()
        } else {
            parsed = None;
            name
        };
        let known = [
            &b"message_start"[..],
            b"content_block_start",
            b"content_block_delta",
            b"content_block_stop",
            b"message_delta",
            b"message_stop",
            b"error",
        ];
        if !known.contains(&kind) {
            return Ok(Step::Continue); // ping, and events added later: ignored, as documented.
        }
        let kind = kind.to_vec();
        let o = match parsed {
            Some(o) => o,
            None => object(data)?,
        };
        if kind == b"error" {
            let error = member(&o, "error");
            let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
            let kind = error.and_then(|e| e.get("type")).and_then(Value::as_str);
            chat_error(
                out,
                message.unwrap_or("upstream error"),
                kind.unwrap_or("api_error"),
            );
            return Ok(Step::Done);
        }
        if kind == b"message_start" {
            return self.message_start(&o, out);
        }
        let Some(head) = self.head.as_deref() else {
            return Err(malformed("the stream does not begin with message_start"));
        };
        let usage_null = if self.include_usage {
            ",\"usage\":null"
        } else {
            ""
        };
        let chunk = |out: &mut Vec<u8>, delta: &str, finish: &str| {
            let frame = format!(
                "data: {head}\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]{usage_null}}}\n\n"
            );
            out.extend_from_slice(frame.as_bytes());
        };
        match &kind[..] {
            b"content_block_start" => {
                let index = o.get("index").and_then(Value::as_u64).unwrap_or(0);
                let Some(block) = member(&o, "content_block") else {
                    return Err(malformed("content_block is not an object"));
                };
                let b = match opt_str(block, "type")? {
                    "text" => {
                        let text = opt_str(block, "text")?;
                        if !text.is_empty() {
                            chunk(out, &format!("{{\"content\":{}}}", js(text)), "null");
                        }
                        Block::Text
                    }
                    "tool_use" => {
                        let n = self.tool_calls;
                        self.tool_calls = n.saturating_add(1);
                        let delta = format!(
                            "{{\"tool_calls\":[{{\"index\":{n},\"id\":{},\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":\"\"}}}}]}}",
                            js(req_str(block, "id")?),
                            js(req_str(block, "name")?)
                        );
                        chunk(out, &delta, "null");
                        Block::Tool(n)
                    }
                    _ => Block::Ignored,
                };
                self.block = Some((index, b));
            }
            b"content_block_delta" => {
                let index = o.get("index").and_then(Value::as_u64).unwrap_or(0);
                let Some(delta) = member(&o, "delta") else {
                    return Err(malformed("delta is not an object"));
                };
                let block = match self.block {
                    Some((open, block)) if open == index => block,
                    _ => return Err(malformed("a delta for a block not open")),
                };
                match (block, opt_str(delta, "type")?) {
                    (Block::Text, "text_delta") => {
                        let text = req_str(delta, "text")?;
                        if !text.is_empty() {
                            chunk(out, &format!("{{\"content\":{}}}", js(text)), "null");
                        }
                    }
                    (Block::Tool(n), "input_json_delta") => {
                        let json = req_str(delta, "partial_json")?;
                        if !json.is_empty() {
                            let delta = format!(
                                "{{\"tool_calls\":[{{\"index\":{n},\"function\":{{\"arguments\":{}}}}}]}}",
                                js(json)
                            );
                            chunk(out, &delta, "null");
                        }
                    }
                    // thinking_delta, signature_delta, citations and later kinds.
                    _ => {}
                }
            }
            b"content_block_stop" => self.block = None,
            b"message_delta" => {
                if let Some(delta) = member(&o, "delta") {
                    match delta.get("stop_reason") {
                        None | Some(Value::Null) => {}
                        Some(Value::String(reason)) => {
                            self.finish = Some(match reason.as_str() {
                                "max_tokens" => "length",
                                "tool_use" => "tool_calls",
                                "refusal" => "content_filter",
                                _ => "stop", // end_turn, stop_sequence, pause_turn, later ones
                            });
                        }
                        Some(_) => return Err(malformed("stop_reason is not a string")),
                    }
                }
                let usage = member(&o, "usage");
                self.output = count(usage, "output_tokens").unwrap_or(self.output);
                self.input = count(usage, "input_tokens").unwrap_or(self.input);
                self.cache_read =
                    count(usage, "cache_read_input_tokens").unwrap_or(self.cache_read);
                self.cache_creation =
                    count(usage, "cache_creation_input_tokens").unwrap_or(self.cache_creation);
            }
            _ => {
                // message_stop
                let finish = js(self.finish.unwrap_or("stop"));
                chunk(out, "{}", &finish);
                if self.include_usage {
                    let prompt = self
                        .input
                        .saturating_add(self.cache_read)
                        .saturating_add(self.cache_creation);
                    let frame = format!(
                        "data: {head}\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{},\"total_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":{}}}}}}}\n\n",
                        self.output,
                        prompt.saturating_add(self.output),
                        self.cache_read
                    );
                    out.extend_from_slice(frame.as_bytes());
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                return Ok(Step::Done);
            }
        }
        Ok(Step::Continue)
    }

    /// `message_start`: the first chunk, `{"role":"assistant","content":""}`.
    fn message_start(
        &mut self,
        o: &Map<String, Value>,
        out: &mut Vec<u8>,
    ) -> Result<Step, Failure> {
        if self.head.is_some() {
            return Err(malformed("a second message_start"));
        }
        let Some(message) = member(o, "message") else {
            return Err(malformed("message is not an object"));
        };
        let id = name(message, "id")?;
        let model = name(message, "model")?;
        let usage = member(message, "usage");
        self.input = count(usage, "input_tokens").unwrap_or(0);
        self.cache_read = count(usage, "cache_read_input_tokens").unwrap_or(0);
        self.cache_creation = count(usage, "cache_creation_input_tokens").unwrap_or(0);
        self.output = count(usage, "output_tokens").unwrap_or(0);
        let created = self.created.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
        let head = format!(
            "{{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{},",
            js(id),
            js(model)
        );
        let usage_null = if self.include_usage {
            ",\"usage\":null"
        } else {
            ""
        };
        let frame = format!(
            "data: {head}\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]{usage_null}}}\n\n"
        );
        out.extend_from_slice(frame.as_bytes());
        self.head = Some(head);
        Ok(Step::Continue)
    }
}

// ===== OpenAI Chat → Anthropic Messages =====

/// The state of an OpenAI stream's translation into Anthropic events.
#[derive(Debug, Default)]
struct ToMessages {
    /// Whether `message_start` was sent.
    started: bool,
    /// The content block open.
    open: Option<Open>,
    /// The next block's index.
    next_block: u64,
    /// The Anthropic stop reason, from the finish reason.
    stop_reason: Option<&'static str>,
    /// Whether the answer was a refusal (`delta.refusal`).
    refusal: bool,
    /// Prompt tokens, the cached ones included.
    prompt: u64,
    /// Completion tokens.
    completion: u64,
    /// Prompt tokens read from the cache.
    cached: u64,
}

/// An open Anthropic content block.
#[derive(Debug)]
enum Open {
    /// A text block, with its index.
    Text(u64),
    /// A tool use block, with its index, the OpenAI tool call's index and its id.
    Tool(u64, u64, String),
}

impl ToMessages {
    /// Translates one OpenAI chunk (or `[DONE]`).
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<Step, Failure> {
        if data == b"[DONE]" {
            if !self.started {
                return Err(malformed("the stream ended before its first chunk"));
            }
            self.close(out);
            let stop = self.stop_reason.map_or_else(|| "null".to_owned(), js);
            let data = format!(
                "{{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":{stop},\"stop_sequence\":null}},\"usage\":{{\"input_tokens\":{},\"output_tokens\":{},\"cache_read_input_tokens\":{}}}}}",
                self.prompt.saturating_sub(self.cached),
                self.completion,
                self.cached
            );
            messages_event(out, "message_delta", &data);
            messages_event(out, "message_stop", "{\"type\":\"message_stop\"}");
            return Ok(Step::Done);
        }
        let o = object(data)?;
        if let Some(error) = o.get("error") {
            let error = error.as_object();
            let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
            let openai_type = error
                .and_then(|e| e.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let code = error
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let kind = if openai_type.contains("rate_limit")
                || code.contains("rate_limit")
                || openai_type == "requests"
                || openai_type == "tokens"
            {
                "rate_limit_error"
            } else {
                "api_error"
            };
            messages_error(out, kind, message.unwrap_or("upstream error"));
            return Ok(Step::Done);
        }
        let choices = match o.get("choices") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => &a[..],
            Some(_) => return Err(malformed("choices is not an array")),
        };
        let usage = match o.get("usage") {
            None | Some(Value::Null) => None,
            Some(Value::Object(u)) => Some(u),
            Some(_) => return Err(malformed("usage is not an object")),
        };
        if !self.started && (!choices.is_empty() || usage.is_some()) {
            let data = format!(
                "{{\"type\":\"message_start\",\"message\":{{\"id\":{},\"type\":\"message\",\"role\":\"assistant\",\"model\":{},\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":0,\"output_tokens\":0}}}}}}",
                js(name(&o, "id")?),
                js(name(&o, "model")?)
            );
            messages_event(out, "message_start", &data);
            self.started = true;
        }
        for choice in choices {
            let Some(choice) = choice.as_object() else {
                return Err(malformed("a choice is not an object"));
            };
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                return Err(
                    "upstream stream has several choices; only one can be translated".into(),
                );
            }
            self.choice(choice, out)?;
        }
        if let Some(u) = usage {
            self.prompt = count(Some(u), "prompt_tokens").unwrap_or(self.prompt);
            self.completion = count(Some(u), "completion_tokens").unwrap_or(self.completion);
            self.cached =
                count(member(u, "prompt_tokens_details"), "cached_tokens").unwrap_or(self.cached);
        }
        Ok(Step::Continue)
    }

    /// Translates choice 0 of a chunk.
    fn choice(&mut self, choice: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), Failure> {
        if let Some(delta) = member(choice, "delta") {
            let content = opt_str(delta, "content")?;
            self.text(content, out);
            let refusal = opt_str(delta, "refusal")?;
            if !refusal.is_empty() {
                self.refusal = true;
                self.text(refusal, out);
            }
            match delta.get("tool_calls") {
                None | Some(Value::Null) => {}
                Some(Value::Array(calls)) => {
                    for call in calls {
                        let Some(call) = call.as_object() else {
                            return Err(malformed("a tool call is not an object"));
                        };
                        self.tool_call(call, out)?;
                    }
                }
                Some(_) => return Err(malformed("tool_calls is not an array")),
            }
        }
        match choice.get("finish_reason") {
            None | Some(Value::Null) => {}
            Some(Value::String(reason)) => {
                self.close(out);
                let stop = match reason.as_str() {
                    "length" => "max_tokens",
                    "tool_calls" | "function_call" => "tool_use",
                    "content_filter" => "refusal",
                    _ if self.refusal => "refusal",
                    _ => "end_turn",
                };
                self.stop_reason = Some(stop);
            }
            Some(_) => return Err(malformed("finish_reason is not a string")),
        }
        Ok(())
    }

    /// Text (or refusal) `text`: a text delta, in a text block opened if need be.
    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let index = match self.open {
            Some(Open::Text(index)) => index,
            _ => {
                self.close(out);
                let index = self.begin();
                let data = format!(
                    "{{\"type\":\"content_block_start\",\"index\":{index},\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}"
                );
                messages_event(out, "content_block_start", &data);
                self.open = Some(Open::Text(index));
                index
            }
        };
        let data = format!(
            "{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"text_delta\",\"text\":{}}}}}",
            js(text)
        );
        messages_event(out, "content_block_delta", &data);
    }

    /// One entry of `delta.tool_calls`: a new call opens a tool use block, argument fragments
    /// become its `input_json_delta`s.
    fn tool_call(&mut self, call: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), Failure> {
        let Some(k) = call.get("index").and_then(Value::as_u64) else {
            return Err(malformed("a tool call's index is not a number"));
        };
        let function = member(call, "function");
        let id = opt_str(call, "id")?;
        // Some OpenAI-compatible servers repeat the id in every fragment: the same id on the
        // open call's index continues it.
        let continues = matches!(&self.open, Some(Open::Tool(_, open_k, open_id)) if *open_k == k && (id.is_empty() || id == open_id));
        if !continues {
            if id.is_empty() {
                return Err(
                    "upstream tool calls interleaved: fragments for a call already closed".into(),
                );
            }
            let Some(function) = function else {
                return Err(malformed("a new tool call has no function"));
            };
            let name = req_str(function, "name")?;
            self.close(out);
            let index = self.begin();
            let data = format!(
                "{{\"type\":\"content_block_start\",\"index\":{index},\"content_block\":{{\"type\":\"tool_use\",\"id\":{},\"name\":{},\"input\":{{}}}}}}",
                js(id),
                js(name)
            );
            messages_event(out, "content_block_start", &data);
            self.open = Some(Open::Tool(index, k, id.to_owned()));
        }
        let arguments = match function {
            Some(f) => opt_str(f, "arguments")?,
            None => "",
        };
        if let (false, Some(Open::Tool(index, ..))) = (arguments.is_empty(), &self.open) {
            let data = format!(
                "{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"input_json_delta\",\"partial_json\":{}}}}}",
                js(arguments)
            );
            messages_event(out, "content_block_delta", &data);
        }
        Ok(())
    }

    /// A new block's index.
    fn begin(&mut self) -> u64 {
        let index = self.next_block;
        self.next_block = index.saturating_add(1);
        index
    }

    /// Closes the open block, if any: `content_block_stop`.
    fn close(&mut self, out: &mut Vec<u8>) {
        let index = match self.open.take() {
            None => return,
            Some(Open::Text(index) | Open::Tool(index, ..)) => index,
        };
        let data = format!("{{\"type\":\"content_block_stop\",\"index\":{index}}}");
        messages_event(out, "content_block_stop", &data);
    }
}
