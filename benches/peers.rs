//! Every tollgate layer beside its peers, in one run: what each adds per request over the bare,
//! always-ready service measured in the same run, and the same for tower's `RateLimit`,
//! `ConcurrencyLimit` and `Retry` (with a policy that only keeps a copy of each request) and
//! tower-resilience's `RateLimiter` and `CircuitBreaker`. Run with
//! `cargo bench --bench peers`; at the end it prints a markdown table of the figures.
//!
//! Two groups:
//!
//! - **peers**: one request at a time on one thread, each service readied, called and its
//!   response polled once (`support::send`), every path answering at once. Every row sends the
//!   same `http::Request<BufferedBody>` (a small chat request: two headers, a 62-byte JSON
//!   body, built outside the timing) to the same always-ready [`Wire`], which answers an
//!   `http::Response<Full<Bytes>>`; the response is dropped inside the timing, so that what a
//!   layer does when its response or body is dropped (a concurrency slot freed, a metric
//!   recorded) counts. Every limit is configured never to make a request wait nor refuse it:
//!   quotas of 10^12 and more, 64 free slots, closed breakers that never see a failure. Rows
//!   that send or answer something else have a baseline of their own, measured in the same
//!   run: keyed requests (a `RouteKey` and a `Cost` in their extensions), a response with six
//!   `x-ratelimit-*` headers, and the ready stack's ~1 KiB chat completion answered with a
//!   JSON body that is read to its end.
//! - **contended**: the ready stack on a multi-threaded tokio runtime, its primary keeping a
//!   quota for each of 10,000 models (see [`contended`]), as throughput: one task on a
//!   runtime of one worker thread, then two tasks on a runtime of two. The ratio printed at
//!   the end is 2-thread throughput ÷ (2 × 1-thread throughput): 1 is perfect scaling. The
//!   bare transport is measured the same way, as the scaling the machine itself allows during
//!   the run.
//!
//! Each figure of the table is criterion's median time per iteration (steadier than its mean
//! or slope when other jobs share the machine), read back from
//! `<target>/criterion/<group>/<id>/new/estimates.json` once both groups ran: it may differ
//! a little from the estimate criterion prints above it.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tollgate::body::BufferedBody;
use tollgate::circuit_breaker::{BreakerConfig, CircuitBreakerLayer};
use tollgate::concurrency::{ConcurrencyConfig, ConcurrencyLayer};
use tollgate::fallback::{FallbackConfig, FallbackLayer, Target};
use tollgate::metrics::MetricsLayer;
use tollgate::providers::rewrite::SetModel;
use tollgate::providers::{ClassifyLayer, OpenAi};
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::presets::{AnthropicModel, OpenAiTier};
use tollgate::ratelimit::{ByRouteKey, Limit, Limits, RateLimitLayer};
use tollgate::retry::{RetryLayer, RetryPolicy};
use tollgate::stack::{Provider, Stack, StackBuilder};
use tollgate::{Cost, Dimension, RouteKey};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

#[allow(dead_code)] // `Bare` answers `Response<()>`, which `ClassifyLayer` cannot read: see `Wire`
mod support;
use support::send;
#[path = "support/clone_only.rs"]
mod clone_only;
use clone_only::CloneOnly;

const fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

// ===== the bare service =====

/// The always-ready service under every row: answers 200 at once with its headers and body
/// (cloned: a `Bytes` clone and, when there are headers, a `HeaderMap` clone), for any request
/// body. Unlike `support::Bare` it answers with a body, `Full<Bytes>`, so that `ClassifyLayer`
/// and the ready stack can sit on it.
#[derive(Debug, Clone)]
struct Wire {
    headers: HeaderMap,
    body: Bytes,
}

impl Wire {
    /// No headers, an empty body.
    fn plain() -> Self {
        Wire {
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// The six rate-limit headers OpenAI sends with every answer.
    fn with_rate_limit_headers() -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-limit-tokens", "30000000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-remaining-tokens", "29999000"),
            ("x-ratelimit-reset-requests", "6ms"),
            ("x-ratelimit-reset-tokens", "2ms"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        Wire {
            headers,
            body: Bytes::new(),
        }
    }

    /// A plain (not streamed) chat completion with its usage, as OpenAI answers it.
    fn chat_completion() -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Wire {
            headers,
            body: Bytes::from_static(CHAT_COMPLETION.as_bytes()),
        }
    }
}

const CHAT_COMPLETION: &str = r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":231,"completion_tokens":10,"total_tokens":241,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_44709d6fcb"}"#;

impl<B> Service<Request<B>> for Wire {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut response = Response::new(Full::new(self.body.clone()));
        if !self.headers.is_empty() {
            *response.headers_mut() = self.headers.clone();
        }
        std::future::ready(Ok(response))
    }
}

// ===== requests =====

/// A chat request as a client sends it: a JSON body, a couple of headers (the retry and
/// fallback benches' "chat request").
fn chat() -> Request<BufferedBody> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench")
        .body(BufferedBody::from(
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .unwrap()
}

/// Keyed requests: the chat request with one of 64 keys and a token cost, as the rate limit's
/// own bench sends them.
struct Keyed {
    keys: Vec<RouteKey>,
    next: usize,
}

impl Keyed {
    fn new() -> Self {
        Keyed {
            keys: (0..64)
                .map(|i| RouteKey::new(format!("model-{i}")))
                .collect(),
            next: 0,
        }
    }

    fn next(&mut self) -> Request<BufferedBody> {
        self.next = (self.next + 1) % self.keys.len();
        let mut request = chat();
        let extensions = request.extensions_mut();
        extensions.insert(self.keys[self.next].clone());
        extensions.insert(Cost::requests(1).with(Dimension::Tokens, 1_000));
        request
    }
}

/// A ~1 KiB chat-completion body for `model` (1,025 bytes for `gpt-4o`), its fields in the order the OpenAI SDKs write
/// them (`messages` first: a keyer reading the `model` goes through the whole body).
fn chat_body(model: &str) -> Bytes {
    const SYSTEM: &str = "You are a careful assistant for a support team. Answer in plain \
        English, in at most three short paragraphs, and say so when you do not know. Quote \
        the user's error messages exactly, and never guess a version number.";
    const QUESTION: &str = "Our nightly export job started failing after the upgrade. The log \
        says the connection was reset while streaming the second batch, and the retry gives \
        up after three attempts. The same job works when we run it by hand in the afternoon. \
        We changed nothing in the job itself, only the client library and the base image. ";
    let mut user = String::new();
    while user.len() + QUESTION.len() <= 700 {
        user.push_str(QUESTION);
    }
    let user = user.trim_end();
    let body = format!(
        r#"{{"messages":[{{"role":"system","content":"{SYSTEM}"}},{{"role":"user","content":"{user} What should we check first?"}}],"model":"{model}","max_tokens":256,"temperature":0.2,"user":"bench-user-42"}}"#
    );
    Bytes::from(body)
}

/// The ready stack's request: `body` posted as a client would, with its own credentials
/// (the stack replaces them).
fn stack_request(body: Bytes) -> Request<BufferedBody> {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-caller")
        .body(BufferedBody::from(body))
        .unwrap()
}

// ===== layers configured never to wait nor refuse =====

fn unkeyed() -> RateLimitLayer {
    RateLimitLayer::new(Limits::new([Limit::requests(Quota::per_second(n(
        1_000_000_000_000,
    )))]))
}

fn keyed() -> RateLimitLayer<ByRouteKey> {
    RateLimitLayer::new(Limits::new([
        Limit::requests(Quota::per_minute(n(1_000_000_000_000))),
        Limit::tokens(Quota::per_minute(n(1_000_000_000_000))),
        Limit::tokens(Quota::per_day(n(1_000_000_000_000_000))),
    ]))
    .keyed_by(ByRouteKey)
}

/// Requests and tokens no bench can spend: the ready stack's limits, in place of a tier's.
fn huge() -> Limits {
    Limits::new([
        Limit::requests(Quota::per_minute(n(1_000_000_000_000))),
        Limit::tokens(Quota::per_minute(n(1_000_000_000_000))),
        Limit::tokens(Quota::per_day(n(1_000_000_000_000_000))),
    ])
}

/// The ready stack over `wire`: OpenAI as primary (every other default kept: the adaptive
/// limit, the time limits per attempt, the default retry policy and breaker), Anthropic as
/// fallback, metrics outermost. With `models`, the primary has no model of its own and keeps
/// a quota per model of the list (`Provider::with_models`); without, every request is sent as
/// `gpt-4o`.
fn ready_stack(wire: Wire, models: Option<Vec<String>>) -> Stack {
    let primary = Provider::openai(OpenAiTier::Tier3)
        .with_api_key("sk-bench")
        .with_limits(huge());
    let primary = match models {
        None => primary.with_model("gpt-4o"),
        Some(models) => primary.with_models(models),
    };
    StackBuilder::new(primary)
        .with_fallback(
            Provider::anthropic(AnthropicModel::Sonnet4)
                .with_model("claude-sonnet-4-5")
                .with_api_key("sk-ant-bench")
                .with_limits(huge()),
        )
        .with_metrics(MetricsLayer::new("chat"))
        .build(wire)
        .expect("a stack")
}

/// Reads `body` to its end, every frame ready at once; the bytes read.
fn drain<B: Body + Unpin>(mut body: B) -> usize
where
    B::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut read = 0;
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(frame)) => {
                if let Ok(data) = frame.expect("the body reads").into_data() {
                    read += bytes::Buf::remaining(&data);
                }
            }
            Poll::Ready(None) => return read,
            Poll::Pending => panic!("every frame is ready at once"),
        }
    }
}

// ===== the groups =====

/// The ids of the `peers` group, in the order they run.
mod id {
    pub(crate) const BARE: &str = "bare";
    pub(crate) const TOWER_RATE: &str = "tower RateLimit";
    pub(crate) const TOWER_CONCURRENCY: &str = "tower ConcurrencyLimit";
    pub(crate) const TOWER_RETRY: &str = "tower Retry, cloning the request";
    pub(crate) const RESILIENCE_RATE: &str = "tower-resilience RateLimiter";
    pub(crate) const RESILIENCE_BREAKER: &str = "tower-resilience CircuitBreaker";
    pub(crate) const UNKEYED: &str = "rate limit, unkeyed, 1 dimension";
    pub(crate) const BARE_KEYED: &str = "bare, keyed requests";
    pub(crate) const KEYED: &str = "rate limit, keyed, 3 dimensions";
    pub(crate) const CONCURRENCY: &str = "concurrency";
    pub(crate) const BREAKER: &str = "circuit breaker, closed";
    pub(crate) const RETRY: &str = "retry, first try succeeds";
    pub(crate) const FALLBACK: &str = "fallback, first target succeeds";
    pub(crate) const METRICS: &str = "metrics, no recorder";
    pub(crate) const CLASSIFY: &str = "classify (OpenAI), plain 200";
    pub(crate) const BARE_HEADERS: &str = "bare, with headers";
    pub(crate) const CLASSIFY_HEADERS: &str = "classify (OpenAI), 200 with 6 headers";
    pub(crate) const COMPOSED: &str = "five layers by hand";
    pub(crate) const BARE_CHAT: &str = "bare, chat completion";
    pub(crate) const STACK: &str = "ready stack";

    pub(crate) const BARE_ONE: &str = "bare, 1 thread";
    pub(crate) const STACK_ONE: &str = "ready stack, 1 thread";
    pub(crate) const BARE_TWO: &str = "bare, 2 threads";
    pub(crate) const STACK_TWO: &str = "ready stack, 2 threads";
}

fn peers(c: &mut Criterion) {
    let batch = BatchSize::SmallInput;
    let mut group = c.benchmark_group("peers");
    group.throughput(Throughput::Elements(1));

    group.bench_function(id::BARE, |b| {
        let mut service = Wire::plain();
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });

    // tower's `RateLimit` arms its sleep when built, which needs a tokio runtime with a timer;
    // its calls do not (they read the clock, and sleep only when the rate is spent).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    group.bench_function(id::TOWER_RATE, |b| {
        let mut service = {
            let _context = runtime.enter();
            tower::limit::RateLimitLayer::new(u64::MAX, Duration::from_secs(1)).layer(Wire::plain())
        };
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::TOWER_CONCURRENCY, |b| {
        let mut service = tower::limit::ConcurrencyLimitLayer::new(64).layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::TOWER_RETRY, |b| {
        let mut service = tower::retry::RetryLayer::new(CloneOnly).layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::RESILIENCE_RATE, |b| {
        // A fixed window of 10^12 permits a second: never spent, so never a wait.
        let layer = tower_resilience::ratelimiter::RateLimiterLayer::builder()
            .limit_for_period(1_000_000_000_000)
            .refresh_period(Duration::from_secs(1))
            .build()
            .expect("a rate limiter");
        let mut service = layer.layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::RESILIENCE_BREAKER, |b| {
        // The defaults: it opens on errors, and the wire never fails.
        let layer = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
            .build()
            .expect("a breaker");
        let mut service = layer.layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });

    group.bench_function(id::UNKEYED, |b| {
        let mut service = unkeyed().layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::BARE_KEYED, |b| {
        let mut service = Wire::plain();
        let mut requests = Keyed::new();
        b.iter_batched(
            || requests.next(),
            |r| send(&mut service, r).status(),
            batch,
        );
    });
    group.bench_function(id::KEYED, |b| {
        let mut service = keyed().layer(Wire::plain());
        let mut requests = Keyed::new();
        b.iter_batched(
            || requests.next(),
            |r| send(&mut service, r).status(),
            batch,
        );
    });
    group.bench_function(id::CONCURRENCY, |b| {
        // The default: the slot is held until the body ends (here, is dropped).
        let mut service = ConcurrencyLayer::new(ConcurrencyConfig::new(64)).layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::BREAKER, |b| {
        let mut service = CircuitBreakerLayer::new(BreakerConfig::default()).layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::RETRY, |b| {
        let mut service = RetryLayer::new(RetryPolicy::default()).layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::FALLBACK, |b| {
        let layer = FallbackLayer::new(FallbackConfig::new([
            Target::new("second", Wire::plain()).with_rewrite(SetModel::new("gpt-4o-mini"))
        ]));
        let mut service = layer.layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::METRICS, |b| {
        let mut service = MetricsLayer::new("openai").layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::CLASSIFY, |b| {
        let mut service = ClassifyLayer::new(OpenAi::new()).layer(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::BARE_HEADERS, |b| {
        let mut service = Wire::with_rate_limit_headers();
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function(id::CLASSIFY_HEADERS, |b| {
        let mut service = ClassifyLayer::new(OpenAi::new()).layer(Wire::with_rate_limit_headers());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });

    group.bench_function(id::COMPOSED, |b| {
        // Outermost first, each configured as in its own row.
        let mut service = ServiceBuilder::new()
            .layer(RetryLayer::new(RetryPolicy::default()))
            .layer(CircuitBreakerLayer::new(BreakerConfig::default()))
            .layer(unkeyed())
            .layer(ConcurrencyLayer::new(ConcurrencyConfig::new(64)))
            .layer(ClassifyLayer::new(OpenAi::new()))
            .service(Wire::plain());
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });

    // The ready stack and its baseline: a ~1 KiB request, the answer's body read to its end.
    // The stack's time limits arm tokio timers, so both run inside the runtime's context (the
    // runtime is not driven: every path answers at once).
    let body = chat_body("gpt-4o");
    let request = || stack_request(body.clone());
    let _context = runtime.enter();
    group.bench_function(id::BARE_CHAT, |b| {
        let mut service = Wire::chat_completion();
        b.iter_batched(request, |r| drain(send(&mut service, r).into_body()), batch);
    });
    group.bench_function(id::STACK, |b| {
        let mut service = ready_stack(Wire::chat_completion(), None);
        b.iter_batched(request, |r| drain(send(&mut service, r).into_body()), batch);
    });
    group.finish();
}

/// How many models the contended stack keeps a quota for.
const MODELS: usize = 10_000;

/// The ready stack under two threads, against the same on one; and the same for the bare
/// transport, which tells how far this machine, at the time of the run, lets two threads
/// scale at all.
///
/// A ready stack keys its quotas by the request's model, among the models it knows — the
/// provider's own (`with_model`), those given to `with_models`, and the context-window
/// table's families; every other name shares one quota — so that varying the model neither
/// bypasses the quota nor grows memory. Its API keys are no key dimension here: several keys
/// go to a router, one deployment each, at most 64. So the primary here has no model of its
/// own and knows 10,000 (`model-00000` to `model-09999`); each request names one of them,
/// each task walking through all of them from its own starting point, and each model gets its
/// own quota. Each task runs `iters` requests one after another (readied, called, body read
/// to its end); the time is the wall time from the first task's start to the last one's end.
fn contended(c: &mut Criterion) {
    let names: Vec<String> = (0..MODELS).map(|i| format!("model-{i:05}")).collect();
    let bodies: Arc<[Bytes]> = names.iter().map(|name| chat_body(name)).collect();
    let mut group = c.benchmark_group("contended");
    for (threads, bare, stack) in [
        (1, id::BARE_ONE, id::STACK_ONE),
        (2, id::BARE_TWO, id::STACK_TWO),
    ] {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("a runtime");
        group.throughput(Throughput::Elements(threads as u64));
        let wire = Wire::chat_completion();
        group.bench_function(bare, |b| {
            b.iter_custom(|iters| run(&runtime, &wire, &bodies, threads, iters));
        });
        let service = ready_stack(Wire::chat_completion(), Some(names.clone()));
        group.bench_function(stack, |b| {
            b.iter_custom(|iters| run(&runtime, &service, &bodies, threads, iters));
        });
    }
    group.finish();
}

/// Runs `iters` requests in each of `tasks` tasks on `runtime`, each task with its own clone
/// of `service`; the wall time they took.
fn run<S, B>(
    runtime: &tokio::runtime::Runtime,
    service: &S,
    bodies: &Arc<[Bytes]>,
    tasks: usize,
    iters: u64,
) -> Duration
where
    S: Service<Request<BufferedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
    B: Body + Unpin + Send,
    B::Data: Send,
    B::Error: std::fmt::Debug,
{
    runtime.block_on(async {
        // Wall time is what a throughput benchmark measures; nothing here runs on tokio's
        // paused clock.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let mut service = service.clone();
                let bodies = Arc::clone(bodies);
                tokio::spawn(async move {
                    // Tasks start half the models apart, as independent callers would.
                    let mut next = task * bodies.len() / tasks;
                    for _ in 0..iters {
                        next = (next + 1) % bodies.len();
                        let request = stack_request(bodies[next].clone());
                        let ready = service.ready().await.expect("always ready");
                        let response = ready.call(request).await.expect("a 200");
                        let mut body = response.into_body();
                        while let Some(frame) = body.frame().await {
                            frame.expect("the body reads");
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.expect("the task finished");
        }
        start.elapsed()
    })
}

// ===== the report =====

/// A row of the table: a baseline, or a tollgate row with its baseline and its peers.
struct Row {
    id: &'static str,
    baseline: Option<&'static str>,
    peers: &'static [&'static str],
}

const ROWS: &[Row] = &[
    Row {
        id: id::BARE,
        baseline: None,
        peers: &[],
    },
    Row {
        id: id::UNKEYED,
        baseline: Some(id::BARE),
        peers: &[id::TOWER_RATE, id::RESILIENCE_RATE],
    },
    Row {
        id: id::BARE_KEYED,
        baseline: None,
        peers: &[],
    },
    Row {
        id: id::KEYED,
        baseline: Some(id::BARE_KEYED),
        peers: &[],
    },
    Row {
        id: id::CONCURRENCY,
        baseline: Some(id::BARE),
        peers: &[id::TOWER_CONCURRENCY],
    },
    Row {
        id: id::BREAKER,
        baseline: Some(id::BARE),
        peers: &[id::RESILIENCE_BREAKER],
    },
    Row {
        id: id::RETRY,
        baseline: Some(id::BARE),
        peers: &[id::TOWER_RETRY],
    },
    Row {
        id: id::FALLBACK,
        baseline: Some(id::BARE),
        peers: &[],
    },
    Row {
        id: id::METRICS,
        baseline: Some(id::BARE),
        peers: &[],
    },
    Row {
        id: id::CLASSIFY,
        baseline: Some(id::BARE),
        peers: &[],
    },
    Row {
        id: id::BARE_HEADERS,
        baseline: None,
        peers: &[],
    },
    Row {
        id: id::CLASSIFY_HEADERS,
        baseline: Some(id::BARE_HEADERS),
        peers: &[],
    },
    Row {
        id: id::COMPOSED,
        baseline: Some(id::BARE),
        peers: &[],
    },
    Row {
        id: id::BARE_CHAT,
        baseline: None,
        peers: &[],
    },
    Row {
        id: id::STACK,
        baseline: Some(id::BARE_CHAT),
        peers: &[],
    },
];

/// The layers the hand-composed row stacks, each measured alone.
const COMPOSED_OF: [&str; 5] = [
    id::RETRY,
    id::BREAKER,
    id::UNKEYED,
    id::CONCURRENCY,
    id::CLASSIFY,
];

/// Where criterion writes: as criterion decides it, `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else the target directory this bench was built in.
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // <target>/<profile>/deps/peers-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .nth(3)
                .map(|target| target.join("criterion"))
        })
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Criterion's median for `group/id`, in nanoseconds per iteration, if it was
/// written by this run (not left by an earlier one, or by a run filtered to other ids).
fn estimate(group: &str, id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home()
        .join(group)
        .join(id)
        .join("new")
        .join("estimates.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written < since {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn ns(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0} ns")
    } else {
        format!("{value:.1} ns")
    }
}

fn report(since: SystemTime) {
    let median = |id: &str| estimate("peers", id, since);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## tollgate beside its peers: one thread, criterion medians, ns added over the baseline of the same run\n"
    );
    let _ = writeln!(
        out,
        "| layer | ns/request | added over bare | peer | peer's added |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    let mut rows = 0;
    for row in ROWS {
        let Some(own) = median(row.id) else { continue };
        rows += 1;
        let (added, peer, peer_added) = match row.baseline {
            None => ("baseline".to_owned(), "—".to_owned(), "—".to_owned()),
            Some(baseline) => {
                let base = median(baseline);
                let added = base.map_or("?".to_owned(), |base| ns(own - base));
                let added = if baseline == id::BARE {
                    added
                } else {
                    format!("{added} (over `{baseline}`)")
                };
                if row.peers.is_empty() {
                    (added, "—".to_owned(), "—".to_owned())
                } else {
                    let figures: Vec<String> = row
                        .peers
                        .iter()
                        .map(|p| match (median(p), base) {
                            (Some(peer), Some(base)) => ns(peer - base),
                            _ => "?".to_owned(),
                        })
                        .collect();
                    (added, row.peers.join("; "), figures.join("; "))
                }
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {added} | {peer} | {peer_added} |",
            row.id,
            ns(own)
        );
    }
    if rows == 0 {
        let _ = writeln!(
            out,
            "(no estimates were written by this run: a test run, or filtered)"
        );
    }
    if let Some(bare) = median(id::BARE) {
        let alone: Option<f64> = COMPOSED_OF
            .iter()
            .map(|id| median(id).map(|own| own - bare))
            .sum();
        if let (Some(alone), Some(composed)) = (alone, median(id::COMPOSED)) {
            let _ = writeln!(
                out,
                "\nThe five layers composed by hand (retry → breaker → rate limit → concurrency → classify) add {}; each alone, summed: {}.",
                ns(composed - bare),
                ns(alone)
            );
        }
    }

    let contended = |id: &str| estimate("contended", id, since);
    let scaling = [
        ("ready stack", id::STACK_ONE, id::STACK_TWO),
        (
            "bare transport (what the machine allows)",
            id::BARE_ONE,
            id::BARE_TWO,
        ),
    ];
    let mut header = false;
    for (name, one, two) in scaling {
        let (Some(one), Some(two)) = (contended(one), contended(two)) else {
            continue;
        };
        if !header {
            header = true;
            let _ = writeln!(
                out,
                "\n## contended: {MODELS} models, tokio multi-threaded runtime\n"
            );
            let _ = writeln!(
                out,
                "| service | 1 thread, requests/s | 2 threads, requests/s | 2-thread ÷ (2 × 1-thread) |"
            );
            let _ = writeln!(out, "|---|---|---|---|");
        }
        // One request per iteration on one thread, one per thread and iteration on two.
        let one_rps = 1e9 / one;
        let two_rps = 2e9 / two;
        let _ = writeln!(
            out,
            "| {name} | {one_rps:.0} | {two_rps:.0} | {:.2} |",
            two_rps / (2.0 * one_rps)
        );
    }
    println!("{out}");
}

fn main() {
    let since = SystemTime::now();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    peers(&mut criterion);
    contended(&mut criterion);
    criterion.final_summary();
    report(since);
}
