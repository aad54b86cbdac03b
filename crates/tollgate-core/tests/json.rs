//! `tollgate_core::json::Scanner` against `serde_json`: the same texts accepted, the same
//! characters counted.

use proptest::prelude::*;
use serde_json::Value;
use tollgate_core::json::{MAX_DEPTH, Scanner};

/// Whether `serde_json` reads `text` as one JSON value (skipping it, as the scanner does).
fn serde_accepts(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

fn scanner_accepts(text: &str) -> bool {
    let Ok(mut scanner) = Scanner::new(text.as_bytes()) else {
        return false;
    };
    scanner.skip().is_ok() && scanner.finish().is_ok()
}

/// The characters of every string value in `value` (not the names of members).
fn characters(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(items) => items.iter().map(characters).sum(),
        Value::Object(members) => members.values().map(characters).sum(),
        _ => 0,
    }
}

fn counted(text: &str) -> Option<u64> {
    let mut scanner = Scanner::new(text.as_bytes()).ok()?;
    let n = scanner.characters().ok()?;
    scanner.finish().ok()?;
    Some(n)
}

#[test]
fn accepts_what_serde_json_accepts() {
    for text in [
        "0",
        "-0",
        "1.5e-3",
        " \t\r\n[ ] ",
        "{}",
        r#"{"a":[1,{"b":null}],"c":true,"d":false}"#,
        r#""\u00e9\ud83d\ude00\n\"\\\/\b\f\r\t""#,
        r#""é🙂""#,
        r#"[[[[]]]]"#,
    ] {
        assert!(serde_accepts(text), "{text}");
        assert!(scanner_accepts(text), "{text}");
    }
}

#[test]
fn refuses_what_serde_json_refuses() {
    for text in [
        "",
        " ",
        "01",
        "1.",
        ".5",
        "1e",
        "-",
        "+1",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{1:2}",
        "[1 2]",
        "tru",
        "nul",
        "\"a",
        "\"\\x\"",
        "\"\\u12\"",
        "\"a\u{1}b\"",
        "[}",
        "{]",
        "[1] [2]",
        "{\"a\":1}}",
    ] {
        assert!(!serde_accepts(text), "{text:?}");
        assert!(!scanner_accepts(text), "{text:?}");
    }
}

#[test]
fn counts_characters_as_decoded() {
    assert_eq!(counted(r#""é🙂a""#), Some(3));
    assert_eq!(counted(r#""\u00e9\ud83d\ude00\n""#), Some(3));
    assert_eq!(
        counted(r#"{"role":"user","content":["ab",{"x":"c"}],"n":12}"#),
        Some(7)
    );
    // A lone surrogate: skipped, but not a string anyone can count.
    assert_eq!(counted(r#""\ud83d""#), None);
    assert!(scanner_accepts(r#""\ud83d""#));
}

#[test]
fn reads_members_and_numbers() {
    let body = br#" { "mod\u0065l" : "gpt-4o" , "max_tokens":256, "n":null, "x":-1 } "#;
    let mut scanner = Scanner::new(body).unwrap();
    let mut seen = Vec::new();
    let empty = scanner
        .object(|scanner, name| {
            if name.is("model") {
                let range = scanner.skip()?;
                seen.push(("model", format!("{:?}", std::str::from_utf8(&body[range]))));
            } else if name.is("max_tokens") || name.is("n") {
                seen.push(("number", format!("{:?}", scanner.unsigned()?)));
            } else {
                assert!(scanner.unsigned().is_err());
                scanner.skip()?;
            }
            Ok(())
        })
        .unwrap();
    scanner.finish().unwrap();
    assert!(!empty);
    assert_eq!(
        seen,
        [
            ("model", r#"Ok("\"gpt-4o\"")"#.to_owned()),
            ("number", "Some(256)".to_owned()),
            ("number", "None".to_owned())
        ]
    );
    for (text, expected) in [
        ("18446744073709551615", Some(u64::MAX)),
        ("18446744073709551616", None),
        ("1.0", None),
        ("1e2", None),
        ("\"1\"", None),
    ] {
        let mut scanner = Scanner::new(text.as_bytes()).unwrap();
        assert_eq!(scanner.unsigned().ok().flatten(), expected, "{text}");
    }
}

#[test]
fn refuses_invalid_utf8_and_deep_nesting_without_recursion() {
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(scanner_accepts(&deep));
    let deeper = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert!(!scanner_accepts(&deeper));
    // Far deeper than any stack would take by recursion: refused, no overflow.
    assert!(!scanner_accepts(&"[".repeat(1_000_000)));
    assert!(!scanner_accepts(&"{\"a\":".repeat(100_000)));
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn agrees_with_serde_json_on_what_it_writes(value in json_value()) {
        for text in [
            serde_json::to_string(&value).unwrap(),
            serde_json::to_string_pretty(&value).unwrap(),
        ] {
            prop_assert!(scanner_accepts(&text), "{}", text);
            prop_assert_eq!(counted(&text), Some(characters(&value)));
        }
    }

    #[test]
    fn agrees_with_serde_json_on_damaged_texts(
        value in json_value(),
        cut in any::<prop::sample::Index>(),
        insert in prop::sample::select(vec!["", ",", "]", "}", "\"", "\\", ":", "0", "-", ".", "e", " ", "\u{1}", "{", "["]),
        remove in 0usize..3,
    ) {
        let mut text = serde_json::to_string(&value).unwrap();
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = at;
        for _ in 0..remove {
            if let Some(c) = text[end..].chars().next() {
                end += c.len_utf8();
            }
        }
        text.replace_range(at..end, insert);
        prop_assert_eq!(scanner_accepts(&text), serde_accepts(&text), "{:?}", text);
    }
}

/// Whether the scanner reads `bytes` to its end, skipping and counting alike; the offset of the
/// error otherwise (the same for both).
fn read_bytes(bytes: &[u8]) -> Result<(), usize> {
    let skipped = Scanner::new(bytes)
        .and_then(|mut scanner| scanner.skip().and_then(|_| scanner.finish()))
        .map_err(|error| error.offset());
    let counted = Scanner::new(bytes)
        .and_then(|mut scanner| scanner.characters().and_then(|_| scanner.finish()))
        .map_err(|error| error.offset());
    assert_eq!(skipped, counted, "{bytes:?}");
    skipped
}

#[test]
fn refuses_bytes_that_are_not_utf8_where_they_stand() {
    // In a string: the offset of the first byte that is not UTF-8.
    for (text, at) in [
        (&b"\"\xff\""[..], 1),
        (b"[\"ok\",\"caf\xc3\"]", 10),   // cut short by the quote
        (b"{\"a\":\"\xc0\xaf\"}", 6),    // overlong
        (b"\"\xed\xa0\x80\"", 1),        // a surrogate, encoded
        (b"\"\\n\xf4\x90\x80\x80\"", 3), // past U+10FFFF, after an escape
        (b"{\"na\xffme\":1}", 4),        // in a member's name
    ] {
        assert_eq!(read_bytes(text), Err(at), "{text:?}");
    }
    // A long string, its bad byte past the first rounds of sixteen.
    let mut long = b"\"".to_vec();
    long.extend(b"\xc3\xa9".repeat(20));
    long.push(0xff);
    long.extend(b"abc\"");
    assert_eq!(read_bytes(&long), Err(41));
    // Outside strings JSON is ASCII: any other byte is unexpected there.
    assert!(read_bytes(b"\xef\xbb\xbf{}").is_err());
    assert!(read_bytes(b"{}\xff").is_err());
    assert!(read_bytes(b"[1,\xc3\xa9]").is_err());
    // And UTF-8 in strings, at every length and place, is read.
    for n in 0..40 {
        let text = format!("[\"{}\",\"{}é\"]", "é🙂".repeat(n), "x".repeat(n));
        assert_eq!(read_bytes(text.as_bytes()), Ok(()), "{text}");
        assert_eq!(counted(&text), Some(3 * n as u64 + 1));
    }
}
