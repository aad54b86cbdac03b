//! The gateway example's translation between OpenAI's Chat Completions and Anthropic's
//! Messages (`examples/support/translate/`, included as a module, as the example does):
//! requests, non-streamed answers and event streams, in any direction, on any bytes.
//!
//! Input layout:
//!
//! | bytes | meaning |
//! |---|---|
//! | 0 | the direction (bits 0–1): `from` is Chat (bit 0 clear) or Messages (set), `to` likewise by bit 1; for a stream, `with_usage` (bit 2); what is translated (`(b >> 3) % 3`): a request (`translate::request`), an answer (`translate::response`), an event stream (`StreamTranslator`) |
//! | the rest | the body (or the stream's bytes); for a stream, its first byte (byte 1) also says where to cut it in two: at `len × b / 255` |
//!
//! Checks: no panic; for a request or an answer, between the same API the body comes back
//! unchanged, and otherwise an `Ok` is a JSON object (a request Chat → Messages with a string
//! `model`, a positive integer `max_tokens` and a `messages` array; Messages → Chat with a
//! string `model` and a `messages` array); an `Err`'s `Display` is at most 400 bytes, and its
//! variable part (the path it starts with: `Invalid`'s `what` or `Untranslatable`'s `feature`
//! up to the first space) holds no run of more than 64 consecutive bytes of the input (the
//! module's docs: the error says what is wrong "never quoting the body", and a member name it
//! names is at most 64 bytes, else `<unnamed>`; the fixed words after it are left out, see
//! `check_error`). For a stream (the `created` of Messages → Chat chunks fixed by
//! `with_created`): fed whole, fed in two pieces cut where byte 1 says, and — for inputs of at
//! most 4 KiB — fed one byte at a time, the output (the fed pieces' and `finish`'s, joined) is
//! the same; between the same API it is the input; it is at most `16 × input + 4096` bytes.

#![no_main]

#[path = "../../examples/support/translate/mod.rs"]
#[allow(dead_code, unused_imports)]
mod translate;

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hasher};

use libfuzzer_sys::fuzz_target;

use translate::{Api, StreamTranslator, TranslateError};

/// The `created` of translated chunks: fixed, so that outputs compare.
const CREATED: u64 = 1_700_000_000;

/// The longest error message accepted, in bytes.
const MAX_ERROR: usize = 400;

/// The longest run of the input an error message may hold.
const MAX_QUOTED: usize = 64;

/// Inputs up to this size are also fed one byte at a time.
const BYTEWISE: usize = 4096;

fn api(bit: u8) -> Api {
    if bit == 0 { Api::Chat } else { Api::Messages }
}

/// Checks an error: short, and its variable part quoting no more than [`MAX_QUOTED`]
/// consecutive input bytes.
///
/// The variable part is the path the error starts with (`Invalid`'s `what`, `Untranslatable`'s
/// `feature`, up to the first space): member names from the body (at most 64 identifier bytes,
/// else `<unnamed>`), indices and `.type=…`; after it every error has fixed words (`must be a
/// string`, `cannot be translated to …`), which an input may hold too — the fuzzer put
/// `…image_url.url must be an http(s) URL or a base64…` and `…cannot be translated to OpenAI
/// Chat Completions, the upstream…` in inputs, no quoting — so they are left out (the 400-byte
/// bound covers them). Runs are compared by their 64-bit hashes alone, never with `memcmp` (not
/// even a hash set's on a tag match), whose arguments libFuzzer's interceptor turns into
/// dictionary entries: that is how those inputs got the module's wording.
fn check_error(error: &TranslateError, input: &[u8]) {
    let message = error.to_string();
    assert!(
        message.len() <= MAX_ERROR,
        "an error of {} bytes: {message}",
        message.len()
    );
    let part = match error {
        TranslateError::Invalid { what } => what,
        TranslateError::Untranslatable { feature, .. } => feature,
    };
    let part = part.split(' ').next().unwrap_or_default();
    if part.len() <= MAX_QUOTED || input.len() <= MAX_QUOTED {
        return;
    }
    let runs: HashSet<u64> = part.as_bytes().windows(MAX_QUOTED + 1).map(hash).collect();
    if let Some(run) = input
        .windows(MAX_QUOTED + 1)
        .find(|run| runs.contains(&hash(run)))
    {
        panic!(
            "the error quotes {} bytes of the input ({:?}): {message}",
            run.len(),
            String::from_utf8_lossy(run)
        );
    }
}

/// A run's hash (std's SipHash: not instrumented, no comparison of the bytes).
fn hash(run: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(run);
    hasher.finish()
}

/// The translated output of `input` fed as `pieces`, then finished.
fn stream<'a>(
    from: Api,
    to: Api,
    usage: bool,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut translator = StreamTranslator::new(from, to)
        .with_usage(usage)
        .with_created(CREATED);
    let mut out = Vec::new();
    for piece in pieces {
        out.extend_from_slice(&translator.feed(piece));
    }
    out.extend_from_slice(&translator.finish());
    // Finished: nothing more comes out.
    assert!(translator.finish().is_empty(), "a second finish wrote");
    assert!(translator.feed(b"data: {}\n\n").is_empty() || from == to, "fed after finish");
    out
}

fuzz_target!(|data: &[u8]| {
    let [mode, body @ ..] = data else {
        return;
    };
    let (from, to) = (api(mode & 1), api(mode & 2));
    let usage = mode & 4 != 0;
    match (mode >> 3) % 3 {
        kind @ (0 | 1) => {
            let result = if kind == 0 {
                translate::request(body, from, to)
            } else {
                translate::response(body, from, to)
            };
            match result {
                Ok(out) if from == to => assert_eq!(&out[..], body, "same API: unchanged"),
                Ok(out) => {
                    let object =
                        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&out)
                            .expect("a translation is a JSON object");
                    if kind == 0 {
                        assert!(object.get("model").is_some_and(|m| m.is_string()), "model");
                        assert!(
                            object.get("messages").is_some_and(|m| m.is_array()),
                            "messages"
                        );
                        if to == Api::Messages {
                            assert!(
                                object
                                    .get("max_tokens")
                                    .and_then(serde_json::Value::as_u64)
                                    .is_some_and(|n| n > 0),
                                "max_tokens: {:?}",
                                object.get("max_tokens")
                            );
                        }
                    }
                }
                Err(error) => {
                    assert_ne!(from, to, "same API: never refused");
                    check_error(&error, body);
                }
            }
        }
        _ => {
            let whole = stream(from, to, usage, [body]);
            if from == to {
                assert_eq!(whole, body, "same API: passed through");
            }
            assert!(
                whole.len() <= 16 * body.len() + 4096,
                "{} bytes out of {}",
                whole.len(),
                body.len()
            );
            let cut = body
                .first()
                .map_or(0, |&b| body.len() * usize::from(b) / 255);
            let (head, tail) = body.split_at(cut);
            let split = stream(from, to, usage, [head, tail]);
            assert!(
                whole == split,
                "cut at {cut}: {:?} whole, {:?} cut",
                String::from_utf8_lossy(&whole),
                String::from_utf8_lossy(&split)
            );
            if body.len() <= BYTEWISE {
                let bytewise = stream(from, to, usage, body.chunks(1));
                assert!(
                    whole == bytewise,
                    "a byte at a time: {:?} whole, {:?} bytewise",
                    String::from_utf8_lossy(&whole),
                    String::from_utf8_lossy(&bytewise)
                );
            }
        }
    }
});
