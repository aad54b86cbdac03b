//! Which target the fallback chooses, decision by decision, on tokio's paused clock: the rate
//! limit threshold at its boundary, a rate limit the policy moves on for, an open breaker's
//! refusal whatever the policy, the cooldown a failure without a delay earns, each typed chain
//! entered for its own class and followed without cooldowns, a wait that ends exactly at the
//! deadline, and the policy's setters. Found by mutation testing (CONTRIBUTING.md, "Mutation
//! testing").

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::{self, Instant};
use tollgate_core::body::BufferedBody;
use tollgate_core::{ClassSet, DelaySource, ErrorClass, Verdict};
use tollgate_fallback::{
    AllTargetsFailed, FallbackConfig, FallbackLayer, FallbackPolicy, SetModel, Target,
};
use tower::{Layer, Service, ServiceExt};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A target answering with its name, and with the verdicts of `script` in turn (success once
/// the script is over); it counts its calls.
#[derive(Clone)]
struct Scripted {
    name: &'static str,
    script: Arc<Mutex<Vec<Verdict>>>,
    calls: Arc<AtomicU32>,
}

impl Scripted {
    fn new(name: &'static str, script: impl IntoIterator<Item = Verdict>) -> Self {
        let mut script: Vec<Verdict> = script.into_iter().collect();
        script.reverse();
        Scripted {
            name,
            script: Arc::new(Mutex::new(script)),
            calls: Arc::default(),
        }
    }

    fn ok(name: &'static str) -> Self {
        Scripted::new(name, [])
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Service<Request<BufferedBody>> for Scripted {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let verdict = self.script.lock().unwrap().pop();
        let body = format!(
            "{} {}",
            self.name,
            std::str::from_utf8(request.body().bytes()).unwrap()
        );
        let mut response = Response::new(body);
        if let Some(verdict) = verdict {
            *response.status_mut() = verdict
                .status()
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            response.extensions_mut().insert(verdict);
        }
        std::future::ready(Ok(response))
    }
}

fn request() -> Request<BufferedBody> {
    Request::post("https://api.example.com/v1/chat/completions")
        .body(BufferedBody::from(r#"{"model":"small"}"#))
        .unwrap()
}

/// Who answered, from the body.
async fn answered_by(client: &tollgate_fallback::Fallback<Scripted>) -> String {
    let response = client.clone().oneshot(request()).await.unwrap();
    response.into_body().split(' ').next().unwrap().to_owned()
}

fn limited(wait: Duration) -> Verdict {
    Verdict::failure(ErrorClass::RateLimited)
        .with_status(http::StatusCode::TOO_MANY_REQUESTS)
        .with_delay(wait, DelaySource::RetryAfterSeconds)
}

fn client(
    primary: &Scripted,
    targets: &[&Scripted],
    policy: FallbackPolicy,
) -> tollgate_fallback::Fallback<Scripted> {
    let targets = targets.iter().map(|t| Target::new(t.name, (*t).clone()));
    FallbackLayer::new(FallbackConfig::new(targets).with_policy(policy)).layer(primary.clone())
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_moves_on_only_when_its_wait_is_above_the_threshold() {
    // At the threshold: handed back, nothing cools.
    let primary = Scripted::new("a", [limited(secs(10))]);
    let b = Scripted::ok("b");
    let fallback = client(&primary, &[&b], FallbackPolicy::default());
    let response = fallback.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(b.calls(), 0);
    assert_eq!(answered_by(&fallback).await, "a");
    // Just above it: moved on, and the primary cools for exactly that wait.
    let above = secs(10) + Duration::from_millis(1);
    let primary = Scripted::new("a", [limited(above)]);
    let b = Scripted::ok("b");
    let fallback = client(&primary, &[&b], FallbackPolicy::default());
    assert_eq!(answered_by(&fallback).await, "b");
    time::advance(secs(10)).await;
    assert_eq!(answered_by(&fallback).await, "b");
    assert_eq!(primary.calls(), 1);
    time::advance(Duration::from_millis(1)).await;
    assert_eq!(answered_by(&fallback).await, "a");
}

#[tokio::test(start_paused = true)]
async fn a_short_rate_limit_moves_on_when_the_policy_says_so_and_cools_for_its_wait() {
    let policy = FallbackPolicy::default()
        .with_moving_on(ClassSet::TARGET_HEALTH.with(ErrorClass::RateLimited));
    assert!(policy.move_on.contains(ErrorClass::RateLimited));
    let primary = Scripted::new("a", [limited(secs(2))]);
    let b = Scripted::ok("b");
    let fallback = client(&primary, &[&b], policy);
    assert_eq!(answered_by(&fallback).await, "b");
    time::advance(Duration::from_millis(1_999)).await;
    assert_eq!(answered_by(&fallback).await, "b");
    time::advance(Duration::from_millis(1)).await;
    assert_eq!(answered_by(&fallback).await, "a");
}

#[tokio::test(start_paused = true)]
async fn the_threshold_is_settable() {
    let policy = FallbackPolicy::default().with_rate_limit_threshold(secs(1));
    assert_eq!(policy.rate_limit_threshold, secs(1));
    let primary = Scripted::new("a", [limited(secs(2))]);
    let b = Scripted::ok("b");
    let fallback = client(&primary, &[&b], policy);
    assert_eq!(answered_by(&fallback).await, "b");
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_moves_on_whatever_the_policy_and_a_remote_overload_does_not() {
    let nothing = FallbackPolicy::default().with_moving_on(ClassSet::EMPTY);
    let open = Verdict::failure(ErrorClass::Overloaded)
        .with_status(http::StatusCode::SERVICE_UNAVAILABLE)
        .refused_locally();
    let primary = Scripted::new("a", [open]);
    let b = Scripted::ok("b");
    let fallback = client(&primary, &[&b], nothing.clone());
    assert_eq!(answered_by(&fallback).await, "b");
    let remote =
        Verdict::failure(ErrorClass::Overloaded).with_status(http::StatusCode::SERVICE_UNAVAILABLE);
    let primary = Scripted::new("a", [remote]);
    let fallback = client(&primary, &[&b], nothing);
    let response = fallback.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(b.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failure_without_a_delay_cools_for_its_class_cooldown() {
    let policy = FallbackPolicy::default().with_cooldown(ErrorClass::ServerError, secs(30));
    assert_eq!(policy.cooldown_for(ErrorClass::ServerError), Some(secs(30)));
    let server_error =
        Verdict::failure(ErrorClass::ServerError).with_status(http::StatusCode::BAD_GATEWAY);
    let primary = Scripted::new("a", [server_error]);
    let b = Scripted::ok("b");
    let fallback = client(&primary, &[&b], policy);
    assert_eq!(answered_by(&fallback).await, "b");
    time::advance(secs(29)).await;
    assert_eq!(answered_by(&fallback).await, "b");
    time::advance(secs(1)).await;
    assert_eq!(answered_by(&fallback).await, "a");
    assert_eq!(primary.calls(), 2);
}

#[test]
fn cooldowns_are_kept_per_class_and_replaced() {
    let policy = FallbackPolicy::default()
        .with_cooldown(ErrorClass::ServerError, secs(30))
        .with_cooldown(ErrorClass::Timeout, secs(5));
    assert_eq!(policy.cooldown_for(ErrorClass::ServerError), Some(secs(30)));
    assert_eq!(policy.cooldown_for(ErrorClass::Timeout), Some(secs(5)));
    assert_eq!(
        policy.cooldown_for(ErrorClass::QuotaExhausted),
        Some(secs(300))
    );
    assert_eq!(
        policy.cooldown_for(ErrorClass::Unauthorized),
        Some(secs(300))
    );
    assert_eq!(policy.cooldown_for(ErrorClass::Overloaded), None);
    let replaced = policy.with_cooldown(ErrorClass::ServerError, secs(7));
    assert_eq!(
        replaced.cooldown_for(ErrorClass::ServerError),
        Some(secs(7))
    );
    assert_eq!(replaced.cooldown_for(ErrorClass::Timeout), Some(secs(5)));
    assert_eq!(replaced.cooldowns.len(), 4);
    assert_eq!(
        FallbackPolicy::default().with_max_wait(secs(9)).max_wait,
        secs(9)
    );
}

fn flagged() -> Verdict {
    Verdict::failure(ErrorClass::ContentPolicy).with_status(http::StatusCode::BAD_REQUEST)
}

fn too_long() -> Verdict {
    Verdict::failure(ErrorClass::ContextWindowExceeded).with_status(http::StatusCode::BAD_REQUEST)
}

#[tokio::test(start_paused = true)]
async fn a_content_policy_refusal_goes_to_its_own_chain_from_its_first_target() {
    let primary = Scripted::new("a", [flagged(), flagged()]);
    let main = Scripted::ok("main");
    let lenient = Scripted::new("lenient", [flagged()]);
    let other = Scripted::ok("other");
    let fallback = FallbackLayer::new(
        FallbackConfig::new([Target::new("main", main.clone())]).with_content_policy_targets([
            Target::new("lenient", lenient.clone()).with_rewrite(SetModel::new("lenient")),
            Target::new("other", other.clone()),
        ]),
    )
    .layer(primary.clone());
    // The first refuses too: within the chain, on to the next, rewritten for neither.
    let response = fallback.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.into_body(), r#"other {"model":"small"}"#);
    assert_eq!(lenient.calls(), 1);
    assert_eq!(main.calls(), 0, "the main chain cannot fix content");
    // No cooldown in a typed chain: the next refusal starts from its first target again.
    let response = fallback.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.into_body(), r#"lenient {"model":"lenient"}"#);
    assert_eq!(primary.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_context_window_failure_starts_its_chain_from_its_first_target() {
    let primary = Scripted::new("a", [too_long()]);
    let bigger = Scripted::ok("bigger");
    let biggest = Scripted::ok("biggest");
    let fallback = FallbackLayer::new(
        FallbackConfig::new(Vec::new())
            .with_context_window_targets([
                Target::new("bigger", bigger.clone()),
                Target::new("biggest", biggest.clone()),
            ])
            .with_content_policy_targets([Target::new("lenient", Scripted::ok("lenient"))]),
    )
    .layer(primary.clone());
    assert_eq!(answered_by(&fallback).await, "bigger");
    assert_eq!(biggest.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_typed_failure_in_the_main_chain_without_its_chain_comes_back() {
    let primary = Scripted::new("a", [flagged()]);
    let main = Scripted::ok("main");
    let fallback = FallbackLayer::new(
        FallbackConfig::new([Target::new("main", main.clone())])
            .with_context_window_targets([Target::new("bigger", Scripted::ok("bigger"))]),
    )
    .layer(primary);
    let response = fallback.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(main.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_ends_exactly_at_the_limit_is_taken() {
    let policy = FallbackPolicy::default().with_max_wait(secs(20));
    let primary = Scripted::new("a", [limited(secs(30))]);
    let b = Scripted::new("b", [limited(secs(20))]);
    let fallback = client(&primary, &[&b], policy);
    let error = fallback.clone().oneshot(request()).await.unwrap_err();
    let failed = error.downcast_ref::<AllTargetsFailed>().unwrap();
    assert_eq!(failed.retry_after(), None);
    // Both cool now: the secondary is free in exactly 20 s, the longest wait allowed.
    let start = Instant::now();
    assert_eq!(answered_by(&fallback).await, "b");
    assert_eq!(start.elapsed(), secs(20));
    // A wait 1 ms past the limit is not taken.
    let policy = FallbackPolicy::default().with_max_wait(secs(20) - Duration::from_millis(1));
    let primary = Scripted::new("a", [limited(secs(30))]);
    let b = Scripted::new("b", [limited(secs(20))]);
    let fallback = client(&primary, &[&b], policy);
    fallback.clone().oneshot(request()).await.unwrap_err();
    let error = fallback.clone().oneshot(request()).await.unwrap_err();
    assert_eq!(
        error
            .downcast_ref::<AllTargetsFailed>()
            .unwrap()
            .retry_after(),
        Some(secs(20))
    );
}

#[test]
fn a_target_and_a_response_future_show_what_they_hold() {
    let target = Target::new("deepseek", Scripted::ok("deepseek"))
        .with_rewrite(SetModel::new("deepseek-chat"))
        .with_rewrite(SetModel::new("deepseek-reasoner"));
    assert_eq!(target.name(), "deepseek");
    assert_eq!(
        format!("{target:?}"),
        r#"Target { name: "deepseek", rewrites: 2, .. }"#
    );
    let mut fallback = client(&Scripted::ok("a"), &[], FallbackPolicy::default());
    let future = fallback.call(request());
    assert_eq!(
        format!("{future:?}"),
        "ResponseFuture { current: Primary, tried: 0, .. }"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cooling_primary_is_waited_for_when_it_is_free_first() {
    let policy = FallbackPolicy::default().with_max_wait(secs(30));
    let primary = Scripted::new("a", [limited(secs(15))]);
    let b = Scripted::new("b", [limited(secs(25))]);
    let fallback = client(&primary, &[&b], policy);
    fallback.clone().oneshot(request()).await.unwrap_err();
    // Both cool; the primary is free first, in 15 s: waited for, not passed over.
    let start = Instant::now();
    assert_eq!(answered_by(&fallback).await, "a");
    assert_eq!(start.elapsed(), secs(15));
    assert_eq!(b.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn every_target_cooling_says_when_the_first_is_free() {
    let primary = Scripted::new("a", [limited(secs(15))]);
    let b = Scripted::new("b", [limited(secs(25))]);
    let fallback = client(&primary, &[&b], FallbackPolicy::default());
    fallback.clone().oneshot(request()).await.unwrap_err();
    time::advance(secs(5)).await;
    let error = fallback.clone().oneshot(request()).await.unwrap_err();
    let failed = error.downcast_ref::<AllTargetsFailed>().unwrap();
    assert_eq!(failed.retry_after(), Some(secs(10)));
    assert_eq!(failed.attempts().count(), 0, "nothing was tried");
    assert_eq!((primary.calls(), b.calls()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_cooldown_extended_during_a_wait_is_not_cut_short() {
    use tollgate_fallback::{BoxTarget, boxed};
    // b: its first call answers after 10 s with a 30 s rate limit, its second at once with a
    // 20 s one, and any later call succeeds.
    let b_calls = Arc::new(AtomicU32::new(0));
    let b = {
        let calls = Arc::clone(&b_calls);
        tower::service_fn(move |_: Request<BufferedBody>| {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                let verdict = match n {
                    0 => {
                        time::sleep(secs(10)).await;
                        Some(limited(secs(30)))
                    }
                    1 => Some(limited(secs(20))),
                    _ => None,
                };
                let mut response = Response::new("b".to_owned());
                if let Some(verdict) = verdict {
                    *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                    response.extensions_mut().insert(verdict);
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let primary = Scripted::new("a", [limited(secs(100))]);
    let policy = FallbackPolicy::default().with_max_wait(secs(30));
    let fallback =
        FallbackLayer::new(FallbackConfig::new([Target::new("b", boxed(b))]).with_policy(policy))
            .layer(boxed(primary) as BoxTarget<String>);
    // The slow call: a cools for 100 s, b is called and answers at 10 s.
    let slow = tokio::spawn(fallback.clone().oneshot(request()));
    tokio::task::yield_now().await;
    // Meanwhile b cools for 20 s.
    fallback.clone().oneshot(request()).await.unwrap_err();
    time::advance(secs(1)).await;
    // This one waits for b, free at 20 s; at 10 s the slow answer cools b until 40 s, past
    // this request's 31 s: at 20 s it gives up, saying b is free in 20 s, without calling it.
    let start = Instant::now();
    let error = fallback.clone().oneshot(request()).await.unwrap_err();
    assert_eq!(start.elapsed(), secs(19));
    let failed = error.downcast_ref::<AllTargetsFailed>().unwrap();
    assert_eq!(failed.retry_after(), Some(secs(20)));
    assert_eq!(b_calls.load(Ordering::Relaxed), 2);
    slow.await.unwrap().unwrap_err();
}

/// Nothing tried, the refusal says why each target was passed over: the class that cooled it
/// down, whether a layer of this process refused (an open breaker), and how long it still
/// cools; its verdict is the cause of the cooldown that ends first. Every target down is not
/// every target rate limited.
#[tokio::test(start_paused = true)]
async fn a_refusal_with_nothing_tried_says_why_each_target_is_cooling() {
    let unreachable = Verdict::failure(ErrorClass::Connect)
        .with_status(http::StatusCode::BAD_GATEWAY)
        .with_delay(secs(30), DelaySource::RetryAfterSeconds);
    let open_breaker = Verdict::failure(ErrorClass::Overloaded)
        .with_status(http::StatusCode::SERVICE_UNAVAILABLE)
        .with_wait(secs(20))
        .refused_locally();
    let spent = Verdict::failure(ErrorClass::QuotaExhausted)
        .with_status(http::StatusCode::TOO_MANY_REQUESTS);
    let primary = Scripted::new("a", [unreachable]);
    let b = Scripted::new("b", [open_breaker]);
    let c = Scripted::new("c", [spent]);
    let fallback = client(&primary, &[&b, &c], FallbackPolicy::default());
    let first = fallback.clone().oneshot(request()).await.unwrap_err();
    let first = first.downcast_ref::<AllTargetsFailed>().unwrap();
    assert_eq!(first.attempts().count(), 3);
    assert_eq!(first.skipped().count(), 0);

    time::advance(secs(5)).await;
    let error = fallback.clone().oneshot(request()).await.unwrap_err();
    let failed = error.downcast_ref::<AllTargetsFailed>().unwrap();
    assert_eq!(failed.attempts().count(), 0, "nothing was tried");
    let skipped: Vec<_> = failed
        .skipped()
        .map(|(name, verdict)| {
            (
                name,
                verdict.class(),
                verdict.is_local_refusal(),
                verdict.delay(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            ("primary", Some(ErrorClass::Connect), false, Some(secs(25))),
            ("b", Some(ErrorClass::Overloaded), true, Some(secs(15))),
            (
                "c",
                Some(ErrorClass::QuotaExhausted),
                false,
                Some(secs(295))
            ),
        ]
    );
    assert_eq!(failed.retry_after(), Some(secs(15)));
    // The verdict: the open breaker's, free first, refused here, to try elsewhere later.
    let verdict = failed.verdict();
    assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
    assert!(verdict.is_local_refusal());
    assert_eq!(verdict.advice(), tollgate_core::RetryAdvice::Elsewhere);
    assert_eq!(verdict.delay(), Some(secs(15)));
    assert_eq!(
        failed.to_string(),
        "every target failed: primary: cooling down after connect; b: cooling down after overloaded, \
         refused here; c: cooling down after quota_exhausted; the first is free again in 15s"
    );
    assert_eq!((primary.calls(), b.calls(), c.calls()), (1, 1, 1));
}
