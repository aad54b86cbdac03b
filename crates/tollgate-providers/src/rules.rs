//! The steps every provider classifier shares: `x-should-retry`, the delay precedence, the
//! rate-limit snapshot and usage.

use std::time::SystemTime;

use http::{HeaderMap, StatusCode};
use tollgate_core::headers::{server_delay, should_retry};
use tollgate_core::{
    DelaySource, ErrorClass, RateLimitSnapshot, ResponseView, RetryAdvice, Usage, Verdict,
};

use crate::body::ErrorBody;
use crate::signals::body_delay;

/// How a provider's classifier differs from the others in the shared steps.
pub(crate) struct Spec {
    /// Whether the provider sends `x-should-retry` (OpenAI, Anthropic, Groq) and its SDK obeys it.
    pub(crate) should_retry: bool,
    /// The provider's rate-limit header family.
    pub(crate) snapshot: Snapshot,
    /// Whether the provider puts delay hints in error bodies.
    pub(crate) body_hints: bool,
    /// Whether the provider reports the tokens charged in `ratelimitbysize-query-cost` (Mistral).
    pub(crate) query_cost: bool,
    /// Whether the provider puts errors in the JSON body of a 2xx response (OpenRouter), so that
    /// body must be read too (event streams excepted: their errors come mid-stream).
    pub(crate) errors_in_success: bool,
}

/// [`Classify::needs_body`](tollgate_core::Classify::needs_body) for a provider: every error
/// status, and a non-streaming success when the provider reports errors inside those.
pub(crate) fn needs_body(status: StatusCode, headers: &HeaderMap, spec: &Spec) -> bool {
    status.as_u16() >= 400
        || (spec.errors_in_success && status.is_success() && !is_event_stream(headers))
}

/// Whether the response is an event stream (`text/event-stream`), whose errors come mid-stream.
pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .get(..17)
                .is_some_and(|t| t.eq_ignore_ascii_case("text/event-stream"))
        })
}

/// How a provider's rate-limit headers are read.
#[derive(Clone, Copy)]
pub(crate) enum Snapshot {
    /// The provider sends none.
    None,
    /// Resets as durations (OpenAI's family, Mistral's): the parser does not read the time, so
    /// the clock is not read for it.
    Relative(fn(&HeaderMap, SystemTime) -> RateLimitSnapshot),
    /// Resets as points in time (Anthropic's, OpenRouter's), read against the response's time.
    Absolute(fn(&HeaderMap, SystemTime) -> RateLimitSnapshot),
}

impl Snapshot {
    /// The snapshot of `view`'s headers.
    #[inline]
    fn read(self, view: &ResponseView<'_>) -> RateLimitSnapshot {
        if view.headers().is_empty() {
            return RateLimitSnapshot::new();
        }
        match self {
            Snapshot::None => RateLimitSnapshot::new(),
            Snapshot::Relative(parse) => parse(view.headers(), SystemTime::UNIX_EPOCH),
            Snapshot::Absolute(parse) => parse(view.headers(), view.time()),
        }
    }
}

/// What a provider's own rules decided about a failed response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure {
    pub(crate) class: ErrorClass,
    pub(crate) advice: RetryAdvice,
    /// Whether a body delay hint may be used (not for Gemini's per-day quotas).
    pub(crate) hints: bool,
}

impl Failure {
    pub(crate) const fn new(class: ErrorClass) -> Self {
        Failure {
            class,
            advice: class.default_advice(),
            hints: true,
        }
    }

    pub(crate) const fn advice(mut self, advice: RetryAdvice) -> Self {
        self.advice = advice;
        self
    }

    pub(crate) const fn no_hints(mut self) -> Self {
        self.hints = false;
        self
    }
}

/// Builds the verdict from a provider's decision. Inlined into each classifier: a success (the
/// common case) is a few stores, the failure's rules are [`failed`].
#[inline]
pub(crate) fn verdict(
    view: &ResponseView<'_>,
    body: &ErrorBody<'_>,
    failure: Option<Failure>,
    spec: &Spec,
) -> Verdict {
    let snapshot = spec.snapshot.read(view);
    let usage = body.usage.or_else(|| {
        spec.query_cost
            .then(|| header_usage(view.headers()))
            .flatten()
    });
    let Some(failure) = failure else {
        let mut verdict = Verdict::success()
            .with_status(view.status())
            .with_rate_limits(snapshot);
        if let Some(usage) = usage {
            verdict = verdict.with_usage(usage);
        }
        return verdict;
    };
    failed(view, body, failure, spec, snapshot, usage)
}

/// The verdict on a failed response.
fn failed(
    view: &ResponseView<'_>,
    body: &ErrorBody<'_>,
    failure: Failure,
    spec: &Spec,
    snapshot: RateLimitSnapshot,
    usage: Option<Usage>,
) -> Verdict {
    let mut advice = failure.advice;
    if spec.should_retry {
        match should_retry(view.headers()) {
            Some(false) if advice == RetryAdvice::SameTarget => advice = RetryAdvice::Never,
            Some(true) if !failure.class.is_deterministic() => advice = RetryAdvice::SameTarget,
            _ => {}
        }
    }

    let mut verdict = Verdict::failure(failure.class)
        .with_advice(advice)
        .with_status(view.status());
    let delay = server_delay(view.headers(), view.time())
        .or_else(|| {
            (spec.body_hints && failure.hints)
                .then(|| body_delay(body))
                .flatten()
                .map(|d| (d, DelaySource::BodyHint))
        })
        .or_else(|| {
            (failure.class == ErrorClass::RateLimited)
                .then(|| snapshot.exhausted_reset())
                .flatten()
                .map(|d| (d, DelaySource::ResetHeader))
        });
    if let Some((delay, source)) = delay {
        verdict = verdict.with_delay(delay, source);
    }
    if let Some(usage) = usage {
        verdict = verdict.with_usage(usage);
    }
    verdict.with_rate_limits(snapshot)
}

/// Mistral reports the tokens it charged in `ratelimitbysize-query-cost`.
fn header_usage(headers: &HeaderMap) -> Option<Usage> {
    let value = headers.get("ratelimitbysize-query-cost")?;
    let n: u64 = std::str::from_utf8(value.as_bytes())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Usage::new().with_total_tokens(n))
}

/// Implements `Classify`, `verdict` and `verdict_at` for a classifier with a
/// `fn failure(&self, status, headers, body) -> Option<Failure>` and a `SPEC`.
macro_rules! classifier {
    ($name:ident) => {
        impl $name {
            /// Classifies a response from its status, headers and (peeked) body, as received now.
            ///
            /// Any bytes are accepted: a body that is not JSON, not UTF-8 or truncated is judged
            /// from the status and headers (and its text, if any).
            pub fn verdict(
                &self,
                status: http::StatusCode,
                headers: &http::HeaderMap,
                body: &[u8],
            ) -> tollgate_core::Verdict {
                tollgate_core::Classify::classify(
                    self,
                    &tollgate_core::ResponseView::new(status, headers, body),
                )
            }
        }

        impl tollgate_core::Classify for $name {
            fn classify(
                &self,
                response: &tollgate_core::ResponseView<'_>,
            ) -> tollgate_core::Verdict {
                // Every success but an event stream's comes without a body: nothing to parse.
                let parsed;
                let body = if response.body().is_empty() {
                    &$crate::body::EMPTY
                } else {
                    parsed = $crate::body::ErrorBody::parse(response.body());
                    &parsed
                };
                let failure = self.failure(response.status(), response.headers(), body);
                $crate::rules::verdict(response, body, failure, &Self::SPEC)
            }

            fn needs_body(&self, status: http::StatusCode, headers: &http::HeaderMap) -> bool {
                $crate::rules::needs_body(status, headers, &Self::SPEC)
            }
        }
    };
}

pub(crate) use classifier;
