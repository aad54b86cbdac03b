//! `RetryLayer` end to end on tokio's paused clock: server delays in every format honoured
//! exactly (spread off), each from its own attempt, or spread on top by a pinned draw; backoff;
//! giving up above the cap (a delay too large to represent included), on the budget, at the
//! deadline and out of retries, keeping the last response or error; a streaming body replayed;
//! events; non-HTTP requests.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tokio::time::{self, Instant};
use tollgate_core::body::{BufferBodyLayer, BufferedBody};
use tollgate_core::{BoxError, Classified, Deadline, DelaySource, ErrorClass, Verdict};
use tollgate_retry::{
    Backoff, GaveUp, Jitter, RetriesExhausted, RetryBudget, RetryEvent, RetryLayer, RetryPolicy,
    Spread, judge_fn, on_retry_fn, rng_fn,
};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Reply = Box<dyn Fn() -> Result<Response<&'static str>, BoxError> + Send + Sync>;

/// A transport answering from a script, one reply per attempt; it logs when each attempt
/// arrived and its body.
#[derive(Clone)]
struct Script {
    replies: Arc<Mutex<Vec<Reply>>>,
    log: Arc<Mutex<Vec<(Duration, Bytes)>>>,
    start: Instant,
}

impl Script {
    fn new(replies: Vec<Reply>) -> Self {
        Script {
            replies: Arc::new(Mutex::new(replies.into_iter().rev().collect())),
            log: Arc::default(),
            start: Instant::now(),
        }
    }

    fn arrivals(&self) -> Vec<Duration> {
        self.log.lock().unwrap().iter().map(|(at, _)| *at).collect()
    }
}

impl Service<Request<BufferedBody>> for Script {
    type Response = Response<&'static str>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response<&'static str>, BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        self.log
            .lock()
            .unwrap()
            .push((self.start.elapsed(), request.body().bytes().clone()));
        let reply = self
            .replies
            .lock()
            .unwrap()
            .pop()
            .expect("a scripted reply");
        std::future::ready(reply())
    }
}

fn status(code: u16, headers: &'static [(&'static str, &'static str)]) -> Reply {
    Box::new(move || {
        let mut response = Response::builder().status(code);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        Ok(response.body("body").unwrap())
    })
}

fn ok() -> Reply {
    status(200, &[])
}

fn request() -> Request<BufferedBody> {
    Request::new(BufferedBody::from("{\"model\":\"gpt-4o\"}"))
}

/// Pinned jitter: every draw is 0.5.
fn layer(
    policy: RetryPolicy,
) -> RetryLayer<tollgate_retry::HttpJudge, tollgate_retry::RngFn<fn() -> f64>> {
    RetryLayer::new(policy).with_rng(rng_fn(|| 0.5))
}

fn exhausted(error: &BoxError) -> &RetriesExhausted {
    error
        .downcast_ref::<RetriesExhausted>()
        .unwrap_or_else(|| panic!("not RetriesExhausted: {error}"))
}

#[tokio::test(start_paused = true)]
async fn server_delays_are_honoured_exactly_each_from_its_own_attempt() {
    let script = Script::new(vec![
        status(429, &[("retry-after-ms", "1500")]),
        status(503, &[("retry-after", "2")]),
        // An HTTP-date: the paused clock does not move the wall clock, so it is relative to
        // now; a date in the past counts as absent and the backoff decides.
        status(429, &[("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT")]),
        ok(),
    ]);
    let service = layer(
        RetryPolicy::default()
            .with_server_delay_spread(Spread::None)
            .with_backoff(Backoff::exponential(ms(100), ms(1_000)).with_jitter(Jitter::None)),
    )
    .layer(script.clone());
    let response = service.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // With the spread off: 1.5 s as asked by the first; 2 s as asked by the second (not the first's 1.5 s); then
    // backoff for the third retry (retry 2: 100 ms × 2² = 400 ms).
    assert_eq!(script.arrivals(), [ms(0), ms(1_500), ms(3_500), ms(3_900)]);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_date_is_honoured_to_the_second() {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3));
    let date: &'static str = Box::leak(date.into_boxed_str());
    let headers: &'static [(&'static str, &'static str)] =
        Box::leak(Box::new([("retry-after", date)]));
    let script = Script::new(vec![status(429, headers), ok()]);
    let service =
        layer(RetryPolicy::default().with_server_delay_spread(Spread::None)).layer(script.clone());
    service.oneshot(request()).await.unwrap();
    // HTTP-dates have whole seconds: the wait is within the second before the date.
    let waited = script.arrivals()[1];
    assert!(waited > ms(2_000) && waited <= ms(3_000), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_delay_above_the_cap_gives_up_at_once_with_the_response() {
    let script = Script::new(vec![status(429, &[("retry-after", "600")])]);
    let service = layer(RetryPolicy::default()).layer(script.clone());
    let start = Instant::now();
    let error = service.oneshot(request()).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    let exhausted = exhausted(&error);
    assert_eq!(
        exhausted.reason(),
        GaveUp::DelayAboveCap {
            requested: Duration::from_secs(600)
        }
    );
    assert_eq!(exhausted.retry_after(), Some(Duration::from_secs(600)));
    assert_eq!(exhausted.attempts(), 1);
    assert_eq!(exhausted.verdict().class(), Some(ErrorClass::RateLimited));
    let response: Response<&'static str> = exhausted.take_response().unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        exhausted
            .take_response::<Response<&'static str>>()
            .is_none()
    );
    assert_eq!(
        error.to_string(),
        "gave up after 1 attempts: the server asked to wait 600s, longer than honoured"
    );
}

#[tokio::test(start_paused = true)]
async fn out_of_retries_keeps_the_last_error() {
    let reset = || -> Reply {
        Box::new(|| Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()))
    };
    let script = Script::new(vec![reset(), reset(), reset()]);
    let policy = RetryPolicy::default()
        .with_max_retries(2)
        .with_backoff(Backoff::exponential(ms(100), ms(1_000)).with_jitter(Jitter::Full));
    let service = layer(policy).layer(script.clone());
    let error = service.oneshot(request()).await.unwrap_err();
    let exhausted = exhausted(&error);
    assert_eq!(exhausted.reason(), GaveUp::Attempts);
    assert_eq!(exhausted.attempts(), 3);
    assert_eq!(exhausted.verdict().class(), Some(ErrorClass::Connect));
    let last = exhausted.last_error().unwrap();
    assert_eq!(
        last.downcast_ref::<std::io::Error>().unwrap().kind(),
        std::io::ErrorKind::ConnectionReset
    );
    // Any layer above finds the verdict through the source chain.
    assert_eq!(
        Verdict::of_error(&*error).unwrap().class(),
        Some(ErrorClass::Connect)
    );
    // Full jitter at 0.5: 50 ms, then 100 ms.
    assert_eq!(script.arrivals(), [ms(0), ms(50), ms(150)]);
}

#[tokio::test(start_paused = true)]
async fn what_is_not_retryable_comes_back_as_it_is() {
    for (code, headers) in [
        (400, &[][..]),
        (401, &[][..]),
        (404, &[][..]),
        (500, &[("x-should-retry", "false")][..]),
    ] {
        let script = Script::new(vec![status(code, headers)]);
        let service = layer(RetryPolicy::default()).layer(script.clone());
        let response = service.oneshot(request()).await.unwrap();
        assert_eq!(response.status().as_u16(), code);
        assert_eq!(script.arrivals().len(), 1);
    }
    // An error a ClassifyLayer judged not retryable is returned unwrapped.
    let script = Script::new(vec![Box::new(|| {
        Err(Classified::new(Verdict::failure(ErrorClass::Unauthorized), "bad key").into())
    })]);
    let error = layer(RetryPolicy::default())
        .layer(script)
        .oneshot(request())
        .await
        .unwrap_err();
    assert!(error.is::<Classified>());
}

#[tokio::test(start_paused = true)]
async fn the_verdict_a_classify_layer_attached_decides() {
    // A 200 whose verdict (say OpenRouter's error inside a 200) is an overload.
    let overloaded: Reply = Box::new(|| {
        let mut response = Response::new("body");
        response.extensions_mut().insert(
            Verdict::failure(ErrorClass::Overloaded).with_delay(ms(700), DelaySource::BodyHint),
        );
        Ok(response)
    });
    let script = Script::new(vec![overloaded, ok()]);
    layer(RetryPolicy::default())
        .layer(script.clone())
        .oneshot(request())
        .await
        .unwrap();
    // 700 ms, spread by 0.5 × 350 ms.
    assert_eq!(script.arrivals(), [ms(0), ms(875)]);
}

#[tokio::test(start_paused = true)]
async fn overloads_are_left_to_the_fallback_after_their_retries() {
    let script = Script::new(vec![status(529, &[]), status(529, &[])]);
    let policy = RetryPolicy::default().with_max_overloaded_retries(1);
    let error = layer(policy)
        .layer(script.clone())
        .oneshot(request())
        .await
        .unwrap_err();
    assert_eq!(exhausted(&error).reason(), GaveUp::Overloaded);
    assert_eq!(script.arrivals().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_and_the_total_time_bound_the_waits() {
    // Deadline 1 s: a 2 s server delay does not fit.
    let script = Script::new(vec![status(503, &[("retry-after", "2")])]);
    let mut late = request();
    late.extensions_mut()
        .insert(Deadline::after(Duration::from_secs(1)));
    let exact = RetryPolicy::default().with_server_delay_spread(Spread::None);
    let error = layer(exact.clone())
        .layer(script)
        .oneshot(late)
        .await
        .unwrap_err();
    assert_eq!(
        exhausted(&error).reason(),
        GaveUp::Deadline {
            wait: Duration::from_secs(2)
        }
    );
    // Total time 3 s: 1 s, 1 s fit; the third 1.5 s would end at 3.5 s.
    let script = Script::new(vec![
        status(503, &[("retry-after", "1")]),
        status(503, &[("retry-after", "1")]),
        status(503, &[("retry-after", "1.5")]),
    ]);
    let policy = exact
        .with_max_retries(5)
        .with_max_overloaded_retries(5)
        .with_total_time(Duration::from_secs(3));
    let error = layer(policy)
        .layer(script.clone())
        .oneshot(request())
        .await
        .unwrap_err();
    assert_eq!(
        exhausted(&error).reason(),
        GaveUp::Deadline { wait: ms(1_500) }
    );
    assert_eq!(script.arrivals(), [ms(0), ms(1_000), ms(2_000)]);
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_retries_when_spent() {
    // 10% of requests, no floor: ten requests earn one retry.
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 10.0).unwrap();
    let mut replies: Vec<Reply> = (0..9).map(|_| ok()).collect();
    replies.extend([status(500, &[]), ok(), status(500, &[])]);
    let script = Script::new(replies);
    let service = layer(RetryPolicy::default())
        .with_budget(budget.clone())
        .layer(script.clone());
    for _ in 0..9 {
        service.clone().oneshot(request()).await.unwrap();
    }
    // The tenth fails once and is retried with the one retry earned.
    service.clone().oneshot(request()).await.unwrap();
    assert_eq!(budget.available(Duration::from_secs(1)), 0);
    // The eleventh finds the budget empty.
    let error = service.clone().oneshot(request()).await.unwrap_err();
    assert_eq!(exhausted(&error).reason(), GaveUp::Budget);
}

/// A body that arrives a chunk at a time, pending between chunks, as from a socket.
struct Trickle {
    chunks: std::collections::VecDeque<&'static str>,
    ready: bool,
}

impl http_body::Body for Trickle {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        self.ready = false;
        let chunk = self.chunks.pop_front();
        std::task::Poll::Ready(
            chunk.map(|c| Ok(http_body::Frame::data(Bytes::from_static(c.as_bytes())))),
        )
    }
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_is_buffered_once_and_replayed() {
    let script = Script::new(vec![status(500, &[]), status(502, &[]), ok()]);
    let client = ServiceBuilder::new()
        .layer(BufferBodyLayer::new())
        .layer(layer(RetryPolicy::default()))
        .service(script.clone());
    let body = Trickle {
        chunks: [
            "{\"messages\":",
            "[{\"role\":\"user\",",
            "\"content\":\"hi\"}]}",
        ]
        .into(),
        ready: false,
    };
    client.oneshot(Request::new(body)).await.unwrap();
    let bodies: Vec<Bytes> = script
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    let whole = Bytes::from_static(b"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_eq!(bodies, [whole.clone(), whole.clone(), whole]);
}

#[tokio::test(start_paused = true)]
async fn events_tell_every_retry_and_the_giving_up() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let script = Script::new(vec![
        status(429, &[("retry-after-ms", "300")]),
        status(500, &[]),
    ]);
    let policy = RetryPolicy::default()
        .with_max_retries(1)
        .with_backoff(Backoff::exponential(ms(100), ms(1_000)));
    let hook = {
        let events = Arc::clone(&events);
        on_retry_fn(move |event: &RetryEvent| events.lock().unwrap().push(*event))
    };
    let error = layer(policy)
        .on_retry(hook)
        .layer(script)
        .oneshot(request())
        .await
        .unwrap_err();
    assert_eq!(exhausted(&error).attempts(), 2);
    let events = events.lock().unwrap();
    // The delay actually waited: 300 ms asked, spread by 0.5 × 150 ms.
    assert!(matches!(
        events[0],
        RetryEvent::Scheduled {
            attempt: 1,
            class: Some(ErrorClass::RateLimited),
            status: Some(StatusCode::TOO_MANY_REQUESTS),
            delay,
            source: DelaySource::RetryAfterMs,
        } if delay == ms(375)
    ));
    assert!(matches!(
        events[1],
        RetryEvent::GaveUp {
            attempts: 2,
            class: Some(ErrorClass::ServerError),
            reason: GaveUp::Attempts
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn any_cloneable_request_with_a_judge() {
    // A service that answers "busy" twice, then "done".
    let answers = Arc::new(Mutex::new(vec!["done", "busy", "busy"]));
    let inner = tower::service_fn(move |job: String| {
        let answer = answers.lock().unwrap().pop().unwrap();
        async move { Ok::<_, Infallible>(format!("{job}: {answer}")) }
    });
    let judge = judge_fn(|outcome: Result<&String, &BoxError>| match outcome {
        Ok(text) if text.ends_with("busy") => Verdict::failure(ErrorClass::Overloaded),
        Ok(_) => Verdict::success(),
        Err(_) => Verdict::failure(ErrorClass::Unknown),
    });
    let service = RetryLayer::new(RetryPolicy::default())
        .with_judge(judge)
        .with_rng(rng_fn(|| 0.0))
        .layer(inner);
    let start = Instant::now();
    assert_eq!(
        service.oneshot("job-1".to_owned()).await.unwrap(),
        "job-1: done"
    );
    // The minimum delay twice: full jitter drew zero.
    assert_eq!(start.elapsed(), ms(100));
}

#[test]
fn layers_services_and_futures_are_send_sync_and_clone() {
    fn send_sync<T: Send + Sync>() {}
    fn clone<T: Clone>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<RetryLayer>();
    clone::<RetryLayer>();
    send_sync::<tollgate_retry::Retry<Script>>();
    clone::<tollgate_retry::Retry<Script>>();
    send_sync::<RetriesExhausted>();
    let mut service = RetryLayer::new(RetryPolicy::default()).layer(Script::new(vec![ok()]));
    send(&service.call(request()));
}

/// A body above the buffer's limit fails with `BodyTooLarge` before any attempt.
#[tokio::test(start_paused = true)]
async fn a_body_above_the_limit_is_refused_before_sending() {
    let script = Script::new(vec![]);
    let client = ServiceBuilder::new()
        .layer(BufferBodyLayer::new().with_limit(8))
        .layer(layer(RetryPolicy::default()))
        .service(script.clone());
    let body = http_body_util::Full::new(Bytes::from_static(b"0123456789"));
    let error = client.oneshot(Request::new(body)).await.unwrap_err();
    let too_large = error
        .downcast_ref::<tollgate_core::body::BodyTooLarge>()
        .unwrap();
    assert_eq!(too_large.limit(), 8);
    assert!(script.arrivals().is_empty());
}

/// Services built from one layer at different times share one budget on one clock.
#[tokio::test(start_paused = true)]
async fn services_built_later_share_the_budget() {
    // A floor of one retry per second over 10 s: ten retries, whoever takes them.
    let budget = RetryBudget::new(Duration::from_secs(10), 1, 0.0).unwrap();
    // Retries 10 ms apart: all within one second, so the floor does not refill meanwhile.
    let quick = Backoff::exponential(ms(10), ms(10)).with_jitter(Jitter::None);
    let policy = RetryPolicy::default()
        .with_max_retries(100)
        .with_backoff(quick);
    let layer = layer(policy).with_budget(budget.clone());
    time::advance(Duration::from_secs(100)).await;
    let failing: Vec<Reply> = (0..40).map(|_| status(500, &[])).collect();
    let first = layer.clone().layer(Script::new(failing));
    let error = first.oneshot(request()).await.unwrap_err();
    assert_eq!(exhausted(&error).reason(), GaveUp::Budget);
    assert_eq!(exhausted(&error).attempts(), 11);
    let failing: Vec<Reply> = (0..40).map(|_| status(500, &[])).collect();
    let later = layer.layer(Script::new(failing));
    let error = later.oneshot(request()).await.unwrap_err();
    assert_eq!(exhausted(&error).reason(), GaveUp::Budget);
    assert_eq!(
        exhausted(&error).attempts(),
        1,
        "the first service spent the budget"
    );
}

/// Services built from one layer draw different jitter.
#[tokio::test(start_paused = true)]
async fn services_of_one_layer_draw_different_jitter() {
    let layer = RetryLayer::new(
        RetryPolicy::default()
            .with_max_retries(1)
            .with_min_delay(Duration::ZERO),
    );
    let a = Script::new(vec![status(500, &[]), ok()]);
    let b = Script::new(vec![status(500, &[]), ok()]);
    layer.layer(a.clone()).oneshot(request()).await.unwrap();
    layer.layer(b.clone()).oneshot(request()).await.unwrap();
    assert_ne!(a.arrivals()[1], b.arrivals()[1]);
}

/// The OpenAI preset retries a transport error nobody classified, as the SDK does.
#[tokio::test(start_paused = true)]
async fn the_openai_preset_retries_unrecognized_transport_errors() {
    let odd: Reply = Box::new(|| Err("connection closed before message completed".into()));
    let script = Script::new(vec![odd, ok()]);
    let service = RetryLayer::openai()
        .with_rng(rng_fn(|| 0.5))
        .layer(script.clone());
    service.oneshot(request()).await.unwrap();
    // 437.5 ms, on tokio's millisecond timer.
    assert_eq!(script.arrivals(), [ms(0), ms(438)]);
    // The default policy hands it back.
    let odd: Reply = Box::new(|| Err("connection closed before message completed".into()));
    let script = Script::new(vec![odd]);
    let error = layer(RetryPolicy::default())
        .layer(script)
        .oneshot(request())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "connection closed before message completed"
    );
}

// ===== server delays: spread, and too large to represent =====

/// Callers all told `retry-after: 1` come back spread over `[1 s, 1.5 s]`, each after its own
/// draw from the layer's random source, never before the server's second.
#[tokio::test(start_paused = true)]
async fn a_herd_told_the_same_retry_after_is_spread_over_its_bound() {
    let draws = Arc::new(Mutex::new(vec![0.75, 0.5, 0.25, 0.0]));
    let rng = {
        let draws = Arc::clone(&draws);
        rng_fn(move || draws.lock().unwrap().pop().unwrap())
    };
    let layer = RetryLayer::new(RetryPolicy::default()).with_rng(rng);
    let mut seconds = Vec::new();
    for _ in 0..4 {
        let script = Script::new(vec![status(429, &[("retry-after", "1")]), ok()]);
        layer
            .layer(script.clone())
            .oneshot(request())
            .await
            .unwrap();
        seconds.push(script.arrivals()[1]);
    }
    // 1 s + r × min(50 % of 1 s, 5 s).
    assert_eq!(seconds, [ms(1_000), ms(1_125), ms(1_250), ms(1_375)]);
}

/// The spread is capped: a 60 s delay grows by at most 5 s.
#[tokio::test(start_paused = true)]
async fn a_long_server_delay_is_spread_by_at_most_five_seconds() {
    let script = Script::new(vec![status(503, &[("retry-after", "60")]), ok()]);
    let service = layer(RetryPolicy::default()).layer(script.clone());
    service.oneshot(request()).await.unwrap();
    // 60 s + 0.5 × 5 s, not 0.5 × 30 s.
    assert_eq!(script.arrivals(), [ms(0), ms(62_500)]);
}

/// The OpenAI preset waits exactly what the server asked, whatever the draw; so does any policy
/// with the spread off.
#[tokio::test(start_paused = true)]
async fn the_openai_preset_and_a_policy_without_spread_wait_exactly() {
    let script = Script::new(vec![status(429, &[("retry-after", "1")]), ok()]);
    RetryLayer::openai()
        .with_rng(rng_fn(|| 0.9))
        .layer(script.clone())
        .oneshot(request())
        .await
        .unwrap();
    assert_eq!(script.arrivals(), [ms(0), ms(1_000)]);

    let script = Script::new(vec![status(429, &[("retry-after-ms", "700")]), ok()]);
    RetryLayer::new(RetryPolicy::default().with_server_delay_spread(Spread::None))
        .with_rng(rng_fn(|| 0.9))
        .layer(script.clone())
        .oneshot(request())
        .await
        .unwrap();
    assert_eq!(script.arrivals(), [ms(0), ms(700)]);

    // And the OpenAI preset may be asked to spread.
    let script = Script::new(vec![status(429, &[("retry-after", "1")]), ok()]);
    RetryLayer::openai()
        .with_rng(rng_fn(|| 0.5))
        .layer(script.clone())
        .oneshot(request())
        .await
        .unwrap();
    assert_eq!(script.arrivals(), [ms(0), ms(1_000)]);
}

/// A local quota's wait is exact: the limiter below admits what fits, whoever comes back.
#[tokio::test(start_paused = true)]
async fn a_local_quota_wait_is_not_spread() {
    let refused: Reply = Box::new(|| {
        Err(Classified::new(
            Verdict::failure(ErrorClass::RateLimited).with_delay(ms(700), DelaySource::LocalQuota),
            "rate limited",
        )
        .into())
    });
    let script = Script::new(vec![refused, ok()]);
    layer(RetryPolicy::default())
        .layer(script.clone())
        .oneshot(request())
        .await
        .unwrap();
    assert_eq!(script.arrivals(), [ms(0), ms(700)]);
}

/// Whether the wait fits the deadline and the total time is checked with the spread wait.
#[tokio::test(start_paused = true)]
async fn the_spread_wait_must_fit_the_deadline() {
    // Deadline 1.2 s: the server's 1 s would fit, but 1 s + 0.5 × 500 ms does not.
    let script = Script::new(vec![status(429, &[("retry-after", "1")])]);
    let mut late = request();
    late.extensions_mut().insert(Deadline::after(ms(1_200)));
    let error = layer(RetryPolicy::default())
        .layer(script.clone())
        .oneshot(late)
        .await
        .unwrap_err();
    assert_eq!(
        exhausted(&error).reason(),
        GaveUp::Deadline { wait: ms(1_250) }
    );
    assert_eq!(script.arrivals(), [ms(0)]);
    // Total time 2.4 s: 1.25 s fits, a second 1.25 s does not (it would start at 2.5 s).
    let script = Script::new(vec![
        status(429, &[("retry-after", "1")]),
        status(429, &[("retry-after", "1")]),
    ]);
    let policy = RetryPolicy::default().with_total_time(ms(2_400));
    let error = layer(policy)
        .layer(script.clone())
        .oneshot(request())
        .await
        .unwrap_err();
    assert_eq!(
        exhausted(&error).reason(),
        GaveUp::Deadline { wait: ms(1_250) }
    );
    assert_eq!(script.arrivals(), [ms(0), ms(1_250)]);
}

/// A numeric `retry-after` (or `retry-after-ms`) too large to represent is longer than any cap:
/// one attempt, then `DelayAboveCap` at once, as the official OpenAI SDK does — never the
/// backoff. The OpenAI preset and the default policy alike.
#[tokio::test(start_paused = true)]
async fn a_delay_too_large_to_represent_gives_up_at_once() {
    const HUGE: &str = "99999999999999999999999999999999999";
    for (name, value) in [("retry-after", HUGE), ("retry-after-ms", HUGE)] {
        let headers: &'static [(&'static str, &'static str)] = Box::leak(Box::new([(name, value)]));
        for openai in [false, true] {
            let script = Script::new(vec![status(429, headers), ok()]);
            let layer = if openai {
                RetryLayer::openai()
            } else {
                // Even with a cap as large as a duration goes.
                RetryLayer::new(RetryPolicy::default().with_max_server_delay(Duration::MAX))
                    .with_judge(tollgate_retry::HttpJudge::with_classifier(
                        tollgate_providers::OpenAi::new(),
                    ))
            };
            let service = layer.with_rng(rng_fn(|| 0.5)).layer(script.clone());
            let start = Instant::now();
            let error = service.oneshot(request()).await.unwrap_err();
            assert_eq!(start.elapsed(), Duration::ZERO, "{name}, openai {openai}");
            let exhausted = exhausted(&error);
            assert_eq!(
                exhausted.reason(),
                GaveUp::DelayAboveCap {
                    requested: Duration::MAX
                },
                "{name}, openai {openai}"
            );
            assert_eq!(exhausted.attempts(), 1);
            assert_eq!(exhausted.retry_after(), Some(Duration::MAX));
            assert_eq!(script.arrivals(), [ms(0)], "{name}, openai {openai}");
        }
    }
    // A very large but representable value is above the cap too.
    let script = Script::new(vec![status(429, &[("retry-after", "1000000000000")])]);
    let error = layer(RetryPolicy::default())
        .layer(script.clone())
        .oneshot(request())
        .await
        .unwrap_err();
    assert_eq!(
        exhausted(&error).reason(),
        GaveUp::DelayAboveCap {
            requested: Duration::from_secs(1_000_000_000_000)
        }
    );
    assert_eq!(script.arrivals(), [ms(0)]);
}

/// `retry-after` values that are not numbers — words, infinities, NaN — are absent: the backoff
/// decides (100 ms, no jitter), under the default policy and the OpenAI preset.
#[tokio::test(start_paused = true)]
async fn a_retry_after_that_is_not_a_number_falls_back_to_the_backoff() {
    for value in ["abc", "inf", "Infinity", "-inf", "NaN", "1e400"] {
        let headers: &'static [(&'static str, &'static str)] =
            Box::leak(Box::new([("retry-after", value)]));
        let script = Script::new(vec![status(429, headers), ok()]);
        let backoff = Backoff::exponential(ms(100), ms(1_000)).with_jitter(Jitter::None);
        layer(RetryPolicy::default().with_backoff(backoff))
            .layer(script.clone())
            .oneshot(request())
            .await
            .unwrap();
        assert_eq!(script.arrivals(), [ms(0), ms(100)], "{value}");

        let script = Script::new(vec![status(429, headers), ok()]);
        RetryLayer::openai()
            .with_rng(rng_fn(|| 0.5))
            .layer(script.clone())
            .oneshot(request())
            .await
            .unwrap();
        // 437.5 ms, on tokio's millisecond timer.
        assert_eq!(script.arrivals(), [ms(0), ms(438)], "{value}");
    }
}
