//! Cache keys: method, URI, the caller's identity (hashed) and the body, raw or normalised.

use std::cell::Cell;
use std::hash::{BuildHasher, Hash, Hasher};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Uri};
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::policy::CacheIdentity;

/// The per-cache hashers: one fast one for keys, two seeded quality ones for identities.
#[derive(Debug)]
pub(crate) struct Hashers {
    key: foldhash::fast::RandomState,
    identity: [foldhash::quality::RandomState; 2],
}

impl Hashers {
    pub(crate) fn new() -> Self {
        Hashers {
            key: foldhash::fast::RandomState::default(),
            identity: Default::default(),
        }
    }

    /// 128 bits of seeded hash over the identity headers' values and the [`CacheIdentity`]
    /// extension; the raw values are never kept.
    pub(crate) fn identity<B>(&self, request: &http::Request<B>, headers: &[HeaderName]) -> u128 {
        let tenant = request.extensions().get::<CacheIdentity>();
        let [a, b] = &self.identity;
        let one = |state: &foldhash::quality::RandomState| {
            let mut h = state.build_hasher();
            write_identity(&mut h, request.headers(), headers, tenant);
            h.finish()
        };
        (u128::from(one(a)) << 64) | u128::from(one(b))
    }

    /// 128 bits of seeded hash over the values of `headers`, which select another answer
    /// (`accept-encoding`, `anthropic-version`, …): they are part of every key, shared or not.
    pub(crate) fn variant<B>(&self, request: &http::Request<B>, headers: &[HeaderName]) -> u128 {
        if headers.is_empty() {
            return 0;
        }
        let [a, b] = &self.identity;
        let one = |state: &foldhash::quality::RandomState| {
            let mut h = state.build_hasher();
            h.write_u8(0xa5); // apart from identities
            write_identity(&mut h, request.headers(), headers, None);
            h.finish()
        };
        (u128::from(one(a)) << 64) | u128::from(one(b))
    }

    /// A key for these parts.
    pub(crate) fn key(&self, method: &Method, uri: &Uri, identity: u128, body: Bytes) -> Key {
        let mut h = self.key.build_hasher();
        method.as_str().hash(&mut h);
        uri.scheme_str().hash(&mut h);
        uri.authority().map(|a| a.as_str()).hash(&mut h);
        uri.path_and_query().map(|p| p.as_str()).hash(&mut h);
        identity.hash(&mut h);
        h.write(&body);
        Key {
            hash: h.finish(),
            method: method.clone(),
            uri: uri.clone(),
            identity,
            body,
        }
    }
}

fn write_identity(
    h: &mut impl Hasher,
    map: &HeaderMap,
    names: &[HeaderName],
    tenant: Option<&CacheIdentity>,
) {
    for (i, name) in names.iter().enumerate() {
        for value in map.get_all(name) {
            // The position tells which header; the length ends each value.
            h.write_usize(i);
            h.write_usize(value.len());
            h.write(value.as_bytes());
        }
    }
    if let Some(CacheIdentity(tenant)) = tenant {
        h.write_u8(0xff);
        h.write_usize(tenant.len());
        h.write(tenant.as_bytes());
    }
}

/// What a cache entry is found by. `Hash` writes the precomputed hash only; `Eq` compares every
/// field, so two different requests whose hashes collide never share an entry.
#[derive(Clone)]
pub(crate) struct Key {
    hash: u64,
    method: Method,
    uri: Uri,
    identity: u128,
    pub(crate) body: Bytes,
}

impl Key {
    /// The same request with another body.
    pub(crate) fn with_body(&self, hashers: &Hashers, body: Bytes) -> Key {
        hashers.key(&self.method, &self.uri, self.identity, body)
    }

    /// Bytes held for this key, for the size bound.
    pub(crate) fn weight(&self) -> usize {
        let uri = self.uri.scheme_str().map_or(0, str::len)
            + self.uri.authority().map_or(0, |a| a.as_str().len())
            + self.uri.path_and_query().map_or(0, |p| p.as_str().len());
        self.body.len() + uri + 64
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && self.identity == other.identity
            && self.method == other.method
            && self.body == other.body
            && self.uri == other.uri
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies hold prompts: show sizes and the hash only.
        f.debug_struct("Key")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("body_len", &self.body.len())
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// A request body, parsed once when the raw-bytes lookup missed.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The normalised body: JSON re-serialised with object keys sorted and no whitespace;
    /// the raw bytes when the body is not JSON.
    pub(crate) normalised: Bytes,
    /// Whether the body is a JSON object with `"temperature": 0` and `n` absent or 1.
    pub(crate) deterministic: bool,
}

/// Parses `body`. Nesting deeper than serde_json's recursion limit (128) is not JSON to it,
/// so the raw bytes are used.
///
/// Numbers are written back as they were written: serde_json reads every number it cannot
/// hold in a `u64` or an `i64` as an `f64`, so re-serialising its value would make
/// `18446744073709551616` and `18446744073709551617` (or two decimals that differ past the
/// 17th digit) one key, though the provider may read two different requests. `1.0` and
/// `1.00` stay two keys: a missed hit, never a wrong answer.
pub(crate) fn parse(body: &Bytes) -> Parsed {
    let numbers = number_tokens(body);
    let next = Cell::new(0);
    let seed = NodeSeed {
        numbers: &numbers,
        next: &next,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = seed
        .deserialize(&mut deserializer)
        .and_then(|node| deserializer.end().map(|()| node));
    match parsed {
        Ok(node) => {
            let mut out = Vec::with_capacity(body.len());
            node.write(&mut out);
            let normalised = if out[..] == body[..] {
                body.clone()
            } else {
                Bytes::from(out)
            };
            Parsed {
                normalised,
                deterministic: node.is_deterministic(),
            }
        }
        Err(_) => Parsed {
            normalised: body.clone(),
            deterministic: false,
        },
    }
}

/// A parsed JSON value that borrows every string written without escapes, so that writing it
/// back is a copy: a 4 KiB prompt is scanned once (by the parser), not unescaped and
/// re-escaped.
enum Node<'a> {
    Null,
    Bool(bool),
    /// A number: its text as written, and its value.
    Number(&'a [u8], f64),
    Text(Text<'a>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Text<'a>, Node<'a>)>),
}

/// A JSON string: its raw text when it had no escapes (then it holds no `"`, `\` or control
/// character, and can be written back verbatim), else its unescaped value.
enum Text<'a> {
    Raw(&'a str),
    Escaped(String),
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        match self {
            Text::Raw(s) => s,
            Text::Escaped(s) => s,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Text::Raw(s) => {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            }
            // Writing a string into a Vec cannot fail.
            Text::Escaped(s) => {
                let _ = serde_json::to_writer(&mut *out, s);
            }
        }
    }
}

impl Node<'_> {
    /// Writes the value with object keys in byte order and no whitespace (whatever serde_json's
    /// `preserve_order` feature says). The parser bounded the depth at 128.
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Node::Null => out.extend_from_slice(b"null"),
            Node::Bool(true) => out.extend_from_slice(b"true"),
            Node::Bool(false) => out.extend_from_slice(b"false"),
            Node::Number(text, _) => out.extend_from_slice(text),
            Node::Text(text) => text.write(out),
            Node::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            // Sorted by key when parsed.
            Node::Object(entries) => {
                out.push(b'{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    key.write(out);
                    out.push(b':');
                    value.write(out);
                }
                out.push(b'}');
            }
        }
    }

    fn number(&self) -> Option<f64> {
        match *self {
            Node::Number(_, n) => Some(n),
            _ => None,
        }
    }

    /// A JSON object with `"temperature": 0` and `n` absent, null or 1.
    fn is_deterministic(&self) -> bool {
        let Node::Object(entries) = self else {
            return false;
        };
        let get = |name: &str| entries.iter().find(|(k, _)| k.as_str() == name);
        let zero = get("temperature").and_then(|(_, v)| v.number()) == Some(0.0);
        let one = match get("n") {
            None | Some((_, Node::Null)) => true,
            Some((_, n)) => n.number() == Some(1.0),
        };
        zero && one
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Raw(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
        Ok(Text::Escaped(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
        Ok(Text::Escaped(s))
    }
}

/// The number tokens of `body`, valid JSON, in the order they are written (the order in which
/// serde_json visits them): the bytes outside strings from a `-` or a digit up to the next
/// byte that cannot be part of a number.
fn number_tokens(body: &[u8]) -> Vec<&[u8]> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        match b {
            b'"' => {
                // Skip the string, and its escapes, a run of plain bytes at a time.
                i += 1;
                let mut closed = false;
                while let Some(k) = memchr::memchr2(b'"', b'\\', body.get(i..).unwrap_or(&[])) {
                    let c = body[i + k];
                    i += k + 1;
                    if c == b'"' {
                        closed = true;
                        break;
                    }
                    i += 1; // the escaped byte
                }
                if !closed {
                    // An unterminated string: the body is not JSON, and nothing after it is a
                    // number.
                    break;
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while body
                    .get(i)
                    .is_some_and(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    i += 1;
                }
                tokens.push(&body[start..i]);
            }
            _ => i += 1,
        }
    }
    tokens
}

/// Deserializes a [`Node`], taking each number's text from the tokens in order.
#[derive(Clone, Copy)]
struct NodeSeed<'s, 'de> {
    numbers: &'s [&'de [u8]],
    next: &'s Cell<usize>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, 'de> {
    type Value = Node<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> NodeSeed<'_, 'de> {
    fn number<E: de::Error>(self, value: f64) -> Result<Node<'de>, E> {
        let i = self.next.get();
        self.next.set(i + 1);
        match self.numbers.get(i) {
            Some(text) => Ok(Node::Number(text, value)),
            // Cannot happen for valid JSON; if it did, the raw bytes are used.
            None => Err(E::custom("number tokens out of step")),
        }
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, 'de> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(b))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Node<'de>, E> {
        self.number(n as f64)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Node<'de>, E> {
        self.number(n as f64)
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Node<'de>, E> {
        self.number(n)
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Text(Text::Raw(s)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Node<'de>, E> {
        Ok(Node::Text(Text::Escaped(s.to_owned())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Node<'de>, E> {
        Ok(Node::Text(Text::Escaped(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        // Capacity hints come from the input: capped, so a hostile body cannot reserve much.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key::<Text<'de>>()? {
            entries.push((key, map.next_value_seed(self)?));
        }
        // Sorted by key (stably: equal keys keep their order), then duplicates dropped but the
        // last, as when parsing into a map. O(n log n) whatever the input.
        entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        entries.dedup_by(|later, earlier| {
            let same = later.0.as_str() == earlier.0.as_str();
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        Ok(Node::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        String::from_utf8(
            parse(&Bytes::copy_from_slice(s.as_bytes()))
                .normalised
                .to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn normalises_order_and_whitespace() {
        assert_eq!(
            norm(r#"{ "b": [1, {"z": null, "a": "x"}], "a": 1.5 }"#),
            r#"{"a":1.5,"b":[1,{"a":"x","z":null}]}"#
        );
        assert_eq!(norm("not json {"), "not json {");
        assert_eq!(norm(r#""\u00e9""#), "\"é\"");
        assert_eq!(
            norm(r#"{"a":"x\"y","a":2,"b":"\n"}"#),
            r#"{"a":2,"b":"\n"}"#
        );
        assert_eq!(norm("[1.0, 1.00, 1]"), "[1.0,1.00,1]");
        assert_eq!(
            norm(r#"{"s":"-1 \" 2","n":-0.5E+2}"#),
            r#"{"n":-0.5E+2,"s":"-1 \" 2"}"#
        );
        assert_eq!(norm("[1, -2, 1.5e3, true, null]"), "[1,-2,1.5e3,true,null]");
    }

    #[test]
    fn deterministic_rules() {
        let d = |s: &str| parse(&Bytes::copy_from_slice(s.as_bytes())).deterministic;
        assert!(d(r#"{"temperature":0}"#));
        assert!(d(r#"{"temperature":0.0,"n":1}"#));
        assert!(!d(r#"{"temperature":0,"n":2}"#));
        assert!(!d(r#"{"temperature":0.2}"#));
        assert!(!d(r#"{}"#));
        assert!(!d(r#"[0]"#));
    }

    #[test]
    fn equal_keys_need_equal_fields() {
        let h = Hashers::new();
        let uri: Uri = "https://api.example.com/v1/chat".parse().unwrap();
        let a = h.key(&Method::POST, &uri, 1, Bytes::from_static(b"x"));
        let b = h.key(&Method::POST, &uri, 2, Bytes::from_static(b"x"));
        let c = h.key(&Method::POST, &uri, 1, Bytes::from_static(b"x"));
        assert_ne!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn identity_depends_on_keys_and_tenant() {
        let h = Hashers::new();
        let names = [http::header::AUTHORIZATION];
        let req = |key: &str| {
            http::Request::builder()
                .header("authorization", key)
                .body(())
                .unwrap()
        };
        assert_eq!(h.identity(&req("a"), &names), h.identity(&req("a"), &names));
        assert_ne!(h.identity(&req("a"), &names), h.identity(&req("b"), &names));
        let mut tenant = req("a");
        tenant
            .extensions_mut()
            .insert(CacheIdentity("t1".to_owned()));
        assert_ne!(h.identity(&tenant, &names), h.identity(&req("a"), &names));
    }
}

#[cfg(test)]
mod decisions;
