//! [`Outline`]: a JSON object's top-level members found in one scan, so that several readers of
//! one body (a rewriter looking for `model`, an estimator counting a prompt) share that scan.

use std::fmt;
use std::ops::Range;

use super::{JsonError, Name, Scanner};

/// The top-level members of a JSON object, as one scan of its text found them: each member's
/// name, where its value stands, and the characters of the strings in that value (as
/// [`Scanner::characters`] counts them).
///
/// A [`BufferedBody`](crate::body::BufferedBody) keeps the outline of its bytes once one
/// reader asked for it ([`outline`](crate::body::BufferedBody::outline)), so the next reader of
/// the same body takes it from there
/// ([`kept_outline`](crate::body::BufferedBody::kept_outline)) instead of scanning the body
/// again.
///
/// An object of more than [`Outline::CAPACITY`] members (or a text of 4 GiB or more) has no
/// outline: its readers scan it themselves.
///
/// # Examples
///
/// ```
/// use tollgate_core::json::Outline;
///
/// let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Bonjour"}]}"#;
/// let outline = Outline::scan(body)?.expect("two members");
/// let model = outline.members().iter().find(|m| m.is(body, "model")).unwrap();
/// assert_eq!(&body[model.value()], br#""gpt-4o""#);
/// let messages = outline.members().iter().find(|m| m.is(body, "messages")).unwrap();
/// assert_eq!(messages.characters(), Some(11)); // "user" and "Bonjour"
/// # Ok::<(), tollgate_core::json::JsonError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Outline {
    members: [Member; Outline::CAPACITY],
    len: u8,
}

/// One top-level member of an [`Outline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The name's bytes, between its quotes.
    name: (u32, u32),
    /// The value's bytes.
    value: (u32, u32),
    /// The characters of the value's strings (fewer than its bytes, so fewer than
    /// `u32::MAX`); [`LONE_SURROGATE`] when one holds a lone surrogate (which
    /// [`Scanner::characters`] refuses and [`Scanner::skip`] accepts).
    characters: u32,
    /// Whether the name holds escapes.
    escaped: bool,
}

/// [`Member::characters`] of a value holding a lone surrogate.
const LONE_SURROGATE: u32 = u32::MAX;

impl Member {
    const NONE: Member = Member {
        name: (0, 0),
        value: (0, 0),
        characters: 0,
        escaped: false,
    };

    /// Whether the member's name, decoded, is `name`; `bytes` are the text the outline was
    /// scanned from (any other text answers `false` or nonsense, never a panic).
    #[inline]
    pub fn is(&self, bytes: &[u8], name: &str) -> bool {
        let (start, end) = (self.name.0 as usize, self.name.1 as usize);
        bytes.get(start..end).is_some_and(|raw| {
            Name {
                raw,
                escaped: self.escaped,
            }
            .is(name)
        })
    }

    /// Where the value stands in the text (no whitespace around it).
    pub fn value(&self) -> Range<usize> {
        self.value.0 as usize..self.value.1 as usize
    }

    /// The characters of every string in the value (its members' names aside), escapes counted
    /// as the characters they stand for; `None` when a string in it holds a lone surrogate.
    pub fn characters(&self) -> Option<u64> {
        (self.characters != LONE_SURROGATE).then_some(u64::from(self.characters))
    }
}

impl Outline {
    /// The most members an outline holds.
    pub const CAPACITY: usize = 24;

    /// No member, before a scan fills it.
    pub(crate) const EMPTY: Outline = Outline {
        members: [Member::NONE; Outline::CAPACITY],
        len: 0,
    };

    /// Scans `bytes`, which must be one JSON object (with any whitespace around it), checked as
    /// [`Scanner`] checks it. `Ok(None)` when the object has more than
    /// [`CAPACITY`](Self::CAPACITY) members (the text after the last that fits is then not
    /// read) or the text is 4 GiB or more. The object's closing `}` is the text's last byte
    /// that is not whitespace.
    ///
    /// # Errors
    ///
    /// When `bytes` is not a JSON object.
    pub fn scan(bytes: &[u8]) -> Result<Option<Outline>, JsonError> {
        let mut outline = Outline::EMPTY;
        Ok(outline.fill(bytes)?.then_some(outline))
    }

    /// [`scan`](Self::scan) into `self` (which must be [`EMPTY`](Self::EMPTY)), where it stands
    /// (in a body's memo: no copy); `false` for no outline.
    pub(crate) fn fill(&mut self, bytes: &[u8]) -> Result<bool, JsonError> {
        if bytes.len() >= LONE_SURROGATE as usize {
            return Ok(false);
        }
        let mut scanner = Scanner::new(bytes)?;
        let Outline { members, len } = self;
        let mut full = false;
        let base = bytes.as_ptr().addr();
        let read = scanner.object(|scanner, name| {
            let Some(slot) = members.get_mut(usize::from(*len)) else {
                full = true;
                return scanner.error("too many members for an outline");
            };
            // The object's reader stands at the value, past any whitespace.
            let start = scanner.position();
            let characters = match scanner.characters() {
                // Fewer than the text's bytes: below `LONE_SURROGATE`.
                Ok(characters) => characters as u32,
                // Only a lone surrogate fails a count and not a skip.
                Err(_) => {
                    scanner.at = start;
                    scanner.skip()?;
                    LONE_SURROGATE
                }
            };
            let name_start = name.raw.as_ptr().addr() - base;
            // Every offset is below the text's length, which fits a `u32`.
            *slot = Member {
                name: (name_start as u32, (name_start + name.raw.len()) as u32),
                value: (start as u32, scanner.position() as u32),
                characters,
                escaped: name.escaped,
            };
            *len += 1;
            Ok(())
        });
        match read {
            Ok(_) => {}
            Err(_) if full => return Ok(false),
            Err(error) => return Err(error),
        }
        scanner.finish()?;
        Ok(true)
    }

    /// The members, in the text's order (a repeated name appears each time).
    pub fn members(&self) -> &[Member] {
        &self.members[..usize::from(self.len)]
    }

    /// Whether the object has no member.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The members named `names` (compared decoded, [`Member::is`]) in `bytes`, the text the
    /// outline was scanned from: each the last given, and whether one was given more than once
    /// (a reader that refuses repeats, as `serde_json` does for a struct, checks
    /// [`Found::repeated`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate_core::json::Outline;
    ///
    /// let bytes = br#"{"model":"m","n":1,"n":2}"#;
    /// let outline = Outline::scan(bytes)?.unwrap();
    /// let found = outline.find(bytes, ["model", "n", "stream"]);
    /// assert_eq!(found.members[0].map(|m| &bytes[m.value()]), Some(&br#""m""#[..]));
    /// assert_eq!(found.members[1].map(|m| &bytes[m.value()]), Some(&b"2"[..]));
    /// assert!(found.members[2].is_none());
    /// assert!(found.repeated);
    /// # Ok::<(), tollgate_core::json::JsonError>(())
    /// ```
    #[inline]
    pub fn find<const N: usize>(&self, bytes: &[u8], names: [&str; N]) -> Found<'_, N> {
        let mut found = Found {
            members: [None; N],
            repeated: false,
        };
        for member in self.members() {
            if let Some(i) = names.iter().position(|name| member.is(bytes, name)) {
                found.repeated |= found.members[i].replace(member).is_some();
            }
        }
        found
    }
}

/// What [`Outline::find`] found of some names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a, const N: usize> {
    /// The member of each name, the last when it is given more than once.
    pub members: [Option<&'a Member>; N],
    /// Whether a name was given more than once.
    pub repeated: bool,
}

impl fmt::Debug for Outline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outline")
            .field("members", &self.members())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(outline: &Outline, bytes: &[u8]) -> Vec<(String, String, Option<u64>)> {
        outline
            .members()
            .iter()
            .map(|m| {
                let name = &bytes[m.name.0 as usize..m.name.1 as usize];
                (
                    String::from_utf8(name.to_vec()).unwrap(),
                    String::from_utf8(bytes[m.value()].to_vec()).unwrap(),
                    m.characters(),
                )
            })
            .collect()
    }

    #[test]
    fn outlines_every_member_with_its_characters() {
        let body = br#" { "n" : 1, "mod\u0065l":"gpt-4o" ,"x":{"model":"ab"}, "e": [] } "#;
        let outline = Outline::scan(body).unwrap().unwrap();
        assert_eq!(
            members(&outline, body),
            [
                ("n".into(), "1".into(), Some(0)),
                (r"mod\u0065l".into(), r#""gpt-4o""#.into(), Some(6)),
                ("x".into(), r#"{"model":"ab"}"#.into(), Some(2)),
                ("e".into(), "[]".into(), Some(0)),
            ]
        );
        assert!(outline.members()[1].is(body, "model"));
        assert!(!outline.members()[2].is(body, "model"));
        assert!(!outline.is_empty());
        let empty = Outline::scan(b" {} ").unwrap().unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn agrees_with_the_scanner_on_every_member() {
        let body = r#"{"messages":[{"role":"user","content":"h\u00e9 \"x\" \ud83d\ude00 ünï"}],"max_tokens":64,"model":"gpt-4o","tools":null,"model":"again"}"#;
        let outline = Outline::scan(body.as_bytes()).unwrap().unwrap();
        let mut scanner = Scanner::new(body.as_bytes()).unwrap();
        let mut expected = Vec::new();
        scanner
            .object(|scanner, _| {
                let mut copy = scanner.clone();
                let value = copy.skip()?;
                expected.push((value, scanner.characters()?));
                Ok(())
            })
            .unwrap();
        let got: Vec<_> = outline
            .members()
            .iter()
            .map(|m| (m.value(), m.characters().unwrap()))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(
            outline.members().len(),
            5,
            "a repeated name is kept each time"
        );
    }

    #[test]
    fn a_lone_surrogate_is_no_count_but_no_error() {
        let body = br#"{"user":"\ud800","n":"ok"}"#;
        let outline = Outline::scan(body).unwrap().unwrap();
        assert_eq!(outline.members()[0].characters(), None);
        assert_eq!(outline.members()[1].characters(), Some(2));
        assert_eq!(&body[outline.members()[0].value()], br#""\ud800""#);
    }

    #[test]
    fn refuses_what_the_scanner_refuses() {
        for bad in [
            &b"[1]"[..],
            b"{\"a\":1,}",
            b"{\"a\":1} x",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":01}",
            b"{\"a\"",
            b"\xff",
        ] {
            assert!(Outline::scan(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn too_many_members_have_no_outline() {
        let members = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!(r#""m{i}":{i}"#)).collect();
            format!("{{{}}}", list.join(","))
        };
        let full = members(Outline::CAPACITY);
        assert_eq!(
            Outline::scan(full.as_bytes())
                .unwrap()
                .unwrap()
                .members()
                .len(),
            Outline::CAPACITY
        );
        assert_eq!(
            Outline::scan(members(Outline::CAPACITY + 1).as_bytes()).unwrap(),
            None
        );
        // The text after the last member that fits is not read: its readers scan it.
        let bad = format!(r#"{},"late":01}}"#, &full[..full.len() - 1]);
        assert_eq!(Outline::scan(bad.as_bytes()).unwrap(), None);
    }

    #[test]
    fn a_buffered_body_keeps_its_outline_for_the_next_reader() {
        use crate::body::BufferedBody;

        let body = BufferedBody::from(r#"{"model":"gpt-4o"}"#);
        assert!(body.kept_outline().is_none(), "scanned only when asked");
        let first = body.outline().unwrap();
        let again = body.kept_outline().unwrap();
        assert!(
            std::ptr::eq(first, again),
            "the same outline, not a second scan"
        );
        assert_eq!(*first, Outline::scan(body.bytes()).unwrap().unwrap());
        // A clone does not carry it: it scans again when asked.
        let clone = body.clone();
        assert!(clone.kept_outline().is_none());
        assert_eq!(clone.outline(), Some(first));
        let bad = BufferedBody::from("not json");
        assert!(bad.outline().is_none() && bad.kept_outline().is_none());
    }
}
