//! [`PackedHeaders`]: a request's headers kept for a later attempt in one buffer.
//!
//! A `HeaderMap` clone allocates its two tables and, for every value parsed from a string (a
//! `Bytes` not yet shared), a shared copy of it: four allocations for a request with two
//! headers. Packed, every name and value is copied into one buffer: one allocation, none
//! without headers. A `HeaderMap` is rebuilt only when a second attempt is made; it is equal
//! to the original (the same names, the same values in the same order, each as sensitive).

use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_core::body::BufferedBody;

/// The request kept for the targets after the primary: its headers packed, the other parts
/// cloned (the URI's and the body's bytes shared, not copied).
#[derive(Debug)]
pub(crate) struct Kept {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: Headers,
    extensions: http::Extensions,
    body: BufferedBody,
}

/// The kept request's headers.
#[derive(Debug)]
enum Headers {
    Packed(PackedHeaders),
    /// Headers that cannot be packed, or the original request's own.
    Whole(HeaderMap),
}

impl Kept {
    /// A copy of `request`.
    pub(crate) fn copy(request: &http::Request<BufferedBody>) -> Self {
        let headers = match PackedHeaders::pack(request.headers()) {
            Some(packed) => Headers::Packed(packed),
            None => Headers::Whole(request.headers().clone()),
        };
        Kept {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            headers,
            extensions: request.extensions().clone(),
            body: request.body().clone(),
        }
    }

    /// `request` itself, kept whole.
    pub(crate) fn whole(request: http::Request<BufferedBody>) -> Self {
        let (parts, body) = request.into_parts();
        Kept {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: Headers::Whole(parts.headers),
            extensions: parts.extensions,
            body,
        }
    }

    /// The request again, equal to the original.
    pub(crate) fn replay(&self) -> http::Request<BufferedBody> {
        let mut request = http::Request::new(self.body.clone());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = match &self.headers {
            Headers::Packed(packed) => packed.unpack(),
            Headers::Whole(headers) => headers.clone(),
        };
        *request.extensions_mut() = self.extensions.clone();
        request
    }

    /// The request's extensions.
    pub(crate) fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }
}

/// The high bit of a value's length: the value is sensitive.
const SENSITIVE: u32 = 1 << 31;

/// Every name and value of a `HeaderMap`, in its order: for each, the name's length (2 bytes),
/// the value's length with [`SENSITIVE`] (4 bytes), the name, the value.
#[derive(Debug, Clone)]
pub(crate) struct PackedHeaders {
    bytes: Vec<u8>,
    count: usize,
}

impl PackedHeaders {
    /// `headers` packed; `None` if one of its values could not be rebuilt from its bytes (one
    /// built without the usual checks) or is too long to pack: such headers are cloned.
    pub(crate) fn pack(headers: &HeaderMap) -> Option<Self> {
        // One pass: a buffer sized for common headers, grown if need be.
        let mut bytes = Vec::with_capacity(headers.len() * 64);
        let mut bad = false;
        for (name, value) in headers {
            let name = name.as_str().as_bytes();
            let value_bytes = value.as_bytes();
            // No early exit, so that the check vectorizes.
            bad |= value_bytes.iter().fold(false, |bad, &b| bad | !valid(b));
            bad |= value_bytes.len() >= SENSITIVE as usize;
            // A header name is at most 65,535 bytes long (http's limit).
            let name_len = u16::try_from(name.len()).ok()?;
            let mut value_len = value_bytes.len() as u32;
            if value.is_sensitive() {
                value_len |= SENSITIVE;
            }
            let mut lengths = [0; 6];
            lengths[..2].copy_from_slice(&name_len.to_le_bytes());
            lengths[2..].copy_from_slice(&value_len.to_le_bytes());
            bytes.extend_from_slice(&lengths);
            bytes.extend_from_slice(name);
            bytes.extend_from_slice(value_bytes);
        }
        (!bad).then(|| PackedHeaders {
            bytes,
            count: headers.len(),
        })
    }

    /// The headers again, equal to those packed.
    pub(crate) fn unpack(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(self.count);
        let mut rest = &self.bytes[..];
        while let [n0, n1, v0, v1, v2, v3, tail @ ..] = rest {
            let name_len = usize::from(u16::from_le_bytes([*n0, *n1]));
            let value_len = u32::from_le_bytes([*v0, *v1, *v2, *v3]);
            let sensitive = value_len & SENSITIVE != 0;
            let value_len = (value_len & !SENSITIVE) as usize;
            let (name, tail) = tail.split_at(name_len);
            let (value, tail) = tail.split_at(value_len);
            let name = HeaderName::from_bytes(name).expect("packed from a header name");
            let mut value = HeaderValue::from_bytes(value).expect("checked when packed");
            value.set_sensitive(sensitive);
            headers.append(name, value);
            rest = tail;
        }
        headers
    }
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
        assert_eq!(packed.count, 6);
        assert_same(&packed.unpack(), &headers);
        assert_same(&packed.clone().unpack(), &headers);
    }

    #[test]
    fn no_headers_need_no_buffer() {
        let packed = PackedHeaders::pack(&HeaderMap::new()).expect("packable");
        assert_eq!(packed.bytes.capacity(), 0);
        assert!(packed.unpack().is_empty());
    }

    #[test]
    fn only_valid_bytes_are_packed() {
        for b in 0..=255u8 {
            assert_eq!(valid(b), HeaderValue::from_bytes(&[b]).is_ok(), "byte {b}");
        }
    }
}
