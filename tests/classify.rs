//! The facade's stack so far: `ServiceBuilderExt::classify` over a `tower_test` mock transport,
//! as an application builds it.

#![cfg(feature = "providers")]

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tollgate::providers::{OpenAi, ProviderClassifier};
use tollgate::{DelaySource, ErrorClass, RetryAdvice, ServiceBuilderExt, Verdict};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_test::mock;

type Body = Full<Bytes>;

fn request() -> Request<Body> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .body(Full::new(Bytes::from_static(b"{\"model\":\"gpt-4o\"}")))
        .unwrap()
}

#[tokio::test]
async fn classify_attaches_the_verdict_and_keeps_the_body() {
    let (transport, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let mut client = ServiceBuilder::new()
        .classify(OpenAi::new())
        .service(transport);

    handle.allow(1);
    client.ready().await.unwrap();
    let call = tokio::spawn(client.call(request()));

    let (sent, reply) = handle.next_request().await.unwrap();
    assert_eq!(sent.uri().path(), "/v1/chat/completions");
    const BODY: &str = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
    reply.send_response(
        Response::builder()
            .status(429)
            .header("x-should-retry", "true")
            .body(Full::new(Bytes::from(BODY)))
            .unwrap(),
    );

    let response = call.await.unwrap().unwrap();
    let verdict = Verdict::of_response(&response).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::QuotaExhausted));
    // A quota signal outranks `x-should-retry: true`: not here again, only elsewhere.
    assert!(!verdict.is_retryable());
    assert_eq!(verdict.advice(), RetryAdvice::Elsewhere);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, BODY);
}

#[tokio::test]
async fn a_provider_chosen_by_name_classifies_like_its_type() {
    const BODY: &str = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Resource has been exhausted","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}"#;
    let mut verdicts = Vec::new();
    for classifier in [ProviderClassifier::Gemini, "gemini".parse().unwrap()] {
        let (transport, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        handle.allow(1);
        let client = ServiceBuilder::new()
            .classify(classifier)
            .service(transport);
        let call = tokio::spawn(client.oneshot(request()));
        let (_, reply) = handle.next_request().await.unwrap();
        reply.send_response(
            Response::builder()
                .status(429)
                .body(Full::new(Bytes::from(BODY)))
                .unwrap(),
        );
        let response = call.await.unwrap().unwrap();
        verdicts.push(Verdict::of_response(&response).unwrap().clone());
    }
    assert_eq!(verdicts[0], verdicts[1]);
    assert_eq!(verdicts[0].class(), Some(ErrorClass::RateLimited));
    assert_eq!(verdicts[0].delay(), Some(Duration::from_secs(7)));
    assert_eq!(verdicts[0].delay_source(), DelaySource::BodyHint);
}

#[tokio::test]
async fn transport_errors_carry_a_verdict() {
    let (transport, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    handle.allow(1);
    let client = ServiceBuilder::new()
        .classify(OpenAi::new())
        .service(transport);
    let call = tokio::spawn(client.oneshot(request()));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error(io::Error::from(io::ErrorKind::ConnectionReset));

    let error = call.await.unwrap().unwrap_err();
    let verdict = Verdict::of_error(error.as_ref()).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::Connect));
    assert_eq!(verdict.advice(), RetryAdvice::SameTarget);
}

#[test]
fn the_stack_is_clone_send_and_sync() {
    fn assert_clone_send_sync<T: Clone + Send + Sync>(_: &T) {}
    let (transport, _handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = ServiceBuilder::new()
        .classify(OpenAi::new())
        .check_service_clone::<mock::Mock<Request<Body>, Response<Body>>>()
        .service(transport);
    assert_clone_send_sync(&client);
}
