//! `CacheLayer`'s request key (the body's JSON normalisation) on arbitrary request bodies,
//! through the public service: the normaliser itself is private to `tollgate-cache`.
//!
//! Input layout:
//!
//! | bytes | meaning |
//! |---|---|
//! | up to the first `0xff` (or all) | body `a` |
//! | after the first `0xff`, if any | body `b` (`0xff` is never in valid JSON text) |
//!
//! Each input gets new caches over an always-ready upstream that counts its calls, polled with
//! a no-op waker (no runtime: the cache reads tokio's clock, which is the system clock outside
//! a runtime, and every path here answers at once).
//!
//! Checks: no panic; `a`, opted in, is a miss that calls upstream once, and `a` again is a hit
//! with the stored answer and no call; `a` with a trailing space is a hit exactly when `a` is
//! JSON (as `serde_json::Value` reads it), else a miss; `b` after them is a hit only when it
//! is byte-identical to one of them or both are JSON and equal as `serde_json::Value` (equal
//! values with numbers written differently may miss: never a wrong answer); with
//! `deterministic` on and no opt-in, `a` is cached exactly when it is a JSON object with
//! `"temperature": 0` and `n` absent, null or 1.

#![no_main]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_cache::{CACHE_HEADER, CacheConfig, CacheLayer, CacheStatus};
use tollgate_core::body::BufferedBody;
use tower_layer::Layer;
use tower_service::Service;

const ANSWER: &[u8] = b"{\"answer\":1}";

/// An always-ready upstream answering 200 with [`ANSWER`], counting its calls.
#[derive(Clone)]
struct Upstream(Arc<AtomicUsize>);

impl Service<Request<BufferedBody>> for Upstream {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<BufferedBody>) -> Self::Future {
        self.0.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(ANSWER)))))
    }
}

/// Polls `future` once: everything here answers at once.
fn now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("pending without a runtime"),
    }
}

/// Sends `body` through `service`, opted in or not, and returns the status and the body read.
fn send<S, B>(service: &mut S, body: &Bytes, opted: bool) -> (Option<CacheStatus>, Bytes)
where
    S: Service<Request<BufferedBody>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut request = Request::post("https://api.example.com/v1/chat/completions")
        .header("authorization", "Bearer sk-fuzz");
    if opted {
        request = request.header(CACHE_HEADER, "on");
    }
    let request = request
        .body(BufferedBody::new(body.clone()))
        .expect("valid request");
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("always ready"),
    }
    let response = now(service.call(request)).expect("infallible");
    let status = CacheStatus::of(&response);
    let bytes = now(response.into_body().collect())
        .expect("no body error")
        .to_bytes();
    (status, bytes)
}

fn json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// `"temperature": 0` and `n` absent, null or 1, in an object.
fn deterministic(value: Option<&Value>) -> bool {
    let Some(Value::Object(map)) = value else {
        return false;
    };
    let zero = map.get("temperature").and_then(Value::as_f64) == Some(0.0);
    let one = match map.get("n") {
        None | Some(Value::Null) => true,
        Some(n) => n.as_f64() == Some(1.0),
    };
    zero && one
}

fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|&byte| byte == 0xff) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let a = Bytes::copy_from_slice(a);
    let a_json = json(&a);

    let calls = Arc::new(AtomicUsize::new(0));
    let mut cache = CacheLayer::new(CacheConfig::default()).layer(Upstream(Arc::clone(&calls)));

    let (first, body) = send(&mut cache, &a, true);
    assert_eq!(first, Some(CacheStatus::Miss), "first request");
    assert_eq!(body, ANSWER);
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    let (second, body) = send(&mut cache, &a, true);
    assert_eq!(second, Some(CacheStatus::Hit), "same bytes again");
    assert_eq!(body, ANSWER);
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // Whitespace after a JSON value does not change it; after anything else it does.
    let mut spaced = a.to_vec();
    spaced.push(b' ');
    let spaced = Bytes::from(spaced);
    let (third, _) = send(&mut cache, &spaced, true);
    let expected = if a_json.is_some() {
        CacheStatus::Hit
    } else {
        CacheStatus::Miss
    };
    assert_eq!(
        third,
        Some(expected),
        "trailing space, body is JSON: {}",
        a_json.is_some()
    );

    if let Some(b) = b {
        let (status, _) = send(&mut cache, &Bytes::copy_from_slice(b), true);
        if status == Some(CacheStatus::Hit) {
            let same_bytes = b == &a[..] || b == &spaced[..];
            let same_value = a_json.is_some() && json(b) == a_json;
            assert!(same_bytes || same_value, "a different body hit");
        }
    }

    // Cached without opting in exactly when deterministic.
    let mut cache = CacheLayer::new(CacheConfig::default().with_deterministic(true))
        .layer(Upstream(Arc::new(AtomicUsize::new(0))));
    let (status, _) = send(&mut cache, &a, false);
    let expected = if deterministic(a_json.as_ref()) {
        CacheStatus::Miss
    } else {
        CacheStatus::Bypass
    };
    assert_eq!(status, Some(expected), "deterministic");
});
