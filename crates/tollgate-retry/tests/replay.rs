//! A retried request is the original: method, URI, version, every header in its order (a
//! sensitive one still sensitive, repeated names, values that cannot be packed), extensions
//! and body; and the first attempt gets the request exactly as it was sent.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Method, Request, Response, Version};
use tollgate_core::body::BufferedBody;
use tollgate_core::{BoxError, ErrorClass, Verdict};
use tollgate_retry::{Backoff, RetryLayer, RetryPolicy, judge_fn};
use tower::{Layer, Service, ServiceExt};

/// An extension the test follows through the attempts.
#[derive(Debug, Clone, PartialEq)]
struct Tag(&'static str);

/// What one attempt received.
#[derive(Debug, PartialEq)]
struct Seen {
    method: Method,
    uri: http::Uri,
    version: Version,
    headers: Vec<(String, Vec<u8>, bool)>,
    tag: Option<Tag>,
    body: bytes::Bytes,
}

/// Answers 503 to every attempt but the last of `attempts`, logging what each received.
#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    attempts: usize,
}

impl Service<Request<BufferedBody>> for Recorder {
    type Response = Response<()>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response<()>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let mut seen = self.seen.lock().unwrap();
        seen.push(Seen {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            headers: pairs(request.headers()),
            tag: request.extensions().get::<Tag>().cloned(),
            body: request.body().bytes().clone(),
        });
        let mut response = Response::new(());
        if seen.len() < self.attempts {
            *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        }
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
        .header("x-obs", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap())
        .body(BufferedBody::from(r#"{"model":"gpt-4o"}"#))
        .unwrap();
    request.extensions_mut().insert(Tag("kept"));
    request
}

fn fast() -> RetryPolicy {
    RetryPolicy::default().with_backoff(Backoff::exponential(
        std::time::Duration::from_millis(1),
        std::time::Duration::from_millis(1),
    ))
}

async fn attempts_of(request: Request<BufferedBody>, attempts: usize) -> Vec<Seen> {
    let recorder = Recorder {
        seen: Arc::default(),
        attempts,
    };
    let service = RetryLayer::new(fast()).layer(recorder.clone());
    service.oneshot(request).await.unwrap();
    let seen = std::mem::take(&mut *recorder.seen.lock().unwrap());
    assert_eq!(seen.len(), attempts);
    seen
}

#[tokio::test(start_paused = true)]
async fn every_attempt_gets_the_same_request() {
    let seen = attempts_of(request(), 3).await;
    let original = &seen[0];
    let expected = request();
    assert_eq!(original.headers, pairs(expected.headers()));
    assert_eq!(original.tag, Some(Tag("kept")));
    assert_eq!(original.version, Version::HTTP_2);
    assert_eq!(seen[1], *original);
    assert_eq!(seen[2], *original);
}

#[tokio::test(start_paused = true)]
async fn requests_without_headers_and_with_empty_values_come_back_too() {
    let seen = attempts_of(Request::new(BufferedBody::empty()), 2).await;
    assert_eq!(seen[1], seen[0]);
    let empty = Request::get("/")
        .header("x-empty", "")
        .body(BufferedBody::empty())
        .unwrap();
    let seen = attempts_of(empty, 2).await;
    assert_eq!(seen[1], seen[0]);
    assert_eq!(seen[1].headers, vec![("x-empty".into(), vec![], false)]);
}

/// A judge of another kind keeps the request whole; it is replayed all the same.
#[tokio::test(start_paused = true)]
async fn a_custom_judge_replays_a_whole_copy() {
    let recorder = Recorder {
        seen: Arc::default(),
        attempts: 2,
    };
    let judge = judge_fn(|outcome: Result<&Response<()>, &BoxError>| match outcome {
        Ok(r) if r.status().is_success() => Verdict::success(),
        _ => Verdict::failure(ErrorClass::ServerError),
    });
    let service = RetryLayer::new(fast())
        .with_judge(judge)
        .layer(recorder.clone());
    service.oneshot(request()).await.unwrap();
    let seen = recorder.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1], seen[0]);
}
