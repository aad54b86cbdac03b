//! [`Scanner`]: reads a JSON text once, front to back, checking it as `serde_json` checks it,
//! without building a tree, copying a string or allocating — for the few things a layer wants
//! from a request body (a top-level member's place, the characters a prompt holds, a number).
//!
//! A rewriter that splices one member and an estimator that counts a prompt's characters both
//! read every byte of a chat request; with `serde_json` each such pass costs several hundred
//! nanoseconds on a 1 KiB body, most of it decoding strings nobody keeps. The scanner finds the
//! end of a string sixteen bytes at a time and counts characters without decoding them.
//!
//! What it accepts is RFC 8259 JSON as `serde_json` reads it: any whitespace around values,
//! no trailing commas, no leading zeros, no control characters inside strings, valid escapes,
//! at most [`MAX_DEPTH`] nested arrays and objects. The whole text must be UTF-8 (checked once,
//! up front).
//!
//! # Examples
//!
//! ```
//! use tollgate_core::json::Scanner;
//!
//! let body = br#"{"messages":[{"role":"user","content":"Bonjour"}],"max_tokens":64}"#;
//! let mut scanner = Scanner::new(body)?;
//! let (mut characters, mut max_tokens) = (0, None);
//! scanner.object(|scanner, name| {
//!     if name.is("messages") {
//!         characters = scanner.characters()?;
//!     } else if name.is("max_tokens") {
//!         max_tokens = scanner.unsigned()?;
//!     } else {
//!         scanner.skip()?;
//!     }
//!     Ok(())
//! })?;
//! scanner.finish()?;
//! assert_eq!((characters, max_tokens), (11, Some(64))); // "user" and "Bonjour"
//! # Ok::<(), tollgate_core::json::JsonError>(())
//! ```

use std::fmt;
use std::ops::Range;

mod outline;

pub use outline::{Found, Member, Outline};

/// How deeply arrays and objects may nest (as deep as `serde_json` lets them).
pub const MAX_DEPTH: usize = 128;

/// Why a text is not JSON the scanner can read, and where (a byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    at: usize,
    reason: &'static str,
}

impl JsonError {
    const fn new(at: usize, reason: &'static str) -> Self {
        JsonError { at, reason }
    }

    /// The byte offset where reading stopped.
    pub const fn offset(&self) -> usize {
        self.at
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.at)
    }
}

impl std::error::Error for JsonError {}

/// A member's name as it stands in the text (between its quotes, escapes undecoded).
#[derive(Debug, Clone, Copy)]
pub struct Name<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl Name<'_> {
    /// Whether the name, decoded, is `name`.
    #[inline]
    pub fn is(&self, name: &str) -> bool {
        if self.escaped {
            self.decodes_to(name)
        } else {
            self.raw == name.as_bytes()
        }
    }

    /// Whether the name's escapes decoded, it is `name`.
    fn decodes_to(&self, name: &str) -> bool {
        let mut expected = name.chars();
        let mut decoded = Decoded {
            raw: self.raw,
            at: 0,
        };
        loop {
            match (decoded.next(), expected.next()) {
                (None, None) => return true,
                (Some(a), Some(b)) if a == b => {}
                _ => return false,
            }
        }
    }
}

/// The characters of a checked string's contents, escapes decoded (a lone surrogate as
/// U+FFFD: it matches no name).
struct Decoded<'a> {
    raw: &'a [u8],
    at: usize,
}

impl Iterator for Decoded<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let rest = self.raw.get(self.at..)?;
        let first = *rest.first()?;
        if first != b'\\' {
            // The text is UTF-8 (checked up front) and a string's contents end on a character.
            let len = utf8_len(first);
            self.at += len;
            return std::str::from_utf8(&rest[..len]).ok()?.chars().next();
        }
        let escape = *rest.get(1)?;
        self.at += 2;
        let simple = match escape {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => {
                let unit = hex4(rest.get(2..6)?)?;
                self.at += 4;
                if (0xD800..0xDC00).contains(&unit)
                    && rest.get(6..8) == Some(b"\\u")
                    && let Some(low) = rest.get(8..12).and_then(hex4)
                    && (0xDC00..0xE000).contains(&low)
                {
                    self.at += 6;
                    let code =
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    return char::from_u32(code);
                }
                return Some(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'));
            }
        };
        Some(simple)
    }
}

const fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

fn hex4(digits: &[u8]) -> Option<u16> {
    let mut value = 0u16;
    for &d in digits.get(..4)? {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        value = value << 4 | u16::from(v);
    }
    Some(value)
}

/// How a string is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strings {
    /// Checked; lone surrogates in escapes pass (as `serde_json` passes them in what it
    /// skips).
    Skip,
    /// Checked as a string `serde_json` decodes: a lone surrogate is an error.
    Decode,
    /// Checked as `Decode`, and its characters counted.
    Count,
}

/// Reads one JSON text front to back. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `bytes`.
    ///
    /// # Errors
    ///
    /// When `bytes` is not UTF-8.
    pub fn new(bytes: &'a [u8]) -> Result<Self, JsonError> {
        if let Err(error) = std::str::from_utf8(bytes) {
            return Err(JsonError::new(error.valid_up_to(), "invalid UTF-8"));
        }
        Ok(Scanner { bytes, at: 0 })
    }

    /// The byte offset of the next byte to read.
    pub const fn position(&self) -> usize {
        self.at
    }

    fn error<T>(&self, reason: &'static str) -> Result<T, JsonError> {
        Err(JsonError::new(self.at, reason))
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.whitespace();
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            self.error(reason)
        }
    }

    /// Reads an object, calling `member` with each member's name once the scanner stands at
    /// its value; `member` must read that value (with [`skip`](Self::skip),
    /// [`characters`](Self::characters), [`unsigned`](Self::unsigned), …). Returns whether the
    /// object had no member.
    ///
    /// # Errors
    ///
    /// When the next value is not an object, or one `member` returns.
    pub fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Name<'a>) -> Result<(), JsonError>,
    ) -> Result<bool, JsonError> {
        self.expect(b'{', "expected an object")?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(true);
        }
        loop {
            if self.peek() != Some(b'"') {
                return self.error("expected a member name");
            }
            let name = self.name()?;
            self.expect(b':', "expected `:`")?;
            self.whitespace();
            member(self, name)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(false);
                }
                _ => return self.error("expected `,` or `}`"),
            }
        }
    }

    /// Reads a member name (the scanner at its opening quote).
    fn name(&mut self) -> Result<Name<'a>, JsonError> {
        let start = self.at + 1;
        let (_, escaped) = self.string(Strings::Decode)?;
        Ok(Name {
            raw: &self.bytes[start..self.at - 1],
            escaped,
        })
    }

    /// Skips one value; where it stood.
    ///
    /// # Errors
    ///
    /// When the value is not JSON.
    pub fn skip(&mut self) -> Result<Range<usize>, JsonError> {
        self.whitespace();
        let start = self.at;
        self.value(Strings::Skip)?;
        Ok(start..self.at)
    }

    /// Reads one value; the characters of every string in it (its members' names aside),
    /// escapes counted as the characters they stand for.
    ///
    /// # Errors
    ///
    /// When the value is not JSON, or a string in it holds a lone surrogate.
    pub fn characters(&mut self) -> Result<u64, JsonError> {
        self.value(Strings::Count)
    }

    /// Reads `null` (and answers `true`) if it is the next value; otherwise reads nothing.
    pub fn null(&mut self) -> bool {
        self.whitespace();
        if self.bytes[self.at..].starts_with(b"null") {
            self.at += 4;
            true
        } else {
            false
        }
    }

    /// Reads a non-negative integer that fits a `u64`, or `null` (`None`).
    ///
    /// # Errors
    ///
    /// When the value is anything else: a string, a negative number, a fraction, an exponent,
    /// too large a number. The scanner then still stands at the value.
    pub fn unsigned(&mut self) -> Result<Option<u64>, JsonError> {
        if self.null() {
            return Ok(None);
        }
        let start = self.at;
        let mut value = 0u64;
        while let Some(&digit) = self.bytes.get(self.at).filter(|d| d.is_ascii_digit()) {
            value = match value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            {
                Some(value) => value,
                None => {
                    self.at = start;
                    return self.error("integer out of range");
                }
            };
            self.at += 1;
        }
        let leading_zero = self.at - start > 1 && self.bytes[start] == b'0';
        if self.at == start
            || leading_zero
            || matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E' | b'-'))
        {
            self.at = start;
            return self.error("expected an unsigned integer");
        }
        Ok(Some(value))
    }

    /// Checks that nothing but whitespace is left.
    ///
    /// # Errors
    ///
    /// When something else follows.
    pub fn finish(mut self) -> Result<(), JsonError> {
        self.whitespace();
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            self.error("trailing characters")
        }
    }

    /// Reads one value, without recursion; the characters of its strings when counting.
    fn value(&mut self, strings: Strings) -> Result<u64, JsonError> {
        // Bit i: whether the container at depth i is an object.
        let mut objects: u128 = 0;
        let mut depth = 0usize;
        let mut total = 0u64;
        loop {
            // A value.
            match self.peek() {
                Some(b'"') => {
                    let (n, _) = self.string(strings)?;
                    total = total.saturating_add(n);
                }
                Some(open @ (b'{' | b'[')) => {
                    if depth == MAX_DEPTH {
                        return self.error("nested too deeply");
                    }
                    self.at += 1;
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.at += 1;
                    } else {
                        if open == b'{' {
                            objects |= 1 << depth;
                        } else {
                            objects &= !(1 << depth);
                        }
                        depth += 1;
                        if open == b'{' {
                            self.member_name()?;
                        }
                        continue;
                    }
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return self.error("expected a value"),
            }
            // After a value: close what ends here, or go on to the next item.
            loop {
                if depth == 0 {
                    return Ok(total);
                }
                let object = objects & (1 << (depth - 1)) != 0;
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        if object {
                            self.member_name()?;
                        }
                        break;
                    }
                    Some(b'}') if object => {
                        self.at += 1;
                        depth -= 1;
                    }
                    Some(b']') if !object => {
                        self.at += 1;
                        depth -= 1;
                    }
                    _ => return self.error("expected `,` or the end of an array or object"),
                }
            }
        }
    }

    /// Reads a member name and its `:` inside a skipped or counted object.
    fn member_name(&mut self) -> Result<(), JsonError> {
        if self.peek() != Some(b'"') {
            return self.error("expected a member name");
        }
        self.string(Strings::Skip)?;
        self.expect(b':', "expected `:`")
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), JsonError> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            self.error("expected a value")
        }
    }

    /// Reads a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), JsonError> {
        let bytes = self.bytes;
        let digits = |at: &mut usize| {
            let start = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at - start
        };
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => {
                digits(&mut at);
            }
            _ => return Err(JsonError::new(at, "expected a digit")),
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            if digits(&mut at) == 0 {
                return Err(JsonError::new(at, "expected a digit"));
            }
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            if digits(&mut at) == 0 {
                return Err(JsonError::new(at, "expected a digit"));
            }
        }
        self.at = at;
        Ok(())
    }

    /// Reads a string (the scanner at its opening quote): its characters when counting (0
    /// otherwise), and whether it had escapes.
    fn string(&mut self, strings: Strings) -> Result<(u64, bool), JsonError> {
        let bytes = self.bytes;
        let mut at = self.at + 1;
        let mut characters = 0u64;
        let mut escaped = false;
        loop {
            let (end, n) = if strings == Strings::Count {
                run::<true>(bytes, at)
            } else {
                run::<false>(bytes, at)
            };
            at = end;
            characters += n;
            match bytes.get(at) {
                Some(b'"') => {
                    self.at = at + 1;
                    return Ok((characters, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    characters += 1;
                    at = self.escape(at, strings)?;
                }
                Some(_) => return Err(JsonError::new(at, "control character in a string")),
                None => return Err(JsonError::new(at, "unterminated string")),
            }
        }
    }

    /// Checks the escape at `at` (its backslash); where the string goes on.
    fn escape(&self, at: usize, strings: Strings) -> Result<usize, JsonError> {
        match self.bytes.get(at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
            Some(b'u') => {
                let unit = self
                    .bytes
                    .get(at + 2..at + 6)
                    .and_then(hex4)
                    .ok_or(JsonError::new(at, "invalid \\u escape"))?;
                if strings == Strings::Skip {
                    return Ok(at + 6);
                }
                match unit {
                    0xD800..0xDC00 => {
                        let low = (self.bytes.get(at + 6..at + 8) == Some(b"\\u"))
                            .then(|| self.bytes.get(at + 8..at + 12).and_then(hex4))
                            .flatten();
                        match low {
                            Some(0xDC00..0xE000) => Ok(at + 12),
                            _ => Err(JsonError::new(at, "lone surrogate")),
                        }
                    }
                    0xDC00..0xE000 => Err(JsonError::new(at, "lone surrogate")),
                    _ => Ok(at + 6),
                }
            }
            _ => Err(JsonError::new(at, "invalid escape")),
        }
    }
}

/// How many bytes the string loop takes at a time while none ends the run: a width the
/// compiler turns into vector compares (an or-reduced mask, and a byte sum for the count).
const LANES: usize = 16;

/// Whether `b` ends a run of a string's ordinary bytes: a quote, a backslash or a control
/// character (`|`, not `||`: branch-free, so it vectorizes).
const fn stops(b: u8) -> bool {
    (b == b'"') | (b == b'\\') | (b < 0x20)
}

/// Whether `b` starts a UTF-8 character (is not a continuation byte `0b10xxxxxx`).
const fn starts(b: u8) -> bool {
    (b as i8) >= -0x40
}

/// The end of the run of a string's ordinary bytes that starts at `at` (the first quote,
/// backslash or control character at or after it, or the end of `bytes`), and, when `COUNT`,
/// the characters in the run (its bytes that start a character) — counted in the same pass.
///
/// [`LANES`] bytes at a time while none ends the run and that many are left (a JSON text goes
/// on after a string, so a short string takes one round): vector compares, and a byte sum for
/// the count only when a round is not all ASCII; then eight bytes at a time through the round
/// that holds the end, then byte by byte near the text's end.
fn run<const COUNT: bool>(bytes: &[u8], mut at: usize) -> (usize, u64) {
    let mut characters = 0u64;
    let mut chunks = bytes.get(at..).unwrap_or_default().chunks_exact(LANES);
    for chunk in &mut chunks {
        // Three reductions, not one of `stops`: each is a compare and a mask move.
        let any = |test: fn(&u8) -> bool| chunk.iter().fold(false, |found, b| found | test(b));
        if any(|&b| b == b'"') | any(|&b| b == b'\\') | any(|&b| b < 0x20) {
            break;
        }
        if COUNT {
            if !any(|&b| !b.is_ascii()) {
                characters += LANES as u64;
            } else {
                // At most 16: no overflow.
                let started: u8 = chunk.iter().map(|&b| u8::from(starts(b))).sum();
                characters += u64::from(started);
            }
        }
        at += LANES;
    }
    // The round that holds the end, or what is left after the last round.
    while let Some(Ok(word)) = bytes.get(at..at + 8).map(<[u8; 8]>::try_from) {
        let word = u64::from_le_bytes(word);
        let found = ends_run(word);
        if found != 0 {
            let kept = (found.trailing_zeros() / 8) as usize;
            if COUNT {
                characters += kept as u64 - continuations(word & below(kept));
            }
            return (at + kept, characters);
        }
        if COUNT {
            characters += 8 - continuations(word);
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at).filter(|&&b| !stops(b)) {
        characters += u64::from(COUNT && starts(b));
        at += 1;
    }
    (at, characters)
}

/// The bytes of a word below its byte `kept` (< 8).
const fn below(kept: usize) -> u64 {
    (1 << (8 * kept)) - 1
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `v` that is a quote, a backslash or below 0x20 — exact in the
/// lowest such byte, which is the one the caller takes (a borrow may mark bytes above it).
const fn ends_run(v: u64) -> u64 {
    let quote = has_zero(v ^ (ONES * b'"' as u64));
    let backslash = has_zero(v ^ (ONES * b'\\' as u64));
    // Bytes below 0x20: their subtraction borrows into the high bit, which `!v` keeps for
    // bytes below 0x80.
    let control = v.wrapping_sub(ONES * 0x20) & !v & HIGH;
    quote | backslash | control
}

/// A high bit in each zero byte of `v` (exact in the lowest one).
const fn has_zero(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGH
}

/// How many bytes of `v` continue a UTF-8 character (`0b10xxxxxx`: the high bit set, the next
/// one clear): one bit per such byte, summed into the top byte by a multiplication (at most 8,
/// no carry between bytes).
const fn continuations(v: u64) -> u64 {
    let marks = (v & !(v << 1) & HIGH) >> 7;
    marks.wrapping_mul(ONES) >> 56
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts without a quote, a backslash or a control character: ASCII and 2-, 3- and 4-byte
    /// characters in runs that put each kind across every lane of a round.
    fn texts() -> Vec<String> {
        let pieces = ["a", "é", "→", "😬", "ab", "ü€", "~\u{7f}", "\u{10ffff}"];
        let mut texts = vec![String::new()];
        for length in 1..=40 {
            for (i, piece) in pieces.iter().enumerate() {
                let mut text = String::new();
                let mut k = i;
                while text.chars().count() < length {
                    text.push_str(if k % 3 == 0 { piece } else { "x" });
                    k += 1;
                }
                texts.push(text);
            }
        }
        texts
    }

    #[test]
    fn runs_count_characters_as_chars_count() {
        for text in texts() {
            let chars = text.chars().count() as u64;
            // Every start within a round, every end, and every amount of text after the run
            // (so that rounds and the byte-by-byte tail both meet it).
            for before in 0..=LANES + 1 {
                for (stop, after) in [("\"", 0), ("\"", 1), ("\\", 7), ("\n", 15), ("\"", 17)] {
                    let mut bytes = "q".repeat(before).into_bytes();
                    bytes.extend_from_slice(text.as_bytes());
                    bytes.extend_from_slice(stop.as_bytes());
                    bytes.extend(std::iter::repeat_n(b'z', after));
                    let end = before + text.len();
                    assert_eq!(
                        run::<true>(&bytes, before),
                        (end, chars),
                        "{text:?} {before}"
                    );
                    assert_eq!(run::<false>(&bytes, before), (end, 0), "{text:?} {before}");
                }
                // A run to the end of the text.
                let mut bytes = "q".repeat(before).into_bytes();
                bytes.extend_from_slice(text.as_bytes());
                assert_eq!(run::<true>(&bytes, before), (bytes.len(), chars));
            }
        }
    }

    /// `text` as a JSON string, every `k`-th character escaped (`\uXXXX`, a surrogate pair
    /// above the BMP, or a short escape where there is one).
    fn encoded(text: &str, k: usize, phase: usize) -> String {
        let mut json = String::from("\"");
        for (i, c) in text.chars().enumerate() {
            match c {
                '"' => json.push_str("\\\""),
                '\\' => json.push_str("\\\\"),
                '\n' => json.push_str("\\n"),
                '\t' => json.push_str("\\t"),
                c if (i + phase) % k == 0 => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        json.push_str(&format!("\\u{unit:04X}"));
                    }
                }
                c => json.push(c),
            }
        }
        json.push('"');
        json
    }

    #[test]
    fn counts_characters_with_escapes_at_every_lane() {
        let mut texts = texts();
        texts.extend(
            [
                "a\"b\\c\nd\te",
                "\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"",
                "é\n😬\t→\\",
            ]
            .map(String::from),
        );
        for text in texts {
            let chars = text.chars().count() as u64;
            for k in [1, 2, 3, 5, 17] {
                for phase in 0..k.min(4) {
                    let string = encoded(&text, k, phase);
                    for before in 0..=LANES {
                        // The string at every place in a round, with a little or a lot after.
                        for after in ["", " ", "                 "] {
                            let json = format!("{}{string}{after}", " ".repeat(before));
                            let mut scanner = Scanner::new(json.as_bytes()).unwrap();
                            assert_eq!(scanner.characters(), Ok(chars), "{json:?}");
                            scanner.finish().unwrap();
                            let mut scanner = Scanner::new(json.as_bytes()).unwrap();
                            assert_eq!(
                                scanner.skip(),
                                Ok(before..before + string.len()),
                                "{json:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
