//! The request a fallback target gets is the original: method, URI, version, every header in
//! its order (a sensitive one still sensitive, repeated names), extensions and body; and the
//! primary gets the request exactly as it was sent.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use tollgate_core::BoxError;
use tollgate_core::body::BufferedBody;
use tollgate_fallback::{FallbackConfig, FallbackLayer, Target};
use tower::{Layer, Service, ServiceExt};

/// An extension the test follows through the targets.
#[derive(Debug, Clone, PartialEq)]
struct Tag(&'static str);

/// What one target received.
#[derive(Debug, PartialEq)]
struct Seen {
    method: Method,
    uri: http::Uri,
    version: Version,
    headers: Vec<(String, Vec<u8>, bool)>,
    tag: Option<Tag>,
    body: bytes::Bytes,
}

/// Answers `status`, logging what it received.
#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    status: StatusCode,
}

impl Service<Request<BufferedBody>> for Recorder {
    type Response = Response<()>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response<()>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        self.seen.lock().unwrap().push(Seen {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            headers: pairs(request.headers()),
            tag: request.extensions().get::<Tag>().cloned(),
            body: request.body().bytes().clone(),
        });
        let mut response = Response::new(());
        *response.status_mut() = self.status;
        std::future::ready(Ok(response))
    }
}

fn pairs(headers: &HeaderMap) -> Vec<(String, Vec<u8>, bool)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec(), v.is_sensitive()))
        .collect()
}

fn request() -> Request<BufferedBody> {
    let mut secret = HeaderValue::from_str("Bearer sk-test").unwrap();
    secret.set_sensitive(true);
    let mut request = Request::post("https://api.openai.com/v1/chat/completions?x=1")
        .version(Version::HTTP_2)
        .header("content-type", "application/json")
        .header("authorization", secret)
        .header("x-trace", "one")
        .header("accept", "*/*")
        .header("x-trace", "two")
        .header("x-empty", "")
        .body(BufferedBody::from(r#"{"model":"gpt-4o"}"#))
        .unwrap();
    request.extensions_mut().insert(Tag("kept"));
    request
}

/// What the primary and two fallback targets received for `request`: the primary and the
/// second answer 503, the third 200 (which the caller gets).
async fn through_three_targets(request: Request<BufferedBody>) -> Vec<Seen> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let failing = |status| Recorder {
        seen: Arc::clone(&seen),
        status,
    };
    let layer = FallbackLayer::new(FallbackConfig::new([
        Target::new("second", failing(StatusCode::SERVICE_UNAVAILABLE)),
        Target::new("third", failing(StatusCode::OK)),
    ]));
    let service = layer.layer(failing(StatusCode::SERVICE_UNAVAILABLE));
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(seen.len(), 3);
    seen
}

#[tokio::test(start_paused = true)]
async fn every_target_gets_the_same_request() {
    let seen = through_three_targets(request()).await;
    assert_eq!(seen[0].headers, pairs(request().headers()));
    assert_eq!(seen[0].tag, Some(Tag("kept")));
    assert_eq!(seen[0].version, Version::HTTP_2);
    assert_eq!(seen[1], seen[0]);
    assert_eq!(seen[2], seen[0]);
}

/// A request without headers (kept as nothing, not packed) reaches every target without
/// headers, the rest of it as sent.
#[tokio::test(start_paused = true)]
async fn a_request_without_headers_reaches_every_target_without_headers() {
    let mut bare = Request::new(BufferedBody::from("{}"));
    bare.extensions_mut().insert(Tag("kept"));
    let seen = through_three_targets(bare).await;
    assert!(seen[0].headers.is_empty());
    assert_eq!(seen[0].tag, Some(Tag("kept")));
    assert_eq!(seen[0].body, bytes::Bytes::from("{}"));
    assert_eq!(seen[1], seen[0]);
    assert_eq!(seen[2], seen[0]);
}
