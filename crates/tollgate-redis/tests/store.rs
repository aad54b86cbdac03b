//! `RedisStore` against a real `redis-server` on loopback, on the real clock (Redis's clock is
//! the one the replicas share). Skipped, loudly, where `redis-server` is not installed.

mod support;

use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tollgate_core::{Cost, Dimension, RouteKey, Verdict, Window};
use tollgate_ratelimit::adaptive::{Adaptive, Rate};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{AlgorithmKind, Feedback, Limit, Limits, QuotaDecision, Store};
use tollgate_redis::error::{RedisConfigError, RedisUnavailable};
use tollgate_redis::{Mode, RedisConfig, RedisStore, Unavailable};

fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

fn key(name: &str) -> RouteKey {
    RouteKey::new(name)
}

/// 10 requests and 1,000 tokens per minute, bursts of the whole minute.
fn chat_limits() -> Limits {
    Limits::new([
        Limit::requests(Quota::per_minute(n(10))),
        Limit::tokens(Quota::per_minute(n(1_000))),
    ])
}

fn chat(tokens: u64) -> Cost {
    Cost::requests(1).with(Dimension::Tokens, tokens)
}

async fn store(redis: &support::RedisServer, limits: Limits) -> RedisStore {
    let config = RedisConfig::new(redis.url()).with_timeout(Duration::from_millis(200));
    RedisStore::connect(config, limits).await.unwrap()
}

async fn admit(store: &RedisStore, key: &RouteKey, cost: Cost) -> QuotaDecision {
    store
        .admit(Some(key), &cost, None, Duration::ZERO)
        .await
        .unwrap()
}

fn is_wait(decision: QuotaDecision) -> Option<Duration> {
    match decision {
        QuotaDecision::Wait(wait) => Some(wait),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admission_spends_on_every_limit_or_on_none() {
    let Some(redis) = support::start() else {
        return;
    };
    let store = store(&redis, chat_limits()).await;
    let k = key("all-or-nothing");
    assert_eq!(store.mode(), Mode::Shared);
    assert_eq!(admit(&store, &k, chat(600)).await, QuotaDecision::Admitted);
    // 400 tokens left: 600 more do not fit, and the request it would have cost is not spent.
    let wait = is_wait(admit(&store, &k, chat(600)).await).expect("tokens run out");
    // 200 tokens at 1,000 per minute: 12 s.
    assert!(
        wait > Duration::from_millis(11_800) && wait <= Duration::from_secs(12),
        "{wait:?}"
    );
    for _ in 0..9 {
        assert_eq!(admit(&store, &k, chat(0)).await, QuotaDecision::Admitted);
    }
    let wait = is_wait(admit(&store, &k, chat(0)).await).expect("requests run out");
    assert!(
        wait > Duration::from_millis(5_800) && wait <= Duration::from_secs(6),
        "{wait:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_draw_from_one_quota() {
    let Some(redis) = support::start() else {
        return;
    };
    for algorithm in [AlgorithmKind::TokenBucket, AlgorithmKind::Gcra] {
        let limits =
            Limits::new([Limit::requests(Quota::per_minute(n(60)).with_burst(n(5)))
                .with_algorithm(algorithm)]);
        let a = store(&redis, limits.clone()).await;
        let b = store(&redis, limits).await;
        let k = key(&format!("shared-{algorithm:?}"));
        let mut admitted = 0;
        for i in 0..10 {
            let replica = if i % 2 == 0 { &a } else { &b };
            if admit(replica, &k, Cost::requests(1)).await == QuotaDecision::Admitted {
                admitted += 1;
            }
        }
        assert_eq!(
            admitted, 5,
            "{algorithm:?}: a burst of 5 between both replicas"
        );
        // One request a second: the next in about a second, whichever replica asks.
        let wait = is_wait(admit(&b, &k, Cost::requests(1)).await).unwrap();
        assert!(wait > Duration::from_millis(800) && wait <= Duration::from_secs(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_caller_is_told_its_turn_and_spends_nothing() {
    let Some(redis) = support::start() else {
        return;
    };
    let limits = Limits::new([Limit::requests(Quota::per_second(n(10)))]);
    let store = store(&redis, limits).await;
    let k = key("queued");
    let ahead = Cost::requests(15);
    let decision = store
        .admit(Some(&k), &Cost::requests(1), Some(&ahead), Duration::ZERO)
        .await
        .unwrap();
    // 10 now, 6 more at 10 a second.
    let wait = is_wait(decision).unwrap();
    assert!(wait > Duration::from_millis(550) && wait <= Duration::from_millis(600));
    for _ in 0..10 {
        assert_eq!(
            admit(&store, &k, Cost::requests(1)).await,
            QuotaDecision::Admitted
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_replica_learns_the_other_obeys() {
    let Some(redis) = support::start() else {
        return;
    };
    let a = store(&redis, chat_limits()).await;
    let b = store(&redis, chat_limits()).await;

    // The provider says 100 tokens are left: b never believes in more.
    let k = key("remaining");
    let remaining = Feedback::Remaining {
        dimension: Dimension::Tokens,
        window: Window::Minute,
        remaining: 100,
    };
    a.feedback(Some(&k), &remaining, Duration::ZERO);
    eventually(|| async { is_wait(admit(&b, &k, chat(150)).await).is_some() }).await;
    assert_eq!(admit(&b, &k, chat(90)).await, QuotaDecision::Admitted);

    // A 429 asked for 3 s: b admits nothing before (and its token, at 1,000 a minute, 60 ms
    // after).
    let k = key("pause");
    a.feedback(
        Some(&k),
        &Feedback::PauseUntil(Duration::from_secs(3)),
        Duration::ZERO,
    );
    eventually(|| async { is_wait(admit(&b, &k, chat(1)).await).is_some() }).await;
    let wait = is_wait(admit(&b, &k, chat(1)).await).unwrap();
    assert!(
        wait > Duration::from_millis(2_500) && wait <= Duration::from_millis(3_060),
        "{wait:?}"
    );

    // Usage reconciled: charged 900 more tokens on a, b has 100 left.
    let k = key("charge");
    a.feedback(
        Some(&k),
        &Feedback::Charge(Cost::ZERO.with(Dimension::Tokens, 900)),
        Duration::ZERO,
    );
    // (Asked as a queued caller, which spends nothing, so the check cannot race the charge.)
    let ahead = Cost::ZERO;
    eventually(|| async {
        let decision = b.admit(Some(&k), &chat(200), Some(&ahead), Duration::ZERO);
        is_wait(decision.await.unwrap()).is_some_and(|wait| wait > Duration::from_secs(1))
    })
    .await;
    // ...and refunded 500: b can spend 550.
    a.feedback(
        Some(&k),
        &Feedback::Refund {
            cost: Cost::ZERO.with(Dimension::Tokens, 500),
            taken_at: Duration::ZERO,
        },
        Duration::ZERO,
    );
    eventually(|| async { admit(&b, &k, chat(550)).await == QuotaDecision::Admitted }).await;
}

/// Feedback is written in the background: waits (real time, at most 2 s) until `check` holds.
async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the feedback never reached Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_prefixed_hash_tagged_and_expire_when_idle() {
    let Some(redis) = support::start() else {
        return;
    };
    let limits = Limits::new([Limit::requests(Quota::per_second(n(10)))]);
    let config = RedisConfig::new(redis.url()).with_prefix("fleet-a");
    let store = RedisStore::connect(config, limits).await.unwrap();
    admit(&store, &key("gpt-4o"), Cost::requests(1)).await;
    store
        .admit(None, &Cost::requests(1), None, Duration::ZERO)
        .await
        .unwrap();

    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(keys, ["fleet-a:k:{gpt-4o}", "fleet-a:u"]);
    // Full again after 0.1 s; gone a second after that.
    let ttl: i64 = redis::cmd("PTTL")
        .arg("fleet-a:k:{gpt-4o}")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!((1_000..=1_200).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_script_is_loaded_again() {
    let Some(redis) = support::start() else {
        return;
    };
    let store = store(&redis, chat_limits()).await;
    let k = key("noscript");
    assert_eq!(admit(&store, &k, chat(1)).await, QuotaDecision::Admitted);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(admit(&store, &k, chat(1)).await, QuotaDecision::Admitted);
    assert_eq!(store.mode(), Mode::Shared);
    assert_eq!(store.stats().failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_each_replica_admits_its_share_then_shares_again() {
    let Some(mut redis) = support::start() else {
        return;
    };
    let limits = Limits::new([Limit::requests(Quota::per_minute(n(60)))]);
    let config = RedisConfig::new(redis.url())
        .with_replicas(3)
        .with_timeout(Duration::from_millis(100))
        .with_reconnect_every(Duration::from_millis(50));
    let store = RedisStore::connect(config, limits).await.unwrap();
    let modes = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&modes);
    store.on_mode_change(move |mode| seen.lock().unwrap().push(mode));
    let k = key("fault");
    assert_eq!(
        admit(&store, &k, Cost::requests(1)).await,
        QuotaDecision::Admitted
    );

    redis.stop();
    // The first call notices (within the timeout); the rest do not wait on Redis at all.
    let started = tokio::time::Instant::now();
    let mut admitted = 0;
    for _ in 0..30 {
        if admit(&store, &k, Cost::requests(1)).await == QuotaDecision::Admitted {
            admitted += 1;
        }
    }
    assert!(started.elapsed() < Duration::from_millis(1_000));
    assert_eq!(admitted, 20, "a third of 60");
    assert_eq!(store.mode(), Mode::Unavailable);

    redis.restart();
    let back = tokio::time::Instant::now();
    while store.mode() != Mode::Shared {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "never shared again"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A fresh Redis: the whole quota again.
    assert_eq!(
        admit(&store, &k, Cost::requests(1)).await,
        QuotaDecision::Admitted
    );
    assert_eq!(*modes.lock().unwrap(), [Mode::Unavailable, Mode::Shared]);
    assert!(store.stats().failures >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refuse_and_admit_policies() {
    // Nothing listens on this port: the store starts unavailable.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("redis://127.0.0.1:{port}/");
    let limits = Limits::new([Limit::requests(Quota::per_minute(n(1)))]);
    let refuse = RedisConfig::new(url.clone()).with_unavailable(Unavailable::Refuse);
    let store = RedisStore::connect(refuse, limits.clone()).await.unwrap();
    assert_eq!(store.mode(), Mode::Unavailable);
    let error = store
        .admit(None, &Cost::requests(1), None, Duration::ZERO)
        .await
        .unwrap_err();
    let refused = error.downcast_ref::<RedisUnavailable>().unwrap();
    assert_eq!(refused.retry_after(), Duration::from_millis(250));
    let verdict = Verdict::of_error(error.as_ref()).expect("the refusal carries its verdict");
    assert!(verdict.is_local_refusal());

    let admit_all = RedisConfig::new(url).with_unavailable(Unavailable::Admit);
    let store = RedisStore::connect(admit_all, limits).await.unwrap();
    for _ in 0..3 {
        let decision = store
            .admit(None, &Cost::requests(1), None, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(decision, QuotaDecision::Admitted);
    }
}

#[tokio::test]
async fn configurations_it_cannot_run_are_refused_without_showing_the_url() {
    let limits = chat_limits();
    let url = "redis://:s3cret@127.0.0.1:1/";
    let refused = |config: RedisConfig, limits: Limits| async move {
        RedisStore::connect(config, limits).await.unwrap_err()
    };
    let error = refused(RedisConfig::new("http://:s3cret@x/"), limits.clone()).await;
    assert_eq!(error, RedisConfigError::Url);
    assert!(!error.to_string().contains("s3cret"));
    let error = refused(RedisConfig::new(url).with_replicas(0), limits.clone()).await;
    assert_eq!(error, RedisConfigError::NoReplicas);
    let error = refused(RedisConfig::new(url).with_prefix("a{b}"), limits.clone()).await;
    assert_eq!(error, RedisConfigError::Prefix);
    let windows =
        Limits::new([Limit::requests(Quota::per_minute(n(10)))
            .with_algorithm(AlgorithmKind::SlidingWindowLog)]);
    let error = refused(RedisConfig::new(url), windows).await;
    assert_eq!(error, RedisConfigError::Algorithm("sliding_window_log"));
    assert!(!format!("{:?}", RedisConfig::new(url)).contains("s3cret"));
}

#[tokio::test]
async fn a_cost_no_limit_can_hold_is_refused_without_a_round_trip() {
    // Nothing listens: a round trip would fail, yet the answer is exact.
    let config = RedisConfig::new("redis://127.0.0.1:1/").with_unavailable(Unavailable::Refuse);
    let store = RedisStore::connect(config, chat_limits()).await.unwrap();
    let decision = store
        .admit(None, &chat(5_000), None, Duration::ZERO)
        .await
        .unwrap();
    assert!(matches!(
        decision,
        QuotaDecision::TooLarge {
            dimension: Dimension::Tokens,
            cost: 5_000,
            capacity: 1_000,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_under_one_key_fails_that_key_only() {
    let Some(redis) = support::start() else {
        return;
    };
    let config = RedisConfig::new(redis.url()).with_unavailable(Unavailable::Refuse);
    let store = RedisStore::connect(config, chat_limits()).await.unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("tollgate:k:{poisoned}")
        .arg("not a hash")
        .query_async(&mut connection)
        .await
        .unwrap();
    let poisoned = store
        .admit(Some(&key("poisoned")), &chat(1), None, Duration::ZERO)
        .await;
    assert!(poisoned.unwrap_err().is::<RedisUnavailable>());
    // Redis is still there, and every other key still shared.
    assert_eq!(store.mode(), Mode::Shared);
    assert_eq!(
        admit(&store, &key("healthy"), chat(1)).await,
        QuotaDecision::Admitted
    );
    assert_eq!(store.stats().mode_changes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_made_without_waiting_connects_before_its_first_answer() {
    let Some(redis) = support::start() else {
        return;
    };
    let limits = Limits::new([Limit::requests(Quota::per_minute(n(2)))]);
    let config = RedisConfig::new(redis.url()).with_unavailable(Unavailable::Refuse);
    let store = RedisStore::new(config.clone(), limits.clone()).unwrap();
    // Asked at once: the answer waits for the first connection, and comes from Redis.
    let k = key("new");
    assert_eq!(
        admit(&store, &k, Cost::requests(1)).await,
        QuotaDecision::Admitted
    );
    assert_eq!(store.mode(), Mode::Shared);
    let other = RedisStore::new(config, limits).unwrap();
    assert_eq!(
        admit(&other, &k, Cost::requests(1)).await,
        QuotaDecision::Admitted
    );
    assert!(is_wait(admit(&store, &k, Cost::requests(1)).await).is_some());

    // Nothing listens: the first answer applies the policy within the timeout.
    let config = RedisConfig::new("redis://127.0.0.1:1/")
        .with_unavailable(Unavailable::Refuse)
        .with_timeout(Duration::from_millis(100));
    let store = RedisStore::new(config, chat_limits()).unwrap();
    let started = tokio::time::Instant::now();
    let error = store
        .admit(None, &Cost::requests(1), None, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(error.is::<RedisUnavailable>());
    assert!(started.elapsed() < Duration::from_millis(1_000));
}

#[test]
fn a_store_made_outside_a_runtime_says_so() {
    let error = RedisStore::new(RedisConfig::new("redis://127.0.0.1:1/"), chat_limits());
    assert_eq!(error.unwrap_err(), RedisConfigError::NoRuntime);
}

/// An adaptive limit starting at `per_second`, with no limits of its own.
fn learning(per_second: u64) -> Limits {
    Limits::adaptive(Adaptive::new().with_initial(Rate::per_second(n(per_second))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_learned_pace_is_one_for_every_replica() {
    let Some(redis) = support::start() else {
        return;
    };
    // Slow start from 2 requests a second, nothing known: one request, then the next
    // replica to ask waits for the shared pace, ~500 ms.
    let a = store(&redis, learning(2)).await;
    let b = store(&redis, learning(2)).await;
    let k = key("pace");
    assert_eq!(
        admit(&a, &k, Cost::requests(1)).await,
        QuotaDecision::Admitted
    );
    let wait = is_wait(admit(&b, &k, Cost::requests(1)).await).expect("paced");
    assert!(
        wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
        "{wait:?}"
    );
    // Both hear the rate in force.
    assert_eq!(a.learned_rate(Some(&k), Duration::ZERO), Some(2.0));
    assert_eq!(b.report_learned_rate(Some(&k), Duration::ZERO), Some(2.0));
    assert_eq!(
        b.report_learned_rate(Some(&k), Duration::ZERO),
        None,
        "reported once"
    );
    // A queued caller behind 3 more requests: 4 intervals of the pace at most.
    let decision = b
        .admit(
            Some(&k),
            &Cost::requests(1),
            Some(&Cost::requests(3)),
            Duration::ZERO,
        )
        .await
        .unwrap();
    let wait = is_wait(decision).unwrap();
    assert!(
        wait > Duration::from_millis(1_800) && wait <= Duration::from_secs(2),
        "{wait:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_seen_by_one_replica_slows_every_replica_once_per_episode() {
    let Some(redis) = support::start() else {
        return;
    };
    // 10 requests a second configured as the ceiling; the pace is off until a throttle.
    let limits =
        Limits::new([Limit::requests(Quota::per_second(n(10)))]).with_adaptive(Adaptive::new());
    let a = store(&redis, limits.clone()).await;
    let b = store(&redis, limits).await;
    let k = key("throttle");
    assert_eq!(
        admit(&a, &k, Cost::requests(1)).await,
        QuotaDecision::Admitted
    );
    assert_eq!(a.learned_rate(Some(&k), Duration::ZERO), Some(10.0));

    // a hears a 429 for the request it just sent: the fleet's rate drops to 85 % of 10.
    let now = Duration::from_millis(5);
    let throttled = Feedback::Throttled {
        taken_at: Duration::ZERO,
    };
    a.feedback(Some(&k), &throttled, now);
    eventually(|| async {
        admit(&b, &k, Cost::requests(1)).await;
        b.learned_rate(Some(&k), Duration::ZERO)
            .is_some_and(|rate| rate < 9.0)
    })
    .await;
    let lowered = b.learned_rate(Some(&k), Duration::ZERO).unwrap();
    assert!((8.4..8.6).contains(&lowered), "{lowered}");

    // b hears a 429 for a request sent before the decrease: the same episode, no new cut.
    b.feedback(
        Some(&k),
        &Feedback::Throttled {
            taken_at: Duration::ZERO,
        },
        Duration::from_secs(1),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    admit(&a, &k, Cost::requests(1)).await;
    let rate = a.learned_rate(Some(&k), Duration::ZERO).unwrap();
    assert!(rate >= 8.4, "one cut per episode: {rate}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_the_provider_reports_hold_every_replica_that_heard_them() {
    let Some(redis) = support::start() else {
        return;
    };
    let a = store(&redis, learning(100)).await;
    let b = store(&redis, learning(100)).await;
    let k = key("learned");
    // Both replicas read "3 requests per minute" in their responses' headers.
    let reported = Feedback::Limit {
        dimension: Dimension::Requests,
        window: Window::Minute,
        limit: 3,
    };
    a.feedback(Some(&k), &reported, Duration::ZERO);
    b.feedback(Some(&k), &reported, Duration::ZERO);
    assert_eq!(
        a.limits(Some(&k)),
        learning(100),
        "the configuration is unchanged"
    );
    for replica in [&a, &b, &a] {
        assert_eq!(
            admit(replica, &k, Cost::requests(1)).await,
            QuotaDecision::Admitted
        );
    }
    let wait = is_wait(admit(&b, &k, Cost::requests(1)).await).expect("3 per minute, shared");
    assert!(
        wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
        "{wait:?}"
    );
    // A fourth reading of the same limit changes nothing; a configured one replaces it.
    a.feedback(Some(&k), &reported, Duration::ZERO);
    let configured =
        Limits::new([Limit::requests(Quota::per_minute(n(600)))]).with_adaptive(Adaptive::new());
    a.set_limits(Some(&k), configured.clone());
    assert_eq!(a.limits(Some(&k)), configured);
    // The same field in Redis, now refilling at 10 a second: the next request within 100 ms,
    // not 20 s.
    let wait = is_wait(admit(&a, &k, Cost::requests(1)).await).unwrap_or_default();
    assert!(wait <= Duration::from_millis(100), "{wait:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_layer_shows_whether_the_quota_is_shared() {
    use tollgate_metrics::{MetricsLayer, Signal};
    use tollgate_ratelimit::RateLimitLayer;
    use tower::{Layer, ServiceExt};

    let Some(mut redis) = support::start() else {
        return;
    };
    let limits = Limits::new([Limit::requests(Quota::per_second(n(100)))]);
    let config = RedisConfig::new(redis.url()).with_timeout(Duration::from_millis(100));
    let store = RedisStore::connect(config, limits.clone()).await.unwrap();
    let metrics = MetricsLayer::new("openai");
    let handle = metrics.handle();
    let provider = tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    });
    let service = metrics.layer(RateLimitLayer::from_store(store, limits).layer(provider));
    service
        .clone()
        .oneshot(http::Request::new(()))
        .await
        .unwrap();
    assert_eq!(handle.snapshot().quota_shared, Some(true));

    redis.stop();
    // The first request finds Redis gone and is admitted from the local share.
    service
        .clone()
        .oneshot(http::Request::new(()))
        .await
        .unwrap();
    let snapshot = handle.snapshot();
    assert_eq!(snapshot.quota_shared, Some(false));
    assert!(
        snapshot
            .alerts()
            .iter()
            .any(|alert| alert.signal == Signal::QuotaNotShared)
    );
}

/// A request that will not wait (`max_wait` zero) is still admitted while the quota has room,
/// though the requests sent with it are waiting for Redis's answers: the round trip is not a
/// wait for quota. Twenty at once against ten a minute: exactly ten admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_will_not_wait_are_admitted_while_the_quota_has_room() {
    use tollgate_ratelimit::error::RateLimited;
    use tollgate_ratelimit::{RateLimitConfig, RateLimitLayer};
    use tower::{Layer, ServiceExt};

    let Some(redis) = support::start() else {
        return;
    };
    let limits = Limits::new([Limit::requests(Quota::per_minute(n(10)))]);
    let store = store(&redis, limits.clone()).await;
    let config = RateLimitConfig::new(limits).with_max_wait(Duration::ZERO);
    let provider = tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    });
    let service = RateLimitLayer::from_store(store, config).layer(provider);
    let calls: Vec<_> = (0..20)
        .map(|_| tokio::spawn(service.clone().oneshot(http::Request::new(()))))
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    let admitted = answers.iter().filter(|answer| answer.is_ok()).count();
    assert_eq!(admitted, 10);
    for refusal in answers.iter().filter_map(|answer| answer.as_ref().err()) {
        let refusal = refusal.downcast_ref::<RateLimited>().expect("a refusal");
        // The next of ten a minute: about six seconds, by Redis's clock.
        let wait = refusal.retry_after();
        assert!(wait > Duration::from_secs(5), "{wait:?}");
    }
}

/// A replica tells how a key stands without a round trip, from its last answer refilled since
/// (what a router needs to choose a deployment): other replicas' spending shows from its next
/// answer on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outlook_comes_from_the_last_answer_without_a_round_trip() {
    let Some(redis) = support::start() else {
        return;
    };
    let limits = Limits::new([Limit::requests(Quota::per_minute(n(10)))]);
    let (a, b) = (
        store(&redis, limits.clone()).await,
        store(&redis, limits).await,
    );
    let k = key("outlook");
    let one = Cost::requests(1);
    let fresh = a.outlook(Some(&k), &one, Duration::ZERO).unwrap();
    assert_eq!(fresh.decision, QuotaDecision::Admitted);
    assert!((fresh.headroom - 0.9).abs() < 1e-9, "{fresh:?}");
    for _ in 0..4 {
        assert_eq!(admit(&a, &k, one).await, QuotaDecision::Admitted);
    }
    let after_four = a.outlook(Some(&k), &one, Duration::ZERO).unwrap();
    assert_eq!(after_four.decision, QuotaDecision::Admitted);
    assert!((after_four.headroom - 0.5).abs() < 0.01, "{after_four:?}");
    assert_eq!(a.utilization(Some(&k), Duration::ZERO).len(), 1);
    // The other replica spends the rest: this one learns it from its next answer.
    for _ in 0..6 {
        assert_eq!(admit(&b, &k, one).await, QuotaDecision::Admitted);
    }
    assert!(is_wait(admit(&a, &k, one).await).is_some());
    let empty = a.outlook(Some(&k), &one, Duration::ZERO).unwrap();
    let wait = is_wait(empty.decision).expect("empty now");
    assert!(wait > Duration::from_secs(5), "{wait:?}");
    assert!(empty.headroom < 0.0);
    // Six seconds later (by the layer's clock) one request has refilled.
    let later = a.outlook(Some(&k), &one, Duration::from_secs(6)).unwrap();
    assert_eq!(later.decision, QuotaDecision::Admitted);
    // A cost no limit can hold says so at once.
    let huge = a
        .outlook(Some(&k), &Cost::requests(11), Duration::ZERO)
        .unwrap();
    assert!(matches!(huge.decision, QuotaDecision::TooLarge { .. }));
}
