//! What `ClassifyLayer` (OpenAI's classifier) adds per response over the bare, always-ready
//! service, measured in the same run, on the facade's peers-bench shapes: a small chat request
//! (`http::Request<BufferedBody>`, built untimed) answered with `http::Response<Full<Bytes>>`,
//! dropped inside the timing. Three answers, each against a bare service that sends the same
//! one: a plain 200 (no headers), a 200 with OpenAI's six `x-ratelimit-*` headers, and a 200
//! with `content-type`, `x-request-id` and the six. One more row, the plain 200 with a verdict
//! inserted into its extensions by hand, is the floor of any layer that attaches one. Run with
//! `cargo bench -p tollgate-providers --bench classify`.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::Full;
use tollgate_core::Verdict;
use tollgate_providers::{ClassifyLayer, OpenAi};
use tower::{Layer, Service};

#[path = "../../../benches/support/mod.rs"]
#[allow(dead_code)] // `Bare` answers with no body; the classifier needs one
mod support;
use support::send;
#[path = "../../../benches/support/chat.rs"]
#[allow(dead_code)] // `Wire`: this bench answers with headers of its own
mod chat;
use chat::chat;

/// An always-ready service answering 200 with the given headers (cloned, when there are any)
/// and an empty `Full<Bytes>` body, as the facade's peers bench answers.
#[derive(Clone)]
struct Wire(HeaderMap);

/// The floor of any classify layer: the bare service, then a success's `Verdict` inserted into
/// the response's empty extensions (where every layer above reads it) — three allocations.
#[derive(Clone)]
struct WithVerdict(Wire);

impl<B> Service<Request<B>> for WithVerdict {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut response = send(&mut self.0, request);
        let verdict = Verdict::success().with_status(response.status());
        response.extensions_mut().insert(verdict);
        std::future::ready(Ok(response))
    }
}

impl<B> Service<Request<B>> for Wire {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut response = Response::new(Full::new(Bytes::new()));
        if !self.0.is_empty() {
            *response.headers_mut() = self.0.clone();
        }
        std::future::ready(Ok(response))
    }
}

const RATE_LIMIT_HEADERS: [(&str, &str); 6] = [
    ("x-ratelimit-limit-requests", "10000"),
    ("x-ratelimit-limit-tokens", "30000000"),
    ("x-ratelimit-remaining-requests", "9999"),
    ("x-ratelimit-remaining-tokens", "29999000"),
    ("x-ratelimit-reset-requests", "6ms"),
    ("x-ratelimit-reset-tokens", "2ms"),
];

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for &(name, value) in pairs {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(1));
    let layer = ClassifyLayer::new(OpenAi::new());
    let batch = BatchSize::SmallInput;

    let mut with_ids = vec![
        ("content-type", "application/json"),
        ("x-request-id", "req_8f2c1d0e5b7a4c3e9d1f"),
    ];
    with_ids.extend(RATE_LIMIT_HEADERS);
    let answers = [
        ("plain 200", HeaderMap::new()),
        (
            "200 with 6 rate-limit headers",
            headers(&RATE_LIMIT_HEADERS),
        ),
        (
            "200 with content-type, request id and 6 rate-limit headers",
            headers(&with_ids),
        ),
    ];
    for (i, (name, answer)) in answers.into_iter().enumerate() {
        let mut bare = Wire(answer.clone());
        group.bench_function(format!("bare, {name}"), |b| {
            b.iter_batched(chat, |r| send(&mut bare, r).status(), batch)
        });
        if i == 0 {
            let mut floor = WithVerdict(Wire(answer.clone()));
            group.bench_function(format!("bare + a verdict inserted, {name}"), |b| {
                b.iter_batched(chat, |r| send(&mut floor, r).status(), batch)
            });
        }
        let mut classified = layer.layer(Wire(answer));
        group.bench_function(format!("classify, {name}"), |b| {
            b.iter_batched(chat, |r| send(&mut classified, r).status(), batch)
        });
    }
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
