//! Exports a stack's metrics to Prometheus: sends a few requests through `MetricsLayer` over a
//! stand-in provider (200s, a 429, a 503) and prints what a Prometheus scrape would read.
//!
//! Run with `cargo run -p tollgate-metrics --example prometheus`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use metrics_exporter_prometheus::PrometheusBuilder;
use tollgate_core::RouteKey;
use tollgate_metrics::MetricsLayer;
use tower::{Layer, ServiceExt};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tollgate_core::BoxError> {
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let layer = MetricsLayer::new("openai");
    let handle = layer.handle();

    let calls = Arc::new(AtomicU32::new(0));
    let provider = tower::service_fn(move |_: http::Request<String>| {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move {
            let status = match n {
                3 => 429,
                5 => 503,
                _ => 200,
            };
            Ok::<_, Infallible>(
                http::Response::builder()
                    .status(status)
                    .body(String::new())
                    .unwrap(),
            )
        }
    });
    let service = layer.layer(provider);
    for _ in 0..8 {
        let mut request = http::Request::new(String::from("{}"));
        request.extensions_mut().insert(RouteKey::new("gpt-4o"));
        service.clone().oneshot(request).await?;
    }

    println!("{}", prometheus.render());
    let snapshot = handle.snapshot();
    println!(
        "requests {}, success rate {:.2}, 429 rate {:.2}, p99 {:?}",
        snapshot.requests,
        snapshot.success_rate().unwrap_or(0.0),
        snapshot.rate_limit_rate().unwrap_or(0.0),
        snapshot.p99,
    );
    for alert in snapshot.alerts() {
        println!("alert: {alert:?}");
    }
    Ok(())
}
