//! When nobody knows the quota: the default ready stack, with nothing configured, against
//! `tollgate-mock`'s reverse-proxy limiter (a leaky bucket per key that answers a bare 429 with
//! a fixed `retry-after: 1`, no rate-limit headers), side by side with a hand-written retry
//! loop in the same run, over hyper-util on loopback.
//!
//! Every test runs on tokio's paused clock (current-thread runtime): minutes of traffic pass
//! in moments and every figure is deterministic. Each prints its table (`--nocapture`); the
//! figures are in the rate-limit crate's README.

#![cfg(all(
    feature = "circuit-breaker",
    feature = "fallback",
    feature = "providers",
    feature = "ratelimit",
    feature = "retry"
))]

use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tollgate::body::BufferedBody;
use tollgate::metrics::MetricsLayer;
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::{Limit, Limits};
use tollgate::stack::{Provider, Stack, StackBuilder};
use tollgate_mock::{MockConfig, MockServer, ProxyLimit};
use tower::ServiceExt;

const fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A chat request: 96 characters of prompt and at most 20 tokens of answer.
fn chat(base_url: &str, i: usize) -> Request<BufferedBody> {
    let content = format!("{i:>6} {}", "x".repeat(89));
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": content}],
    });
    Request::post(format!("{base_url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-test")
        .body(BufferedBody::from(body.to_string()))
        .unwrap()
}

fn hyper_client() -> Client<HttpConnector, BufferedBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The default ready stack for an OpenAI-compatible server nobody told it anything about.
fn default_stack(base_url: &str) -> Stack {
    StackBuilder::new(Provider::openai_compatible(base_url).with_api_key("sk-test"))
        .build(hyper_client())
        .unwrap()
}

/// What one client did in one run.
#[derive(Debug, Default)]
struct Run {
    succeeded: usize,
    failed: usize,
    elapsed: Duration,
    /// The server's 429s and requests, and its successes and 429s per second.
    rate_limited: u64,
    upstream: u64,
    ok_per_second: Vec<u64>,
    limited_per_second: Vec<u64>,
}

impl Run {
    /// Successes per second over the whole run, as a share of `rate`.
    fn goodput(&self, rate: f64) -> f64 {
        self.succeeded as f64 / self.elapsed.as_secs_f64() / rate
    }

    /// The same, from second `from` to the end of the run.
    fn goodput_after(&self, from: usize, rate: f64) -> f64 {
        let ok: u64 = self.ok_per_second.iter().skip(from).sum();
        ok as f64 / (self.elapsed.as_secs_f64() - from as f64) / rate
    }

    /// Successes per second in seconds `from..to`, as a share of `rate`.
    fn goodput_between(&self, from: usize, to: usize, rate: f64) -> f64 {
        let ok: u64 = self.ok_per_second[from..to].iter().sum();
        ok as f64 / (to - from) as f64 / rate
    }

    /// 429s per request the server saw in seconds `from..to`.
    fn share_429_between(&self, from: usize, to: usize) -> f64 {
        let limited: u64 = self.limited_per_second[from..to].iter().sum();
        let ok: u64 = self.ok_per_second[from..to].iter().sum();
        limited as f64 / (limited + ok) as f64
    }

    /// 429s per request sent.
    fn share_429(&self, requests: usize) -> f64 {
        self.rate_limited as f64 / requests as f64
    }

    fn row(&self, name: &str, rate: f64) -> String {
        format!(
            "| {name} | {} | {} | {} | {} | {:.0} % | {:.1} s |",
            self.succeeded,
            self.failed,
            self.rate_limited,
            self.upstream,
            self.goodput(rate) * 100.0,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Sends `total` requests from `callers` tasks through `client`, each answered or failed once.
async fn drive<F, Fut>(total: usize, callers: usize, client: F) -> (usize, usize)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (client, next) = (client.clone(), Arc::clone(&next));
        tasks.spawn(async move {
            let mut ok = 0;
            let mut failed = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return (ok, failed);
                }
                if client(i).await {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
        });
    }
    let mut sum = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (ok, failed) = done.unwrap();
        sum = (sum.0 + ok, sum.1 + failed);
    }
    sum
}

/// Runs `total` requests from `callers` through the default stack against a fresh mock.
async fn through_the_stack(config: MockConfig, total: usize, callers: usize) -> Run {
    through_a_stack(config, total, callers, default_stack).await
}

/// The same through the stack `build` makes for the mock's base URL.
async fn through_a_stack(
    config: MockConfig,
    total: usize,
    callers: usize,
    build: impl FnOnce(&str) -> Stack,
) -> Run {
    let mock = MockServer::start(config).await.unwrap();
    let base_url = mock.base_url();
    let stack = build(&base_url);
    let start = Instant::now();
    let (succeeded, failed) = drive(total, callers, move |i| {
        let (stack, request) = (stack.clone(), chat(&base_url, i));
        async move {
            match stack.oneshot(request).await {
                Ok(response) => {
                    let ok = response.status().is_success();
                    let _ = response.into_body().collect().await;
                    ok
                }
                Err(_) => false,
            }
        }
    })
    .await;
    finish(mock, start, succeeded, failed).await
}

/// Runs them through a hand-written loop: on a 429 or a 5xx, sleep 2^n + uniform(0, 1) s, at
/// most 5 retries.
async fn through_the_loop(config: MockConfig, total: usize, callers: usize) -> Run {
    let mock = MockServer::start(config).await.unwrap();
    let base_url = mock.base_url();
    let client = hyper_client();
    let start = Instant::now();
    let (succeeded, failed) = drive(total, callers, move |i| {
        let (client, base_url) = (client.clone(), base_url.clone());
        async move {
            for retry in 0..=5u32 {
                let status = match client.request(chat(&base_url, i)).await {
                    Ok(response) => {
                        let status = response.status();
                        let _ = response.into_body().collect().await;
                        status
                    }
                    Err(_) => StatusCode::BAD_GATEWAY,
                };
                if status.is_success() {
                    return true;
                }
                let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                if !retryable || retry == 5 {
                    return false;
                }
                let jitter = uniform(i as u64 * 7 + u64::from(retry));
                tokio::time::sleep(Duration::from_secs_f64(2f64.powi(retry as i32) + jitter)).await;
            }
            false
        }
    })
    .await;
    finish(mock, start, succeeded, failed).await
}

/// A number in [0, 1) from `seed` (splitmix64): the loop's jitter, the same in every run.
fn uniform(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
}

async fn finish(mock: MockServer, start: Instant, succeeded: usize, failed: usize) -> Run {
    let elapsed = start.elapsed();
    let stats = mock.stats();
    let timeline = mock.timeline();
    mock.shutdown().await;
    Run {
        succeeded,
        failed,
        elapsed,
        rate_limited: stats.rate_limited,
        upstream: stats.requests,
        ok_per_second: timeline.iter().map(|b| b.ok).collect(),
        limited_per_second: timeline.iter().map(|b| b.rate_limited).collect(),
    }
}

/// Prints a table of `rows`, each with the server's rate over its run (requests/s).
fn print_table(title: &str, rows: &[(&str, &Run, f64)]) {
    println!("\n{title}\n");
    println!(
        "| client | succeeded | failed | 429s | upstream calls | goodput (% of the server's rate) | wall time |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, run, rate) in rows {
        println!("{}", run.row(name, *rate));
    }
}

fn proxy(rate: u64, burst: u64) -> MockConfig {
    MockConfig::openai()
        .with_api_key("sk-test")
        .with_proxy_limit(ProxyLimit::per_second(rate).with_burst(burst))
        .with_seed(13)
}

/// 50/s, burst 10, 2,000 requests from 50 callers, nothing configured.
#[tokio::test(start_paused = true)]
async fn learns_50_per_second_burst_10() {
    const TOTAL: usize = 2_000;
    let config = proxy(50, 10);
    let naive = through_the_loop(config.clone(), TOTAL, 50).await;
    let stack = through_the_stack(config, TOTAL, 50).await;
    print_table(
        "50/s, burst 10, 2,000 requests from 50 callers, nothing configured",
        &[
            ("hand-written loop", &naive, 50.0),
            ("tollgate, default stack", &stack, 50.0),
        ],
    );
    println!(
        "after the first 10 s: {:.1} % of the rate",
        stack.goodput_after(10, 50.0) * 100.0
    );
    assert_eq!((stack.succeeded, stack.failed), (TOTAL, 0));
    assert!(stack.goodput(50.0) >= 0.90, "{:?}", stack);
    assert!(stack.goodput_after(10, 50.0) >= 0.95, "{:?}", stack);
    assert!(stack.share_429(TOTAL) <= 0.02, "{:?}", stack);
    assert!(stack.upstream as f64 <= 1.05 * TOTAL as f64, "{:?}", stack);
}

/// 20/s, no burst, 600 requests from 100 callers, nothing configured.
#[tokio::test(start_paused = true)]
async fn learns_20_per_second_without_burst() {
    const TOTAL: usize = 600;
    let config = proxy(20, 0);
    let naive = through_the_loop(config.clone(), TOTAL, 100).await;
    let stack = through_the_stack(config, TOTAL, 100).await;
    print_table(
        "20/s, no burst, 600 requests from 100 callers, nothing configured",
        &[
            ("hand-written loop", &naive, 20.0),
            ("tollgate, default stack", &stack, 20.0),
        ],
    );
    assert_eq!((stack.succeeded, stack.failed), (TOTAL, 0));
    assert!(stack.goodput(20.0) >= 0.90, "{:?}", stack);
    assert!(stack.share_429(TOTAL) <= 0.03, "{:?}", stack);
}

/// The quota configured at exactly the server's rate, no burst: a ceiling the stack keeps.
#[tokio::test(start_paused = true)]
async fn a_configured_quota_at_the_servers_rate() {
    const TOTAL: usize = 600;
    let limits = Limits::new([Limit::requests(
        Quota::per_second(n(20)).with_burst(NonZeroU64::MIN),
    )]);
    let run = through_a_stack(proxy(20, 0), TOTAL, 100, |base_url| {
        let provider = Provider::openai_compatible(base_url)
            .with_api_key("sk-test")
            .with_limits(limits);
        StackBuilder::new(provider).build(hyper_client()).unwrap()
    })
    .await;
    print_table(
        "20/s, no burst, 600 requests from 100 callers, quota configured at 20/s burst 1",
        &[("tollgate, quota configured", &run, 20.0)],
    );
    assert_eq!((run.succeeded, run.failed), (TOTAL, 0));
    assert!(run.goodput(20.0) >= 0.95, "{:?}", run);
}

/// The server's mean rate over a run of `elapsed` when another tenant takes half of 50/s from
/// second 20 to second 60.
fn shared_rate(elapsed: Duration) -> f64 {
    let t = elapsed.as_secs_f64();
    let halved = (t.min(60.0) - 20.0).max(0.0);
    (50.0 * t - 25.0 * halved) / t
}

/// Another tenant takes half of a 50/s quota from second 20 to second 60: the stack follows
/// the rate down, and back up.
#[tokio::test(start_paused = true)]
async fn follows_the_rate_when_another_tenant_takes_half() {
    const TOTAL: usize = 4_000;
    let config = MockConfig::openai()
        .with_api_key("sk-test")
        .with_proxy_limit(
            ProxyLimit::per_second(50)
                .with_burst(10)
                .with_tenant_share(secs(20), 0.5)
                .with_tenant_share(secs(60), 0.0),
        )
        .with_seed(13);
    let naive = through_the_loop(config.clone(), TOTAL, 50).await;
    let metrics = MetricsLayer::new("proxy");
    let handle = metrics.handle();
    // The learned rate, once a second (requests per minute).
    let learned = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = {
        let learned = Arc::clone(&learned);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(secs(1));
            loop {
                tick.tick().await;
                let rate = handle.snapshot().learned_rate_per_minute;
                learned.lock().unwrap().push(rate.unwrap_or(0));
            }
        })
    };
    let stack = through_a_stack(config, TOTAL, 50, |base_url| {
        StackBuilder::new(Provider::openai_compatible(base_url).with_api_key("sk-test"))
            .with_metrics(metrics)
            .build(hyper_client())
            .unwrap()
    })
    .await;
    sampler.abort();
    let learned = learned.lock().unwrap().clone();
    print_table(
        "50/s burst 10, another tenant takes half from second 20 to second 60; 4,000 requests \
         from 50 callers, nothing configured",
        &[
            ("hand-written loop", &naive, shared_rate(naive.elapsed)),
            (
                "tollgate, default stack",
                &stack,
                shared_rate(stack.elapsed),
            ),
        ],
    );
    let per_second: Vec<u64> = learned.iter().map(|per_minute| per_minute / 60).collect();
    println!("learned rate, requests/s, each second: {per_second:?}");
    println!(
        "seconds 30-60: {:.1} % of 25/s, {:.2} % 429s",
        stack.goodput_between(30, 60, 25.0) * 100.0,
        stack.share_429_between(30, 60) * 100.0
    );
    assert_eq!((stack.succeeded, stack.failed), (TOTAL, 0));
    // Within 10 s of the change, the 429s are under 2 % and goodput is 90 % of the new rate.
    assert!(stack.share_429_between(30, 60) < 0.02, "{stack:?}");
    assert!(stack.goodput_between(30, 60, 25.0) >= 0.90, "{stack:?}");
    // Within 30 s of the rate coming back, the learned rate is back to 90 % of it.
    let back = (60..learned.len()).find(|&s| learned[s] >= 45 * 60);
    assert!(back.is_some_and(|s| s <= 90), "{per_second:?}");
}
