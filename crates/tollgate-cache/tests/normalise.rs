//! Key normalisation, by property, on tokio's paused clock: a JSON object written with its keys
//! in another order, other whitespace and other string escapes is the same request (a hit);
//! two objects that differ in one value are two requests (a miss).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use tollgate_cache::{CACHE_HEADER, CacheConfig, CacheLayer, CacheStatus};
use tollgate_core::body::BufferedBody;
use tower::{Layer, Service, ServiceExt};

type Req = Request<BufferedBody>;

/// An upstream that counts its calls and answers `answer <call number>` at once.
fn upstream() -> (
    Arc<AtomicUsize>,
    impl Service<Req, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let service = tower::service_fn(move |_: Req| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!("answer {n}"))))) }
    });
    (calls, service)
}

fn opted(body: Vec<u8>) -> Req {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("authorization", "Bearer sk-one")
        .header(CACHE_HEADER, "on")
        .body(BufferedBody::new(Bytes::from(body)))
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Sends `first`, reads its answer whole (so that it is stored), then sends `second`: the
/// statuses of both, their answers, and the upstream calls made.
fn first_then_second(
    rt: &tokio::runtime::Runtime,
    first: Vec<u8>,
    second: Vec<u8>,
) -> (Option<CacheStatus>, Option<CacheStatus>, String, usize) {
    rt.block_on(async {
        let (calls, inner) = upstream();
        let service = CacheLayer::new(CacheConfig::default()).layer(inner);
        let a = service.clone().oneshot(opted(first)).await.unwrap();
        let a_status = CacheStatus::of(&a);
        a.into_body().collect().await.unwrap();
        let b = service.clone().oneshot(opted(second)).await.unwrap();
        let b_status = CacheStatus::of(&b);
        let text = b.into_body().collect().await.unwrap().to_bytes();
        (
            a_status,
            b_status,
            String::from_utf8(text.to_vec()).unwrap(),
            calls.load(Ordering::SeqCst),
        )
    })
}

// ===== generating JSON =====

/// Object keys: short, from a small alphabet so that objects nest and compare often, with
/// characters that need escaping and some beyond ASCII.
fn key() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-c\"\\\\\n\u{1}é😀]{0,4}").unwrap()
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Finite floats; serde_json writes each with a `.` or an exponent.
        any::<f64>()
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
        (-3i64..=3).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        key().prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A JSON object with at least one entry.
fn object() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), value()), 1..6)
        .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>()))
}

// ===== writing JSON another way =====

/// A small deterministic generator (xorshift), so that one `u64` drawn by proptest decides
/// every choice of a rewrite and shrinks with it.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        // Never zero: xorshift would stay at zero.
        let mut x = self.0 | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn whitespace(&mut self, out: &mut Vec<u8>) {
        for _ in 0..self.below(3) {
            out.push(b" \t\n\r"[self.below(4)]);
        }
    }
}

/// Writes `value` as JSON with each object's keys in an order `choices` picks, whitespace
/// around every token, and some strings' characters written as `\u` escapes. Numbers are
/// written as serde_json writes them: their text is part of the key.
fn rewrite(value: &Value, choices: &mut Choices, out: &mut Vec<u8>) {
    choices.whitespace(out);
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => {
            out.extend_from_slice(value.to_string().as_bytes());
        }
        Value::String(s) => write_string(s, choices, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                rewrite(item, choices, out);
            }
            choices.whitespace(out);
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // Fisher–Yates.
            for i in (1..entries.len()).rev() {
                entries.swap(i, choices.below(i + 1));
            }
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                choices.whitespace(out);
                write_string(key, choices, out);
                choices.whitespace(out);
                out.push(b':');
                rewrite(item, choices, out);
            }
            choices.whitespace(out);
            out.push(b'}');
        }
    }
    choices.whitespace(out);
}

fn write_string(s: &str, choices: &mut Choices, out: &mut Vec<u8>) {
    if choices.below(2) == 0 {
        out.extend_from_slice(serde_json::to_string(s).unwrap().as_bytes());
        return;
    }
    // Every character as `\uXXXX` (a surrogate pair beyond the BMP).
    out.push(b'"');
    let mut units = [0u16; 2];
    for c in s.chars() {
        for unit in c.encode_utf16(&mut units) {
            out.extend_from_slice(format!("\\u{unit:04X}").as_bytes());
        }
    }
    out.push(b'"');
}

/// The scalars and empty containers of `value`, mutably, in a fixed order.
fn leaves<'a>(value: &'a mut Value, out: &mut Vec<&'a mut Value>) {
    let nested = match &*value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    };
    if !nested {
        out.push(value);
        return;
    }
    match value {
        Value::Array(items) => items.iter_mut().for_each(|item| leaves(item, out)),
        Value::Object(map) => map.values_mut().for_each(|item| leaves(item, out)),
        _ => {}
    }
}

proptest! {
    // No regressions file: a failure prints its minimal input, to be added below as a test.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn reordered_respaced_and_re_escaped_is_a_hit(value in object(), seed in any::<u64>()) {
        let rt = runtime();
        let compact = serde_json::to_vec(&value).unwrap();
        let mut other = Vec::new();
        rewrite(&value, &mut Choices(seed), &mut other);
        // serde_json reads it back (its float reading may differ in the last digit: the
        // cache keeps numbers as written).
        prop_assert!(serde_json::from_slice::<Value>(&other).is_ok());

        let (first, second, answer, calls) = first_then_second(&rt, compact, other);
        prop_assert_eq!(first, Some(CacheStatus::Miss));
        prop_assert_eq!(second, Some(CacheStatus::Hit));
        prop_assert_eq!(answer, "answer 1");
        prop_assert_eq!(calls, 1);
    }

    #[test]
    fn one_other_value_is_a_miss(
        value in object(),
        pick in any::<prop::sample::Index>(),
        replacement in leaf(),
        seeds in any::<(u64, u64)>(),
    ) {
        let mut changed = value.clone();
        {
            let mut all = Vec::new();
            leaves(&mut changed, &mut all);
            let i = pick.index(all.len());
            *all[i] = replacement;
        }
        prop_assume!(changed != value);

        let rt = runtime();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        rewrite(&value, &mut Choices(seeds.0), &mut a);
        rewrite(&changed, &mut Choices(seeds.1), &mut b);
        let (first, second, answer, calls) = first_then_second(&rt, a, b);
        prop_assert_eq!(first, Some(CacheStatus::Miss));
        prop_assert_eq!(second, Some(CacheStatus::Miss));
        prop_assert_eq!(answer, "answer 2");
        prop_assert_eq!(calls, 2);
    }
}
