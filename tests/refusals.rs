//! Every layer's own refusal, met by every layer that reads one, on tokio's paused clock.
//!
//! Each refusal is produced by the real layer — an open breaker, a spent local quota, a request
//! too large for its token limit, a full concurrency cap, a fallback out of targets, a retry
//! layer that gave up, a router with no deployment free, an attempt that timed out — behind a
//! counter of the calls that reach it. Each consumer — `RetryLayer` (the default and the OpenAI
//! policies), `FallbackLayer`, `MetricsLayer`, `CircuitBreakerLayer` — is put above it, and
//! [`TABLE`] says what it must do: the refusal carries its verdict ([`Verdict::of_error`]), and
//! one rule reads them all. The regression tests at the end guard what went wrong before
//! refusals carried verdicts, when an open breaker, a full cap or an exhausted fallback was
//! an `unknown` error to every layer above.

#![cfg(all(
    feature = "circuit-breaker",
    feature = "concurrency",
    feature = "fallback",
    feature = "metrics",
    feature = "ratelimit",
    feature = "retry",
    feature = "router",
    feature = "timeout"
))]

use std::any::Any;
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::time::{self, Instant};
use tollgate::body::BufferedBody;
use tollgate::circuit_breaker::{
    BreakerConfig, BreakerState, CircuitBreakerLayer, CircuitOpen, ClassSet, Trip,
};
use tollgate::concurrency::{ConcurrencyConfig, ConcurrencyLayer, Saturated};
use tollgate::fallback::{
    AllTargetsFailed, BoxTarget, FallbackConfig, FallbackLayer, FallbackPolicy, Target, boxed,
};
use tollgate::metrics::MetricsLayer;
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::error::{CostTooLarge, RateLimited};
use tollgate::ratelimit::{Limit, Limits, OpenAiChat, RateLimitConfig, RateLimitLayer};
use tollgate::retry::{Backoff, Jitter, RetriesExhausted, RetryLayer, RetryPolicy, rng_fn};
use tollgate::router::error::NoDeployment;
use tollgate::router::{Deployment, RouterConfig, RouterLayer};
use tollgate::timeout::{TimedOut, TimeoutConfig, TimeoutLayer};
use tollgate::{BoxError, Classified, DelaySource, ErrorClass, RetryAdvice, Verdict};
use tower::{Layer, Service, ServiceExt};

// ===== fixtures =====

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

const fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

/// Every service here: the fallback's boxed target type, so any of them can be a primary or a
/// fallback.
type Svc = BoxTarget<String>;

/// A chat request of 5,000 tokens of output (and a few of prompt) for `OpenAiChat`.
fn chat() -> Request<BufferedBody> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("content-type", "application/json")
        .body(BufferedBody::from(
            r#"{"model":"gpt-4o","max_tokens":5000,"messages":[{"role":"user","content":"Hello"}]}"#,
        ))
        .unwrap()
}

/// An upstream answering `status` at once, with no verdict attached: every layer judges it by
/// the status rules (`Verdict::of_outcome`, the generic classifier).
fn answering(status: u16) -> Svc {
    boxed(tower::service_fn(
        move |_: Request<BufferedBody>| async move {
            Ok::<_, BoxError>(
                Response::builder()
                    .status(status)
                    .body(String::new())
                    .unwrap(),
            )
        },
    ))
}

/// An upstream answering `status` with `retry-after: <after> s`.
fn answering_after(status: u16, after: u64) -> Svc {
    boxed(tower::service_fn(
        move |_: Request<BufferedBody>| async move {
            Ok::<_, BoxError>(
                Response::builder()
                    .status(status)
                    .header("retry-after", after.to_string())
                    .body(String::new())
                    .unwrap(),
            )
        },
    ))
}

/// An upstream that never answers.
fn never_answering() -> Svc {
    boxed(tower::service_fn(|_: Request<BufferedBody>| {
        std::future::pending::<Result<Response<String>, BoxError>>()
    }))
}

/// `service`, and a count of the calls that reach it.
fn counted(service: Svc) -> (Svc, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let service = service.map_request(move |request: Request<BufferedBody>| {
        seen.fetch_add(1, Ordering::SeqCst);
        request
    });
    (boxed(service), calls)
}

fn breaker_tripping_at_once() -> BreakerConfig {
    BreakerConfig::default().with_trip(Trip::ConsecutiveFailures(NonZeroU32::MIN))
}

/// A retry policy with its backoff unjittered (0.5 s, 1 s, 2 s, … up to 8 s), so that every
/// virtual duration is exact.
fn unjittered(policy: RetryPolicy) -> RetryPolicy {
    policy.with_backoff(Backoff::exponential(ms(500), secs(8)).with_jitter(Jitter::None))
}

/// What a `MetricsLayer` over `service` records for one request: the `outcome` label of each
/// `tollgate_requests_total` series.
async fn recorded_outcomes(service: Svc) -> Vec<String> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let _ = MetricsLayer::new("refusals")
        .layer(service)
        .oneshot(chat())
        .await;
    prometheus
        .render()
        .lines()
        .filter(|line| line.starts_with("tollgate_requests_total{"))
        .filter_map(|line| {
            let rest = &line[line.find("outcome=\"")? + "outcome=\"".len()..];
            Some(rest[..rest.find('"')?].to_owned())
        })
        .collect()
}

// ===== the refusals =====

/// The refusals, each as the real layer makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// `CircuitOpen`: a breaker opened by hand for 60 s.
    CircuitOpen,
    /// `RateLimited`: a reject-only quota of 1 request a minute, spent: a 60 s wait.
    RateLimited,
    /// `RateLimited`: a reject-only quota of 1 request a second, spent: a 1 s wait, below the
    /// fallback's 10 s threshold.
    RateLimitedBriefly,
    /// `CostTooLarge`: a token limit of 1,000 a minute for a request of 5,000 and more.
    CostTooLarge,
    /// `Saturated`: a cap of 1 in flight, no queue, its slot held by a call never answered.
    Saturated,
    /// `AllTargetsFailed`: a fallback whose primary and one target both answer 503.
    AllTargetsFailed,
    /// `RetriesExhausted`: a retry layer (1 retry after 1 s) over an upstream answering 503.
    RetriesExhausted,
    /// `NoDeployment`: a router of one deployment whose quota (1 request a minute) is spent,
    /// waiting for none.
    NoDeployment,
    /// `TimedOut` (in a `Classified`): a 1 s limit on the response head of an upstream that
    /// never answers.
    TimedOut,
}

impl Refusal {
    /// Whether `error` is this refusal, as its layer returned it (not wrapped by a consumer).
    fn is(self, error: &BoxError) -> bool {
        match self {
            Refusal::CircuitOpen => error.is::<CircuitOpen>(),
            Refusal::RateLimited | Refusal::RateLimitedBriefly => error.is::<RateLimited>(),
            Refusal::CostTooLarge => error.is::<CostTooLarge>(),
            Refusal::Saturated => error.is::<Saturated>(),
            Refusal::AllTargetsFailed => error.is::<AllTargetsFailed>(),
            Refusal::RetriesExhausted => error.is::<RetriesExhausted>(),
            Refusal::NoDeployment => error.is::<NoDeployment>(),
            Refusal::TimedOut => error.is::<Classified>() && TimedOut::find(&**error).is_some(),
        }
    }
}

/// A service refusing every call with one refusal, and the count of the calls reaching it.
struct Refuser {
    service: Svc,
    calls: Arc<AtomicUsize>,
    /// What the refusal needs kept alive: the call holding the concurrency cap's one slot.
    _held: Option<Box<dyn Any + Send>>,
}

impl Refuser {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A fresh service refusing every call with `refusal`, made by the real layer. Whatever it
/// takes to bring the layer there (a quota spent, a slot taken) goes around the counter.
async fn refuser(refusal: Refusal) -> Refuser {
    let mut held: Option<Box<dyn Any + Send>> = None;
    let per_minute = |n: NonZeroU64| Limits::new([Limit::requests(Quota::per_minute(n))]);
    let service = match refusal {
        Refusal::CircuitOpen => {
            let layer = CircuitBreakerLayer::new(BreakerConfig::default());
            layer.handle().open_for(None, secs(60));
            boxed(layer.layer(answering(200)))
        }
        Refusal::RateLimited | Refusal::RateLimitedBriefly => {
            let quota = match refusal {
                Refusal::RateLimited => Quota::per_minute(n(1)),
                _ => Quota::per_second(n(1)),
            };
            let service = RateLimitLayer::new(
                RateLimitConfig::new(Limits::new([Limit::requests(quota)]))
                    .with_max_wait(Duration::ZERO),
            )
            .layer(answering(200));
            service.clone().oneshot(chat()).await.unwrap();
            boxed(service)
        }
        Refusal::CostTooLarge => boxed(
            RateLimitLayer::new(Limits::new([Limit::tokens(Quota::per_minute(n(1_000)))]))
                .with_estimator(OpenAiChat::new())
                .layer(answering(200)),
        ),
        Refusal::Saturated => {
            let mut service = ConcurrencyLayer::new(ConcurrencyConfig::new(1).with_max_queue(0))
                .layer(never_answering());
            // Takes the one slot, and keeps it: the call is never answered, never dropped.
            let in_flight = ServiceExt::<Request<BufferedBody>>::ready(&mut service)
                .await
                .unwrap()
                .call(chat());
            held = Some(Box::new(in_flight));
            boxed(service.map_response(|response| response.map(|_| String::new())))
        }
        Refusal::AllTargetsFailed => boxed(
            FallbackLayer::new(
                FallbackConfig::new([Target::new("second", answering(503))])
                    .with_primary_name("first"),
            )
            .layer(answering(503)),
        ),
        Refusal::RetriesExhausted => {
            boxed(
                RetryLayer::new(RetryPolicy::default().with_max_retries(1).with_backoff(
                    Backoff::exponential(secs(1), secs(1)).with_jitter(Jitter::None),
                ))
                .layer(answering(503)),
            )
        }
        Refusal::NoDeployment => {
            let service = RouterLayer::new(
                RouterConfig::new([Deployment::new("only").with_limits(per_minute(n(1)))])
                    .with_max_wait(Duration::ZERO),
            )
            .unwrap()
            .layer(answering(200));
            service.clone().oneshot(chat()).await.unwrap();
            boxed(service)
        }
        Refusal::TimedOut => boxed(
            TimeoutLayer::new(TimeoutConfig::none().with_response_head(secs(1)))
                .layer(never_answering())
                .map_response(|response| response.map(|_| String::new())),
        ),
    };
    let (service, calls) = counted(service);
    Refuser {
        service,
        calls,
        _held: held,
    }
}

// ===== the table =====

/// What the `FallbackLayer` (default policy, one fallback answering 200) does with a refusal
/// of its primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// Moves on: the fallback answers.
    MovesOn,
    /// Returns the refusal to the caller, unchanged.
    Returns,
}

/// One refusal, and what each consumer does with it.
#[derive(Debug)]
struct Row {
    refusal: Refusal,
    /// `Verdict::of_error`: the class, the advice, whether it is a local refusal (nothing was
    /// sent), and the delay with its source.
    class: ErrorClass,
    advice: RetryAdvice,
    local: bool,
    delay: Option<(Duration, DelaySource)>,
    /// `RetryLayer` with `RetryPolicy::default()`, unjittered: the calls reaching the refusing
    /// service, and the virtual time the request took.
    retry_default: (usize, Duration),
    /// The same with `RetryPolicy::openai()`, unjittered.
    retry_openai: (usize, Duration),
    /// `FallbackLayer` with `FallbackPolicy::default()`.
    fallback: Fallback,
    /// The `outcome` label `MetricsLayer` records.
    metrics: &'static str,
    /// Whether a `CircuitBreakerLayer` tripping on one counted failure opens on it.
    opens_breaker: bool,
}

/// Retried: not at all, one call, no time.
const ONCE: (usize, Duration) = (1, Duration::ZERO);

/// Every refusal × every consumer.
///
/// - **Retry.** A local refusal advises `Elsewhere` (or `Never`), never `SameTarget`: the retry
///   layer hands it back at once, under both policies (the OpenAI policy's
///   `retry_unrecognized_errors` applies to `Unknown` errors only, and none of these is one).
///   `TimedOut` is a `Timeout` to be retried on the same target: 3 retries by default after
///   0.5 s, 1 s and 2 s (4 × 1 s + 3.5 s), 2 under the OpenAI policy (3 × 1 s + 1.5 s).
///   `AllTargetsFailed` and `RetriesExhausted` carry their last attempt's verdict, here the
///   upstream's 503: an `Overloaded`, `SameTarget`, not local, without delay — so they are
///   retried as an overload is, up to `max_overloaded_retries` (2 under both policies: 3 calls,
///   after 0.5 s and 1 s). Each `RetriesExhausted` call itself takes 1 s (its own retry).
/// - **Fallback.** `FallbackPolicy::default()` moves on for the target-health classes
///   (overload, server error, timeout, connection), an exhausted quota and a rejected key, and
///   for a rate limit whose wait exceeds `rate_limit_threshold` (10 s); the rest is returned.
///   So an open breaker (`Overloaded`), a 60 s local quota or router wait (`RateLimited`, 60 s),
///   an exhausted fallback or retry layer (`Overloaded`) and a timeout move on; a 1 s local
///   quota wait and a full concurrency cap (`RateLimited` with no wait: `RateLimited` is not in
///   `move_on`) and a request too large (`PayloadTooLarge`) are returned.
/// - **Metrics.** The verdict's class, never `unknown`.
/// - **Breaker.** A local refusal is counted as nothing; the rest is counted by class: an
///   overload or a timeout opens it.
const TABLE: [Row; 9] = [
    Row {
        refusal: Refusal::CircuitOpen,
        class: ErrorClass::Overloaded,
        advice: RetryAdvice::Elsewhere,
        local: true,
        delay: Some((secs(60), DelaySource::BreakerOpen)),
        retry_default: ONCE,
        retry_openai: ONCE,
        fallback: Fallback::MovesOn,
        metrics: "overloaded",
        opens_breaker: false,
    },
    Row {
        refusal: Refusal::RateLimited,
        class: ErrorClass::RateLimited,
        advice: RetryAdvice::Elsewhere,
        local: true,
        delay: Some((secs(60), DelaySource::LocalQuota)),
        retry_default: ONCE,
        retry_openai: ONCE,
        fallback: Fallback::MovesOn,
        metrics: "rate_limited",
        opens_breaker: false,
    },
    Row {
        refusal: Refusal::RateLimitedBriefly,
        class: ErrorClass::RateLimited,
        advice: RetryAdvice::Elsewhere,
        local: true,
        delay: Some((secs(1), DelaySource::LocalQuota)),
        retry_default: ONCE,
        retry_openai: ONCE,
        fallback: Fallback::Returns,
        metrics: "rate_limited",
        opens_breaker: false,
    },
    Row {
        refusal: Refusal::CostTooLarge,
        class: ErrorClass::PayloadTooLarge,
        advice: RetryAdvice::Never,
        local: true,
        delay: None,
        retry_default: ONCE,
        retry_openai: ONCE,
        fallback: Fallback::Returns,
        metrics: "payload_too_large",
        opens_breaker: false,
    },
    Row {
        refusal: Refusal::Saturated,
        class: ErrorClass::RateLimited,
        advice: RetryAdvice::Elsewhere,
        local: true,
        // A fixed cap measures no latency, and this one sets no `max_wait`: one second.
        delay: Some((secs(1), DelaySource::LocalQuota)),
        retry_default: ONCE,
        retry_openai: ONCE,
        fallback: Fallback::Returns,
        metrics: "rate_limited",
        opens_breaker: false,
    },
    Row {
        refusal: Refusal::AllTargetsFailed,
        class: ErrorClass::Overloaded,
        advice: RetryAdvice::SameTarget,
        local: false,
        delay: None,
        retry_default: (3, ms(1_500)),
        retry_openai: (3, ms(1_500)),
        fallback: Fallback::MovesOn,
        metrics: "overloaded",
        opens_breaker: true,
    },
    Row {
        refusal: Refusal::RetriesExhausted,
        class: ErrorClass::Overloaded,
        advice: RetryAdvice::SameTarget,
        local: false,
        delay: None,
        retry_default: (3, ms(4_500)),
        retry_openai: (3, ms(4_500)),
        fallback: Fallback::MovesOn,
        metrics: "overloaded",
        opens_breaker: true,
    },
    Row {
        refusal: Refusal::NoDeployment,
        class: ErrorClass::RateLimited,
        advice: RetryAdvice::Elsewhere,
        local: true,
        delay: Some((secs(60), DelaySource::LocalQuota)),
        retry_default: ONCE,
        retry_openai: ONCE,
        fallback: Fallback::MovesOn,
        metrics: "rate_limited",
        opens_breaker: false,
    },
    Row {
        refusal: Refusal::TimedOut,
        class: ErrorClass::Timeout,
        advice: RetryAdvice::SameTarget,
        local: false,
        delay: None,
        retry_default: (4, ms(7_500)),
        retry_openai: (3, ms(4_500)),
        fallback: Fallback::MovesOn,
        metrics: "timeout",
        opens_breaker: true,
    },
];

/// Fails with every mismatch at once, so that one wrong row hides no other.
fn assert_none(column: &str, mismatches: &[String]) {
    assert!(
        mismatches.is_empty(),
        "{column}:\n  {}",
        mismatches.join("\n  ")
    );
}

/// The sanity row: each refusal is the layer's own error, reached in one call, and carries
/// the verdict the table lists.
#[tokio::test(start_paused = true)]
async fn each_refusal_carries_its_verdict() {
    let mut mismatches = Vec::new();
    for row in &TABLE {
        let refuser = refuser(row.refusal).await;
        let error = refuser.service.clone().oneshot(chat()).await.unwrap_err();
        if !row.refusal.is(&error) {
            mismatches.push(format!("{:?}: refused with {error:?}", row.refusal));
        }
        let Some(verdict) = Verdict::of_error(&*error) else {
            mismatches.push(format!("{:?}: no verdict", row.refusal));
            continue;
        };
        let got = (
            verdict.class(),
            verdict.advice(),
            verdict.is_local_refusal(),
            verdict.delay().map(|delay| (delay, verdict.delay_source())),
        );
        let expected = (Some(row.class), row.advice, row.local, row.delay);
        if got != expected {
            mismatches.push(format!(
                "{:?}: verdict {got:?}, expected {expected:?}",
                row.refusal
            ));
        }
        if refuser.calls() != 1 {
            mismatches.push(format!("{:?}: {} calls", row.refusal, refuser.calls()));
        }
    }
    assert_none("Verdict::of_error", &mismatches);
}

/// Under `policy`, each refusal is retried as `expected` says: the calls reaching it and the
/// virtual time taken; a refusal not retried comes back as it is, one retried ends in
/// `RetriesExhausted` after as many attempts as calls.
async fn retry_column(policy: RetryPolicy, expected: fn(&Row) -> (usize, Duration)) {
    let mut mismatches = Vec::new();
    for row in &TABLE {
        let refuser = refuser(row.refusal).await;
        let client = RetryLayer::new(policy.clone()).layer(refuser.service.clone());
        let start = Instant::now();
        let error = client.oneshot(chat()).await.unwrap_err();
        let got = (refuser.calls(), start.elapsed());
        if got != expected(row) {
            mismatches.push(format!(
                "{:?}: (calls, time) {got:?}, expected {:?}",
                row.refusal,
                expected(row)
            ));
        }
        let handed_back = match got.0 {
            1 => row.refusal.is(&error),
            calls => error
                .downcast_ref::<RetriesExhausted>()
                .is_some_and(|exhausted| exhausted.attempts() as usize == calls),
        };
        if !handed_back {
            mismatches.push(format!("{:?}: ended in {error:?}", row.refusal));
        }
    }
    assert_none("RetryLayer", &mismatches);
}

#[tokio::test(start_paused = true)]
async fn retry_under_the_default_policy() {
    retry_column(unjittered(RetryPolicy::default()), |row| row.retry_default).await;
}

#[tokio::test(start_paused = true)]
async fn retry_under_the_openai_policy() {
    retry_column(unjittered(RetryPolicy::openai()), |row| row.retry_openai).await;
}

/// A fallback whose primary refuses and whose one fallback answers 200: it moves on, calling
/// the refusing service once and the fallback once, or returns the refusal unchanged without
/// calling the fallback.
#[tokio::test(start_paused = true)]
async fn fallback_moves_on_or_returns() {
    let mut mismatches = Vec::new();
    for row in &TABLE {
        let refuser = refuser(row.refusal).await;
        let (backup, backup_calls) = counted(answering(200));
        let client = FallbackLayer::new(
            FallbackConfig::new([Target::new("backup", backup)]).with_primary_name("refusing"),
        )
        .layer(refuser.service.clone());
        let outcome = client.oneshot(chat()).await;
        let backup_calls = backup_calls.load(Ordering::SeqCst);
        let got = match &outcome {
            Ok(response) if response.status() == StatusCode::OK && backup_calls == 1 => {
                Some(Fallback::MovesOn)
            }
            Err(error) if row.refusal.is(error) && backup_calls == 0 => Some(Fallback::Returns),
            _ => None,
        };
        if got != Some(row.fallback) || refuser.calls() != 1 {
            mismatches.push(format!(
                "{:?}: {outcome:?} after {} calls, {backup_calls} to the fallback; expected {:?}",
                row.refusal,
                refuser.calls(),
                row.fallback
            ));
        }
    }
    assert_none("FallbackLayer", &mismatches);
}

/// `MetricsLayer` records each refusal under its verdict's class, never `unknown`.
#[tokio::test(start_paused = true)]
async fn metrics_record_the_class() {
    let mut mismatches = Vec::new();
    for row in &TABLE {
        let refuser = refuser(row.refusal).await;
        let outcomes = recorded_outcomes(refuser.service.clone()).await;
        if outcomes != [row.metrics] {
            mismatches.push(format!(
                "{:?}: outcome {outcomes:?}, expected {:?}",
                row.refusal, row.metrics
            ));
        }
        assert!(!outcomes.iter().any(|o| o == "unknown"));
    }
    assert_none("MetricsLayer", &mismatches);
}

/// A breaker tripping on one counted failure, counting the target-health classes (its
/// default) or every class: a local refusal never opens it, whatever its class; the rest open
/// it by class. Once open, the second call does not reach the refusing service.
#[tokio::test(start_paused = true)]
async fn breaker_counts_no_local_refusal() {
    let every_class = ErrorClass::ALL
        .into_iter()
        .fold(ClassSet::EMPTY, ClassSet::with);
    let mut mismatches = Vec::new();
    for counted_classes in [ClassSet::TARGET_HEALTH, every_class] {
        for row in &TABLE {
            let refuser = refuser(row.refusal).await;
            let layer =
                CircuitBreakerLayer::new(breaker_tripping_at_once().with_counted(counted_classes));
            let handle = layer.handle();
            let client = layer.layer(refuser.service.clone());
            let first = client.clone().oneshot(chat()).await.unwrap_err();
            let opened = handle.state(None) == BreakerState::Open;
            let second = client.clone().oneshot(chat()).await.unwrap_err();
            let consistent = if opened {
                second.is::<CircuitOpen>() && refuser.calls() == 1
            } else {
                row.refusal.is(&second) && refuser.calls() == 2
            };
            if opened != row.opens_breaker || !consistent || !row.refusal.is(&first) {
                mismatches.push(format!(
                    "{:?} (counting {counted_classes:?}): opened {opened}, expected {}; \
                     then {second:?} after {} calls",
                    row.refusal,
                    row.opens_breaker,
                    refuser.calls()
                ));
            }
        }
    }
    assert_none("CircuitBreakerLayer", &mismatches);
}

// ===== regressions =====

/// Before refusals carried verdicts, `CircuitOpen` was an unrecognised error, which the OpenAI
/// policy (`retry_unrecognized_errors`) retried as a dropped connection, against a breaker
/// that would refuse again. Now the open breaker is an overload to try elsewhere: handed back
/// at once.
#[tokio::test(start_paused = true)]
async fn retry_under_openai_policy_does_not_retry_an_open_breaker() {
    // A breaker open for 60 s: one attempt, at once.
    let open = refuser(Refusal::CircuitOpen).await;
    let start = Instant::now();
    let error = RetryLayer::openai()
        .layer(open.service.clone())
        .oneshot(chat())
        .await
        .unwrap_err();
    assert!(error.is::<CircuitOpen>(), "{error:?}");
    assert_eq!(open.calls(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);

    // In the documented order — retry above the breaker — over an upstream answering 503: the
    // 503 is retried (after 0.5 s × 0.75, the draw pinned at 0), the breaker it opened refuses
    // the retry, and that refusal is not retried in turn.
    let (upstream, upstream_calls) = counted(answering(503));
    let (breaker, attempts) = counted(boxed(
        CircuitBreakerLayer::new(breaker_tripping_at_once()).layer(upstream),
    ));
    let start = Instant::now();
    let error = RetryLayer::openai()
        .with_rng(rng_fn(|| 0.0))
        .layer(breaker)
        .oneshot(chat())
        .await
        .unwrap_err();
    assert!(error.is::<CircuitOpen>(), "{error:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(upstream_calls.load(Ordering::SeqCst), 1);
    assert_eq!(start.elapsed(), ms(375));
}

/// Before, `MetricsLayer` recorded an open breaker as `unknown` and `FallbackLayer` knew it only
/// by downcasting. Now both read its verdict: an overload, for the time the breaker stays open.
#[tokio::test(start_paused = true)]
async fn metrics_and_fallback_see_circuit_open_as_an_overload() {
    let open = refuser(Refusal::CircuitOpen).await;
    assert_eq!(
        recorded_outcomes(open.service.clone()).await,
        ["overloaded"]
    );

    // The fallback moves on, and cools the primary down for exactly the 60 s the breaker
    // stays open: the next request goes straight to the fallback; after 60 s the primary's
    // breaker lets a probe through, and the primary answers.
    let open = refuser(Refusal::CircuitOpen).await;
    let (backup, backup_calls) = counted(answering(200));
    let client = FallbackLayer::new(
        FallbackConfig::new([Target::new("backup", backup)]).with_primary_name("open"),
    )
    .layer(open.service.clone());
    for _ in 0..2 {
        let response = client.clone().oneshot(chat()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!((open.calls(), backup_calls.load(Ordering::SeqCst)), (1, 2));
    time::advance(secs(60)).await;
    let response = client.clone().oneshot(chat()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!((open.calls(), backup_calls.load(Ordering::SeqCst)), (2, 2));

    // With every target's breaker open, the fallback fails with each one's overload.
    let (first, second) = (
        refuser(Refusal::CircuitOpen).await,
        refuser(Refusal::CircuitOpen).await,
    );
    let error = FallbackLayer::new(
        FallbackConfig::new([Target::new("second", second.service.clone())])
            .with_primary_name("first"),
    )
    .layer(first.service.clone())
    .oneshot(chat())
    .await
    .unwrap_err();
    let failed = error.downcast_ref::<AllTargetsFailed>().unwrap();
    let classes: Vec<_> = failed
        .attempts()
        .map(|(name, verdict)| (name.to_owned(), verdict.class()))
        .collect();
    assert_eq!(
        classes,
        [
            ("first".to_owned(), Some(ErrorClass::Overloaded)),
            ("second".to_owned(), Some(ErrorClass::Overloaded)),
        ]
    );
    // Nothing was sent: the refusal it carries is the last breaker's, local, for its 60 s.
    let verdict = Verdict::of_error(&*error).unwrap();
    assert!(verdict.is_local_refusal());
    assert_eq!(
        (verdict.delay(), verdict.delay_source()),
        (Some(secs(60)), DelaySource::BreakerOpen)
    );
}

/// Before, `Saturated` was `unknown` everywhere: recorded so, retried as a dropped connection
/// by the OpenAI policy. Now it is a rate limit, refused locally, to try elsewhere.
#[tokio::test(start_paused = true)]
async fn saturated_is_a_rate_limit_not_unknown() {
    let full = refuser(Refusal::Saturated).await;
    let error = full.service.clone().oneshot(chat()).await.unwrap_err();
    let verdict = Verdict::of_error(&*error).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));
    assert_eq!(verdict.advice(), RetryAdvice::Elsewhere);
    assert!(verdict.is_local_refusal());

    let full = refuser(Refusal::Saturated).await;
    assert_eq!(
        recorded_outcomes(full.service.clone()).await,
        ["rate_limited"]
    );

    let full = refuser(Refusal::Saturated).await;
    let error = RetryLayer::openai()
        .layer(full.service.clone())
        .oneshot(chat())
        .await
        .unwrap_err();
    assert!(error.is::<Saturated>(), "{error:?}");
    assert_eq!(full.calls(), 1);

    // A fallback moving on for rate limits moves on from it; the default policy, for which a
    // rate limit without a wait above 10 s is the caller's to wait out, returns it.
    let full = refuser(Refusal::Saturated).await;
    let response = FallbackLayer::new(
        FallbackConfig::new([Target::new("backup", answering(200))]).with_policy(
            FallbackPolicy::default()
                .with_moving_on(ClassSet::TARGET_HEALTH.with(ErrorClass::RateLimited)),
        ),
    )
    .layer(full.service.clone())
    .oneshot(chat())
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Before, `AllTargetsFailed` had no source, so the layers above saw an `unknown` error. Now
/// it carries its last attempt's verdict, with the time the first cooling target is free as
/// its delay.
#[tokio::test(start_paused = true)]
async fn all_targets_failed_carries_the_last_verdict() {
    // The primary asks for 30 s (a rate limit beyond the 10 s threshold: it cools down), the
    // target is overloaded.
    let (primary, primary_calls) = counted(answering_after(429, 30));
    let exhausted = FallbackLayer::new(
        FallbackConfig::new([Target::new("second", answering(503))]).with_primary_name("first"),
    )
    .layer(primary);
    let error = exhausted.clone().oneshot(chat()).await.unwrap_err();
    let failed = error.downcast_ref::<AllTargetsFailed>().unwrap();
    let classes: Vec<_> = failed.attempts().map(|(_, v)| v.class()).collect();
    assert_eq!(
        classes,
        [Some(ErrorClass::RateLimited), Some(ErrorClass::Overloaded)]
    );
    let verdict = Verdict::of_error(&*error).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
    assert_eq!(verdict.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(verdict.advice(), RetryAdvice::SameTarget);
    assert!(!verdict.is_local_refusal());
    assert_eq!(verdict.delay(), None);

    // 10 s later the primary still cools for 20 s: only the target is tried, and the
    // refusal's delay is when the primary is free again.
    time::advance(secs(10)).await;
    let error = exhausted.clone().oneshot(chat()).await.unwrap_err();
    assert_eq!(primary_calls.load(Ordering::SeqCst), 1);
    let failed = error.downcast_ref::<AllTargetsFailed>().unwrap();
    assert_eq!(failed.retry_after(), Some(secs(20)));
    let verdict = Verdict::of_error(&*error).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
    assert_eq!(
        (verdict.delay(), verdict.delay_source()),
        (Some(secs(20)), DelaySource::LocalQuota)
    );

    // Every consumer above reads it as that overload.
    let refused = refuser(Refusal::AllTargetsFailed).await;
    assert_eq!(
        recorded_outcomes(refused.service.clone()).await,
        ["overloaded"]
    );
    let refused = refuser(Refusal::AllTargetsFailed).await;
    let response = FallbackLayer::new(FallbackConfig::new([Target::new("backup", answering(200))]))
        .layer(refused.service.clone())
        .oneshot(chat())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let refused = refuser(Refusal::AllTargetsFailed).await;
    let layer = CircuitBreakerLayer::new(breaker_tripping_at_once());
    let handle = layer.handle();
    let _ = layer.layer(refused.service.clone()).oneshot(chat()).await;
    assert_eq!(handle.state(None), BreakerState::Open);
}

/// `FallbackPolicy::move_on` promises that an open circuit always moves on, whatever the set:
/// a breaker's refusal says nothing of the request, and the next target may take it. The
/// fallback used to downcast `CircuitOpen` and move on before consulting the set; it now
/// judges the refusal by its verdict's class alone (`Overloaded`), so a set without
/// `Overloaded` hands the open breaker's refusal back to the caller.
#[tokio::test(start_paused = true)]
async fn an_open_circuit_moves_on_whatever_the_move_on_set() {
    let open = refuser(Refusal::CircuitOpen).await;
    let (backup, backup_calls) = counted(answering(200));
    let outcome = FallbackLayer::new(
        FallbackConfig::new([Target::new("backup", backup)]).with_policy(
            FallbackPolicy::default().with_moving_on(ClassSet::EMPTY.with(ErrorClass::ServerError)),
        ),
    )
    .layer(open.service.clone())
    .oneshot(chat())
    .await;
    assert_eq!(
        outcome.map(|response| response.status()).ok(),
        Some(StatusCode::OK)
    );
    assert_eq!(backup_calls.load(Ordering::SeqCst), 1);
}
