//! What a key is made of beyond equality: identities and variants of 128 bits, the weight a
//! key counts for in the byte budget, the hash a table spreads keys by, and what its `Debug`
//! shows. Found by mutation testing (CONTRIBUTING.md, "Mutation testing").

use std::hash::{BuildHasher, Hash};

use bytes::Bytes;
use http::{HeaderName, Method, Uri};

use super::{Hashers, Key};

fn request(key: &str) -> http::Request<()> {
    http::Request::builder()
        .header("authorization", key)
        .header("anthropic-version", "2023-06-01")
        .body(())
        .unwrap()
}

fn key(hashers: &Hashers, body: &'static [u8]) -> Key {
    let uri: Uri = "https://api.openai.com/v1/chat/completions?x=1"
        .parse()
        .unwrap();
    hashers.key(&Method::POST, &uri, 7, Bytes::from_static(body))
}

#[test]
fn identities_and_variants_use_both_halves_of_128_bits() {
    let hashers = Hashers::new();
    let names = [http::header::AUTHORIZATION];
    let variants = [HeaderName::from_static("anthropic-version")];
    // Each half is a 64-bit seeded hash: both zero has odds of 2⁻⁶⁴.
    for key in ["a", "b", "c"] {
        let identity = hashers.identity(&request(key), &names);
        assert_ne!(identity >> 64, 0, "{key}");
        assert_ne!(identity as u64, 0, "{key}");
        let variant = hashers.variant(&request(key), &variants);
        assert_ne!(variant >> 64, 0, "{key}");
        assert_ne!(variant as u64, 0, "{key}");
    }
    assert_eq!(hashers.variant(&request("a"), &[]), 0);
}

#[test]
fn a_key_weighs_its_body_its_uri_and_64_bytes() {
    let hashers = Hashers::new();
    // "https" (5) + "api.openai.com" (14) + "/v1/chat/completions?x=1" (24) + 10 + 64.
    assert_eq!(key(&hashers, b"0123456789").weight(), 5 + 14 + 24 + 10 + 64);
    assert_eq!(key(&hashers, b"").weight(), 5 + 14 + 24 + 64);
    let relative = hashers.key(
        &Method::GET,
        &"/v1/models".parse().unwrap(),
        0,
        Bytes::from_static(b"x"),
    );
    assert_eq!(relative.weight(), 10 + 1 + 64);
}

#[test]
fn a_key_hashes_as_its_own_hash() {
    let hashers = Hashers::new();
    let state = foldhash::fast::RandomState::default();
    let hash = |key: &Key| {
        let mut h = state.build_hasher();
        key.hash(&mut h);
        std::hash::Hasher::finish(&h)
    };
    let (a, b) = (key(&hashers, b"a"), key(&hashers, b"b"));
    assert_eq!(hash(&a), hash(&key(&hashers, b"a")));
    assert_ne!(hash(&a), hash(&b));
}

#[test]
fn a_key_shows_its_method_uri_and_body_length_not_its_body() {
    let hashers = Hashers::new();
    let shown = format!("{:?}", key(&hashers, b"secret prompt"));
    assert!(
        shown.starts_with(
            "Key { method: POST, uri: https://api.openai.com/v1/chat/completions?x=1, \
             body_len: 13, hash: "
        ),
        "{shown}"
    );
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn keys_of_equal_hash_are_equal_only_with_equal_fields() {
    // A collision of the 64-bit hash, made by hand: equality still compares every field.
    let hashers = Hashers::new();
    let a = key(&hashers, b"a");
    let with = |identity: u128, body: &'static [u8]| Key {
        hash: a.hash,
        method: a.method.clone(),
        uri: a.uri.clone(),
        identity,
        body: Bytes::from_static(body),
    };
    assert_eq!(a, with(7, b"a"));
    assert_ne!(a, with(8, b"a"));
    assert_ne!(a, with(7, b"b"));
}

#[test]
fn numbers_after_an_unterminated_string_are_not_read() {
    assert_eq!(
        super::number_tokens(br#"{"a":1,"b":-2.5e3}"#),
        [&b"1"[..], b"-2.5e3"]
    );
    assert_eq!(super::number_tokens(br#"["a\"1",2]"#), [&b"2"[..]]);
    for body in [
        &br#"["a 1, 2"#[..],
        br#"["a\"1, 2"#,
        br#"["a\"#,
        br#"[1, "ab\"#,
    ] {
        let tokens = super::number_tokens(body);
        assert!(tokens.len() <= 1, "{tokens:?}");
        assert!(tokens.iter().all(|t| *t == b"1"), "{tokens:?}");
    }
}

#[test]
fn a_type_error_says_what_was_expected() {
    use serde::de::{Error, Unexpected};
    let text = serde_json::Error::invalid_type(Unexpected::Bool(true), &super::TextVisitor);
    assert!(text.to_string().contains("a string"), "{text}");
    let next = std::cell::Cell::new(0);
    let seed = super::NodeSeed {
        numbers: &[],
        next: &next,
    };
    let node = serde_json::Error::invalid_type(Unexpected::Bool(true), &seed);
    assert!(node.to_string().contains("a JSON value"), "{node}");
}
