//! What counts as a success, handed back at once: a response whose attached verdict says so,
//! or, with none attached, whose status is below 400. A failure verdict on a 200 and a bare
//! 503 both move on.

use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use tollgate_core::body::BufferedBody;
use tollgate_core::{ErrorClass, Verdict};
use tollgate_fallback::{BoxTarget, FallbackConfig, FallbackLayer, Target, boxed};
use tower::{Layer, ServiceExt, service_fn};

/// A primary answering `status` with `verdict` attached, behind a fallback to "second"; the
/// body of the answer handed back.
async fn answered_by(status: StatusCode, verdict: Option<Verdict>) -> String {
    let primary = service_fn(move |_: Request<BufferedBody>| {
        let verdict = verdict.clone();
        async move {
            let mut response = Response::new("primary".to_owned());
            *response.status_mut() = status;
            if let Some(verdict) = verdict {
                response.extensions_mut().insert(verdict);
            }
            Ok::<_, Infallible>(response)
        }
    });
    let second = service_fn(|_: Request<BufferedBody>| async {
        Ok::<_, Infallible>(Response::new("second".to_owned()))
    });
    let fallback = FallbackLayer::new(FallbackConfig::new([Target::new("second", boxed(second))]))
        .layer(boxed(primary) as BoxTarget<String>);
    let response = fallback
        .oneshot(Request::new(BufferedBody::empty()))
        .await
        .unwrap();
    response.into_body()
}

#[tokio::test(start_paused = true)]
async fn a_success_is_handed_back_and_a_failure_moves_on() {
    assert_eq!(answered_by(StatusCode::OK, None).await, "primary");
    assert_eq!(
        answered_by(StatusCode::OK, Some(Verdict::success())).await,
        "primary"
    );
    // A bare 503: the status alone is an overload.
    assert_eq!(
        answered_by(StatusCode::SERVICE_UNAVAILABLE, None).await,
        "second"
    );
    // A classifier found a failure in a 200 (an error event in the body): it counts.
    let overloaded = Verdict::failure(ErrorClass::Overloaded);
    assert_eq!(
        answered_by(StatusCode::OK, Some(overloaded)).await,
        "second"
    );
    // A success verdict on a 503 (a classifier's call) is handed back.
    assert_eq!(
        answered_by(StatusCode::SERVICE_UNAVAILABLE, Some(Verdict::success())).await,
        "primary"
    );
}
