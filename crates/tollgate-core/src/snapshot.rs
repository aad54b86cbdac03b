//! [`RateLimitSnapshot`]: what the provider's rate-limit headers said about the caller's quota.

use std::fmt;
use std::time::Duration;

/// A quantity that a provider limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Dimension {
    /// Requests.
    Requests,
    /// Tokens, input and output together (OpenAI's TPM, Anthropic's combined token limit).
    Tokens,
    /// Input (prompt) tokens only (Anthropic's ITPM).
    InputTokens,
    /// Output (completion) tokens only (Anthropic's OTPM).
    OutputTokens,
}

impl Dimension {
    /// Every dimension, in declaration order; `Dimension::ALL[d.index()] == d`.
    pub const ALL: [Dimension; 4] = [
        Dimension::Requests,
        Dimension::Tokens,
        Dimension::InputTokens,
        Dimension::OutputTokens,
    ];

    /// The position of this dimension in [`Dimension::ALL`], for array-indexed tables.
    pub const fn index(self) -> usize {
        match self {
            Dimension::Requests => 0,
            Dimension::Tokens => 1,
            Dimension::InputTokens => 2,
            Dimension::OutputTokens => 3,
        }
    }

    /// A stable `snake_case` name for labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dimension::Requests => "requests",
            Dimension::Tokens => "tokens",
            Dimension::InputTokens => "input_tokens",
            Dimension::OutputTokens => "output_tokens",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The period a provider's limit applies to, as the provider means it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Window {
    /// Per second.
    Second,
    /// Per minute (RPM, TPM).
    Minute,
    /// Per day (Groq's request headers; daily token caps).
    Day,
    /// Per month (Mistral's monthly token budget).
    Month,
    /// The provider does not say (OpenRouter).
    Unspecified,
}

impl Window {
    /// The window's length, or `None` for [`Window::Month`] (calendar-dependent) and
    /// [`Window::Unspecified`].
    pub const fn duration(self) -> Option<Duration> {
        match self {
            Window::Second => Some(Duration::from_secs(1)),
            Window::Minute => Some(Duration::from_secs(60)),
            Window::Day => Some(Duration::from_secs(86_400)),
            Window::Month | Window::Unspecified => None,
        }
    }

    /// A stable `snake_case` name for labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Day => "day",
            Window::Month => "month",
            Window::Unspecified => "unspecified",
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One limit as the provider reported it. Each part is `None` when its header was absent or
/// could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LimitReading {
    /// The whole allowance for the window.
    pub limit: Option<u64>,
    /// What is left of it now.
    pub remaining: Option<u64>,
    /// How long from when the response was received until the allowance is *fully* refilled.
    pub reset: Option<Duration>,
}

impl LimitReading {
    /// An empty reading.
    pub const fn new() -> Self {
        LimitReading {
            limit: None,
            remaining: None,
            reset: None,
        }
    }

    /// Sets the limit.
    #[must_use]
    pub const fn with_limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the remaining allowance.
    #[must_use]
    pub const fn with_remaining(mut self, remaining: u64) -> Self {
        self.remaining = Some(remaining);
        self
    }

    /// Sets the time until the allowance is fully refilled.
    #[must_use]
    pub const fn with_reset(mut self, reset: Duration) -> Self {
        self.reset = Some(reset);
        self
    }

    /// Whether nothing was read.
    pub const fn is_empty(&self) -> bool {
        self.limit.is_none() && self.remaining.is_none() && self.reset.is_none()
    }

    /// Whether the allowance is used up (`remaining` is reported as 0).
    pub const fn is_exhausted(&self) -> bool {
        matches!(self.remaining, Some(0))
    }
}

/// One entry of a [`RateLimitSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitEntry {
    /// What is limited.
    pub dimension: Dimension,
    /// Over which period.
    pub window: Window,
    /// What the provider reported.
    pub reading: LimitReading,
}

/// The rate-limit state a provider reported in one response's headers: limit, remaining and
/// reset for each dimension and window it reported.
///
/// Missing headers are normal (some providers send none, some omit them at times), so an empty
/// snapshot is an ordinary value, never an error. Each `(dimension, window)` pair appears at most
/// once.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::{Dimension, LimitReading, RateLimitSnapshot, Window};
///
/// let mut snapshot = RateLimitSnapshot::new();
/// snapshot.set(
///     Dimension::Tokens,
///     Window::Minute,
///     LimitReading::new().with_limit(30_000).with_remaining(0).with_reset(Duration::from_secs(6)),
/// );
/// let tokens = snapshot.get(Dimension::Tokens, Window::Minute).unwrap();
/// assert_eq!(tokens.remaining, Some(0));
/// assert_eq!(snapshot.exhausted_reset(), Some(Duration::from_secs(6)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RateLimitSnapshot {
    entries: Vec<LimitEntry>,
}

impl RateLimitSnapshot {
    /// An empty snapshot (allocates nothing).
    pub const fn new() -> Self {
        RateLimitSnapshot {
            entries: Vec::new(),
        }
    }

    /// The snapshot of `readings`, each for a different dimension and window, in that order:
    /// what [`set`](Self::set) on each would give, with no allocation when every reading is
    /// empty and one of the exact size otherwise.
    pub(crate) fn of_distinct<const N: usize>(
        readings: [(Dimension, Window, LimitReading); N],
    ) -> Self {
        let stored = readings.iter().filter(|(_, _, r)| !r.is_empty()).count();
        if stored == 0 {
            return RateLimitSnapshot::new();
        }
        let mut entries = Vec::with_capacity(stored);
        for (dimension, window, reading) in readings {
            debug_assert!(
                entries
                    .iter()
                    .all(|e: &LimitEntry| (e.dimension, e.window) != (dimension, window))
            );
            if !reading.is_empty() {
                entries.push(LimitEntry {
                    dimension,
                    window,
                    reading,
                });
            }
        }
        RateLimitSnapshot { entries }
    }

    /// Whether no limit was reported.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The reported limits.
    pub fn entries(&self) -> &[LimitEntry] {
        &self.entries
    }

    /// The reading for one dimension and window, if reported.
    pub fn get(&self, dimension: Dimension, window: Window) -> Option<&LimitReading> {
        self.entries
            .iter()
            .find(|e| e.dimension == dimension && e.window == window)
            .map(|e| &e.reading)
    }

    /// Records a reading, replacing any earlier one for the same dimension and window. An empty
    /// reading is not stored.
    pub fn set(&mut self, dimension: Dimension, window: Window, reading: LimitReading) {
        self.entries
            .retain(|e| !(e.dimension == dimension && e.window == window));
        if !reading.is_empty() {
            self.entries.push(LimitEntry {
                dimension,
                window,
                reading,
            });
        }
    }

    /// Records a reading, keeping the parts of an existing one for the same dimension and window
    /// that the new reading leaves unset.
    pub fn merge(&mut self, dimension: Dimension, window: Window, reading: LimitReading) {
        let merged = match self.get(dimension, window) {
            Some(old) => LimitReading {
                limit: reading.limit.or(old.limit),
                remaining: reading.remaining.or(old.remaining),
                reset: reading.reset.or(old.reset),
            },
            None => reading,
        };
        self.set(dimension, window, merged);
    }

    /// The longest reset among the limits reported as used up (`remaining == 0`): how long until
    /// every exhausted allowance has refilled. This is the "reset headers" delay of the delay
    /// precedence (PROVIDERS.md §7, item 3.5).
    pub fn exhausted_reset(&self) -> Option<Duration> {
        self.entries
            .iter()
            .filter(|e| e.reading.is_exhausted())
            .filter_map(|e| e.reading.reset)
            .filter(|d| !d.is_zero())
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_distinct_is_set_on_each() {
        let some = LimitReading::new().with_limit(10);
        let other = LimitReading::new().with_remaining(0);
        let empty = LimitReading::new();
        for (a, b) in [(some, other), (empty, other), (some, empty), (empty, empty)] {
            let mut by_set = RateLimitSnapshot::new();
            by_set.set(Dimension::Requests, Window::Day, a);
            by_set.set(Dimension::Tokens, Window::Minute, b);
            let distinct = RateLimitSnapshot::of_distinct([
                (Dimension::Requests, Window::Day, a),
                (Dimension::Tokens, Window::Minute, b),
            ]);
            assert_eq!(distinct, by_set);
        }
        let nothing = RateLimitSnapshot::of_distinct([
            (Dimension::Requests, Window::Minute, empty),
            (Dimension::Tokens, Window::Minute, empty),
        ]);
        assert_eq!(nothing.entries.capacity(), 0);
    }
}
