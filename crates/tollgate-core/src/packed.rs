//! [`PackedHeaders`]: a request's headers kept for a later attempt in one buffer (the retry and
//! fallback layers keep a request this way before its first attempt consumes it).
//!
//! A `HeaderMap` clone allocates its two tables and, for every value parsed from a string (a
//! `Bytes` not yet shared), a shared copy of it: four allocations for a request with two
//! headers. Packed, every name and value is copied into one buffer, inline up to 190 bytes (no
//! allocation: a chat request's `content-type` and an API key of up to about 100 characters),
//! on the heap past that (one allocation); no headers pack to nothing (no buffer written). A
//! `HeaderMap` is rebuilt only when a second attempt is made; it is equal to the original (the
//! same names, the same values in the same order, each as sensitive).

use http::{HeaderMap, HeaderName, HeaderValue};

/// The high bit of a value's length: the value is sensitive.
const SENSITIVE: u32 = 1 << 31;

/// Packed headers up to this many bytes stay inline, with no allocation. 190 bytes hold a chat
/// request's `content-type` with an API key of up to about 100 characters (an Anthropic
/// request's `x-api-key`, `anthropic-version` and `content-type`: 190 bytes), and keep the
/// whole `PackedHeaders` at 192 bytes.
const INLINE: usize = 190;

/// Every name and value of a `HeaderMap`, in its order: for each, the name's length (2 bytes),
/// the value's length with its high bit set when the value is sensitive (4 bytes), the name, the value.
///
/// An empty `HeaderMap` packs to nothing: no buffer written, a single tag.
#[derive(Debug, Clone)]
pub struct PackedHeaders {
    bytes: Buf,
}

/// The packed bytes: none, inline while they fit, on the heap past that.
#[derive(Clone)]
enum Buf {
    /// No headers: nothing written (the inline array is not even zeroed).
    Empty,
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<[u8]>),
}

// The length of an inline buffer fits its `u8`.
const _: () = assert!(INLINE <= u8::MAX as usize);

impl Buf {
    fn as_slice(&self) -> &[u8] {
        match self {
            Buf::Empty => &[],
            Buf::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Buf::Heap(heap) => heap,
        }
    }
}

impl std::fmt::Debug for Buf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes are header values: secrets among them.
        f.debug_struct("Buf")
            .field("len", &self.as_slice().len())
            .finish_non_exhaustive()
    }
}

impl PackedHeaders {
    /// `headers` packed; `None` if one of its values could not be rebuilt from its bytes (one
    /// built without the usual checks) or is too long to pack: such headers are cloned.
    #[inline]
    pub fn pack(headers: &HeaderMap) -> Option<Self> {
        if headers.is_empty() {
            return Some(PackedHeaders { bytes: Buf::Empty });
        }
        // One pass while the bytes fit inline: each name and value is checked, measured and
        // copied at once, straight into the inline buffer where it stays. Past the inline room,
        // a second pass copies them to the heap.
        let mut packed = PackedHeaders {
            bytes: Buf::Inline {
                len: 0,
                bytes: [0; INLINE],
            },
        };
        let Buf::Inline { bytes: inline, .. } = &mut packed.bytes else {
            unreachable!("built inline")
        };
        let mut size = 0;
        let mut bad = 0u8;
        for (name, value) in headers {
            let name = name.as_str().as_bytes();
            let value_bytes = value.as_bytes();
            bad |= u8::from(!all_valid(value_bytes));
            // A header name is at most 65,535 bytes long (http's limit).
            bad |= u8::from(
                value_bytes.len() >= SENSITIVE as usize || name.len() > usize::from(u16::MAX),
            );
            let end = size + 6 + name.len() + value_bytes.len();
            if let Some(out) = inline.get_mut(size..end) {
                write_entry(out, name, value);
            }
            size = end;
        }
        if bad != 0 {
            return None;
        }
        match (&mut packed.bytes, u8::try_from(size)) {
            (Buf::Inline { len, .. }, Ok(size)) if usize::from(size) <= INLINE => *len = size,
            _ => packed.bytes = Buf::Heap(Self::pack_to_heap(headers, size)),
        }
        Some(packed)
    }

    /// Headers of `size` packed bytes, too many to keep inline.
    #[cold]
    fn pack_to_heap(headers: &HeaderMap, size: usize) -> Box<[u8]> {
        let mut heap = vec![0; size].into_boxed_slice();
        let mut at = 0;
        for (name, value) in headers {
            let name = name.as_str().as_bytes();
            let end = at + 6 + name.len() + value.len();
            write_entry(&mut heap[at..end], name, value);
            at = end;
        }
        heap
    }

    /// The headers again, equal to those packed.
    pub fn unpack(&self) -> HeaderMap {
        let entries = || {
            let mut rest = self.bytes.as_slice();
            std::iter::from_fn(move || {
                let [n0, n1, v0, v1, v2, v3, tail @ ..] = rest else {
                    return None;
                };
                let name_len = usize::from(u16::from_le_bytes([*n0, *n1]));
                let value_len = u32::from_le_bytes([*v0, *v1, *v2, *v3]);
                let sensitive = value_len & SENSITIVE != 0;
                let value_len = (value_len & !SENSITIVE) as usize;
                let (name, tail) = tail.split_at(name_len);
                let (value, tail) = tail.split_at(value_len);
                rest = tail;
                Some((name, value, sensitive))
            })
        };
        let mut headers = HeaderMap::with_capacity(entries().count());
        for (name, value, sensitive) in entries() {
            let name = HeaderName::from_bytes(name).expect("packed from a header name");
            let mut value = HeaderValue::from_bytes(value).expect("checked when packed");
            value.set_sensitive(sensitive);
            headers.append(name, value);
        }
        headers
    }
}

/// Writes one packed entry into `out`, exactly its size: the lengths, the name, the value.
#[inline]
fn write_entry(out: &mut [u8], name: &[u8], value: &HeaderValue) {
    let mut value_len = value.len() as u32;
    if value.is_sensitive() {
        value_len |= SENSITIVE;
    }
    let (lengths, rest) = out.split_at_mut(6);
    lengths[..2].copy_from_slice(&(name.len() as u16).to_le_bytes());
    lengths[2..].copy_from_slice(&value_len.to_le_bytes());
    let (name_out, value_out) = rest.split_at_mut(name.len());
    name_out.copy_from_slice(name);
    value_out.copy_from_slice(value.as_bytes());
}

/// Whether `HeaderValue::from_bytes` accepts every byte of `bytes`: eight bytes at a time, a
/// word with a byte below 32 (a tab, or a control byte) or equal to 127 checked byte by byte.
fn all_valid(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    // Exact for "some byte is below n" with n at most 128, and "some byte is zero".
    let suspect = |x: u64| {
        let below_space = x.wrapping_sub(ONES * 0x20) & !x;
        let del = x ^ (ONES * 0x7f);
        let del = del.wrapping_sub(ONES) & !del;
        (below_space | del) & HIGH != 0
    };
    let word_valid = |word: &[u8]| {
        let x = u64::from_ne_bytes(word.try_into().expect("eight bytes"));
        !suspect(x) || word.iter().all(|&b| valid(b))
    };
    if bytes.len() < 8 {
        return bytes.iter().all(|&b| valid(b));
    }
    let mut chunks = bytes.chunks_exact(8);
    let mut ok = chunks.by_ref().fold(true, |ok, word| ok & word_valid(word));
    if !chunks.remainder().is_empty() {
        // The last eight bytes, overlapping the last whole word.
        ok &= word_valid(&bytes[bytes.len() - 8..]);
    }
    ok
}

/// A byte `HeaderValue::from_bytes` accepts: visible ASCII, space, tab and obs-text.
fn valid(b: u8) -> bool {
    b >= 32 && b != 127 || b == b'\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_same(a: &HeaderMap, b: &HeaderMap) {
        assert_eq!(a, b);
        let pairs = |m: &HeaderMap| {
            m.iter()
                .map(|(n, v)| (n.clone(), v.clone(), v.is_sensitive()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(a), pairs(b));
    }

    /// Standard and custom names, repeated names, sensitive values, obs-text and empty values
    /// come back as they went in, in their order.
    #[test]
    fn headers_come_back_equal() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let mut secret = HeaderValue::from_str("Bearer sk-secret").unwrap();
        secret.set_sensitive(true);
        headers.insert("authorization", secret);
        headers.append("x-custom", HeaderValue::from_static("one"));
        headers.append("accept", HeaderValue::from_static("text/plain"));
        headers.append("x-custom", HeaderValue::from_static(""));
        headers.append(
            "x-custom",
            HeaderValue::from_bytes(b"caf\xc3\xa9\tx").unwrap(),
        );
        let packed = PackedHeaders::pack(&headers).expect("packable");
        assert_eq!(packed.unpack().len(), 6);
        assert_same(&packed.unpack(), &headers);
        assert_same(&packed.clone().unpack(), &headers);
    }

    /// Headers past the inline room go to the heap, whole.
    #[test]
    fn long_headers_spill_to_the_heap() {
        let mut headers = HeaderMap::new();
        let long = "k".repeat(INLINE);
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("x-api-key", HeaderValue::from_str(&long).unwrap());
        headers.insert("x-after", HeaderValue::from_static("after"));
        let packed = PackedHeaders::pack(&headers).expect("packable");
        assert!(matches!(packed.bytes, Buf::Heap(_)));
        assert_same(&packed.unpack(), &headers);
        let mut small = HeaderMap::new();
        small.insert("content-type", HeaderValue::from_static("application/json"));
        let packed = PackedHeaders::pack(&small).expect("packable");
        assert!(matches!(packed.bytes, Buf::Inline { .. }));
        assert_same(&packed.unpack(), &small);
    }

    /// The inline room is filled exactly, and one byte past it spills the whole set to the heap.
    #[test]
    fn the_inline_boundary_is_exact() {
        for (extra, inline) in [(0, true), (1, false)] {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            // content-type takes 6 + 12 + 16 bytes; x-key takes 6 + 5 + the value.
            let value = "v".repeat(INLINE - 34 - 11 + extra);
            headers.insert("x-key", HeaderValue::from_str(&value).unwrap());
            let packed = PackedHeaders::pack(&headers).expect("packable");
            assert_eq!(matches!(packed.bytes, Buf::Inline { .. }), inline);
            assert_same(&packed.unpack(), &headers);
        }
    }

    /// No headers: nothing written, nothing allocated, and an empty map back.
    #[test]
    fn no_headers_pack_to_nothing() {
        let packed = PackedHeaders::pack(&HeaderMap::new()).expect("packable");
        assert!(matches!(&packed.bytes, Buf::Empty));
        assert!(packed.unpack().is_empty());
        assert!(packed.clone().unpack().is_empty());
        // A map emptied of its headers packs to nothing too.
        let mut emptied = HeaderMap::new();
        emptied.insert("x-key", HeaderValue::from_static("v"));
        emptied.clear();
        let packed = PackedHeaders::pack(&emptied).expect("packable");
        assert!(matches!(&packed.bytes, Buf::Empty));
        assert!(packed.unpack().is_empty());
    }

    /// The buffer is the whole size: the inline bytes, their length and the tag, no more (it is
    /// moved with the retry and fallback futures).
    #[test]
    fn the_packed_headers_are_at_most_192_bytes() {
        assert!(std::mem::size_of::<PackedHeaders>() <= 192);
        assert!(std::mem::size_of::<Option<PackedHeaders>>() <= 192);
    }

    /// A real Anthropic request's headers (an `x-api-key` of 108 characters, its version and
    /// content type: 190 bytes) stay inline; an OpenAI project key (about 170 characters with
    /// `Bearer `) spills, as it did at 192 bytes.
    #[test]
    fn real_header_sets() {
        let mut anthropic = HeaderMap::new();
        anthropic.insert(
            "x-api-key",
            HeaderValue::from_str(&format!("sk-ant-api03-{}", "a".repeat(95))).unwrap(),
        );
        anthropic.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        anthropic.insert("content-type", HeaderValue::from_static("application/json"));
        let packed = PackedHeaders::pack(&anthropic).expect("packable");
        assert!(matches!(packed.bytes, Buf::Inline { len: 190, .. }));
        assert_same(&packed.unpack(), &anthropic);
        let mut openai = HeaderMap::new();
        openai.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer sk-proj-{}", "a".repeat(156))).unwrap(),
        );
        openai.insert("content-type", HeaderValue::from_static("application/json"));
        let packed = PackedHeaders::pack(&openai).expect("packable");
        assert!(matches!(packed.bytes, Buf::Heap(_)));
        assert_same(&packed.unpack(), &openai);
    }

    /// The word-at-a-time check agrees with the byte check, for every byte at every position
    /// of values up to 20 bytes long.
    #[test]
    fn words_are_checked_as_bytes_are() {
        for len in 0..=20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut value = vec![b'a'; len];
                    value[at] = b;
                    assert_eq!(all_valid(&value), valid(b), "byte {b} at {at} of {len}");
                    value[len - 1 - at] = b'\t';
                    assert_eq!(all_valid(&value), valid(b) || at == len - 1 - at);
                }
            }
        }
    }

    #[test]
    fn only_valid_bytes_are_packed() {
        for b in 0..=255u8 {
            assert_eq!(valid(b), HeaderValue::from_bytes(&[b]).is_ok(), "byte {b}");
        }
    }
}
