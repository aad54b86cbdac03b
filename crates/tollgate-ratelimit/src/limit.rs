//! [`Limit`] and [`Limits`]: what a key may spend, per dimension, and with which algorithm.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tollgate_core::{Dimension, Window};

use crate::adaptive::{Adaptive, Ceiling};
use crate::algorithm::{
    Admission, Algorithm, FixedWindow, FixedWindowState, Gcra, GcraState, Quota,
    SlidingWindowCounter, SlidingWindowCounterState, SlidingWindowLog, SlidingWindowLogState,
    TokenBucket, TokenBucketState,
};

/// The admission algorithm of one [`Limit`]; see [`algorithm`](crate::algorithm) for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AlgorithmKind {
    /// [`TokenBucket`]: continuous refill, up to the quota's burst at once (the default; how
    /// Anthropic describes its own limits).
    #[default]
    TokenBucket,
    /// [`Gcra`]: the same admissions as the token bucket, in one integer of state.
    Gcra,
    /// [`FixedWindow`]: `limit` per window of `period`, counted from the layer's start.
    FixedWindow,
    /// [`SlidingWindowLog`]: exactly `limit` in any `period`; one entry per admission.
    SlidingWindowLog,
    /// [`SlidingWindowCounter`]: about `limit` in any `period`, from two counts.
    SlidingWindowCounter,
}

/// One quota on one dimension: "10,000 requests per minute", "500M tokens per day".
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use tollgate_core::Dimension;
/// use tollgate_ratelimit::{AlgorithmKind, Limit, algorithm::Quota};
///
/// let tpm = Limit::tokens(Quota::per_minute(NonZeroU64::new(200_000).unwrap()));
/// assert_eq!(tpm.dimension(), Dimension::Tokens);
/// assert_eq!(tpm.quota().period(), Duration::from_secs(60));
/// assert_eq!(tpm.algorithm(), AlgorithmKind::TokenBucket);
///
/// let exact = tpm.with_algorithm(AlgorithmKind::SlidingWindowLog);
/// assert_eq!(exact.capacity(), 200_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    dimension: Dimension,
    quota: Quota,
    algorithm: AlgorithmKind,
}

impl Limit {
    /// A token-bucket limit of `quota` on `dimension`.
    pub const fn new(dimension: Dimension, quota: Quota) -> Self {
        Limit {
            dimension,
            quota,
            algorithm: AlgorithmKind::TokenBucket,
        }
    }

    /// A limit on requests.
    pub const fn requests(quota: Quota) -> Self {
        Limit::new(Dimension::Requests, quota)
    }

    /// A limit on tokens, input and output together.
    pub const fn tokens(quota: Quota) -> Self {
        Limit::new(Dimension::Tokens, quota)
    }

    /// A limit on input tokens (Anthropic's ITPM).
    pub const fn input_tokens(quota: Quota) -> Self {
        Limit::new(Dimension::InputTokens, quota)
    }

    /// A limit on output tokens (Anthropic's OTPM).
    pub const fn output_tokens(quota: Quota) -> Self {
        Limit::new(Dimension::OutputTokens, quota)
    }

    /// The same limit, admitted by another algorithm.
    #[must_use]
    pub const fn with_algorithm(mut self, algorithm: AlgorithmKind) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// The dimension it counts.
    pub const fn dimension(&self) -> Dimension {
        self.dimension
    }

    /// How much per how long.
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The algorithm.
    pub const fn algorithm(&self) -> AlgorithmKind {
        self.algorithm
    }

    /// The largest cost it can ever admit at once: the burst for the bucket and GCRA, the
    /// limit for the windows.
    pub const fn capacity(&self) -> u64 {
        match self.algorithm {
            AlgorithmKind::TokenBucket | AlgorithmKind::Gcra => self.quota.burst(),
            _ => self.quota.limit(),
        }
    }

    /// Whether a provider's reading for `dimension` over `window` describes this limit: the
    /// same dimension and period (`Window::Unspecified` is matched by [`Limits`]).
    fn describes(&self, dimension: Dimension, window: Window) -> bool {
        self.dimension == dimension && window.duration() == Some(self.quota.period())
    }
}

// ===== dispatch over the algorithms =====

/// The state of one [`Limit`] for one key: 32 bytes (the log, whose entries live on the heap
/// anyway, is boxed so that it does not make every other state larger).
#[derive(Debug, Clone)]
pub(crate) enum LimitState {
    TokenBucket(TokenBucketState),
    Gcra(GcraState),
    FixedWindow(FixedWindowState),
    SlidingWindowLog(Box<SlidingWindowLogState>),
    SlidingWindowCounter(SlidingWindowCounterState),
}

macro_rules! dispatch {
    ($limit:expr, $state:expr, |$algorithm:ident, $s:ident| $body:expr) => {
        match ($limit.algorithm, $state) {
            (AlgorithmKind::TokenBucket, LimitState::TokenBucket($s)) => {
                let $algorithm = TokenBucket::new($limit.quota);
                $body
            }
            (AlgorithmKind::Gcra, LimitState::Gcra($s)) => {
                let $algorithm = Gcra::new($limit.quota);
                $body
            }
            (AlgorithmKind::FixedWindow, LimitState::FixedWindow($s)) => {
                let $algorithm = FixedWindow::new($limit.quota);
                $body
            }
            (AlgorithmKind::SlidingWindowLog, LimitState::SlidingWindowLog($s)) => {
                let $algorithm = SlidingWindowLog::new($limit.quota);
                $body
            }
            (AlgorithmKind::SlidingWindowCounter, LimitState::SlidingWindowCounter($s)) => {
                let $algorithm = SlidingWindowCounter::new($limit.quota);
                $body
            }
            _ => unreachable!("a limit's state always matches its algorithm"),
        }
    };
}

impl Limit {
    pub(crate) fn fresh_state(&self) -> LimitState {
        match self.algorithm {
            AlgorithmKind::TokenBucket => LimitState::TokenBucket(Default::default()),
            AlgorithmKind::Gcra => LimitState::Gcra(Default::default()),
            AlgorithmKind::FixedWindow => LimitState::FixedWindow(Default::default()),
            AlgorithmKind::SlidingWindowLog => LimitState::SlidingWindowLog(Default::default()),
            AlgorithmKind::SlidingWindowCounter => {
                LimitState::SlidingWindowCounter(Default::default())
            }
        }
    }

    #[inline]
    pub(crate) fn wait(&self, state: &LimitState, cost: u64, now: Duration) -> Admission {
        dispatch!(self, state, |a, s| a.wait(s, cost, now))
    }

    #[inline]
    pub(crate) fn try_take(&self, state: &mut LimitState, cost: u64, now: Duration) -> Admission {
        dispatch!(self, state, |a, s| a.try_take(s, cost, now))
    }

    pub(crate) fn take(&self, state: &mut LimitState, cost: u64, now: Duration) {
        dispatch!(self, state, |a, s| a.take(s, cost, now))
    }

    pub(crate) fn give(
        &self,
        state: &mut LimitState,
        amount: u64,
        taken_at: Duration,
        now: Duration,
    ) {
        dispatch!(self, state, |a, s| a.give(s, amount, taken_at, now))
    }

    pub(crate) fn drain(&self, state: &mut LimitState, keep: u64, until: Duration, now: Duration) {
        dispatch!(self, state, |a, s| a.drain(s, keep, until, now))
    }

    pub(crate) fn available(&self, state: &LimitState, now: Duration) -> u64 {
        dispatch!(self, state, |a, s| a.available(s, now))
    }

    pub(crate) fn is_fresh(&self, state: &LimitState, now: Duration) -> bool {
        dispatch!(self, state, |a, s| a.is_fresh(s, now))
    }

    /// How long until `total` could have been admitted, one capacity-sized part after another,
    /// if nothing else were: exact for the bucket and GCRA; for the windows, a whole period per
    /// further `limit`.
    pub(crate) fn eta(&self, state: &LimitState, total: u64, now: Duration) -> Duration {
        let capacity = self.capacity();
        let first = match self.wait(state, total.min(capacity), now) {
            Admission::Now | Admission::Never => Duration::ZERO,
            Admission::After(wait) => wait,
        };
        let rest = total.saturating_sub(capacity);
        if rest == 0 {
            return first;
        }
        let rest_nanos = crate::algorithm::mul_div_ceil(
            u128::from(rest),
            self.quota.period().as_nanos(),
            u128::from(self.quota.limit()),
        );
        first.saturating_add(Duration::from_nanos(rest_nanos))
    }
}

// ===== impl Limits =====

/// Every [`Limit`] a key is held to, admitted all or nothing: "500 RPM and 200K TPM", "2,000
/// RPM, 2M TPM and 5B tokens per day".
///
/// Cheap to clone (reference-counted). A `Limits` built anew is a new configuration: a
/// [`Store`](crate::Store) given one for a key that already has state carries over what that
/// key has used, limit by limit (matched by dimension and period).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use tollgate_ratelimit::{Limit, Limits, algorithm::Quota};
///
/// const fn n(v: u64) -> NonZeroU64 { NonZeroU64::new(v).unwrap() }
///
/// let limits = Limits::new([
///     Limit::requests(Quota::per_minute(n(2_000))),
///     Limit::tokens(Quota::per_minute(n(2_000_000))),
///     Limit::tokens(Quota::per_day(n(5_000_000_000))),
/// ]);
/// assert_eq!(limits.len(), 3);
/// ```
#[derive(Clone)]
pub struct Limits {
    // One pointer: every key's state holds a clone.
    inner: Arc<LimitsInner>,
}

struct LimitsInner {
    limits: Box<[Limit]>,
    adaptive: Option<Adaptive>,
    generation: u64,
}

impl Limits {
    fn build(limits: Box<[Limit]>, adaptive: Option<Adaptive>) -> Self {
        Limits {
            inner: Arc::new(LimitsInner {
                limits,
                adaptive,
                generation: next_generation(),
            }),
        }
    }
}

fn next_generation() -> u64 {
    static GENERATION: AtomicU64 = AtomicU64::new(1);
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

impl Limits {
    /// The given limits. None at all admits everything.
    pub fn new(limits: impl IntoIterator<Item = Limit>) -> Self {
        Limits::build(limits.into_iter().collect(), None)
    }

    /// No configured limit: the request rate is learned from the provider's answers
    /// ([`adaptive`](crate::adaptive)).
    pub fn adaptive(adaptive: Adaptive) -> Self {
        Limits::new([]).with_adaptive(adaptive)
    }

    /// These limits as ceilings of an adaptive limit: stray 429s lower the pace below them,
    /// never above ([`adaptive`](crate::adaptive)).
    #[must_use]
    pub fn with_adaptive(self, adaptive: Adaptive) -> Self {
        Limits::build(self.inner.limits.clone(), Some(adaptive))
    }

    /// The adaptive limit's configuration, if the rate is learned.
    pub fn adaptive_config(&self) -> Option<&Adaptive> {
        self.inner.adaptive.as_ref()
    }

    /// The requests limit with the shortest period, as a rate and a burst: what an adaptive
    /// limit treats as its ceiling.
    pub(crate) fn requests_ceiling(&self) -> Option<Ceiling> {
        requests_ceiling(&self.inner.limits)
    }

    /// No limit: everything is admitted at once.
    pub fn unlimited() -> Self {
        Limits::new([])
    }

    /// These limits and one more.
    #[must_use]
    pub fn with(self, limit: Limit) -> Self {
        let limits = self.inner.limits.iter().copied().chain([limit]).collect();
        Limits::build(limits, self.inner.adaptive)
    }

    /// The limits, in order.
    #[inline]
    pub fn as_slice(&self) -> &[Limit] {
        &self.inner.limits
    }

    /// How many limits.
    pub fn len(&self) -> usize {
        self.inner.limits.len()
    }

    /// Whether there are none (an adaptive limit may still pace requests).
    pub fn is_empty(&self) -> bool {
        self.inner.limits.is_empty()
    }

    /// An identity for this configuration, shared by its clones.
    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation
    }

    /// The position of the limit a provider's reading for `dimension` over `window` describes:
    /// the one with that dimension and period, or for [`Window::Unspecified`] the one with
    /// that dimension and the shortest period.
    pub fn matching(&self, dimension: Dimension, window: Window) -> Option<usize> {
        matching(&self.inner.limits, dimension, window)
    }
}

/// The position in `limits` of the one a provider's reading for `dimension` over `window`
/// describes (see [`Limits::matching`]).
pub(crate) fn matching(limits: &[Limit], dimension: Dimension, window: Window) -> Option<usize> {
    if let Some(i) = limits.iter().position(|l| l.describes(dimension, window)) {
        return Some(i);
    }
    if window != Window::Unspecified {
        return None;
    }
    limits
        .iter()
        .enumerate()
        .filter(|(_, l)| l.dimension == dimension)
        .min_by_key(|(_, l)| l.quota.period())
        .map(|(i, _)| i)
}

/// The requests limit with the shortest period in `limits` (see [`Limits::requests_ceiling`]).
pub(crate) fn requests_ceiling(limits: &[Limit]) -> Option<Ceiling> {
    limits
        .iter()
        .filter(|l| l.dimension == Dimension::Requests)
        .min_by_key(|l| l.quota.period())
        .map(|l| Ceiling {
            rate: l.quota.limit() as f64 / l.quota.period().as_secs_f64(),
            burst: l.capacity() as f64,
        })
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.adaptive {
            None => f.debug_list().entries(self.inner.limits.iter()).finish(),
            Some(adaptive) => f
                .debug_struct("Limits")
                .field("limits", &self.inner.limits)
                .field("adaptive", adaptive)
                .finish(),
        }
    }
}

impl PartialEq for Limits {
    fn eq(&self, other: &Self) -> bool {
        self.inner.limits == other.inner.limits && self.inner.adaptive == other.inner.adaptive
    }
}

impl FromIterator<Limit> for Limits {
    fn from_iter<I: IntoIterator<Item = Limit>>(iter: I) -> Self {
        Limits::new(iter)
    }
}
