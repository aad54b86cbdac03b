//! Where a JSON object's top-level members are in its bytes, so that a rewriter can replace one
//! value or add one member without parsing the body into a tree and writing it again (the
//! caller's bytes, order and spacing stay as they were).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

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
/// of `names`. The whole text is checked as `serde_json` checks it; nothing is allocated but a
/// key with escapes.
///
/// # Errors
///
/// When `bytes` is not a JSON object.
pub(crate) fn find<const N: usize>(
    bytes: &[u8],
    names: [&str; N],
) -> Result<Found<N>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let (values, repeated, empty) = (&mut deserializer).deserialize_map(Scan {
        base: bytes.as_ptr() as usize,
        names,
    })?;
    deserializer.end()?;
    // The object's last byte is its `}`: only whitespace follows it.
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    Ok(Found {
        values,
        repeated,
        end,
        empty,
    })
}

/// The visitor behind [`find`]: each value is borrowed as a [`RawValue`], a slice of the input
/// whose address gives its place.
struct Scan<'n, const N: usize> {
    base: usize,
    names: [&'n str; N],
}

type Scanned<const N: usize> = ([Option<Range<usize>>; N], bool, bool);

impl<'de, const N: usize> Visitor<'de> for Scan<'_, N> {
    type Value = Scanned<N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = [const { None }; N];
        let mut repeated = false;
        let mut empty = true;
        while let Some(Name(key)) = map.next_key()? {
            empty = false;
            let value: &'de RawValue = map.next_value()?;
            let Some(i) = self.names.iter().position(|name| *name == key) else {
                continue;
            };
            let text = value.get();
            let start = (text.as_ptr() as usize)
                .checked_sub(self.base)
                .ok_or_else(|| de::Error::custom("a value outside the body"))?;
            repeated |= values[i].is_some();
            values[i] = Some(start..start + text.len());
        }
        Ok((values, repeated, empty))
    }
}

/// A member's name, borrowed from the input unless it has escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(name)))
            }

            fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }
        }

        deserializer.deserialize_str(NameVisitor)
    }
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
