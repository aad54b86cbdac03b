//! The main job: the same burst of chat requests sent twice — through the retry loop most
//! applications start with, and through a tollgate stack — with the results side by side; first
//! with the provider's quota known, then with nobody knowing it.
//!
//! ```sh
//! cargo run --release --example demo
//! ```
//!
//! # Part 1: the quota known, an outage, a fallback
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
//! # Part 2: nobody knows the quota
//!
//! Then a mock with no quota of its own sits behind a reverse-proxy limiter, as many gateways
//! do: 50 requests a second per API key, 10 more back to back, and a refusal that is a bare 429
//! with a fixed `retry-after: 1` and no rate-limit headers, so there is nothing to read the
//! quota from. Another tenant takes half of that rate from 10 s to 20 s. Two fifths as many
//! requests as in part 1 (1,200 by default) go through the same naive client and through the
//! **default stack with nothing configured**
//! (`Provider::openai_compatible(url).api_key(key)`), whose adaptive limit learns the rate:
//! slow start from 10 requests a second, one decrease per 429 episode, a cubic climb back. The
//! two runs go at the same time, each against a mock of its own, so part 2 takes as long as the
//! slower one: about 35 s in release with the default settings (part 1 takes about 40 s).
//!
//! The report gives the same counts, goodput against the rate the server had available over
//! each run, and the learned rate once a second, read from the metrics layer's snapshot. A
//! second chart, next to the first (`target/demo-unknown-quota.svg`), has successes and 429s per
//! second of both runs and the learned rate over time, each against the server's available rate.
//!
//! # Settings
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DEMO_REQUESTS` | 3000 | requests per run of part 1; part 2 sends two fifths as many |
//! | `DEMO_CALLERS` | 64 | concurrent callers |
//! | `DEMO_PARTS` | `known,unknown` | which parts to run: `known` (part 1), `unknown` (part 2) or both |
//! | `DEMO_CHART` | `target/demo.svg` | where part 1's chart goes; part 2's goes next to it, named `<stem>-unknown-quota.svg` |
//! | `OPENAI_API_KEY` | — | set it to call the real OpenAI API instead of the mocks in part 1 (part 2 needs the mock, so it is skipped) |
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
    if settings.parts.known {
        known_quota(&settings).await?;
    }
    if settings.parts.unknown {
        if settings.parts.known {
            println!();
        }
        match settings.target {
            Target::Mock => unknown_quota::run(&settings).await?,
            Target::Real { .. } => println!(
                "Part 2 (nobody knows the quota) needs the mock's reverse-proxy limiter: skipped \
                 against real providers."
            ),
        }
    }
    Ok(())
}

/// Part 1: the quota known, an outage and a fallback.
async fn known_quota(settings: &Settings) -> Result<(), BoxError> {
    println!("{}", settings.describe());

    let naive = run(settings, Client::Naive).await?;
    let tollgate = run(settings, Client::Tollgate).await?;

    println!();
    print_report(settings, &naive, &tollgate);
    report_chart(
        "Chart of successes and 429s per second",
        &settings.chart,
        chart::known_quota(&settings.chart, &naive, &tollgate),
    );
    Ok(())
}

/// Says where a chart went, or why it did not.
fn report_chart(what: &str, path: &str, written: Result<(), Box<dyn std::error::Error>>) {
    match written {
        Ok(()) => println!("\n{what}: {path}"),
        Err(error) => println!("\nThe chart could not be written to {path}: {error}"),
    }
}

// ===== settings =====

/// What the demo sends, and where.
struct Settings {
    requests: usize,
    callers: usize,
    parts: Parts,
    chart: String,
    target: Target,
    /// The primary's quota, which the stack keeps to.
    rpm: u64,
    tpm: u64,
}

/// Which parts of the demo run.
struct Parts {
    /// Part 1: the quota known, an outage and a fallback.
    known: bool,
    /// Part 2: nobody knows the quota.
    unknown: bool,
}

impl Parts {
    fn from_env() -> Result<Self, BoxError> {
        let Ok(list) = std::env::var("DEMO_PARTS") else {
            return Ok(Parts {
                known: true,
                unknown: true,
            });
        };
        let mut parts = Parts {
            known: false,
            unknown: false,
        };
        for part in list
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            match part {
                "known" => parts.known = true,
                "unknown" => parts.unknown = true,
                _ => {
                    return Err(format!(
                        "DEMO_PARTS takes `known`, `unknown` or both, comma-separated, not {part:?}"
                    )
                    .into());
                }
            }
        }
        if !(parts.known || parts.unknown) {
            return Err("DEMO_PARTS names no part: use `known`, `unknown` or both".into());
        }
        Ok(parts)
    }
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
            parts: Parts::from_env()?,
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
            "tollgate demo, part 1: {} chat requests from {} concurrent callers, sent twice, to \
             {target}.",
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
        Client::Naive => Sender::Naive(NaiveClient::new(transport)),
        Client::Tollgate => {
            let (metrics, handle) = MetricsLayer::pair("demo");
            let stack = build_stack(settings, mocks.as_ref(), metrics, transport)?;
            Sender::Tollgate { stack, handle }
        }
    };

    let progress = progress_bar(settings.requests, client.name())?;
    let driven = drive(
        settings,
        &sender,
        &workload,
        settings.requests,
        &upstream,
        &progress,
    )
    .await;
    driven.say_if_cut_off();
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
    Ok(driven.report(&sender, upstream, matches!(client, Client::Tollgate)))
}

/// A progress bar for one run, labelled with the client's name.
fn progress_bar(requests: usize, name: &str) -> Result<ProgressBar, BoxError> {
    let progress = ProgressBar::new(requests as u64).with_style(
        ProgressStyle::with_template(
            "{prefix:>18} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
        )?
        .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    progress.set_prefix(name.to_owned());
    Ok(progress)
}

/// What sending a burst came to.
struct Driven {
    requests: u64,
    succeeded: u64,
    /// Each request's latency, sorted.
    latencies: Vec<Duration>,
    elapsed: Duration,
    /// Whether the run hit [`RUN_LIMIT`] with requests still out.
    cut_off: bool,
}

/// Sends `requests` requests of `workload` through `sender` from the settings' callers, each
/// answered or failed once; `upstream`'s timeline starts with the first.
async fn drive(
    settings: &Settings,
    sender: &Sender,
    workload: &Workload,
    requests: usize,
    upstream: &Upstream,
    progress: &ProgressBar,
) -> Driven {
    let next = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(requests)));
    let started = Instant::now();
    upstream.start(started);
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

    let outcomes = std::mem::take(&mut *outcomes.lock());
    let succeeded = outcomes.iter().filter(|(ok, _)| *ok).count() as u64;
    let mut latencies: Vec<Duration> = outcomes.iter().map(|(_, latency)| *latency).collect();
    latencies.sort_unstable();
    Driven {
        requests: requests as u64,
        succeeded,
        latencies,
        elapsed,
        cut_off,
    }
}

impl Driven {
    fn say_if_cut_off(&self) {
        if self.cut_off {
            println!("  (cut off after {RUN_LIMIT:?}: the requests still out count as failed)");
        }
    }

    /// The run's report, with the counts `sender` kept.
    fn report(self, sender: &Sender, upstream: Upstream, has_fallback: bool) -> RunReport {
        let (retries, breaker_opens) = match sender {
            Sender::Naive(naive) => (naive.retries.load(Ordering::Relaxed), None),
            Sender::Tollgate { handle, .. } => {
                let snapshot = handle.snapshot();
                (snapshot.retries, Some(snapshot.breaker_opens))
            }
        };
        RunReport {
            succeeded: self.succeeded,
            failed: self.requests - self.succeeded,
            elapsed: self.elapsed,
            latencies: self.latencies,
            upstream,
            retries,
            has_fallback,
            breaker_opens,
        }
    }
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

    fn new(transport: Counting<ReqwestTransport>) -> Self {
        NaiveClient {
            transport,
            retries: Arc::new(AtomicU64::new(0)),
            rng: Arc::new(Mutex::new(SplitMix(0x5eed))),
        }
    }

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
    let optional = |n: Option<u64>| n.map_or("—".to_owned(), |n| n.to_string());
    let fallback = |run: &RunReport| optional(run.has_fallback.then(|| run.upstream.fallback_ok()));
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
    print_table(Client::Naive.name(), Client::Tollgate.name(), &rows);
    println!(
        "\n\"Quota\" is what the primary's requests-per-minute quota allows over the run (the \
         bucket starts full),\nat most the {} requests sent; latency runs from a request's \
         first attempt to its answer or failure.",
        settings.requests
    );
}

/// Two runs side by side: a row per figure, under the two clients' names.
fn print_table(left: &str, right: &str, rows: &[(&str, String, String)]) {
    println!("{:<32} {left:>18} {right:>18}", "");
    for (label, left, right) in rows {
        println!("{label:<32} {left:>18} {right:>18}");
    }
}

/// A latency for the report, or a dash when there is none.
fn millis(d: Option<Duration>) -> String {
    d.map_or("—".to_owned(), |d| format!("{} ms", d.as_millis()))
}

/// A run's wall time for the report.
fn seconds(run: &RunReport) -> String {
    format!("{:.1} s", run.elapsed.as_secs_f64())
}

/// A run's successes per second.
fn per_second(run: &RunReport) -> String {
    format!("{:.1}", run.succeeded as f64 / run.elapsed.as_secs_f64())
}

// ===== part 2: nobody knows the quota =====

mod unknown_quota {
    //! A mock behind a reverse-proxy limiter nobody told the client about, the naive loop and
    //! the default stack with nothing configured, at the same time.

    use std::sync::Arc;
    use std::time::Duration;

    use indicatif::MultiProgress;
    use parking_lot::Mutex;
    use tokio::time::Instant;
    use tollgate::BoxError;
    use tollgate::metrics::MetricsLayer;
    use tollgate::stack::{Provider, StackBuilder};
    use tollgate_mock::{Latency, MockConfig, MockServer, ProxyLimit};

    use super::{
        Client, Counting, NaiveClient, ReqwestTransport, RunReport, Sender, Settings, Upstream,
        Workload,
    };

    /// The limiter's rate per API key, requests per second.
    pub(super) const RATE: u64 = 50;
    /// How many more requests it lets through back to back.
    const BURST: u64 = 10;
    /// When the other tenant comes and goes, and its share of the rate meanwhile.
    pub(super) const TENANT_FROM: Duration = Duration::from_secs(10);
    pub(super) const TENANT_UNTIL: Duration = Duration::from_secs(20);
    pub(super) const TENANT_SHARE: f64 = 0.5;
    const KEY: &str = "sk-demo-unknown-quota";

    /// The rate the server has available for the client at `t` seconds into the run: what
    /// the other tenant leaves.
    pub(super) fn available_rate(t: f64) -> f64 {
        let shared = (TENANT_FROM.as_secs_f64()..TENANT_UNTIL.as_secs_f64()).contains(&t);
        RATE as f64 * if shared { 1.0 - TENANT_SHARE } else { 1.0 }
    }

    /// How many requests the server could answer in the first `elapsed` of a run: the burst at
    /// once, then the available rate.
    fn capacity(elapsed: Duration) -> f64 {
        let t = elapsed.as_secs_f64();
        let shared = (t.min(TENANT_UNTIL.as_secs_f64()) - TENANT_FROM.as_secs_f64()).max(0.0);
        (BURST + 1) as f64 + RATE as f64 * (t - TENANT_SHARE * shared)
    }

    /// One run of part 2: its report, and the stack's learned rate, in requests per second,
    /// at each whole second of the run.
    pub(super) struct Run {
        pub(super) report: RunReport,
        pub(super) learned: Vec<(u64, f64)>,
    }

    /// Runs part 2 and prints its report; writes its chart next to part 1's.
    pub(super) async fn run(settings: &Settings) -> Result<(), BoxError> {
        let requests = (settings.requests * 2 / 5).max(1);
        println!(
            "tollgate demo, part 2: nobody knows the quota. {requests} chat requests from {} \
             concurrent callers, through the naive loop and through the default stack with \
             nothing configured, at the same time, each to a mock of its own behind a \
             reverse-proxy limiter: {RATE} requests a second per key, {BURST} more back to back, a \
             bare 429 with `retry-after: 1` and no rate-limit headers; another tenant takes {:.0} % \
             of the rate from {} s to {} s.",
            settings.callers,
            TENANT_SHARE * 100.0,
            TENANT_FROM.as_secs(),
            TENANT_UNTIL.as_secs(),
        );
        let bars = MultiProgress::new();
        let (naive, stack) = tokio::join!(
            one(settings, Client::Naive, requests, &bars),
            one(settings, Client::Tollgate, requests, &bars),
        );
        let (naive, stack) = (naive?, stack?);

        println!();
        print_report(&naive, &stack);
        let path = chart_path(&settings.chart);
        super::report_chart(
            "Chart of successes, 429s and the learned rate per second",
            &path,
            super::chart::unknown_quota(&path, &naive, &stack),
        );
        Ok(())
    }

    /// The client's name in part 2.
    pub(super) fn name(client: Client) -> &'static str {
        match client {
            Client::Naive => Client::Naive.name(),
            Client::Tollgate => "tollgate defaults",
        }
    }

    /// One client's run against a mock of its own.
    async fn one(
        settings: &Settings,
        client: Client,
        requests: usize,
        bars: &MultiProgress,
    ) -> Result<Run, BoxError> {
        let mock = MockServer::start(
            MockConfig::openai()
                .with_proxy_limit(
                    ProxyLimit::per_second(RATE)
                        .with_burst(BURST)
                        .with_tenant_share(TENANT_FROM, TENANT_SHARE)
                        .with_tenant_share(TENANT_UNTIL, 0.0),
                )
                .with_latency(Latency::LogNormal {
                    median_ms: 60,
                    p99_ms: 400,
                })
                .with_api_key(KEY)
                .with_seed(13),
        )
        .await?;
        let workload = Workload {
            base_url: mock.base_url(),
            key: KEY.to_owned(),
            model: "gpt-4o-mini".to_owned(),
            long_prompts: false,
        };
        let upstream = Upstream::new(&workload.base_url);
        let transport = Counting::new(ReqwestTransport::new(reqwest::Client::new()), &upstream);
        let learned = Arc::new(Mutex::new(Vec::new()));
        let (sender, sampler) = match client {
            Client::Naive => (Sender::Naive(NaiveClient::new(transport)), None),
            Client::Tollgate => {
                // Nothing configured: no quota, no model, no limits; the rate is learned.
                let (metrics, handle) = MetricsLayer::pair("demo-unknown-quota");
                let stack =
                    StackBuilder::new(Provider::openai_compatible(&workload.base_url).api_key(KEY))
                        .metrics(metrics)
                        .build(transport)?;
                // The learned rate, once a second of the run.
                let sampler = tokio::spawn({
                    let (handle, learned) = (handle.clone(), Arc::clone(&learned));
                    async move {
                        let started = Instant::now();
                        let mut tick = tokio::time::interval(Duration::from_secs(1));
                        loop {
                            tick.tick().await;
                            if let Some(per_minute) = handle.snapshot().learned_rate_per_minute {
                                let second = started.elapsed().as_secs_f64().round() as u64;
                                learned.lock().push((second, per_minute as f64 / 60.0));
                            }
                        }
                    }
                });
                (Sender::Tollgate { stack, handle }, Some(sampler))
            }
        };

        let progress = bars.add(super::progress_bar(requests, name(client))?);
        let driven =
            super::drive(settings, &sender, &workload, requests, &upstream, &progress).await;
        if let Some(sampler) = sampler {
            sampler.abort();
        }
        if driven.cut_off {
            progress.println(format!(
                "  ({}: cut off after {:?}: the requests still out count as failed)",
                name(client),
                super::RUN_LIMIT
            ));
        }
        if std::env::var_os("DEMO_DEBUG").is_some() {
            progress.println(format!("{}: mock {:?}", name(client), mock.stats()));
        }
        mock.shutdown().await;
        let learned = std::mem::take(&mut *learned.lock());
        Ok(Run {
            report: driven.report(&sender, upstream, false),
            learned,
        })
    }

    fn print_report(naive: &Run, stack: &Run) {
        let (n, s) = (&naive.report, &stack.report);
        let share = |run: &RunReport| {
            format!(
                "{:.0} %",
                100.0 * run.succeeded as f64 / capacity(run.elapsed)
            )
        };
        let learned = |run: &Run| {
            run.learned
                .last()
                .map_or("—".to_owned(), |&(_, rate)| format!("{rate:.1}"))
        };
        let rows: [(&str, String, String); 11] = [
            (
                "requests succeeded",
                n.succeeded.to_string(),
                s.succeeded.to_string(),
            ),
            (
                "requests failed",
                n.failed.to_string(),
                s.failed.to_string(),
            ),
            (
                "429s received",
                n.upstream.rate_limited().to_string(),
                s.upstream.rate_limited().to_string(),
            ),
            (
                "upstream calls made",
                n.upstream.calls().to_string(),
                s.upstream.calls().to_string(),
            ),
            (
                "goodput (successes per second)",
                super::per_second(n),
                super::per_second(s),
            ),
            ("goodput / server's available rate", share(n), share(s)),
            (
                "p50 latency",
                super::millis(n.percentile(0.5)),
                super::millis(s.percentile(0.5)),
            ),
            (
                "p99 latency",
                super::millis(n.percentile(0.99)),
                super::millis(s.percentile(0.99)),
            ),
            ("retries", n.retries.to_string(), s.retries.to_string()),
            (
                "learned rate at the end (per s)",
                learned(naive),
                learned(stack),
            ),
            ("wall time", super::seconds(n), super::seconds(s)),
        ];
        super::print_table(name(Client::Naive), name(Client::Tollgate), &rows);
        let each_second: Vec<String> = stack
            .learned
            .iter()
            .map(|(_, rate)| format!("{rate:.0}"))
            .collect();
        println!(
            "\nThe default stack's learned rate, requests per second, once a second: {}",
            each_second.join(" ")
        );
        println!(
            "\n\"Available rate\" is what the limiter lets through over the run: {BURST} requests \
             at once, then {RATE} a second less the other\ntenant's share; latency runs from a \
             request's first attempt to its answer or failure."
        );
    }

    /// Part 2's chart: next to part 1's, its stem followed by `-unknown-quota`.
    fn chart_path(known: &str) -> String {
        let path = std::path::Path::new(known);
        let stem = path
            .file_stem()
            .map_or("demo".into(), |stem| stem.to_string_lossy());
        let extension = path
            .extension()
            .map_or("svg".into(), |extension| extension.to_string_lossy());
        path.with_file_name(format!("{stem}-unknown-quota.{extension}"))
            .to_string_lossy()
            .into_owned()
    }
}

// ===== the chart =====

mod chart {
    //! Charts drawn with plotters: panels one above the other, sharing an x axis of seconds
    //! since the burst started, each with its lines and a legend.

    use plotters::coord::Shift;
    use plotters::prelude::*;

    use super::RunReport;
    use super::unknown_quota::{self, Run};

    type Result = std::result::Result<(), Box<dyn std::error::Error>>;

    /// The naive loop's color, the stack's, and the reference lines'.
    const NAIVE: RGBColor = RED;
    const TOLLGATE: RGBColor = BLUE;
    const REFERENCE: RGBColor = RGBColor(90, 90, 90);

    /// Part 1's chart: successes and 429s per second, each with both runs.
    pub(super) fn known_quota(path: &str, naive: &RunReport, tollgate: &RunReport) -> Result {
        let runs = [
            (super::Client::Naive.name(), naive, NAIVE),
            (super::Client::Tollgate.name(), tollgate, TOLLGATE),
        ];
        write(
            path,
            &[
                per_second_panel("successful responses per second", &runs, Count::Successes),
                per_second_panel("429s received per second", &runs, Count::RateLimited),
            ],
        )
    }

    /// Part 2's chart: successes and 429s per second of both runs, then the stack's learned
    /// rate; the rates against the server's available rate.
    pub(super) fn unknown_quota(path: &str, naive: &Run, stack: &Run) -> Result {
        let runs = [
            (
                unknown_quota::name(super::Client::Naive),
                &naive.report,
                NAIVE,
            ),
            (
                unknown_quota::name(super::Client::Tollgate),
                &stack.report,
                TOLLGATE,
            ),
        ];
        let seconds = runs
            .iter()
            .map(|(_, run, _)| run.elapsed.as_secs_f64().ceil())
            .fold(1.0, f64::max);
        // A step at each change of the other tenant's share.
        let available = {
            let (from, until) = (
                unknown_quota::TENANT_FROM.as_secs_f64(),
                unknown_quota::TENANT_UNTIL.as_secs_f64(),
            );
            let mut steps = vec![0.0];
            for change in [from, until] {
                if change < seconds {
                    steps.extend([change - 1e-9, change]);
                }
            }
            steps.push(seconds);
            Line::dashed(
                "server's available rate",
                REFERENCE,
                steps
                    .into_iter()
                    .map(|t| (t, unknown_quota::available_rate(t)))
                    .collect(),
            )
        };
        let mut successes =
            per_second_panel("successful responses per second", &runs, Count::Successes);
        successes.lines.push(available.clone());
        let learned = Panel {
            title: "the default stack's learned rate",
            y_desc: "requests per second",
            lines: vec![
                Line {
                    name: "learned rate".to_owned(),
                    color: TOLLGATE,
                    dashed: false,
                    points: stack
                        .learned
                        .iter()
                        .map(|&(s, rate)| (s as f64, rate))
                        .collect(),
                },
                available,
            ],
        };
        write(
            path,
            &[
                successes,
                per_second_panel("429s received per second", &runs, Count::RateLimited),
                learned,
            ],
        )
    }

    /// Which count of a second a panel shows.
    #[derive(Clone, Copy)]
    enum Count {
        Successes,
        RateLimited,
    }

    /// A panel with one line per run: a count of each second of its timeline.
    fn per_second_panel(
        title: &'static str,
        runs: &[(&str, &RunReport, RGBColor)],
        count: Count,
    ) -> Panel {
        let lines = runs
            .iter()
            .map(|&(name, run, color)| Line {
                name: name.to_owned(),
                color,
                dashed: false,
                points: run
                    .upstream
                    .timeline()
                    .into_iter()
                    .map(|(second, ok, limited)| {
                        let value = match count {
                            Count::Successes => ok,
                            Count::RateLimited => limited,
                        };
                        (second as f64, value as f64)
                    })
                    .collect(),
            })
            .collect();
        let y_desc = match count {
            Count::Successes => "responses per second",
            Count::RateLimited => "429s per second",
        };
        Panel {
            title,
            y_desc,
            lines,
        }
    }

    /// One panel of a chart.
    struct Panel {
        title: &'static str,
        /// What the y axis counts.
        y_desc: &'static str,
        lines: Vec<Line>,
    }

    /// One line of a panel, with its name in the legend.
    #[derive(Clone)]
    struct Line {
        name: String,
        color: RGBColor,
        /// Dashed, for a reference line.
        dashed: bool,
        /// (seconds since the burst started, value)
        points: Vec<(f64, f64)>,
    }

    impl Line {
        fn dashed(name: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
            Line {
                name: name.to_owned(),
                color,
                dashed: true,
                points,
            }
        }
    }

    /// Writes `panels` one above the other to an SVG file at `path`, on the same seconds.
    fn write(path: &str, panels: &[Panel]) -> Result {
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let seconds = panels
            .iter()
            .flat_map(|panel| &panel.lines)
            .flat_map(|line| &line.points)
            .map(|&(second, _)| second)
            .fold(1.0, f64::max);
        let height = 320 * u32::try_from(panels.len())?;
        let root = SVGBackend::new(path, (960, height)).into_drawing_area();
        root.fill(&WHITE)?;
        for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
            draw(area, panel, seconds)?;
        }
        root.present()?;
        Ok(())
    }

    /// Draws `panel` on `area`, from 0 to `seconds`, with room above its highest point.
    fn draw(area: &DrawingArea<SVGBackend<'_>, Shift>, panel: &Panel, seconds: f64) -> Result {
        let top = panel
            .lines
            .iter()
            .flat_map(|line| &line.points)
            .map(|&(_, value)| value)
            .fold(1.0, f64::max);
        // Room above the lines for the legend.
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..seconds, 0.0..(top * 1.4).ceil())?;
        chart
            .configure_mesh()
            .x_desc("seconds since the burst started")
            .y_desc(panel.y_desc)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for line in &panel.lines {
            let (color, style) = (line.color, line.color.stroke_width(2));
            let points = line.points.iter().copied();
            let series = if line.dashed {
                chart.draw_series(DashedLineSeries::new(points, 8, 6, style))?
            } else {
                chart.draw_series(LineSeries::new(points, style))?
            };
            // A dashed line's sample in the legend has a gap too.
            let gap = if line.dashed { (8, 12) } else { (10, 10) };
            series.label(line.name.as_str()).legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new([(0, 0), (gap.0, 0)], color.stroke_width(2))
                    + PathElement::new([(gap.1, 0), (20, 0)], color.stroke_width(2))
            });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
        Ok(())
    }
}
