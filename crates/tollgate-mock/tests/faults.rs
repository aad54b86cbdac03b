//! Faults: resets, hangs, seeded error mixes, latency, and the server's own edge cases.

mod common;

use std::time::Duration;

use common::{Client, chat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tollgate_mock::{Latency, MockConfig, MockServer};

#[tokio::test(start_paused = true)]
async fn reset_closes_the_connection_without_a_response() {
    let server = MockServer::start(
        MockConfig::openai()
            .with_reset_rate(1.0)
            .with_requests_per_minute(10),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    let err = client
        .try_send(
            "POST",
            "/v1/chat/completions",
            chat(4, None).to_string(),
            &[],
        )
        .await
        .unwrap_err();
    let _ = format!("{err:?}");
    let stats = server.stats();
    assert_eq!((stats.requests, stats.resets, stats.ok), (1, 1, 0));
    assert!(stats.by_status.is_empty());
    assert_eq!(server.timeline()[0].errors, 1);
}

#[tokio::test(start_paused = true)]
async fn hang_until_the_client_gives_up_then_shutdown_ends_it() {
    let server = MockServer::start(MockConfig::openai().with_hang_rate(1.0))
        .await
        .unwrap();
    let client = Client::new(&server);
    let start = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(30), client.chat(&chat(4, None))).await;
    assert!(res.is_err(), "the client-side timeout fires");
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert_eq!(server.stats().hangs, 1);

    // A hung request must not keep the server alive.
    let c2 = client.clone();
    let pending = tokio::spawn(async move {
        c2.try_send(
            "POST",
            "/v1/chat/completions",
            chat(4, None).to_string(),
            &[],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let start = Instant::now();
    server.shutdown().await;
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(
        pending.await.unwrap().is_err(),
        "the hung request ends with a connection error"
    );
}

#[tokio::test(start_paused = true)]
async fn seeded_error_mix_is_reproducible() {
    async fn run(seed: u64) -> Vec<u16> {
        let server = MockServer::start(
            MockConfig::openai()
                .with_seed(seed)
                .with_error_rate(500, 0.25)
                .with_error_rate(503, 0.25),
        )
        .await
        .unwrap();
        let client = Client::new(&server);
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(client.chat(&chat(4, None)).await.status);
        }
        out
    }
    let a = run(7).await;
    assert_eq!(a, run(7).await);
    assert_ne!(a, run(8).await);
    for s in [200, 500, 503] {
        assert!(a.contains(&s), "{a:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn fixed_latency_is_exact_on_the_paused_clock() {
    let server = MockServer::start(MockConfig::openai().with_latency(Latency::Fixed { ms: 200 }))
        .await
        .unwrap();
    let client = Client::new(&server);
    let start = Instant::now();
    assert_eq!(client.chat(&chat(4, None)).await.status, 200);
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    // Refusals are immediate.
    let start = Instant::now();
    assert_eq!(client.post("/v1/nope", &chat(4, None)).await.status, 404);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn bad_requests() {
    let server = MockServer::start(MockConfig::openai()).await.unwrap();
    let client = Client::new(&server);
    let r = client.post("/v1/embeddings", &chat(4, None)).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["error"]["message"],
        "Invalid URL (POST /v1/embeddings)"
    );
    let r = client
        .try_send("GET", "/v1/chat/completions", String::new(), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = client
        .try_send("POST", "/v1/chat/completions", "{not json".to_owned(), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let r = client.chat(&serde_json::json!({"model": "x"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "Missing required parameter: 'messages'."
    );
    let r = client
        .try_send(
            "POST",
            "/v1/chat/completions",
            "\u{0}\u{ffff}garbage".to_owned(),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);

    let anthropic = MockServer::start(MockConfig::anthropic()).await.unwrap();
    let r = Client::new(&anthropic).post("/v2/x", &chat(4, None)).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
    assert_eq!(server.stats().by_status.get(&400), Some(&3));
}

#[tokio::test]
async fn oversized_body_gets_413_without_buffering() {
    let server = MockServer::start(MockConfig::anthropic()).await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(
            b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 20000000\r\n\r\n{",
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("request_too_large"), "{head}");
}

#[tokio::test]
async fn garbage_on_the_wire_does_not_kill_the_server() {
    let server = MockServer::start(MockConfig::openai()).await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf).await;
    assert_eq!(Client::new(&server).chat(&chat(4, None)).await.status, 200);
}

#[tokio::test]
async fn a_hang_abandoned_by_the_client_frees_its_slot() {
    // Real time: the client must really go away while the server holds the request.
    let server = MockServer::start(
        MockConfig::openai()
            .with_hang_rate(1.0)
            .with_max_concurrency(1),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    for _ in 0..3 {
        let res =
            tokio::time::timeout(Duration::from_millis(200), client.chat(&chat(4, None))).await;
        assert!(res.is_err(), "hangs, and is never refused for concurrency");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = server.stats();
    assert_eq!(
        (stats.hangs, stats.rate_limited, stats.max_in_flight),
        (3, 0, 1)
    );
}
