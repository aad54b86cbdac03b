//! [`Kept`]: the request kept for the targets after the primary, its headers packed
//! ([`PackedHeaders`]: one buffer, no `HeaderMap` clone) and rebuilt only for a later target.

use http::HeaderMap;
use tollgate_core::body::BufferedBody;
use tollgate_core::packed::PackedHeaders;

/// The request kept for the targets after the primary: its headers packed, the other parts
/// cloned (the URI's and the body's bytes shared, not copied). No `Debug`: the URI's query and
/// the headers may hold secrets.
pub(crate) struct Kept {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: Headers,
    extensions: http::Extensions,
    body: BufferedBody,
}

/// The kept request's headers.
enum Headers {
    /// No headers: nothing kept, nothing moved but the tag.
    Empty,
    Packed(PackedHeaders),
    /// Headers that cannot be packed, or the original request's own.
    Whole(HeaderMap),
}

impl Kept {
    /// A copy of `request`.
    #[inline]
    pub(crate) fn copy(request: &http::Request<BufferedBody>) -> Self {
        // A request without headers is told apart before packing: an empty `PackedHeaders`
        // would still be moved whole (its 192 bytes copied twice on the way into the future).
        let headers = if request.headers().is_empty() {
            Headers::Empty
        } else {
            match PackedHeaders::pack(request.headers()) {
                Some(packed) => Headers::Packed(packed),
                None => Headers::Whole(request.headers().clone()),
            }
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
            Headers::Empty => http::HeaderMap::new(),
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
