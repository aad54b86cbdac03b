//! [`View`]: what a key held at this replica's last answer from Redis, so that an outlook (a
//! router choosing among deployments) or a utilization reading (the metrics layer) needs no
//! round trip.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use tollgate_core::{Cost, Dimension};
use tollgate_ratelimit::{Outlook, QuotaDecision};

use crate::plan::Plan;

/// A key's state as of this replica's last answer, under the plan that answer was given for.
///
/// Other replicas spend the same quota meanwhile, so it is this replica's best knowledge,
/// refilled by the time since: it can be optimistic, never by more than what the others spent
/// since, and Redis has the last word on every admission.
pub(crate) struct View {
    /// When the question was asked, as time since the layer's origin.
    at: Duration,
    plan: Arc<Plan>,
    /// The key's pause left then, µs.
    pause_left: f64,
    /// The adaptive pace's wait for one more request then, µs.
    pace_left: f64,
    /// Per limit of the plan, its room then as µs of refill (negative: in debt).
    room: Vec<f64>,
}

/// The script's answer to an admission, read against the plan it was asked under.
pub(crate) struct Answer {
    pub(crate) decision: QuotaDecision,
    /// The learned rate in force, requests per second, under an adaptive limit.
    pub(crate) rate: Option<f64>,
    pub(crate) view: View,
}

impl Answer {
    /// Reads `{code, wait, pause, pace, room × n[, rate]}` (see the script), asked at `at`
    /// under `plan`; `None` when it is not that shape.
    pub(crate) fn read(value: &Value, plan: &Arc<Plan>, at: Duration) -> Option<Answer> {
        let Value::Array(items) = value else {
            return None;
        };
        let mut numbers = items.iter().map(|item| match item {
            Value::Int(v) => Some(*v),
            _ => None,
        });
        let mut next = || numbers.next().flatten();
        let decision = match (next()?, next()?) {
            (0, _) => QuotaDecision::Admitted,
            (1, wait) => QuotaDecision::Wait(Duration::from_micros(
                u64::try_from(wait).unwrap_or(0).max(1),
            )),
            _ => return None,
        };
        let (pause_left, pace_left) = (next()? as f64, next()? as f64);
        let n = plan.refill.len();
        let room = (0..n)
            .map(|_| next().map(|v| v as f64))
            .collect::<Option<Vec<f64>>>()?;
        let rate = if plan.is_adaptive() {
            Some(next()? as f64 / 1000.0)
        } else {
            None
        };
        if items.len() != 4 + n + usize::from(rate.is_some()) {
            return None;
        }
        let view = View {
            at,
            plan: Arc::clone(plan),
            pause_left,
            pace_left,
            room,
        };
        Some(Answer {
            decision,
            rate,
            view,
        })
    }
}

impl View {
    /// A key this replica has not asked Redis about, at `now`: every limit full as far as it
    /// knows.
    pub(crate) fn unseen(plan: &Arc<Plan>, now: Duration) -> View {
        View {
            at: now,
            plan: Arc::clone(plan),
            pause_left: 0.0,
            pace_left: 0.0,
            room: plan.refill.iter().map(|refill| refill.span).collect(),
        }
    }

    /// Whether it was seen under `plan` (limits changed since: it says nothing).
    pub(crate) fn is_under(&self, plan: &Arc<Plan>) -> bool {
        Arc::ptr_eq(&self.plan, plan)
    }

    /// Each limit of the plan with its room `elapsed` µs after the answer: what it held then,
    /// refilled since, at most its burst.
    fn rooms(&self, elapsed: f64) -> impl Iterator<Item = (Dimension, f64, f64, f64)> + '_ {
        let limits = self.plan.limits.as_slice().iter();
        limits
            .zip(&self.plan.refill)
            .zip(&self.room)
            .map(move |((limit, refill), room)| {
                let span = refill.span.max(f64::MIN_POSITIVE);
                let room = (room + elapsed).min(span);
                (limit.dimension(), room, refill.interval, span)
            })
    }

    /// The µs from the question to `now`.
    fn elapsed(&self, now: Duration) -> f64 {
        now.saturating_sub(self.at).as_micros() as f64
    }

    /// What admitting `cost` at `now` would decide, and the headroom it would leave.
    pub(crate) fn outlook(&self, cost: &Cost, now: Duration) -> Outlook {
        let elapsed = self.elapsed(now);
        let mut wait = (self.pause_left - elapsed).max(self.pace_left - elapsed);
        let mut headroom = 1.0_f64;
        for (dimension, room, interval, span) in self.rooms(elapsed) {
            let need = cost.get(dimension) as f64 * interval;
            wait = wait.max(need - room);
            headroom = headroom.min((room - need) / span);
        }
        Outlook {
            decision: decision(wait),
            headroom,
        }
    }

    /// How much of each dimension's busiest limit is in use at `now`.
    pub(crate) fn utilization(&self, now: Duration) -> Vec<(Dimension, f64)> {
        let mut used: Vec<(Dimension, f64)> = Vec::with_capacity(self.room.len());
        for (dimension, room, _, span) in self.rooms(self.elapsed(now)) {
            let share = (1.0 - room / span).clamp(0.0, 1.0);
            match used.iter_mut().find(|(d, _)| *d == dimension) {
                Some((_, highest)) => *highest = highest.max(share),
                None => used.push((dimension, share)),
            }
        }
        used
    }
}

/// Admitted when nothing is left to wait, else the wait rounded up to a microsecond.
fn decision(wait_micros: f64) -> QuotaDecision {
    if wait_micros <= 0.0 {
        QuotaDecision::Admitted
    } else {
        QuotaDecision::Wait(Duration::from_micros(wait_micros.ceil() as u64))
    }
}
