//! Every decision of one breaker, on explicit nanosecond clocks: what each state admits, when
//! an open period ends, how many probes run and how many successes close it, what a failed or
//! slow probe does, the consecutive count, each rate trip's three conditions, manual opening
//! and closing and the changes they report, both windows' exact counts (the count window
//! wrapping, the time window's slots expiring), and when a breaker is idle. Found by mutation
//! testing (CONTRIBUTING.md, "Mutation testing").

use std::num::NonZeroU32;
use std::time::Duration;

use tollgate_core::keyed::Idle;

use super::{
    Breaker, BreakerConfig, CLOSED, CallWindow, Change, HALF_OPEN, OPEN, Outcomes, Pass, Refusal,
    Trip,
};

const SECOND: u64 = 1_000_000_000;

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

/// Trips after `failures` failures in a row; `probes` probes when half-open.
fn consecutive(failures: u32, probes: u32) -> BreakerConfig {
    BreakerConfig::default()
        .with_trip(Trip::ConsecutiveFailures(n(failures)))
        .with_probes(n(probes))
}

/// Trips at `percent` failures over the last `calls` calls, once `min_calls` are counted.
fn rate(percent: u8, calls: u32, min_calls: u32) -> BreakerConfig {
    BreakerConfig::default()
        .with_trip(Trip::FailureRate {
            percent,
            window: CallWindow::Calls(n(calls)),
            min_calls,
        })
        .with_probes(n(1))
}

/// Records a call admitted while closed, at `now`; returns the changes it made.
fn record(breaker: &Breaker, config: &BreakerConfig, failed: bool, now: u64) -> Vec<Change> {
    let mut changes = Vec::new();
    breaker.record(config, Pass::Normal, failed, false, &|| now, &mut changes);
    changes
}

/// Records the outcome of `pass` (a probe), at `now`.
fn finish(
    breaker: &Breaker,
    config: &BreakerConfig,
    pass: Pass,
    failed: bool,
    slow: bool,
    now: u64,
) -> Vec<Change> {
    let mut changes = Vec::new();
    breaker.record(config, pass, failed, slow, &|| now, &mut changes);
    changes
}

fn admit(breaker: &Breaker, config: &BreakerConfig, now: u64) -> Result<Pass, Refusal> {
    breaker.admit(config, now, &mut Vec::new())
}

fn opened(from: u8, secs: u64) -> Change {
    Change {
        from,
        to: OPEN,
        open_for: Some(Duration::from_secs(secs)),
    }
}

fn moved(from: u8, to: u8) -> Change {
    Change {
        from,
        to,
        open_for: None,
    }
}

// ===== admitting =====

#[test]
fn a_closed_breaker_admits_every_call_as_a_normal_one() {
    let config = consecutive(1, 1);
    let breaker = Breaker::new(&config);
    let mut changes = Vec::new();
    for _ in 0..5 {
        assert_eq!(breaker.admit(&config, 0, &mut changes), Ok(Pass::Normal));
    }
    assert_eq!(breaker.state(), CLOSED);
    assert!(changes.is_empty());
}

#[test]
fn an_open_breaker_refuses_until_its_period_ends_then_admits_its_probes() {
    let config = consecutive(1, 2);
    let breaker = Breaker::new(&config);
    assert_eq!(
        record(&breaker, &config, true, 5 * SECOND),
        [opened(CLOSED, 60)]
    );
    assert_eq!(breaker.state(), OPEN);
    assert_eq!(breaker.open_until(), 65 * SECOND);
    assert_eq!(
        admit(&breaker, &config, 5 * SECOND),
        Err(Refusal::Open(65 * SECOND))
    );
    assert_eq!(
        admit(&breaker, &config, 65 * SECOND - 1),
        Err(Refusal::Open(65 * SECOND))
    );
    let mut changes = Vec::new();
    assert_eq!(
        breaker.admit(&config, 65 * SECOND, &mut changes),
        Ok(Pass::Probe(1))
    );
    assert_eq!(changes, [moved(OPEN, HALF_OPEN)]);
    assert_eq!(breaker.state(), HALF_OPEN);
    // Two probe slots: the second is admitted, the third refused.
    assert_eq!(admit(&breaker, &config, 65 * SECOND), Ok(Pass::Probe(1)));
    assert_eq!(admit(&breaker, &config, 65 * SECOND), Err(Refusal::Probing));
}

#[test]
fn a_dropped_probe_frees_its_slot_only_in_its_own_half_open_period() {
    let config = consecutive(1, 1);
    let breaker = Breaker::new(&config);
    record(&breaker, &config, true, 0);
    assert_eq!(admit(&breaker, &config, 60 * SECOND), Ok(Pass::Probe(1)));
    assert_eq!(admit(&breaker, &config, 60 * SECOND), Err(Refusal::Probing));
    // A probe of another period frees nothing.
    breaker.release_probe(0);
    assert_eq!(admit(&breaker, &config, 60 * SECOND), Err(Refusal::Probing));
    breaker.release_probe(1);
    assert_eq!(admit(&breaker, &config, 60 * SECOND), Ok(Pass::Probe(1)));
}

// ===== probes =====

#[test]
fn as_many_successful_probes_as_slots_close_it_and_forget_its_trips() {
    let config = consecutive(1, 2);
    let breaker = Breaker::new(&config);
    record(&breaker, &config, true, 0);
    let a = admit(&breaker, &config, 60 * SECOND).unwrap();
    let b = admit(&breaker, &config, 60 * SECOND).unwrap();
    assert!(finish(&breaker, &config, a, false, false, 61 * SECOND).is_empty());
    assert_eq!(breaker.state(), HALF_OPEN);
    assert_eq!(
        finish(&breaker, &config, b, false, false, 61 * SECOND),
        [moved(HALF_OPEN, CLOSED)]
    );
    assert_eq!(breaker.state(), CLOSED);
    // The next trip opens for the first period again.
    assert_eq!(
        record(&breaker, &config, true, 70 * SECOND),
        [opened(CLOSED, 60)]
    );
}

#[test]
fn a_failed_or_slow_probe_reopens_it_for_a_longer_period() {
    let config =
        consecutive(1, 1).with_open_for(Duration::from_secs(10), 2, Duration::from_secs(100));
    let breaker = Breaker::new(&config);
    assert_eq!(record(&breaker, &config, true, 0), [opened(CLOSED, 10)]);
    let probe = admit(&breaker, &config, 10 * SECOND).unwrap();
    assert_eq!(
        finish(&breaker, &config, probe, true, false, 10 * SECOND),
        [opened(HALF_OPEN, 20)]
    );
    assert_eq!(breaker.open_until(), 30 * SECOND);
    let probe = admit(&breaker, &config, 30 * SECOND).unwrap();
    assert_eq!(probe, Pass::Probe(2));
    assert_eq!(
        finish(&breaker, &config, probe, false, true, 30 * SECOND),
        [opened(HALF_OPEN, 40)]
    );
    assert_eq!(breaker.open_until(), 70 * SECOND);
}

#[test]
fn a_probe_that_ends_after_a_manual_close_counts_for_nothing_and_holds_no_slot() {
    let config = consecutive(1, 1);
    let breaker = Breaker::new(&config);
    record(&breaker, &config, true, 0);
    let probe = admit(&breaker, &config, 60 * SECOND).unwrap();
    let mut changes = Vec::new();
    breaker.close(&mut changes);
    assert_eq!(changes, [moved(HALF_OPEN, CLOSED)]);
    assert!(finish(&breaker, &config, probe, true, false, 61 * SECOND).is_empty());
    assert_eq!(breaker.state(), CLOSED);
    assert!(breaker.is_idle(61 * SECOND));
}

#[test]
fn a_probe_still_out_when_the_others_close_it_holds_no_slot_after() {
    let config = consecutive(1, 2);
    let breaker = Breaker::new(&config);
    record(&breaker, &config, true, 0);
    let a = admit(&breaker, &config, 60 * SECOND).unwrap();
    let b = admit(&breaker, &config, 60 * SECOND).unwrap();
    finish(&breaker, &config, a, false, false, 60 * SECOND);
    let c = admit(&breaker, &config, 60 * SECOND).unwrap();
    assert_eq!(
        finish(&breaker, &config, b, false, false, 60 * SECOND),
        [moved(HALF_OPEN, CLOSED)]
    );
    // `c` answers after the breaker closed: nothing counted, and nothing keeps it in memory.
    assert!(finish(&breaker, &config, c, false, false, 61 * SECOND).is_empty());
    assert!(breaker.is_idle(61 * SECOND));
}

// ===== consecutive failures =====

#[test]
fn consecutive_failures_trip_at_exactly_the_count_and_a_success_restarts_it() {
    let config = consecutive(3, 1);
    let breaker = Breaker::new(&config);
    for failed in [true, true, false, true, true] {
        assert!(record(&breaker, &config, failed, 0).is_empty());
    }
    assert_eq!(breaker.state(), CLOSED);
    assert_eq!(record(&breaker, &config, true, 0), [opened(CLOSED, 60)]);
}

// ===== manual control =====

#[test]
fn closing_by_hand_forgets_the_count_the_trips_and_the_open_period() {
    let config = consecutive(3, 1);
    let breaker = Breaker::new(&config);
    record(&breaker, &config, true, 0);
    record(&breaker, &config, true, 0);
    let mut changes = Vec::new();
    breaker.close(&mut changes);
    assert!(changes.is_empty(), "already closed: nothing to tell");
    assert!(record(&breaker, &config, true, 0).is_empty());
    record(&breaker, &config, true, 0);
    assert_eq!(record(&breaker, &config, true, 0), [opened(CLOSED, 60)]);
    breaker.close(&mut changes);
    assert_eq!(changes, [moved(OPEN, CLOSED)]);
    assert_eq!(breaker.state(), CLOSED);
    assert_eq!(breaker.open_until(), 0);
    assert_eq!(admit(&breaker, &config, SECOND), Ok(Pass::Normal));
    for _ in 0..2 {
        assert!(record(&breaker, &config, true, SECOND).is_empty());
    }
    // Its trips were forgotten: the first period again, not the doubled one.
    assert_eq!(
        record(&breaker, &config, true, SECOND),
        [opened(CLOSED, 60)]
    );
}

#[test]
fn opening_by_hand_is_told_once_and_keeps_the_longest_period() {
    let config = consecutive(3, 1);
    let breaker = Breaker::new(&config);
    record(&breaker, &config, true, 0);
    record(&breaker, &config, true, 0);
    let mut changes = Vec::new();
    breaker.open_for(Duration::from_secs(30), 0, &mut changes);
    assert_eq!(
        changes,
        [Change {
            from: CLOSED,
            to: OPEN,
            open_for: Some(Duration::from_secs(30))
        }]
    );
    assert_eq!(breaker.open_until(), 30 * SECOND);
    changes.clear();
    breaker.open_for(Duration::from_secs(10), 0, &mut changes);
    assert!(changes.is_empty(), "already open: nothing to tell");
    assert_eq!(breaker.open_until(), 30 * SECOND);
    breaker.open_for(Duration::from_secs(50), 0, &mut changes);
    assert!(changes.is_empty());
    assert_eq!(breaker.open_until(), 50 * SECOND);
    assert_eq!(
        admit(&breaker, &config, 49 * SECOND),
        Err(Refusal::Open(50 * SECOND))
    );
    // The failures counted before it opened are forgotten: closed by a probe, one failure
    // does not trip it.
    let probe = admit(&breaker, &config, 50 * SECOND).unwrap();
    finish(&breaker, &config, probe, false, false, 50 * SECOND);
    assert_eq!(breaker.state(), CLOSED);
    assert!(record(&breaker, &config, true, 51 * SECOND).is_empty());
}

#[test]
fn counts_start_again_after_opening_by_hand() {
    let config = rate(50, 4, 4);
    let breaker = Breaker::new(&config);
    for failed in [true, true, true] {
        record(&breaker, &config, failed, 0);
    }
    breaker.open_for(Duration::from_secs(1), 0, &mut Vec::new());
    let probe = admit(&breaker, &config, SECOND).unwrap();
    finish(&breaker, &config, probe, false, false, SECOND);
    assert_eq!(breaker.state(), CLOSED);
    // Four calls again before the rate is judged.
    for failed in [true, true, true] {
        assert!(record(&breaker, &config, failed, SECOND).is_empty());
    }
    assert_eq!(
        record(&breaker, &config, true, SECOND),
        [opened(CLOSED, 60)]
    );
}

// ===== rate trips =====

#[test]
fn a_failure_rate_trips_only_once_enough_calls_are_counted() {
    let config = rate(50, 4, 4);
    let breaker = Breaker::new(&config);
    for _ in 0..3 {
        assert!(record(&breaker, &config, true, 0).is_empty());
    }
    assert_eq!(record(&breaker, &config, true, 0), [opened(CLOSED, 60)]);
}

#[test]
fn a_failure_rate_trips_at_exactly_its_percentage() {
    let config = rate(50, 4, 4);
    let breaker = Breaker::new(&config);
    for failed in [false, false, true] {
        assert!(record(&breaker, &config, failed, 0).is_empty());
    }
    // 2 of 4: 50 %.
    assert_eq!(record(&breaker, &config, true, 0), [opened(CLOSED, 60)]);
    // 1 of 4 is below 50 %.
    let config = rate(50, 4, 4);
    let breaker = Breaker::new(&config);
    for failed in [false, false, false, true] {
        assert!(record(&breaker, &config, failed, 0).is_empty());
    }
}

#[test]
fn only_a_failure_trips_a_failure_rate() {
    let config = rate(50, 4, 4);
    let breaker = Breaker::new(&config);
    for failed in [true, true, true] {
        assert!(record(&breaker, &config, failed, 0).is_empty());
    }
    // 3 of 4 is above 50 %, but a success does not trip it.
    assert!(record(&breaker, &config, false, 0).is_empty());
    assert_eq!(breaker.state(), CLOSED);
}

#[test]
fn a_count_window_forgets_calls_as_it_wraps() {
    let config = rate(50, 4, 4);
    let breaker = Breaker::new(&config);
    // F then five successes: the failure has left the window of four.
    for failed in [true, false, false, false, false, false] {
        assert!(record(&breaker, &config, failed, 0).is_empty());
    }
    // F: 1 of 4.
    assert!(record(&breaker, &config, true, 0).is_empty());
    // F: 2 of 4.
    assert_eq!(record(&breaker, &config, true, 0), [opened(CLOSED, 60)]);
}

#[test]
fn a_slow_call_rate_counts_slow_calls_not_failures() {
    let config = BreakerConfig::default()
        .with_trip(Trip::SlowCallRate {
            slower_than: Duration::from_secs(2),
            percent: 100,
            window: CallWindow::Calls(n(2)),
            min_calls: 2,
        })
        .with_probes(n(1));
    let breaker = Breaker::new(&config);
    let mut changes = Vec::new();
    for _ in 0..2 {
        breaker.record(&config, Pass::Normal, true, false, &|| 0, &mut changes);
    }
    assert!(changes.is_empty());
    breaker.record(&config, Pass::Normal, false, true, &|| 0, &mut changes);
    assert!(changes.is_empty());
    breaker.record(&config, Pass::Normal, false, true, &|| 0, &mut changes);
    assert_eq!(changes, [opened(CLOSED, 60)]);
}

#[test]
fn a_time_window_breaker_opens() {
    let config = BreakerConfig::default()
        .with_trip(Trip::FailureRate {
            percent: 50,
            window: CallWindow::Time(Duration::from_secs(10)),
            min_calls: 3,
        })
        .with_probes(n(1));
    let breaker = Breaker::new(&config);
    assert!(record(&breaker, &config, false, 0).is_empty());
    assert!(record(&breaker, &config, true, 4 * SECOND).is_empty());
    assert_eq!(
        record(&breaker, &config, true, 9 * SECOND),
        [opened(CLOSED, 60)]
    );
}

// ===== the windows =====

#[test]
fn a_count_window_holds_the_last_n_outcomes_exactly() {
    let window = Outcomes::new(CallWindow::Calls(n(3)));
    let now = || 0;
    let steps = [
        (true, (1, 1)),
        (false, (2, 1)),
        (true, (3, 2)),
        // Wrapped: each call replaces the oldest.
        (false, (3, 1)),
        (false, (3, 1)),
        (true, (3, 1)),
        (true, (3, 2)),
        (true, (3, 3)),
        (false, (3, 2)),
    ];
    for (i, (bad, want)) in steps.into_iter().enumerate() {
        assert_eq!(window.record(bad, &now), want, "call {i}");
    }
    assert!(!window.is_clear(0));
    window.reset();
    assert!(window.is_clear(0));
    assert_eq!(window.record(false, &now), (1, 0));
    assert_eq!(window.record(true, &now), (2, 1));
}

#[test]
fn a_time_window_counts_its_last_ten_slots_exactly() {
    // Ten slots of a second each.
    let window = Outcomes::new(CallWindow::Time(Duration::from_secs(10)));
    let ms = |n: u64| n * 1_000_000;
    let steps = [
        (true, 0, (1, 1)),
        // The same slot.
        (false, ms(500), (2, 1)),
        (true, 3 * SECOND, (3, 2)),
        (false, 10 * SECOND - 1, (4, 2)),
        // The first slot is reused: its two calls leave.
        (false, 10 * SECOND, (3, 1)),
        (false, ms(13_900), (3, 0)),
        // Past every slot.
        (true, 25 * SECOND, (1, 1)),
        (false, ms(34_500), (2, 1)),
        (false, 35 * SECOND, (2, 0)),
    ];
    for (bad, now, want) in steps {
        assert_eq!(window.record(bad, &|| now), want, "at {now} ns");
    }
    // A reset empties every slot, the current one included.
    window.reset();
    assert_eq!(window.record(false, &|| 35 * SECOND), (1, 0));
    assert!(window.is_clear(35 * SECOND));
}

#[test]
fn a_failure_in_a_time_window_is_clear_exactly_when_it_leaves() {
    let window = Outcomes::new(CallWindow::Time(Duration::from_secs(10)));
    assert!(window.is_clear(0));
    window.record(true, &|| 0);
    assert!(!window.is_clear(0));
    assert!(!window.is_clear(9 * SECOND));
    assert!(!window.is_clear(10 * SECOND - 1));
    assert!(window.is_clear(10 * SECOND));
    // A success leaves nothing to keep.
    let window = Outcomes::new(CallWindow::Time(Duration::from_secs(10)));
    window.record(false, &|| 3 * SECOND);
    assert!(window.is_clear(3 * SECOND));
}

// ===== idleness =====

#[test]
fn a_breaker_is_idle_only_closed_with_nothing_counted() {
    let config = consecutive(2, 1);
    let breaker = Breaker::new(&config);
    assert!(breaker.is_idle(0));
    record(&breaker, &config, true, 0);
    assert!(!breaker.is_idle(0), "a failure counted");
    record(&breaker, &config, false, 0);
    assert!(breaker.is_idle(0));
    record(&breaker, &config, true, 0);
    record(&breaker, &config, true, 0);
    assert_eq!(breaker.state(), OPEN);
    assert!(!breaker.is_idle(0), "open");
    assert!(!breaker.is_idle(3_600 * SECOND), "open, however long ago");
    let probe = admit(&breaker, &config, 60 * SECOND).unwrap();
    assert!(!breaker.is_idle(60 * SECOND), "half-open");
    finish(&breaker, &config, probe, false, false, 60 * SECOND);
    assert!(breaker.is_idle(60 * SECOND));
}

#[test]
fn a_count_window_breaker_is_idle_once_its_failures_are_replaced() {
    let config = rate(100, 2, 2);
    let breaker = Breaker::new(&config);
    assert!(breaker.is_idle(0));
    record(&breaker, &config, true, 0);
    assert!(!breaker.is_idle(0));
    record(&breaker, &config, false, 0);
    assert!(!breaker.is_idle(0));
    record(&breaker, &config, false, 0);
    assert!(breaker.is_idle(0));
}
