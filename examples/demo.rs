//! The main job: the same burst of chat requests sent twice — through the retry loop most
//! applications start with, and through a tollgate stack — with the results side by side.
//!
//! ```sh
//! cargo run --release --example demo
//! ```
//!
//! By default the demo starts two mock providers in this process (`tollgate-mock`): an
//! OpenAI-shaped primary with a per-minute request and token quota, a cap of 32 requests in
//! flight, a 4,096-token context window (one request in 100 is longer), a 1 % rate of 500s and
//! an outage from 6 s to 10 s; and an Anthropic-shaped fallback with a quota of its own. Then
//! 3,000 chat requests from 64 concurrent callers go
//!
//! 1. through a **naive client**: one provider, and any error retried up to five times with
//!    exponential backoff (0.5 s doubling to 8 s, jittered) — the loop pasted into most code
//!    bases; it never reads `retry-after` and retries a prompt that is too long as readily as a
//!    rate limit;
//! 2. through a **tollgate stack** ([`tollgate::stack`]): a client-side quota and in-flight cap
//!    equal to the provider's, retries that follow the provider's verdicts, a circuit breaker,
//!    fallback to the second provider, and a context-window chain for prompts too long for the
//!    primary's model.
//!
//! Every upstream call of both runs goes through the same counting transport, so the report
//! compares like with like: requests that succeeded and failed, 429s received, upstream calls
//! made, goodput against the provider's quota, p50 and p99 latency, retries, fallbacks and
//! breaker opens. A chart of successful responses and 429s per second is written to
//! `target/demo.svg`.
//!
//! # Settings
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DEMO_REQUESTS` | 3000 | requests per run |
//! | `DEMO_CALLERS` | 64 | concurrent callers |
//! | `DEMO_CHART` | `target/demo.svg` | where the chart goes |
//! | `OPENAI_API_KEY` | — | set it to call the real OpenAI API instead of the mocks |
//! | `OPENAI_BASE_URL` | `https://api.openai.com` | another OpenAI-compatible endpoint |
//! | `DEMO_MODEL` | `gpt-4o-mini` | the model to call |
//! | `DEMO_RPM`, `DEMO_TPM` | your account's tier-1 limits | the quota the stack keeps to |
//! | `ANTHROPIC_API_KEY` | — | with a real primary: fall back to Anthropic's OpenAI-compatible endpoint |
//! | `DEMO_DEBUG` | — | also print the mock providers' own counts after each run |
//!
//! Against real providers every request costs money: set `DEMO_REQUESTS` to something small.

use std::collections::BTreeMap;
use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use tokio::time::Instant;
use tollgate::BoxError;
use tollgate::body::BufferedBody;
use tollgate::circuit_breaker::BreakerConfig;
use tollgate::metrics::{MetricsHandle, MetricsLayer};
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::presets::{AnthropicModel, OpenAiTier};
use tollgate::ratelimit::{Limit, Limits};
use tollgate::stack::{Provider, Stack, StackBuilder};
use tollgate_mock::{Latency, MockConfig, MockServer};
use tower::{Service, ServiceExt};

#[path = "support/reqwest_transport.rs"]
mod reqwest_transport;
use reqwest_transport::ReqwestTransport;

/// How long one run may take before the requests still out count as failed.
const RUN_LIMIT: Duration = Duration::from_secs(90);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let settings = Settings::from_env()?;
    println!("{}", settings.describe());

    let naive = run(&settings, Client::Naive).await?;
    let tollgate = run(&settings, Client::Tollgate).await?;

    println!();
    print_report(&settings, &naive, &tollgate);
    match chart::write(&settings.chart, &naive, &tollgate) {
        Ok(()) => println!(
            "\nChart of successes and 429s per second: {}",
            settings.chart
        ),
        Err(error) => println!(
            "\nThe chart could not be written to {}: {error}",
            settings.chart
        ),
    }
    Ok(())
}

// ===== settings =====

/// What the demo sends, and where.
struct Settings {
    requests: usize,
    callers: usize,
    chart: String,
    target: Target,
    /// The primary's quota, which the stack keeps to.
    rpm: u64,
    tpm: u64,
}

enum Target {
    /// Mock providers started in this process.
    Mock,
    /// Real providers.
    Real {
        base_url: String,
        key: String,
        model: String,
        anthropic_key: Option<String>,
    },
}

/// The mock primary's quota: a burst of 3,000 requests is a third more than the bucket holds,
/// so the last quarter of the burst must wait for it to refill (37.5 requests a second).
const MOCK_RPM: u64 = 2_250;
const MOCK_TPM: u64 = 600_000;
/// The mock primary's context window, in tokens: one request in 100 is longer.
const MOCK_CONTEXT_WINDOW: u64 = 4_096;
/// The mock primary's cap on requests in flight: half the callers.
const MOCK_CONCURRENCY: u64 = 32;

impl Settings {
    fn from_env() -> Result<Self, BoxError> {
        let number = |name: &str, default: u64| -> Result<u64, BoxError> {
            match std::env::var(name) {
                Ok(value) => match value.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => {
                        Err(format!("{name} must be a positive whole number, not {value:?}").into())
                    }
                },
                Err(_) => Ok(default),
            }
        };
        let target = match std::env::var("OPENAI_API_KEY") {
            Ok(key) if !key.trim().is_empty() => Target::Real {
                base_url: std::env::var("OPENAI_BASE_URL")
                    .unwrap_or_else(|_| "https://api.openai.com".to_owned()),
                key,
                model: std::env::var("DEMO_MODEL").unwrap_or_else(|_| "gpt-4o-mini".to_owned()),
                anthropic_key: std::env::var("ANTHROPIC_API_KEY")
                    .ok()
                    .filter(|k| !k.trim().is_empty()),
            },
            _ => Target::Mock,
        };
        let (rpm, tpm) = match target {
            Target::Mock => (MOCK_RPM, MOCK_TPM),
            // OpenAI's tier 1 for the small models.
            Target::Real { .. } => (number("DEMO_RPM", 500)?, number("DEMO_TPM", 200_000)?),
        };
        Ok(Settings {
            requests: usize::try_from(number("DEMO_REQUESTS", 3_000)?)?,
            callers: usize::try_from(number("DEMO_CALLERS", 64)?)?,
            chart: std::env::var("DEMO_CHART").unwrap_or_else(|_| "target/demo.svg".to_owned()),
            target,
            rpm,
            tpm,
        })
    }

    fn describe(&self) -> String {
        let target = match &self.target {
            Target::Mock => format!(
                "two mock providers in this process: an OpenAI-shaped primary ({} requests and \
                 {} tokens per minute, {} in flight, a {}-token context window, 1 % of 500s, an \
                 outage from 6 s to 10 s) and an Anthropic-shaped fallback",
                self.rpm, self.tpm, MOCK_CONCURRENCY, MOCK_CONTEXT_WINDOW
            ),
            Target::Real {
                base_url, model, ..
            } => format!(
                "{base_url} ({model}), kept to {} RPM and {} TPM",
                self.rpm, self.tpm
            ),
        };
        format!(
            "tollgate demo: {} chat requests from {} concurrent callers, sent twice, to {target}.",
            self.requests, self.callers
        )
    }

    fn model(&self) -> &str {
        match &self.target {
            Target::Mock => "gpt-4o-mini",
            Target::Real { model, .. } => model,
        }
    }
}

// ===== one run =====

#[derive(Clone, Copy, PartialEq)]
enum Client {
    Naive,
    Tollgate,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Naive => "naive retry loop",
            Client::Tollgate => "tollgate stack",
        }
    }
}

/// What one run came to.
struct RunReport {
    succeeded: u64,
    failed: u64,
    elapsed: Duration,
    /// Each request's latency, from its first attempt to its end, sorted.
    latencies: Vec<Duration>,
    upstream: Upstream,
    /// The stack's snapshot, or the naive loop's own count.
    retries: u64,
    /// Whether the client can fall back to another provider (the naive loop cannot).
    has_fallback: bool,
    breaker_opens: Option<u64>,
}

impl RunReport {
    fn percentile(&self, q: f64) -> Option<Duration> {
        let last = self.latencies.len().checked_sub(1)?;
        let rank = (last as f64 * q).round() as usize;
        self.latencies.get(rank).copied()
    }
}

async fn run(settings: &Settings, client: Client) -> Result<RunReport, BoxError> {
    let mocks = Mocks::start(settings).await?;
    let workload = match (&settings.target, &mocks) {
        (Target::Real { base_url, key, .. }, _) => Workload {
            base_url: base_url.clone(),
            key: key.clone(),
            model: settings.model().to_owned(),
            long_prompts: false,
        },
        (Target::Mock, Some(mocks)) => Workload {
            base_url: mocks.primary.base_url(),
            key: PRIMARY_KEY.to_owned(),
            model: settings.model().to_owned(),
            long_prompts: true,
        },
        (Target::Mock, None) => return Err("the mocks did not start".into()),
    };
    let upstream = Upstream::new(&workload.base_url);
    let transport = Counting::new(ReqwestTransport::new(reqwest::Client::new()), &upstream);

    let sender = match client {
        Client::Naive => Sender::Naive(NaiveClient {
            transport: transport.clone(),
            retries: Arc::new(AtomicU64::new(0)),
            rng: Arc::new(Mutex::new(SplitMix(0x5eed))),
        }),
        Client::Tollgate => {
            let (metrics, handle) = MetricsLayer::pair("demo");
            let stack = build_stack(settings, mocks.as_ref(), metrics, transport)?;
            Sender::Tollgate { stack, handle }
        }
    };

    let progress = ProgressBar::new(settings.requests as u64).with_style(
        ProgressStyle::with_template(
            "{prefix:>18} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
        )?
        .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    progress.set_prefix(client.name());

    let next = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(settings.requests)));
    let started = Instant::now();
    upstream.start(started);
    let requests = settings.requests;
    let mut callers = Vec::with_capacity(settings.callers);
    for _ in 0..settings.callers {
        let (next, outcomes) = (Arc::clone(&next), Arc::clone(&outcomes));
        let (progress, sender, workload) = (progress.clone(), sender.clone(), workload.clone());
        callers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let sent = Instant::now();
                let ok = sender.send(&workload, i).await;
                outcomes.lock().push((ok, sent.elapsed()));
                progress.inc(1);
            }
        }));
    }
    let all = async {
        for caller in &mut callers {
            let _ = caller.await;
        }
    };
    let cut_off = tokio::time::timeout(RUN_LIMIT, all).await.is_err();
    for caller in &callers {
        caller.abort();
    }
    let elapsed = started.elapsed();
    progress.finish();
    if cut_off {
        println!("  (cut off after {RUN_LIMIT:?}: the requests still out count as failed)");
    }

    let outcomes = std::mem::take(&mut *outcomes.lock());
    let succeeded = outcomes.iter().filter(|(ok, _)| *ok).count() as u64;
    let mut latencies: Vec<Duration> = outcomes.iter().map(|(_, latency)| *latency).collect();
    latencies.sort_unstable();
    let (retries, breaker_opens) = match &sender {
        Sender::Naive(naive) => (naive.retries.load(Ordering::Relaxed), None),
        Sender::Tollgate { handle, .. } => {
            let snapshot = handle.snapshot();
            (snapshot.retries, Some(snapshot.breaker_opens))
        }
    };
    let has_fallback = matches!(client, Client::Tollgate);
    if let Some(mocks) = mocks {
        if std::env::var_os("DEMO_DEBUG").is_some() {
            println!(
                "primary {:?}\nfallback {:?}",
                mocks.primary.stats(),
                mocks.fallback.stats()
            );
        }
        mocks.shutdown().await;
    }
    Ok(RunReport {
        succeeded,
        failed: requests as u64 - succeeded,
        elapsed,
        latencies,
        upstream,
        retries,
        has_fallback,
        breaker_opens,
    })
}

// ===== the workload =====

/// The burst's requests, as every caller makes them.
#[derive(Clone)]
struct Workload {
    base_url: String,
    key: String,
    model: String,
    /// One request in 100 too long for the mock primary's context window.
    long_prompts: bool,
}

impl Workload {
    /// The `i`th request of the burst.
    fn chat(&self, i: usize) -> Request<BufferedBody> {
        let long = self.long_prompts && i % 100 == 99;
        let prompt_chars = if long { 20_000 } else { 400 };
        let body = serde_json::json!({
            "model": self.model,
            "max_tokens": if long { 200 } else { 100 },
            "messages": [{ "role": "user", "content": "x".repeat(prompt_chars) }],
        });
        Request::post(format!("{}/v1/chat/completions", self.base_url))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.key))
            .body(BufferedBody::from(Bytes::from(body.to_string())))
            .expect("a URL from a parsed base URL and a fixed path")
    }
}

// ===== the two clients =====

/// How a run sends each request of the burst: `true` when it succeeded in the end.
#[derive(Clone)]
enum Sender {
    Naive(NaiveClient),
    Tollgate { stack: Stack, handle: MetricsHandle },
}

impl Sender {
    async fn send(&self, workload: &Workload, i: usize) -> bool {
        match self {
            Sender::Naive(naive) => naive.send(workload, i).await,
            Sender::Tollgate { stack, .. } => match stack.clone().oneshot(workload.chat(i)).await {
                Ok(response) => read_through(response).await,
                Err(_) => false,
            },
        }
    }
}

/// Whether `response` succeeded, once its body has been read to the end.
async fn read_through<B>(response: Response<B>) -> bool
where
    B: http_body::Body,
{
    let success = response.status().is_success();
    response.into_body().collect().await.is_ok() && success
}

/// The loop most code bases start with: any failure retried up to five times, 0.5 s doubling
/// to at most 8 s between attempts, jittered by ±20 %; no `retry-after`, no notion of which
/// errors a retry can fix.
#[derive(Clone)]
struct NaiveClient {
    transport: Counting<ReqwestTransport>,
    retries: Arc<AtomicU64>,
    rng: Arc<Mutex<SplitMix>>,
}

impl NaiveClient {
    const MAX_RETRIES: u32 = 5;

    async fn send(&self, workload: &Workload, i: usize) -> bool {
        for attempt in 0..=Self::MAX_RETRIES {
            if attempt > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
                let backoff = Duration::from_millis(500)
                    .saturating_mul(1 << (attempt - 1))
                    .min(Duration::from_secs(8));
                let jitter = 0.8 + 0.4 * self.rng.lock().next_f64();
                tokio::time::sleep(backoff.mul_f64(jitter)).await;
            }
            if let Ok(response) = self.transport.clone().oneshot(workload.chat(i)).await {
                if read_through(response).await {
                    return true;
                }
            }
        }
        false
    }
}

/// A small, seeded random source for the naive loop's jitter.
struct SplitMix(u64);

impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ===== the tollgate stack =====

/// The primary with the provider's own quota, retries as the OpenAI SDK makes them and a
/// breaker that opens for 2 s (growing on repeated trips); a fallback provider; and a
/// context-window chain for prompts the primary's model cannot take.
fn build_stack(
    settings: &Settings,
    mocks: Option<&Mocks>,
    metrics: MetricsLayer,
    transport: Counting<ReqwestTransport>,
) -> Result<Stack, BoxError> {
    let per_minute = |n: u64| Quota::per_minute(NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN));
    let limits = Limits::new([
        Limit::requests(per_minute(settings.rpm)),
        Limit::tokens(per_minute(settings.tpm)),
    ]);
    let breaker =
        BreakerConfig::default().with_open_for(Duration::from_secs(2), 2, Duration::from_secs(8));
    let mut builder;
    match (&settings.target, mocks) {
        (Target::Mock, Some(mocks)) => {
            let anthropic = |name: &str| {
                Provider::anthropic(AnthropicModel::Haiku4)
                    .name(name)
                    .base_url(&mocks.fallback.base_url())
                    .api_key(FALLBACK_KEY)
                    .model("claude-haiku-4-5")
                    .limits(Limits::new([Limit::requests(per_minute(FALLBACK_RPM))]))
            };
            builder = StackBuilder::new(
                Provider::openai(OpenAiTier::Tier1)
                    .name("openai")
                    .base_url(&mocks.primary.base_url())
                    .api_key(PRIMARY_KEY)
                    .model("gpt-4o-mini")
                    .limits(limits)
                    .max_in_flight(MOCK_CONCURRENCY as u32)
                    .breaker(breaker),
            )
            .fallback(anthropic("anthropic"))
            .context_window_fallback(anthropic("anthropic-long-context"));
        }
        (
            Target::Real {
                base_url,
                key,
                model,
                anthropic_key,
            },
            _,
        ) => {
            builder = StackBuilder::new(
                Provider::openai(OpenAiTier::Tier1)
                    .base_url(base_url)
                    .api_key(key)
                    .model(model)
                    .limits(limits)
                    .breaker(breaker),
            );
            if let Some(anthropic_key) = anthropic_key {
                builder = builder.fallback(
                    Provider::anthropic(AnthropicModel::Haiku4)
                        .api_key(anthropic_key)
                        .model("claude-haiku-4-5"),
                );
            }
        }
        (Target::Mock, None) => return Err("the mocks did not start".into()),
    }
    Ok(builder.metrics(metrics).build(transport)?)
}

// ===== the mock providers =====

const PRIMARY_KEY: &str = "sk-demo-primary";
const FALLBACK_KEY: &str = "sk-demo-fallback";
const FALLBACK_RPM: u64 = 1_500;

struct Mocks {
    primary: MockServer,
    fallback: MockServer,
}

impl Mocks {
    /// Fresh mock providers for one run, or none against real ones.
    async fn start(settings: &Settings) -> Result<Option<Mocks>, BoxError> {
        if !matches!(settings.target, Target::Mock) {
            return Ok(None);
        }
        let primary = MockConfig::openai()
            .with_requests_per_minute(MOCK_RPM)
            .with_tokens_per_minute(MOCK_TPM)
            .with_context_window(MOCK_CONTEXT_WINDOW)
            .with_max_concurrency(MOCK_CONCURRENCY)
            .with_latency(Latency::LogNormal {
                median_ms: 60,
                p99_ms: 400,
            })
            .with_error_rate(500, 0.01)
            .with_outage(Duration::from_secs(6), Duration::from_secs(4))
            .with_api_key(PRIMARY_KEY)
            .with_seed(7);
        let fallback = MockConfig::anthropic()
            .with_requests_per_minute(FALLBACK_RPM)
            .with_latency(Latency::LogNormal {
                median_ms: 80,
                p99_ms: 500,
            })
            .with_api_key(FALLBACK_KEY)
            .with_seed(11);
        Ok(Some(Mocks {
            primary: MockServer::start(primary).await?,
            fallback: MockServer::start(fallback).await?,
        }))
    }

    async fn shutdown(self) {
        self.primary.shutdown().await;
        self.fallback.shutdown().await;
    }
}

// ===== counting upstream calls =====

/// Every upstream call of a run: how many, their outcome, and per second of the run.
#[derive(Clone)]
struct Upstream(Arc<Mutex<UpstreamLog>>);

#[derive(Default)]
struct UpstreamLog {
    /// The primary's `host:port`; calls elsewhere went to a fallback.
    primary: Option<http::uri::Authority>,
    started: Option<Instant>,
    calls: u64,
    ok: u64,
    /// Successes from a provider other than the primary.
    fallback_ok: u64,
    rate_limited: u64,
    /// Per second of the run: (successes, 429s).
    per_second: BTreeMap<u64, (u64, u64)>,
}

impl Upstream {
    fn new(primary_base_url: &str) -> Self {
        let primary = primary_base_url
            .parse::<http::Uri>()
            .ok()
            .and_then(|uri| uri.authority().cloned());
        Upstream(Arc::new(Mutex::new(UpstreamLog {
            primary,
            ..UpstreamLog::default()
        })))
    }

    fn start(&self, at: Instant) {
        self.0.lock().started = Some(at);
    }

    fn record(&self, to: Option<&http::uri::Authority>, status: Option<http::StatusCode>) {
        let mut log = self.0.lock();
        let second = log.started.map_or(0, |at| at.elapsed().as_secs());
        log.calls += 1;
        let elsewhere = log.primary.as_ref() != to;
        let bucket = log.per_second.entry(second).or_default();
        match status {
            Some(status) if status.is_success() => {
                bucket.0 += 1;
                log.ok += 1;
                if elsewhere {
                    log.fallback_ok += 1;
                }
            }
            Some(http::StatusCode::TOO_MANY_REQUESTS) => {
                bucket.1 += 1;
                log.rate_limited += 1;
            }
            _ => {}
        }
    }

    fn calls(&self) -> u64 {
        self.0.lock().calls
    }

    fn primary_ok(&self) -> u64 {
        let log = self.0.lock();
        log.ok - log.fallback_ok
    }

    fn fallback_ok(&self) -> u64 {
        self.0.lock().fallback_ok
    }

    fn rate_limited(&self) -> u64 {
        self.0.lock().rate_limited
    }

    /// (second, successes, 429s), with every second of the run present.
    fn timeline(&self) -> Vec<(u64, u64, u64)> {
        let log = self.0.lock();
        let last = log.per_second.keys().next_back().copied().unwrap_or(0);
        (0..=last)
            .map(|s| {
                let (ok, limited) = log.per_second.get(&s).copied().unwrap_or_default();
                (s, ok, limited)
            })
            .collect()
    }
}

/// The transport both runs share, counting each call's outcome.
#[derive(Clone)]
struct Counting<S> {
    inner: S,
    upstream: Upstream,
}

impl<S> Counting<S> {
    fn new(inner: S, upstream: &Upstream) -> Self {
        Counting {
            inner,
            upstream: upstream.clone(),
        }
    }
}

impl<S, B> Service<Request<BufferedBody>> for Counting<S>
where
    S: Service<Request<BufferedBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let to = request.uri().authority().cloned();
        let call = self.inner.call(request);
        let upstream = self.upstream.clone();
        Box::pin(async move {
            let result = call.await.map_err(Into::into);
            upstream.record(to.as_ref(), result.as_ref().ok().map(Response::status));
            result
        })
    }
}

// ===== the report =====

fn print_report(settings: &Settings, naive: &RunReport, tollgate: &RunReport) {
    // What the primary's quota alone could answer over the run: the bucket starts full and
    // refills at the per-minute rate; never more than the burst itself.
    let quota = |run: &RunReport| {
        let available = settings.rpm as f64 * (1.0 + run.elapsed.as_secs_f64() / 60.0);
        available.min(settings.requests as f64)
    };
    let share = |part: u64, run: &RunReport| format!("{:.0} %", 100.0 * part as f64 / quota(run));
    let per_second =
        |run: &RunReport| format!("{:.1}", run.succeeded as f64 / run.elapsed.as_secs_f64());
    let millis =
        |d: Option<Duration>| d.map_or("—".to_owned(), |d| format!("{} ms", d.as_millis()));
    let optional = |n: Option<u64>| n.map_or("—".to_owned(), |n| n.to_string());
    let fallback = |run: &RunReport| optional(run.has_fallback.then(|| run.upstream.fallback_ok()));
    let seconds = |run: &RunReport| format!("{:.1} s", run.elapsed.as_secs_f64());
    let rows: [(&str, String, String); 13] = [
        (
            "requests succeeded",
            naive.succeeded.to_string(),
            tollgate.succeeded.to_string(),
        ),
        (
            "requests failed",
            naive.failed.to_string(),
            tollgate.failed.to_string(),
        ),
        (
            "429s received",
            naive.upstream.rate_limited().to_string(),
            tollgate.upstream.rate_limited().to_string(),
        ),
        (
            "upstream calls made",
            naive.upstream.calls().to_string(),
            tollgate.upstream.calls().to_string(),
        ),
        (
            "goodput (successes per second)",
            per_second(naive),
            per_second(tollgate),
        ),
        (
            "primary's answers / its quota",
            share(naive.upstream.primary_ok(), naive),
            share(tollgate.upstream.primary_ok(), tollgate),
        ),
        (
            "answered by the fallback",
            fallback(naive),
            fallback(tollgate),
        ),
        (
            "all answers / primary's quota",
            share(naive.succeeded, naive),
            share(tollgate.succeeded, tollgate),
        ),
        (
            "p50 latency",
            millis(naive.percentile(0.5)),
            millis(tollgate.percentile(0.5)),
        ),
        (
            "p99 latency",
            millis(naive.percentile(0.99)),
            millis(tollgate.percentile(0.99)),
        ),
        (
            "retries",
            naive.retries.to_string(),
            tollgate.retries.to_string(),
        ),
        (
            "breaker opens",
            optional(naive.breaker_opens),
            optional(tollgate.breaker_opens),
        ),
        ("wall time", seconds(naive), seconds(tollgate)),
    ];
    println!(
        "{:<32} {:>18} {:>18}",
        "",
        Client::Naive.name(),
        Client::Tollgate.name()
    );
    for (label, left, right) in rows {
        println!("{label:<32} {left:>18} {right:>18}");
    }
    println!(
        "\n\"Quota\" is what the primary's requests-per-minute quota allows over the run (the \
         bucket starts full),\nat most the {} requests sent; latency runs from a request's \
         first attempt to its answer or failure.",
        settings.requests
    );
}

// ===== the chart =====

mod chart {
    use plotters::prelude::*;

    use super::RunReport;

    /// Picks one figure out of a second of the timeline.
    type Value = fn(&(u64, u64, u64)) -> u64;

    /// Two panels, successes and 429s per second, each with both runs.
    pub(super) fn write(
        path: &str,
        naive: &RunReport,
        tollgate: &RunReport,
    ) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let naive = naive.upstream.timeline();
        let tollgate = tollgate.upstream.timeline();
        let seconds = naive.len().max(tollgate.len()).max(1) as u64;
        let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((2, 1));
        let series: [(&str, Value); 2] = [
            ("successful responses per second", |&(_, ok, _)| ok),
            ("429s received per second", |&(_, _, limited)| limited),
        ];
        for (panel, (title, value)) in panels.iter().zip(series) {
            let top = naive
                .iter()
                .chain(tollgate.iter())
                .map(value)
                .max()
                .unwrap_or(0)
                .max(1);
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(48)
                .build_cartesian_2d(0..seconds, 0..top + top / 10 + 1)?;
            chart
                .configure_mesh()
                .x_desc("seconds since the burst started")
                .draw()?;
            for (name, run, color) in [
                (super::Client::Naive.name(), &naive, RED),
                (super::Client::Tollgate.name(), &tollgate, BLUE),
            ] {
                chart
                    .draw_series(LineSeries::new(
                        run.iter().map(|point| (point.0, value(point))),
                        color.stroke_width(2),
                    ))?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()?;
        }
        root.present()?;
        Ok(())
    }
}
