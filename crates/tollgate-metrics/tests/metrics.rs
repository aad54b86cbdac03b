//! `MetricsLayer` over a full stack on tokio's paused clock: the exact snapshot after a
//! scripted sequence, what the Prometheus exporter reads, and that a request's API key leaves
//! no trace in any label, span, event or error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use metrics_exporter_prometheus::PrometheusBuilder;
use tollgate_circuit_breaker::{BreakerConfig, CircuitBreakerLayer};
use tollgate_core::body::{BufferBodyLayer, BufferedBody};
use tollgate_core::{BoxError, Dimension};
use tollgate_metrics::{Level, MetricsLayer, Signal};
use tollgate_providers::{ClassifyLayer, OpenAi};
use tollgate_retry::{RetryLayer, RetryPolicy, Spread, rng_fn};
use tower::{ServiceBuilder, ServiceExt};

type Reply = Box<dyn Fn() -> Result<Response<String>, BoxError> + Send + Sync>;

/// Answers from a script, one reply per attempt.
#[derive(Clone)]
struct Script(Arc<Mutex<Vec<Reply>>>);

impl Script {
    fn new(replies: Vec<Reply>) -> Self {
        Script(Arc::new(Mutex::new(replies.into_iter().rev().collect())))
    }
}

impl tower::Service<Request<BufferedBody>> for Script {
    type Response = Response<String>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response<String>, BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<BufferedBody>) -> Self::Future {
        let reply = self.0.lock().unwrap().pop().expect("a scripted reply");
        std::future::ready(reply())
    }
}

fn reply(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> Reply {
    Box::new(move || {
        let mut response = Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        Ok(response.body(body.to_owned()).unwrap())
    })
}

const TOO_LONG: &str = r#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}"#;

fn chat() -> Request<String> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("authorization", "Bearer sk-SECRET-0123456789")
        .header("x-api-key", "sk-ant-SECRET-abcdef")
        .body(r#"{"model":"gpt-4o","messages":[]}"#.to_owned())
        .unwrap()
}

/// Five requests through metrics → retry → breaker → classify: a success reporting 75 % of its
/// requests used; a 429 retried after 500 ms; a prompt too long; an overload retried once and
/// given up; a refused connection retried into a success.
#[tokio::test(start_paused = true)]
async fn the_snapshot_counts_exactly_what_happened() {
    let script = Script::new(vec![
        reply(
            200,
            &[
                ("x-ratelimit-limit-requests", "100"),
                ("x-ratelimit-remaining-requests", "25"),
            ],
            "{}",
        ),
        reply(429, &[("retry-after-ms", "500")], ""),
        reply(200, &[], "{}"),
        reply(400, &[], TOO_LONG),
        reply(503, &[], ""),
        reply(503, &[], ""),
        Box::new(|| Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into())),
        reply(200, &[], "{}"),
    ]);
    let metrics = MetricsLayer::new("openai");
    let handle = metrics.handle();
    let client = ServiceBuilder::new()
        .layer(metrics)
        .layer(BufferBodyLayer::new())
        .layer(
            RetryLayer::new(
                RetryPolicy::default()
                    .with_max_retries(1)
                    .with_server_delay_spread(Spread::None),
            )
            .with_rng(rng_fn(|| 0.5)),
        )
        .layer(CircuitBreakerLayer::new(BreakerConfig::default()))
        .layer(ClassifyLayer::new(OpenAi::new()))
        .service(script);
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(
            client
                .clone()
                .oneshot(chat())
                .await
                .map(|r| r.status().as_u16())
                .ok(),
        );
    }
    assert_eq!(outcomes, [Some(200), Some(200), Some(400), None, Some(200)]);

    let snapshot = handle.snapshot();
    assert_eq!(snapshot.requests, 5);
    assert_eq!(snapshot.successes, 3);
    assert_eq!(
        snapshot.rate_limited, 0,
        "the 429 was retried into a success"
    );
    assert_eq!(snapshot.server_errors, 1);
    assert_eq!(snapshot.context_window_errors, 1);
    assert_eq!(snapshot.retries, 3);
    assert_eq!(snapshot.retried_requests, 3);
    assert_eq!(snapshot.retried_successes, 2);
    // 500 ms asked for; 250 ms twice from the backoff (0.5 s × full jitter at 0.5).
    assert_eq!(snapshot.retry_delay, Duration::from_millis(1_000));
    assert_eq!(
        snapshot.mean_retry_delay(),
        Some(Duration::from_nanos(333_333_333))
    );
    assert_eq!(snapshot.utilization(Dimension::Requests), Some(0.75));
    assert_eq!(snapshot.success_rate(), Some(0.6));
    assert_eq!(snapshot.retry_success_rate(), Some(2.0 / 3.0));
    // Latencies 0, 500 ms, 0, 250 ms, 250 ms (to the histogram's three significant figures).
    assert_eq!(snapshot.p50.unwrap().as_millis(), 250);
    assert_eq!(snapshot.p99.unwrap().as_millis(), 500);
    let alerts: Vec<_> = snapshot
        .alerts()
        .into_iter()
        .map(|a| (a.signal, a.level))
        .collect();
    assert_eq!(
        alerts,
        [
            (Signal::Utilization, Level::Warning),
            (Signal::ServerErrorRate, Level::Critical)
        ]
    );
}

/// What a Prometheus scrape reads, with the retries the layers below reported.
#[tokio::test(start_paused = true)]
async fn prometheus_reads_requests_and_retries() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let script = Script::new(vec![
        reply(429, &[("retry-after-ms", "500")], ""),
        reply(200, &[], "{}"),
    ]);
    let client = ServiceBuilder::new()
        .layer(MetricsLayer::new("openai"))
        .layer(BufferBodyLayer::new())
        .layer(RetryLayer::new(RetryPolicy::default()))
        .layer(ClassifyLayer::new(OpenAi::new()))
        .service(script);
    client.oneshot(chat()).await.unwrap();
    let text = prometheus.render();
    assert!(text.contains(
        r#"tollgate_requests_total{provider="openai",route="none",outcome="success",status="200",attempts="2",hops="0"} 1"#
    ), "{text}");
    assert!(text.contains(
        r#"tollgate_retries_total{provider="openai",route="none",class="rate_limited",delay_source="retry_after_ms"} 1"#
    ), "{text}");
    assert!(!text.contains("SECRET"));
}

/// Collects every string a `tracing` subscriber is shown: span and event names and fields.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

struct Fields<'a>(&'a mut Vec<String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={value:?}", field.name()));
    }
}

impl tracing::Subscriber for Seen {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut seen = self.0.lock().unwrap();
        seen.push(span.metadata().name().to_owned());
        span.record(&mut Fields(&mut seen));
        tracing::span::Id::from_u64(seen.len() as u64)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        event.record(&mut Fields(&mut self.0.lock().unwrap()));
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// A request carrying API keys in its headers leaves no trace of them: not in a metric's name
/// or label, not in a span or event, not in an error.
#[tokio::test(start_paused = true)]
async fn api_keys_leave_no_trace() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let seen = Seen::default();
    let _subscriber = tracing::subscriber::set_default(seen.clone());
    let script = Script::new(vec![
        reply(429, &[("retry-after-ms", "100")], ""),
        reply(503, &[], ""),
        Box::new(|| Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into())),
    ]);
    let client = ServiceBuilder::new()
        .layer(MetricsLayer::new("openai"))
        .layer(BufferBodyLayer::new())
        .layer(RetryLayer::new(RetryPolicy::default().with_max_retries(2)))
        .layer(CircuitBreakerLayer::new(BreakerConfig::default()))
        .layer(ClassifyLayer::new(OpenAi::new()))
        .service(script);
    let error = client.oneshot(chat()).await.unwrap_err();
    let mut traces = vec![prometheus.render(), error.to_string(), format!("{error:?}")];
    traces.extend(seen.0.lock().unwrap().iter().cloned());
    assert!(traces.len() > 5, "something was recorded: {traces:?}");
    for trace in traces {
        assert!(!trace.contains("SECRET"), "a key leaked into: {trace}");
    }
}

/// One span per request, and inside it one per attempt, with their outcomes.
#[tokio::test(start_paused = true)]
async fn each_request_and_attempt_has_its_span() {
    let seen = Seen::default();
    let _subscriber = tracing::subscriber::set_default(seen.clone());
    let script = Script::new(vec![reply(503, &[], ""), reply(200, &[], "{}")]);
    let client = ServiceBuilder::new()
        .layer(MetricsLayer::new("openai"))
        .layer(BufferBodyLayer::new())
        .layer(RetryLayer::new(RetryPolicy::default()))
        .layer(ClassifyLayer::new(OpenAi::new()))
        .service(script);
    client.oneshot(chat()).await.unwrap();
    let seen = seen.0.lock().unwrap();
    let count = |name: &str| seen.iter().filter(|s| *s == name).count();
    assert_eq!(count("tollgate.request"), 1);
    assert_eq!(count("tollgate.attempt"), 2);
    assert!(
        seen.contains(&r#"outcome="overloaded""#.to_owned()),
        "{seen:?}"
    );
    assert!(seen.contains(&"attempts=2".to_owned()), "{seen:?}");
}

/// Token counts a provider reports are added without overflow, however large.
#[tokio::test(start_paused = true)]
async fn huge_token_counts_do_not_overflow() {
    let metrics = MetricsLayer::new("openai");
    let handle = metrics.handle();
    let provider = tower::service_fn(|_: Request<String>| async {
        let mut response = Response::new(String::new());
        let usage = tollgate_core::Usage::new()
            .with_input_tokens(u64::MAX)
            .with_output_tokens(u64::MAX);
        response
            .extensions_mut()
            .insert(tollgate_core::Verdict::success().with_usage(usage));
        Ok::<_, BoxError>(response)
    });
    let service = tower::Layer::layer(&metrics, provider);
    for _ in 0..2 {
        service.clone().oneshot(chat()).await.unwrap();
    }
    assert_eq!(handle.snapshot().input_tokens, u64::MAX);
}

/// A streamed answer is recorded when its stream ends: its time to first token (300 ms) and
/// its time per output token after the first (900 ms over 9 tokens), under the OpenTelemetry
/// GenAI names; a stream that fails half-way is recorded as a failure.
#[tokio::test(start_paused = true)]
async fn a_stream_is_recorded_at_its_end() {
    use tollgate_core::{ErrorClass, StreamReport, Usage};
    let recorder = PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let reports = [StreamReport::new(), StreamReport::new()];
    let answers = reports.clone();
    let layer = MetricsLayer::new("openai");
    let handle = layer.handle();
    let next = Arc::new(Mutex::new(0));
    let client = ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(move |_: Request<String>| {
            let mut next = next.lock().unwrap();
            let mut response = Response::new(String::new());
            response.extensions_mut().insert(answers[*next].clone());
            *next += 1;
            async move { Ok::<_, BoxError>(response) }
        }));
    let _completes = client.clone().oneshot(chat()).await.unwrap();
    let _fails = client.oneshot(chat()).await.unwrap();
    assert_eq!(handle.snapshot().requests, 0, "not before the streams end");
    tokio::time::sleep(Duration::from_millis(300)).await;
    reports[0].first_data();
    reports[1].first_data();
    tokio::time::sleep(Duration::from_millis(900)).await;
    reports[0].complete(Some(
        Usage::new().with_input_tokens(5).with_output_tokens(10),
    ));
    reports[1].fail(ErrorClass::Overloaded);
    let snapshot = handle.snapshot();
    assert_eq!((snapshot.requests, snapshot.successes), (2, 1));
    assert_eq!(snapshot.output_tokens, 10);
    let first = snapshot.first_token_p50.unwrap();
    assert!(first >= Duration::from_millis(300) && first < Duration::from_millis(301));
    assert!(snapshot.p50.unwrap() >= Duration::from_millis(1_200));
    let text = prometheus.render();
    for line in [
        r#"gen_ai_server_time_to_first_token_sum{gen_ai_system="openai",route="none"} 0.6"#,
        r#"gen_ai_server_time_to_first_token_count{gen_ai_system="openai",route="none"} 2"#,
        r#"gen_ai_server_time_per_output_token_sum{gen_ai_system="openai",route="none"} 0.1"#,
        r#"gen_ai_server_time_per_output_token_count{gen_ai_system="openai",route="none"} 1"#,
        r#"outcome="overloaded",status="200""#,
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}
