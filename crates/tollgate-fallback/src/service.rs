//! [`Fallback`]: the service, and the state its clones share.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::time::Instant;
use tollgate_core::body::BufferedBody;
use tollgate_core::clock::Origin;
use tollgate_core::{BoxError, Deadline, ErrorClass};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::kept::Kept;
use crate::target::{FallbackPolicy, Target};

/// Which list of targets a request is going through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chain {
    /// The primary (the inner service), then the fallbacks.
    Main,
    /// Larger-context models, after a context-window failure.
    ContextWindow,
    /// Other providers or models, after a content-policy refusal.
    ContentPolicy,
}

/// A target's cooldown, in one atomic word: until when it is skipped (nanoseconds since the
/// origin, the low [`UNTIL_BITS`] bits: about 2.3 years) and why (the high bits: the class of
/// the failure that set it, and whether a layer of this process refused locally — an open
/// breaker, a local quota).
#[derive(Default)]
pub(crate) struct Cooldown(AtomicU64);

const UNTIL_BITS: u32 = 56;
const UNTIL_MASK: u64 = (1 << UNTIL_BITS) - 1;
const LOCAL_BIT: u64 = 1 << 63;
/// The class as its place in [`ErrorClass::ALL`] plus one (zero: never cooled), in bits 56–62.
const CLASS_SHIFT: u32 = UNTIL_BITS;
const CLASS_MASK: u64 = 0x7f;

// Every class's code fits in its bits.
const _: () = assert!(ErrorClass::ALL.len() < CLASS_MASK as usize);

/// Why a target cooled down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cause {
    pub(crate) class: ErrorClass,
    pub(crate) local: bool,
}

impl Cooldown {
    pub(crate) fn until(&self) -> u64 {
        self.0.load(Ordering::Acquire) & UNTIL_MASK
    }

    /// Until when, and why, if it was ever cooled down.
    pub(crate) fn read(&self) -> (u64, Option<Cause>) {
        let word = self.0.load(Ordering::Acquire);
        let code = (word >> CLASS_SHIFT) & CLASS_MASK;
        let class = (code as usize)
            .checked_sub(1)
            .and_then(|i| ErrorClass::ALL.get(i).copied());
        let cause = class.map(|class| Cause {
            class,
            local: word & LOCAL_BIT != 0,
        });
        (word & UNTIL_MASK, cause)
    }

    /// Extends the cooldown to `until` for `cause`, never shortening it (a later end keeps its
    /// own cause). `until` saturates at about 2.3 years after the origin.
    pub(crate) fn extend(&self, until: u64, cause: Cause) {
        let until = until.min(UNTIL_MASK);
        // Its place in the declaration, as `ClassSet` numbers it.
        let code = cause.class as u64 + 1;
        let word = until | (code << CLASS_SHIFT) | if cause.local { LOCAL_BIT } else { 0 };
        // Only a later end replaces the word: `None` from the closure leaves it.
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                (until > old & UNTIL_MASK).then_some(word)
            });
    }
}

pub(crate) struct Shared<S> {
    /// Shared with the streams that may still fail after their response was handed back.
    pub(crate) policy: Arc<FallbackPolicy>,
    pub(crate) origin: Origin,
    pub(crate) primary: Arc<Cooldown>,
    pub(crate) primary_name: Arc<str>,
    pub(crate) fallbacks: Vec<(Target<S>, Arc<Cooldown>)>,
    pub(crate) context_window: Vec<(Target<S>, Arc<Cooldown>)>,
    pub(crate) content_policy: Vec<(Target<S>, Arc<Cooldown>)>,
}

impl<S> Shared<S> {
    pub(crate) fn new(
        policy: FallbackPolicy,
        primary_name: Arc<str>,
        fallbacks: Vec<Target<S>>,
        context_window: Vec<Target<S>>,
        content_policy: Vec<Target<S>>,
    ) -> Self {
        let cool =
            |targets: Vec<Target<S>>| targets.into_iter().map(|t| (t, Arc::default())).collect();
        Shared {
            policy: Arc::new(policy),
            origin: Origin::new(),
            primary: Arc::default(),
            primary_name,
            fallbacks: cool(fallbacks),
            context_window: cool(context_window),
            content_policy: cool(content_policy),
        }
    }

    /// Nanoseconds since the origin, on tokio's clock.
    pub(crate) fn now(&self) -> u64 {
        self.origin.elapsed_nanos()
    }

    pub(crate) fn chain(&self, chain: Chain) -> &[(Target<S>, Arc<Cooldown>)] {
        match chain {
            Chain::Main => &self.fallbacks,
            Chain::ContextWindow => &self.context_window,
            Chain::ContentPolicy => &self.content_policy,
        }
    }
}

/// Sends each request to the inner service (the primary) and, when its verdict says so, to the
/// next target. Built by [`FallbackLayer`](crate::FallbackLayer).
///
/// See the [crate docs](crate) for examples.
pub struct Fallback<S> {
    inner: S,
    shared: Arc<Shared<S>>,
}

impl<S> Fallback<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<S>>) -> Self {
        Fallback { inner, shared }
    }

    /// The primary.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The primary, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The primary, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ResBody> Service<http::Request<BufferedBody>> for Fallback<S>
where
    S: Service<http::Request<BufferedBody>, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, ResBody>;

    /// Readies the primary.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// Sends the request to the primary at once unless it is cooling down, keeping the request
    /// for the targets after it.
    fn call(&mut self, request: http::Request<BufferedBody>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        // Waiting for a cooling target is allowed until then; `None`: not at all.
        let give_up_at = {
            let max_wait = shared.policy.max_wait;
            let by_policy = (!max_wait.is_zero()).then_some(max_wait);
            Deadline::sooner(Deadline::of(&request), by_policy, Instant::now)
                .map(|end| shared.origin.offset_nanos(end.instant()))
        };
        // No clock read unless the primary ever cooled down.
        let until = shared.primary.until();
        if until == 0 || until <= shared.now() {
            // A copy kept for the targets after it; the primary gets the request itself.
            return ResponseFuture::calling_primary(&mut self.inner, request, shared, give_up_at);
        }
        let kept = Kept::whole(request);
        ResponseFuture::skipping_primary(self.inner.clone(), kept, shared, give_up_at)
    }
}

impl<S: Clone> Clone for Fallback<S> {
    fn clone(&self) -> Self {
        Fallback {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Fallback<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("inner", &self.inner)
            .field("policy", &self.shared.policy)
            .field("fallbacks", &self.shared.fallbacks.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(class: ErrorClass, local: bool) -> Cause {
        Cause { class, local }
    }

    /// Only a later end replaces a cooldown, with its cause; the end saturates below the cause's
    /// bits; every class and the local bit come back as they went in.
    #[test]
    fn a_cooldown_keeps_the_cause_of_its_latest_end() {
        let cooldown = Cooldown::default();
        assert_eq!(cooldown.read(), (0, None));
        cooldown.extend(40, cause(ErrorClass::ServerError, false));
        cooldown.extend(30, cause(ErrorClass::RateLimited, true));
        assert_eq!(
            cooldown.read(),
            (40, Some(cause(ErrorClass::ServerError, false)))
        );
        cooldown.extend(40, cause(ErrorClass::Connect, false));
        assert_eq!(cooldown.until(), 40);
        assert_eq!(
            cooldown.read().1,
            Some(cause(ErrorClass::ServerError, false))
        );
        cooldown.extend(41, cause(ErrorClass::Overloaded, true));
        assert_eq!(
            cooldown.read(),
            (41, Some(cause(ErrorClass::Overloaded, true)))
        );
        cooldown.extend(u64::MAX, cause(ErrorClass::Truncated, false));
        assert_eq!(
            cooldown.read(),
            (UNTIL_MASK, Some(cause(ErrorClass::Truncated, false)))
        );
        for class in ErrorClass::ALL {
            for local in [false, true] {
                let cooldown = Cooldown::default();
                cooldown.extend(7, cause(class, local));
                assert_eq!(cooldown.read(), (7, Some(cause(class, local))));
            }
        }
    }
}
