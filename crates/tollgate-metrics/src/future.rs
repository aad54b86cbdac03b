//! [`ResponseFuture`]: the request, then what it came to, recorded.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use metrics::SharedString;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tollgate_core::{
    BoxError, ErrorClass, StreamEnd, StreamOutcome, StreamReport, Usage, Verdict, transport_verdict,
};

use crate::handles::RequestLabels;
use crate::observer::RequestObserver;
use crate::snapshot::Outcome;

pin_project! {
    /// The response future of [`Metrics`](crate::Metrics).
    ///
    /// # Cancellation
    ///
    /// Dropped before completing, the request is not recorded.
    ///
    /// # Streams
    ///
    /// A successful response whose stream is followed (it carries a
    /// [`StreamReport`](tollgate_core::StreamReport), as `ClassifyLayer` gives every event
    /// stream) is recorded when its stream ends: its latency runs to the end of the stream, a
    /// stream that fails half-way is recorded with its failure's class, and its tokens, time
    /// to first token and time per output token are recorded then. A stream the caller
    /// abandons is recorded as it stood at its head.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // `None` when nothing listens: the request passes through unrecorded.
        recording: Option<Recording>,
    }
}

/// What a recorded request carries to its end.
struct Recording {
    observer: Arc<RequestObserver>,
    span: tracing::Span,
    started: Instant,
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        inner: F,
        observer: Arc<RequestObserver>,
        span: tracing::Span,
        started: Instant,
    ) -> Self {
        ResponseFuture {
            inner,
            recording: Some(Recording {
                observer,
                span,
                started,
            }),
        }
    }

    /// A request nothing listens to: passed through, unrecorded.
    pub(crate) fn passing(inner: F) -> Self {
        ResponseFuture {
            inner,
            recording: None,
        }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<http::Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(recording) = this.recording.as_ref() else {
            return this.inner.poll(cx).map_err(Into::into);
        };
        let Recording {
            observer,
            span,
            started,
        } = recording;
        let _entered = span.enter();
        let outcome = ready!(this.inner.poll(cx)).map_err(Into::into);
        let latency = started.elapsed();
        let judged;
        let (verdict, status) = match &outcome {
            Ok(response) => (
                Verdict::of_response(response),
                Some(response.status().as_u16()),
            ),
            Err(error) => {
                judged = transport_verdict(&**error);
                (Some(&judged), None)
            }
        };
        // An error that gave up on a response (a retry layer's) still has its status.
        let status = status.or_else(|| verdict.and_then(Verdict::status).map(|s| s.as_u16()));
        let class = match (verdict, status) {
            (Some(verdict), _) => verdict.class(),
            (None, Some(status)) => http::StatusCode::from_u16(status)
                .ok()
                .and_then(ErrorClass::of_status),
            _ => None,
        };
        // An error is never a success, whatever a classifier said.
        let class = class.or(outcome.is_err().then_some(ErrorClass::Unknown));
        match outcome.as_ref().ok().and_then(StreamReport::of) {
            // A stream that may yet fail, and reports its tokens at its end: recorded then.
            Some(report) if class.is_none() => {
                let observer = Arc::clone(observer);
                let span = span.clone();
                let (started, verdict) = (*started, verdict.cloned());
                report.on_end(move |end| {
                    let _entered = span.enter();
                    let class = match end.outcome {
                        StreamOutcome::Failed(class) => Some(class),
                        _ => None,
                    };
                    let latency = end.ended_at.saturating_duration_since(started);
                    record(&observer, &span, class, status, latency, verdict.as_ref());
                    record_stream(&observer, started, end);
                });
            }
            _ => record(observer, span, class, status, latency, verdict),
        }
        Poll::Ready(outcome)
    }
}

/// A status as a label, without an allocation for the statuses providers answer with.
fn status_label(status: u16) -> SharedString {
    let known = match status {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        402 => "402",
        403 => "403",
        404 => "404",
        408 => "408",
        409 => "409",
        413 => "413",
        422 => "422",
        429 => "429",
        498 => "498",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        529 => "529",
        _ => return SharedString::from(status.to_string()),
    };
    SharedString::const_str(known)
}

/// A small count as a label, without an allocation below 10.
fn small(n: u32) -> SharedString {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match DIGITS.get(n as usize) {
        Some(digit) => SharedString::const_str(digit),
        None => SharedString::from(n.to_string()),
    }
}

fn record(
    observer: &RequestObserver,
    span: &tracing::Span,
    class: Option<ErrorClass>,
    status: Option<u16>,
    latency: std::time::Duration,
    verdict: Option<&Verdict>,
) {
    let labels = &observer.labels;
    let outcome = class.map_or("success", |c| c.as_str());
    let status_label = status.map_or(SharedString::const_str("none"), status_label);
    let attempts = observer.retries() + 1;
    let hops = observer.hops();
    let seconds = latency.as_secs_f64();
    let handles = observer.cache.get(&RequestLabels {
        route: labels.route.clone(),
        outcome,
        status: status_label,
        attempts: small(attempts),
        hops: small(hops),
    });
    handles.http_duration.record(seconds);
    handles.operation_duration.record(seconds);
    handles.requests.increment(1);
    if let Some(usage) = verdict.and_then(Verdict::usage) {
        token_histograms(labels, usage);
    }
    span.record("outcome", outcome);
    if let Some(status) = status {
        span.record("status", status);
    }
    span.record("attempts", attempts);
    span.record("hops", hops);
    tracing::info!(
        outcome,
        latency_ms = latency.as_millis() as u64,
        "request done"
    );
    if let Some(stats) = &observer.stats {
        stats.record(&Outcome {
            class,
            status,
            latency,
            retries: observer.retries(),
            retry_delay: observer.retry_delay(),
            hops,
            verdict,
        });
    }
}

/// The tokens of one answer in the OpenTelemetry GenAI histogram.
fn token_histograms(labels: &crate::labels::Labels, usage: &Usage) {
    for (kind, tokens) in [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
    ] {
        if let Some(tokens) = tokens {
            metrics::histogram!("gen_ai.client.token.usage",
                "gen_ai.system" => labels.provider.clone(), "route" => labels.route.clone(),
                "gen_ai.token.type" => kind)
            .record(tokens as f64);
        }
    }
}

/// What a stream tells at its end: its tokens, its time to first token and, for a completed
/// stream of more than one output token, its time per output token after the first.
fn record_stream(observer: &RequestObserver, started: Instant, end: &StreamEnd) {
    let labels = &observer.labels;
    if let Some(usage) = &end.usage {
        token_histograms(labels, usage);
        if let Some(stats) = &observer.stats {
            stats.tokens(usage);
        }
    }
    let Some(first) = end.first_data_at else {
        return;
    };
    let to_first_token = first.saturating_duration_since(started);
    metrics::histogram!("gen_ai.server.time_to_first_token",
        "gen_ai.system" => labels.provider.clone(), "route" => labels.route.clone())
    .record(to_first_token.as_secs_f64());
    if let Some(stats) = &observer.stats {
        stats.first_token(to_first_token);
    }
    let output = end.usage.and_then(|usage| usage.output_tokens).unwrap_or(0);
    if let (Some(streaming), true) = (end.streaming_time(), output > 1) {
        metrics::histogram!("gen_ai.server.time_per_output_token",
            "gen_ai.system" => labels.provider.clone(), "route" => labels.route.clone())
        .record(streaming.as_secs_f64() / (output - 1) as f64);
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
