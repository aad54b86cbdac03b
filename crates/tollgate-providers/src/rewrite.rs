//! The rewriters for provider APIs: [`SetModel`] for the JSON body's `model`, [`IncludeUsage`]
//! for a streamed answer's usage, [`Endpoint`] for the scheme, authority and path prefix (and
//! Azure's `api-version`), [`Credentials`] for the key — so one request can go to OpenAI, then
//! Azure OpenAI, then DeepSeek or any OpenAI-compatible endpoint.
//!
//! Each implements [`Rewrite`] (from `tollgate-core`), which a fallback's targets and a
//! router's deployments take.

use std::fmt;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use memchr::memmem;
use tollgate_core::BoxError;
use tollgate_core::body::BufferedBody;
use tollgate_core::redact;
use tollgate_core::rewrite::Rewrite;

use crate::members;

/// Replaces the `model` field of an OpenAI-compatible (or Anthropic) JSON body, or adds it
/// first when the body has none. Only the value is replaced: the rest of the body keeps its
/// bytes, member order and spacing (a body naming `model` twice is parsed and written again,
/// keeping the one member; its keys then come out sorted). A body that is not a JSON object is
/// an error.
///
/// # Examples
///
/// ```
/// use tollgate_core::body::BufferedBody;
/// use tollgate_core::rewrite::Rewrite;
/// use tollgate_providers::rewrite::SetModel;
///
/// let mut request = http::Request::new(BufferedBody::from(r#"{"n":1, "model":"gpt-4o"}"#));
/// SetModel::new("deepseek-chat").rewrite(&mut request).unwrap();
/// assert_eq!(request.body().bytes().as_ref(), br#"{"n":1, "model":"deepseek-chat"}"#);
///
/// let mut none = http::Request::new(BufferedBody::from(r#"{"n":1}"#));
/// SetModel::new("deepseek-chat").rewrite(&mut none).unwrap();
/// assert_eq!(none.body().bytes().as_ref(), br#"{"model":"deepseek-chat","n":1}"#);
/// ```
#[derive(Clone)]
pub struct SetModel {
    model: Arc<str>,
    /// `model` as a JSON string.
    encoded: Bytes,
}

impl SetModel {
    /// Sets the model to `model`.
    pub fn new(model: impl Into<Arc<str>>) -> Self {
        let model = model.into();
        let encoded = serde_json::Value::from(&*model).to_string();
        SetModel {
            model,
            encoded: Bytes::from(encoded),
        }
    }
}

impl fmt::Debug for SetModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetModel")
            .field("model", &self.model)
            .finish()
    }
}

impl Rewrite for SetModel {
    fn rewrite(&self, request: &mut http::Request<BufferedBody>) -> Result<(), BoxError> {
        let found = members::find(request.body(), ["model"])?;
        let bytes = request.body().bytes();
        if found.repeated {
            return reparse(request, |body| {
                body.insert("model".to_owned(), serde_json::Value::from(&*self.model));
                true
            });
        }
        let encoded = &self.encoded[..];
        let mut spliced = Vec::with_capacity(bytes.len() + encoded.len() + 10);
        match found.values[0].clone() {
            Some(value) if bytes[value.clone()] == *encoded => return Ok(()),
            Some(value) => {
                spliced.extend_from_slice(&bytes[..value.start]);
                spliced.extend_from_slice(encoded);
                spliced.extend_from_slice(&bytes[value.end..]);
            }
            None => {
                // First, right after the opening brace: the first byte that is not whitespace.
                let open = bytes
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(0);
                spliced.extend_from_slice(&bytes[..=open]);
                spliced.extend_from_slice(b"\"model\":");
                spliced.extend_from_slice(encoded);
                if !found.empty {
                    spliced.push(b',');
                }
                spliced.extend_from_slice(&bytes[open + 1..]);
            }
        }
        set_body(request, spliced);
        Ok(())
    }
}

/// Asks an OpenAI-compatible server for the usage of a streamed answer: a request with
/// `"stream": true` and no `stream_options` gets `"stream_options": {"include_usage": true}`
/// as its last member, so the stream's last chunk reports its tokens (PROVIDERS.md §6) and the
/// token quota and the metrics learn from it as from a buffered answer. Other requests are left
/// as they are; the rest of the body keeps its bytes. A body whose text has no `"stream"` is
/// not parsed (so a name written with escapes, `"str\u0065am"`, is not seen) unless an earlier
/// rewrite such as [`SetModel`] left its [outline](BufferedBody::outline), which finds every
/// top-level name, escaped or not; one that is parsed and is not a JSON object is an error.
///
/// # Examples
///
/// ```
/// use tollgate_core::body::BufferedBody;
/// use tollgate_core::rewrite::Rewrite;
/// use tollgate_providers::rewrite::IncludeUsage;
///
/// let mut request = http::Request::new(BufferedBody::from(r#"{"model":"gpt-4o","stream":true}"#));
/// IncludeUsage.rewrite(&mut request).unwrap();
/// assert_eq!(
///     request.body().bytes().as_ref(),
///     br#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}"#
/// );
///
/// let mut plain = http::Request::new(BufferedBody::from(r#"{"model":"gpt-4o"}"#));
/// IncludeUsage.rewrite(&mut plain).unwrap();
/// assert_eq!(plain.body().bytes().as_ref(), br#"{"model":"gpt-4o"}"#);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct IncludeUsage;

impl Rewrite for IncludeUsage {
    fn rewrite(&self, request: &mut http::Request<BufferedBody>) -> Result<(), BoxError> {
        const OPTIONS: &[u8] = br#","stream_options":{"include_usage":true}"#;
        // Most requests do not stream: no scan for them, unless an earlier rewrite (`SetModel`)
        // left the body's outline, which answers at once.
        let bytes = request.body().bytes();
        static STREAM: LazyLock<memmem::Finder<'static>> =
            LazyLock::new(|| memmem::Finder::new(b"\"stream\""));
        if request.body().kept_outline().is_none() && STREAM.find(bytes).is_none() {
            return Ok(());
        }
        let found = members::find(request.body(), ["stream", "stream_options"])?;
        if found.repeated {
            return reparse(request, |body| {
                let streams = body.get("stream") == Some(&serde_json::Value::Bool(true));
                if !streams || body.contains_key("stream_options") {
                    return false;
                }
                body.insert(
                    "stream_options".to_owned(),
                    serde_json::json!({ "include_usage": true }),
                );
                true
            });
        }
        let streams = found.values[0]
            .clone()
            .is_some_and(|value| bytes[value] == *b"true");
        if !streams || found.values[1].is_some() {
            return Ok(());
        }
        // Last, before the closing brace (the object has a member: `stream`).
        let mut spliced = Vec::with_capacity(bytes.len() + OPTIONS.len());
        spliced.extend_from_slice(&bytes[..found.end]);
        spliced.extend_from_slice(OPTIONS);
        spliced.extend_from_slice(&bytes[found.end..]);
        set_body(request, spliced);
        Ok(())
    }
}

/// The body parsed into a map, changed by `change`, and written again when it says it changed
/// it: for a body that names a member twice, which the splices leave to `serde_json` (the last
/// wins).
fn reparse(
    request: &mut http::Request<BufferedBody>,
    change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> bool,
) -> Result<(), BoxError> {
    let mut body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(request.body().bytes())?;
    if change(&mut body) {
        set_body(request, serde_json::to_vec(&body)?);
    }
    Ok(())
}

/// Replaces the body, and its `content-length` when it has one.
fn set_body(request: &mut http::Request<BufferedBody>, bytes: Vec<u8>) {
    if let Some(length) = request.headers_mut().get_mut(http::header::CONTENT_LENGTH) {
        *length = HeaderValue::from(bytes.len());
    }
    *request.body_mut() = BufferedBody::new(Bytes::from(bytes));
}

/// Sends the request to another endpoint: replaces the scheme and authority, and a path
/// prefix; adds query parameters (Azure's `api-version`).
///
/// # Examples
///
/// ```
/// use tollgate_core::body::BufferedBody;
/// use tollgate_core::rewrite::Rewrite;
/// use tollgate_providers::rewrite::Endpoint;
///
/// // OpenAI's path to an Azure OpenAI deployment.
/// let azure = Endpoint::new("https://example.openai.azure.com/openai/deployments/gpt-4o")
///     .unwrap()
///     .with_prefix_replaced("/v1")
///     .with_query("api-version=2024-10-21");
/// let mut request = http::Request::post("https://api.openai.com/v1/chat/completions")
///     .body(BufferedBody::empty())
///     .unwrap();
/// azure.rewrite(&mut request).unwrap();
/// assert_eq!(
///     request.uri(),
///     "https://example.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
/// );
/// ```
///
/// Its `Debug` output and errors show the base through [`redact::url`]: user info and any
/// query or fragment redacted.
#[derive(Clone)]
pub struct Endpoint {
    base: Uri,
    strip: Arc<str>,
    query: Option<Arc<str>>,
    /// Where a request for [`CHAT_PATH`] without a query goes, the path most requests have:
    /// worked out once, as [`rewrite`](Rewrite::rewrite) would each time.
    chat: Option<Uri>,
}

/// OpenAI's chat-completions path.
const CHAT_PATH: &str = "/v1/chat/completions";

impl Endpoint {
    /// Sends to `base`: its scheme, authority and path, which goes before the request's path.
    ///
    /// # Errors
    ///
    /// When `base` is not an absolute URI, or has a query. The error shows `base` redacted
    /// ([`redact::url`]).
    pub fn new(base: &str) -> Result<Self, BoxError> {
        let shown = || redact::url(base);
        let base: Uri = base
            .parse()
            .map_err(|error| format!("endpoint {}: {error}", shown()))?;
        if base.scheme().is_none() || base.authority().is_none() {
            return Err(format!("endpoint {} is not an absolute URI", shown()).into());
        }
        if base.query().is_some() {
            return Err(
                format!("endpoint {} has a query: add it with `with_query`", shown()).into(),
            );
        }
        Ok(Endpoint {
            base,
            strip: Arc::from(""),
            query: None,
            chat: None,
        }
        .with_chat())
    }

    /// `self` with [`chat`](Self::chat) worked out for its base, prefix and query.
    fn with_chat(mut self) -> Self {
        self.chat = self.uri(CHAT_PATH, None).ok();
        self
    }

    /// Where a request for `path` with the query `theirs` goes.
    fn uri(&self, path: &str, theirs: Option<&str>) -> Result<Uri, BoxError> {
        let rest = match path.strip_prefix(&*self.strip) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => path,
        };
        let base = self.base.path().trim_end_matches('/');
        let theirs = theirs.unwrap_or("");
        let ours = self.query.as_deref().unwrap_or("");
        let mut path_and_query =
            String::with_capacity(base.len() + rest.len() + theirs.len() + ours.len() + 2);
        path_and_query.push_str(base);
        path_and_query.push_str(rest);
        if path_and_query.is_empty() {
            path_and_query.push('/');
        }
        add_query(&mut path_and_query, theirs, ours);
        let mut parts = self.base.clone().into_parts();
        parts.path_and_query = Some(PathAndQuery::try_from(path_and_query)?);
        Ok(Uri::from_parts(parts)?)
    }

    /// Removes `prefix` from the request's path first (`/v1` for OpenAI-compatible APIs whose
    /// base already ends in it) — whole path segments only: `/v1` is not removed from
    /// `/v1beta/…`.
    #[must_use]
    pub fn with_prefix_replaced(mut self, prefix: &str) -> Self {
        self.strip = Arc::from(prefix.trim_end_matches('/'));
        self.with_chat()
    }

    /// Adds `query` (`name=value&…`) to the request's own; a parameter the request already has
    /// is replaced (Azure's `api-version` from one deployment to another).
    #[must_use]
    pub fn with_query(mut self, query: &str) -> Self {
        self.query = Some(Arc::from(query));
        self.with_chat()
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The base and the parameters added, as one URL, redacted.
        let url = match &self.query {
            Some(query) => format!("{}?{query}", self.base),
            None => self.base.to_string(),
        };
        f.debug_struct("Endpoint")
            .field("url", &redact::url(&url))
            .field("strip", &self.strip)
            .finish()
    }
}

impl Rewrite for Endpoint {
    fn rewrite(&self, request: &mut http::Request<BufferedBody>) -> Result<(), BoxError> {
        let uri = request.uri();
        *request.uri_mut() = match &self.chat {
            // Most requests: no parsing, no allocation (the parts' bytes are shared).
            Some(chat) if uri.path() == CHAT_PATH && uri.query().is_none() => chat.clone(),
            _ => self.uri(uri.path(), uri.query())?,
        };
        // The client sets `Host` from the new URI; one left over would name the old endpoint.
        request.headers_mut().remove(http::header::HOST);
        Ok(())
    }
}

/// Adds to `path` the request's parameters `theirs`, less those the endpoint sets, then the
/// endpoint's `ours` (each `name=value&…`, maybe empty).
fn add_query(path: &mut String, theirs: &str, ours: &str) {
    fn name(param: &str) -> &str {
        param.split('=').next().unwrap_or("")
    }
    fn params(query: &str) -> impl Iterator<Item = &str> {
        query.split('&').filter(|p| !p.is_empty())
    }
    let kept = params(theirs).filter(|p| !params(ours).any(|o| name(o) == name(p)));
    for (i, param) in kept.chain(params(ours)).enumerate() {
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str(param);
    }
}

/// Sets the credentials for a target: one header, after removing the others that carry keys
/// (`authorization`, `api-key`, `x-api-key`, `x-goog-api-key`).
///
/// # Examples
///
/// ```
/// use tollgate_core::body::BufferedBody;
/// use tollgate_core::rewrite::Rewrite;
/// use tollgate_providers::rewrite::Credentials;
///
/// let mut request = http::Request::post("/")
///     .header("authorization", "Bearer sk-openai")
///     .body(BufferedBody::empty())
///     .unwrap();
/// Credentials::header("api-key", "azure-key").unwrap().rewrite(&mut request).unwrap();
/// assert!(request.headers().get("authorization").is_none());
/// assert_eq!(request.headers()["api-key"], "azure-key");
/// ```
#[derive(Clone)]
pub struct Credentials {
    name: HeaderName,
    value: HeaderValue,
}

const KEY_HEADERS: [HeaderName; 4] = [
    AUTHORIZATION,
    HeaderName::from_static("api-key"),
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("x-goog-api-key"),
];

impl Credentials {
    /// `authorization: Bearer <key>` (OpenAI and compatibles).
    ///
    /// # Errors
    ///
    /// When the key cannot be a header value.
    pub fn bearer(key: &str) -> Result<Self, BoxError> {
        let mut value = HeaderValue::try_from(format!("Bearer {key}"))?;
        value.set_sensitive(true);
        Ok(Credentials {
            name: AUTHORIZATION,
            value,
        })
    }

    /// `<name>: <value>` (Azure's `api-key`, Anthropic's `x-api-key`).
    ///
    /// # Errors
    ///
    /// When the name or value cannot be a header.
    pub fn header(name: &str, value: &str) -> Result<Self, BoxError> {
        let mut value = HeaderValue::try_from(value)?;
        value.set_sensitive(true);
        Ok(Credentials {
            name: HeaderName::try_from(name)?,
            value,
        })
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Credentials")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Rewrite for Credentials {
    fn rewrite(&self, request: &mut http::Request<BufferedBody>) -> Result<(), BoxError> {
        let headers = request.headers_mut();
        // Which key headers the request has, found by one look along its few headers: cheaper
        // than hashing every key name to remove it, most of them absent. Ours needs no removal:
        // the insertion replaces every value it had.
        let mut present = 0u8;
        for name in headers.keys() {
            if let Some(i) = KEY_HEADERS.iter().position(|key| key == name) {
                present |= 1 << i;
            }
        }
        for (i, name) in KEY_HEADERS.iter().enumerate() {
            if present & (1 << i) != 0 && *name != self.name {
                headers.remove(name);
            }
        }
        headers.insert(self.name.clone(), self.value.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key header the request carried goes, each of its values; ours is there once; the
    /// other headers stay.
    #[test]
    fn credentials_leave_one_key_header_whatever_the_request_carried() {
        let carried: [&[(&str, &str)]; 4] = [
            &[],
            &[("content-type", "application/json")],
            &[
                ("authorization", "Bearer a"),
                ("authorization", "Bearer b"),
                ("x-goog-api-key", "g"),
                ("content-type", "application/json"),
                ("api-key", "z"),
                ("x-api-key", "x"),
            ],
            &[("x-api-key", "theirs"), ("accept", "*/*")],
        ];
        for ours in [
            Credentials::bearer("sk-ours").unwrap(),
            Credentials::header("x-api-key", "ours").unwrap(),
        ] {
            for headers in carried {
                let mut request = http::Request::post("/")
                    .body(BufferedBody::empty())
                    .unwrap();
                for &(name, value) in headers {
                    request.headers_mut().append(
                        HeaderName::from_static(name),
                        HeaderValue::from_static(value),
                    );
                }
                ours.rewrite(&mut request).unwrap();
                let sent = request.headers();
                for key in &KEY_HEADERS {
                    let expected = usize::from(*key == ours.name);
                    assert_eq!(sent.get_all(key).iter().count(), expected, "{key}");
                }
                assert_eq!(sent[&ours.name], ours.value);
                let others = |names: &mut dyn Iterator<Item = &str>| {
                    names
                        .filter(|name| !KEY_HEADERS.iter().any(|key| key == name))
                        .count()
                };
                assert_eq!(
                    others(&mut sent.keys().map(HeaderName::as_str)),
                    others(&mut headers.iter().map(|&(name, _)| name)),
                );
            }
        }
    }

    /// The endpoint worked out once for the chat path is the one each request would get.
    #[test]
    fn the_chat_endpoint_worked_out_once_is_the_one_worked_out_each_time() {
        let endpoints = [
            Endpoint::new("https://api.openai.com").unwrap(),
            Endpoint::new("https://api.groq.com/openai/v1/")
                .unwrap()
                .with_prefix_replaced("/v1"),
            Endpoint::new("https://az.example.com/openai/deployments/gpt-4o")
                .unwrap()
                .with_prefix_replaced("/v1")
                .with_query("api-version=2024-10-21"),
            Endpoint::new("http://127.0.0.1:8080").unwrap(),
        ];
        for endpoint in endpoints {
            let each_time = Endpoint {
                chat: None,
                ..endpoint.clone()
            };
            for uri in [
                CHAT_PATH,
                "https://x/v1/chat/completions",
                "/v1/chat/completions?a=1",
            ] {
                let mut once = http::Request::post(uri)
                    .body(BufferedBody::empty())
                    .unwrap();
                let mut again = http::Request::post(uri)
                    .body(BufferedBody::empty())
                    .unwrap();
                endpoint.rewrite(&mut once).unwrap();
                each_time.rewrite(&mut again).unwrap();
                assert_eq!(once.uri(), again.uri(), "{endpoint:?} {uri}");
            }
        }
    }

    /// The endpoint rewriter keeps whole path segments, replaces parameters, drops a stale
    /// `Host` and refuses a base with a query.
    #[test]
    fn the_endpoint_rewriter_handles_paths_queries_and_host() {
        let rewrite = |endpoint: &Endpoint, uri: &str| {
            let mut request = http::Request::post(uri)
                .header("host", "api.openai.com")
                .body(BufferedBody::empty())
                .unwrap();
            endpoint.rewrite(&mut request).unwrap();
            assert!(request.headers().get("host").is_none());
            request.uri().to_string()
        };
        let gateway = Endpoint::new("https://gw.example.com/google")
            .unwrap()
            .with_prefix_replaced("/v1/");
        assert_eq!(
            rewrite(&gateway, "https://x/v1beta/openai/chat/completions"),
            "https://gw.example.com/google/v1beta/openai/chat/completions"
        );
        assert_eq!(
            rewrite(&gateway, "https://x/v1/chat"),
            "https://gw.example.com/google/chat"
        );
        let azure = Endpoint::new("https://az.example.com")
            .unwrap()
            .with_prefix_replaced("/v1")
            .with_query("api-version=2025-01-01");
        assert_eq!(
            rewrite(&azure, "https://x/v1?api-version=2024-10-21&stream=true"),
            "https://az.example.com/?stream=true&api-version=2025-01-01"
        );
        assert!(Endpoint::new("https://az.example.com/openai?api-version=1").is_err());
        // Neither errors nor `Debug` show user info or query values.
        let error = Endpoint::new("https://az.example.com/openai?key=SECRET1").unwrap_err();
        assert_eq!(
            error.to_string(),
            "endpoint https://az.example.com/openai?key=<redacted> has a query: add it with `with_query`"
        );
        let with_user = Endpoint::new("https://user:SECRET2@az.example.com")
            .unwrap()
            .with_query("sig=SECRET3");
        let shown = format!("{with_user:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("https://<redacted>@az.example.com/?sig=<redacted>"),
            "{shown}"
        );
        assert!(Endpoint::new("/relative").is_err());
    }
}
