//! Properties of every admission algorithm, on any sequence of requests (cost, gap):
//! - a computed wait is exact: admitted at `now + wait`, not one nanosecond before;
//! - over any window of the quota's period the admitted cost never exceeds its bound
//!   (`limit + burst` for the bucket and GCRA, `limit` for the exact log, `2·limit` for the
//!   fixed window and the counter);
//! - `Never` only for a cost above the capacity;
//! - `try_take` is `wait` then `take`; `available` is exactly what `wait` admits now, a refund (`give`) of what was just taken
//!   restores it, and a state is `fresh` once it admits the whole capacity again.

use std::num::NonZeroU64;
use std::time::Duration;

use proptest::prelude::*;
use tollgate_ratelimit::algorithm::{
    Admission, Algorithm, FixedWindow, Gcra, Quota, SlidingWindowCounter, SlidingWindowLog,
    TokenBucket,
};

/// Runs `requests` through `algorithm`, waiting as told, and returns `(admitted at, cost)`.
fn run<A: Algorithm>(
    algorithm: &A,
    requests: &[(u64, u64)],
) -> Result<Vec<(Duration, u64)>, TestCaseError> {
    let mut state = A::State::default();
    let mut now = Duration::ZERO;
    let mut admitted = Vec::new();
    for &(gap, cost) in requests {
        now += Duration::from_nanos(gap);
        match algorithm.wait(&state, cost, now) {
            Admission::Now => {}
            Admission::Never => {
                prop_assert!(cost > algorithm.capacity(), "Never for {cost}");
                continue;
            }
            Admission::After(wait) => {
                prop_assert!(!wait.is_zero());
                let before = now + wait - Duration::from_nanos(1);
                prop_assert_ne!(
                    algorithm.wait(&state, cost, before),
                    Admission::Now,
                    "early"
                );
                now += wait;
                prop_assert_eq!(algorithm.wait(&state, cost, now), Admission::Now, "late");
            }
        }
        algorithm.take(&mut state, cost, now);
        admitted.push((now, cost));
    }
    Ok(admitted)
}

/// The most cost admitted in any half-open window of `period`.
fn densest(admitted: &[(Duration, u64)], period: Duration) -> u64 {
    admitted
        .iter()
        .map(|&(start, _)| {
            admitted
                .iter()
                .filter(|&&(at, _)| at >= start && at < start + period)
                .map(|&(_, cost)| cost)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

fn quota() -> impl Strategy<Value = Quota> {
    (1u64..50, 1u64..5_000_000, 1u64..50).prop_map(|(limit, period, burst)| {
        Quota::new(
            NonZeroU64::new(limit).unwrap(),
            Duration::from_nanos(period),
        )
        .unwrap()
        .with_burst(NonZeroU64::new(burst).unwrap())
    })
}

fn requests() -> impl Strategy<Value = Vec<(u64, u64)>> {
    proptest::collection::vec((0u64..2_000_000, 0u64..60), 1..60)
}

/// Checks `available`, `give` and `is_fresh` after every request of a run.
fn accounting<A: Algorithm>(algorithm: &A, requests: &[(u64, u64)]) -> Result<(), TestCaseError>
where
    A::State: Clone,
{
    let mut state = A::State::default();
    let mut now = Duration::ZERO;
    prop_assert!(algorithm.is_fresh(&state, now));
    for &(gap, cost) in requests {
        now += Duration::from_nanos(gap);
        let available = algorithm.available(&state, now);
        if available > 0 {
            prop_assert_eq!(algorithm.wait(&state, available, now), Admission::Now);
        }
        if available < algorithm.capacity() {
            prop_assert_ne!(algorithm.wait(&state, available + 1, now), Admission::Now);
            prop_assert!(!algorithm.is_fresh(&state, now));
        }
        // `try_take` is `wait`, then `take` when it says now.
        let mut tried = state.clone();
        let mut stepped = state.clone();
        let want = algorithm.wait(&stepped, cost, now);
        if want == Admission::Now {
            algorithm.take(&mut stepped, cost, now);
        }
        prop_assert_eq!(algorithm.try_take(&mut tried, cost, now), want);
        prop_assert_eq!(
            algorithm.available(&tried, now),
            algorithm.available(&stepped, now)
        );
        if cost <= available {
            let mut refunded = state.clone();
            algorithm.take(&mut refunded, cost, now);
            prop_assert_eq!(algorithm.available(&refunded, now), available - cost);
            algorithm.give(&mut refunded, cost, now, now);
            prop_assert_eq!(algorithm.available(&refunded, now), available);
        }
        algorithm.take(&mut state, cost.min(available), now);
    }
    // Long after the last request, everything has left the window.
    now += Duration::from_nanos(algorithm.capacity().max(1) * 10_000_000_000);
    prop_assert!(algorithm.is_fresh(&state, now));
    prop_assert_eq!(algorithm.available(&state, now), algorithm.capacity());
    Ok(())
}

proptest! {
    #[test]
    fn available_give_and_fresh(quota in quota(), requests in requests()) {
        accounting(&TokenBucket::new(quota), &requests)?;
        accounting(&Gcra::new(quota), &requests)?;
        accounting(&FixedWindow::new(quota), &requests)?;
        accounting(&SlidingWindowLog::new(quota), &requests)?;
        accounting(&SlidingWindowCounter::new(quota), &requests)?;
    }

    #[test]
    fn token_bucket(quota in quota(), requests in requests()) {
        let admitted = run(&TokenBucket::new(quota), &requests)?;
        prop_assert!(densest(&admitted, quota.period()) <= quota.limit() + quota.burst());
    }

    #[test]
    fn gcra(quota in quota(), requests in requests()) {
        let admitted = run(&Gcra::new(quota), &requests)?;
        prop_assert!(densest(&admitted, quota.period()) <= quota.limit() + quota.burst());
    }

    #[test]
    fn gcra_and_token_bucket_agree(quota in quota(), requests in requests()) {
        prop_assert_eq!(run(&Gcra::new(quota), &requests)?, run(&TokenBucket::new(quota), &requests)?);
    }

    #[test]
    fn fixed_window(quota in quota(), requests in requests()) {
        let admitted = run(&FixedWindow::new(quota), &requests)?;
        prop_assert!(densest(&admitted, quota.period()) <= 2 * quota.limit());
    }

    #[test]
    fn sliding_window_log(quota in quota(), requests in requests()) {
        let admitted = run(&SlidingWindowLog::new(quota), &requests)?;
        prop_assert!(densest(&admitted, quota.period()) <= quota.limit());
    }

    #[test]
    fn sliding_window_counter(quota in quota(), requests in requests()) {
        let admitted = run(&SlidingWindowCounter::new(quota), &requests)?;
        prop_assert!(densest(&admitted, quota.period()) <= 2 * quota.limit());
    }
}

#[test]
fn a_cost_above_capacity_is_never_admitted() {
    let quota =
        Quota::per_minute(NonZeroU64::new(100).unwrap()).with_burst(NonZeroU64::new(10).unwrap());
    let state = Default::default();
    assert_eq!(
        TokenBucket::new(quota).wait(&state, 11, Duration::ZERO),
        Admission::Never
    );
    assert_eq!(
        Gcra::new(quota).wait(&Default::default(), 11, Duration::ZERO),
        Admission::Never
    );
    assert_eq!(
        FixedWindow::new(quota).wait(&Default::default(), 101, Duration::ZERO),
        Admission::Never
    );
    assert_eq!(
        SlidingWindowLog::new(quota).wait(&Default::default(), 101, Duration::ZERO),
        Admission::Never
    );
    assert_eq!(
        SlidingWindowCounter::new(quota).wait(&Default::default(), 101, Duration::ZERO),
        Admission::Never
    );
}

#[test]
fn invalid_periods_are_typed_errors() {
    let one = NonZeroU64::MIN;
    assert_eq!(
        Quota::new(one, Duration::ZERO).unwrap_err().period(),
        Duration::ZERO
    );
    assert!(Quota::new(one, Duration::MAX).is_err());
    assert!(Quota::new(one, Duration::from_nanos(1)).is_ok());
}
