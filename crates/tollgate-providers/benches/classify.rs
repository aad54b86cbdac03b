//! What `ClassifyLayer` (OpenAI's classifier) adds per response over the bare, always-ready
//! service, measured in the same run: a plain 200, and a 200 with OpenAI's six
//! `x-ratelimit-*` headers (against a bare service that sends the same headers). Run with
//! `cargo bench -p tollgate-providers --bench classify`.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use criterion::{Criterion, criterion_main};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::Empty;
use tollgate_providers::{ClassifyLayer, OpenAi};
use tower::{Layer, Service};

#[path = "../../../benches/support/mod.rs"]
#[allow(dead_code)] // `Bare` answers with no body; the classifier needs one
mod support;
use support::send;

/// An always-ready service answering 200 with the given headers and an empty body.
#[derive(Clone)]
struct WithHeaders(HeaderMap);

impl<B> Service<Request<B>> for WithHeaders {
    type Response = Response<Empty<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Empty<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut response = Response::new(Empty::new());
        *response.headers_mut() = self.0.clone();
        std::future::ready(Ok(response))
    }
}

fn rate_limit_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("content-type", "application/json"),
        ("x-request-id", "req_8f2c1d0e5b7a4c3e9d1f"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-limit-tokens", "30000000"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-remaining-tokens", "29999000"),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-reset-tokens", "2ms"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
}

fn plain_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "x-request-id",
        HeaderValue::from_static("req_8f2c1d0e5b7a4c3e9d1f"),
    );
    headers
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    let request = || Request::new(());
    let layer = ClassifyLayer::new(OpenAi::new());

    let mut plain = WithHeaders(plain_headers());
    group.bench_function("bare, plain 200", |b| {
        b.iter(|| send(&mut plain, request()))
    });
    let mut classified = layer.layer(WithHeaders(plain_headers()));
    group.bench_function("classify, plain 200", |b| {
        b.iter(|| send(&mut classified, request()))
    });
    let mut limits = WithHeaders(rate_limit_headers());
    group.bench_function("bare, 200 with rate-limit headers", |b| {
        b.iter(|| send(&mut limits, request()))
    });
    let mut classified = layer.layer(WithHeaders(rate_limit_headers()));
    group.bench_function("classify, 200 with rate-limit headers", |b| {
        b.iter(|| send(&mut classified, request()))
    });
    group.finish();
}

fn benches() {
    let mut criterion = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .configure_from_args();
    bench(&mut criterion);
}

criterion_main!(benches);
