//! One breaker's state, in atomics: the closed path takes no lock.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tollgate_core::clock::nanos;
use tollgate_core::keyed::Idle;

use crate::config::{BreakerConfig, CallWindow, Trip};

pub(crate) const CLOSED: u8 = 0;
pub(crate) const OPEN: u8 = 1;
pub(crate) const HALF_OPEN: u8 = 2;

/// What an admitted call is, for recording its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Admitted while closed (or in metrics-only mode).
    Normal,
    /// A half-open probe of the half-open period numbered so: holds a probe slot until it
    /// completes or is dropped. A probe of an earlier period counts for nothing.
    Probe(u32),
}

/// A state change, for the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) from: u8,
    pub(crate) to: u8,
    /// For a change to open: how long.
    pub(crate) open_for: Option<Duration>,
}

pub(crate) struct Breaker {
    state: AtomicU8,
    /// Nanoseconds (since the layer's origin) until which it stays open.
    open_until: AtomicU64,
    /// Trips since it last closed, for the growing open period.
    trips: AtomicU32,
    probes_in_flight: AtomicU32,
    probe_successes: AtomicU32,
    /// The current half-open period's number.
    half_open_period: AtomicU32,
    consecutive: AtomicU32,
    window: Option<Outcomes>,
}

/// Why a call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Open until this (nanos since origin).
    Open(u64),
    /// Half-open with every probe slot taken.
    Probing,
}

impl Breaker {
    pub(crate) fn new(config: &BreakerConfig) -> Self {
        let window = match config.trip {
            Trip::ConsecutiveFailures(_) => None,
            Trip::FailureRate { window, .. } | Trip::SlowCallRate { window, .. } => {
                Some(Outcomes::new(window))
            }
        };
        Breaker {
            state: AtomicU8::new(CLOSED),
            open_until: AtomicU64::new(0),
            trips: AtomicU32::new(0),
            probes_in_flight: AtomicU32::new(0),
            probe_successes: AtomicU32::new(0),
            half_open_period: AtomicU32::new(0),
            consecutive: AtomicU32::new(0),
            window,
        }
    }

    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    pub(crate) fn open_until(&self) -> u64 {
        self.open_until.load(Ordering::Acquire)
    }

    /// Admits a call at `now`, or refuses it. May move open to half-open.
    pub(crate) fn admit(
        &self,
        config: &BreakerConfig,
        now: u64,
        changes: &mut Vec<Change>,
    ) -> Result<Pass, Refusal> {
        loop {
            match self.state.load(Ordering::Acquire) {
                CLOSED => return Ok(Pass::Normal),
                OPEN => {
                    let until = self.open_until.load(Ordering::Acquire);
                    if now < until {
                        return Err(Refusal::Open(until));
                    }
                    // Reset the probe counts while still open (nobody counts probes then), so
                    // that a probe admitted right after the switch is never wiped.
                    self.probes_in_flight.store(0, Ordering::Release);
                    self.probe_successes.store(0, Ordering::Release);
                    self.half_open_period.fetch_add(1, Ordering::AcqRel);
                    if self
                        .state
                        .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        changes.push(Change {
                            from: OPEN,
                            to: HALF_OPEN,
                            open_for: None,
                        });
                    }
                }
                _ => {
                    let period = self.half_open_period.load(Ordering::Acquire);
                    let probes = config.probes.get();
                    let taken = self.probes_in_flight.fetch_update(
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        |n| (n < probes).then_some(n + 1),
                    );
                    return match taken {
                        Ok(_) => Ok(Pass::Probe(period)),
                        Err(_) => Err(Refusal::Probing),
                    };
                }
            }
        }
    }

    /// A probe that ended without an outcome (dropped) frees its slot — if its half-open
    /// period is still the current one.
    pub(crate) fn release_probe(&self, period: u32) {
        if period != self.half_open_period.load(Ordering::Acquire) {
            return;
        }
        let _ = self
            .probes_in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Records a completed call: `failed` if its verdict is counted, `slow` if above the
    /// slow-call threshold.
    /// `now` is read only when needed: a time window, or a change of state.
    pub(crate) fn record(
        &self,
        config: &BreakerConfig,
        pass: Pass,
        failed: bool,
        slow: bool,
        now: &impl Fn() -> u64,
        changes: &mut Vec<Change>,
    ) {
        if let Pass::Probe(period) = pass {
            if period != self.half_open_period.load(Ordering::Acquire)
                || self.state.load(Ordering::Acquire) != HALF_OPEN
            {
                // A probe of an earlier half-open period: neither its slot nor its outcome
                // belongs to this one.
                return;
            }
            self.release_probe(period);
            if failed || slow {
                self.trip(config, HALF_OPEN, now(), changes);
            } else if self.probe_successes.fetch_add(1, Ordering::AcqRel) + 1 >= config.probes.get()
                && self
                    .state
                    .compare_exchange(HALF_OPEN, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                self.reset_counts();
                self.trips.store(0, Ordering::Release);
                changes.push(Change {
                    from: HALF_OPEN,
                    to: CLOSED,
                    open_for: None,
                });
            }
            return;
        }
        let trips = match config.trip {
            Trip::ConsecutiveFailures(n) => {
                if failed {
                    self.consecutive.fetch_add(1, Ordering::AcqRel) + 1 >= n.get()
                } else {
                    self.clear_streak();
                    false
                }
            }
            Trip::FailureRate {
                percent, min_calls, ..
            } => self.rate_trips(failed, percent, min_calls, now),
            Trip::SlowCallRate {
                percent, min_calls, ..
            } => self.rate_trips(slow, percent, min_calls, now),
        };
        if trips {
            self.trip(config, CLOSED, now(), changes);
        }
    }

    /// A success while closed ends a streak of failures. Only writes when there is
    /// something to clear: the common success leaves the cache line shared.
    #[inline]
    pub(crate) fn clear_streak(&self) {
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Release);
        }
    }

    fn rate_trips(&self, bad: bool, percent: u8, min_calls: u32, now: &impl Fn() -> u64) -> bool {
        let Some(window) = &self.window else {
            return false;
        };
        let (calls, bads) = window.record(bad, now);
        bad && calls >= u64::from(min_calls.max(1))
            && bads.saturating_mul(100) >= u64::from(percent.clamp(1, 100)).saturating_mul(calls)
    }

    /// Opens from `from` (closed or half-open), for the open period its trips have earned.
    fn trip(&self, config: &BreakerConfig, from: u8, now: u64, changes: &mut Vec<Change>) {
        // The end of the open period is published before the state, so that nobody sees it
        // open with an old, passed end and probes at once.
        let open_for = config.open_period(self.trips.load(Ordering::Acquire));
        let until = now.saturating_add(nanos(open_for));
        if self.state.load(Ordering::Acquire) != from {
            return;
        }
        self.open_until.fetch_max(until, Ordering::AcqRel);
        if self
            .state
            .compare_exchange(from, OPEN, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        self.trips.fetch_add(1, Ordering::AcqRel);
        self.reset_counts();
        changes.push(Change {
            from,
            to: OPEN,
            open_for: Some(open_for),
        });
    }

    /// Opens at once for at least `open_for` (from outside: a long server delay, a quota
    /// cooldown); an open period already longer stays.
    pub(crate) fn open_for(&self, open_for: Duration, now: u64, changes: &mut Vec<Change>) {
        let until = now.saturating_add(nanos(open_for));
        self.open_until.fetch_max(until, Ordering::AcqRel);
        let from = self.state.swap(OPEN, Ordering::AcqRel);
        if from != OPEN {
            self.reset_counts();
            changes.push(Change {
                from,
                to: OPEN,
                open_for: Some(open_for),
            });
        }
    }

    /// Closes at once, forgetting every count and trip.
    pub(crate) fn close(&self, changes: &mut Vec<Change>) {
        let from = self.state.swap(CLOSED, Ordering::AcqRel);
        self.reset_counts();
        self.trips.store(0, Ordering::Release);
        self.open_until.store(0, Ordering::Release);
        if from != CLOSED {
            changes.push(Change {
                from,
                to: CLOSED,
                open_for: None,
            });
        }
    }

    /// Forgets what was counted, on every change of state but to half-open (which resets the
    /// probe counts itself). A probe still out then holds no slot any more: it counts for
    /// nothing when it ends (its period or the state is no longer its own), so its slot is
    /// released here, or a closed breaker would never be idle again.
    fn reset_counts(&self) {
        self.consecutive.store(0, Ordering::Release);
        self.probes_in_flight.store(0, Ordering::Release);
        if let Some(window) = &self.window {
            window.reset();
        }
    }
}

impl Idle for Breaker {
    /// Nanoseconds since the layer's origin.
    type Now = u64;

    /// Whether forgetting it loses nothing: closed, nothing counted, nothing in flight.
    fn is_idle(&self, now: u64) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
            && self.consecutive.load(Ordering::Acquire) == 0
            && self.probes_in_flight.load(Ordering::Acquire) == 0
            && self.window.as_ref().is_none_or(|w| w.is_clear(now))
    }
}

// ===== the rate windows, lock-free =====

enum Outcomes {
    /// The last `n` calls: a ring of outcomes and a running count of bad ones.
    Calls {
        slots: Box<[AtomicU8]>,
        cursor: AtomicU64,
        bad: AtomicU64,
    },
    /// Ten slots of a tenth of the period each.
    Time {
        slot_nanos: u64,
        slots: Box<[TimeSlot]>,
    },
}

#[derive(Default)]
struct TimeSlot {
    epoch: AtomicU64,
    calls: AtomicU64,
    bad: AtomicU64,
}

const EMPTY: u8 = 0;
const GOOD: u8 = 1;
const BAD: u8 = 2;
const TIME_SLOTS: u64 = 10;

impl Outcomes {
    fn new(window: CallWindow) -> Self {
        match window {
            CallWindow::Calls(n) => Outcomes::Calls {
                slots: (0..n.get()).map(|_| AtomicU8::new(EMPTY)).collect(),
                cursor: AtomicU64::new(0),
                bad: AtomicU64::new(0),
            },
            CallWindow::Time(period) => Outcomes::Time {
                slot_nanos: (nanos(period) / TIME_SLOTS).max(1),
                slots: (0..TIME_SLOTS).map(|_| TimeSlot::default()).collect(),
            },
        }
    }

    /// Records one call; returns the calls and bad calls the window now holds.
    fn record(&self, bad: bool, now: &impl Fn() -> u64) -> (u64, u64) {
        match self {
            Outcomes::Calls {
                slots,
                cursor,
                bad: bads,
            } => {
                let at = cursor.fetch_add(1, Ordering::AcqRel);
                let len = slots.len() as u64;
                let old =
                    slots[(at % len) as usize].swap(if bad { BAD } else { GOOD }, Ordering::AcqRel);
                // Saturating both ways: a reset racing a record can only make the count a
                // little off, never wrap it.
                let count = match (old == BAD, bad) {
                    (false, true) => bads.fetch_add(1, Ordering::AcqRel).saturating_add(1),
                    (true, false) => bads
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .map_or(0, |n| n - 1),
                    _ => bads.load(Ordering::Acquire),
                };
                (at.saturating_add(1).min(len), count)
            }
            Outcomes::Time { slot_nanos, slots } => {
                let epoch = now() / slot_nanos + 1;
                let slot = &slots[(epoch % TIME_SLOTS) as usize];
                let seen = slot.epoch.load(Ordering::Acquire);
                if seen < epoch
                    && slot
                        .epoch
                        .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    slot.calls.store(0, Ordering::Release);
                    slot.bad.store(0, Ordering::Release);
                }
                slot.calls.fetch_add(1, Ordering::AcqRel);
                if bad {
                    slot.bad.fetch_add(1, Ordering::AcqRel);
                }
                slots
                    .iter()
                    .filter(|s| {
                        let seen = s.epoch.load(Ordering::Acquire);
                        seen <= epoch && seen + TIME_SLOTS > epoch
                    })
                    .fold((0, 0), |(calls, bad), s| {
                        (
                            calls + s.calls.load(Ordering::Acquire),
                            bad + s.bad.load(Ordering::Acquire),
                        )
                    })
            }
        }
    }

    fn reset(&self) {
        match self {
            Outcomes::Calls { slots, cursor, bad } => {
                slots.iter().for_each(|s| s.store(EMPTY, Ordering::Release));
                cursor.store(0, Ordering::Release);
                bad.store(0, Ordering::Release);
            }
            Outcomes::Time { slots, .. } => slots.iter().for_each(|s| {
                s.calls.store(0, Ordering::Release);
                s.bad.store(0, Ordering::Release);
            }),
        }
    }

    /// No failure counted that still counts at `now`.
    fn is_clear(&self, now: u64) -> bool {
        match self {
            Outcomes::Calls { bad, .. } => bad.load(Ordering::Acquire) == 0,
            Outcomes::Time { slot_nanos, slots } => {
                let epoch = now / slot_nanos + 1;
                slots.iter().all(|s| {
                    s.bad.load(Ordering::Acquire) == 0
                        || s.epoch.load(Ordering::Acquire).saturating_add(TIME_SLOTS) <= epoch
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn config(trip: Trip) -> BreakerConfig {
        BreakerConfig::default()
            .with_trip(trip)
            .with_probes(NonZeroU32::new(1).unwrap())
    }

    #[test]
    fn a_probe_of_an_earlier_half_open_period_counts_for_nothing() {
        let config = config(Trip::ConsecutiveFailures(NonZeroU32::new(1).unwrap()));
        let breaker = Breaker::new(&config);
        let mut changes = Vec::new();
        let now = || 0;
        breaker.record(&config, Pass::Normal, true, false, &now, &mut changes);
        assert_eq!(breaker.state(), OPEN);
        let stale = breaker.admit(&config, 61 * SECOND, &mut changes).unwrap();
        // Opened again by hand while that probe is out, then half-open again.
        breaker.open_for(Duration::from_secs(10), 61 * SECOND, &mut changes);
        let fresh = breaker.admit(&config, 72 * SECOND, &mut changes).unwrap();
        assert_ne!(stale, fresh);
        // The stale probe's success neither frees the slot nor closes the breaker.
        let later = || 73 * SECOND;
        breaker.record(&config, stale, false, false, &later, &mut changes);
        assert_eq!(breaker.state(), HALF_OPEN);
        assert_eq!(
            breaker.admit(&config, 73 * SECOND, &mut changes),
            Err(Refusal::Probing)
        );
        breaker.record(&config, fresh, false, false, &later, &mut changes);
        assert_eq!(breaker.state(), CLOSED);
    }

    #[test]
    fn an_old_failure_in_a_time_window_does_not_keep_a_breaker_alive() {
        let config = config(Trip::FailureRate {
            percent: 50,
            window: CallWindow::Time(Duration::from_secs(10)),
            min_calls: 100,
        });
        let breaker = Breaker::new(&config);
        let mut changes = Vec::new();
        breaker.record(&config, Pass::Normal, true, false, &|| 0, &mut changes);
        assert!(!breaker.is_idle(SECOND));
        assert!(breaker.is_idle(20 * SECOND));
    }
}

#[cfg(test)]
mod decisions;
