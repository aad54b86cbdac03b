//! What `SetModel` and `IncludeUsage` cost per request on a chat body of about 1 KiB and one of
//! about 16 KiB, beside what they did before they spliced the body (parse into a map, change
//! it, write it again), measured in the same run. Run with
//! `cargo bench -p tollgate-providers --bench rewrite`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_main};
use http::Request;
use serde_json::{Map, Value, json};
use tollgate_core::body::BufferedBody;
use tollgate_core::rewrite::Rewrite;
use tollgate_providers::rewrite::{IncludeUsage, SetModel};

/// A chat request of `turns` user and assistant messages of about 120 bytes each.
fn chat(turns: usize, stream: bool) -> Bytes {
    let messages: Vec<Value> = (0..turns)
        .map(|i| {
            json!({
                "role": if i % 2 == 0 { "user" } else { "assistant" },
                "content": format!("Message {i}: summarise the quarterly figures in two lines, \
                                    then list the three largest changes with their causes."),
            })
        })
        .collect();
    let mut body = json!({ "model": "gpt-4o", "messages": messages, "temperature": 0.2 });
    if stream {
        body["stream"] = json!(true);
    }
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

fn request(body: &Bytes) -> Request<BufferedBody> {
    let mut request = Request::new(BufferedBody::new(body.clone()));
    request
        .headers_mut()
        .insert("content-length", body.len().into());
    request
}

/// The rewrite as it was: the body parsed into a map, changed, written again.
fn reparse(request: &mut Request<BufferedBody>, change: impl FnOnce(&mut Map<String, Value>)) {
    let mut body: Map<String, Value> = serde_json::from_slice(request.body().bytes()).unwrap();
    change(&mut body);
    let bytes = serde_json::to_vec(&body).unwrap();
    request
        .headers_mut()
        .insert("content-length", bytes.len().into());
    *request.body_mut() = BufferedBody::new(Bytes::from(bytes));
}

fn rewrite(c: &mut Criterion) {
    let set = SetModel::new("deepseek-chat");
    for (size, turns) in [("1KiB", 8), ("16KiB", 128)] {
        let plain = chat(turns, false);
        let streamed = chat(turns, true);
        let mut group = c.benchmark_group(format!("rewrite/{size}"));
        group.bench_function("set_model", |b| {
            b.iter_batched(
                || request(&plain),
                |mut r| {
                    set.rewrite(&mut r).unwrap();
                    black_box(r)
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("set_model_reparsed", |b| {
            b.iter_batched(
                || request(&plain),
                |mut r| {
                    reparse(&mut r, |body| {
                        body.insert("model".to_owned(), json!("deepseek-chat"));
                    });
                    black_box(r)
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("include_usage", |b| {
            b.iter_batched(
                || request(&streamed),
                |mut r| {
                    IncludeUsage.rewrite(&mut r).unwrap();
                    black_box(r)
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("include_usage_reparsed", |b| {
            b.iter_batched(
                || request(&streamed),
                |mut r| {
                    reparse(&mut r, |body| {
                        body.insert(
                            "stream_options".to_owned(),
                            json!({ "include_usage": true }),
                        );
                    });
                    black_box(r)
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

/// Every rewrite, both sizes.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    rewrite(&mut c);
}

criterion_main!(benches);
