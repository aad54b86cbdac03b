//! [`CircuitBreakerHandle`], the states and modes it reports and sets, and state-change events.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tollgate_core::RouteKey;
use tollgate_core::keyed::KeyStats;

use crate::config::BreakerConfig;
use crate::shared::{Shared, announce, state_of};

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls pass, and their outcomes are counted.
    Closed,
    /// Calls fail at once with [`CircuitOpen`](crate::CircuitOpen) until the open period ends.
    Open,
    /// A bounded number of probes pass; enough successes close it, a failure opens it again.
    HalfOpen,
}

/// How every breaker of a layer behaves, set through the handle at runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
#[repr(u8)]
pub enum Mode {
    /// Trip, refuse and probe as configured.
    #[default]
    Normal = 0,
    /// Let every call through, count nothing.
    Disabled = 1,
    /// Refuse every call.
    ForcedOpen = 2,
    /// Count and change state as configured, but never refuse a call: watch what the breaker
    /// would do before enforcing it.
    MetricsOnly = 3,
}

impl Mode {
    pub(crate) fn from_u8(raw: u8) -> Mode {
        match raw {
            1 => Mode::Disabled,
            2 => Mode::ForcedOpen,
            3 => Mode::MetricsOnly,
            _ => Mode::Normal,
        }
    }
}

/// A breaker changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateChange {
    /// Whose breaker (`None`: the unkeyed one).
    pub key: Option<RouteKey>,
    /// From.
    pub from: BreakerState,
    /// To.
    pub to: BreakerState,
    /// For a change to open: for how long.
    pub open_for: Option<Duration>,
}

/// Told of every [`StateChange`]. `()` ignores them; [`on_state_change_fn`] takes a closure.
pub trait OnStateChange {
    /// Called as the change happens, on the task that caused it.
    fn on_state_change(&self, change: &StateChange);
}

impl OnStateChange for () {
    fn on_state_change(&self, _: &StateChange) {}
}

/// A hook from a closure; see [`on_state_change_fn`].
#[derive(Clone, Copy)]
pub struct OnStateChangeFn<F> {
    f: F,
}

/// An [`OnStateChange`] hook from a closure.
///
/// # Examples
///
/// ```
/// use tollgate_circuit_breaker::{BreakerState, StateChange, on_state_change_fn};
///
/// let hook = on_state_change_fn(|change: &StateChange| {
///     if change.to == BreakerState::Open {
///         eprintln!("{:?} opened for {:?}", change.key, change.open_for);
///     }
/// });
/// # let _ = hook;
/// ```
pub const fn on_state_change_fn<F: Fn(&StateChange)>(f: F) -> OnStateChangeFn<F> {
    OnStateChangeFn { f }
}

impl<F> fmt::Debug for OnStateChangeFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnStateChangeFn").finish_non_exhaustive()
    }
}

impl<F: Fn(&StateChange)> OnStateChange for OnStateChangeFn<F> {
    fn on_state_change(&self, change: &StateChange) {
        (self.f)(change)
    }
}

/// A side handle on a layer's breakers: observe their state, open or close them by hand, set
/// the mode. Cheap to clone.
pub struct CircuitBreakerHandle<H = ()> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) hook: Arc<H>,
}

impl<H: OnStateChange> CircuitBreakerHandle<H> {
    /// The state of `key`'s breaker (`None`: the unkeyed one; a key never seen is closed).
    pub fn state(&self, key: Option<&str>) -> BreakerState {
        let key = key.map(RouteKey::from);
        match self.shared.find(key.as_ref()) {
            Some(breaker) => state_of(breaker.state()),
            None if key.is_some() => BreakerState::Closed,
            None => state_of(self.shared.unkeyed.state()),
        }
    }

    /// How long until `key`'s breaker lets a probe through, if it is open.
    pub fn retry_after(&self, key: Option<&str>) -> Option<Duration> {
        let key = key.map(RouteKey::from);
        let until = match self.shared.find(key.as_ref()) {
            Some(breaker) if breaker.state() == crate::breaker::OPEN => breaker.open_until(),
            None if key.is_none() && self.shared.unkeyed.state() == crate::breaker::OPEN => {
                self.shared.unkeyed.open_until()
            }
            _ => return None,
        };
        Some(Duration::from_nanos(
            until.saturating_sub(self.shared.now()),
        ))
    }

    /// Opens `key`'s breaker for at least `duration`: a server delay beyond the retry cap, a
    /// long cooldown for an exhausted quota. A longer open period already set stays.
    pub fn open_for(&self, key: Option<&str>, duration: Duration) {
        let key = key.map(RouteKey::from);
        let mut changes = Vec::new();
        let now = self.shared.now();
        match &key {
            Some(k) => match self.shared.keyed(k) {
                Ok((breaker, _)) => breaker.open_for(duration, now, &mut changes),
                // Every breaker is held by a request in flight: no room to hold this one open.
                Err(_) => return,
            },
            None => self.shared.unkeyed.open_for(duration, now, &mut changes),
        }
        announce(&*self.hook, key.as_ref(), &changes);
    }

    /// Closes `key`'s breaker at once, forgetting its counts.
    pub fn close(&self, key: Option<&str>) {
        let key = key.map(RouteKey::from);
        let mut changes = Vec::new();
        match (&key, self.shared.find(key.as_ref())) {
            (Some(_), Some(breaker)) => breaker.close(&mut changes),
            (Some(_), None) => {}
            (None, _) => self.shared.unkeyed.close(&mut changes),
        }
        announce(&*self.hook, key.as_ref(), &changes);
    }

    /// The configuration every breaker follows.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// Sets the mode of every breaker.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.set_mode(mode);
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.shared.mode()
    }

    /// How many keys have a breaker.
    pub fn keys(&self) -> usize {
        self.shared.keys()
    }

    /// How many keys have a breaker, the cap ([`BreakerConfig::max_keys`]), and how many
    /// breakers were evicted and new keys refused at the cap.
    pub fn key_stats(&self) -> KeyStats {
        self.shared.key_stats()
    }

    /// Forgets every idle keyed breaker (closed, nothing counted, nothing in flight) and
    /// returns how many remain.
    pub fn evict_idle(&self) -> usize {
        self.shared.evict_idle()
    }
}

impl<H> Clone for CircuitBreakerHandle<H> {
    fn clone(&self) -> Self {
        CircuitBreakerHandle {
            shared: Arc::clone(&self.shared),
            hook: Arc::clone(&self.hook),
        }
    }
}

impl<H> fmt::Debug for CircuitBreakerHandle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerHandle")
            .finish_non_exhaustive()
    }
}
