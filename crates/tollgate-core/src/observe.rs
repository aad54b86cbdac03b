//! [`Observe`]: how the layers tell an observer (the metrics layer) what happened to a request.
//!
//! One mechanism for every layer: an outer layer puts an [`Observe`] in the request's
//! extensions, and each layer below that does something worth counting — schedules a retry,
//! waits for quota, refuses on an open circuit, moves to another target — reports an
//! [`Event`] to it. A request without one costs each layer one extension lookup.
//!
//! Events carry classes, durations, delay sources and target names — never a header value, a
//! key or a body.
//!
//! # Examples
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use tollgate_core::observe::{Event, Observe, Observer};
//!
//! #[derive(Default)]
//! struct Count(Mutex<u32>);
//!
//! impl Observer for Count {
//!     fn observe(&self, event: &Event<'_>) {
//!         if let Event::RetryScheduled { .. } = event {
//!             *self.0.lock().unwrap() += 1;
//!         }
//!     }
//! }
//!
//! let count = Arc::new(Count::default());
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(Observe::new(count.clone()));
//! // A layer below reports:
//! if let Some(observe) = Observe::of(&request) {
//!     observe.event(&Event::RetryScheduled {
//!         attempt: 1,
//!         class: None,
//!         delay: Duration::from_millis(500),
//!         source: tollgate_core::DelaySource::None,
//!     });
//! }
//! assert_eq!(*count.0.lock().unwrap(), 1);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{DelaySource, Dimension, ErrorClass, RouteKey};

/// Something a layer did to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Attempt `attempt` failed and the retry layer will try again after `delay`.
    RetryScheduled {
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Its class.
        class: Option<ErrorClass>,
        /// The wait before the next attempt.
        delay: Duration,
        /// Where the wait came from.
        source: DelaySource,
    },
    /// The retry layer gave up after `attempts` attempts.
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's class.
        class: Option<ErrorClass>,
    },
    /// The rate limiter made the request wait for quota (`key`: whose).
    RateLimitWait {
        /// The key, if keyed.
        key: Option<&'a RouteKey>,
        /// How long it expects the wait to be.
        wait: Duration,
    },
    /// The rate limiter refused the request.
    RateLimitRefused {
        /// The key, if keyed.
        key: Option<&'a RouteKey>,
    },
    /// A circuit breaker changed state while the request's outcome was counted.
    BreakerTransition {
        /// The breaker's key, if keyed.
        key: Option<&'a RouteKey>,
        /// From (`closed`, `open`, `half_open`).
        from: &'static str,
        /// To.
        to: &'static str,
    },
    /// An open circuit refused the request.
    BreakerRefused {
        /// The breaker's key, if keyed.
        key: Option<&'a RouteKey>,
    },
    /// The fallback moved from one target to the next.
    FallbackHop {
        /// The target that failed.
        from: &'a str,
        /// Its class.
        class: Option<ErrorClass>,
    },
    /// The concurrency limit made the request wait for a slot.
    ConcurrencyWait {
        /// The key, if keyed.
        key: Option<&'a RouteKey>,
    },
    /// How much of a local rate limit is in use after the request was admitted.
    RateLimitUtilization {
        /// The key, if keyed.
        key: Option<&'a RouteKey>,
        /// The dimension.
        dimension: Dimension,
        /// Used, in thousandths of the limit's capacity.
        per_mille: u16,
    },
    /// The request rate an adaptive limit learned for `key` moved by 1 % or more.
    RateLearned {
        /// The key, if keyed.
        key: Option<&'a RouteKey>,
        /// The learned rate, in requests per minute (rounded).
        requests_per_minute: u64,
    },
    /// Whether the rate limiter's quota is shared with other processes (a store such as
    /// Redis that answers), or not now (it is unreachable: the store applies its fallback).
    /// Reported on each admission by stores that share; never by an in-process one.
    QuotaShared {
        /// Shared now.
        shared: bool,
    },
    /// The router sent the request to a deployment.
    Routed {
        /// The deployment.
        deployment: &'a str,
    },
    /// The router took a deployment out of rotation: its key was rejected or its quota is
    /// spent.
    DeploymentEjected {
        /// The deployment.
        deployment: &'a str,
        /// Why: `Unauthorized`, `PermissionDenied` or `QuotaExhausted`.
        class: ErrorClass,
        /// For how long.
        duration: Duration,
    },
    /// A keyed layer's map of state per key ([`KeyedMap`](crate::keyed::KeyedMap)) was at its
    /// cap when the request brought a new key: it evicted `evicted` entries not in use to make
    /// room, or, with `refused`, turned the request away because every entry was in use.
    KeysAtCap {
        /// The layer: `ratelimit`, `breaker` or `concurrency`.
        layer: &'static str,
        /// Entries evicted (least recently used first), losing their state.
        evicted: u32,
        /// The new key was refused ([`TooManyKeys`](crate::keyed::TooManyKeys)).
        refused: bool,
    },
    /// The cache answered, or did not answer, a cacheable request. Reported once per
    /// cacheable request: `hit` when it was served from the cache, `coalesced` when it shared
    /// another identical request's upstream call, neither when it went upstream (a miss).
    CacheLookup {
        /// Served from the cache: no upstream call.
        hit: bool,
        /// Served by another identical request's upstream call, made while it waited.
        coalesced: bool,
    },
}

/// Receives every [`Event`] of the requests it is attached to.
pub trait Observer: Send + Sync + 'static {
    /// Called as the event happens, on the task that handles the request.
    fn observe(&self, event: &Event<'_>);
}

/// The request extension that carries an [`Observer`] to the layers below. Cheap to clone.
#[derive(Clone)]
pub struct Observe(Arc<dyn Observer>);

impl Observe {
    /// Attaches `observer`.
    pub fn new(observer: Arc<dyn Observer>) -> Self {
        Observe(observer)
    }

    /// The observer attached to `request`, if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<&Observe> {
        request.extensions().get::<Observe>()
    }

    /// Reports `event`.
    pub fn event(&self, event: &Event<'_>) {
        self.0.observe(event);
    }
}

/// Reports [`Event::KeysAtCap`] to `request`'s observer, if it has one: the keyed map of
/// `layer` evicted `evicted` entries to make room for the request's key, or `refused` it.
#[cold]
pub fn report_keys_at_cap<B>(
    request: &http::Request<B>,
    layer: &'static str,
    evicted: usize,
    refused: bool,
) {
    if let Some(observe) = Observe::of(request) {
        observe.event(&Event::KeysAtCap {
            layer,
            evicted: u32::try_from(evicted).unwrap_or(u32::MAX),
            refused,
        });
    }
}

impl fmt::Debug for Observe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observe").finish_non_exhaustive()
    }
}
