//! [`TimeoutConfig`]: the time limits of one attempt, with defaults and presets for LLM calls.

use std::time::Duration;

/// The time limits of one attempt. Each is optional (`None`: no limit of that kind); each
/// expiry is a [`TimedOut`](crate::TimedOut) with a `Timeout` verdict.
///
/// | limit | from | to |
/// |---|---|---|
/// | `response_head` | the call | the response head (status and headers) |
/// | `first_chunk` | the response head | the first chunk of real data in the body (for a stream: the first token) |
/// | `idle` | a chunk of real data | the next one |
/// | `total` | the call | the end of the body |
///
/// In an event stream (`text/event-stream`), a chunk of nothing but comments (`: keep-alive`)
/// and blank lines is not real data: it neither ends the wait for the first chunk nor resets
/// the idle limit. (DeepSeek sends such keep-alives while a request is queued; an idle timer
/// they re-armed once ran 17.7 minutes instead of 300 s.)
///
/// # Defaults, and why
///
/// | limit | default | why |
/// |---|---|---|
/// | `response_head` | 10 min | a non-streamed completion's head comes with the whole answer, and a long answer from a reasoning model takes minutes; the official OpenAI and Anthropic SDKs wait 10 minutes |
/// | `first_chunk` | 10 min | a streamed response's head comes at once, then a reasoning model may think for minutes before its first token; DeepSeek queues a request up to 10 minutes before inference starts |
/// | `idle` | 2 min | once tokens flow, a model does not pause for minutes: a stream silent that long is stalled |
/// | `total` | 30 min | the longest an LLM call is worth waiting for (DeepSeek closes its connections at 30 minutes); it also bounds a stream kept alive by keep-alives alone |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_timeout::TimeoutConfig;
///
/// let defaults = TimeoutConfig::default();
/// assert_eq!(defaults.idle, Some(Duration::from_secs(120)));
///
/// // A chat front end that would rather fail over than wait: 20 s to the first token.
/// let snappy = TimeoutConfig::default()
///     .with_first_chunk(Duration::from_secs(20))
///     .with_total(Duration::from_secs(120));
/// assert_eq!(snappy.first_chunk, Some(Duration::from_secs(20)));
///
/// // Only a total time, as tower's `Timeout` has.
/// let total_only = TimeoutConfig::none().with_total(Duration::from_secs(60));
/// assert_eq!(total_only.response_head, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TimeoutConfig {
    /// From the call to the response head.
    pub response_head: Option<Duration>,
    /// From the response head to the first chunk of real data (the first token).
    pub first_chunk: Option<Duration>,
    /// Between two chunks of real data.
    pub idle: Option<Duration>,
    /// From the call to the end of the body.
    pub total: Option<Duration>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl TimeoutConfig {
    /// The defaults for LLM calls (see the table above).
    pub const fn new() -> Self {
        TimeoutConfig {
            response_head: Some(Duration::from_secs(10 * 60)),
            first_chunk: Some(Duration::from_secs(10 * 60)),
            idle: Some(Duration::from_secs(2 * 60)),
            total: Some(Duration::from_secs(30 * 60)),
        }
    }

    /// No limit at all (set the ones you want with the `with_*` setters).
    pub const fn none() -> Self {
        TimeoutConfig {
            response_head: None,
            first_chunk: None,
            idle: None,
            total: None,
        }
    }

    /// OpenAI: the defaults. Its reasoning models stream nothing while they think, so the first
    /// token may take minutes; its SDK's own timeout is 10 minutes.
    pub const fn openai() -> Self {
        TimeoutConfig::new()
    }

    /// Anthropic: the defaults, with a 1-minute idle limit — its streams send a `ping` event
    /// every few seconds, and thinking arrives as events too, so a minute of silence is a stall.
    pub const fn anthropic() -> Self {
        TimeoutConfig::new().with_idle(MINUTE)
    }

    /// Gemini: the defaults.
    pub const fn gemini() -> Self {
        TimeoutConfig::new()
    }

    /// DeepSeek: the defaults. It keeps a queued request's connection open with keep-alives
    /// (which count as nothing) for up to 10 minutes before inference starts, and closes it at
    /// 30 minutes.
    pub const fn deepseek() -> Self {
        TimeoutConfig::new()
    }

    /// Limits the time to the response head.
    #[must_use]
    pub const fn with_response_head(mut self, limit: Duration) -> Self {
        self.response_head = Some(limit);
        self
    }

    /// Limits the time from the response head to the first chunk of real data.
    #[must_use]
    pub const fn with_first_chunk(mut self, limit: Duration) -> Self {
        self.first_chunk = Some(limit);
        self
    }

    /// Limits the time between chunks of real data.
    #[must_use]
    pub const fn with_idle(mut self, limit: Duration) -> Self {
        self.idle = Some(limit);
        self
    }

    /// Limits the time from the call to the end of the body.
    #[must_use]
    pub const fn with_total(mut self, limit: Duration) -> Self {
        self.total = Some(limit);
        self
    }
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig::new()
    }
}

/// A [`TimeoutConfig`] in 32 bytes, for the futures and bodies that carry it: each limit in
/// nanoseconds, `u64::MAX` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packed {
    head: u64,
    first: u64,
    idle: u64,
    total: u64,
}

const NONE: u64 = u64::MAX;

fn pack(limit: Option<Duration>) -> u64 {
    limit.map_or(NONE, |d| u64::try_from(d.as_nanos()).unwrap_or(NONE - 1))
}

pub(crate) fn unpack(nanos: u64) -> Option<Duration> {
    (nanos != NONE).then(|| Duration::from_nanos(nanos))
}

impl Packed {
    pub(crate) fn new(config: &TimeoutConfig) -> Self {
        Packed {
            head: pack(config.response_head),
            first: pack(config.first_chunk),
            idle: pack(config.idle),
            total: pack(config.total),
        }
    }

    pub(crate) fn response_head(&self) -> Option<Duration> {
        unpack(self.head)
    }

    pub(crate) fn first_chunk(&self) -> Option<Duration> {
        unpack(self.first)
    }

    pub(crate) fn idle(&self) -> u64 {
        self.idle
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }
}
