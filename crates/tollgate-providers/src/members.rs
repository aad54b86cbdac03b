//! Where a JSON object's top-level members are in its bytes, so that a rewriter can replace one
//! value or add one member without parsing the body into a tree and writing it again (the
//! caller's bytes, order and spacing stay as they were).

use std::ops::Range;

use tollgate_core::json::{JsonError, Scanner};

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

/// Scans `bytes`, which must be one JSON object (with any whitespace around it), for the values
/// of `names` (decoded: `"mod\u0065l"` is `model`). The whole text is checked as `serde_json`
/// checks it ([`Scanner`]); nothing is allocated.
///
/// # Errors
///
/// When `bytes` is not a JSON object.
pub(crate) fn find<const N: usize>(bytes: &[u8], names: [&str; N]) -> Result<Found<N>, JsonError> {
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
        let found = find(body, ["model", "stream"]).unwrap();
        let model = found.values[0].clone().unwrap();
        assert_eq!(&body[model], br#""gpt-4o""#);
        assert_eq!(found.values[1], None);
        assert!(!found.repeated && !found.empty);
        assert_eq!(body[found.end], b'}');
        assert_eq!(found.end, body.len() - 2);
    }

    #[test]
    fn notes_repeats_and_empty_objects() {
        let found = find(br#"{"model":1,"model":2}"#, ["model"]).unwrap();
        assert!(found.repeated);
        assert_eq!(found.values[0], Some(19..20));
        let empty = find(b"{}", ["model"]).unwrap();
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
            assert!(find(body, ["model"]).is_err(), "{body:?}");
        }
    }
}
