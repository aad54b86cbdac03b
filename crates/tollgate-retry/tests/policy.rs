//! The pure parts: every jitter mode against its formula with pinned draws, every delay within
//! `[min_delay, max]` for any input, the spread of server delays (a floor, with a bounded extra
//! on top) for every delay source, and the OpenAI preset's decisions for headers of every kind,
//! classified by the OpenAI classifier as the SDK would see them.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use tollgate_core::{Classify, DelaySource, ErrorClass, ResponseView, Verdict};
use tollgate_providers::OpenAi;
use tollgate_retry::{Backoff, Decision, GaveUp, Jitter, RetryPolicy, Spread};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// 100 ms doubling to 10 s.
fn backoff(jitter: Jitter) -> Backoff {
    Backoff::exponential(ms(100), Duration::from_secs(10)).with_jitter(jitter)
}

#[test]
fn each_jitter_mode_follows_its_formula() {
    // Retry 2: d = 400 ms.
    let cases: [(Jitter, f64, Duration); 14] = [
        (Jitter::None, 0.9, ms(400)),
        (Jitter::Full, 0.0, ms(0)),
        (Jitter::Full, 0.25, ms(100)),
        (Jitter::Full, 0.5, ms(200)),
        (Jitter::Equal, 0.0, ms(200)),
        (Jitter::Equal, 0.5, ms(300)),
        // base + r × (3 × previous − base): previous 1 s.
        (Jitter::Decorrelated, 0.0, ms(100)),
        (Jitter::Decorrelated, 0.5, ms(1_550)),
        (Jitter::Proportional { percent: 25 }, 0.0, ms(300)),
        (Jitter::Proportional { percent: 25 }, 0.5, ms(400)),
        (Jitter::Proportional { percent: 25 }, 0.75, ms(450)),
        (Jitter::Between { low: 75, high: 100 }, 0.0, ms(300)),
        (Jitter::Between { low: 75, high: 100 }, 0.5, ms(350)),
        (Jitter::Between { low: 100, high: 75 }, 0.5, ms(350)),
    ];
    for (jitter, draw, want) in cases {
        assert_eq!(
            backoff(jitter).delay(2, Duration::from_secs(1), draw),
            want,
            "{jitter:?} at {draw}"
        );
    }
    // Decorrelated starts from the base when there is no previous delay, and stays under max.
    assert_eq!(
        backoff(Jitter::Decorrelated).delay(0, Duration::ZERO, 0.5),
        ms(200)
    );
    assert_eq!(
        backoff(Jitter::Decorrelated).delay(9, Duration::from_secs(9), 0.99),
        Duration::from_secs(10)
    );
    // A factor of 3, capped.
    let triple = backoff(Jitter::None).with_factor(NonZeroU32::new(3).unwrap());
    assert_eq!(triple.delay(3, Duration::ZERO, 0.0), ms(2_700));
    assert_eq!(
        triple.delay(30, Duration::ZERO, 0.0),
        Duration::from_secs(10)
    );
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        any::<u8>().prop_map(|percent| Jitter::Proportional { percent }),
        (any::<u16>(), any::<u16>()).prop_map(|(low, high)| Jitter::Between { low, high }),
    ]
}

fn draw() -> impl Strategy<Value = f64> {
    prop_oneof![0.0f64..1.0, any::<f64>()]
}

proptest! {
    /// Whatever the mode, retry, previous delay and draw (even NaN or out of range), the
    /// decided wait is within `[min_delay, max]`, and nothing panics.
    #[test]
    fn every_delay_is_within_min_and_max(
        jitter in jitter(),
        base in 0u64..10_000_000_000_000,
        max in 0u64..u64::MAX / 2,
        factor in 1u32..10,
        min in 0u64..1_000_000_000,
        retry in 0u32..200,
        previous in any::<u64>(),
        draw in draw(),
    ) {
        let backoff = Backoff::exponential(Duration::from_nanos(base), Duration::from_nanos(max))
            .with_factor(NonZeroU32::new(factor).unwrap())
            .with_jitter(jitter);
        let delay = backoff.delay(retry, Duration::from_nanos(previous), draw);
        prop_assert!(delay <= backoff.max());
        let policy = RetryPolicy::default()
            .with_max_retries(u32::MAX)
            .with_min_delay(Duration::from_nanos(min))
            .with_backoff(backoff);
        let verdict = Verdict::failure(ErrorClass::ServerError);
        match policy.decide(retry, 0, &verdict, Duration::from_nanos(previous), draw) {
            Decision::Retry { delay, source } => {
                prop_assert_eq!(source, DelaySource::None);
                prop_assert!(delay >= policy.min_delay);
                prop_assert!(delay <= backoff.max().max(policy.min_delay));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}

/// 2025-06-15T15:06:40Z, as the response's time.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

fn openai_verdict(status: u16, headers: &[(&str, &str)], body: &str) -> Verdict {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let status = StatusCode::from_u16(status).unwrap();
    OpenAi::new().classify(&ResponseView::new(status, &map, body.as_bytes()).received_at(now()))
}

const RATE_LIMITED: &str =
    r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
const NO_QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
const TOO_LONG: &str = r#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}"#;

/// The OpenAI preset's decision for each kind of response, with the draw pinned at 0.5 (the
/// backoff factor is then 0.875: 437.5 ms, then 875 ms) after `retries` retries.
#[test]
fn the_openai_preset_decides_as_the_sdk() {
    use Decision::{GiveUp, Retry, Stop};
    let policy = RetryPolicy::openai();
    let retry = |delay: Duration, source| Retry { delay, source };
    #[allow(clippy::type_complexity)]
    let cases: &[(&str, u16, &[(&str, &str)], &str, u32, Decision)] = &[
        (
            "retry-after-ms wins",
            429,
            &[("retry-after-ms", "1500"), ("retry-after", "9")],
            RATE_LIMITED,
            0,
            retry(ms(1_500), DelaySource::RetryAfterMs),
        ),
        (
            "retry-after seconds",
            429,
            &[("retry-after", "2")],
            RATE_LIMITED,
            0,
            retry(ms(2_000), DelaySource::RetryAfterSeconds),
        ),
        (
            "retry-after float seconds",
            503,
            &[("retry-after", "0.25")],
            "",
            0,
            retry(ms(250), DelaySource::RetryAfterSeconds),
        ),
        (
            "retry-after date",
            429,
            &[("retry-after", "Sun, 15 Jun 2025 15:06:50 GMT")],
            RATE_LIMITED,
            0,
            retry(ms(10_000), DelaySource::RetryAfterDate),
        ),
        (
            "exactly the cap",
            429,
            &[("retry-after", "120")],
            RATE_LIMITED,
            0,
            retry(ms(120_000), DelaySource::RetryAfterSeconds),
        ),
        (
            "above the cap: no retry",
            429,
            &[("retry-after", "121")],
            RATE_LIMITED,
            0,
            GiveUp(GaveUp::DelayAboveCap {
                requested: ms(121_000),
            }),
        ),
        (
            "too large to represent: above any cap",
            429,
            &[("retry-after", "99999999999999999999999999999999999")],
            RATE_LIMITED,
            0,
            GiveUp(GaveUp::DelayAboveCap {
                requested: Duration::MAX,
            }),
        ),
        (
            "retry-after-ms too large to represent",
            503,
            &[("retry-after-ms", "99999999999999999999999999999999999")],
            "",
            0,
            GiveUp(GaveUp::DelayAboveCap {
                requested: Duration::MAX,
            }),
        ),
        (
            "too large to represent, out of retries: still above the cap",
            429,
            &[("retry-after", "99999999999999999999999999999999999")],
            RATE_LIMITED,
            2,
            GiveUp(GaveUp::DelayAboveCap {
                requested: Duration::MAX,
            }),
        ),
        (
            "very large but representable: above the cap",
            429,
            &[("retry-after", "1000000000000")],
            RATE_LIMITED,
            0,
            GiveUp(GaveUp::DelayAboveCap {
                requested: Duration::from_secs(1_000_000_000_000),
            }),
        ),
        (
            "abc is absent",
            429,
            &[("retry-after", "abc")],
            RATE_LIMITED,
            0,
            retry(Duration::from_micros(437_500), DelaySource::None),
        ),
        (
            "inf is absent",
            429,
            &[("retry-after", "inf")],
            RATE_LIMITED,
            0,
            retry(Duration::from_micros(437_500), DelaySource::None),
        ),
        (
            "NaN is absent",
            429,
            &[("retry-after-ms", "NaN")],
            RATE_LIMITED,
            0,
            retry(Duration::from_micros(437_500), DelaySource::None),
        ),
        (
            "zero is absent: backoff",
            429,
            &[("retry-after", "0")],
            RATE_LIMITED,
            0,
            retry(Duration::from_micros(437_500), DelaySource::None),
        ),
        (
            "negative is absent",
            429,
            &[("retry-after-ms", "-5")],
            RATE_LIMITED,
            1,
            retry(ms(875), DelaySource::None),
        ),
        (
            "garbage is absent",
            500,
            &[("retry-after", "soon")],
            "",
            0,
            retry(Duration::from_micros(437_500), DelaySource::None),
        ),
        (
            "500 backs off",
            500,
            &[],
            "",
            0,
            retry(Duration::from_micros(437_500), DelaySource::None),
        ),
        (
            "second retry doubles",
            502,
            &[],
            "",
            1,
            retry(ms(875), DelaySource::None),
        ),
        (
            "two retries, then no more",
            500,
            &[],
            "",
            2,
            GiveUp(GaveUp::Attempts),
        ),
        (
            "408 is retried",
            408,
            &[],
            "",
            0,
            retry(Duration::from_micros(437_500), DelaySource::None),
        ),
        (
            "409 is retried",
            409,
            &[],
            "",
            0,
            retry(Duration::from_micros(437_500), DelaySource::None),
        ),
        (
            "x-should-retry: false wins",
            500,
            &[("x-should-retry", "false")],
            "",
            0,
            Stop,
        ),
        (
            "x-should-retry: true on a 400",
            400,
            &[("x-should-retry", "true")],
            "",
            0,
            retry(Duration::from_micros(437_500), DelaySource::None),
        ),
        (
            "x-should-retry: true on a 404",
            404,
            &[("x-should-retry", "true")],
            "",
            0,
            retry(Duration::from_micros(437_500), DelaySource::None),
        ),
        (
            "x-should-retry: true, but no quota",
            429,
            &[("x-should-retry", "true")],
            NO_QUOTA,
            0,
            Stop,
        ),
        (
            "insufficient_quota is not a rate limit",
            429,
            &[("retry-after", "1")],
            NO_QUOTA,
            0,
            Stop,
        ),
        ("context window: another model", 400, &[], TOO_LONG, 0, Stop),
        ("bad request", 400, &[], "", 0, Stop),
        ("bad key", 401, &[], "", 0, Stop),
        ("forbidden", 403, &[], "", 0, Stop),
        ("success", 200, &[("retry-after", "5")], "{}", 0, Stop),
    ];
    let mut failures = Vec::new();
    for (name, status, headers, body, retries, want) in cases {
        let verdict = openai_verdict(*status, headers, body);
        let got = policy.decide(*retries, 0, &verdict, Duration::ZERO, 0.5);
        if got != *want {
            failures.push(format!(
                "{name}: expected {want:?}, got {got:?} ({verdict:?})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Overloads are retried a configured number of times, then left to a fallback.
#[test]
fn overloads_are_retried_a_bounded_number_of_times() {
    let policy = RetryPolicy::default().with_max_overloaded_retries(1);
    let overloaded = Verdict::failure(ErrorClass::Overloaded);
    assert!(matches!(
        policy.decide(0, 0, &overloaded, Duration::ZERO, 0.5),
        Decision::Retry { .. }
    ));
    assert_eq!(
        policy.decide(1, 1, &overloaded, Duration::ZERO, 0.5),
        Decision::GiveUp(GaveUp::Overloaded)
    );
    // Other failures still have their retries.
    let server = Verdict::failure(ErrorClass::ServerError);
    assert!(matches!(
        policy.decide(1, 1, &server, Duration::ZERO, 0.5),
        Decision::Retry { .. }
    ));
}

/// Classes that another try at the same target cannot fix are not retried, whatever the
/// advice says, unless the policy trusts the server's advice; quota and context window never.
#[test]
fn some_classes_are_never_retried() {
    let policy = RetryPolicy::default();
    let trusting = RetryPolicy::default().with_trust_server_advice(true);
    for class in [
        ErrorClass::QuotaExhausted,
        ErrorClass::ContextWindowExceeded,
    ] {
        let insisting = Verdict::failure(class).with_advice(tollgate_core::RetryAdvice::SameTarget);
        assert_eq!(
            trusting.decide(0, 0, &insisting, Duration::ZERO, 0.5),
            Decision::Stop
        );
    }
    for class in [
        ErrorClass::QuotaExhausted,
        ErrorClass::ContextWindowExceeded,
        ErrorClass::Unauthorized,
        ErrorClass::PermissionDenied,
        ErrorClass::NotFound,
        ErrorClass::BadRequest,
    ] {
        let insisting = Verdict::failure(class).with_advice(tollgate_core::RetryAdvice::SameTarget);
        assert_eq!(
            policy.decide(0, 0, &insisting, Duration::ZERO, 0.5),
            Decision::Stop,
            "{class:?}"
        );
    }
}

/// A server delay below the minimum is raised to it: never an immediate retry. The spread goes
/// on top of the raised floor.
#[test]
fn the_minimum_delay_holds() {
    let policy = RetryPolicy::default()
        .with_min_delay(ms(50))
        .with_server_delay_spread(Spread::None);
    let verdict =
        Verdict::failure(ErrorClass::RateLimited).with_delay(ms(1), DelaySource::RetryAfterMs);
    assert_eq!(
        policy.decide(0, 0, &verdict, Duration::ZERO, 0.5),
        Decision::Retry {
            delay: ms(50),
            source: DelaySource::RetryAfterMs
        }
    );
    assert_eq!(
        RetryPolicy::default()
            .with_min_delay(ms(50))
            .decide(0, 0, &verdict, Duration::ZERO, 0.5),
        Decision::Retry {
            delay: Duration::from_micros(62_500),
            source: DelaySource::RetryAfterMs
        }
    );
}

/// The budget counts in hundredths of a percent of a retry: fractional percentages are exact,
/// the floor adds retries per second of the window, and old deposits expire.
#[test]
fn the_retry_budget_is_exact_for_fractions() {
    use tollgate_retry::RetryBudget;
    let secs = Duration::from_secs;
    // 0.5 %: 199 requests earn nothing, the 200th a whole retry.
    let budget = RetryBudget::new(secs(10), 0, 0.5).unwrap();
    for _ in 0..199 {
        budget.deposit(secs(0));
    }
    assert_eq!(budget.available(secs(0)), 0);
    budget.deposit(secs(0));
    assert_eq!(budget.available(secs(0)), 1);
    // 12.25 %: 100 requests earn 12.25 retries, so 12.
    let budget = RetryBudget::new(secs(10), 0, 12.25).unwrap();
    (0..100).for_each(|_| budget.deposit(secs(1)));
    assert_eq!(budget.available(secs(1)), 12);
    // Clones share it.
    let clone = budget.clone();
    assert!(clone.withdraw(secs(1)));
    assert_eq!(budget.available(secs(1)), 11);
    // Deposits leave the window after `ttl`.
    assert_eq!(budget.available(secs(12)), 0);
    // A floor of 2 per second over 10 s: 20 retries without any request.
    let floor = RetryBudget::new(secs(10), 2, 0.0).unwrap();
    assert_eq!(floor.available(secs(0)), 20);
    // Nonsense is refused.
    assert!(RetryBudget::new(Duration::ZERO, 0, 20.0).is_err());
    assert!(RetryBudget::new(secs(10), 0, -1.0).is_err());
    assert!(RetryBudget::new(secs(10), 0, f64::NAN).is_err());
}

/// Content policy, payload too large and unclassified failures are not retried by the default
/// policy even when the server says `x-should-retry: true`.
#[test]
fn content_policy_and_unknown_failures_are_not_retried() {
    let policy = RetryPolicy::default();
    for class in [
        ErrorClass::ContentPolicy,
        ErrorClass::PayloadTooLarge,
        ErrorClass::Unknown,
    ] {
        let insisting = Verdict::failure(class).with_advice(tollgate_core::RetryAdvice::SameTarget);
        assert_eq!(
            policy.decide(0, 0, &insisting, Duration::ZERO, 0.5),
            Decision::Stop,
            "{class:?}"
        );
    }
    // Content policy never, even when trusting the server.
    let insisting = Verdict::failure(ErrorClass::ContentPolicy)
        .with_advice(tollgate_core::RetryAdvice::SameTarget);
    assert_eq!(
        RetryPolicy::openai().decide(0, 0, &insisting, Duration::ZERO, 0.5),
        Decision::Stop
    );
}

/// Only `retry-after` delays above the cap give up; a long reset or body hint is left to the
/// backoff — and the OpenAI preset, like the SDK, ignores them altogether.
#[test]
fn only_retry_after_delays_above_the_cap_give_up() {
    let reset = Verdict::failure(ErrorClass::RateLimited)
        .with_delay(Duration::from_secs(360), DelaySource::ResetHeader);
    let openai = RetryPolicy::openai();
    assert_eq!(
        openai.decide(0, 0, &reset, Duration::ZERO, 0.5),
        Decision::Retry {
            delay: Duration::from_micros(437_500),
            source: DelaySource::None
        }
    );
    let short_hint =
        Verdict::failure(ErrorClass::RateLimited).with_delay(ms(1_200), DelaySource::BodyHint);
    // The SDK does not read body hints; the default policy does.
    assert_eq!(
        openai.decide(0, 0, &short_hint, Duration::ZERO, 0.5),
        Decision::Retry {
            delay: Duration::from_micros(437_500),
            source: DelaySource::None
        }
    );
    assert_eq!(
        RetryPolicy::default()
            .with_server_delay_spread(Spread::None)
            .decide(0, 0, &short_hint, Duration::ZERO, 0.5),
        Decision::Retry {
            delay: ms(1_200),
            source: DelaySource::BodyHint
        }
    );
    // Out of retries, a retry-after above the cap is still what is reported.
    let far = Verdict::failure(ErrorClass::RateLimited)
        .with_delay(Duration::from_secs(600), DelaySource::RetryAfterSeconds);
    assert_eq!(
        RetryPolicy::default()
            .with_max_retries(0)
            .decide(0, 0, &far, Duration::ZERO, 0.5),
        Decision::GiveUp(GaveUp::DelayAboveCap {
            requested: Duration::from_secs(600)
        })
    );
}

/// A zero base stays zero however many retries.
#[test]
fn a_zero_base_never_becomes_the_maximum() {
    let backoff =
        Backoff::exponential(Duration::ZERO, Duration::from_secs(60)).with_jitter(Jitter::None);
    assert_eq!(backoff.delay(5_000, Duration::ZERO, 0.5), Duration::ZERO);
}

/// The budget cannot be overdrawn, and a time before its slots' is refused, not miscounted.
#[test]
fn the_budget_is_not_overdrawn() {
    use tollgate_retry::RetryBudget;
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 100.0).unwrap();
    budget.deposit(Duration::from_secs(5));
    assert!(budget.withdraw(Duration::from_secs(5)));
    assert!(!budget.withdraw(Duration::from_secs(5)));
    assert!(!budget.withdraw(Duration::from_secs(5)));
    // Ten later slots on, the deposit is gone; an earlier time than recorded is refused.
    assert!(!budget.withdraw(Duration::from_secs(0)));
    // The end of time does not overflow.
    let tiny = RetryBudget::new(Duration::from_nanos(10), 0, 10.0).unwrap();
    tiny.deposit(Duration::MAX);
    assert_eq!(tiny.available(Duration::MAX), 0);
}

// ===== the spread of server delays =====

/// The default policy's wait for each server delay source at pinned draws: the server's delay
/// plus `r × min(50 % of it, 5 s)`; a local quota's wait, the OpenAI preset and a policy with
/// the spread off are exact; the cap is checked against the server's delay, not the spread one.
#[test]
fn server_delays_are_a_floor_spread_by_the_draw() {
    use DelaySource::{
        BodyHint, LocalQuota, ResetHeader, RetryAfterDate, RetryAfterMs, RetryAfterSeconds,
    };
    let default = RetryPolicy::default();
    let openai = RetryPolicy::openai();
    let exact = RetryPolicy::default().with_server_delay_spread(Spread::None);
    let wide = RetryPolicy::default().with_server_delay_spread(Spread::Proportional {
        percent: 200,
        max: Duration::from_secs(60),
    });
    let secs = Duration::from_secs;
    #[allow(clippy::type_complexity)]
    let cases: &[(&str, &RetryPolicy, Duration, DelaySource, f64, Decision)] = &[
        (
            "ms, r = 0",
            &default,
            ms(1_000),
            RetryAfterMs,
            0.0,
            retry(ms(1_000), RetryAfterMs),
        ),
        (
            "ms, r = 0.5",
            &default,
            ms(1_000),
            RetryAfterMs,
            0.5,
            retry(ms(1_250), RetryAfterMs),
        ),
        (
            "ms, r = 0.75",
            &default,
            ms(1_000),
            RetryAfterMs,
            0.75,
            retry(ms(1_375), RetryAfterMs),
        ),
        (
            "ms, r = 1 (clamped)",
            &default,
            ms(1_000),
            RetryAfterMs,
            7.0,
            retry(ms(1_500), RetryAfterMs),
        ),
        (
            "ms, r = NaN",
            &default,
            ms(1_000),
            RetryAfterMs,
            f64::NAN,
            retry(ms(1_000), RetryAfterMs),
        ),
        (
            "ms, r < 0",
            &default,
            ms(1_000),
            RetryAfterMs,
            -3.0,
            retry(ms(1_000), RetryAfterMs),
        ),
        (
            "seconds",
            &default,
            secs(2),
            RetryAfterSeconds,
            0.5,
            retry(ms(2_500), RetryAfterSeconds),
        ),
        (
            "date",
            &default,
            secs(10),
            RetryAfterDate,
            0.5,
            retry(ms(12_500), RetryAfterDate),
        ),
        (
            "body hint",
            &default,
            ms(1_146),
            BodyHint,
            0.5,
            retry(Duration::from_micros(1_432_500), BodyHint),
        ),
        (
            "reset header",
            &default,
            secs(4),
            ResetHeader,
            0.25,
            retry(ms(4_500), ResetHeader),
        ),
        (
            "local quota: exact",
            &default,
            ms(700),
            LocalQuota,
            0.9,
            retry(ms(700), LocalQuota),
        ),
        (
            "capped at 5 s",
            &default,
            secs(60),
            RetryAfterSeconds,
            0.5,
            retry(ms(62_500), RetryAfterSeconds),
        ),
        (
            "capped at 5 s, r = 1",
            &default,
            secs(60),
            RetryAfterSeconds,
            1.0,
            retry(secs(65), RetryAfterSeconds),
        ),
        (
            "exactly the cap: spread past it",
            &default,
            secs(120),
            RetryAfterSeconds,
            0.5,
            retry(ms(122_500), RetryAfterSeconds),
        ),
        (
            "above the cap: not spread",
            &default,
            secs(121),
            RetryAfterSeconds,
            0.5,
            Decision::GiveUp(GaveUp::DelayAboveCap {
                requested: secs(121),
            }),
        ),
        (
            "too large to represent",
            &default,
            Duration::MAX,
            RetryAfterMs,
            0.5,
            Decision::GiveUp(GaveUp::DelayAboveCap {
                requested: Duration::MAX,
            }),
        ),
        (
            "openai: exact",
            &openai,
            secs(1),
            RetryAfterSeconds,
            0.9,
            retry(secs(1), RetryAfterSeconds),
        ),
        (
            "openai: exact ms",
            &openai,
            ms(1_500),
            RetryAfterMs,
            0.9,
            retry(ms(1_500), RetryAfterMs),
        ),
        (
            "spread off: exact",
            &exact,
            secs(1),
            RetryAfterSeconds,
            0.9,
            retry(secs(1), RetryAfterSeconds),
        ),
        (
            "spread off: hint exact",
            &exact,
            ms(1_146),
            BodyHint,
            0.9,
            retry(ms(1_146), BodyHint),
        ),
        (
            "200 %, r = 0.5",
            &wide,
            secs(1),
            RetryAfterSeconds,
            0.5,
            retry(secs(2), RetryAfterSeconds),
        ),
        (
            "200 %, capped at 60 s",
            &wide,
            secs(100),
            RetryAfterSeconds,
            0.5,
            retry(secs(130), RetryAfterSeconds),
        ),
    ];
    let mut failures = Vec::new();
    for (name, policy, delay, source, draw, want) in cases {
        let verdict = Verdict::failure(ErrorClass::RateLimited).with_delay(*delay, *source);
        let got = policy.decide(0, 0, &verdict, Duration::ZERO, *draw);
        if got != *want {
            failures.push(format!("{name}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn retry(delay: Duration, source: DelaySource) -> Decision {
    Decision::Retry { delay, source }
}

/// A delay too large to represent is above every cap — even `Duration::MAX` as the cap — and is
/// carried when the retries are spent; a body hint or reset that large is left to the backoff.
#[test]
fn a_delay_too_large_to_represent_is_above_every_cap() {
    let huge = Verdict::failure(ErrorClass::RateLimited)
        .with_delay(Duration::MAX, DelaySource::RetryAfterSeconds);
    let above = Decision::GiveUp(GaveUp::DelayAboveCap {
        requested: Duration::MAX,
    });
    for policy in [
        RetryPolicy::default(),
        RetryPolicy::openai(),
        RetryPolicy::default().with_max_server_delay(Duration::MAX),
        RetryPolicy::default().with_max_retries(0),
    ] {
        assert_eq!(
            policy.decide(0, 0, &huge, Duration::ZERO, 0.5),
            above,
            "{policy:?}"
        );
    }
    let hint =
        Verdict::failure(ErrorClass::RateLimited).with_delay(Duration::MAX, DelaySource::BodyHint);
    assert_eq!(
        RetryPolicy::default()
            .with_backoff(Backoff::exponential(ms(100), ms(1_000)).with_jitter(Jitter::None))
            .decide(0, 0, &hint, Duration::ZERO, 0.5),
        retry(ms(100), DelaySource::None)
    );
}

fn spread() -> impl Strategy<Value = Spread> {
    prop_oneof![
        Just(Spread::None),
        Just(Spread::default()),
        (any::<u16>(), any::<u64>(), 0u32..1_000_000_000).prop_map(|(percent, secs, nanos)| {
            Spread::Proportional {
                percent,
                max: Duration::new(secs, nanos),
            }
        }),
    ]
}

fn floor() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..1_000_000_000_000).prop_map(Duration::from_nanos),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(Duration::MAX),
    ]
}

proptest! {
    /// Whatever the spread, floor and draw (even NaN or out of range), the wait is within
    /// `[floor, floor + bound]` (saturating), and the bound within `min(floor × p %, max)`.
    #[test]
    fn a_spread_delay_is_within_its_floor_and_bound(
        spread in spread(),
        floor in floor(),
        draw in draw(),
    ) {
        let bound = spread.bound(floor);
        match spread {
            Spread::Proportional { percent, max } => {
                prop_assert!(bound <= max);
                prop_assert!(bound.as_nanos() <= floor.as_nanos() * u128::from(percent) / 100);
            }
            _ => prop_assert_eq!(bound, Duration::ZERO),
        }
        let delay = spread.delay(floor, draw);
        prop_assert!(delay >= floor);
        prop_assert!(delay <= floor.saturating_add(bound));
    }

    /// The default policy's wait for any server delay within the cap is within
    /// `[d, d + min(d / 2, 5 s)]`, `d` the delay raised to `min_delay`.
    #[test]
    fn the_default_spread_is_within_half_the_delay_and_five_seconds(
        nanos in 1u64..=120_000_000_000,
        draw in draw(),
    ) {
        let policy = RetryPolicy::default();
        let verdict = Verdict::failure(ErrorClass::RateLimited)
            .with_delay(Duration::from_nanos(nanos), DelaySource::RetryAfterMs);
        let floor = Duration::from_nanos(nanos).max(policy.min_delay);
        let bound = (floor / 2).min(Duration::from_secs(5));
        match policy.decide(0, 0, &verdict, Duration::ZERO, draw) {
            Decision::Retry { delay, source } => {
                prop_assert_eq!(source, DelaySource::RetryAfterMs);
                prop_assert!(delay >= floor, "{:?} < {:?}", delay, floor);
                prop_assert!(delay <= floor + bound, "{:?} > {:?} + {:?}", delay, floor, bound);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
