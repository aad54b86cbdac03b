//! What `Cache` costs over the bare always-ready service in the same run, for a 4 KiB JSON
//! request body: a hit (hashing the body, one store lookup, a response built from the stored
//! one), and a miss (a fresh body each iteration: hashing, a failed lookup of the raw body,
//! parsing and normalising the JSON, joining the in-flight map, a lookup of the normalised
//! body, the upstream call, reading its body and storing it). Run with
//! `cargo bench -p tollgate-cache`.

use std::convert::Infallible;
use std::num::NonZeroU64;
use std::task::{Context, Poll};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use tollgate_cache::{CACHE_HEADER, CacheConfig, CacheLayer, CacheStatus};
use tollgate_core::body::BufferedBody;
use tower::{Layer, Service};

// `support::Bare` answers an empty `()` body, which is not an `http_body::Body`; `Small` below
// is this bench's bare service.
#[allow(dead_code)]
#[path = "../../../benches/support/mod.rs"]
mod support;
use support::send;

/// An always-ready upstream answering a small body, as a provider's short chat answer.
#[derive(Debug, Clone, Copy)]
struct Small;

const ANSWER: &[u8] = br#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#;

impl Service<Request<BufferedBody>> for Small {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<BufferedBody>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(ANSWER)))))
    }
}

/// A chat request whose JSON body is 4 KiB, made distinct by `n`.
fn body_4k(n: u64) -> Bytes {
    let head =
        format!(r#"{{"model":"gpt-4o","user":"u{n}","messages":[{{"role":"user","content":""#);
    let tail = r#""}],"temperature":0.2}"#;
    let fill = 4096 - head.len() - tail.len();
    let mut body = String::with_capacity(4096);
    body.push_str(&head);
    body.extend(std::iter::repeat_n('a', fill));
    body.push_str(tail);
    assert_eq!(body.len(), 4096);
    Bytes::from(body)
}

/// The same, but not JSON: keyed by its raw bytes.
fn not_json_4k(n: u64) -> Bytes {
    let mut body = body_4k(n).to_vec();
    body[0] = b'#';
    Bytes::from(body)
}

fn request(body: Bytes) -> Request<BufferedBody> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench")
        .header(CACHE_HEADER, "on")
        .body(BufferedBody::new(body))
        .unwrap()
}

fn cache(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache, 4 KiB request body");
    group.throughput(Throughput::Elements(1));
    let body = body_4k(0);

    group.bench_function("bare", |b| {
        let mut service = Small;
        b.iter_batched(
            || request(body.clone()),
            |r| send(&mut service, r),
            BatchSize::SmallInput,
        );
    });

    group.bench_function("hit", |b| {
        let mut service = CacheLayer::new(CacheConfig::default()).layer(Small);
        let warm = send(&mut service, request(body.clone()));
        assert_eq!(CacheStatus::of(&warm), Some(CacheStatus::Miss));
        b.iter_batched(
            || request(body.clone()),
            |r| {
                let response = send(&mut service, r);
                debug_assert_eq!(CacheStatus::of(&response), Some(CacheStatus::Hit));
                response
            },
            BatchSize::SmallInput,
        );
    });

    // A fresh body each iteration, over a store kept full so that evictions are part of the
    // cost: JSON (normalised before the lookup), and not JSON (keyed raw), to show what the
    // normalisation costs.
    for (name, make) in [
        ("miss", body_4k as fn(u64) -> Bytes),
        ("miss, body not JSON", not_json_4k),
    ] {
        group.bench_function(name, |b| {
            let config = CacheConfig::default().with_max_entries(NonZeroU64::new(1_000).unwrap());
            let mut service = CacheLayer::new(config).layer(Small);
            let mut n = 0;
            b.iter_batched(
                || {
                    n += 1;
                    request(make(n))
                },
                |r| {
                    let response = send(&mut service, r);
                    debug_assert_eq!(CacheStatus::of(&response), Some(CacheStatus::Miss));
                    response
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::cache);
}
criterion_main!(harness::benches);
