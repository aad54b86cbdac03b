//! [`Entry`]: the quota state of one key in a [`MemoryStore`](super::MemoryStore) — its limits
//! (configured, and learned from the provider's headers), their states, a pause, and the
//! adaptive pace.

use std::num::NonZeroU64;
use std::time::Duration;

use tollgate_core::{Cost, Dimension, Window};

use crate::adaptive::{Adaptive, AdaptiveState, Ceiling};
use crate::algorithm::{Admission, Quota, nanos};
use crate::limit::{self, Limit, LimitState, Limits};

use super::{Feedback, Outlook, QuotaDecision};

/// At most this many limits are learned from headers per key (dimensions × windows).
const MAX_LEARNED: usize = 8;

/// 56 bytes with one limit (`tests/memory.rs` measures what a key costs in all).
pub(super) struct Entry {
    /// The configured limits (one pointer).
    limits: Limits,
    /// One state per configured limit.
    states: States,
    /// Nothing is admitted before this (nanoseconds since the origin).
    paused_until: u64,
    /// The learned pace and limits, under an adaptive limit (boxed: most keys have none).
    adaptive: Option<Box<Adaptation>>,
}

/// The states of a key's configured limits: a single one inline (the common case, with no
/// allocation of its own), more on the heap.
#[derive(Debug)]
enum States {
    One(LimitState),
    Many(Box<[LimitState]>),
}

impl FromIterator<LimitState> for States {
    fn from_iter<I: IntoIterator<Item = LimitState>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        match (iter.next(), iter.next()) {
            (Some(one), None) => States::One(one),
            (first, second) => States::Many(first.into_iter().chain(second).chain(iter).collect()),
        }
    }
}

impl std::ops::Deref for States {
    type Target = [LimitState];

    #[inline]
    fn deref(&self) -> &[LimitState] {
        match self {
            States::One(one) => std::slice::from_ref(one),
            States::Many(many) => many,
        }
    }
}

impl std::ops::DerefMut for States {
    #[inline]
    fn deref_mut(&mut self) -> &mut [LimitState] {
        match self {
            States::One(one) => std::slice::from_mut(one),
            States::Many(many) => many,
        }
    }
}

impl States {
    /// The states, taken out (leaving none).
    fn take(&mut self) -> Vec<LimitState> {
        match std::mem::replace(self, States::Many(Box::default())) {
            States::One(one) => vec![one],
            States::Many(many) => many.into_vec(),
        }
    }
}

/// What an adaptive limit keeps for a key.
struct Adaptation {
    pace: AdaptiveState,
    /// Limits the provider reported where none is configured.
    learned: Vec<Limit>,
    /// One state per learned limit.
    learned_states: Vec<LimitState>,
}

impl Adaptation {
    fn new(config: Adaptive, ceiling: Option<Ceiling>, now: Duration) -> Box<Self> {
        Box::new(Adaptation {
            pace: AdaptiveState::new(config, ceiling, now),
            learned: Vec::new(),
            learned_states: Vec::new(),
        })
    }
}

impl Entry {
    pub(super) fn new(limits: &Limits, now: Duration) -> Self {
        Entry {
            limits: limits.clone(),
            states: limits.as_slice().iter().map(|l| l.fresh_state()).collect(),
            paused_until: 0,
            adaptive: limits
                .adaptive_config()
                .map(|config| Adaptation::new(*config, limits.requests_ceiling(), now)),
        }
    }

    /// Every limit, configured then learned, with its state.
    fn each(&self) -> impl Iterator<Item = (&Limit, &LimitState)> {
        let learned = self
            .adaptive
            .as_deref()
            .map(|a| a.learned.iter().zip(&a.learned_states));
        self.limits
            .as_slice()
            .iter()
            .zip(self.states.iter())
            .chain(learned.into_iter().flatten())
    }

    /// Every limit with its state, mutably.
    fn each_mut(&mut self) -> impl Iterator<Item = (&Limit, &mut LimitState)> {
        let learned = self
            .adaptive
            .as_deref_mut()
            .map(|a| a.learned.iter().zip(a.learned_states.iter_mut()));
        self.limits
            .as_slice()
            .iter()
            .zip(self.states.iter_mut())
            .chain(learned.into_iter().flatten())
    }

    /// The requests limit with the shortest period, configured or learned, the slower of the
    /// two.
    fn requests_ceiling(&self) -> Option<Ceiling> {
        let learned = self
            .adaptive
            .as_deref()
            .and_then(|a| limit::requests_ceiling(&a.learned));
        Ceiling::min(self.limits.requests_ceiling(), learned)
    }

    /// Moves to new limits. A limit whose dimension, period and algorithm are unchanged keeps
    /// its state; one whose rate or algorithm changed starts from what the old one had used.
    /// Learned limits stay, unless a configured one now describes the same period.
    pub(super) fn follow(&mut self, limits: &Limits, now: Duration) {
        if self.limits.generation() == limits.generation() {
            return;
        }
        let old = std::mem::replace(&mut self.limits, limits.clone());
        let mut old_states = self.states.take();
        self.states = limits
            .as_slice()
            .iter()
            .map(|new| {
                let same_period = old.as_slice().iter().position(|o| {
                    o.dimension() == new.dimension() && o.quota().period() == new.quota().period()
                });
                let Some(i) = same_period else {
                    return new.fresh_state();
                };
                let before = &old.as_slice()[i];
                if before == new {
                    return std::mem::replace(&mut old_states[i], before.fresh_state());
                }
                let used = before
                    .capacity()
                    .saturating_sub(before.available(&old_states[i], now));
                let mut state = new.fresh_state();
                new.take(&mut state, used, now);
                state
            })
            .collect();
        let Some(config) = limits.adaptive_config() else {
            self.adaptive = None;
            return;
        };
        let adaptation = self
            .adaptive
            .get_or_insert_with(|| Adaptation::new(*config, None, now));
        let mut i = 0;
        while i < adaptation.learned.len() {
            let learned = adaptation.learned[i];
            let window = window_of(learned.quota().period());
            if limits.matching(learned.dimension(), window).is_some() {
                adaptation.learned.remove(i);
                adaptation.learned_states.remove(i);
            } else {
                i += 1;
            }
        }
        let ceiling = self.requests_ceiling();
        if let Some(adaptation) = &mut self.adaptive {
            adaptation.pace.follow(*config, ceiling);
        }
    }

    /// How long the key is paused for still at `now`.
    #[inline]
    fn paused(&self, now: Duration) -> Duration {
        Duration::from_nanos(self.paused_until.saturating_sub(nanos(now)))
    }

    pub(super) fn is_idle(&self, now: Duration) -> bool {
        self.paused_until <= nanos(now)
            && self.adaptive.as_ref().is_none_or(|a| a.pace.is_idle(now))
            && self.each().all(|(l, s)| l.is_fresh(s, now))
    }

    /// The common case inline (nobody ahead, no pace, no pause, room in every limit); the
    /// rest out of line.
    #[inline]
    pub(super) fn admit(
        &mut self,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> QuotaDecision {
        if ahead.is_none()
            && self.adaptive.is_none()
            && self.paused_until <= nanos(now)
            && self.take_all(cost, now)
        {
            return QuotaDecision::Admitted;
        }
        self.admit_general(cost, ahead, now)
    }

    /// [`admit`](Self::admit) when the common case does not hold: waits, pauses, paces, a
    /// cost too large.
    #[inline(never)]
    fn admit_general(&mut self, cost: &Cost, ahead: Option<&Cost>, now: Duration) -> QuotaDecision {
        let mut wait = self.paused(now);
        if let Some(ahead) = ahead {
            return self.queued(cost, ahead, wait, now);
        }
        let pace = self.adaptive.as_ref().map(|a| a.pace.check(now));
        if let Some(pace) = &pace {
            wait = wait.max(pace.wait);
        }
        // Spend on each limit in turn while every one fits (one step each, the common case);
        // once one does not, only ask the rest how long, and give back what was spent.
        let mut spent = 0;
        let mut verdict = None;
        for (i, (limit, state)) in self.each_mut().enumerate() {
            let c = cost.get(limit.dimension());
            if c > limit.capacity() {
                verdict = Some(too_large(limit, c));
                break;
            }
            let admission = if wait.is_zero() {
                limit.try_take(state, c, now)
            } else {
                limit.wait(state, c, now)
            };
            match admission {
                Admission::Now if wait.is_zero() => spent = i + 1,
                Admission::Now => {}
                Admission::After(d) => wait = wait.max(d),
                Admission::Never => unreachable!("checked against the capacity above"),
            }
        }
        let verdict = verdict.unwrap_or(if wait.is_zero() {
            QuotaDecision::Admitted
        } else {
            QuotaDecision::Wait(wait)
        });
        if verdict == QuotaDecision::Admitted {
            if let (Some(adaptive), Some(pace)) = (&mut self.adaptive, &pace) {
                adaptive.pace.admit(now, pace);
            }
        } else {
            for (limit, state) in self.each_mut().take(spent) {
                limit.give(state, cost.get(limit.dimension()), now, now);
            }
        }
        verdict
    }

    /// The common case, with no pause, no pace and no learned limit: spends `cost` on each
    /// configured limit in turn, and says whether every one had room. When one has not, gives
    /// back what it spent (the general path then decides from the same state).
    #[inline]
    fn take_all(&mut self, cost: &Cost, now: Duration) -> bool {
        let limits = self.limits.as_slice();
        let states = &mut *self.states;
        for (i, (limit, state)) in limits.iter().zip(states.iter_mut()).enumerate() {
            let c = cost.get(limit.dimension());
            if c > limit.capacity() || limit.try_take(state, c, now) != Admission::Now {
                for (limit, state) in limits.iter().zip(states.iter_mut()).take(i) {
                    limit.give(state, cost.get(limit.dimension()), now, now);
                }
                return false;
            }
        }
        true
    }

    /// A queued caller is never admitted here; it waits at least for its turn behind `ahead`.
    fn queued(
        &self,
        cost: &Cost,
        ahead: &Cost,
        mut wait: Duration,
        now: Duration,
    ) -> QuotaDecision {
        for (limit, state) in self.each() {
            let c = cost.get(limit.dimension());
            if c > limit.capacity() {
                return too_large(limit, c);
            }
            let total = ahead.get(limit.dimension()).saturating_add(c);
            wait = wait.max(limit.eta(state, total, now));
        }
        if let Some(adaptive) = &self.adaptive {
            wait = wait.max(adaptive.pace.eta(ahead.get(Dimension::Requests), now));
        } else if self.states.is_empty() && wait.is_zero() {
            return QuotaDecision::Admitted;
        }
        QuotaDecision::Wait(wait.max(Duration::from_nanos(1)))
    }

    pub(super) fn apply(&mut self, feedback: &Feedback, now: Duration) {
        match feedback {
            Feedback::Refund { cost, taken_at } => {
                for (limit, state) in self.each_mut() {
                    limit.give(state, cost.get(limit.dimension()), *taken_at, now);
                }
            }
            Feedback::Charge(cost) => {
                for (limit, state) in self.each_mut() {
                    limit.take(state, cost.get(limit.dimension()), now);
                }
            }
            Feedback::Remaining {
                dimension,
                window,
                remaining,
            } => {
                let at = self.position(*dimension, *window);
                if let Some((limit, state)) = at.and_then(|i| self.each_mut().nth(i)) {
                    let excess = limit.available(state, now).saturating_sub(*remaining);
                    if excess > 0 {
                        limit.take(state, excess, now);
                    }
                }
            }
            Feedback::PauseUntil(until) => self.pause(*until, now),
            Feedback::Throttled { taken_at } => {
                if let Some(adaptive) = &mut self.adaptive {
                    adaptive.pace.throttled(*taken_at, now);
                }
            }
            Feedback::Limit {
                dimension,
                window,
                limit,
            } => self.learn_limit(*dimension, *window, *limit, now),
        }
    }

    /// The position of the limit a provider's reading for `dimension` over `window` describes:
    /// a configured one first, then a learned one.
    fn position(&self, dimension: Dimension, window: Window) -> Option<usize> {
        self.limits.matching(dimension, window).or_else(|| {
            let learned = &self.adaptive.as_deref()?.learned;
            limit::matching(learned, dimension, window).map(|i| self.limits.len() + i)
        })
    }

    /// Admits nothing before `until`; then the waiters leave at the limits' pace, one after
    /// another, never all at once.
    fn pause(&mut self, until: Duration, now: Duration) {
        self.paused_until = self.paused_until.max(nanos(until));
        for (limit, state) in self.each_mut() {
            // The first request may go at `until`; its tokens, and everyone after it, refill
            // at the limit's rate.
            let keep = u64::from(limit.dimension() == Dimension::Requests);
            limit.drain(state, keep, until, now);
        }
        if let Some(adaptive) = &mut self.adaptive {
            adaptive.pace.pause_until(until);
        }
    }

    /// Under an adaptive limit, a limit the provider reported where none is configured
    /// becomes a learned limit of the key (replacing an earlier reading of the same period).
    fn learn_limit(&mut self, dimension: Dimension, window: Window, limit: u64, now: Duration) {
        let (Some(period), Some(amount)) = (window.duration(), NonZeroU64::new(limit)) else {
            return;
        };
        if self.limits.matching(dimension, window).is_some() {
            return;
        }
        let (Some(adaptation), Ok(quota)) =
            (self.adaptive.as_deref_mut(), Quota::new(amount, period))
        else {
            return;
        };
        let reported = Limit::new(dimension, quota);
        let at = adaptation
            .learned
            .iter()
            .position(|l| l.dimension() == dimension && l.quota().period() == period);
        match at {
            Some(i) if adaptation.learned[i] == reported => return,
            Some(i) => {
                let before = adaptation.learned[i];
                let state = &mut adaptation.learned_states[i];
                let used = before
                    .capacity()
                    .saturating_sub(before.available(state, now));
                let mut fresh = reported.fresh_state();
                reported.take(&mut fresh, used, now);
                *state = fresh;
                adaptation.learned[i] = reported;
            }
            None if adaptation.learned.len() < MAX_LEARNED => {
                adaptation.learned.push(reported);
                adaptation.learned_states.push(reported.fresh_state());
            }
            None => return,
        }
        let ceiling = self.requests_ceiling();
        if let Some(adaptation) = &mut self.adaptive {
            adaptation.pace.set_limit_ceiling(ceiling);
        }
    }

    /// What admitting `cost` now would decide, without spending it.
    pub(super) fn outlook(&self, cost: &Cost, now: Duration) -> Outlook {
        let mut wait = self.paused(now);
        if let Some(adaptive) = &self.adaptive {
            wait = wait.max(adaptive.pace.wait(now));
        }
        let mut headroom = 1.0_f64;
        for (limit, state) in self.each() {
            let c = cost.get(limit.dimension());
            if c > limit.capacity() {
                return Outlook {
                    decision: too_large(limit, c),
                    headroom: f64::NEG_INFINITY,
                };
            }
            if let Admission::After(d) = limit.wait(state, c, now) {
                wait = wait.max(d);
            }
            let left = limit.available(state, now) as f64 - c as f64;
            headroom = headroom.min(left / limit.capacity().max(1) as f64);
        }
        let decision = if wait.is_zero() {
            QuotaDecision::Admitted
        } else {
            QuotaDecision::Wait(wait)
        };
        Outlook { decision, headroom }
    }

    /// The share of each dimension in use: the highest over that dimension's limits.
    pub(super) fn utilization(&self, now: Duration) -> Vec<(Dimension, f64)> {
        let mut used: Vec<(Dimension, f64)> = Vec::with_capacity(self.limits.len());
        for (limit, state) in self.each() {
            let capacity = limit.capacity();
            if capacity == 0 {
                continue;
            }
            let in_use = capacity.saturating_sub(limit.available(state, now));
            let share = in_use as f64 / capacity as f64;
            match used.iter_mut().find(|(d, _)| *d == limit.dimension()) {
                Some((_, highest)) => *highest = highest.max(share),
                None => used.push((limit.dimension(), share)),
            }
        }
        used
    }

    /// The learned rate, in requests per second, if the key learns one.
    pub(super) fn learned_rate(&self, now: Duration) -> Option<f64> {
        self.adaptive.as_ref().map(|a| a.pace.learned(now))
    }

    /// The learned rate when it moved by 1 % or more since last reported.
    pub(super) fn report_rate(&mut self, now: Duration) -> Option<f64> {
        self.adaptive.as_mut().and_then(|a| a.pace.report(now))
    }
}

/// The window a period is reported in.
fn window_of(period: Duration) -> Window {
    [Window::Second, Window::Minute, Window::Day]
        .into_iter()
        .find(|w| w.duration() == Some(period))
        .unwrap_or(Window::Unspecified)
}

pub(super) fn too_large(limit: &Limit, cost: u64) -> QuotaDecision {
    QuotaDecision::TooLarge {
        dimension: limit.dimension(),
        cost,
        capacity: limit.capacity(),
        period: limit.quota().period(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::LimitState;

    #[test]
    fn a_key_with_one_limit_is_small() {
        // Every state packs into 32 bytes, aligned to 8 (a 16-aligned `i128` or `u128` in a
        // state would make every one 48); one limit's state lives inline.
        assert_eq!(std::mem::size_of::<LimitState>(), 32);
        assert_eq!(std::mem::align_of::<LimitState>(), 8);
        assert_eq!(std::mem::size_of::<States>(), 32);
        assert_eq!(std::mem::size_of::<Limits>(), 8);
        assert_eq!(std::mem::size_of::<Entry>(), 56);
    }
}
