//! Reading a header: its first value, as trimmed UTF-8 text.

use http::HeaderMap;

/// A header's value as trimmed text, if present and UTF-8. Only the first value is read.
pub(super) fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?;
    let text = std::str::from_utf8(value.as_bytes()).ok()?.trim();
    (!text.is_empty()).then_some(text)
}
