//! Reading provider error bodies: one borrowed, bounded parse that understands every provider's
//! shape (OpenAI, Anthropic, Gemini's `google.rpc.Status`, Mistral, OpenRouter, Bedrock).
//!
//! Nothing here panics, whatever the bytes: a body that is not JSON, not UTF-8 or truncated
//! parses as "no JSON" and the classifiers fall back to the status and the raw text. Strings are
//! borrowed from the body where possible and arrays are cut to [`MAX_ITEMS`], so the parse
//! allocates at most in proportion to the (already capped) peeked body.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tollgate_core::Usage;

/// Arrays in error bodies (Gemini's `details`, `violations`) are read up to this many items.
pub(crate) const MAX_ITEMS: usize = 16;

/// What a classifier learns from a body.
#[derive(Debug, Default)]
pub(crate) struct ErrorBody<'a> {
    /// The provider's error message (`error.message`, or a top-level `message`).
    pub(crate) message: Option<Cow<'a, str>>,
    /// `error.type` (OpenAI, Anthropic), or a top-level `type` (Mistral).
    pub(crate) kind: Option<Cow<'a, str>>,
    /// `error.code` (OpenAI, Mistral: text; OpenRouter, Gemini: a number).
    pub(crate) code: Option<Code<'a>>,
    /// Gemini's `error.status`, e.g. `RESOURCE_EXHAUSTED`.
    pub(crate) status: Option<Cow<'a, str>>,
    /// Anthropic's `error.details.error_code`.
    pub(crate) detail_code: Option<Cow<'a, str>>,
    /// Gemini's `QuotaFailure` quota ids.
    pub(crate) quota_ids: Vec<Cow<'a, str>>,
    /// Whether a Gemini `QuotaFailure` violation reports a quota value of 0.
    pub(crate) zero_quota: bool,
    /// Gemini's `RetryInfo.retryDelay`.
    pub(crate) retry_delay: Option<Cow<'a, str>>,
    /// Gemini's `ErrorInfo.reason`, e.g. `API_KEY_INVALID`.
    pub(crate) reason: Option<Cow<'a, str>>,
    /// OpenRouter's `error.metadata` carried moderation results (`reasons` / `flagged_input`).
    pub(crate) moderation: bool,
    /// OpenRouter's `error.metadata.raw`: the upstream provider's own error text.
    pub(crate) upstream: Option<Cow<'a, str>>,
    /// Bedrock's `__type`.
    pub(crate) aws_type: Option<Cow<'a, str>>,
    /// Token usage reported in a success body.
    pub(crate) usage: Option<Usage>,
    /// The body as text, when it is UTF-8 but not JSON (a proxy's plain-text error page).
    pub(crate) text: Option<&'a str>,
}

/// An error code: text (`"insufficient_quota"`) or a number (`429`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Code<'a> {
    Text(Cow<'a, str>),
    Number(i64),
}

impl Code<'_> {
    pub(crate) fn as_text(&self) -> Option<&str> {
        match self {
            Code::Text(t) => Some(t),
            Code::Number(_) => None,
        }
    }

    pub(crate) fn as_number(&self) -> Option<i64> {
        match self {
            Code::Text(t) => t.trim().parse().ok(),
            Code::Number(n) => Some(*n),
        }
    }
}

/// What [`ErrorBody::parse`] gives for an empty body (every success but an event stream's is
/// classified with none), built once: no parse, no copy, no drop.
pub(crate) static EMPTY: ErrorBody<'static> = ErrorBody {
    message: None,
    kind: None,
    code: None,
    status: None,
    detail_code: None,
    quota_ids: Vec::new(),
    zero_quota: false,
    retry_delay: None,
    reason: None,
    moderation: false,
    upstream: None,
    aws_type: None,
    usage: None,
    text: None,
};

impl<'a> ErrorBody<'a> {
    /// Parses a peeked body. Never fails: what cannot be read is left empty.
    pub(crate) fn parse(bytes: &'a [u8]) -> Self {
        let trimmed = bytes.trim_ascii();
        if trimmed.first() == Some(&b'{') {
            if let Ok(raw) = serde_json::from_slice::<RawBody<'a>>(trimmed) {
                return raw.into_body();
            }
        }
        ErrorBody {
            text: std::str::from_utf8(trimmed).ok().filter(|t| !t.is_empty()),
            ..ErrorBody::default()
        }
    }

    /// `error.type` or the top-level `type`, whichever is set.
    pub(crate) fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// `error.code` as text.
    pub(crate) fn code_text(&self) -> Option<&str> {
        self.code.as_ref().and_then(Code::as_text)
    }

    /// Every piece of human-readable text in the body, for signature matching: the message, the
    /// upstream error an aggregator passed through, or the raw body.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &str> {
        self.message
            .as_deref()
            .into_iter()
            .chain(self.upstream.as_deref())
            .chain(self.text)
    }

    /// Whether any text contains `needle`, ignoring ASCII case.
    pub(crate) fn mentions(&self, needle: &str) -> bool {
        self.texts().any(|t| contains_ignore_case(t, needle))
    }
}

/// Case-insensitive (ASCII) substring search without allocating.
pub(crate) fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    find_ignore_case(haystack, needle).is_some()
}

/// Byte offset of the first case-insensitive (ASCII) match of `needle`.
pub(crate) fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return Some(0);
    }
    if n.len() > h.len() {
        return None;
    }
    let first = n[0].to_ascii_lowercase();
    (0..=h.len() - n.len())
        .find(|&i| h[i].to_ascii_lowercase() == first && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

// ===== the serde shapes =====

#[derive(Deserialize, Default)]
struct RawBody<'a> {
    #[serde(borrow, default)]
    error: Option<ErrorField<'a>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Text<'a>>,
    #[serde(borrow, default, alias = "Message")]
    message: Option<Text<'a>>,
    #[serde(borrow, default)]
    code: Option<Code<'a>>,
    #[serde(borrow, default, rename = "__type")]
    aws_type: Option<Text<'a>>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default, rename = "usageMetadata")]
    usage_metadata: Option<GeminiUsage>,
}

impl<'a> RawBody<'a> {
    fn into_body(self) -> ErrorBody<'a> {
        let mut body = ErrorBody {
            kind: text(self.kind),
            message: text(self.message),
            code: self.code,
            aws_type: text(self.aws_type),
            ..ErrorBody::default()
        };
        match self.error {
            Some(ErrorField::Text(t)) if body.message.is_none() && !t.is_empty() => {
                body.message = Some(t);
            }
            Some(ErrorField::Object(e)) => {
                let e = *e;
                if let Some(message) = text(e.message) {
                    body.message = Some(message);
                }
                if let Some(kind) = text(e.kind) {
                    body.kind = Some(kind);
                }
                if e.code.is_some() {
                    body.code = e.code;
                }
                body.status = text(e.status);
                if let Some(details) = e.details {
                    match details {
                        Details::Anthropic(d) => body.detail_code = text(d.error_code),
                        Details::Google(items) => {
                            for item in items.0 {
                                for v in item.violations.map(|v| v.0).unwrap_or_default() {
                                    if let Some(id) = text(v.quota_id) {
                                        body.quota_ids.push(id);
                                    }
                                    if v.quota_value.as_ref().and_then(Code::as_number) == Some(0) {
                                        body.zero_quota = true;
                                    }
                                }
                                if let Some(delay) = text(item.retry_delay) {
                                    body.retry_delay = Some(delay);
                                }
                                if let Some(reason) = text(item.reason) {
                                    body.reason = Some(reason);
                                }
                            }
                        }
                    }
                }
                if let Some(meta) = e.metadata {
                    body.moderation = meta.reasons.is_some() || meta.flagged_input.is_some();
                    body.upstream = text(meta.raw);
                }
            }
            Some(ErrorField::Text(_)) | None => {}
        }
        body.usage = self
            .usage
            .map(RawUsage::into_usage)
            .or_else(|| self.usage_metadata.map(GeminiUsage::into_usage))
            .filter(|u| !u.is_empty());
        body
    }
}

/// A non-empty string field.
fn text(field: Option<Text<'_>>) -> Option<Cow<'_, str>> {
    field.map(|t| t.0).filter(|t| !t.is_empty())
}

/// A JSON string, borrowed when it has no escapes. Anything else (number, null, object) is
/// skipped rather than failing the whole parse.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Option<Text<'a>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Some(Text(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Some(Text(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Some(Text(Cow::Owned(v))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(None)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(None)
            }
        }
        // A non-string becomes an empty, never-matching text.
        Ok(d.deserialize_any(V(PhantomData))?
            .unwrap_or(Text(Cow::Borrowed(""))))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Code<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Code<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Code::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Code::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Code::Number(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Code::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                // Saturating float-to-int cast; NaN becomes 0.
                Ok(Code::Number(v as i64))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Code::Text(Cow::Borrowed("")))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Code::Text(Cow::Borrowed("")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Code::Text(Cow::Borrowed("")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Code::Text(Cow::Borrowed("")))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `error` is an object almost everywhere, a bare string in some OpenAI-compatible servers.
enum ErrorField<'a> {
    Text(Cow<'a, str>),
    Object(Box<ErrorObject<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for ErrorField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ErrorField<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error object or message")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ErrorField::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ErrorField::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let object = ErrorObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ErrorField::Object(Box::new(object)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ErrorField::Text(Cow::Borrowed("")))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ErrorField::Text(Cow::Borrowed("")))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ErrorField::Text(Cow::Borrowed("")))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ErrorField::Text(Cow::Borrowed("")))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ErrorField::Text(Cow::Borrowed("")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ErrorField::Text(Cow::Borrowed("")))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[derive(Deserialize, Default)]
struct ErrorObject<'a> {
    #[serde(borrow, default)]
    message: Option<Text<'a>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    code: Option<Code<'a>>,
    #[serde(borrow, default)]
    status: Option<Text<'a>>,
    #[serde(borrow, default)]
    details: Option<Details<'a>>,
    #[serde(borrow, default)]
    metadata: Option<Metadata<'a>>,
}

/// Anthropic's `details` is an object; Google's is an array of typed messages.
enum Details<'a> {
    Anthropic(AnthropicDetails<'a>),
    Google(Bounded<GoogleDetail<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Details<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Details<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("error details")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                AnthropicDetails::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Details::Anthropic)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Bounded::from_seq(seq).map(Details::Google)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Details::Google(Bounded(Vec::new())))
            }
            fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
                Ok(Details::Google(Bounded(Vec::new())))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Details::Google(Bounded(Vec::new())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Details::Google(Bounded(Vec::new())))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Details::Google(Bounded(Vec::new())))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Details::Google(Bounded(Vec::new())))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Details::Google(Bounded(Vec::new())))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[derive(Deserialize, Default)]
struct AnthropicDetails<'a> {
    #[serde(borrow, default)]
    error_code: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct GoogleDetail<'a> {
    #[serde(borrow, default)]
    violations: Option<Bounded<Violation<'a>>>,
    #[serde(borrow, default, rename = "retryDelay")]
    retry_delay: Option<Text<'a>>,
    #[serde(borrow, default)]
    reason: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Violation<'a> {
    #[serde(borrow, default, rename = "quotaId")]
    quota_id: Option<Text<'a>>,
    #[serde(borrow, default, rename = "quotaValue")]
    quota_value: Option<Code<'a>>,
}

#[derive(Deserialize, Default)]
struct Metadata<'a> {
    #[serde(default)]
    reasons: Option<IgnoredAny>,
    #[serde(default)]
    flagged_input: Option<IgnoredAny>,
    #[serde(borrow, default)]
    raw: Option<Text<'a>>,
}

/// An array read up to [`MAX_ITEMS`] items; the rest is skipped without allocating. An item of
/// the wrong shape fails the parse, and the classifier falls back to the status.
struct Bounded<T>(Vec<T>);

impl<T> Bounded<T> {
    fn from_seq<'de, A>(mut seq: A) -> Result<Self, A::Error>
    where
        A: SeqAccess<'de>,
        T: Deserialize<'de>,
    {
        let mut items = Vec::new();
        while items.len() < MAX_ITEMS {
            match seq.next_element::<T>()? {
                Some(item) => items.push(item),
                None => return Ok(Bounded(items)),
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Bounded(items))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Bounded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Bounded<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Bounded::from_seq(seq)
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// OpenAI's and Anthropic's `usage` object.
#[derive(Deserialize, Default)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl RawUsage {
    fn into_usage(self) -> Usage {
        let mut usage = Usage::new();
        if let Some(n) = self.prompt_tokens {
            usage = usage.with_input_tokens(n);
        }
        if let Some(n) = self.completion_tokens.or(self.output_tokens) {
            usage = usage.with_output_tokens(n);
        }
        if let Some(n) = self.total_tokens {
            usage = usage.with_total_tokens(n);
        }
        if let Some(n) = self.prompt_tokens_details.and_then(|d| d.cached_tokens) {
            usage = usage.with_cached_input_tokens(n);
        }
        if let Some(input) = self.input_tokens {
            // Anthropic reports cache reads and writes apart from `input_tokens`.
            let read = self.cache_read_input_tokens.unwrap_or(0);
            let written = self.cache_creation_input_tokens.unwrap_or(0);
            usage = usage.with_input_tokens(input.saturating_add(read).saturating_add(written));
            if let Some(read) = self.cache_read_input_tokens {
                usage = usage.with_cached_input_tokens(read);
            }
        }
        usage
    }
}

/// Gemini's `usageMetadata`.
#[derive(Deserialize, Default)]
struct GeminiUsage {
    #[serde(default, rename = "promptTokenCount")]
    prompt: Option<u64>,
    #[serde(default, rename = "candidatesTokenCount")]
    candidates: Option<u64>,
    #[serde(default, rename = "totalTokenCount")]
    total: Option<u64>,
    #[serde(default, rename = "cachedContentTokenCount")]
    cached: Option<u64>,
}

impl GeminiUsage {
    fn into_usage(self) -> Usage {
        let mut usage = Usage::new();
        if let Some(n) = self.prompt {
            usage = usage.with_input_tokens(n);
        }
        if let Some(n) = self.candidates {
            usage = usage.with_output_tokens(n);
        }
        if let Some(n) = self.total {
            usage = usage.with_total_tokens(n);
        }
        if let Some(n) = self.cached {
            usage = usage.with_cached_input_tokens(n);
        }
        usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_what_an_empty_body_parses_to() {
        for bytes in [&b""[..], b"  \r\n"] {
            assert_eq!(
                format!("{:?}", ErrorBody::parse(bytes)),
                format!("{EMPTY:?}")
            );
        }
    }

    #[test]
    fn openai_shape() {
        let b = ErrorBody::parse(
            br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(b.kind(), Some("insufficient_quota"));
        assert_eq!(b.code_text(), Some("insufficient_quota"));
    }

    #[test]
    fn anthropic_shape() {
        let b = ErrorBody::parse(
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"spend","details":{"error_code":"enforced_spend_limit_reached"}},"request_id":"req_1"}"#,
        );
        assert_eq!(b.kind(), Some("rate_limit_error"));
        assert_eq!(
            b.detail_code.as_deref(),
            Some("enforced_spend_limit_reached")
        );
    }

    #[test]
    fn gemini_shape() {
        let b = ErrorBody::parse(
            br#"{"error":{"code":429,"message":"Quota exceeded. Please retry in 57.2s.","status":"RESOURCE_EXHAUSTED","details":[
              {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"m","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"50"}]},
              {"@type":"type.googleapis.com/google.rpc.Help","links":[{"url":"https://x"}]},
              {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"39s"}]}}"#,
        );
        assert_eq!(b.code.as_ref().and_then(Code::as_number), Some(429));
        assert_eq!(b.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(b.quota_ids.len(), 1);
        assert_eq!(b.retry_delay.as_deref(), Some("39s"));
        assert!(!b.zero_quota);
    }

    #[test]
    fn error_as_string_and_odd_types() {
        let b = ErrorBody::parse(br#"{"error":"model not found","code":null,"message":5}"#);
        assert_eq!(b.message.as_deref(), Some("model not found"));
        let b = ErrorBody::parse(br#"{"error":{"message":{"nested":true},"code":[1,2]}}"#);
        assert_eq!(b.message.as_deref(), None);
        assert!(b.text.is_none());
    }

    #[test]
    fn long_arrays_are_cut() {
        let mut s = String::from(r#"{"error":{"details":["#);
        for i in 0..10_000 {
            if i > 0 {
                s.push(',');
            }
            s.push_str(r#"{"violations":[{"quotaId":"x"}]}"#);
        }
        s.push_str("]}}");
        let b = ErrorBody::parse(s.as_bytes());
        assert_eq!(b.quota_ids.len(), MAX_ITEMS);
    }

    #[test]
    fn garbage_is_text_or_nothing() {
        assert_eq!(
            ErrorBody::parse(b"upstream connect error").text,
            Some("upstream connect error")
        );
        assert!(ErrorBody::parse(b"\xff\xfe{").text.is_none());
        let truncated = ErrorBody::parse(br#"{"error":{"message":"trunc"#);
        assert!(truncated.message.is_none());
        assert_eq!(truncated.text, Some(r#"{"error":{"message":"trunc"#));
    }

    #[test]
    fn usage_shapes() {
        let b = ErrorBody::parse(
            br#"{"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4}}}"#,
        );
        let u = b.usage.unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_input_tokens),
            (Some(10), Some(5), Some(4))
        );
        let b = ErrorBody::parse(
            br#"{"usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":7}}"#,
        );
        let u = b.usage.unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_input_tokens),
            (Some(100), Some(7), Some(90))
        );
        let b = ErrorBody::parse(br#"{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"totalTokenCount":7}}"#);
        assert_eq!(b.usage.unwrap().total_tokens(), Some(7));
    }

    #[test]
    fn case_insensitive_find() {
        assert!(contains_ignore_case(
            "Prompt Is Too Long: 1 > 0",
            "prompt is too long"
        ));
        assert!(!contains_ignore_case("short", "longer needle"));
        assert_eq!(find_ignore_case("aaB", "b"), Some(2));
    }
}
