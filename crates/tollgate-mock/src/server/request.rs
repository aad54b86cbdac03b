//! What the server reads from a request: the API shape its path names ([`Api`]), the key it
//! presents ([`api_key`]) and what matters in its JSON body ([`parse`]).

use http::HeaderMap;
use serde_json::Value;

use crate::config::Flavor;

/// Which API shape the request uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Api {
    /// `POST /v1/chat/completions`: OpenAI's.
    Chat,
    /// `POST /v1/messages`: Anthropic's.
    Messages,
}

/// What the server needs from a request body.
#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) model: String,
    pub(super) input: u64,
    /// As sent (`max_tokens` / `max_completion_tokens`).
    pub(super) max_tokens: Option<u64>,
    pub(super) stream: bool,
    pub(super) include_usage: bool,
}

/// `Authorization: Bearer KEY` or `x-api-key: KEY`.
pub(super) fn api_key(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim().to_owned())
}

/// Reads what matters from a request body; the error is a message for a 400.
pub(super) fn parse(api: Api, flavor: Flavor, bytes: &[u8]) -> Result<Parsed, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| match flavor {
        Flavor::OpenAi => format!(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.) {e}"
        ),
        Flavor::Anthropic => format!("There was an issue with the formatting of your request: {e}"),
    })?;
    let Some(obj) = v.as_object() else {
        return Err("The request body must be a JSON object.".to_owned());
    };
    let missing = |field: &str| match flavor {
        Flavor::OpenAi => format!("Missing required parameter: '{field}'."),
        Flavor::Anthropic => format!("{field}: Field required"),
    };
    let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
        return Err(missing("messages"));
    };
    let mut chars = 0u64;
    for m in messages {
        chars = chars.saturating_add(content_chars(m.get("content")));
    }
    if api == Api::Messages {
        chars = chars.saturating_add(content_chars(obj.get("system")));
    }
    let max_field = |name: &str| -> Result<Option<u64>, String> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("{name}: must be a positive integer")),
        }
    };
    let max_tokens = match api {
        Api::Messages => Some(max_field("max_tokens")?.ok_or_else(|| missing("max_tokens"))?),
        Api::Chat => match max_field("max_completion_tokens")? {
            Some(m) => Some(m),
            None => max_field("max_tokens")?,
        },
    };
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(flavor.default_model())
        .to_owned();
    let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Parsed {
        model,
        input: chars.div_ceil(4),
        max_tokens,
        stream,
        include_usage,
    })
}

/// Characters of a `content` (a string, or an array of parts with `text`).
fn content_chars(content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(s)) => s.chars().count() as u64,
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => s.chars().count() as u64,
                _ => p
                    .get("text")
                    .and_then(Value::as_str)
                    .map_or(0, |s| s.chars().count() as u64),
            })
            .fold(0u64, u64::saturating_add),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn parses_chat_and_messages() {
        let p = parse(
            Api::Chat,
            Flavor::OpenAi,
            br#"{"model":"m","messages":[{"role":"user","content":"abcdefghi"}],"max_tokens":7,"stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        assert_eq!(
            (p.input, p.max_tokens, p.stream, p.include_usage),
            (3, Some(7), true, true)
        );
        let p = parse(
            Api::Messages,
            Flavor::Anthropic,
            br#"{"system":"abcd","messages":[{"role":"user","content":[{"type":"text","text":"abcd"}]}],"max_tokens":5}"#,
        )
        .unwrap();
        assert_eq!((p.input, p.max_tokens), (2, Some(5)));
        assert!(
            parse(Api::Messages, Flavor::Anthropic, br#"{"messages":[]}"#)
                .unwrap_err()
                .contains("max_tokens")
        );
        assert!(parse(Api::Chat, Flavor::OpenAi, b"{nope").is_err());
        assert!(parse(Api::Chat, Flavor::OpenAi, b"[]").is_err());
        assert!(
            parse(
                Api::Chat,
                Flavor::OpenAi,
                br#"{"messages":[],"max_tokens":-1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn api_keys() {
        let mut h = HeaderMap::new();
        assert_eq!(api_key(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer sk-1"));
        assert_eq!(api_key(&h).as_deref(), Some("sk-1"));
        h.insert("x-api-key", HeaderValue::from_static("ak"));
        assert_eq!(api_key(&h).as_deref(), Some("ak"));
    }
}
