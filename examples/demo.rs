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
//! (`Provider::openai_compatible(url).with_api_key(key)`), whose adaptive limit learns the rate:
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

use tollgate::transport::ReqwestTransport;

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
                "{} ({model}), kept to {} RPM and {} TPM",
                tollgate::redact::url(base_url),
                self.rpm,
                self.tpm
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
            let metrics = MetricsLayer::new("demo");
            let handle = metrics.handle();
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
                    .with_name(name)
                    .with_base_url(&mocks.fallback.base_url())
                    .with_api_key(FALLBACK_KEY)
                    .with_model("claude-haiku-4-5")
                    .with_limits(Limits::new([Limit::requests(per_minute(FALLBACK_RPM))]))
            };
            builder = StackBuilder::new(
                Provider::openai(OpenAiTier::Tier1)
                    .with_name("openai")
                    .with_base_url(&mocks.primary.base_url())
                    .with_api_key(PRIMARY_KEY)
                    .with_model("gpt-4o-mini")
                    .with_limits(limits)
                    .with_max_in_flight(MOCK_CONCURRENCY as u32)
                    .with_breaker(breaker),
            )
            .with_fallback(anthropic("anthropic"))
            .with_context_window_fallback(anthropic("anthropic-long-context"));
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
                    .with_base_url(base_url)
                    .with_api_key(key)
                    .with_model(model)
                    .with_limits(limits)
                    .with_breaker(breaker),
            );
            if let Some(anthropic_key) = anthropic_key {
                builder = builder.with_fallback(
                    Provider::anthropic(AnthropicModel::Haiku4)
                        .with_api_key(anthropic_key)
                        .with_model("claude-haiku-4-5"),
                );
            }
        }
        (Target::Mock, None) => return Err("the mocks did not start".into()),
    }
    Ok(builder.with_metrics(metrics).build(transport)?)
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

#[path = "support/demo_unknown_quota.rs"]
mod unknown_quota;

// ===== the chart =====

#[path = "support/demo_chart.rs"]
mod chart;
