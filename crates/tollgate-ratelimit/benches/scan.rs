//! What reading a ~1 KiB chat body costs the ready stack's two JSON scans: the token estimate
//! ([`OpenAiChat`]) and the model key ([`ByModel`]), each a full pass of
//! `tollgate_core::json::Scanner`.
//!
//! With arguments, a fixed loop for callgrind, with no timing: criterion's wall-clock figures
//! are noisy on a shared machine, instruction counts are deterministic. Run it twice, with `N`
//! and `2N` scans, and divide the difference by `N` (process start and the harness cancel out):
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/deps/scan-<hash> <estimate|model|none> <N> [chat|cjk]
//! ```
//!
//! (`none` touches the request, scanning nothing; `cjk` is the same chat in Chinese, every
//! character of its prompt three bytes long, to check that non-ASCII text does not pay for
//! what speeds up ASCII.) Without arguments (under
//! `cargo bench -p tollgate-ratelimit --bench scan`) it times the same two reads with criterion.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use http::Request;
use tollgate_core::Dimension;
use tollgate_ratelimit::{ByModel, Estimator, Keyer, OpenAiChat};

/// A chat body of about 1 KiB as the OpenAI SDKs write it (`messages` first, so the model is
/// found after the whole prompt): a system and a user message with some non-ASCII text and a
/// few escapes, then `model`, `max_tokens`, `temperature` and `user`.
fn chat_body() -> Vec<u8> {
    const SYSTEM: &str = "You are a careful assistant for a support team. Answer in plain \
        English, in at most three short paragraphs, and say so when you do not know. Quote \
        the user's error messages exactly \u{2014} \\\"like this\\\" \u{2014} and never guess a \
        version number.\\n";
    const QUESTION: &str = "Our nightly export job started failing after the upgrade. The log \
        says \\\"connection reset\\\" while streaming the second batch, and the retry gives \
        up after three attempts (d\u{e9}j\u{e0} vu \u{2192} \u{1f62c}).\\n The same job works \
        when we run it by hand in the afternoon. ";
    let mut user = String::new();
    while user.len() + QUESTION.len() <= 700 {
        user.push_str(QUESTION);
    }
    let user = user.trim_end();
    format!(
        r#"{{"messages":[{{"role":"system","content":"{SYSTEM}"}},{{"role":"user","content":"{user} What should we check first?"}}],"model":"gpt-4o","max_tokens":256,"temperature":0.2,"user":"bench-user-42"}}"#
    )
    .into_bytes()
}

/// The same chat with its prompt in Chinese (about 1 KiB too).
fn cjk_body() -> Vec<u8> {
    const SYSTEM: &str = "你是支持团队的细心助手。请用简明的中文回答，最多三段，不知道时要说明。\
        准确引用用户的错误信息，不要猜测版本号。";
    const QUESTION: &str = "升级之后，我们的夜间导出任务开始失败。日志显示在传输第二批数据时连接被重置，\
        重试三次后放弃。下午手动运行同一个任务却是正常的。";
    let mut user = String::new();
    while user.len() + QUESTION.len() <= 700 {
        user.push_str(QUESTION);
    }
    format!(
        r#"{{"messages":[{{"role":"system","content":"{SYSTEM}"}},{{"role":"user","content":"{user}\n我们应该先检查什么？"}}],"model":"gpt-4o","max_tokens":256,"temperature":0.2,"user":"bench-user-42"}}"#
    )
    .into_bytes()
}

/// Reads `request` `n` times with `read`.
#[inline(never)]
fn run<T>(request: &Request<Vec<u8>>, read: impl Fn(&Request<Vec<u8>>) -> T, n: usize) {
    for _ in 0..n {
        black_box(read(black_box(request)));
    }
}

fn estimate(request: &Request<Vec<u8>>) -> u64 {
    OpenAiChat::new().estimate(request).get(Dimension::Tokens)
}

fn model(request: &Request<Vec<u8>>) -> bool {
    ByModel.key(request).is_some()
}

fn criterion(request: &Request<Vec<u8>>) {
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("scan/chat_1KiB");
    group.throughput(Throughput::Bytes(request.body().len() as u64));
    group.bench_function("estimate", |b| b.iter(|| estimate(black_box(request))));
    group.bench_function("model", |b| b.iter(|| model(black_box(request))));
    group.finish();
    c.final_summary();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let body = match args.get(2).map(String::as_str) {
        Some("cjk") => cjk_body(),
        _ => chat_body(),
    };
    let request = Request::new(body);
    assert!(model(&request), "the body has a model");
    match &args[..] {
        [read, n, ..] if !read.starts_with('-') => {
            let n: usize = n.parse().expect("a number of scans");
            match read.as_str() {
                "estimate" => run(&request, estimate, n),
                "model" => run(&request, model, n),
                "none" => run(&request, |r| r.body().len(), n),
                other => panic!("unknown read {other}"),
            }
        }
        _ => criterion(&request),
    }
}
