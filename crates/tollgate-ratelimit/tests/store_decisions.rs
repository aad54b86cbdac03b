//! Exact decisions of the quota store: what `AnyStore` passes through to the store behind it,
//! how a key's state follows new limits, what a queued caller is told, how a provider's
//! readings and learned limits land on the right limit, and when the store sweeps idle keys
//! (mutation testing; CONTRIBUTING.md, "Mutation testing").
//!
//! A store never reads a clock: every call here passes its `now`, so no runtime is needed.

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tollgate_core::{Cost, Dimension, RouteKey, Window};
use tollgate_ratelimit::adaptive::Adaptive;
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{
    AnyStore, Feedback, KeyStats, Limit, Limits, MemoryStore, Outlook, QuotaDecision, Store,
};

fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

fn requests(v: u64) -> Cost {
    Cost::requests(v)
}

fn tokens(v: u64) -> Cost {
    Cost::ZERO.with(Dimension::Tokens, v)
}

/// The answer of a store that answers at once.
fn answer<F: Future<Output = Result<QuotaDecision, tollgate_core::BoxError>>>(
    future: F,
) -> QuotaDecision {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(decision) => decision.unwrap(),
        Poll::Pending => panic!("the store did not answer at once"),
    }
}

fn admit<St: Store>(
    store: &St,
    key: Option<&RouteKey>,
    cost: &Cost,
    now: Duration,
) -> QuotaDecision {
    answer(store.admit(key, cost, None, now))
}

/// The share in use of `dimension`, or `None` if no limit counts it.
fn used(
    store: &impl Store,
    key: Option<&RouteKey>,
    dimension: Dimension,
    now: Duration,
) -> Option<f64> {
    store
        .utilization(key, now)
        .into_iter()
        .find(|(d, _)| *d == dimension)
        .map(|(_, share)| share)
}

// ===== AnyStore =====

/// A store in another process, as far as `AnyStore` can tell: a memory store that says the
/// quota is not shared right now.
struct Unreachable(MemoryStore);

impl Store for Unreachable {
    type Future = <MemoryStore as Store>::Future;

    fn admit(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> Self::Future {
        self.0.admit(key, cost, ahead, now)
    }
    fn feedback(&self, key: Option<&RouteKey>, feedback: &Feedback, now: Duration) {
        self.0.feedback(key, feedback, now);
    }
    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits) {
        self.0.set_limits(key, limits);
    }
    fn limits(&self, key: Option<&RouteKey>) -> Limits {
        self.0.limits(key)
    }
    fn keys(&self) -> usize {
        self.0.keys()
    }
    fn outlook(&self, key: Option<&RouteKey>, cost: &Cost, now: Duration) -> Option<Outlook> {
        self.0.outlook(key, cost, now)
    }
    fn utilization(&self, key: Option<&RouteKey>, now: Duration) -> Vec<(Dimension, f64)> {
        self.0.utilization(key, now)
    }
    fn learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        self.0.learned_rate(key, now)
    }
    fn sharing(&self) -> Option<bool> {
        Some(false)
    }
    fn report_learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        self.0.report_learned_rate(key, now)
    }
    fn key_stats(&self) -> Option<KeyStats> {
        self.0.key_stats()
    }
    fn take_evicted(&self) -> u64 {
        self.0.take_evicted()
    }
}

/// Every method of `store`, which holds a memory store of 10 requests per second, adaptive,
/// capped at one key, answers what that memory store answers.
fn passes_everything_through(store: &AnyStore) {
    let a = RouteKey::new("a");
    let b = RouteKey::new("b");
    assert_eq!(store.keys(), 0);
    assert_eq!(
        admit(store, Some(&a), &requests(4), Duration::ZERO),
        QuotaDecision::Admitted
    );
    assert_eq!(store.keys(), 1);
    assert_eq!(
        used(store, Some(&a), Dimension::Requests, Duration::ZERO),
        Some(0.4)
    );
    // A charge spends the rest of the second.
    store.feedback(Some(&a), &Feedback::Charge(requests(6)), Duration::ZERO);
    assert_eq!(
        store.outlook(Some(&a), &requests(1), Duration::ZERO),
        Some(Outlook {
            decision: QuotaDecision::Wait(ms(100)),
            headroom: -0.1,
        })
    );
    // The limits are 10 per second, with a rate learned from 10 per second.
    assert_eq!(store.learned_rate(Some(&a), Duration::ZERO), Some(10.0));
    assert_eq!(
        store.report_learned_rate(Some(&a), Duration::ZERO),
        Some(10.0)
    );
    assert_eq!(store.report_learned_rate(Some(&a), Duration::ZERO), None);
    // New limits for "a" carry over what it used.
    let slower = Limits::new([Limit::requests(Quota::per_second(n(20)))]);
    store.set_limits(Some(&a), slower.clone());
    assert_eq!(store.limits(Some(&a)), slower);
    assert_eq!(
        used(store, Some(&a), Dimension::Requests, Duration::ZERO),
        Some(0.5)
    );
    // A second key at the cap of one evicts the first.
    assert_eq!(store.take_evicted(), 0);
    assert_eq!(
        admit(store, Some(&b), &requests(1), Duration::ZERO),
        QuotaDecision::Admitted
    );
    assert_eq!(store.take_evicted(), 1);
    assert_eq!(store.take_evicted(), 0);
    let stats = store.key_stats().expect("a memory store counts its keys");
    assert_eq!(
        (stats.keys, stats.max_keys, stats.evicted, stats.refused),
        (1, 1, 1, 0)
    );
}

fn capped_store() -> MemoryStore {
    let limits =
        Limits::new([Limit::requests(Quota::per_second(n(10)))]).with_adaptive(Adaptive::new());
    MemoryStore::new(limits).with_max_keys(1)
}

#[test]
fn an_any_store_passes_every_call_to_the_memory_store_it_holds() {
    let store = AnyStore::from(capped_store());
    passes_everything_through(&store);
    // The in-process store shares nothing with other processes.
    assert_eq!(store.sharing(), None);
}

#[test]
fn an_any_store_passes_every_call_to_any_other_store() {
    let store = AnyStore::new(Unreachable(capped_store()));
    passes_everything_through(&store);
    assert_eq!(store.sharing(), Some(false));
}

#[test]
fn an_any_store_and_its_answer_describe_themselves() {
    let memory = AnyStore::from(MemoryStore::new(Limits::unlimited()));
    assert!(format!("{memory:?}").starts_with("AnyStore(MemoryStore {"));
    let other = AnyStore::new(MemoryStore::new(Limits::unlimited()));
    assert_eq!(format!("{other:?}"), r#"AnyStore("..")"#);
    let admit = other.admit(None, &requests(1), None, Duration::ZERO);
    assert_eq!(format!("{admit:?}"), "AnyAdmit { .. }");
    assert_eq!(answer(admit), QuotaDecision::Admitted);
}

// ===== following new limits =====

#[test]
fn a_new_limit_on_another_dimension_starts_fresh() {
    let store = MemoryStore::new(Limits::new([Limit::requests(Quota::per_minute(n(10)))]));
    assert_eq!(
        admit(&store, None, &requests(4), Duration::ZERO),
        QuotaDecision::Admitted
    );
    // Same period, another dimension: what requests used says nothing about tokens.
    store.set_limits(
        None,
        Limits::new([Limit::tokens(Quota::per_minute(n(1_000)))]),
    );
    assert_eq!(
        used(&store, None, Dimension::Tokens, Duration::ZERO),
        Some(0.0)
    );
    assert_eq!(
        used(&store, None, Dimension::Requests, Duration::ZERO),
        None
    );
}

#[test]
fn a_new_limit_over_another_period_starts_fresh() {
    let store = MemoryStore::new(Limits::new([Limit::requests(Quota::per_minute(n(10)))]));
    assert_eq!(
        admit(&store, None, &requests(4), Duration::ZERO),
        QuotaDecision::Admitted
    );
    store.set_limits(
        None,
        Limits::new([Limit::requests(Quota::per_second(n(10)))]),
    );
    assert_eq!(
        used(&store, None, Dimension::Requests, Duration::ZERO),
        Some(0.0)
    );
}

/// Under an adaptive limit, a configured limit replaces the limit learned for the same
/// dimension and period; the other learned limits stay, with what they used.
#[test]
fn configured_limits_replace_only_the_learned_limits_they_describe() {
    let store = MemoryStore::new(Limits::adaptive(Adaptive::new()));
    for (dimension, limit) in [(Dimension::Tokens, 1_000), (Dimension::InputTokens, 500)] {
        let reading = Feedback::Limit {
            dimension,
            window: Window::Minute,
            limit,
        };
        store.feedback(None, &reading, Duration::ZERO);
    }
    let spent = Cost::ZERO
        .with(Dimension::Tokens, 600)
        .with(Dimension::InputTokens, 100);
    store.feedback(None, &Feedback::Charge(spent), Duration::ZERO);
    assert_eq!(
        used(&store, None, Dimension::Tokens, Duration::ZERO),
        Some(0.6)
    );
    assert_eq!(
        used(&store, None, Dimension::InputTokens, Duration::ZERO),
        Some(0.2)
    );

    let configured =
        Limits::new([Limit::tokens(Quota::per_minute(n(2_000)))]).with_adaptive(Adaptive::new());
    store.set_limits(None, configured);
    // Only the new, unused, configured tokens limit counts tokens now.
    assert_eq!(
        used(&store, None, Dimension::Tokens, Duration::ZERO),
        Some(0.0)
    );
    assert_eq!(
        used(&store, None, Dimension::InputTokens, Duration::ZERO),
        Some(0.2)
    );
}

// ===== a queued caller =====

#[test]
fn a_queued_caller_is_told_to_wait_even_when_its_turn_has_come() {
    let store = MemoryStore::new(Limits::new([Limit::requests(Quota::per_second(n(10)))]));
    let nobody = requests(0);
    // The quota has room, but a queued caller is never admitted by the store: it goes back
    // to its queue for the shortest wait there is.
    assert_eq!(
        answer(store.admit(None, &requests(1), Some(&nobody), Duration::ZERO)),
        QuotaDecision::Wait(Duration::from_nanos(1))
    );
    // Without any limit, nothing is worth waiting for.
    let unlimited = MemoryStore::new(Limits::unlimited());
    assert_eq!(
        answer(unlimited.admit(None, &requests(1), Some(&nobody), Duration::ZERO)),
        QuotaDecision::Admitted
    );
    // ... unless the key is paused.
    unlimited.feedback(None, &Feedback::PauseUntil(secs(2)), Duration::ZERO);
    assert_eq!(
        answer(unlimited.admit(None, &requests(1), Some(&nobody), Duration::ZERO)),
        QuotaDecision::Wait(secs(2))
    );
}

// ===== the provider's readings =====

/// A reading that leaves more than the quota has changes nothing, not even for a request
/// whose time was read just before the reading's (callers on other threads).
#[test]
fn a_reading_with_room_to_spare_changes_nothing() {
    let store = MemoryStore::new(Limits::new([Limit::requests(Quota::per_second(n(10)))]));
    assert_eq!(
        admit(&store, None, &requests(10), Duration::ZERO),
        QuotaDecision::Admitted
    );
    let reading = Feedback::Remaining {
        dimension: Dimension::Requests,
        window: Window::Second,
        remaining: 10,
    };
    store.feedback(None, &reading, secs(1));
    // Half a second in, half the quota has come back: 5 fit, the sixth waits 100 ms.
    assert_eq!(
        store.outlook(None, &requests(6), ms(500)).unwrap().decision,
        QuotaDecision::Wait(ms(100))
    );
}

/// A reading for a limit the key learned lowers that learned limit, not a configured one
/// nor another learned one.
#[test]
fn a_reading_lands_on_the_learned_limit_it_describes() {
    let limits =
        Limits::new([Limit::requests(Quota::per_minute(n(100)))]).with_adaptive(Adaptive::new());
    let store = MemoryStore::new(limits);
    for (dimension, limit) in [(Dimension::Tokens, 1_000), (Dimension::InputTokens, 500)] {
        let learned = Feedback::Limit {
            dimension,
            window: Window::Minute,
            limit,
        };
        store.feedback(None, &learned, Duration::ZERO);
    }
    let reading = Feedback::Remaining {
        dimension: Dimension::InputTokens,
        window: Window::Minute,
        remaining: 100,
    };
    store.feedback(None, &reading, Duration::ZERO);
    assert_eq!(
        used(&store, None, Dimension::InputTokens, Duration::ZERO),
        Some(0.8)
    );
    assert_eq!(
        used(&store, None, Dimension::Tokens, Duration::ZERO),
        Some(0.0)
    );
    assert_eq!(
        used(&store, None, Dimension::Requests, Duration::ZERO),
        Some(0.0)
    );
}

// ===== learned limits =====

fn learn(store: &MemoryStore, dimension: Dimension, window: Window, limit: u64, now: Duration) {
    let reading = Feedback::Limit {
        dimension,
        window,
        limit,
    };
    store.feedback(None, &reading, now);
}

#[test]
fn a_new_reading_of_a_learned_limit_replaces_it_and_keeps_what_was_used() {
    let store = MemoryStore::new(Limits::adaptive(Adaptive::new()));
    learn(
        &store,
        Dimension::Tokens,
        Window::Minute,
        1_000,
        Duration::ZERO,
    );
    store.feedback(None, &Feedback::Charge(tokens(600)), Duration::ZERO);
    assert_eq!(
        used(&store, None, Dimension::Tokens, Duration::ZERO),
        Some(0.6)
    );
    // The provider now reports 2,000 a minute: one limit, with the 600 still used.
    learn(
        &store,
        Dimension::Tokens,
        Window::Minute,
        2_000,
        Duration::ZERO,
    );
    assert_eq!(
        used(&store, None, Dimension::Tokens, Duration::ZERO),
        Some(0.3)
    );
    assert_eq!(
        store
            .outlook(None, &tokens(1_400), Duration::ZERO)
            .unwrap()
            .decision,
        QuotaDecision::Admitted
    );
}

#[test]
fn a_repeated_reading_of_a_learned_limit_changes_nothing() {
    let store = MemoryStore::new(Limits::adaptive(Adaptive::new()));
    // 60 tokens a minute: one a second.
    learn(
        &store,
        Dimension::Tokens,
        Window::Minute,
        60,
        Duration::ZERO,
    );
    store.feedback(None, &Feedback::Charge(tokens(60)), Duration::ZERO);
    learn(&store, Dimension::Tokens, Window::Minute, 60, ms(1_500));
    // A token and a half has come back: the second whole one is half a second away.
    assert_eq!(
        store.outlook(None, &tokens(2), ms(1_500)).unwrap().decision,
        QuotaDecision::Wait(ms(500))
    );
}

#[test]
fn limits_learned_over_different_periods_both_hold() {
    let store = MemoryStore::new(Limits::adaptive(Adaptive::new()));
    learn(
        &store,
        Dimension::Tokens,
        Window::Minute,
        100,
        Duration::ZERO,
    );
    learn(
        &store,
        Dimension::Tokens,
        Window::Day,
        1_000,
        Duration::ZERO,
    );
    store.feedback(None, &Feedback::Charge(tokens(100)), Duration::ZERO);
    // The minute's 100 are spent, however much of the day is left.
    assert_eq!(
        store
            .outlook(None, &tokens(1), Duration::ZERO)
            .unwrap()
            .decision,
        QuotaDecision::Wait(ms(600))
    );
    // Over different dimensions, both hold too.
    learn(
        &store,
        Dimension::InputTokens,
        Window::Minute,
        100,
        Duration::ZERO,
    );
    assert_eq!(
        used(&store, None, Dimension::InputTokens, Duration::ZERO),
        Some(0.0)
    );
    assert_eq!(
        used(&store, None, Dimension::Tokens, Duration::ZERO),
        Some(1.0)
    );
}

#[test]
fn at_most_eight_limits_are_learned_per_key() {
    let store = MemoryStore::new(Limits::adaptive(Adaptive::new()));
    let eight = [
        (Dimension::Requests, Window::Second),
        (Dimension::Requests, Window::Minute),
        (Dimension::Requests, Window::Day),
        (Dimension::Tokens, Window::Second),
        (Dimension::Tokens, Window::Minute),
        (Dimension::Tokens, Window::Day),
        (Dimension::InputTokens, Window::Second),
        (Dimension::InputTokens, Window::Minute),
    ];
    for (dimension, window) in eight {
        learn(&store, dimension, window, 1_000_000, Duration::ZERO);
    }
    learn(
        &store,
        Dimension::OutputTokens,
        Window::Minute,
        10,
        Duration::ZERO,
    );
    // The ninth was not learned: output tokens are not limited.
    assert_eq!(
        used(&store, None, Dimension::OutputTokens, Duration::ZERO),
        None
    );
    let output = Cost::ZERO.with(Dimension::OutputTokens, 1_000);
    assert_eq!(
        store
            .outlook(None, &output, Duration::ZERO)
            .unwrap()
            .decision,
        QuotaDecision::Admitted
    );
}

// ===== the outlook =====

#[test]
fn the_outlook_admits_a_cost_of_exactly_the_capacity() {
    let store = MemoryStore::new(Limits::new([Limit::tokens(Quota::per_minute(n(1_000)))]));
    assert_eq!(
        store.outlook(None, &tokens(1_000), Duration::ZERO),
        Some(Outlook {
            decision: QuotaDecision::Admitted,
            headroom: 0.0,
        })
    );
    let too_large = store.outlook(None, &tokens(1_001), Duration::ZERO).unwrap();
    assert_eq!(
        too_large.decision,
        QuotaDecision::TooLarge {
            dimension: Dimension::Tokens,
            cost: 1_001,
            capacity: 1_000,
            period: secs(60),
        }
    );
    assert_eq!(too_large.headroom, f64::NEG_INFINITY);
}

// ===== what a store that says nothing more answers =====

/// A store that implements only what it must, holding no quota at all.
struct Bare;

impl Store for Bare {
    type Future = std::future::Ready<Result<QuotaDecision, tollgate_core::BoxError>>;

    fn admit(&self, _: Option<&RouteKey>, _: &Cost, _: Option<&Cost>, _: Duration) -> Self::Future {
        std::future::ready(Ok(QuotaDecision::Admitted))
    }
    fn feedback(&self, _: Option<&RouteKey>, _: &Feedback, _: Duration) {}
    fn set_limits(&self, _: Option<&RouteKey>, _: Limits) {}
    fn limits(&self, _: Option<&RouteKey>) -> Limits {
        Limits::unlimited()
    }
    fn keys(&self) -> usize {
        0
    }
}

/// The trait's defaults claim nothing: no outlook, no utilization, no learned rate, no
/// sharing, no key statistics, no evictions.
#[test]
fn a_store_that_cannot_tell_answers_nothing() {
    let one = requests(1);
    assert_eq!(Bare.outlook(None, &one, Duration::ZERO), None);
    assert!(Bare.utilization(None, Duration::ZERO).is_empty());
    assert_eq!(Bare.learned_rate(None, Duration::ZERO), None);
    assert_eq!(Bare.sharing(), None);
    assert_eq!(Bare.report_learned_rate(None, Duration::ZERO), None);
    assert_eq!(Bare.key_stats(), None);
    assert_eq!(Bare.take_evicted(), 0);
}

// ===== sweeps =====

/// Idle keys are looked for by the first keyed admission once the sweep interval has passed,
/// at exactly the interval.
#[test]
fn idle_keys_are_swept_when_the_interval_has_passed() {
    let store = MemoryStore::new(Limits::new([Limit::requests(Quota::per_second(n(10)))]))
        .with_sweep_interval(secs(10));
    let key = |name: &str| RouteKey::new(name);
    // "a" is idle again 100 ms later.
    assert_eq!(
        admit(&store, Some(&key("a")), &requests(1), Duration::ZERO),
        QuotaDecision::Admitted
    );
    let just_before = secs(10) - Duration::from_nanos(1);
    assert_eq!(
        admit(&store, Some(&key("b")), &requests(1), just_before),
        QuotaDecision::Admitted
    );
    assert_eq!(store.keys(), 2);
    // At 10 s the sweep forgets "a"; "b", admitted a nanosecond ago, stays.
    assert_eq!(
        admit(&store, Some(&key("c")), &requests(1), secs(10)),
        QuotaDecision::Admitted
    );
    assert_eq!(store.keys(), 2);
}
