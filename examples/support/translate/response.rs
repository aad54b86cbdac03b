//! Translation of successful, non-streamed answers between OpenAI's Chat Completions and
//! Anthropic's Messages.
//!
//! An answer is translated only after its request was, so it holds nothing the caller could not
//! have asked for; unlike requests, answers may leave out what has no counterpart. Anthropic
//! blocks other than `text` and `tool_use` (`thinking`, `redacted_thinking`) are left out of the
//! OpenAI message: the caller did not ask for reasoning it cannot receive.
//!
//! Usage: OpenAI's `prompt_tokens` counts cached tokens, Anthropic's `input_tokens` does not, so
//! Anthropic's cache reads and writes are added to `prompt_tokens` (cache reads also reported as
//! `cached_tokens`), and OpenAI's `cached_tokens` are taken out of `input_tokens` and reported as
//! `cache_read_input_tokens`. A missing usage counts zero.
//!
//! Stop reasons: Anthropic's `end_turn` and `stop_sequence` are OpenAI's `stop`, `max_tokens` is
//! `length`, `tool_use` is `tool_calls`, `refusal` is `content_filter`; `pause_turn`, an unknown
//! reason or none is `stop`. Back, `stop` is `end_turn` (OpenAI does not say which stop sequence
//! matched, so `stop_sequence` is `null`), `length` is `max_tokens`, `tool_calls` and
//! `function_call` are `tool_use`, `content_filter` is `refusal`, anything else `end_turn`.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};

use super::request::{
    Object, arguments, array, object, parse_object, required, string, take, to_bytes,
};
use super::{Api, TranslateError};

/// Translates a successful, non-streamed answer body of API `from` to API `to` (same: unchanged).
pub(crate) fn response(body: &[u8], from: Api, to: Api) -> Result<Bytes, TranslateError> {
    if from == to {
        return Ok(Bytes::copy_from_slice(body));
    }
    let object = parse_object(body)?;
    let translated = match from {
        Api::Messages => messages_to_chat(object)?,
        Api::Chat => chat_to_messages(object)?,
    };
    to_bytes(translated)
}

/// A token count: absent or `null` is zero, anything but a non-negative integer is invalid.
fn count(object: &Object, key: &str, path: &str) -> Result<u64, TranslateError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value.as_u64().ok_or_else(|| {
            TranslateError::invalid(format!("{path}.{key} must be a non-negative integer"))
        }),
    }
}

/// The current time in Unix seconds, for `created`.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ===== Anthropic Messages to OpenAI Chat Completions =====

/// Translates an Anthropic message into an OpenAI `chat.completion`.
fn messages_to_chat(mut body: Object) -> Result<Object, TranslateError> {
    let id = string(required(&mut body, "id", "")?, "id")?;
    let model = string(required(&mut body, "model", "")?, "model")?;
    let blocks = match take(&mut body, "content") {
        Some(content) => array(content, "content")?,
        None => Vec::new(),
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        let path = format!("content[{j}]");
        let mut block = object(block, &path)?;
        let kind = string(
            required(&mut block, "type", &path)?,
            &format!("{path}.type"),
        )?;
        match kind.as_str() {
            "text" => {
                text.push_str(&string(
                    required(&mut block, "text", &path)?,
                    &format!("{path}.text"),
                )?);
            }
            "tool_use" => {
                let call_id = string(required(&mut block, "id", &path)?, &format!("{path}.id"))?;
                let name = string(
                    required(&mut block, "name", &path)?,
                    &format!("{path}.name"),
                )?;
                let input = block
                    .remove("input")
                    .unwrap_or_else(|| Value::Object(Object::new()));
                let arguments = serde_json::to_string(&input).map_err(|_| {
                    TranslateError::invalid(format!("{path}.input could not be serialized"))
                })?;
                calls.push(json!({
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }));
            }
            _ => {}
        }
    }
    let finish_reason = match take(&mut body, "stop_reason") {
        None => "stop",
        Some(Value::String(reason)) => match reason.as_str() {
            "max_tokens" => "length",
            "tool_use" => "tool_calls",
            "refusal" => "content_filter",
            _ => "stop",
        },
        Some(_) => return Err(TranslateError::invalid("stop_reason must be a string")),
    };
    let usage = match take(&mut body, "usage") {
        Some(usage) => object(usage, "usage")?,
        None => Object::new(),
    };
    let input = count(&usage, "input_tokens", "usage")?;
    let output = count(&usage, "output_tokens", "usage")?;
    let cache_read = count(&usage, "cache_read_input_tokens", "usage")?;
    let cache_creation = count(&usage, "cache_creation_input_tokens", "usage")?;
    let prompt = input
        .saturating_add(cache_read)
        .saturating_add(cache_creation);

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
    message.insert("refusal".into(), Value::Null);

    let mut out = Object::new();
    out.insert("id".into(), Value::String(id));
    out.insert("object".into(), json!("chat.completion"));
    out.insert("created".into(), now().into());
    out.insert("model".into(), Value::String(model));
    out.insert(
        "choices".into(),
        json!([{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason,
        }]),
    );
    out.insert(
        "usage".into(),
        json!({
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt.saturating_add(output),
            "prompt_tokens_details": {"cached_tokens": cache_read},
        }),
    );
    Ok(out)
}

// ===== OpenAI Chat Completions to Anthropic Messages =====

/// Translates an OpenAI `chat.completion` into an Anthropic message, from its first choice.
fn chat_to_messages(mut body: Object) -> Result<Object, TranslateError> {
    let id = string(required(&mut body, "id", "")?, "id")?;
    let model = string(required(&mut body, "model", "")?, "model")?;
    let choice = array(required(&mut body, "choices", "")?, "choices")?
        .into_iter()
        .next()
        .ok_or_else(|| TranslateError::invalid("choices must not be empty"))?;
    let mut choice = object(choice, "choices[0]")?;
    let mut message = object(
        required(&mut choice, "message", "choices[0]")?,
        "choices[0].message",
    )?;
    let path = "choices[0].message";

    let mut content = Vec::new();
    match take(&mut message, "content") {
        Some(Value::String(text)) if !text.is_empty() => {
            content.push(json!({"type": "text", "text": text}));
        }
        None | Some(Value::String(_)) => {}
        Some(_) => {
            return Err(TranslateError::invalid(format!(
                "{path}.content must be a string or null"
            )));
        }
    }
    let refused = match take(&mut message, "refusal") {
        None => false,
        Some(Value::String(text)) => {
            content.push(json!({"type": "text", "text": text}));
            true
        }
        Some(_) => {
            return Err(TranslateError::invalid(format!(
                "{path}.refusal must be a string or null"
            )));
        }
    };
    if let Some(calls) = take(&mut message, "tool_calls") {
        let calls_path = format!("{path}.tool_calls");
        for (k, call) in array(calls, &calls_path)?.into_iter().enumerate() {
            let call_path = format!("{calls_path}[{k}]");
            let mut call = object(call, &call_path)?;
            let call_id = string(
                required(&mut call, "id", &call_path)?,
                &format!("{call_path}.id"),
            )?;
            let function_path = format!("{call_path}.function");
            let mut function =
                object(required(&mut call, "function", &call_path)?, &function_path)?;
            let name = string(
                required(&mut function, "name", &function_path)?,
                &format!("{function_path}.name"),
            )?;
            let what = format!("{function_path}.arguments");
            let text = match take(&mut function, "arguments") {
                Some(args) => string(args, &what)?,
                None => String::new(),
            };
            let input = arguments(&text, &what)?;
            content.push(json!({"type": "tool_use", "id": call_id, "name": name, "input": input}));
        }
    }

    let stop_reason = if refused {
        "refusal"
    } else {
        match take(&mut choice, "finish_reason") {
            None => "end_turn",
            Some(Value::String(reason)) => match reason.as_str() {
                "length" => "max_tokens",
                "tool_calls" | "function_call" => "tool_use",
                "content_filter" => "refusal",
                _ => "end_turn",
            },
            Some(_) => {
                return Err(TranslateError::invalid(
                    "choices[0].finish_reason must be a string",
                ));
            }
        }
    };

    let usage = match take(&mut body, "usage") {
        Some(usage) => object(usage, "usage")?,
        None => Object::new(),
    };
    let prompt = count(&usage, "prompt_tokens", "usage")?;
    let completion = count(&usage, "completion_tokens", "usage")?;
    let cached = match usage.get("prompt_tokens_details") {
        None | Some(Value::Null) => 0,
        Some(Value::Object(details)) => {
            count(details, "cached_tokens", "usage.prompt_tokens_details")?
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "usage.prompt_tokens_details must be an object",
            ));
        }
    };

    let mut out = Object::new();
    out.insert("id".into(), Value::String(id));
    out.insert("type".into(), json!("message"));
    out.insert("role".into(), json!("assistant"));
    out.insert("model".into(), Value::String(model));
    out.insert("content".into(), Value::Array(content));
    out.insert("stop_reason".into(), json!(stop_reason));
    out.insert("stop_sequence".into(), Value::Null);
    out.insert(
        "usage".into(),
        json!({
            "input_tokens": prompt.saturating_sub(cached),
            "output_tokens": completion,
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": 0,
        }),
    );
    Ok(out)
}
