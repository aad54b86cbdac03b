//! [`QuotaDecision`] and [`Outlook`], what a store answers to an admission, and [`Feedback`], what
//! it is told about a response.

use std::time::Duration;

use tollgate_core::{Cost, Dimension, Window};

/// What a store answers to an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaDecision {
    /// Admitted: the cost is spent on every limit.
    Admitted,
    /// Not now: nothing was spent; try again after this long.
    Wait(Duration),
    /// Never: the cost on `dimension` exceeds what `limit` can ever hold at once.
    TooLarge {
        /// The dimension.
        dimension: Dimension,
        /// The cost asked for.
        cost: u64,
        /// The most that limit admits at once.
        capacity: u64,
        /// The limit's period.
        period: Duration,
    },
}

/// What admitting a cost would come to now, found without spending anything: for routers
/// that choose among several limited deployments.
#[derive(Debug, Clone, PartialEq)]
pub struct Outlook {
    /// What admission would decide now, were nobody waiting ahead.
    pub decision: QuotaDecision,
    /// The smallest share of a limit's capacity that would be left after the cost, over the
    /// limits: 1 with nothing used and nothing asked, 0 when the cost uses the last of a limit,
    /// below 0 when it does not fit now.
    pub headroom: f64,
}

/// What the provider's response told the limiter about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Feedback {
    /// The request admitted at `taken_at` used less than it was charged: give this back, per
    /// dimension (the windows only from where that admission counted).
    Refund {
        /// What to give back.
        cost: Cost,
        /// When the request was admitted (time since the layer's origin).
        taken_at: Duration,
    },
    /// The request used more than it was charged: spend this too, per dimension (it may put
    /// the quota into debt, which later admissions wait out).
    Charge(Cost),
    /// The provider says only `remaining` is left on `dimension` over `window`: never believe
    /// in more.
    Remaining {
        /// The dimension.
        dimension: Dimension,
        /// The period the provider means.
        window: Window,
        /// What it says is left.
        remaining: u64,
    },
    /// The provider asked every caller of this key to wait (a 429 with a delay): admit nothing
    /// before `until` (time since the layer's origin), then release the waiters at the
    /// limits' pace, never all at once.
    PauseUntil(Duration),
    /// The provider throttled a request admitted at `taken_at` (a 429, or an explicit
    /// overload): an adaptive limit lowers its rate, once per episode.
    Throttled {
        /// When the throttled request was admitted (time since the layer's origin).
        taken_at: Duration,
    },
    /// The provider reports a limit of `limit` on `dimension` over `window`: an adaptive limit
    /// adopts it where no limit is configured.
    Limit {
        /// The dimension.
        dimension: Dimension,
        /// The period the provider means.
        window: Window,
        /// The whole allowance per window.
        limit: u64,
    },
}
