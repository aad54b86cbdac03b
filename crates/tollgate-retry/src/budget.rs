//! [`RetryBudget`]: retries as a share of requests, so an outage cannot multiply the load.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tollgate_core::clock::{Origin, nanos};

/// One retry, in budget units: a request deposits its percentage in hundredths of a percent.
const RETRY: u64 = 10_000;

/// A retry budget shared by every clone: over a sliding window of `ttl`, at most
/// `percent` of the requests may be retried, plus `min_per_sec` retries per second however few
/// requests there are.
///
/// Each request deposits `percent / 100` of a retry, each retry withdraws a whole one, and
/// deposits older than `ttl` expire. Amounts are kept in hundredths of a percent of a retry,
/// so fractional percentages (0.5 %, 12.25 %) are exact: no rounding per request. The window
/// moves in tenths of `ttl`; concurrent callers may overdraw by the retries they take at the
/// same instant.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_retry::RetryBudget;
///
/// // 20% of requests, no floor, over 10 s.
/// let budget = RetryBudget::new(Duration::from_secs(10), 0, 20.0).unwrap();
/// let now = Duration::ZERO;
/// for _ in 0..10 {
///     budget.deposit(now);
/// }
/// assert!(budget.withdraw(now));
/// assert!(budget.withdraw(now));
/// assert!(!budget.withdraw(now)); // two retries for ten requests
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    /// The budget's own clock starts here, so every service sharing it counts on one clock.
    origin: Origin,
    slot_nanos: u64,
    floor: u64,
    deposit: u64,
    slots: Box<[Slot]>,
}

#[derive(Default)]
struct Slot {
    epoch: AtomicU64,
    deposits: AtomicU64,
    withdrawals: AtomicU64,
}

const SLOTS: u64 = 10;

/// A retry budget that cannot be built: the window is zero or too long, or the percentage is
/// negative, not a number, or above 1,000.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidBudget {
    ttl: Duration,
    percent: f64,
}

impl fmt::Display for InvalidBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid retry budget: window {:?} must be 10 ns to 584 years, percentage {} must be 0 to 1000",
            self.ttl, self.percent
        )
    }
}

impl std::error::Error for InvalidBudget {}

impl RetryBudget {
    /// A budget of `percent` of requests plus `min_per_sec` retries per second, over `ttl`.
    ///
    /// # Errors
    ///
    /// [`InvalidBudget`] when `ttl` is under 10 ns or over `u64::MAX` nanoseconds, or `percent`
    /// is not within 0 to 1,000.
    pub fn new(ttl: Duration, min_per_sec: u32, percent: f64) -> Result<Self, InvalidBudget> {
        let invalid = || InvalidBudget { ttl, percent };
        let ttl_nanos = u64::try_from(ttl.as_nanos()).map_err(|_| invalid())?;
        if ttl_nanos < SLOTS || !(0.0..=1_000.0).contains(&percent) {
            return Err(invalid());
        }
        // The floor: min_per_sec retries per second of the window, in budget units.
        let floor =
            (u128::from(min_per_sec) * u128::from(ttl_nanos) * u128::from(RETRY)) / 1_000_000_000;
        Ok(RetryBudget {
            inner: Arc::new(Inner {
                origin: Origin::new(),
                slot_nanos: ttl_nanos / SLOTS,
                floor: u64::try_from(floor).unwrap_or(u64::MAX),
                deposit: (percent * 100.0).round() as u64,
                slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            }),
        })
    }

    /// Time since the budget was made, on tokio's clock: what the retry layer passes as `now`,
    /// so that every service sharing the budget counts on one clock.
    pub fn elapsed(&self) -> Duration {
        self.inner.origin.elapsed()
    }

    fn epoch(&self, now: Duration) -> u64 {
        (nanos(now) / self.inner.slot_nanos).saturating_add(1)
    }

    /// The slot for `now`, emptied first if it last counted an older part of the window;
    /// `None` if it already counts a later one (`now` went back).
    fn slot(&self, now: Duration) -> Option<&Slot> {
        let epoch = self.epoch(now);
        let slot = &self.inner.slots[(epoch % SLOTS) as usize];
        let seen = slot.epoch.load(Ordering::Acquire);
        if seen > epoch {
            return None;
        }
        if seen < epoch
            && slot
                .epoch
                .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slot.deposits.store(0, Ordering::Release);
            slot.withdrawals.store(0, Ordering::Release);
        }
        Some(slot)
    }

    /// Counts a request (`now`: time on a clock that only moves forward, such as
    /// [`elapsed`](Self::elapsed)).
    pub fn deposit(&self, now: Duration) {
        if let Some(slot) = self.slot(now) {
            slot.deposits.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Takes one retry, if the budget holds one. Concurrent callers cannot overdraw it: each
    /// takes first and gives back if that went below zero.
    pub fn withdraw(&self, now: Duration) -> bool {
        let Some(slot) = self.slot(now) else {
            return false;
        };
        slot.withdrawals.fetch_add(1, Ordering::AcqRel);
        // The balance now includes this withdrawal: below zero means there was none to take.
        if self.raw_balance(now) < 0 {
            slot.withdrawals.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Whole retries left at `now`.
    pub fn available(&self, now: Duration) -> u64 {
        self.slot(now);
        u64::try_from(self.raw_balance(now).max(0)).unwrap_or(0) / RETRY
    }

    /// What the window holds, in budget units (negative: overdrawn).
    fn raw_balance(&self, now: Duration) -> i128 {
        let epoch = self.epoch(now);
        let (mut deposits, mut withdrawals) = (0u64, 0u64);
        for slot in self.inner.slots.iter() {
            let seen = slot.epoch.load(Ordering::Acquire);
            if seen.saturating_add(SLOTS) > epoch && seen <= epoch {
                deposits = deposits.saturating_add(slot.deposits.load(Ordering::Acquire));
                withdrawals = withdrawals.saturating_add(slot.withdrawals.load(Ordering::Acquire));
            }
        }
        i128::from(self.inner.floor) + i128::from(deposits) * i128::from(self.inner.deposit)
            - i128::from(withdrawals) * i128::from(RETRY)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field(
                "window",
                &Duration::from_nanos(self.inner.slot_nanos * SLOTS),
            )
            .field("percent", &(self.inner.deposit as f64 / 100.0))
            .finish_non_exhaustive()
    }
}
