//! Instructions per request, for callgrind: a fixed loop sending `N` requests through one
//! service, with no timing. Criterion's wall-clock figures are noisy on a shared machine;
//! instruction counts are deterministic. Run it twice, with `N` and `2N` requests, and divide
//! the difference by `N` (process start and the harness cancel out):
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/deps/instructions-<hash> <bare|fallback> <N> <chat|minimal>
//! ```
//!
//! The layer's cost is the `fallback` figure minus the `bare` one. `instructions sizes` prints
//! the size of the response futures instead (every move of one is a `memcpy` of that many
//! bytes). Under `cargo bench` (no such arguments) it does nothing.

use http::Request;
use std::hint::black_box;
use tollgate_core::body::BufferedBody;
use tollgate_fallback::{FallbackConfig, FallbackLayer, Target};
use tollgate_providers::rewrite::SetModel;
use tower::Layer;

#[path = "../../../benches/support/mod.rs"]
#[allow(dead_code)] // `Bare` answers `Response<()>`; the loop here uses `Wire`
mod support;
use support::send;
#[path = "../../../benches/support/chat.rs"]
mod chat;
use chat::{Wire, chat};

/// The smallest request: no headers, an empty body.
fn minimal() -> Request<BufferedBody> {
    Request::new(BufferedBody::empty())
}

/// The crate bench's fallback: one target after the primary, rewriting the model.
fn fallback() -> tollgate_fallback::Fallback<Wire> {
    FallbackLayer::new(FallbackConfig::new([
        Target::new("second", Wire).with_rewrite(SetModel::new("gpt-4o-mini"))
    ]))
    .layer(Wire)
}

/// Sends `n` requests made by `make` through `service`.
#[inline(never)]
fn run<S, R>(mut service: S, make: fn() -> Request<BufferedBody>, n: usize)
where
    S: tower::Service<Request<BufferedBody>, Response = http::Response<R>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        black_box(send(&mut service, black_box(make())));
    }
}

/// The size of `service`'s response future.
fn future_size<S: tower::Service<Request<BufferedBody>>>(_: &S) -> usize {
    std::mem::size_of::<S::Future>()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("sizes") {
        println!("bare future: {} bytes", future_size(&Wire));
        println!("fallback future: {} bytes", future_size(&fallback()));
        return;
    }
    let [service, n, request] = &args[..] else {
        eprintln!("usage: instructions <bare|fallback> <requests> <chat|minimal>");
        return;
    };
    let n: usize = n.parse().expect("a number of requests");
    let make = match request.as_str() {
        "minimal" => minimal as fn() -> Request<BufferedBody>,
        _ => chat,
    };
    match service.as_str() {
        "bare" => run(Wire, make, n),
        "fallback" => run(fallback(), make, n),
        other => panic!("unknown service {other}"),
    }
}
