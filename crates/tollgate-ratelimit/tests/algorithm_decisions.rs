//! Exact decisions of each admission algorithm at the edges the properties in
//! `tests/algorithms.rs` do not pin down: a pause's drain, refunds at a window's edges, the
//! sliding windows' arithmetic, and the quota's errors (mutation testing; CONTRIBUTING.md,
//! "Mutation testing").

use std::num::NonZeroU64;
use std::time::Duration;

use tollgate_ratelimit::algorithm::{
    Admission, Algorithm, FixedWindow, Gcra, Quota, SlidingWindowCounter, SlidingWindowLog,
    TokenBucket,
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

// ===== drain =====

/// After a drain to `keep` at `until`, the bucket and GCRA hold nothing before `until`, exactly
/// `keep` at `until`, and refill at the quota's own pace from there.
fn drains_to_keep_then_refills<A: Algorithm>(algorithm: &A) {
    // 10 per second (one every 100 ms), bursts of 5; a pause until 1 s that keeps 1.
    let mut state = A::State::default();
    algorithm.drain(&mut state, 1, secs(1), Duration::ZERO);
    assert_eq!(algorithm.available(&state, Duration::ZERO), 0);
    assert_eq!(algorithm.available(&state, ms(999)), 0);
    assert_eq!(
        algorithm.wait(&state, 1, Duration::ZERO),
        Admission::After(secs(1))
    );
    assert_eq!(algorithm.available(&state, secs(1)), 1);
    assert_eq!(algorithm.wait(&state, 1, secs(1)), Admission::Now);
    // The next unit comes 100 ms later, not all at once.
    assert_eq!(
        algorithm.wait(&state, 2, secs(1)),
        Admission::After(ms(100))
    );
    assert_eq!(algorithm.available(&state, ms(1_399)), 4);
    assert_eq!(algorithm.available(&state, ms(1_400)), 5);
    assert!(!algorithm.is_fresh(&state, ms(1_399)));
    assert!(algorithm.is_fresh(&state, ms(1_400)));
}

#[test]
fn a_drained_bucket_keeps_only_what_it_was_told_and_refills_at_its_pace() {
    let quota = Quota::per_second(n(10)).with_burst(n(5));
    drains_to_keep_then_refills(&TokenBucket::new(quota));
    drains_to_keep_then_refills(&Gcra::new(quota));
}

/// A drain never gives room: a state already emptier than the target stays as it is.
fn a_drain_never_adds<A: Algorithm>(algorithm: &A)
where
    A::State: Clone + PartialEq + std::fmt::Debug,
{
    let mut state = A::State::default();
    // Everything spent, and 2 units of debt: full again only after 700 ms.
    algorithm.take(&mut state, 5, Duration::ZERO);
    algorithm.take(&mut state, 2, Duration::ZERO);
    let before = state.clone();
    // Keeping 5 at 100 ms asks for more than there will be: nothing changes.
    algorithm.drain(&mut state, 5, ms(100), Duration::ZERO);
    assert_eq!(state, before);
    assert_eq!(
        algorithm.wait(&state, 1, Duration::ZERO),
        Admission::After(ms(300))
    );
}

#[test]
fn a_drain_never_gives_room_back() {
    let quota = Quota::per_second(n(10)).with_burst(n(5));
    a_drain_never_adds(&TokenBucket::new(quota));
    a_drain_never_adds(&Gcra::new(quota));
}

/// A drain to exactly what the bucket holds changes nothing either: a caller that read the
/// clock a moment before the drain still sees the bucket as it was then.
#[test]
fn a_drain_to_what_is_there_changes_nothing() {
    let bucket = TokenBucket::new(Quota::per_second(n(10)).with_burst(n(5)));
    let mut state = Default::default();
    bucket.take(&mut state, 5, Duration::ZERO);
    // One token is back at 100 ms: keeping one from then on is what there is.
    let before = state;
    bucket.drain(&mut state, 1, ms(100), ms(100));
    assert_eq!(state, before);
    assert_eq!(bucket.available(&state, ms(50)), 0);
    assert_eq!(bucket.wait(&state, 1, ms(50)), Admission::After(ms(50)));
}

#[test]
fn the_windows_ignore_a_drain() {
    let quota = Quota::per_second(n(10));
    let window = FixedWindow::new(quota);
    let mut state = Default::default();
    window.take(&mut state, 3, Duration::ZERO);
    window.drain(&mut state, 0, secs(5), Duration::ZERO);
    assert_eq!(window.available(&state, Duration::ZERO), 7);

    let log = SlidingWindowLog::new(quota);
    let mut state = Default::default();
    log.take(&mut state, 3, Duration::ZERO);
    log.drain(&mut state, 0, secs(5), Duration::ZERO);
    assert_eq!(log.available(&state, Duration::ZERO), 7);

    let counter = SlidingWindowCounter::new(quota);
    let mut state = Default::default();
    counter.take(&mut state, 3, Duration::ZERO);
    counter.drain(&mut state, 0, secs(5), Duration::ZERO);
    assert_eq!(counter.available(&state, Duration::ZERO), 7);
}

// ===== quota =====

#[test]
fn an_invalid_period_error_names_the_period_it_was_given() {
    let too_long = Quota::new(NonZeroU64::MIN, Duration::MAX).unwrap_err();
    assert_eq!(too_long.period(), Duration::MAX);
    let zero = Quota::new(NonZeroU64::MIN, Duration::ZERO).unwrap_err();
    assert_eq!(
        zero.to_string(),
        "invalid quota period 0ns: must be more than zero and at most u64::MAX nanoseconds"
    );
}

// ===== sliding window log =====

#[test]
fn a_free_request_leaves_the_log_fresh() {
    let log = SlidingWindowLog::new(Quota::per_second(n(10)));
    let mut state = Default::default();
    log.take(&mut state, 0, Duration::ZERO);
    // Nothing is counted, so nothing is worth remembering.
    assert!(log.is_fresh(&state, Duration::ZERO));
    assert_eq!(state, Default::default());
}

#[test]
fn a_full_refund_leaves_the_log_fresh() {
    let log = SlidingWindowLog::new(Quota::per_second(n(10)));
    let mut state = Default::default();
    log.take(&mut state, 3, ms(10));
    log.take(&mut state, 2, ms(20));
    log.give(&mut state, 2, ms(20), ms(30));
    log.give(&mut state, 3, ms(10), ms(30));
    // Everything taken was given back: the log counts nothing and is as good as new.
    assert!(log.is_fresh(&state, ms(30)));
    assert_eq!(log.available(&state, ms(30)), 10);
}

// ===== sliding window counter =====

#[test]
fn a_counter_refund_frees_room_only_in_the_window_it_was_counted_in() {
    let counter = SlidingWindowCounter::new(Quota::per_second(n(10)));
    let mut state = Default::default();
    counter.take(&mut state, 6, ms(500));
    counter.take(&mut state, 4, ms(1_200));
    // 200 ms into the second window, the first still weighs 80 %: 4.8 of its 6, rounded up.
    assert_eq!(counter.available(&state, ms(1_200)), 1);
    // The 6 were counted in the first window: their refund frees the previous count only.
    counter.give(&mut state, 6, ms(500), ms(1_200));
    assert_eq!(counter.available(&state, ms(1_200)), 6);
    // The 4 were counted in this window.
    counter.give(&mut state, 4, ms(1_200), ms(1_200));
    assert_eq!(counter.available(&state, ms(1_200)), 10);
    assert!(counter.is_fresh(&state, ms(1_200)));
}

#[test]
fn a_counter_refund_for_a_window_no_longer_counted_frees_nothing() {
    let counter = SlidingWindowCounter::new(Quota::per_second(n(10)));
    let mut state = Default::default();
    counter.take(&mut state, 6, ms(500));
    counter.take(&mut state, 4, ms(1_200));
    // In the third window the first no longer counts; the second weighs 90 %: 3.6 of its 4.
    assert_eq!(counter.available(&state, ms(2_100)), 6);
    // A late refund for the first window must not free the second window's room.
    counter.give(&mut state, 6, ms(500), ms(2_100));
    assert_eq!(counter.available(&state, ms(2_100)), 6);
}
