//! [`RetryPolicy`]: when to retry and how long to wait — a pure decision per attempt.

use std::time::Duration;

use tollgate_core::{DelaySource, ErrorClass, RetryAdvice, Verdict};

use crate::backoff::{Backoff, Jitter};
use crate::spread::Spread;

/// When to retry, and after how long.
///
/// [`decide`](Self::decide) is a pure function of the retry count, the verdict on the last
/// attempt, the previous delay and a random draw: the layer supplies the rest (time, budget).
///
/// # Examples
///
/// The default, the OpenAI SDK's behaviour, and a custom policy that starts overloads from
/// 30 s as PROVIDERS.md advises:
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::ErrorClass;
/// use tollgate_retry::{Backoff, Jitter, RetryPolicy};
///
/// let default = RetryPolicy::default();
/// assert_eq!(default.max_retries, 3);
///
/// let openai = RetryPolicy::openai();
/// assert_eq!(openai.max_retries, 2);
/// assert_eq!(openai.max_server_delay, Duration::from_secs(120));
///
/// let patient = RetryPolicy::default()
///     .with_max_retries(5)
///     .with_total_time(Duration::from_secs(300))
///     .with_class_backoff(
///         ErrorClass::Overloaded,
///         Backoff::exponential(Duration::from_secs(30), Duration::from_secs(120))
///             .with_jitter(Jitter::Proportional { percent: 25 }),
///     );
/// assert_eq!(patient.backoff_for(ErrorClass::Overloaded).base(), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Retries of an overload (Overloaded: 529, 503, …) before leaving it to a fallback.
    pub max_overloaded_retries: u32,
    /// The shortest wait before any retry: never an immediate one.
    pub min_delay: Duration,
    /// The longest server-requested delay honoured. A longer one is not retried early: the
    /// layer gives up at once with the requested delay, for a fallback or the caller to act on.
    /// It is compared with the server's own delay, before any
    /// [`server_delay_spread`](Self::server_delay_spread) is added. A delay too large to
    /// represent (a classifier's [`Duration::MAX`]) is above every cap, this one included.
    pub max_server_delay: Duration,
    /// A random extra on top of a server-given delay, so that callers told the same
    /// `retry-after` do not come back in the same millisecond (a herd). The server's delay (at
    /// least [`min_delay`](Self::min_delay)) is the floor; the wait is within
    /// `[floor, floor + spread.bound(floor)]`, drawn from the layer's random source.
    ///
    /// [`Spread::default()`] (up to 50 %, at most 5 s) in [`RetryPolicy::default`];
    /// [`Spread::None`] (exactly the server's delay) in [`openai`](Self::openai).
    ///
    /// It applies to every delay the **server** gave: `retry-after-ms`, `retry-after` seconds
    /// or HTTP-date, a body hint and an exhausted limit's reset. Not to
    /// [`DelaySource::LocalQuota`]: a local limiter's wait is computed for the state it
    /// actually holds, and callers it sends back together meet that limiter — which admits
    /// what fits and tells the rest their new exact wait — not the provider, so a herd there
    /// costs no provider request, and a spread would only add latency past the moment the
    /// quota frees.
    pub server_delay_spread: Spread,
    /// The longest time from the first attempt to the start of the last, if any (the
    /// request's deadline, when sooner, counts too).
    pub total_time: Option<Duration>,
    /// The backoff when the server gives no delay.
    pub backoff: Backoff,
    /// Backoffs for particular classes, in place of `backoff`.
    pub class_backoffs: Vec<(ErrorClass, Backoff)>,
    /// Whether a verdict that says "same target" for a class never retried otherwise —
    /// unauthorized, permission denied, not found, bad request — is retried: that advice
    /// comes from the server's `x-should-retry: true`. Off by default; on in
    /// [`openai`](Self::openai), as the SDK does. Quota and context-window failures are never
    /// retried either way.
    pub trust_server_advice: bool,
    /// Whether only `retry-after-ms` / `retry-after` delays are honoured, as the official SDKs
    /// do; otherwise body hints ("try again in 1.2s") and exhausted limits' resets are too,
    /// within the cap (above it, the backoff decides). Off by default; on in
    /// [`openai`](Self::openai).
    pub header_delays_only: bool,
    /// Whether an error no classifier recognised (advice "never", class `Unknown`) is
    /// retried as a connection failure, as the official SDKs retry every transport error.
    /// Off by default; on in [`openai`](Self::openai). A refusal from a tollgate layer below is
    /// never such an error: it carries its own verdict (an open breaker: an overload, to be
    /// tried elsewhere; a local quota or a full concurrency cap: a rate limit, elsewhere), so
    /// it is not retried on the same target.
    pub retry_unrecognized_errors: bool,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Retry after `delay`, which came from `source` (`DelaySource::None`: the backoff).
    Retry {
        /// The wait actually taken: for a server's delay, with the policy's
        /// [`server_delay_spread`](RetryPolicy::server_delay_spread) added.
        delay: Duration,
        /// Where it came from.
        source: DelaySource,
    },
    /// Not retryable here: hand the outcome back as it is (a success, a client error, or one
    /// that another target or the caller must handle).
    Stop,
    /// Retryable, but this layer gives up.
    GiveUp(GaveUp),
}

/// Why the layer gave up on a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GaveUp {
    /// Every retry was used.
    Attempts,
    /// The overload retries were used; the rest is for a fallback.
    Overloaded,
    /// The server asked for a longer wait than the policy honours.
    DelayAboveCap {
        /// The delay it asked for ([`Duration::MAX`]: a number too large to represent).
        requested: Duration,
    },
    /// The shared retry budget is empty.
    Budget,
    /// The wait would pass the request's deadline or the policy's total time.
    Deadline {
        /// The wait that did not fit (a server's delay with its spread added).
        wait: Duration,
    },
}

impl GaveUp {
    /// The wait that was not taken, when there was one: the server's delay above the cap, or
    /// the wait past the deadline.
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            GaveUp::DelayAboveCap { requested } => Some(*requested),
            GaveUp::Deadline { wait } => Some(*wait),
            _ => None,
        }
    }
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GaveUp::Attempts => f.write_str("every retry was used"),
            GaveUp::Overloaded => f.write_str("the target stays overloaded"),
            GaveUp::DelayAboveCap { requested } => {
                write!(
                    f,
                    "the server asked to wait {requested:?}, longer than honoured"
                )
            }
            GaveUp::Budget => f.write_str("the retry budget is empty"),
            GaveUp::Deadline { wait } => write!(f, "waiting {wait:?} would pass the deadline"),
        }
    }
}

impl Default for RetryPolicy {
    /// Three retries (two for overloads); server delays honoured up to 120 s and spread by up
    /// to 50 % (at most 5 s) on top ([`Spread::default`]); otherwise 0.5 s doubling to 8 s with
    /// full jitter; at least 50 ms between attempts.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            max_overloaded_retries: 2,
            min_delay: Duration::from_millis(50),
            max_server_delay: Duration::from_secs(120),
            server_delay_spread: Spread::default(),
            total_time: None,
            backoff: Backoff::exponential(Duration::from_millis(500), Duration::from_secs(8)),
            class_backoffs: Vec::new(),
            trust_server_advice: false,
            header_delays_only: false,
            retry_unrecognized_errors: false,
        }
    }
}

impl RetryPolicy {
    /// The official OpenAI SDK's behaviour (PROVIDERS.md §4): 2 retries; `0.5 s × 2ⁿ` capped
    /// at 8 s, times a random factor in `[0.75, 1.0]`; a server delay honoured when it is
    /// positive and at most 120 s, and above that no retry. `x-should-retry` is honoured by the
    /// classifier that judged the response (`OpenAi`'s, or any `ClassifyLayer` below), even on
    /// a status retried otherwise never ([`trust_server_advice`](Self::trust_server_advice)).
    ///
    /// # Herds
    ///
    /// Like the SDK, it waits **exactly** the server's delay
    /// ([`server_delay_spread`](Self::server_delay_spread) is [`Spread::None`]), and exact
    /// delays are herd-prone: a rate limit tells every caller that hit it "retry after 1 s", and
    /// each comes back at the same instant, to be limited together again. Keep a
    /// `RateLimitLayer` below the retry layer, which paces the returning callers to the quota,
    /// or spread the delays as [`RetryPolicy::default`] does:
    ///
    /// ```
    /// use tollgate_retry::{RetryPolicy, Spread};
    ///
    /// let spread = RetryPolicy::openai().with_server_delay_spread(Spread::default());
    /// assert_eq!(spread.server_delay_spread, RetryPolicy::default().server_delay_spread);
    /// assert_eq!(RetryPolicy::openai().server_delay_spread, Spread::None);
    /// ```
    pub fn openai() -> Self {
        RetryPolicy {
            max_retries: 2,
            max_overloaded_retries: 2,
            min_delay: Duration::from_millis(1),
            max_server_delay: Duration::from_secs(120),
            server_delay_spread: Spread::None,
            total_time: None,
            backoff: Backoff::exponential(Duration::from_millis(500), Duration::from_secs(8))
                .with_jitter(Jitter::Between { low: 75, high: 100 }),
            class_backoffs: Vec::new(),
            trust_server_advice: true,
            header_delays_only: true,
            retry_unrecognized_errors: true,
        }
    }

    /// With `n` retries after the first attempt.
    #[must_use]
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// With at most `n` retries of an overload.
    #[must_use]
    pub fn with_max_overloaded_retries(mut self, n: u32) -> Self {
        self.max_overloaded_retries = n;
        self
    }

    /// With at least `delay` before any retry.
    #[must_use]
    pub fn with_min_delay(mut self, delay: Duration) -> Self {
        self.min_delay = delay;
        self
    }

    /// Honouring server delays up to `cap`.
    #[must_use]
    pub fn with_max_server_delay(mut self, cap: Duration) -> Self {
        self.max_server_delay = cap;
        self
    }

    /// Spreading server-given delays by `spread` on top (the server's delay stays the floor);
    /// [`Spread::None`] waits exactly. See
    /// [`server_delay_spread`](Self::server_delay_spread).
    #[must_use]
    pub fn with_server_delay_spread(mut self, spread: Spread) -> Self {
        self.server_delay_spread = spread;
        self
    }

    /// Retrying a failure the server says to retry (`x-should-retry: true`) whatever its
    /// class, as the OpenAI SDK does; see
    /// [`trust_server_advice`](Self::trust_server_advice).
    #[must_use]
    pub fn with_trust_server_advice(mut self, trust: bool) -> Self {
        self.trust_server_advice = trust;
        self
    }

    /// Retrying only within `total` of the first attempt.
    #[must_use]
    pub fn with_total_time(mut self, total: Duration) -> Self {
        self.total_time = Some(total);
        self
    }

    /// With `backoff` when the server gives no delay.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// With `backoff` for failures of `class` (replacing an earlier one for it).
    #[must_use]
    pub fn with_class_backoff(mut self, class: ErrorClass, backoff: Backoff) -> Self {
        self.class_backoffs.retain(|(c, _)| *c != class);
        self.class_backoffs.push((class, backoff));
        self
    }

    /// The backoff for a failure of `class`.
    pub fn backoff_for(&self, class: ErrorClass) -> &Backoff {
        self.class_backoffs
            .iter()
            .find(|(c, _)| *c == class)
            .map_or(&self.backoff, |(_, b)| b)
    }

    /// What to do after an attempt judged `verdict`, when `retries` retries (of which
    /// `overloaded` after an overload) were already made and the last wait was `previous`;
    /// `draw` is a random number in `[0, 1)` for the backoff's jitter or the server delay's
    /// spread (one decision uses at most one of them).
    ///
    /// - A success, and a failure whose advice is not "same target" — quota, context window,
    ///   content policy, authentication, permission, not found, bad request, or anything the
    ///   server said not to retry — [`Stop`](Decision::Stop). Quota, context-window, content
    ///   policy and payload-too-large failures stop whatever the advice; unauthorized,
    ///   permission denied, not found, bad request and unclassified ones too, unless
    ///   [`trust_server_advice`](Self::trust_server_advice).
    /// - A `retry-after` delay above [`max_server_delay`](Self::max_server_delay) (the
    ///   server's own delay, before any spread; [`Duration::MAX`] always): give up at once,
    ///   carrying it — checked first, so it is carried even when the retries are spent.
    /// - Out of retries (or of overload retries): [`GiveUp`](Decision::GiveUp).
    /// - A server delay within the cap, at least [`min_delay`](Self::min_delay), is the floor of
    ///   the wait; [`server_delay_spread`](Self::server_delay_spread) adds a random extra on top
    ///   (not for [`DelaySource::LocalQuota`]).
    /// - Otherwise the class's backoff, kept within `[min_delay, backoff max]`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate_core::{DelaySource, ErrorClass, Verdict};
    /// use tollgate_retry::{Decision, GaveUp, RetryPolicy};
    ///
    /// let policy = RetryPolicy::openai();
    /// let limited = Verdict::failure(ErrorClass::RateLimited)
    ///     .with_delay(Duration::from_millis(1_500), DelaySource::RetryAfterMs);
    /// assert_eq!(
    ///     policy.decide(0, 0, &limited, Duration::ZERO, 0.3),
    ///     Decision::Retry { delay: Duration::from_millis(1_500), source: DelaySource::RetryAfterMs },
    /// );
    /// // The default spreads it: 1.5 s + 0.3 × 750 ms.
    /// assert_eq!(
    ///     RetryPolicy::default().decide(0, 0, &limited, Duration::ZERO, 0.3),
    ///     Decision::Retry { delay: Duration::from_millis(1_725), source: DelaySource::RetryAfterMs },
    /// );
    /// let far = limited.clone().with_delay(Duration::from_secs(600), DelaySource::RetryAfterSeconds);
    /// assert_eq!(
    ///     policy.decide(0, 0, &far, Duration::ZERO, 0.3),
    ///     Decision::GiveUp(GaveUp::DelayAboveCap { requested: Duration::from_secs(600) }),
    /// );
    /// assert_eq!(policy.decide(0, 0, &Verdict::failure(ErrorClass::QuotaExhausted), Duration::ZERO, 0.3), Decision::Stop);
    /// ```
    pub fn decide(
        &self,
        retries: u32,
        overloaded: u32,
        verdict: &Verdict,
        previous: Duration,
        draw: f64,
    ) -> Decision {
        self.decide_with(retries, overloaded, verdict, previous, || draw)
    }

    /// [`decide`](Self::decide), drawing only when the backoff or the spread needs a draw.
    pub(crate) fn decide_with(
        &self,
        retries: u32,
        overloaded: u32,
        verdict: &Verdict,
        previous: Duration,
        draw: impl FnOnce() -> f64,
    ) -> Decision {
        let Some(class) = verdict.class() else {
            return Decision::Stop;
        };
        if verdict.advice() != RetryAdvice::SameTarget
            || never_at_all(class)
            || (never_retried(class) && !self.trust_server_advice)
        {
            return Decision::Stop;
        }
        let header = matches!(
            verdict.delay_source(),
            DelaySource::RetryAfterMs
                | DelaySource::RetryAfterSeconds
                | DelaySource::RetryAfterDate
        );
        // The server's own request, or (unless the policy honours headers only) a body hint or
        // an exhausted limit's reset.
        let server_delay = verdict
            .delay()
            .filter(|_| header || !self.header_delays_only);
        // A requested delay above the cap is never retried early, and is carried whatever the
        // reason for giving up. A hint or reset above the cap is left to the backoff. The cap is
        // checked against the server's own delay (the floor), not the spread one; a delay too
        // large to represent (`Duration::MAX`) is above every cap.
        let above_cap = |d: &Duration| *d > self.max_server_delay || *d == Duration::MAX;
        if let Some(delay) = server_delay.filter(|d| above_cap(d) && header) {
            return Decision::GiveUp(GaveUp::DelayAboveCap { requested: delay });
        }
        if retries >= self.max_retries {
            return Decision::GiveUp(GaveUp::Attempts);
        }
        if class == ErrorClass::Overloaded && overloaded >= self.max_overloaded_retries {
            return Decision::GiveUp(GaveUp::Overloaded);
        }
        if let Some(delay) = server_delay.filter(|d| !above_cap(d)) {
            let floor = delay.max(self.min_delay);
            let source = verdict.delay_source();
            // A local quota's wait is exact: see `server_delay_spread`.
            let delay = match (source, self.server_delay_spread) {
                (DelaySource::LocalQuota, _) | (_, Spread::None) => floor,
                (_, spread) => spread.delay(floor, draw()),
            };
            return Decision::Retry { delay, source };
        }
        let backoff = self.backoff_for(class);
        let delay = backoff.delay(retries, previous, draw());
        Decision::Retry {
            delay: delay.max(self.min_delay),
            source: DelaySource::None,
        }
    }
}

/// Classes never retried against the same target: another try cannot change the account, the
/// prompt's length, the content or the size.
fn never_at_all(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::QuotaExhausted
            | ErrorClass::ContextWindowExceeded
            | ErrorClass::ContentPolicy
            | ErrorClass::PayloadTooLarge
    )
}

/// Classes not retried against the same target unless the server insists and the policy
/// trusts it: authentication, permission, not found, bad request, and failures nobody could
/// classify.
fn never_retried(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Unknown
            | ErrorClass::Unauthorized
            | ErrorClass::PermissionDenied
            | ErrorClass::NotFound
            | ErrorClass::BadRequest
    )
}
