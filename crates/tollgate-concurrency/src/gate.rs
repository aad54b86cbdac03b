//! [`Gate`]: one key's in-flight count, its cap, and the queue of waiters.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use parking_lot::Mutex;
use tollgate_core::Priority;
use tollgate_core::keyed::Idle;

use crate::adaptive::{Adaptive, Cap};

pub(crate) struct Gate {
    in_flight: AtomicU32,
    limit: AtomicU32,
    /// Waiters queued; zero means a release needs no lock.
    waiting: AtomicU32,
    queue: Mutex<Vec<Arc<Waiter>>>,
    next_seq: AtomicU64,
    adaptive: Option<Mutex<Adaptive>>,
    /// Smoothed latency in nanoseconds (0: not measured), for the refusal's hint.
    latency: AtomicU64,
    /// Bumped at each decrease of an adaptive cap: a drop signal from a request taken before
    /// the last decrease has been answered already.
    epoch: AtomicU32,
    initial: u32,
    /// The configured cap, so that a request's future needs no copy of it.
    cap: Cap,
}

/// A queued request: granted a permit by a release, or still waiting.
pub(crate) struct Waiter {
    seq: u64,
    priority: Priority,
    granted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// Why a request got no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The queue holds its maximum.
    Queue,
}

impl Gate {
    pub(crate) fn new(limit: &Cap) -> Self {
        Gate {
            in_flight: AtomicU32::new(0),
            limit: AtomicU32::new(limit.initial()),
            waiting: AtomicU32::new(0),
            queue: Mutex::new(Vec::new()),
            next_seq: AtomicU64::new(0),
            adaptive: limit
                .is_adaptive()
                .then(|| Mutex::new(Adaptive::new(limit))),
            latency: AtomicU64::new(0),
            epoch: AtomicU32::new(0),
            initial: limit.initial(),
            cap: *limit,
        }
    }

    /// The configured cap (fixed or adaptive).
    pub(crate) fn cap(&self) -> &Cap {
        &self.cap
    }

    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn limit(&self) -> u32 {
        self.limit.load(Ordering::Acquire)
    }

    pub(crate) fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Acquire)
    }

    pub(crate) fn latency(&self) -> Option<Duration> {
        match self.latency.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Takes a slot if one is free — only when nobody waits, so that a newcomer never passes a
    /// waiter.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        if self.waiting.load(Ordering::SeqCst) != 0 {
            return false;
        }
        self.take_slot()
    }

    #[inline]
    fn take_slot(&self) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Joins the queue, or takes a slot freed meanwhile (`Ok(None)`).
    pub(crate) fn enqueue(
        &self,
        priority: Priority,
        max_queue: u32,
    ) -> Result<Option<Arc<Waiter>>, Full> {
        let mut queue = self.queue.lock();
        // Announce the waiter before looking at the count: a release either sees it, or this
        // sees the release's freed slot.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        if queue.is_empty() && self.take_slot() {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Ok(None);
        }
        if queue.len() >= max_queue as usize {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Full::Queue);
        }
        let waiter = Arc::new(Waiter {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            priority,
            granted: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        let at = queue
            .iter()
            .position(|w| w.priority < priority)
            .unwrap_or(queue.len());
        queue.insert(at, Arc::clone(&waiter));
        Ok(Some(waiter))
    }

    /// Whether `waiter` holds a permit now; records `waker` otherwise.
    pub(crate) fn poll_grant(&self, waiter: &Waiter, waker: &Waker) -> bool {
        if waiter.granted.load(Ordering::Acquire) {
            return true;
        }
        let mut slot = waiter.waker.lock();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
        drop(slot);
        // Granted between the check and the registration: seen now.
        waiter.granted.load(Ordering::Acquire)
    }

    /// `waiter` gives up: leaves the queue, or, if it was granted meanwhile, gives the permit
    /// back.
    pub(crate) fn abandon(&self, waiter: &Waiter) {
        let mut queue = self.queue.lock();
        if let Some(at) = queue.iter().position(|w| w.seq == waiter.seq) {
            queue.remove(at);
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        drop(queue);
        if waiter.granted.load(Ordering::Acquire) {
            self.release();
        }
    }

    /// Frees a slot, handing it to the first waiter if any.
    #[inline]
    pub(crate) fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) != 0 {
            self.grant_waiters();
        }
    }

    /// Grants free slots to waiters, first first.
    #[inline(never)]
    fn grant_waiters(&self) {
        let mut wakers = Vec::new();
        {
            let mut queue = self.queue.lock();
            while !queue.is_empty() && self.take_slot() {
                let waiter = queue.remove(0);
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                waiter.granted.store(true, Ordering::Release);
                if let Some(waker) = waiter.waker.lock().take() {
                    wakers.push(waker);
                }
            }
        }
        // Woken outside the lock.
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Records a completed request for an adaptive cap; `dropped` for an overload, a 429 or a
    /// timeout.
    /// The current decrease epoch, for a permit to carry.
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Records a completed request taken at `epoch`: `dropped` for an overload, a 429 or a
    /// timeout (counted once per decrease: a burst of failures halves the cap once); `latency`
    /// of a success.
    pub(crate) fn record(&self, limit: &Cap, dropped: bool, latency: Option<Duration>, epoch: u32) {
        if dropped && epoch != self.epoch.load(Ordering::Acquire) {
            return;
        }
        if let Some(sample) = latency {
            let nanos = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX).max(1);
            let old = self.latency.load(Ordering::Relaxed);
            let smoothed = if old == 0 {
                nanos
            } else {
                old / 5 * 4 + nanos / 5
            };
            self.latency.store(smoothed.max(1), Ordering::Relaxed);
        }
        let Some(adaptive) = &self.adaptive else {
            return;
        };
        let before = {
            // Published under the lock, so that updates land in their order.
            let mut adaptive = adaptive.lock();
            let next = adaptive.update(limit, dropped, latency);
            let before = self.limit.swap(next, Ordering::AcqRel);
            if next < before {
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
            before
        };
        if self.limit.load(Ordering::Acquire) > before {
            self.grant_waiters();
        }
    }
}

impl Idle for Gate {
    /// A gate's idleness does not depend on the time.
    type Now = ();

    /// Nothing in flight, nobody waiting, the cap where it started: forgetting it loses
    /// nothing but an adaptive history.
    fn is_idle(&self, (): ()) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.waiting.load(Ordering::Acquire) == 0
            && self.limit.load(Ordering::Acquire) == self.initial
    }
}
