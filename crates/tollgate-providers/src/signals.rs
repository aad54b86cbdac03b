//! Signals shared across providers: context-window signatures, "request too large", and delay
//! hints in error messages.

use std::time::Duration;

use tollgate_core::headers::go_duration;

use crate::body::{ErrorBody, find_ignore_case};

/// Context-window overflow messages of every provider (PROVIDERS.md §2). Every classifier checks
/// all of them: OpenAI-compatible servers and aggregators pass other providers' texts through.
const CONTEXT_WINDOW_SIGNATURES: &[&str] = &[
    // OpenAI, DeepSeek, Azure
    "maximum context length",
    "exceeds the context window",
    // Anthropic
    "prompt is too long",
    "exceed context limit",
    // Gemini / Vertex
    "exceeds the maximum number of tokens allowed",
    // Mistral
    "too large for model with",
    // Bedrock
    "input is too long for requested model",
    "too many input tokens",
    // Cohere
    "too many tokens: total number of tokens in the prompt cannot exceed",
    // Groq
    "please reduce the length of the messages or completion",
    // xAI / Perplexity
    "maximum prompt length is",
    "the total length of all messages is too long",
    // vLLM / sglang
    "longer than the model's context length",
];

/// Whether the body reports a context-window overflow, by code or by message.
pub(crate) fn context_window_exceeded(body: &ErrorBody<'_>) -> bool {
    body.code_text() == Some("context_length_exceeded")
        || body.kind() == Some("context_length_exceeded")
        || CONTEXT_WINDOW_SIGNATURES.iter().any(|s| body.mentions(s))
}

/// Whether the body reports a request larger than the whole tokens-per-minute bucket
/// (OpenAI's 429 and Groq's 413 "Request too large … Limit 30000, Requested 34307"): it can
/// never fit, so it is not a rate limit.
pub(crate) fn request_too_large(body: &ErrorBody<'_>) -> bool {
    body.texts().any(|text| {
        if find_ignore_case(text, "request too large").is_some() {
            return true;
        }
        let limit = number_after(text, "limit ");
        let requested = number_after(text, "requested ");
        let used = find_ignore_case(text, "used ").is_some();
        matches!((limit, requested), (Some(l), Some(r)) if r > l && !used)
    })
}

/// Whether a message is a content-policy refusal.
pub(crate) fn content_policy(body: &ErrorBody<'_>) -> bool {
    matches!(
        body.code_text(),
        Some("content_filter" | "content_policy_violation")
    ) || body.kind() == Some("content_filter")
}

/// The delay an error body asks for: Gemini's `RetryInfo.retryDelay`, or a phrase in the
/// message such as "Please try again in 1.146s", "try again in 84ms", "Please retry in
/// 57.219397761s." or "Please retry after 37 seconds." Zero counts as absent.
pub(crate) fn body_delay(body: &ErrorBody<'_>) -> Option<Duration> {
    if let Some(delay) = body.retry_delay.as_deref().and_then(go_duration) {
        if !delay.is_zero() {
            return Some(delay);
        }
    }
    body.texts()
        .find_map(message_delay)
        .filter(|d| !d.is_zero())
}

fn message_delay(text: &str) -> Option<Duration> {
    for phrase in ["try again in ", "retry in ", "retry after "] {
        let Some(at) = find_ignore_case(text, phrase) else {
            continue;
        };
        let rest = &text[at + phrase.len()..];
        if let Some(delay) = delay_token(rest) {
            return Some(delay);
        }
    }
    None
}

/// Reads "1.146s", "84ms", "1m12.5s", or "37 seconds" / "500 milliseconds" at the start of `rest`.
fn delay_token(rest: &str) -> Option<Duration> {
    let end = rest
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '.' || c == 'µ' || c == 'μ'))
        .map_or(rest.len(), |(i, _)| i);
    let token = rest[..end].trim_end_matches('.');
    if token.is_empty() {
        return None;
    }
    if token.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // A bare number followed by a unit word.
        let word = rest[end..].trim_start();
        let word_end = word
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(word.len());
        let unit = match word[..word_end].to_ascii_lowercase().as_str() {
            "ms" | "millisecond" | "milliseconds" => "ms",
            "s" | "sec" | "secs" | "second" | "seconds" => "s",
            "m" | "min" | "mins" | "minute" | "minutes" => "m",
            _ => return None,
        };
        let mut with_unit = String::with_capacity(token.len() + 2);
        with_unit.push_str(token);
        with_unit.push_str(unit);
        return go_duration(&with_unit);
    }
    go_duration(token)
}

/// The integer right after `label` (case-insensitive), e.g. `number_after("Limit 30000,", "limit ")`.
/// The number right after the first occurrence of `label` that is followed by digits
/// ("Rate limit for gpt-4o …: Limit 30000" gives 30000 for "limit ").
fn number_after(text: &str, label: &str) -> Option<u64> {
    let mut rest = text;
    while let Some(at) = find_ignore_case(rest, label) {
        rest = &rest[at + label.len()..];
        let digits = &rest[..rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len())];
        if !digits.is_empty() {
            return digits.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> ErrorBody<'_> {
        ErrorBody::parse(json.as_bytes())
    }

    #[test]
    fn numbers_after_a_label_skip_words() {
        let text = "Rate limit for gpt-4o on tokens per min (TPM): Limit 30000, Requested 34307.";
        assert_eq!(number_after(text, "limit "), Some(30_000));
        assert_eq!(number_after(text, "requested "), Some(34_307));
        assert_eq!(number_after("limit reached", "limit "), None);
        assert_eq!(number_after("limit ", "limit "), None);
    }

    #[test]
    fn message_hints() {
        let cases = [
            (
                "Rate limit reached. Please try again in 1.146s. Visit",
                Some(1_146),
            ),
            ("Please try again in 84ms.", Some(84)),
            ("Please try again in 1m12.5s", Some(72_500)),
            ("Please retry after 37 seconds.", Some(37_000)),
            ("Please retry in 57.219397761s.", Some(57_219)),
            ("Please try again later.", None),
            ("try again in 0s", None),
        ];
        for (text, want) in cases {
            let got = message_delay(text)
                .filter(|d| !d.is_zero())
                .map(|d| d.as_millis() as u64);
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn too_large_by_numbers() {
        let b = body(
            r#"{"error":{"message":"Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested 34307.","code":"rate_limit_exceeded"}}"#,
        );
        assert!(request_too_large(&b));
        let b = body(
            r#"{"error":{"message":"Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.","code":"rate_limit_exceeded"}}"#,
        );
        assert!(!request_too_large(&b));
        let b =
            body(r#"{"error":{"message":"tokens per min (TPM): Limit 30000, Requested 34307."}}"#);
        assert!(request_too_large(&b));
    }

    #[test]
    fn context_signatures() {
        assert!(context_window_exceeded(&body(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#
        )));
        assert!(context_window_exceeded(&body(
            r#"{"error":{"message":"x","code":"context_length_exceeded"}}"#
        )));
        assert!(!context_window_exceeded(&body(
            r#"{"error":{"message":"Invalid value for 'temperature'"}}"#
        )));
    }
}
