//! The adaptive limit through `RateLimitLayer` on tokio's paused clock: slow start, one
//! decrease per 429 episode, the cubic climb back, the jump to a limit the provider reports,
//! floor and ceiling, a bare 429 that pauses nothing, paced release after a pause, configured
//! limits as ceilings, and the learned rate as an event.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::{self, Instant};
use tollgate_core::observe::{Event, Observe, Observer};
use tollgate_core::{
    DelaySource, Dimension, ErrorClass, LimitReading, RateLimitSnapshot, Verdict, Window,
};
use tollgate_ratelimit::adaptive::{Adaptive, Rate};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{Limit, Limits, RateLimitLayer};
use tower::{Layer, Service};

mod support;
use support::{Recorder, millis, n, request, secs, spawn, verdict_response};

/// A bare 429, as a reverse proxy sends it: a fixed `retry-after`, nothing else.
fn bare_429(retry_after: &'static str) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response
        .headers_mut()
        .insert("retry-after", retry_after.parse().unwrap());
    response
}

/// A transport that answers the first request with `first`, and every other one with a
/// plain 200.
fn first_then_ok(first: impl Fn() -> Response<()> + Send + Sync + 'static) -> Recorder {
    let pending = Mutex::new(true);
    Recorder::answering(move |_| {
        if std::mem::take(&mut *pending.lock().unwrap()) {
            first()
        } else {
            Response::new(())
        }
    })
}

/// The times at which the recorder saw its requests.
fn arrivals(transport: &Recorder) -> Vec<Duration> {
    transport.log().into_iter().map(|(_, at)| at).collect()
}

/// Whether `a` is `b`, or up to a millisecond later: tokio's timer wheel fires on whole
/// milliseconds, and the pace is kept in floating point.
fn close(a: Duration, b: Duration) -> bool {
    a >= b.saturating_sub(Duration::from_micros(1)) && a <= b + millis(1)
}

/// Whether two rates agree to within a millionth.
fn same_rate(a: f64, b: f64) -> bool {
    (a - b).abs() <= b * 1e-6
}

/// Sends `count` requests at once, and waits for every one.
async fn burst<S>(service: &S, count: usize)
where
    S: Service<Request<String>, Response = Response<()>, Error = tollgate_core::BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let tasks: Vec<_> = (0..count)
        .map(|i| spawn(service, request(&i.to_string(), 0)))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

/// A transport that answers after `latency`, as `respond` says.
#[derive(Clone)]
struct Slow {
    latency: Duration,
    respond: Arc<dyn Fn() -> Response<()> + Send + Sync>,
}

impl Service<Request<String>> for Slow {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<()>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<String>) -> Self::Future {
        let (latency, respond) = (self.latency, Arc::clone(&self.respond));
        Box::pin(async move {
            time::sleep(latency).await;
            Ok(respond())
        })
    }
}

/// With nothing known, a burst is paced from 10 requests/s: not a hundred requests at t = 0.
#[tokio::test(start_paused = true)]
async fn slow_start_paces_a_burst() {
    let layer = RateLimitLayer::new(Limits::adaptive(Adaptive::default()));
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    burst(&service, 20).await;
    let at = arrivals(&transport);
    // The first half second at 10/s: nothing was sent before it to measure.
    for (i, at) in at.iter().take(5).enumerate() {
        assert!(close(*at, millis(100 * i as u64)), "{i}: {at:?}");
    }
    // Then faster, along 10 × 2^t, never more than twice the rate sent: twenty in 1.3 s,
    // where the first second at 10/s would have taken two.
    let gaps: Vec<_> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[5..].iter().all(|g| *g < millis(100)), "{gaps:?}");
    assert!(at[19] < millis(1_300), "{at:?}");
    assert!(layer.handle().learned_rate(None).unwrap() > 14.0);
}

/// Many 429s from requests sent before the first of them came back are one episode: one
/// decrease, to 0.85 × the pace they were sent at. A request sent after it starts another.
#[tokio::test(start_paused = true)]
async fn one_decrease_per_episode() {
    let layer = RateLimitLayer::new(Limits::adaptive(Adaptive::default()));
    let handle = layer.handle();
    let transport = Slow {
        latency: secs(1),
        respond: Arc::new(|| bare_429("1")),
    };
    let service = layer.layer(transport);
    let start = Instant::now();
    let tasks: Vec<_> = (0..30)
        .map(|i| spawn(&service, request(&i.to_string(), 0)))
        .collect();
    // The first 429 comes back at 1 s, for a request sent at 10/s: 8.5/s, then up along the
    // cubic (K = 60 requests at 10/s = 6 s).
    let cubic = |t: f64| 10.0 - 1.5 * ((6.0 - t) / 6.0f64).powi(3);
    time::sleep_until(start + secs(1)).await;
    tokio::task::yield_now().await;
    let first = handle.learned_rate(None).unwrap();
    assert!(same_rate(first, 0.85 * 10.0), "{first}");
    // Up to 2 s, every 429 is for a request sent before that decrease: the rate only climbs.
    for ms in [1_200, 1_500, 1_900, 1_999] {
        time::sleep_until(start + millis(ms)).await;
        let rate = handle.learned_rate(None).unwrap();
        let expected = cubic((ms - 1_000) as f64 / 1_000.0);
        assert!(
            (rate - expected).abs() < 0.01,
            "{ms} ms: {rate} vs {expected}"
        );
    }
    // The 429 of a request sent after the decrease is a new episode.
    time::sleep_until(start + millis(2_200)).await;
    let second = handle.learned_rate(None).unwrap();
    assert!(second < first, "{second} after {first}");
    for task in tasks {
        let _ = task.await;
    }
}

/// After a decrease the rate climbs back along the cubic: back at the rate that drew the
/// throttle after K, then above it, faster and faster.
#[tokio::test(start_paused = true)]
async fn the_rate_climbs_back_along_a_cubic() {
    let transport = first_then_ok(|| bare_429("1"));
    let layer = RateLimitLayer::new(Limits::adaptive(Adaptive::default()));
    let handle = layer.handle();
    let service = layer.layer(transport);
    let start = Instant::now();
    // The first request draws the 429 at t = 0, sent at 10/s: from 8.5/s back to 10/s in
    // K = 6 s. Keep the limit busy so that the rate is not capped by the rate sent.
    let busy = {
        let service = service.clone();
        tokio::spawn(async move { burst(&service, 400).await })
    };
    let cubic = |t: f64| 10.0 + 1.5 * ((t - 6.0) / 6.0f64).powi(3);
    for secs in [1, 3, 6, 9, 12] {
        time::sleep_until(start + Duration::from_secs(secs)).await;
        let rate = handle.learned_rate(None).unwrap();
        let expected = cubic(secs as f64);
        assert!(
            (rate - expected).abs() < 0.01,
            "{secs} s: {rate} vs {expected}"
        );
    }
    busy.abort();
}

/// A limit the provider reports is adopted at once: no more searching, and no pace while the
/// limit alone holds the key.
#[tokio::test(start_paused = true)]
async fn a_reported_limit_is_a_jump() {
    let transport = Recorder::answering(|_| {
        let mut limits = RateLimitSnapshot::new();
        limits.set(
            Dimension::Requests,
            Window::Minute,
            LimitReading::new().with_limit(6_000).with_remaining(5_000),
        );
        verdict_response(Verdict::success().with_rate_limits(limits))
    });
    let layer = RateLimitLayer::new(Limits::adaptive(Adaptive::default()));
    let service = layer.layer(transport.clone());
    burst(&service, 1).await;
    assert_eq!(layer.handle().learned_rate(None), Some(100.0));
    // 50 more at once: the reported limit (6,000 a minute, 5,000 left) takes them all now.
    burst(&service, 50).await;
    assert!(arrivals(&transport).iter().all(|at| at.is_zero()));
}

/// The learned rate stays within the configured floor and ceiling.
#[tokio::test(start_paused = true)]
async fn floor_and_ceiling_hold() {
    let ceiling = Adaptive::default().with_ceiling(Rate::per_second(n(5)));
    let layer = RateLimitLayer::new(Limits::adaptive(ceiling));
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    burst(&service, 20).await;
    let at = arrivals(&transport);
    for (i, at) in at.iter().enumerate() {
        assert!(close(*at, millis(200 * i as u64)), "{i}: {at:?}");
    }
    assert_eq!(layer.handle().learned_rate(None), Some(5.0));

    // Every request throttled: each one a new episode, down to the floor and no further.
    let floor = Adaptive::default().with_floor(Rate::per_second(n(2)));
    let layer = RateLimitLayer::new(Limits::adaptive(floor));
    let transport = Recorder::answering(|_| bare_429("1"));
    let service = layer.layer(transport.clone());
    burst(&service, 20).await;
    assert_eq!(layer.handle().learned_rate(None), Some(2.0));
    let at = arrivals(&transport);
    assert!(close(at[19] - at[18], millis(500)), "{at:?}");
}

/// Under an adaptive limit a bare 429 pauses nothing: its `retry-after` is its own request's
/// business; the others go on at the lowered pace.
#[tokio::test(start_paused = true)]
async fn a_bare_429_slows_the_pace_without_pausing() {
    let transport = first_then_ok(|| bare_429("5"));
    let layer = RateLimitLayer::new(Limits::adaptive(Adaptive::default()));
    let service = layer.layer(transport.clone());
    burst(&service, 4).await;
    let at = arrivals(&transport);
    // One interval of the new pace (8.5/s) apart, then faster as it climbs back; not 5 s.
    let interval = Duration::from_secs_f64(1.0 / 8.5);
    assert!(close(at[1], interval), "{at:?}");
    assert!(
        at.windows(2).all(|w| w[1] - w[0] <= interval + millis(1)),
        "{at:?}"
    );
}

/// A 429 whose headers say the limit is used up pauses the key until its delay; then the
/// waiters leave one at a time, at the limit's pace, not all at once.
#[tokio::test(start_paused = true)]
async fn after_a_pause_waiters_leave_at_the_pace() {
    let transport = first_then_ok(|| {
        let mut limits = RateLimitSnapshot::new();
        limits.set(
            Dimension::Requests,
            Window::Minute,
            LimitReading::new().with_limit(600).with_remaining(0),
        );
        verdict_response(
            Verdict::failure(ErrorClass::RateLimited)
                .with_status(StatusCode::TOO_MANY_REQUESTS)
                .with_delay(secs(2), DelaySource::RetryAfterSeconds)
                .with_rate_limits(limits),
        )
    });
    // The quota is configured (600 a minute, the whole minute at once): a ceiling.
    let limits = Limits::new([Limit::requests(Quota::per_minute(n(600)))])
        .with_adaptive(Adaptive::default());
    let layer = RateLimitLayer::new(limits);
    let service = layer.layer(transport.clone());
    burst(&service, 1).await;
    burst(&service, 5).await;
    let at = arrivals(&transport);
    // Released at 10/s from the end of the pause.
    let expected = [0, 2_000, 2_100, 2_200, 2_300, 2_400].map(millis);
    assert!(at.iter().zip(expected).all(|(a, b)| close(*a, b)), "{at:?}");
}

/// A configured quota is a ceiling: a stray 429 lowers the pace a little below it, for a
/// while, and never pauses the key for the 429's whole `retry-after`.
#[tokio::test(start_paused = true)]
async fn a_configured_quota_is_a_ceiling() {
    let transport = first_then_ok(|| bare_429("1"));
    let quota = Quota::per_second(n(20)).with_burst(n(1));
    let limits = Limits::new([Limit::requests(quota)]).with_adaptive(Adaptive::default());
    let layer = RateLimitLayer::new(limits);
    let handle = layer.handle();
    let service = layer.layer(transport.clone());
    // Nothing learned yet: the configured limit alone, 20/s.
    assert_eq!(handle.learned_rate(None), Some(20.0));
    burst(&service, 10).await;
    let at = arrivals(&transport);
    // The 429 at t = 0: the next request at the configured 50 ms, then 0.85 × 20/s, climbing
    // back; no one-second pause.
    assert!(close(at[1], millis(50)), "{at:?}");
    assert!(
        close(at[2] - at[1], Duration::from_secs_f64(1.0 / 17.0)),
        "{at:?}"
    );
    assert!(at[9] < millis(600), "{at:?}");
    let rate = handle.learned_rate(None).unwrap();
    assert!((17.0..20.0).contains(&rate), "{rate}");
    // Back at the ceiling after K (60 requests at 20/s: 4 s at least), and no higher.
    time::sleep(secs(5)).await;
    burst(&service, 1).await;
    assert_eq!(handle.learned_rate(None), Some(20.0));
}

/// An observer hears the learned rate when it moves by 1 % or more.
#[tokio::test(start_paused = true)]
async fn the_learned_rate_is_reported_when_it_moves() {
    #[derive(Default)]
    struct Rates(Mutex<Vec<u64>>);
    impl Observer for Rates {
        fn observe(&self, event: &Event<'_>) {
            if let Event::RateLearned {
                requests_per_minute,
                ..
            } = event
            {
                self.0.lock().unwrap().push(*requests_per_minute);
            }
        }
    }
    let rates = Arc::new(Rates::default());
    let layer = RateLimitLayer::new(Limits::adaptive(Adaptive::default()));
    let service = layer.layer(Recorder::new());
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let mut request = request(&i.to_string(), 0);
            request.extensions_mut().insert(Observe::new(rates.clone()));
            spawn(&service, request)
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let reported = rates.0.lock().unwrap().clone();
    // 10/s (600 a minute) first, then only when it moved.
    assert_eq!(reported.first(), Some(&600));
    assert!(reported.len() >= 2, "{reported:?}");
    assert!(
        reported
            .windows(2)
            .all(|w| w[0].abs_diff(w[1]) * 100 >= w[0]),
        "{reported:?}"
    );
}

/// A token limit the provider reports is adopted too: requests then wait for their tokens.
#[tokio::test(start_paused = true)]
async fn a_reported_token_limit_is_adopted() {
    let transport = Recorder::answering(|_| {
        let mut limits = RateLimitSnapshot::new();
        limits.set(
            Dimension::Tokens,
            Window::Minute,
            LimitReading::new().with_limit(6_000),
        );
        verdict_response(Verdict::success().with_rate_limits(limits))
    });
    let layer = RateLimitLayer::new(Limits::adaptive(Adaptive::default()));
    let service = layer.layer(transport.clone());
    spawn(&service, request("first", 1_000))
        .await
        .unwrap()
        .unwrap();
    // 6,000 tokens a minute, a bucket of 6,000 from when it was known, then 100 a second.
    // The pace (10/s at first) spaces the first six.
    let tasks: Vec<_> = (0..7)
        .map(|i| spawn(&service, request(&i.to_string(), 1_000)))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let at = arrivals(&transport);
    assert!(at[6] < millis(1_000), "{at:?}");
    // The seventh waited for 1,000 more tokens: 10 s at 100 a second.
    assert!(at[7] >= secs(10), "{at:?}");
}
