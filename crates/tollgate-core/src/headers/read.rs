//! Reading a header: its first value, as trimmed UTF-8 text.

use http::{HeaderMap, HeaderValue};

/// A header's value as trimmed text, if present and UTF-8. Only the first value is read.
pub(super) fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    value_text(headers.get(name)?)
}

/// A value as trimmed text, if UTF-8 and not blank: what [`text`] reads of a header.
pub(super) fn value_text(value: &HeaderValue) -> Option<&str> {
    let text = match value.to_str() {
        // Visible ASCII and tabs (every value a provider sends): the only whitespace a header
        // value can hold is spaces and tabs, which `trim_ascii` removes as `trim` would.
        Ok(text) => text.trim_ascii(),
        // Other bytes (obs-text): UTF-8 or nothing, trimmed of any Unicode whitespace.
        Err(_) => std::str::from_utf8(value.as_bytes()).ok()?.trim(),
    };
    (!text.is_empty()).then_some(text)
}

/// The first value of each header named `prefix` followed by one of `names`, in one pass over
/// `headers`: as [`HeaderMap::get`] on each name would give, without parsing a name or hashing
/// it (a response carries a few headers; a family names up to a dozen, mostly absent).
#[inline(always)] // the prefix and names are constants where it is called: no `memcmp` calls
pub(super) fn first_values<'a, const N: usize>(
    headers: &'a HeaderMap,
    prefix: &str,
    names: [&str; N],
) -> [Option<&'a HeaderValue>; N] {
    let mut found = [None; N];
    if headers.is_empty() {
        return found;
    }
    for (name, value) in headers {
        let Some(rest) = name.as_str().strip_prefix(prefix) else {
            continue;
        };
        if let Some(i) = names.iter().position(|n| *n == rest) {
            found[i].get_or_insert(value);
        }
    }
    found
}
