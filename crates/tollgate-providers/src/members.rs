//! Where a JSON object's top-level members are in its bytes, so that a rewriter can replace one
//! value or add one member without parsing the body into a tree and writing it again (the
//! caller's bytes, order and spacing stay as they were).

use std::ops::Range;

use tollgate_core::body::BufferedBody;
use tollgate_core::json::{JsonError, Member, Scanner};

/// What a scan found of up to `N` member names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found<const N: usize> {
    /// Where the value of each name is, when present once.
    pub(crate) values: [Option<Range<usize>>; N],
    /// Whether a name appeared more than once (the caller falls back to a full parse, which
    /// keeps the last, as `serde_json` does).
    pub(crate) repeated: bool,
    /// Where the closing `}` of the object is.
    pub(crate) end: usize,
    /// Whether the object has no member.
    pub(crate) empty: bool,
}

/// Where `names` are in `body`, which must be one JSON object: from the body's
/// [outline](BufferedBody::outline) (scanned once for every reader of this body), or, when it
/// has none, from a [`scan`] of its bytes (which says why it is not a JSON object).
///
/// # Errors
///
/// When the body is not a JSON object.
pub(crate) fn find<const N: usize>(
    body: &BufferedBody,
    names: [&str; N],
) -> Result<Found<N>, JsonError> {
    let bytes = body.bytes();
    let Some(outline) = body.outline() else {
        return scan(bytes, names);
    };
    let found = outline.find(bytes, names);
    // The outline's text is one object with only whitespace around it.
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    Ok(Found {
        values: found.members.map(|member| member.map(Member::value)),
        repeated: found.repeated,
        end,
        empty: outline.is_empty(),
    })
}

/// Scans `bytes`, which must be one JSON object (with any whitespace around it), for the values
/// of `names` (decoded: `"mod\u0065l"` is `model`). The whole text is checked as `serde_json`
/// checks it ([`Scanner`]); nothing is allocated.
///
/// # Errors
///
/// When `bytes` is not a JSON object.
pub(crate) fn scan<const N: usize>(bytes: &[u8], names: [&str; N]) -> Result<Found<N>, JsonError> {
    let mut scanner = Scanner::new(bytes)?;
    let mut values = [const { None }; N];
    let mut repeated = false;
    let empty = scanner.object(|scanner, name| {
        let value = scanner.skip()?;
        if let Some(i) = names.iter().position(|n| name.is(n)) {
            repeated |= values[i].is_some();
            values[i] = Some(value);
        }
        Ok(())
    })?;
    // The object's last byte is its `}`.
    let end = scanner.position() - 1;
    scanner.finish()?;
    Ok(Found {
        values,
        repeated,
        end,
        empty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values_by_their_decoded_names() {
        let body = br#" { "n" : 1, "mod\u0065l":"gpt-4o" ,"x":{"model":2}} "#;
        let found = scan(body, ["model", "stream"]).unwrap();
        let model = found.values[0].clone().unwrap();
        assert_eq!(&body[model], br#""gpt-4o""#);
        assert_eq!(found.values[1], None);
        assert!(!found.repeated && !found.empty);
        assert_eq!(body[found.end], b'}');
        assert_eq!(found.end, body.len() - 2);
    }

    #[test]
    fn notes_repeats_and_empty_objects() {
        let found = scan(br#"{"model":1,"model":2}"#, ["model"]).unwrap();
        assert!(found.repeated);
        assert_eq!(found.values[0], Some(19..20));
        let empty = scan(b"{}", ["model"]).unwrap();
        assert!(empty.empty && empty.values[0].is_none());
        assert_eq!(empty.end, 1);
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for body in [
            &b""[..],
            b"[]",
            b"\"model\"",
            b"{\"model\":}",
            b"{\"model\":1} {}",
            b"{\"model\":1",
            b"{\"a\":1,}",
        ] {
            assert!(scan(body, ["model"]).is_err(), "{body:?}");
            let body = BufferedBody::from(body.to_vec());
            assert!(find(&body, ["model"]).is_err(), "{body:?}");
        }
    }

    #[test]
    fn the_outline_finds_what_the_scan_finds() {
        let many: Vec<String> = (0..30).map(|i| format!(r#""m{i}":{i}"#)).collect();
        let many = format!(r#"{{{},"model":"x"}}"#, many.join(","));
        for body in [
            r#" { "n" : 1, "mod\u0065l":"gpt-4o" ,"x":{"model":2}} "#,
            r#"{"model":1,"stream":true,"model":2}"#,
            r#"{"stream":false,"stream_options":{}}"#,
            "{}",
            " {\n} ",
            &many,
        ] {
            let buffered = BufferedBody::from(body.to_owned());
            assert_eq!(
                find(&buffered, ["model", "stream", "stream_options"]),
                scan(body.as_bytes(), ["model", "stream", "stream_options"]),
                "{body}"
            );
        }
    }
}
