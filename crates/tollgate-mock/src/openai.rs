//! OpenAI shapes: error bodies, `x-ratelimit-*` headers, chat completions and their SSE chunks.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::answer::Answer;
use crate::quota::{Dim, Rejection, Snapshot};

/// `{"error":{"message","type","param","code"}}`.
pub(crate) fn error(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Bytes {
    let body = json!({
        "error": { "message": message, "type": kind, "param": param, "code": code }
    });
    Bytes::from(body.to_string())
}

/// The body of an injected error or outage status.
pub(crate) fn status_error(status: u16) -> Bytes {
    let (message, kind, code) = match status {
        400 => ("Invalid request.", "invalid_request_error", None),
        401 => (
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        403 => (
            "You are not allowed to access this resource.",
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
        ),
        404 => (
            "The model does not exist or you do not have access to it.",
            "invalid_request_error",
            Some("model_not_found"),
        ),
        408 => ("Request timed out.", "timeout", None),
        409 => ("Conflict.", "invalid_request_error", None),
        429 => (
            "Rate limit reached for requests. Please try again in 1s.",
            "requests",
            Some("rate_limit_exceeded"),
        ),
        500 => (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        502 => ("Bad gateway.", "server_error", None),
        503 => (
            "The server is overloaded or not ready yet.",
            "server_error",
            Some("server_is_overloaded"),
        ),
        504 => ("Gateway timeout.", "server_error", None),
        s if s >= 500 => ("The server had an error.", "server_error", None),
        _ => ("The request failed.", "invalid_request_error", None),
    };
    error(message, kind, None, code)
}

/// The 429 body for a refused admission.
pub(crate) fn rate_limit_error(model: &str, r: &Rejection) -> Bytes {
    let (what, legacy_type) = match r.dim {
        Dim::Requests => ("requests per min (RPM)", "requests"),
        Dim::Tokens => ("tokens per min (TPM)", "tokens"),
        Dim::InputTokens => ("input tokens per min (ITPM)", "tokens"),
        Dim::OutputTokens => ("output tokens per min (OTPM)", "tokens"),
        Dim::TokensPerDay => ("tokens per day (TPD)", "tokens"),
        Dim::Concurrency => ("concurrent requests", "requests"),
    };
    let message = match r.wait {
        Some(wait) => format!(
            "Rate limit reached for {model} in organization org-mock on {what}: Limit {}, Used {}, Requested {}. Please try again in {}. Visit https://platform.openai.com/account/rate-limits to learn more.",
            r.limit,
            r.used,
            r.requested,
            go_duration(wait)
        ),
        None => format!(
            "Request too large for {model} in organization org-mock on {what}: Limit {}, Requested {}. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.",
            r.limit, r.requested
        ),
    };
    error(&message, legacy_type, None, Some("rate_limit_exceeded"))
}

/// 429 `insufficient_quota`.
pub(crate) fn insufficient_quota() -> Bytes {
    error(
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        None,
        Some("insufficient_quota"),
    )
}

/// 400 `context_length_exceeded`. `max_tokens` is `None` when the request did not set it.
pub(crate) fn context_length_exceeded(window: u64, prompt: u64, max_tokens: Option<u64>) -> Bytes {
    let message = match max_tokens {
        Some(completion) => format!(
            "This model's maximum context length is {window} tokens. However, you requested {} tokens ({prompt} in the messages, {completion} in the completion). Please reduce the length of the messages or completion.",
            prompt.saturating_add(completion)
        ),
        None => format!(
            "This model's maximum context length is {window} tokens. However, your messages resulted in {prompt} tokens. Please reduce the length of the messages."
        ),
    };
    error(
        &message,
        "invalid_request_error",
        Some("messages"),
        Some("context_length_exceeded"),
    )
}

/// 401 for a missing or wrong key.
pub(crate) fn unauthorized(presented: Option<&str>) -> Bytes {
    match presented {
        None => error(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            None,
        ),
        Some(key) => error(
            &format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                redact(key)
            ),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
    }
}

fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len().max(1));
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}***{tail}")
}

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the configured dimensions.
pub(crate) fn rate_limit_headers(snap: &Snapshot, headers: &mut HeaderMap) {
    for (name, dim) in [("requests", snap.requests), ("tokens", snap.tokens)] {
        let Some(d) = dim else { continue };
        insert(
            headers,
            &format!("x-ratelimit-limit-{name}"),
            d.limit.to_string(),
        );
        insert(
            headers,
            &format!("x-ratelimit-remaining-{name}"),
            d.remaining.to_string(),
        );
        insert(
            headers,
            &format!("x-ratelimit-reset-{name}"),
            go_duration(d.reset),
        );
    }
}

pub(crate) fn insert(headers: &mut HeaderMap, name: &str, value: String) {
    if let (Ok(name), Ok(value)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(&value),
    ) {
        headers.insert(name, value);
    }
}

/// Go's `time.Duration.String()` after rounding up to whole milliseconds (what OpenAI sends):
/// `0s`, `120ms`, `8.64s`, `1m12s`, `6m0s`, `1h0m0s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_nanos().div_ceil(1_000_000);
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, frac) = (rest / 1000, rest % 1000);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}");
    if frac > 0 {
        let frac = format!("{frac:03}");
        let _ = write!(out, ".{}", frac.trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// A `chat.completion` object.
pub(crate) fn completion(a: &Answer) -> Bytes {
    let body = json!({
        "id": format!("chatcmpl-{}", a.id),
        "object": "chat.completion",
        "created": a.created,
        "model": a.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": a.text(), "refusal": null },
            "logprobs": null,
            "finish_reason": if a.truncated { "length" } else { "stop" },
        }],
        "usage": usage(a),
        "system_fingerprint": "fp_mock",
    });
    Bytes::from(body.to_string())
}

fn usage(a: &Answer) -> Value {
    json!({
        "prompt_tokens": a.input,
        "completion_tokens": a.output,
        "total_tokens": a.input + a.output,
    })
}

/// SSE frames: a role chunk, content chunks, a finish chunk, a usage chunk when asked, `[DONE]`.
pub(crate) fn stream(a: &Answer, include_usage: bool) -> Vec<Bytes> {
    let chunk = |delta: Value, finish: Value, usage_field: Option<Value>| {
        let mut c = json!({
            "id": format!("chatcmpl-{}", a.id),
            "object": "chat.completion.chunk",
            "created": a.created,
            "model": a.model,
            "system_fingerprint": "fp_mock",
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
        });
        if include_usage {
            c["usage"] = usage_field.unwrap_or(Value::Null);
        }
        Bytes::from(format!("data: {c}\n\n"))
    };
    let mut frames = vec![chunk(
        json!({ "role": "assistant", "content": "", "refusal": null }),
        Value::Null,
        None,
    )];
    for piece in a.pieces() {
        frames.push(chunk(json!({ "content": piece }), Value::Null, None));
    }
    frames.push(chunk(
        json!({}),
        json!(if a.truncated { "length" } else { "stop" }),
        None,
    ));
    if include_usage {
        let c = json!({
            "id": format!("chatcmpl-{}", a.id),
            "object": "chat.completion.chunk",
            "created": a.created,
            "model": a.model,
            "system_fingerprint": "fp_mock",
            "choices": [],
            "usage": usage(a),
        });
        frames.push(Bytes::from(format!("data: {c}\n\n")));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

/// The error event of a stream cut short after a 200 (PROVIDERS.md §6): the 500 body as a
/// `data:` line, `{"error":{"message","type":"server_error","param":null,"code":null}}`.
pub(crate) fn stream_error() -> Bytes {
    let body = status_error(500);
    let mut frame = Vec::with_capacity(body.len() + 8);
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(&body);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(1)), "1ms");
        assert_eq!(go_duration(ms(120)), "120ms");
        assert_eq!(go_duration(ms(8640)), "8.64s");
        assert_eq!(go_duration(ms(1146)), "1.146s");
        assert_eq!(go_duration(ms(1200)), "1.2s");
        assert_eq!(go_duration(ms(20_000)), "20s");
        assert_eq!(go_duration(ms(72_000)), "1m12s");
        assert_eq!(go_duration(ms(360_000)), "6m0s");
        assert_eq!(go_duration(ms(3_600_000)), "1h0m0s");
        assert_eq!(go_duration(ms(3_723_500)), "1h2m3.5s");
    }

    #[test]
    fn redacts_keys() {
        assert_eq!(redact("sk-wrong-key-1234"), "sk-***1234");
        assert_eq!(redact("short"), "*****");
    }
}
