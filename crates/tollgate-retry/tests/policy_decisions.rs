//! Every decision of `RetryPolicy`, `Backoff` and `Spread` pinned to an exact value: each
//! setter changes what is decided, class backoffs stay apart, the advice and class rules, the
//! cap on server delays at its boundary, which delays a policy reads, the overload count, the
//! waits a give-up carries and how it reads, and the backoff's and spread's accessors and
//! boundaries. Found by mutation testing (CONTRIBUTING.md, "Mutation testing").

use std::num::NonZeroU32;
use std::time::Duration;

use tollgate_core::{DelaySource, ErrorClass, RetryAdvice, Verdict};
use tollgate_retry::{Backoff, Decision, GaveUp, Jitter, RetryPolicy, Spread};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A backoff without jitter: `base` doubling to `max`.
fn plain(base: Duration, max: Duration) -> Backoff {
    Backoff::exponential(base, max).with_jitter(Jitter::None)
}

/// The default policy waiting exactly: no spread, a backoff of 700 ms doubling to 7 s without
/// jitter.
fn exact() -> RetryPolicy {
    RetryPolicy::default()
        .with_server_delay_spread(Spread::None)
        .with_backoff(plain(ms(700), secs(7)))
}

/// [`exact`], honouring only `retry-after` headers.
fn headers_only() -> RetryPolicy {
    let mut policy = exact();
    policy.header_delays_only = true;
    policy
}

fn backoff_wait(delay: Duration) -> Decision {
    Decision::Retry {
        delay,
        source: DelaySource::None,
    }
}

fn failure(class: ErrorClass) -> Verdict {
    Verdict::failure(class)
}

fn told(class: ErrorClass, delay: Duration, source: DelaySource) -> Verdict {
    Verdict::failure(class).with_delay(delay, source)
}

#[test]
fn each_class_backoff_applies_to_its_own_class_and_several_are_kept() {
    let overloaded = plain(ms(100), secs(1));
    let timeout = plain(ms(300), secs(3));
    let policy = exact()
        .with_class_backoff(ErrorClass::Overloaded, overloaded)
        .with_class_backoff(ErrorClass::Timeout, timeout);
    assert_eq!(
        policy.class_backoffs,
        [
            (ErrorClass::Overloaded, overloaded),
            (ErrorClass::Timeout, timeout)
        ]
    );
    assert_eq!(policy.backoff_for(ErrorClass::Overloaded), &overloaded);
    assert_eq!(policy.backoff_for(ErrorClass::Timeout), &timeout);
    assert_eq!(
        policy.backoff_for(ErrorClass::ServerError),
        &plain(ms(700), secs(7))
    );
    let decide = |policy: &RetryPolicy, class| policy.decide(1, 0, &failure(class), ms(0), 0.5);
    assert_eq!(
        decide(&policy, ErrorClass::Overloaded),
        backoff_wait(ms(200))
    );
    assert_eq!(decide(&policy, ErrorClass::Timeout), backoff_wait(ms(600)));
    assert_eq!(
        decide(&policy, ErrorClass::ServerError),
        backoff_wait(ms(1_400))
    );
    // Setting a class again replaces its backoff and keeps the other class's.
    let replaced = policy.with_class_backoff(ErrorClass::Overloaded, timeout);
    assert_eq!(
        replaced.class_backoffs,
        [
            (ErrorClass::Timeout, timeout),
            (ErrorClass::Overloaded, timeout)
        ]
    );
    assert_eq!(
        decide(&replaced, ErrorClass::Overloaded),
        backoff_wait(ms(600))
    );
}

#[test]
fn the_retry_count_setters_bound_the_retries() {
    let policy = exact().with_max_retries(1);
    assert_eq!(policy.max_retries, 1);
    let server = failure(ErrorClass::ServerError);
    assert_eq!(
        policy.decide(0, 0, &server, ms(0), 0.5),
        backoff_wait(ms(700))
    );
    assert_eq!(
        policy.decide(1, 0, &server, ms(0), 0.5),
        Decision::GiveUp(GaveUp::Attempts)
    );
    let policy = exact().with_max_overloaded_retries(0);
    assert_eq!(policy.max_overloaded_retries, 0);
    assert_eq!(
        policy.decide(0, 0, &failure(ErrorClass::Overloaded), ms(0), 0.5),
        Decision::GiveUp(GaveUp::Overloaded)
    );
    // The overload count bounds overloads only.
    assert_eq!(
        policy.decide(0, 5, &server, ms(0), 0.5),
        backoff_wait(ms(700))
    );
}

#[test]
fn the_minimum_delay_raises_a_short_backoff() {
    let policy = exact()
        .with_backoff(plain(ms(10), secs(1)))
        .with_max_retries(10)
        .with_min_delay(ms(250));
    assert_eq!(policy.min_delay, ms(250));
    assert_eq!(
        policy.decide(0, 0, &failure(ErrorClass::ServerError), ms(0), 0.5),
        backoff_wait(ms(250))
    );
    assert_eq!(
        policy.decide(5, 0, &failure(ErrorClass::ServerError), ms(0), 0.5),
        backoff_wait(ms(320))
    );
}

#[test]
fn the_server_delay_cap_is_inclusive_and_settable() {
    let policy = exact().with_max_server_delay(secs(10));
    assert_eq!(policy.max_server_delay, secs(10));
    let at_cap = told(
        ErrorClass::RateLimited,
        secs(10),
        DelaySource::RetryAfterSeconds,
    );
    assert_eq!(
        policy.decide(0, 0, &at_cap, ms(0), 0.5),
        Decision::Retry {
            delay: secs(10),
            source: DelaySource::RetryAfterSeconds
        }
    );
    let above = told(
        ErrorClass::RateLimited,
        secs(10) + Duration::from_nanos(1),
        DelaySource::RetryAfterMs,
    );
    assert_eq!(
        policy.decide(0, 0, &above, ms(0), 0.5),
        Decision::GiveUp(GaveUp::DelayAboveCap {
            requested: secs(10) + Duration::from_nanos(1)
        })
    );
    // The default cap (120 s) would retry it.
    assert_eq!(
        exact().decide(0, 0, &above, ms(0), 0.5),
        Decision::Retry {
            delay: secs(10) + Duration::from_nanos(1),
            source: DelaySource::RetryAfterMs
        }
    );
    // A cap of `Duration::MAX` still refuses a delay too large to represent.
    let huge = told(
        ErrorClass::RateLimited,
        Duration::MAX,
        DelaySource::RetryAfterDate,
    );
    assert_eq!(
        exact()
            .with_max_server_delay(Duration::MAX)
            .decide(0, 0, &huge, ms(0), 0.5),
        Decision::GiveUp(GaveUp::DelayAboveCap {
            requested: Duration::MAX
        })
    );
}

#[test]
fn a_hint_or_reset_above_the_cap_is_left_to_the_backoff_not_given_up_on() {
    for source in [DelaySource::BodyHint, DelaySource::ResetHeader] {
        let far = told(ErrorClass::RateLimited, secs(600), source);
        assert_eq!(
            exact().decide(0, 0, &far, ms(0), 0.5),
            backoff_wait(ms(700)),
            "{source:?}"
        );
        // Out of retries, it is the retries that ran out.
        assert_eq!(
            exact().with_max_retries(0).decide(0, 0, &far, ms(0), 0.5),
            Decision::GiveUp(GaveUp::Attempts),
            "{source:?}"
        );
    }
}

#[test]
fn body_hints_and_resets_are_read_unless_only_headers_are_honoured() {
    for source in [
        DelaySource::BodyHint,
        DelaySource::ResetHeader,
        DelaySource::LocalQuota,
    ] {
        let hint = told(ErrorClass::RateLimited, ms(1_200), source);
        assert_eq!(
            exact().decide(0, 0, &hint, ms(0), 0.5),
            Decision::Retry {
                delay: ms(1_200),
                source
            },
            "{source:?}"
        );
        assert_eq!(
            headers_only().decide(0, 0, &hint, ms(0), 0.5),
            backoff_wait(ms(700)),
            "{source:?}"
        );
    }
    // Headers count either way.
    for source in [
        DelaySource::RetryAfterMs,
        DelaySource::RetryAfterSeconds,
        DelaySource::RetryAfterDate,
    ] {
        let header = told(ErrorClass::RateLimited, ms(1_200), source);
        for policy in [exact(), headers_only()] {
            assert_eq!(
                policy.decide(0, 0, &header, ms(0), 0.5),
                Decision::Retry {
                    delay: ms(1_200),
                    source
                },
                "{source:?}"
            );
        }
    }
}

#[test]
fn only_same_target_advice_is_retried() {
    let policy = exact();
    for class in [
        ErrorClass::RateLimited,
        ErrorClass::Overloaded,
        ErrorClass::ServerError,
        ErrorClass::Timeout,
        ErrorClass::Connect,
    ] {
        assert_eq!(
            policy.decide(0, 0, &failure(class), ms(0), 0.5),
            backoff_wait(ms(700)),
            "{class:?}"
        );
        for advice in [RetryAdvice::Never, RetryAdvice::Elsewhere] {
            let verdict = failure(class).with_advice(advice);
            assert_eq!(
                policy.decide(0, 0, &verdict, ms(0), 0.5),
                Decision::Stop,
                "{class:?} {advice:?}"
            );
        }
    }
    assert_eq!(
        policy.decide(0, 0, &Verdict::success(), ms(0), 0.5),
        Decision::Stop
    );
}

#[test]
fn trusting_the_server_retries_what_is_otherwise_never_retried_and_nothing_more() {
    let trusting = exact().with_trust_server_advice(true);
    assert!(trusting.trust_server_advice);
    assert!(!exact().with_trust_server_advice(false).trust_server_advice);
    for class in [
        ErrorClass::Unknown,
        ErrorClass::Unauthorized,
        ErrorClass::PermissionDenied,
        ErrorClass::NotFound,
        ErrorClass::BadRequest,
    ] {
        let insisting = failure(class).with_advice(RetryAdvice::SameTarget);
        assert_eq!(
            trusting.decide(0, 0, &insisting, ms(0), 0.5),
            backoff_wait(ms(700)),
            "{class:?}"
        );
        assert_eq!(
            exact().decide(0, 0, &insisting, ms(0), 0.5),
            Decision::Stop,
            "{class:?}"
        );
    }
    for class in [
        ErrorClass::QuotaExhausted,
        ErrorClass::ContextWindowExceeded,
        ErrorClass::ContentPolicy,
        ErrorClass::PayloadTooLarge,
    ] {
        let insisting = failure(class).with_advice(RetryAdvice::SameTarget);
        for policy in [exact(), trusting.clone()] {
            assert_eq!(
                policy.decide(0, 0, &insisting, ms(0), 0.5),
                Decision::Stop,
                "{class:?}"
            );
        }
    }
}

#[test]
fn the_total_time_and_backoff_setters_keep_their_values() {
    assert_eq!(RetryPolicy::default().total_time, None);
    assert_eq!(
        RetryPolicy::default().with_total_time(secs(30)).total_time,
        Some(secs(30))
    );
    let backoff = plain(ms(40), ms(90));
    assert_eq!(
        RetryPolicy::default().with_backoff(backoff).backoff,
        backoff
    );
}

#[test]
fn the_openai_preset_is_the_sdks() {
    let openai = RetryPolicy::openai();
    assert_eq!(openai.max_retries, 2);
    assert_eq!(openai.max_overloaded_retries, 2);
    assert_eq!(openai.min_delay, ms(1));
    assert_eq!(openai.max_server_delay, secs(120));
    assert_eq!(openai.server_delay_spread, Spread::None);
    assert_eq!(openai.total_time, None);
    assert_eq!(
        openai.backoff,
        Backoff::exponential(ms(500), secs(8)).with_jitter(Jitter::Between { low: 75, high: 100 })
    );
    assert!(openai.class_backoffs.is_empty());
    assert!(openai.trust_server_advice);
    assert!(openai.header_delays_only);
    assert!(openai.retry_unrecognized_errors);
}

#[test]
fn a_give_up_carries_the_wait_it_did_not_take() {
    assert_eq!(
        GaveUp::DelayAboveCap {
            requested: secs(600)
        }
        .retry_after(),
        Some(secs(600))
    );
    assert_eq!(
        GaveUp::Deadline { wait: ms(1_500) }.retry_after(),
        Some(ms(1_500))
    );
    for reason in [GaveUp::Attempts, GaveUp::Overloaded, GaveUp::Budget] {
        assert_eq!(reason.retry_after(), None, "{reason:?}");
    }
}

#[test]
fn a_give_up_says_why() {
    let cases = [
        (GaveUp::Attempts, "every retry was used"),
        (GaveUp::Overloaded, "the target stays overloaded"),
        (
            GaveUp::DelayAboveCap {
                requested: secs(600),
            },
            "the server asked to wait 600s, longer than honoured",
        ),
        (GaveUp::Budget, "the retry budget is empty"),
        (
            GaveUp::Deadline { wait: ms(1_500) },
            "waiting 1.5s would pass the deadline",
        ),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
    }
}

// ===== Backoff =====

#[test]
fn a_backoff_reads_back_what_it_was_built_with() {
    let backoff = Backoff::exponential(ms(100), secs(5));
    assert_eq!(backoff.base(), ms(100));
    assert_eq!(backoff.max(), secs(5));
    assert_eq!(backoff.factor(), 2);
    assert_eq!(backoff.jitter(), Jitter::Full);
    let tuned = backoff
        .with_factor(NonZeroU32::new(3).unwrap())
        .with_jitter(Jitter::Equal);
    assert_eq!(tuned.factor(), 3);
    assert_eq!(tuned.jitter(), Jitter::Equal);
    assert_eq!((tuned.base(), tuned.max()), (ms(100), secs(5)));
}

#[test]
fn a_maximum_below_the_base_is_raised_to_it() {
    let backoff = Backoff::exponential(secs(2), ms(500));
    assert_eq!(backoff.max(), secs(2));
    assert_eq!(
        backoff.with_jitter(Jitter::None).delay(3, ms(0), 0.0),
        secs(2)
    );
    assert_eq!(Backoff::exponential(ms(500), ms(501)).max(), ms(501));
}

#[test]
fn the_jitter_formulas_hold_for_an_uneven_draw() {
    // Retry 1 of 300 ms doubling: d = 600 ms; previous 2 s.
    let at = |jitter| plain(ms(300), secs(60)).with_jitter(jitter);
    let cases = [
        (Jitter::None, ms(600)),
        (Jitter::Full, ms(150)),
        // 300 + 0.25 × 300
        (Jitter::Equal, ms(375)),
        // 300 + 0.25 × (6 000 − 300)
        (Jitter::Decorrelated, ms(1_725)),
        // 600 × (1 − 0.5 + 1 × 0.25)
        (Jitter::Proportional { percent: 50 }, ms(450)),
        // 600 × (20 + 60 × 0.25) / 100
        (Jitter::Between { low: 20, high: 80 }, ms(210)),
        (Jitter::Between { low: 80, high: 20 }, ms(210)),
    ];
    for (jitter, want) in cases {
        assert_eq!(at(jitter).delay(1, secs(2), 0.25), want, "{jitter:?}");
    }
    // A percentage above 100 counts as 100: from zero to twice the delay.
    assert_eq!(
        at(Jitter::Proportional { percent: 250 }).delay(1, secs(2), 0.25),
        ms(300)
    );
    // Decorrelated from a previous delay below the base starts from the base.
    assert_eq!(
        at(Jitter::Decorrelated).delay(0, ms(10), 0.5),
        ms(300) + ms(300)
    );
}

// ===== Spread =====

#[test]
fn a_spread_is_a_share_of_the_delay_up_to_its_maximum() {
    let spread = Spread::Proportional {
        percent: 30,
        max: secs(2),
    };
    assert_eq!(spread.bound(secs(1)), ms(300));
    assert_eq!(spread.bound(secs(10)), secs(2));
    assert_eq!(spread.bound(secs(100)), secs(2));
    assert_eq!(spread.delay(secs(1), 0.5), ms(1_150));
    assert_eq!(spread.delay(secs(10), 0.25), ms(10_500));
    assert_eq!(spread.delay(secs(10), 0.0), secs(10));
    assert_eq!(Spread::None.bound(secs(10)), Duration::ZERO);
}

#[test]
fn a_spread_near_the_end_of_time_keeps_its_nanoseconds() {
    let max = Duration::new(u64::MAX, 5);
    let spread = Spread::Proportional { percent: 100, max };
    assert_eq!(spread.bound(Duration::MAX), max);
    assert_eq!(spread.delay(Duration::MAX, 0.5), Duration::MAX);
    // A share in the last second keeps its nanoseconds under a larger cap.
    let uncapped = Spread::Proportional {
        percent: 100,
        max: Duration::MAX,
    };
    assert_eq!(uncapped.bound(max), max);
    // A share past the end of time saturates before the cap is applied.
    let doubled = Spread::Proportional {
        percent: 200,
        max: Duration::MAX,
    };
    assert_eq!(doubled.bound(Duration::MAX), Duration::MAX);
    assert_eq!(
        doubled.bound(Duration::from_secs(u64::MAX / 2 + 1)),
        Duration::MAX
    );
}
