//! Request translation between OpenAI's Chat Completions and Anthropic's Messages.
//!
//! Both directions work from a whitelist: every member of the request is translated, accepted as
//! a no-op when it holds its default value, or refused with [`TranslateError::Untranslatable`]
//! naming it. A member the translator does not know is refused too, so nothing the caller sent
//! is dropped silently. A member whose value is `null` is treated as absent (OpenAI's SDKs send
//! `null` for "not set").
//!
//! Choices worth knowing, OpenAI to Anthropic:
//!
//! - `system` and `developer` messages become Anthropic's top-level `system`, in order, wherever
//!   they appear: one placed after a user or an assistant message is hoisted to the front as
//!   well, which is what every translator does (Anthropic has no mid-conversation system turn).
//! - Consecutive messages that end up with the same Anthropic role are merged into one, so the
//!   `tool_result`s answering parallel tool calls share one user message, as Anthropic needs.
//! - `stream_options` is accepted only beside `stream: true` and dropped: Anthropic's streams
//!   always carry usage.
//! - `parallel_tool_calls: false` sets `disable_parallel_tool_use` on the tool choice, creating
//!   `{"type":"auto"}` if there is none; with no tools, or with the choice `none`, there are no
//!   parallel calls to disable and it is a no-op (Anthropic refuses a tool choice without tools).
//! - Empty text (an empty string content, an empty text part) is left out, since Anthropic
//!   refuses empty text blocks; a message left with nothing is refused as invalid.
//! - An empty `arguments` string in an assistant's tool call is read as `{}`, as some models
//!   produce it for a function without parameters.
//!
//! Anthropic to OpenAI:
//!
//! - `cache_control` is dropped wherever it appears (system blocks, content blocks, tools): it is
//!   an optimisation hint that changes no answer.
//! - A `tool_result` becomes a `tool` message placed before the rest of its user message's
//!   content. `is_error: true` has no OpenAI equivalent and is accepted: the content, which says
//!   what went wrong, is kept as it is.
//! - Assistant text blocks are joined with nothing between them (Anthropic splits one answer's
//!   text into blocks); system blocks are joined with a blank line.
//! - `stream: true` adds `stream_options: {"include_usage": true}`, so the answer can report
//!   usage as Anthropic's always does.
//!
//! In both directions a conversation ending with an assistant message is refused: Anthropic
//! reads it as a prefill that the answer continues, OpenAI as a finished turn to answer after,
//! so the same request would get a different answer.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{Api, TranslateError};

/// Anthropic requires max_tokens; an OpenAI request without one gets this.
pub(crate) const DEFAULT_MAX_TOKENS: u64 = 4096;

/// A JSON object, as serde_json holds it.
pub(super) type Object = Map<String, Value>;

/// Translates a request body of API `from` to API `to` (same API: returned unchanged, not parsed).
pub(crate) fn request(body: &[u8], from: Api, to: Api) -> Result<Bytes, TranslateError> {
    if from == to {
        return Ok(Bytes::copy_from_slice(body));
    }
    let object = parse_object(body)?;
    let translated = match from {
        Api::Chat => chat_to_messages(object)?,
        Api::Messages => messages_to_chat(object)?,
    };
    to_bytes(translated)
}

// ===== shared helpers (also used by the response translation) =====

/// Parses a body that must be one JSON object.
pub(super) fn parse_object(body: &[u8]) -> Result<Object, TranslateError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(TranslateError::invalid("the body must be a JSON object")),
        Err(_) => Err(TranslateError::invalid("the body is not JSON")),
    }
}

/// Serializes a translated body.
pub(super) fn to_bytes(object: Object) -> Result<Bytes, TranslateError> {
    serde_json::to_vec(&Value::Object(object))
        .map(Bytes::from)
        .map_err(|_| TranslateError::invalid("the translated body could not be serialized"))
}

/// Removes a member, reading `null` as absent.
pub(super) fn take(object: &mut Object, key: &str) -> Option<Value> {
    object.remove(key).filter(|value| !value.is_null())
}

/// Removes a member that must be there (and not `null`).
pub(super) fn required(
    object: &mut Object,
    key: &str,
    path: &str,
) -> Result<Value, TranslateError> {
    take(object, key)
        .ok_or_else(|| TranslateError::invalid(format!("{} is required", at(path, key))))
}

/// A member's path for messages: `messages[0].content`, or `model` at the top.
pub(super) fn at(path: &str, key: &str) -> String {
    let key = name(key);
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A member name or a type from the body, safe to put in a message: a short identifier is
/// named, anything else is not quoted.
pub(super) fn name(key: &str) -> &str {
    let simple = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if simple { key } else { "<unnamed>" }
}

/// Refuses the first member left in `object` once the known ones have been taken.
pub(super) fn refuse_rest(object: Object, path: &str, to: Api) -> Result<(), TranslateError> {
    match object.into_iter().find(|(_, value)| !value.is_null()) {
        Some((key, _)) => Err(TranslateError::untranslatable(at(path, &key), to)),
        None => Ok(()),
    }
}

/// A value that must be a string.
pub(super) fn string(value: Value, what: &str) -> Result<String, TranslateError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(TranslateError::invalid(format!("{what} must be a string"))),
    }
}

/// A value that must be an object.
pub(super) fn object(value: Value, what: &str) -> Result<Object, TranslateError> {
    match value {
        Value::Object(o) => Ok(o),
        _ => Err(TranslateError::invalid(format!("{what} must be an object"))),
    }
}

/// A value that must be an array.
pub(super) fn array(value: Value, what: &str) -> Result<Vec<Value>, TranslateError> {
    match value {
        Value::Array(a) => Ok(a),
        _ => Err(TranslateError::invalid(format!("{what} must be an array"))),
    }
}

/// A value that must be a boolean.
fn boolean(value: &Value, what: &str) -> Result<bool, TranslateError> {
    value
        .as_bool()
        .ok_or_else(|| TranslateError::invalid(format!("{what} must be a boolean")))
}

/// A value that must be a number.
fn number(value: Value, what: &str) -> Result<Value, TranslateError> {
    match value {
        Value::Number(_) => Ok(value),
        _ => Err(TranslateError::invalid(format!("{what} must be a number"))),
    }
}

/// A value that must be a positive integer.
fn positive(value: &Value, what: &str) -> Result<u64, TranslateError> {
    value
        .as_u64()
        .filter(|n| *n > 0)
        .ok_or_else(|| TranslateError::invalid(format!("{what} must be a positive integer")))
}

/// Parses a tool call's `arguments` string into the object Anthropic's `input` holds (`""` is
/// read as `{}`).
pub(super) fn arguments(text: &str, what: &str) -> Result<Value, TranslateError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Object::new()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(TranslateError::invalid(format!(
            "{what} must be a JSON object"
        ))),
    }
}

/// Anthropic's text block.
fn text_block(text: String) -> Value {
    json!({"type": "text", "text": text})
}

/// Refuses a content part or block of a type this side cannot express, naming the type when it
/// is a plain identifier.
fn refuse_type(path: &str, kind: &str, to: Api) -> TranslateError {
    let kind = name(kind);
    if kind == "<unnamed>" {
        TranslateError::untranslatable(format!("{path}.type"), to)
    } else {
        TranslateError::untranslatable(format!("{path}.type={kind}"), to)
    }
}

// ===== OpenAI Chat Completions to Anthropic Messages =====

/// Translates an OpenAI Chat Completions request into an Anthropic Messages one.
fn chat_to_messages(mut req: Object) -> Result<Object, TranslateError> {
    const TO: Api = Api::Messages;
    let mut out = Object::new();

    let model = string(required(&mut req, "model", "")?, "model")?;
    out.insert("model".into(), Value::String(model));

    let messages = array(required(&mut req, "messages", "")?, "messages")?;
    let (system, messages) = chat_messages(messages)?;
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert("messages".into(), Value::Array(messages));

    let max_completion = take(&mut req, "max_completion_tokens")
        .map(|v| positive(&v, "max_completion_tokens"))
        .transpose()?;
    let max_tokens = take(&mut req, "max_tokens")
        .map(|v| positive(&v, "max_tokens"))
        .transpose()?;
    let max = max_completion.or(max_tokens).unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), max.into());

    if let Some(t) = take(&mut req, "temperature") {
        let value = t
            .as_f64()
            .ok_or_else(|| TranslateError::invalid("temperature must be a number"))?;
        if value < 0.0 {
            return Err(TranslateError::invalid("temperature must not be negative"));
        }
        if value > 1.0 {
            return Err(TranslateError::untranslatable("temperature above 1", TO));
        }
        out.insert("temperature".into(), t);
    }
    if let Some(p) = take(&mut req, "top_p") {
        out.insert("top_p".into(), number(p, "top_p")?);
    }

    match take(&mut req, "stop") {
        None => {}
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(items)) => {
            let mut stops = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                stops.push(Value::String(string(item, &format!("stop[{i}]"))?));
            }
            if !stops.is_empty() {
                out.insert("stop_sequences".into(), Value::Array(stops));
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "stop must be a string or an array of strings",
            ));
        }
    }

    let stream = match take(&mut req, "stream") {
        Some(s) => boolean(&s, "stream")?,
        None => false,
    };
    if stream {
        out.insert("stream".into(), Value::Bool(true));
    }
    if let Some(options) = take(&mut req, "stream_options") {
        if !stream {
            return Err(TranslateError::invalid(
                "stream_options requires stream: true",
            ));
        }
        let mut options = object(options, "stream_options")?;
        if let Some(usage) = take(&mut options, "include_usage") {
            boolean(&usage, "stream_options.include_usage")?;
        }
        refuse_rest(options, "stream_options", TO)?;
    }

    if let Some(user) = take(&mut req, "user") {
        let user = string(user, "user")?;
        out.insert("metadata".into(), json!({"user_id": user}));
    }

    let mut has_tools = false;
    if let Some(tools) = take(&mut req, "tools") {
        let tools = chat_tools(array(tools, "tools")?)?;
        has_tools = !tools.is_empty();
        if has_tools {
            out.insert("tools".into(), Value::Array(tools));
        }
    }

    let mut choice = match take(&mut req, "tool_choice") {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "none" => json!({"type": "none"}),
            "required" => json!({"type": "any"}),
            _ => {
                return Err(TranslateError::invalid(
                    "tool_choice must be auto, none, required or a function",
                ));
            }
        }),
        Some(Value::Object(mut o)) => {
            let kind = string(required(&mut o, "type", "tool_choice")?, "tool_choice.type")?;
            if kind != "function" {
                return Err(refuse_type("tool_choice", &kind, TO));
            }
            let mut function = object(
                required(&mut o, "function", "tool_choice")?,
                "tool_choice.function",
            )?;
            let name = string(
                required(&mut function, "name", "tool_choice.function")?,
                "tool_choice.function.name",
            )?;
            refuse_rest(function, "tool_choice.function", TO)?;
            refuse_rest(o, "tool_choice", TO)?;
            Some(json!({"type": "tool", "name": name}))
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "tool_choice must be a string or an object",
            ));
        }
    };
    if let Some(parallel) = take(&mut req, "parallel_tool_calls") {
        let is_none = choice
            .as_ref()
            .and_then(|c| c.get("type"))
            .and_then(Value::as_str)
            == Some("none");
        if !boolean(&parallel, "parallel_tool_calls")? && has_tools && !is_none {
            let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
            if let Value::Object(c) = choice {
                c.insert("disable_parallel_tool_use".into(), Value::Bool(true));
            }
        }
    }
    if let Some(choice) = choice {
        out.insert("tool_choice".into(), choice);
    }

    noop(&mut req, "n", |v| v.as_f64() == Some(1.0), TO)?;
    noop(&mut req, "logprobs", |v| v.as_bool() == Some(false), TO)?;
    noop(
        &mut req,
        "frequency_penalty",
        |v| v.as_f64() == Some(0.0),
        TO,
    )?;
    noop(
        &mut req,
        "presence_penalty",
        |v| v.as_f64() == Some(0.0),
        TO,
    )?;
    noop(
        &mut req,
        "response_format",
        |v| *v == json!({"type": "text"}),
        TO,
    )?;
    noop(&mut req, "store", |v| v.as_bool() == Some(false), TO)?;
    noop(
        &mut req,
        "metadata",
        |v| v.as_object().is_some_and(Map::is_empty),
        TO,
    )?;

    // `seed`, `logit_bias`, `top_logprobs`, `audio`, `modalities`, `prediction`,
    // `service_tier`, `reasoning_effort`, `web_search_options`, `functions`,
    // `function_call` and any member not known are left: all refused.
    refuse_rest(req, "", TO)?;
    Ok(out)
}

/// Accepts a member holding its default value, refuses it otherwise.
fn noop(
    req: &mut Object,
    key: &str,
    is_default: impl Fn(&Value) -> bool,
    to: Api,
) -> Result<(), TranslateError> {
    match take(req, key) {
        Some(value) if !is_default(&value) => Err(TranslateError::untranslatable(key, to)),
        _ => Ok(()),
    }
}

/// Splits OpenAI messages into Anthropic's system blocks and its messages.
fn chat_messages(messages: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    const TO: Api = Api::Messages;
    if messages.is_empty() {
        return Err(TranslateError::invalid("messages must not be empty"));
    }
    let last = messages.len() - 1;
    let mut system = Vec::new();
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    for (i, message) in messages.into_iter().enumerate() {
        let path = format!("messages[{i}]");
        let mut message = object(message, &path)?;
        let role = string(
            required(&mut message, "role", &path)?,
            &format!("{path}.role"),
        )?;
        if take(&mut message, "name").is_some() {
            return Err(TranslateError::untranslatable(format!("{path}.name"), TO));
        }
        match role.as_str() {
            "system" | "developer" => {
                let content = required(&mut message, "content", &path)?;
                system.extend(chat_text_blocks(content, &format!("{path}.content"))?);
            }
            "user" => {
                let content = required(&mut message, "content", &path)?;
                let content = chat_user_content(content, &path)?;
                push(&mut out, "user", content);
            }
            "assistant" => {
                if i == last {
                    return Err(TranslateError::untranslatable(
                        format!("{path} (a final assistant message)"),
                        TO,
                    ));
                }
                let blocks = chat_assistant_content(&mut message, &path)?;
                push(&mut out, "assistant", Value::Array(blocks));
            }
            "tool" => {
                let id = string(
                    required(&mut message, "tool_call_id", &path)?,
                    &format!("{path}.tool_call_id"),
                )?;
                let mut result = json!({"type": "tool_result", "tool_use_id": id});
                if let Some(content) = take(&mut message, "content") {
                    let content = match content {
                        Value::String(s) => Value::String(s),
                        other => Value::Array(chat_text_blocks(other, &format!("{path}.content"))?),
                    };
                    let empty = match &content {
                        Value::String(s) => s.is_empty(),
                        Value::Array(a) => a.is_empty(),
                        _ => false,
                    };
                    if let (false, Value::Object(r)) = (empty, &mut result) {
                        r.insert("content".into(), content);
                    }
                }
                push(&mut out, "user", Value::Array(vec![result]));
            }
            "function" => {
                return Err(TranslateError::untranslatable(
                    format!("{path}.role=function"),
                    TO,
                ));
            }
            _ => {
                return Err(TranslateError::invalid(format!(
                    "{path}.role must be system, developer, user, assistant or tool"
                )));
            }
        }
        refuse_rest(message, &path, TO)?;
    }
    if out.is_empty() {
        return Err(TranslateError::invalid(
            "messages holds no user or assistant message",
        ));
    }
    let messages = out
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, messages))
}

/// Appends a message, merging it into the previous one when both have the same role.
fn push(out: &mut Vec<(&'static str, Value)>, role: &'static str, content: Value) {
    match out.last_mut() {
        Some((last_role, last_content)) if *last_role == role => {
            let mut blocks = into_blocks(std::mem::take(last_content));
            blocks.extend(into_blocks(content));
            *last_content = Value::Array(blocks);
        }
        _ => out.push((role, content)),
    }
}

/// A message's content as a block array.
fn into_blocks(content: Value) -> Vec<Value> {
    match content {
        Value::Array(blocks) => blocks,
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![text_block(s)],
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// The text of a system, developer or tool message: a string or text parts, as text blocks.
fn chat_text_blocks(content: Value, path: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![text_block(s)]),
        Value::Array(parts) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                let path = format!("{path}[{j}]");
                let mut part = object(part, &path)?;
                let kind = string(required(&mut part, "type", &path)?, &format!("{path}.type"))?;
                if kind != "text" {
                    return Err(refuse_type(&path, &kind, Api::Messages));
                }
                let text = string(required(&mut part, "text", &path)?, &format!("{path}.text"))?;
                refuse_rest(part, &path, Api::Messages)?;
                if !text.is_empty() {
                    blocks.push(text_block(text));
                }
            }
            Ok(blocks)
        }
        _ => Err(TranslateError::invalid(format!(
            "{path} must be a string or an array"
        ))),
    }
}

/// A user message's content: a string stays a string, parts become blocks.
fn chat_user_content(content: Value, path: &str) -> Result<Value, TranslateError> {
    const TO: Api = Api::Messages;
    let no_content = || TranslateError::invalid(format!("{path} has no content"));
    let parts = match content {
        Value::String(s) if s.is_empty() => return Err(no_content()),
        Value::String(s) => return Ok(Value::String(s)),
        Value::Array(parts) => parts,
        _ => {
            return Err(TranslateError::invalid(format!(
                "{path}.content must be a string or an array"
            )));
        }
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let path = format!("{path}.content[{j}]");
        let mut part = object(part, &path)?;
        let kind = string(required(&mut part, "type", &path)?, &format!("{path}.type"))?;
        match kind.as_str() {
            "text" => {
                let text = string(required(&mut part, "text", &path)?, &format!("{path}.text"))?;
                if !text.is_empty() {
                    blocks.push(text_block(text));
                }
            }
            "image_url" => {
                let inner = format!("{path}.image_url");
                let mut image = object(required(&mut part, "image_url", &path)?, &inner)?;
                let url = string(
                    required(&mut image, "url", &inner)?,
                    &format!("{inner}.url"),
                )?;
                if let Some(detail) = take(&mut image, "detail") {
                    if detail.as_str() != Some("auto") {
                        return Err(TranslateError::untranslatable(
                            format!("{inner}.detail"),
                            TO,
                        ));
                    }
                }
                refuse_rest(image, &inner, TO)?;
                let source = image_source(url, &inner)?;
                blocks.push(json!({"type": "image", "source": source}));
            }
            other => return Err(refuse_type(&path, other, TO)),
        }
        refuse_rest(part, &path, TO)?;
    }
    if blocks.is_empty() {
        return Err(no_content());
    }
    Ok(Value::Array(blocks))
}

/// An OpenAI image URL as an Anthropic image source: a base64 data URL or an http(s) URL.
fn image_source(url: String, path: &str) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        return match rest.split_once(";base64,") {
            Some((media, data)) => Ok(json!({
                "type": "base64",
                "media_type": media,
                "data": data,
            })),
            None => Err(TranslateError::untranslatable(
                format!("{path}.url (a data URL not in base64)"),
                Api::Messages,
            )),
        };
    }
    let starts = |prefix: &str| {
        url.get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    if starts("https://") || starts("http://") {
        Ok(json!({"type": "url", "url": url}))
    } else {
        Err(TranslateError::invalid(format!(
            "{path}.url must be an http(s) URL or a base64 data URL"
        )))
    }
}

/// An assistant message's content and tool calls as Anthropic blocks.
fn chat_assistant_content(message: &mut Object, path: &str) -> Result<Vec<Value>, TranslateError> {
    const TO: Api = Api::Messages;
    let mut blocks = Vec::new();
    match take(message, "content") {
        Some(Value::String(s)) if !s.is_empty() => blocks.push(text_block(s)),
        None | Some(Value::String(_)) => {}
        Some(Value::Array(parts)) => {
            for (j, part) in parts.into_iter().enumerate() {
                let path = format!("{path}.content[{j}]");
                let mut part = object(part, &path)?;
                let kind = string(required(&mut part, "type", &path)?, &format!("{path}.type"))?;
                if kind != "text" {
                    return Err(refuse_type(&path, &kind, TO));
                }
                let text = string(required(&mut part, "text", &path)?, &format!("{path}.text"))?;
                refuse_rest(part, &path, TO)?;
                if !text.is_empty() {
                    blocks.push(text_block(text));
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(format!(
                "{path}.content must be a string, an array or null"
            )));
        }
    }
    if take(message, "refusal").is_some() {
        return Err(TranslateError::untranslatable(
            format!("{path}.refusal"),
            TO,
        ));
    }
    if let Some(annotations) = take(message, "annotations") {
        if annotations.as_array().is_none_or(|a| !a.is_empty()) {
            return Err(TranslateError::untranslatable(
                format!("{path}.annotations"),
                TO,
            ));
        }
    }
    if let Some(calls) = take(message, "tool_calls") {
        let calls_path = format!("{path}.tool_calls");
        for (k, call) in array(calls, &calls_path)?.into_iter().enumerate() {
            let path = format!("{calls_path}[{k}]");
            let mut call = object(call, &path)?;
            let id = string(required(&mut call, "id", &path)?, &format!("{path}.id"))?;
            if let Some(kind) = take(&mut call, "type") {
                if kind.as_str() != Some("function") {
                    return Err(TranslateError::untranslatable(format!("{path}.type"), TO));
                }
            }
            let function_path = format!("{path}.function");
            let mut function = object(required(&mut call, "function", &path)?, &function_path)?;
            let name = string(
                required(&mut function, "name", &function_path)?,
                &format!("{function_path}.name"),
            )?;
            let what = format!("{function_path}.arguments");
            let args = string(required(&mut function, "arguments", &function_path)?, &what)?;
            let input = arguments(&args, &what)?;
            refuse_rest(function, &function_path, TO)?;
            refuse_rest(call, &path, TO)?;
            blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
    }
    if blocks.is_empty() {
        return Err(TranslateError::invalid(format!("{path} has no content")));
    }
    Ok(blocks)
}

/// OpenAI function tools as Anthropic tools.
fn chat_tools(tools: Vec<Value>) -> Result<Vec<Value>, TranslateError> {
    const TO: Api = Api::Messages;
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.into_iter().enumerate() {
        let path = format!("tools[{i}]");
        let mut tool = object(tool, &path)?;
        let kind = string(required(&mut tool, "type", &path)?, &format!("{path}.type"))?;
        if kind != "function" {
            return Err(TranslateError::untranslatable(format!("{path}.type"), TO));
        }
        let function_path = format!("{path}.function");
        let mut function = object(required(&mut tool, "function", &path)?, &function_path)?;
        let name = string(
            required(&mut function, "name", &function_path)?,
            &format!("{function_path}.name"),
        )?;
        let mut translated = Object::new();
        translated.insert("name".into(), Value::String(name));
        if let Some(description) = take(&mut function, "description") {
            let description = string(description, &format!("{function_path}.description"))?;
            translated.insert("description".into(), Value::String(description));
        }
        let schema = match take(&mut function, "parameters") {
            Some(parameters) => {
                Value::Object(object(parameters, &format!("{function_path}.parameters"))?)
            }
            None => json!({"type": "object", "properties": {}}),
        };
        translated.insert("input_schema".into(), schema);
        if let Some(strict) = take(&mut function, "strict") {
            if boolean(&strict, &format!("{function_path}.strict"))? {
                return Err(TranslateError::untranslatable(
                    format!("{function_path}.strict"),
                    TO,
                ));
            }
        }
        refuse_rest(function, &function_path, TO)?;
        refuse_rest(tool, &path, TO)?;
        out.push(Value::Object(translated));
    }
    Ok(out)
}

// ===== Anthropic Messages to OpenAI Chat Completions =====

/// Translates an Anthropic Messages request into an OpenAI Chat Completions one.
fn messages_to_chat(mut req: Object) -> Result<Object, TranslateError> {
    const TO: Api = Api::Chat;
    let mut out = Object::new();

    let model = string(required(&mut req, "model", "")?, "model")?;
    out.insert("model".into(), Value::String(model));

    let mut messages = Vec::new();
    if let Some(system) = take(&mut req, "system") {
        let text = match system {
            Value::String(s) => s,
            Value::Array(blocks) => anthropic_texts(blocks, "system", TO)?.join("\n\n"),
            _ => {
                return Err(TranslateError::invalid(
                    "system must be a string or an array",
                ));
            }
        };
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let input = array(required(&mut req, "messages", "")?, "messages")?;
    if input.is_empty() {
        return Err(TranslateError::invalid("messages must not be empty"));
    }
    let last = input.len() - 1;
    for (i, message) in input.into_iter().enumerate() {
        let path = format!("messages[{i}]");
        let mut message = object(message, &path)?;
        let role = string(
            required(&mut message, "role", &path)?,
            &format!("{path}.role"),
        )?;
        let content = required(&mut message, "content", &path)?;
        refuse_rest(message, &path, TO)?;
        match role.as_str() {
            "user" => anthropic_user(content, &path, &mut messages)?,
            "assistant" => {
                if i == last {
                    return Err(TranslateError::untranslatable(
                        format!("{path} (a final assistant message, a prefill)"),
                        TO,
                    ));
                }
                messages.push(anthropic_assistant(content, &path)?);
            }
            _ => {
                return Err(TranslateError::invalid(format!(
                    "{path}.role must be user or assistant"
                )));
            }
        }
    }
    out.insert("messages".into(), Value::Array(messages));

    let max = positive(&required(&mut req, "max_tokens", "")?, "max_tokens")?;
    out.insert("max_tokens".into(), max.into());

    if let Some(stops) = take(&mut req, "stop_sequences") {
        let mut out_stops = Vec::new();
        for (i, stop) in array(stops, "stop_sequences")?.into_iter().enumerate() {
            out_stops.push(Value::String(string(
                stop,
                &format!("stop_sequences[{i}]"),
            )?));
        }
        if !out_stops.is_empty() {
            out.insert("stop".into(), Value::Array(out_stops));
        }
    }
    if let Some(t) = take(&mut req, "temperature") {
        out.insert("temperature".into(), number(t, "temperature")?);
    }
    if let Some(p) = take(&mut req, "top_p") {
        out.insert("top_p".into(), number(p, "top_p")?);
    }
    if let Some(stream) = take(&mut req, "stream") {
        if boolean(&stream, "stream")? {
            out.insert("stream".into(), Value::Bool(true));
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    if let Some(metadata) = take(&mut req, "metadata") {
        let mut metadata = object(metadata, "metadata")?;
        if let Some(user) = take(&mut metadata, "user_id") {
            out.insert(
                "user".into(),
                Value::String(string(user, "metadata.user_id")?),
            );
        }
        refuse_rest(metadata, "metadata", TO)?;
    }
    if let Some(tools) = take(&mut req, "tools") {
        let tools = anthropic_tools(array(tools, "tools")?)?;
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = take(&mut req, "tool_choice") {
        let mut choice = object(choice, "tool_choice")?;
        let kind = string(
            required(&mut choice, "type", "tool_choice")?,
            "tool_choice.type",
        )?;
        let translated = match kind.as_str() {
            "auto" => json!("auto"),
            "any" => json!("required"),
            "none" => json!("none"),
            "tool" => {
                let name = string(
                    required(&mut choice, "name", "tool_choice")?,
                    "tool_choice.name",
                )?;
                json!({"type": "function", "function": {"name": name}})
            }
            other => return Err(refuse_type("tool_choice", other, TO)),
        };
        if let Some(disable) = take(&mut choice, "disable_parallel_tool_use") {
            if boolean(&disable, "tool_choice.disable_parallel_tool_use")? {
                out.insert("parallel_tool_calls".into(), Value::Bool(false));
            }
        }
        refuse_rest(choice, "tool_choice", TO)?;
        out.insert("tool_choice".into(), translated);
    }
    if let Some(thinking) = take(&mut req, "thinking") {
        if thinking.get("type").and_then(Value::as_str) != Some("disabled") {
            return Err(TranslateError::untranslatable("thinking", TO));
        }
        let mut thinking = object(thinking, "thinking")?;
        thinking.remove("type");
        refuse_rest(thinking, "thinking", TO)?;
    }

    // `top_k`, `service_tier`, `container`, `mcp_servers` and any member not known are left:
    // all refused.
    refuse_rest(req, "", TO)?;
    Ok(out)
}

/// The texts of Anthropic text blocks (system, tool results); any other block is refused.
fn anthropic_texts(blocks: Vec<Value>, path: &str, to: Api) -> Result<Vec<String>, TranslateError> {
    let mut texts = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.into_iter().enumerate() {
        let path = format!("{path}[{j}]");
        let mut block = object(block, &path)?;
        let kind = string(
            required(&mut block, "type", &path)?,
            &format!("{path}.type"),
        )?;
        if kind != "text" {
            return Err(refuse_type(&path, &kind, to));
        }
        texts.push(anthropic_text(block, &path, to)?);
    }
    Ok(texts)
}

/// A text block's text (its `type` already taken); `cache_control` is dropped.
fn anthropic_text(mut block: Object, path: &str, to: Api) -> Result<String, TranslateError> {
    let text = string(required(&mut block, "text", path)?, &format!("{path}.text"))?;
    block.remove("cache_control");
    if let Some(citations) = take(&mut block, "citations") {
        if citations.as_array().is_none_or(|a| !a.is_empty()) {
            return Err(TranslateError::untranslatable(
                format!("{path}.citations"),
                to,
            ));
        }
    }
    refuse_rest(block, path, to)?;
    Ok(text)
}

/// An Anthropic user message as OpenAI messages: a `tool` message per tool result, then the
/// rest of the content as one user message.
fn anthropic_user(content: Value, path: &str, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    const TO: Api = Api::Chat;
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({"role": "user", "content": s}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => {
            return Err(TranslateError::invalid(format!(
                "{path}.content must be a string or an array"
            )));
        }
    };
    if blocks.is_empty() {
        return Err(TranslateError::invalid(format!("{path} has no content")));
    }
    let mut parts = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        let path = format!("{path}.content[{j}]");
        let mut block = object(block, &path)?;
        let kind = string(
            required(&mut block, "type", &path)?,
            &format!("{path}.type"),
        )?;
        match kind.as_str() {
            "text" => {
                let text = anthropic_text(block, &path, TO)?;
                parts.push(json!({"type": "text", "text": text}));
            }
            "image" => {
                let source_path = format!("{path}.source");
                let mut source = object(required(&mut block, "source", &path)?, &source_path)?;
                let source_kind = string(
                    required(&mut source, "type", &source_path)?,
                    &format!("{source_path}.type"),
                )?;
                let url = match source_kind.as_str() {
                    "base64" => {
                        let media = string(
                            required(&mut source, "media_type", &source_path)?,
                            &format!("{source_path}.media_type"),
                        )?;
                        let data = string(
                            required(&mut source, "data", &source_path)?,
                            &format!("{source_path}.data"),
                        )?;
                        format!("data:{media};base64,{data}")
                    }
                    "url" => string(
                        required(&mut source, "url", &source_path)?,
                        &format!("{source_path}.url"),
                    )?,
                    other => return Err(refuse_type(&source_path, other, TO)),
                };
                refuse_rest(source, &source_path, TO)?;
                block.remove("cache_control");
                refuse_rest(block, &path, TO)?;
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            "tool_result" => {
                let id = string(
                    required(&mut block, "tool_use_id", &path)?,
                    &format!("{path}.tool_use_id"),
                )?;
                let text = match take(&mut block, "content") {
                    None => String::new(),
                    Some(Value::String(s)) => s,
                    Some(Value::Array(blocks)) => {
                        anthropic_texts(blocks, &format!("{path}.content"), TO)?.join("\n\n")
                    }
                    Some(_) => {
                        return Err(TranslateError::invalid(format!(
                            "{path}.content must be a string or an array"
                        )));
                    }
                };
                if let Some(is_error) = take(&mut block, "is_error") {
                    boolean(&is_error, &format!("{path}.is_error"))?;
                }
                block.remove("cache_control");
                refuse_rest(block, &path, TO)?;
                out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            other => return Err(refuse_type(&path, other, TO)),
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

/// An Anthropic assistant message as an OpenAI one: joined text and tool calls.
fn anthropic_assistant(content: Value, path: &str) -> Result<Value, TranslateError> {
    const TO: Api = Api::Chat;
    let blocks = match content {
        Value::String(s) => return Ok(json!({"role": "assistant", "content": s})),
        Value::Array(blocks) => blocks,
        _ => {
            return Err(TranslateError::invalid(format!(
                "{path}.content must be a string or an array"
            )));
        }
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        let path = format!("{path}.content[{j}]");
        let mut block = object(block, &path)?;
        let kind = string(
            required(&mut block, "type", &path)?,
            &format!("{path}.type"),
        )?;
        match kind.as_str() {
            "text" => text.push_str(&anthropic_text(block, &path, TO)?),
            "tool_use" => {
                let id = string(required(&mut block, "id", &path)?, &format!("{path}.id"))?;
                let name = string(
                    required(&mut block, "name", &path)?,
                    &format!("{path}.name"),
                )?;
                let input = block
                    .remove("input")
                    .unwrap_or_else(|| Value::Object(Object::new()));
                block.remove("cache_control");
                refuse_rest(block, &path, TO)?;
                let arguments = serde_json::to_string(&input).map_err(|_| {
                    TranslateError::invalid(format!("{path}.input could not be serialized"))
                })?;
                calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }));
            }
            other => return Err(refuse_type(&path, other, TO)),
        }
    }
    if text.is_empty() && calls.is_empty() {
        return Err(TranslateError::invalid(format!("{path} has no content")));
    }
    let mut message = Object::new();
    message.insert("role".into(), json!("assistant"));
    let content = if text.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Value::Object(message))
}

/// Anthropic client tools as OpenAI function tools; server tools (with a `type`) are refused.
fn anthropic_tools(tools: Vec<Value>) -> Result<Vec<Value>, TranslateError> {
    const TO: Api = Api::Chat;
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.into_iter().enumerate() {
        let path = format!("tools[{i}]");
        let mut tool = object(tool, &path)?;
        if let Some(kind) = take(&mut tool, "type") {
            if kind.as_str() != Some("custom") {
                return Err(TranslateError::untranslatable(format!("{path}.type"), TO));
            }
        }
        let name = string(required(&mut tool, "name", &path)?, &format!("{path}.name"))?;
        let mut function = Object::new();
        function.insert("name".into(), Value::String(name));
        if let Some(description) = take(&mut tool, "description") {
            let description = string(description, &format!("{path}.description"))?;
            function.insert("description".into(), Value::String(description));
        }
        let schema = object(
            required(&mut tool, "input_schema", &path)?,
            &format!("{path}.input_schema"),
        )?;
        function.insert("parameters".into(), Value::Object(schema));
        tool.remove("cache_control");
        refuse_rest(tool, &path, TO)?;
        out.push(json!({"type": "function", "function": function}));
    }
    Ok(out)
}
