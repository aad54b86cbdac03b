//! CacheLayer behaviour on tokio's paused clock: hits, misses and expiry, key normalisation,
//! callers kept apart, coalescing (including failing and dropped leaders), size bounds,
//! pass-through of what is not cacheable or not storable.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::num::{NonZeroU64, NonZeroUsize};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tokio::time::{self, Instant};
use tollgate_cache::{
    CACHE_HEADER, Cache, CacheBody, CacheConfig, CacheIdentity, CacheLayer, CacheRequest,
    CacheStatus,
};
use tollgate_core::body::BufferedBody;
use tollgate_core::observe::{Event, Observe, Observer};
use tollgate_core::{BoxError, ErrorClass, Verdict};
use tower::{Layer, Service, ServiceExt};

type Req = Request<BufferedBody>;

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

/// An upstream that counts its calls, waits `delay`, and answers `status` with
/// `answer <call number>`.
fn upstream(
    delay: Duration,
    status: u16,
) -> (
    Arc<AtomicUsize>,
    impl Service<Req, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let service = tower::service_fn(move |_: Req| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            time::sleep(delay).await;
            let response = Response::builder()
                .status(status)
                .body(Full::new(Bytes::from(format!("answer {n}"))))
                .unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    (calls, service)
}

fn opted(body: &'static str) -> Req {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("authorization", "Bearer sk-one")
        .header(CACHE_HEADER, "on")
        .body(BufferedBody::from(body))
        .unwrap()
}

async fn send<S, B>(service: &S, request: Req) -> Response<CacheBody<B>>
where
    S: Service<Req, Response = Response<CacheBody<B>>> + Clone,
    S::Error: std::fmt::Debug,
{
    service.clone().oneshot(request).await.unwrap()
}

async fn text<B>(response: Response<CacheBody<B>>) -> String
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn status<B>(response: &Response<B>) -> Option<CacheStatus> {
    CacheStatus::of(response)
}

fn header<B>(response: &Response<B>) -> Option<&str> {
    response
        .headers()
        .get(CACHE_HEADER)
        .map(|v| v.to_str().unwrap())
}

fn cache<S>(config: CacheConfig, inner: S) -> Cache<S> {
    CacheLayer::new(config).layer(inner)
}

#[tokio::test(start_paused = true)]
async fn hit_miss_and_expiry_at_exactly_the_ttl() {
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let service = cache(
        CacheConfig::default().with_ttl(Duration::from_secs(10)),
        inner,
    );

    let first = send(&service, opted(CHAT)).await;
    assert_eq!(status(&first), Some(CacheStatus::Miss));
    assert_eq!(header(&first), Some("miss"));
    assert_eq!(text(first).await, "answer 1");

    let second = send(&service, opted(CHAT)).await;
    assert_eq!(status(&second), Some(CacheStatus::Hit));
    assert_eq!(header(&second), Some("hit"));
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(text(second).await, "answer 1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    time::advance(Duration::from_millis(9_999)).await;
    let still = send(&service, opted(CHAT)).await;
    assert_eq!(status(&still), Some(CacheStatus::Hit));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    time::advance(Duration::from_millis(1)).await;
    let expired = send(&service, opted(CHAT)).await;
    assert_eq!(status(&expired), Some(CacheStatus::Miss));
    assert_eq!(text(expired).await, "answer 2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // The fresh answer replaced the expired one.
    let again = send(&service, opted(CHAT)).await;
    assert_eq!(text(again).await, "answer 2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hit_takes_no_time() {
    let (_, inner) = upstream(Duration::from_secs(2), 200);
    let service = cache(CacheConfig::default(), inner);
    let start = Instant::now();
    send(&service, opted(CHAT)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    send(&service, opted(CHAT)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn key_order_and_whitespace_do_not_matter() {
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let service = cache(CacheConfig::default(), inner);
    text(
        send(
            &service,
            opted(r#"{"model":"m","temperature":0.5,"messages":[]}"#),
        )
        .await,
    )
    .await;
    let reordered = send(
        &service,
        opted("{\n  \"messages\": [ ],\n  \"temperature\": 0.5,\n  \"model\": \"m\"\n}"),
    )
    .await;
    assert_eq!(status(&reordered), Some(CacheStatus::Hit));
    // Again byte for byte: through the alias, no parsing.
    let raw = send(
        &service,
        opted("{\n  \"messages\": [ ],\n  \"temperature\": 0.5,\n  \"model\": \"m\"\n}"),
    )
    .await;
    assert_eq!(status(&raw), Some(CacheStatus::Hit));
    // A different value is a different request.
    let other = send(
        &service,
        opted(r#"{"model":"m","temperature":0.6,"messages":[]}"#),
    )
    .await;
    assert_eq!(status(&other), Some(CacheStatus::Miss));
    // So are another method and another URL.
    let mut get = opted(CHAT);
    *get.method_mut() = http::Method::PUT;
    assert_eq!(status(&send(&service, get).await), Some(CacheStatus::Miss));
    let mut elsewhere = opted(CHAT);
    *elsewhere.uri_mut() = "https://api.openai.com/v1/responses".parse().unwrap();
    assert_eq!(
        status(&send(&service, elsewhere).await),
        Some(CacheStatus::Miss)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn non_json_bodies_are_keyed_raw() {
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let service = cache(CacheConfig::default(), inner);
    send(&service, opted("plain text {")).await;
    assert_eq!(
        status(&send(&service, opted("plain text {")).await),
        Some(CacheStatus::Hit)
    );
    assert_eq!(
        status(&send(&service, opted("plain  text {")).await),
        Some(CacheStatus::Miss)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn two_callers_never_share_an_entry() {
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let service = cache(CacheConfig::default(), inner);
    let with = |name: &'static str, value: &'static str| {
        let mut request = Request::post("https://api.openai.com/v1/chat/completions")
            .header(CACHE_HEADER, "on")
            .body(BufferedBody::from(CHAT))
            .unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
        request
    };
    assert_eq!(
        text(send(&service, with("authorization", "Bearer a")).await).await,
        "answer 1"
    );
    assert_eq!(
        text(send(&service, with("authorization", "Bearer b")).await).await,
        "answer 2"
    );
    assert_eq!(
        text(send(&service, with("x-api-key", "a")).await).await,
        "answer 3"
    );
    assert_eq!(
        text(send(&service, with("api-key", "a")).await).await,
        "answer 4"
    );
    assert_eq!(
        text(send(&service, with("x-goog-api-key", "a")).await).await,
        "answer 5"
    );
    // Each caller's own entry is there.
    assert_eq!(
        text(send(&service, with("authorization", "Bearer a")).await).await,
        "answer 1"
    );
    assert_eq!(
        text(send(&service, with("authorization", "Bearer b")).await).await,
        "answer 2"
    );

    // Tenants, by extension.
    let tenant = |name: &str| {
        let mut request = with("authorization", "Bearer shared");
        request
            .extensions_mut()
            .insert(CacheIdentity(name.to_owned()));
        request
    };
    assert_eq!(text(send(&service, tenant("t1")).await).await, "answer 6");
    assert_eq!(text(send(&service, tenant("t2")).await).await, "answer 7");
    assert_eq!(text(send(&service, tenant("t1")).await).await, "answer 6");
    assert_eq!(calls.load(Ordering::SeqCst), 7);
}

#[tokio::test(start_paused = true)]
async fn shared_across_callers_shares_when_configured() {
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let service = cache(
        CacheConfig::default().with_shared_across_callers(true),
        inner,
    );
    let mut a = opted(CHAT);
    a.headers_mut()
        .insert("authorization", "Bearer a".parse().unwrap());
    let mut b = opted(CHAT);
    b.headers_mut()
        .insert("authorization", "Bearer b".parse().unwrap());
    send(&service, a).await;
    let shared = send(&service, b).await;
    assert_eq!(status(&shared), Some(CacheStatus::Hit));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Headers that select another answer — an API version, an encoding — are part of the key,
/// even when entries are shared across callers.
#[tokio::test(start_paused = true)]
async fn variant_headers_are_part_of_the_key() {
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let service = cache(
        CacheConfig::default().with_shared_across_callers(true),
        inner,
    );
    let with = |name: &'static str, value: &'static str| {
        let mut request = opted(CHAT);
        request.headers_mut().insert(name, value.parse().unwrap());
        request
    };
    send(&service, with("anthropic-version", "2023-06-01")).await;
    let other_version = send(&service, with("anthropic-version", "2024-01-01")).await;
    assert_eq!(status(&other_version), Some(CacheStatus::Miss));
    let gzip = send(&service, with("accept-encoding", "gzip")).await;
    assert_eq!(status(&gzip), Some(CacheStatus::Miss));
    let same = send(&service, with("anthropic-version", "2023-06-01")).await;
    assert_eq!(status(&same), Some(CacheStatus::Hit));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

async fn concurrently<S, B>(
    service: &S,
    n: usize,
    make: fn() -> Req,
) -> Vec<(Option<CacheStatus>, String)>
where
    S: Service<Req, Response = Response<CacheBody<B>>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug + Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move {
                let response = service.oneshot(make()).await.unwrap();
                (status(&response), response)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        let (status, response) = task.await.unwrap();
        out.push((status, text(response).await));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_identical_requests_make_one_upstream_call() {
    let (calls, inner) = upstream(Duration::from_secs(1), 200);
    let service = cache(CacheConfig::default(), inner);
    let start = Instant::now();
    let results = concurrently(&service, 100, || opted(CHAT)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(results.len(), 100);
    assert!(results.iter().all(|(_, body)| body == "answer 1"));
    let misses = results
        .iter()
        .filter(|(s, _)| *s == Some(CacheStatus::Miss))
        .count();
    let coalesced = results
        .iter()
        .filter(|(s, _)| *s == Some(CacheStatus::Coalesced))
        .count();
    assert_eq!((misses, coalesced), (1, 99));
}

#[tokio::test(start_paused = true)]
async fn a_failing_leader_leaves_no_follower_hanging() {
    // Every answer is a 500: never stored, and every follower gets its own answer, at once
    // after the leader's (in parallel, not queued behind a new leader).
    let (calls, inner) = upstream(Duration::from_secs(1), 500);
    let service = cache(CacheConfig::default(), inner);
    let start = Instant::now();
    let results = concurrently(&service, 10, || opted(CHAT)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(calls.load(Ordering::SeqCst), 10);
    assert!(results.iter().all(|(s, _)| *s == Some(CacheStatus::Miss)));
    let mut bodies: Vec<_> = results.into_iter().map(|(_, b)| b).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 10);
    // Not stored.
    send(&service, opted(CHAT)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 11);
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_call_errs_releases_its_followers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let inner = tower::service_fn(move |_: Req| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            time::sleep(Duration::from_secs(1)).await;
            if n == 1 {
                return Err::<Response<Full<Bytes>>, BoxError>("connection reset".into());
            }
            Ok(Response::new(Full::new(Bytes::from(format!("answer {n}")))))
        }
    });
    let service = cache(CacheConfig::default(), inner);
    let tasks: Vec<_> = (0..5)
        .map(|_| tokio::spawn(service.clone().oneshot(opted(CHAT))))
        .collect();
    let mut errors = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(response) => assert!(text(response).await.starts_with("answer ")),
            Err(_) => errors += 1,
        }
    }
    assert_eq!(errors, 1, "only the leader sees its own error");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_leader_lets_the_followers_proceed() {
    let (calls, inner) = upstream(Duration::from_secs(1), 200);
    let service = cache(CacheConfig::default(), inner);
    let leader = tokio::spawn(service.clone().oneshot(opted(CHAT)));
    time::sleep(Duration::from_millis(100)).await;
    let followers: Vec<_> = (0..5)
        .map(|_| tokio::spawn(service.clone().oneshot(opted(CHAT))))
        .collect();
    time::sleep(Duration::from_millis(100)).await;
    leader.abort();
    let start = Instant::now();
    let mut statuses = Vec::new();
    for follower in followers {
        let response = follower.await.unwrap().unwrap();
        statuses.push(status(&response));
        assert_eq!(text(response).await, "answer 2");
    }
    // One follower became the next leader; the rest shared its call.
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == Some(CacheStatus::Miss))
            .count(),
        1
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == Some(CacheStatus::Coalesced))
            .count(),
        4
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_follower_leaves_the_others_unaffected() {
    let (calls, inner) = upstream(Duration::from_secs(1), 200);
    let service = cache(CacheConfig::default(), inner);
    let leader = tokio::spawn(service.clone().oneshot(opted(CHAT)));
    time::sleep(Duration::from_millis(10)).await;
    let dropped = tokio::spawn(service.clone().oneshot(opted(CHAT)));
    let kept = tokio::spawn(service.clone().oneshot(opted(CHAT)));
    time::sleep(Duration::from_millis(10)).await;
    dropped.abort();
    assert_eq!(text(leader.await.unwrap().unwrap()).await, "answer 1");
    let kept = kept.await.unwrap().unwrap();
    assert_eq!(status(&kept), Some(CacheStatus::Coalesced));
    assert_eq!(text(kept).await, "answer 1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_written_differently_share_one_call() {
    let (calls, inner) = upstream(Duration::from_secs(1), 200);
    let service = cache(CacheConfig::default(), inner);
    let compact = tokio::spawn(service.clone().oneshot(opted(r#"{"a":1,"b":[2]}"#)));
    let spaced = tokio::spawn(service.clone().oneshot(opted("{ \"b\": [ 2 ], \"a\": 1 }")));
    let compact = compact.await.unwrap().unwrap();
    let spaced = spaced.await.unwrap().unwrap();
    assert_eq!(status(&spaced), Some(CacheStatus::Coalesced));
    assert_eq!(text(compact).await, text(spaced).await);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn max_entries_evicts_the_least_recently_used() {
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let layer =
        CacheLayer::new(CacheConfig::default().with_max_entries(NonZeroU64::new(2).unwrap()));
    let handle = layer.handle();
    let service = layer.layer(inner);
    for body in [r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#] {
        text(send(&service, opted(body)).await).await;
        handle.run_pending_tasks();
    }
    assert_eq!(handle.entry_count(), 2);
    assert_eq!(
        status(&send(&service, opted(r#"{"a":3}"#)).await),
        Some(CacheStatus::Hit)
    );
    assert_eq!(
        status(&send(&service, opted(r#"{"a":1}"#)).await),
        Some(CacheStatus::Miss)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn max_bytes_evicts() {
    // 1 000-byte answers into 4 KiB: never more than 4 KiB held, so never all ten.
    let inner = tower::service_fn(|_: Req| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(vec![b'x'; 1_000]))))
    });
    let layer =
        CacheLayer::new(CacheConfig::default().with_max_bytes(NonZeroU64::new(4_096).unwrap()));
    let handle = layer.handle();
    let service = layer.layer(inner);
    let bodies = [
        r#"{"a":0}"#,
        r#"{"a":1}"#,
        r#"{"a":2}"#,
        r#"{"a":3}"#,
        r#"{"a":4}"#,
        r#"{"a":5}"#,
        r#"{"a":6}"#,
        r#"{"a":7}"#,
        r#"{"a":8}"#,
        r#"{"a":9}"#,
    ];
    for body in bodies {
        let response = send(&service, opted(body)).await;
        assert_eq!(text(response).await.len(), 1_000);
        handle.run_pending_tasks();
        assert!(
            handle.size_bytes() <= 4_096,
            "{} bytes held",
            handle.size_bytes()
        );
    }
    assert!(
        (1..=3).contains(&handle.entry_count()),
        "{}",
        handle.entry_count()
    );
    // The most recent is still there; the first is gone.
    assert_eq!(
        status(&send(&service, opted(r#"{"a":9}"#)).await),
        Some(CacheStatus::Hit)
    );
    assert_eq!(
        status(&send(&service, opted(r#"{"a":0}"#)).await),
        Some(CacheStatus::Miss)
    );
}

#[tokio::test(start_paused = true)]
async fn requests_not_opted_in_pass_through_untouched() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let inner = tower::service_fn(move |request: Req| {
        log.lock().unwrap().push(request.headers().clone());
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"upstream")))) }
    });
    let service = cache(CacheConfig::default(), inner);
    let plain = || {
        Request::post("https://api.openai.com/v1/chat/completions")
            .header("authorization", "Bearer sk")
            .body(BufferedBody::from(CHAT))
            .unwrap()
    };
    for _ in 0..2 {
        let response = send(&service, plain()).await;
        assert_eq!(status(&response), Some(CacheStatus::Bypass));
        assert_eq!(header(&response), None);
        assert_eq!(text(response).await, "upstream");
    }
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(seen.lock().unwrap()[0], *plain().headers());
}

#[tokio::test(start_paused = true)]
async fn the_opt_in_header_is_removed_upstream_and_bypass_wins() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let inner = tower::service_fn(move |request: Req| {
        log.lock()
            .unwrap()
            .push(request.headers().contains_key(CACHE_HEADER));
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) }
    });
    let service = cache(CacheConfig::default(), inner);
    send(&service, opted(CHAT)).await;
    let mut bypass = opted(CHAT);
    bypass.extensions_mut().insert(CacheRequest::Bypass);
    let response = send(&service, bypass).await;
    assert_eq!(status(&response), Some(CacheStatus::Bypass));
    let mut off = opted(CHAT);
    off.headers_mut()
        .insert(CACHE_HEADER, "off".parse().unwrap());
    assert_eq!(
        status(&send(&service, off).await),
        Some(CacheStatus::Bypass)
    );
    // The extension opts in as the header does.
    let mut by_extension = opted(CHAT);
    by_extension.headers_mut().remove(CACHE_HEADER);
    by_extension.extensions_mut().insert(CacheRequest::Use);
    assert_eq!(
        status(&send(&service, by_extension).await),
        Some(CacheStatus::Hit)
    );
    assert_eq!(*seen.lock().unwrap(), [false, false, false]);
}

#[tokio::test(start_paused = true)]
async fn deterministic_requests_are_cached_when_enabled() {
    let plain = |body: &'static str| {
        Request::post("https://api.openai.com/v1/chat/completions")
            .body(BufferedBody::from(body))
            .unwrap()
    };
    let zero = r#"{"model":"m","temperature":0,"messages":[]}"#;
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let service = cache(CacheConfig::default().with_deterministic(true), inner);
    send(&service, plain(zero)).await;
    assert_eq!(
        status(&send(&service, plain(zero)).await),
        Some(CacheStatus::Hit)
    );
    let spaced = r#"{ "temperature": 0, "model": "m", "messages": [] }"#;
    assert_eq!(
        status(&send(&service, plain(spaced)).await),
        Some(CacheStatus::Hit)
    );
    for other in [
        r#"{"model":"m","temperature":0.7,"messages":[]}"#,
        r#"{"model":"m","temperature":0,"n":3,"messages":[]}"#,
        r#"{"model":"m","messages":[]}"#,
    ] {
        assert_eq!(
            status(&send(&service, plain(other)).await),
            Some(CacheStatus::Bypass)
        );
        assert_eq!(
            status(&send(&service, plain(other)).await),
            Some(CacheStatus::Bypass)
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 7);

    // An entry stored because a request opted in is not served to one that did not, unless
    // deterministic.
    let warm = r#"{"model":"m","temperature":1,"messages":[]}"#;
    send(&service, opted(warm)).await;
    let mut anonymous_opted = opted(warm);
    anonymous_opted.headers_mut().remove("authorization");
    send(&service, anonymous_opted).await;
    assert_eq!(
        status(&send(&service, plain(warm)).await),
        Some(CacheStatus::Bypass)
    );

    // Off by default.
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let service = cache(CacheConfig::default(), inner);
    send(&service, plain(zero)).await;
    assert_eq!(
        status(&send(&service, plain(zero)).await),
        Some(CacheStatus::Bypass)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A body of frames given in advance, with no size hint: read the way a streamed response is.
struct Frames(VecDeque<Result<Frame<Bytes>, BoxError>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.pop_front())
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::new()
    }
}

fn frames(
    items: fn() -> Vec<Result<Frame<Bytes>, BoxError>>,
) -> (
    Arc<AtomicUsize>,
    impl Service<Req, Response = Response<Frames>, Error = Infallible> + Clone,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let service = tower::service_fn(move |_: Req| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Infallible>(Response::new(Frames(items().into()))) }
    });
    (calls, service)
}

#[tokio::test(start_paused = true)]
async fn a_streamed_response_is_stored_whole() {
    let (calls, inner) = frames(|| {
        vec![
            Ok(Frame::data(Bytes::from_static(b"data: one\n\n"))),
            Ok(Frame::data(Bytes::from_static(b"data: two\n\n"))),
        ]
    });
    let service = cache(CacheConfig::default(), inner);
    assert_eq!(
        text(send(&service, opted(CHAT)).await).await,
        "data: one\n\ndata: two\n\n"
    );
    let hit = send(&service, opted(CHAT)).await;
    assert_eq!(status(&hit), Some(CacheStatus::Hit));
    assert_eq!(text(hit).await, "data: one\n\ndata: two\n\n");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_too_large_response_is_passed_through_intact_and_not_stored() {
    let config = CacheConfig::default().with_max_entry_bytes(NonZeroUsize::new(16).unwrap());
    // Announced too large: never read.
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let big = "x".repeat(100);
    let inner = inner.map_response(move |r: Response<Full<Bytes>>| {
        r.map(|_| Full::new(Bytes::from(big.clone())))
    });
    let service = cache(config.clone(), inner);
    for _ in 0..2 {
        let response = send(&service, opted(CHAT)).await;
        assert_eq!(status(&response), Some(CacheStatus::Miss));
        assert!(!response.body().is_stored());
        assert_eq!(text(response).await, "x".repeat(100));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Found too large while reading: what was read, then the rest, in order.
    let (calls, inner) = frames(|| {
        (0..10)
            .map(|i| Ok(Frame::data(Bytes::from(format!("chunk {i};")))))
            .collect()
    });
    let service = cache(config, inner);
    let expected: String = (0..10).map(|i| format!("chunk {i};")).collect();
    for _ in 0..2 {
        let response = send(&service, opted(CHAT)).await;
        assert_eq!(status(&response), Some(CacheStatus::Miss));
        assert_eq!(text(response).await, expected);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_body_failing_mid_read_reaches_the_caller_with_its_error() {
    let (calls, inner) = frames(|| {
        vec![
            Ok(Frame::data(Bytes::from_static(b"partial"))),
            Err("stream reset".into()),
        ]
    });
    let service = cache(CacheConfig::default(), inner);
    for _ in 0..2 {
        let mut body = send(&service, opted(CHAT)).await.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "partial");
        let error = body.frame().await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "stream reset");
        assert!(body.frame().await.is_none());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "not stored");
}

#[tokio::test(start_paused = true)]
async fn trailers_are_passed_through_and_not_stored() {
    let (calls, inner) = frames(|| {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", "1".parse().unwrap());
        vec![
            Ok(Frame::data(Bytes::from_static(b"body"))),
            Ok(Frame::trailers(trailers)),
        ]
    });
    let service = cache(CacheConfig::default(), inner);
    for _ in 0..2 {
        let collected = send(&service, opted(CHAT))
            .await
            .into_body()
            .collect()
            .await
            .unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "1");
        assert_eq!(collected.to_bytes(), "body");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn failures_are_not_stored_even_with_status_200() {
    // A classifier below said the 200 is a failure (an error event in the body, say).
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let inner = inner.map_response(|mut r: Response<Full<Bytes>>| {
        r.extensions_mut()
            .insert(Verdict::failure(ErrorClass::ContentPolicy));
        r
    });
    let service = cache(CacheConfig::default(), inner);
    send(&service, opted(CHAT)).await;
    send(&service, opted(CHAT)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let (calls, inner) = upstream(Duration::ZERO, 204);
    let inner = inner.map_response(|mut r: Response<Full<Bytes>>| {
        r.extensions_mut().insert(Verdict::success());
        r.headers_mut()
            .insert("connection", "close".parse().unwrap());
        r.headers_mut()
            .insert("x-request-id", "req-1".parse().unwrap());
        r
    });
    let service = cache(CacheConfig::default(), inner);
    send(&service, opted(CHAT)).await;
    let hit = send(&service, opted(CHAT)).await;
    assert_eq!(hit.status(), StatusCode::NO_CONTENT);
    assert_eq!(hit.headers()["x-request-id"], "req-1");
    assert!(
        !hit.headers().contains_key("connection"),
        "hop-by-hop headers are not stored"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[derive(Default)]
struct Lookups(Mutex<Vec<(bool, bool)>>);

impl Observer for Lookups {
    fn observe(&self, event: &Event<'_>) {
        if let Event::CacheLookup { hit, coalesced } = *event {
            self.0.lock().unwrap().push((hit, coalesced));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn each_cacheable_request_reports_one_lookup() {
    let lookups = Arc::new(Lookups::default());
    let observed = {
        let lookups = Arc::clone(&lookups);
        move || {
            let mut request = opted(CHAT);
            request
                .extensions_mut()
                .insert(Observe::new(lookups.clone()));
            request
        }
    };
    let (_, inner) = upstream(Duration::from_secs(1), 200);
    let service = cache(CacheConfig::default(), inner);
    let a = tokio::spawn(service.clone().oneshot(observed()));
    let b = tokio::spawn(service.clone().oneshot(observed()));
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    send(&service, observed()).await;
    let mut plain = observed();
    plain.headers_mut().remove(CACHE_HEADER);
    send(&service, plain).await;
    let mut seen = lookups.0.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [(false, false), (false, true), (true, false)]);
}

#[tokio::test(start_paused = true)]
async fn clones_and_layers_share_the_store() {
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let layer = CacheLayer::new(CacheConfig::default());
    let one = layer.layer(inner.clone());
    let two = layer.clone().layer(inner);
    send(&one, opted(CHAT)).await;
    assert_eq!(
        status(&send(&two, opted(CHAT)).await),
        Some(CacheStatus::Hit)
    );
    layer.handle().clear();
    assert_eq!(
        status(&send(&one.clone(), opted(CHAT)).await),
        Some(CacheStatus::Miss)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn types_are_send_sync_and_clone() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_clone<T: Clone>() {}
    assert_send_sync::<CacheLayer>();
    assert_clone::<CacheLayer>();
    assert_send_sync::<tollgate_cache::CacheHandle>();
    assert_send_sync::<Cache<tower::util::BoxCloneSyncService<Req, Response<Full<Bytes>>, BoxError>>>(
    );
    assert_clone::<Cache<tower::util::BoxCloneSyncService<Req, Response<Full<Bytes>>, BoxError>>>();
    assert_send_sync::<CacheBody<Full<Bytes>>>();
    fn assert_send<T: Send>() {}
    assert_send::<
        tollgate_cache::future::ResponseFuture<
            tower::util::BoxCloneSyncService<Req, Response<Full<Bytes>>, BoxError>,
            Full<Bytes>,
        >,
    >();
}

#[tokio::test(start_paused = true)]
async fn integers_beyond_64_bits_are_not_conflated() {
    // serde_json reads both as the same f64; the provider (Python, say) reads two integers.
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let service = cache(CacheConfig::default(), inner);
    let one = send(
        &service,
        opted(r#"{ "model":"m", "seed": 18446744073709551616 }"#),
    )
    .await;
    assert_eq!(text(one).await, "answer 1");
    let two = send(
        &service,
        opted(r#"{ "model":"m", "seed": 18446744073709551617 }"#),
    )
    .await;
    assert_eq!(status(&two), Some(CacheStatus::Miss));
    assert_eq!(text(two).await, "answer 2");
    // Still normalised: the same request written differently is a hit.
    let same = send(
        &service,
        opted(r#"{"seed":18446744073709551617,"model":"m"}"#),
    )
    .await;
    assert_eq!(status(&same), Some(CacheStatus::Hit));
    assert_eq!(text(same).await, "answer 2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// An upstream answering 200 `text/event-stream` with `body`, counting its calls.
fn event_stream(
    body: &'static str,
) -> (
    Arc<AtomicUsize>,
    impl Service<Req, Response = Response<Full<Bytes>>, Error = Infallible> + Clone,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let service = tower::service_fn(move |_: Req| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let response = Response::builder()
                .header("content-type", "text/event-stream; charset=utf-8")
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    (calls, service)
}

#[tokio::test(start_paused = true)]
async fn event_streams_with_an_error_event_are_not_stored() {
    // A 200 stream that failed mid-way: the classifier below cannot see it (its errors come
    // mid-stream), so it carries no failure verdict.
    let bodies: [&'static str; 3] = [
        // Anthropic.
        "event: message_start\ndata: {\"type\":\"message_start\"}\n\n\
         event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n",
        // OpenAI, OpenRouter.
        "data: {\"choices\":[]}\n\ndata: {\"error\":{\"message\":\"server_error\"}}\n\n",
        // CRLF line endings.
        "data: {\"choices\":[]}\r\n\r\nevent:error\r\ndata: {}\r\n\r\n",
    ];
    for body in bodies {
        let (calls, inner) = event_stream(body);
        let service = cache(CacheConfig::default(), inner);
        for _ in 0..2 {
            let response = send(&service, opted(CHAT)).await;
            assert_eq!(status(&response), Some(CacheStatus::Miss), "{body}");
            assert_eq!(text(response).await, body);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "not stored: {body}");
    }
    // A clean stream is stored, even when a message talks about errors.
    let clean = "data: {\"choices\":[{\"delta\":{\"content\":\"\\\"error\\\": none\"}}]}\n\n\
                 data: [DONE]\n\n";
    let (calls, inner) = event_stream(clean);
    let service = cache(CacheConfig::default(), inner);
    send(&service, opted(CHAT)).await;
    let hit = send(&service, opted(CHAT)).await;
    assert_eq!(status(&hit), Some(CacheStatus::Hit));
    assert_eq!(text(hit).await, clean);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn headers_named_by_connection_are_not_stored() {
    let (calls, inner) = upstream(Duration::ZERO, 200);
    let inner = inner.map_response(|mut r: Response<Full<Bytes>>| {
        let headers = r.headers_mut();
        headers.insert("connection", "x-hop, Keep-Alive".parse().unwrap());
        headers.insert("x-hop", "1".parse().unwrap());
        headers.insert("x-end", "2".parse().unwrap());
        r
    });
    let service = cache(CacheConfig::default(), inner);
    send(&service, opted(CHAT)).await;
    let hit = send(&service, opted(CHAT)).await;
    assert_eq!(status(&hit), Some(CacheStatus::Hit));
    assert_eq!(hit.headers()["x-end"], "2");
    assert!(!hit.headers().contains_key("x-hop"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
