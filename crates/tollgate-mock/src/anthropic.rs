//! Anthropic shapes: error bodies, `anthropic-ratelimit-*` headers, messages and their SSE events.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;
use serde_json::json;

use crate::answer::Answer;
use crate::openai::insert;
use crate::quota::{Dim, DimState, Rejection, Snapshot};

/// `{"type":"error","error":{"type","message"},"request_id"}`.
pub(crate) fn error(kind: &str, message: &str, request_id: &str) -> Bytes {
    let body = json!({
        "type": "error",
        "error": { "type": kind, "message": message },
        "request_id": request_id,
    });
    Bytes::from(body.to_string())
}

/// The body of an injected error or outage status.
pub(crate) fn status_error(status: u16, request_id: &str) -> Bytes {
    let (kind, message) = match status {
        400 => ("invalid_request_error", "Invalid request."),
        401 => ("authentication_error", "invalid x-api-key"),
        402 => ("billing_error", "Your account has a billing issue."),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "This request would exceed your organization's rate limit. Please try again later.",
        ),
        500 => ("api_error", "Internal server error"),
        504 => ("timeout_error", "Request timeout"),
        529 => ("overloaded_error", "Overloaded"),
        s if s >= 500 => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "The request failed."),
    };
    error(kind, message, request_id)
}

/// The 429 body for a refused admission.
pub(crate) fn rate_limit_error(r: &Rejection, request_id: &str) -> Bytes {
    let what = match r.dim {
        Dim::Requests => "requests per minute",
        Dim::Tokens => "tokens per minute",
        Dim::InputTokens => "input tokens per minute",
        Dim::OutputTokens => "output tokens per minute",
        Dim::TokensPerDay => "tokens per day",
        Dim::Concurrency => {
            return error(
                "rate_limit_error",
                "Number of concurrent connections has exceeded your rate limit. Please try again later or contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.",
                request_id,
            );
        }
    };
    let message = format!(
        "This request would exceed the rate limit for your organization (org-mock) of {} {what}. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.",
        r.limit
    );
    error("rate_limit_error", &message, request_id)
}

/// The 400 for a spent prepaid balance (sent with `x-should-retry: false`).
pub(crate) fn credit_exhausted(request_id: &str) -> Bytes {
    error(
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
        request_id,
    )
}

/// The context-window 400: "prompt is too long" when the prompt alone is over the window,
/// otherwise "input length and `max_tokens` exceed context limit".
pub(crate) fn context_too_long(
    window: u64,
    prompt: u64,
    max_tokens: u64,
    request_id: &str,
) -> Bytes {
    let message = if prompt > window {
        format!("prompt is too long: {prompt} tokens > {window} maximum")
    } else {
        format!(
            "input length and `max_tokens` exceed context limit: {prompt} + {max_tokens} > {window}, decrease input length or `max_tokens` and try again"
        )
    };
    error("invalid_request_error", &message, request_id)
}

/// `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`.
///
/// Token `remaining` values are rounded down to a multiple of 1000 when the limit is at least
/// 1000, as Anthropic rounds them. `tokens-*` is the combined TPM bucket when configured,
/// otherwise the more restrictive of ITPM and OTPM.
pub(crate) fn rate_limit_headers(snap: &Snapshot, now: SystemTime, headers: &mut HeaderMap) {
    let tokens = snap.tokens.or_else(|| match (snap.input, snap.output) {
        (Some(i), Some(o)) => Some(if o.remaining < i.remaining { o } else { i }),
        (i, o) => i.or(o),
    });
    for (name, dim, round) in [
        ("requests", snap.requests, false),
        ("tokens", tokens, true),
        ("input-tokens", snap.input, true),
        ("output-tokens", snap.output, true),
    ] {
        let Some(DimState {
            limit,
            remaining,
            reset,
        }) = dim
        else {
            continue;
        };
        let remaining = if round && limit >= 1000 {
            remaining / 1000 * 1000
        } else {
            remaining
        };
        insert(
            headers,
            &format!("anthropic-ratelimit-{name}-limit"),
            limit.to_string(),
        );
        insert(
            headers,
            &format!("anthropic-ratelimit-{name}-remaining"),
            remaining.to_string(),
        );
        insert(
            headers,
            &format!("anthropic-ratelimit-{name}-reset"),
            rfc3339_ceil(now, reset),
        );
    }
}

/// `now + after`, rounded *up* to the whole second, so a client waiting until the header's
/// instant never comes back before the bucket is full (rounding `after` up and then flooring the
/// sum, as before, could land up to a second early).
fn rfc3339_ceil(now: SystemTime, after: Duration) -> String {
    let t = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(after);
    let secs = t.as_secs().saturating_add(u64::from(t.subsec_nanos() > 0));
    rfc3339(UNIX_EPOCH + Duration::from_secs(secs.min(MAX_EPOCH_SECS)))
}

/// 9999-12-31T23:59:59Z: keeps the header four-digit and `SystemTime` arithmetic in range.
const MAX_EPOCH_SECS: u64 = 253_402_300_799;

/// `2025-02-24T22:25:32Z` (whole seconds, UTC).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn stop_reason(a: &Answer) -> &'static str {
    if a.truncated {
        "max_tokens"
    } else {
        "end_turn"
    }
}

/// A `message` object.
pub(crate) fn message(a: &Answer) -> Bytes {
    let body = json!({
        "id": format!("msg_{}", a.id),
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": [{ "type": "text", "text": a.text() }],
        "stop_reason": stop_reason(a),
        "stop_sequence": null,
        "usage": {
            "input_tokens": a.input,
            "output_tokens": a.output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    });
    Bytes::from(body.to_string())
}

fn event(name: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// SSE events: `message_start` (input usage), `content_block_start`, `ping`,
/// `content_block_delta`…, `content_block_stop`, `message_delta` (cumulative output usage),
/// `message_stop`.
pub(crate) fn stream(a: &Answer) -> Vec<Bytes> {
    let mut frames = vec![
        event(
            "message_start",
            &json!({
                "type": "message_start",
                "message": {
                    "id": format!("msg_{}", a.id),
                    "type": "message",
                    "role": "assistant",
                    "model": a.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": {
                        "input_tokens": a.input,
                        "output_tokens": a.output.min(1),
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                    },
                },
            }),
        ),
        event(
            "content_block_start",
            &json!({
                "type": "content_block_start",
                "index": 0,
                "content_block": { "type": "text", "text": "" },
            }),
        ),
        event("ping", &json!({ "type": "ping" })),
    ];
    for piece in a.pieces() {
        frames.push(event(
            "content_block_delta",
            &json!({
                "type": "content_block_delta",
                "index": 0,
                "delta": { "type": "text_delta", "text": piece },
            }),
        ));
    }
    frames.push(event(
        "content_block_stop",
        &json!({ "type": "content_block_stop", "index": 0 }),
    ));
    frames.push(event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop_reason(a), "stop_sequence": null },
            "usage": { "output_tokens": a.output },
        }),
    ));
    frames.push(event("message_stop", &json!({ "type": "message_stop" })));
    frames
}

/// The error event of a stream cut short after a 200 (PROVIDERS.md §6): `event: error` with
/// `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}` (no
/// `request_id` inside a stream).
pub(crate) fn stream_error() -> Bytes {
    event(
        "error",
        &json!({
            "type": "error",
            "error": { "type": "overloaded_error", "message": "Overloaded" },
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_rounds_the_instant_up() {
        let now = UNIX_EPOCH + Duration::from_millis(1_740_435_931_700);
        assert_eq!(
            rfc3339_ceil(now, Duration::from_millis(500)),
            "2025-02-24T22:25:33Z"
        );
        assert_eq!(rfc3339_ceil(now, Duration::ZERO), "2025-02-24T22:25:32Z");
        assert_eq!(
            rfc3339_ceil(UNIX_EPOCH + Duration::from_secs(5), Duration::ZERO),
            "1970-01-01T00:00:05Z"
        );
        assert_eq!(rfc3339_ceil(now, Duration::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_740_435_932)),
            "2025-02-24T22:25:32Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
