//! [`AnyStore`]: the in-process store, or any other store, chosen at run time.

use std::fmt;
use std::future::{Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tollgate_core::keyed::KeyStats;
use tollgate_core::{BoxError, Cost, Dimension, RouteKey};

use super::{Feedback, MemoryStore, Outlook, QuotaDecision, Store};
use crate::limit::Limits;

/// A [`MemoryStore`], or any other [`Store`] behind a pointer: for code that chooses where a
/// quota lives at run time, such as a router whose deployments may share their quotas with
/// other processes ([`Deployment::with_store`] in `tollgate-router`).
///
/// The in-process store's answers stay free of allocation; another store's are boxed. Clones
/// share the store.
///
/// [`Deployment::with_store`]: https://docs.rs/tollgate-router/latest/tollgate_router/struct.Deployment.html#method.with_store
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use tollgate_ratelimit::algorithm::Quota;
/// use tollgate_ratelimit::{AnyStore, Limit, Limits, MemoryStore, RateLimitLayer, Store};
///
/// let limits = Limits::new([Limit::requests(Quota::per_minute(NonZeroU64::new(60).unwrap()))]);
/// let store = AnyStore::from(MemoryStore::new(limits.clone()));
/// let layer = RateLimitLayer::from_store(store, limits);
/// assert_eq!(layer.handle().store().keys(), 0);
/// ```
#[derive(Clone)]
pub struct AnyStore {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Memory(Arc<MemoryStore>),
    Other(Arc<dyn ErasedStore>),
}

impl AnyStore {
    /// Any store, boxed.
    pub fn new<St: Store>(store: St) -> Self {
        AnyStore {
            kind: Kind::Other(Arc::new(store)),
        }
    }
}

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        AnyStore {
            kind: Kind::Memory(Arc::new(store)),
        }
    }
}

/// The answer of an [`AnyStore`]: ready at once from the in-process store, boxed from another.
pub struct AnyAdmit {
    answer: Answer,
}

enum Answer {
    Ready(Ready<Result<QuotaDecision, BoxError>>),
    Boxed(Pin<Box<dyn Future<Output = Result<QuotaDecision, BoxError>> + Send>>),
}

impl Future for AnyAdmit {
    type Output = Result<QuotaDecision, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().answer {
            Answer::Ready(ready) => Pin::new(ready).poll(cx),
            Answer::Boxed(boxed) => boxed.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for AnyAdmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyAdmit").finish_non_exhaustive()
    }
}

/// [`Store`] as a trait object: its answer boxed.
trait ErasedStore: Send + Sync + 'static {
    fn admit_boxed(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<QuotaDecision, BoxError>> + Send>>;
    fn feedback(&self, key: Option<&RouteKey>, feedback: &Feedback, now: Duration);
    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits);
    fn limits(&self, key: Option<&RouteKey>) -> Limits;
    fn keys(&self) -> usize;
    fn outlook(&self, key: Option<&RouteKey>, cost: &Cost, now: Duration) -> Option<Outlook>;
    fn utilization(&self, key: Option<&RouteKey>, now: Duration) -> Vec<(Dimension, f64)>;
    fn learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64>;
    fn sharing(&self) -> Option<bool>;
    fn report_learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64>;
    fn key_stats(&self) -> Option<KeyStats>;
    fn take_evicted(&self) -> u64;
}

impl<St: Store> ErasedStore for St {
    fn admit_boxed(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<QuotaDecision, BoxError>> + Send>> {
        Box::pin(Store::admit(self, key, cost, ahead, now))
    }
    fn feedback(&self, key: Option<&RouteKey>, feedback: &Feedback, now: Duration) {
        Store::feedback(self, key, feedback, now);
    }
    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits) {
        Store::set_limits(self, key, limits);
    }
    fn limits(&self, key: Option<&RouteKey>) -> Limits {
        Store::limits(self, key)
    }
    fn keys(&self) -> usize {
        Store::keys(self)
    }
    fn outlook(&self, key: Option<&RouteKey>, cost: &Cost, now: Duration) -> Option<Outlook> {
        Store::outlook(self, key, cost, now)
    }
    fn utilization(&self, key: Option<&RouteKey>, now: Duration) -> Vec<(Dimension, f64)> {
        Store::utilization(self, key, now)
    }
    fn learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        Store::learned_rate(self, key, now)
    }
    fn sharing(&self) -> Option<bool> {
        Store::sharing(self)
    }
    fn report_learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        Store::report_learned_rate(self, key, now)
    }
    fn key_stats(&self) -> Option<KeyStats> {
        Store::key_stats(self)
    }
    fn take_evicted(&self) -> u64 {
        Store::take_evicted(self)
    }
}

impl AnyStore {
    /// The store behind it, for every method but `admit`.
    fn methods(&self) -> &dyn ErasedStore {
        match &self.kind {
            Kind::Memory(store) => &**store,
            Kind::Other(store) => &**store,
        }
    }
}

impl Store for AnyStore {
    type Future = AnyAdmit;

    fn admit(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> AnyAdmit {
        let answer = match &self.kind {
            Kind::Memory(store) => Answer::Ready(store.admit(key, cost, ahead, now)),
            Kind::Other(store) => Answer::Boxed(store.admit_boxed(key, cost, ahead, now)),
        };
        AnyAdmit { answer }
    }

    fn feedback(&self, key: Option<&RouteKey>, feedback: &Feedback, now: Duration) {
        self.methods().feedback(key, feedback, now);
    }

    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits) {
        self.methods().set_limits(key, limits);
    }

    fn limits(&self, key: Option<&RouteKey>) -> Limits {
        self.methods().limits(key)
    }

    fn keys(&self) -> usize {
        self.methods().keys()
    }

    fn outlook(&self, key: Option<&RouteKey>, cost: &Cost, now: Duration) -> Option<Outlook> {
        self.methods().outlook(key, cost, now)
    }

    fn utilization(&self, key: Option<&RouteKey>, now: Duration) -> Vec<(Dimension, f64)> {
        self.methods().utilization(key, now)
    }

    fn learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        self.methods().learned_rate(key, now)
    }

    fn sharing(&self) -> Option<bool> {
        self.methods().sharing()
    }

    fn report_learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        self.methods().report_learned_rate(key, now)
    }

    fn key_stats(&self) -> Option<KeyStats> {
        self.methods().key_stats()
    }

    fn take_evicted(&self) -> u64 {
        self.methods().take_evicted()
    }
}

impl fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Memory(store) => f.debug_tuple("AnyStore").field(store).finish(),
            Kind::Other(_) => f.debug_tuple("AnyStore").field(&"..").finish(),
        }
    }
}
