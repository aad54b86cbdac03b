//! Streaming: OpenAI chunks with usage before `[DONE]`, Anthropic events with usage.

mod common;

use common::{Client, chat, messages, sse};
use serde_json::Value;
use tollgate_mock::{Latency, MockConfig, MockServer};

#[tokio::test(start_paused = true)]
async fn openai_stream_with_usage() {
    let server = MockServer::start(
        MockConfig::openai()
            .with_completion_tokens(30)
            .with_latency(Latency::Fixed { ms: 100 }),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    let mut body = chat(40, None);
    body["stream"] = true.into();
    body["stream_options"] = serde_json::json!({ "include_usage": true });
    let r = client.chat(&body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.h("content-type"), "text/event-stream");
    let frames = sse(&r.body);
    assert!(frames.len() >= 5, "{frames:?}");
    assert_eq!(frames.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text.split_whitespace().count(), 30);
    for c in &chunks[..chunks.len() - 1] {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert!(c["usage"].is_null());
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], serde_json::json!([]));
    assert_eq!(
        last["usage"],
        serde_json::json!({ "prompt_tokens": 10, "completion_tokens": 30, "total_tokens": 40 })
    );
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    let stats = server.stats();
    assert_eq!(
        (stats.ok, stats.input_tokens, stats.output_tokens),
        (1, 10, 30)
    );
}

#[tokio::test(start_paused = true)]
async fn openai_stream_without_usage() {
    let server = MockServer::start(MockConfig::openai()).await.unwrap();
    let mut body = chat(4, Some(3));
    body["stream"] = true.into();
    let r = Client::new(&server).chat(&body).await;
    let frames = sse(&r.body);
    assert_eq!(frames.last().unwrap().1, "[DONE]");
    for (_, d) in &frames[..frames.len() - 1] {
        let c: Value = serde_json::from_str(d).unwrap();
        assert!(c.get("usage").is_none(), "{c}");
        assert_eq!(c["choices"].as_array().unwrap().len(), 1);
    }
    let finish: Value = serde_json::from_str(&frames[frames.len() - 2].1).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
}

#[tokio::test(start_paused = true)]
async fn anthropic_stream_events() {
    let server = MockServer::start(
        MockConfig::anthropic()
            .with_completion_tokens(25)
            .with_latency(Latency::Fixed { ms: 50 }),
    )
    .await
    .unwrap();
    let mut body = messages(80, 100);
    body["stream"] = true.into();
    let r = Client::new(&server).messages(&body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.h("content-type"), "text/event-stream");
    let frames = sse(&r.body);
    let names: Vec<&str> = frames.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let deltas: Vec<Value> = frames
        .iter()
        .filter(|(e, _)| e.as_deref() == Some("content_block_delta"))
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert!(deltas.len() >= 3);
    let text: String = deltas
        .iter()
        .map(|d| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text.split_whitespace().count(), 25);
    let start: Value = serde_json::from_str(&frames[0].1).unwrap();
    assert_eq!(start["message"]["usage"]["input_tokens"], 20);
    let delta: Value = serde_json::from_str(&frames[frames.len() - 2].1).unwrap();
    assert_eq!(delta["usage"]["output_tokens"], 25);
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    for (name, data) in &frames {
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"].as_str(), name.as_deref());
    }
}

#[tokio::test(start_paused = true)]
async fn stream_holds_its_concurrency_slot_until_done() {
    let server = MockServer::start(
        MockConfig::anthropic()
            .with_max_concurrency(1)
            .with_latency(Latency::Fixed { ms: 1000 }),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    let mut body = messages(8, 100);
    body["stream"] = true.into();
    for _ in 0..3 {
        assert_eq!(client.messages(&body).await.status, 200);
    }
    assert_eq!(server.stats().max_in_flight, 1);
}
