//! What of a URL may be shown: the one redaction every `Display`, `Debug` and error of
//! tollgate applies before it writes a URL.
//!
//! A URL can carry a secret in three places: its user info (`https://user:key@host`), its
//! query (`?key=sk-…`, `?sig=…`) and its fragment. [`url`] keeps what tells a reader which
//! endpoint is meant — the scheme, the host and port, the path and the names of the query
//! parameters — and replaces each of those three with `<redacted>`:
//!
//! ```text
//! https://user:sk-123@llm.example.com:8443/v1?key=sk-456&api-version=2024-10-21#frag
//! https://<redacted>@llm.example.com:8443/v1?key=<redacted>&api-version=<redacted>#<redacted>
//! ```
//!
//! Every query value is redacted, harmless ones (`api-version`) too: telling the harmless from
//! the secret would need a list of names that could never be complete.
//!
//! Text that does not parse as `scheme://authority…` is shown as `<unparsable URL>`: a key
//! pasted where a URL belongs must not come back in an error. A host holding characters no host
//! holds counts as unparsable too; a path holding characters no path holds is shown as
//! `/<unparsable path>`; a path longer than 256 bytes is cut (`…`), and at most 16 query
//! parameters are shown (`&…` for the rest). The routine never panics, and its output is
//! at most about 2 KiB whatever the input.

/// What stands in for a hidden part.
pub const REDACTED: &str = "<redacted>";

/// What stands for text that is not a URL.
pub const UNPARSABLE: &str = "<unparsable URL>";

/// The longest path shown, in bytes.
const MAX_PATH: usize = 256;

/// The most query parameters shown.
const MAX_PARAMS: usize = 16;

/// The longest host shown, in bytes (a DNS name is at most 253).
const MAX_HOST: usize = 255;

/// The longest query parameter name shown, in bytes.
const MAX_KEY: usize = 64;

/// `text` as it may be shown: user info, every query value and the fragment replaced by
/// `<redacted>`; `<unparsable URL>` for text that is not an absolute URL (see the
/// [module docs](self)).
///
/// # Examples
///
/// ```
/// use tollgate_core::redact;
///
/// assert_eq!(
///     redact::url("https://user:sk-secret@api.example.com/v1?key=sk-secret&model=gpt-4o#top"),
///     "https://<redacted>@api.example.com/v1?key=<redacted>&model=<redacted>#<redacted>"
/// );
/// assert_eq!(redact::url("https://api.openai.com/v1"), "https://api.openai.com/v1");
/// assert_eq!(redact::url("redis://:s3cret@10.0.0.5:6379/0"), "redis://<redacted>@10.0.0.5:6379/0");
/// assert_eq!(redact::url("sk-proj-s3cret"), "<unparsable URL>"); // a key, not a URL
/// ```
pub fn url(text: &str) -> String {
    let text = text.trim();
    let Some((scheme, rest)) = text.split_once("://") else {
        return UNPARSABLE.to_owned();
    };
    if !is_scheme(scheme) {
        return UNPARSABLE.to_owned();
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (user_info, host) = match authority.rfind('@') {
        Some(at) => (true, &authority[at + 1..]),
        None => (false, authority),
    };
    if host.len() > MAX_HOST || !is_host(host) {
        return UNPARSABLE.to_owned();
    }
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (tail, None),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (before_fragment, None),
    };

    let mut shown = String::with_capacity(text.len().min(1024) + 32);
    shown.push_str(scheme);
    shown.push_str("://");
    if user_info {
        shown.push_str(REDACTED);
        shown.push('@');
    }
    shown.push_str(host);
    push_path(&mut shown, path);
    if let Some(query) = query {
        push_query(&mut shown, query);
    }
    if fragment.is_some_and(|f| !f.is_empty()) {
        shown.push('#');
        shown.push_str(REDACTED);
    }
    shown
}

/// Appends `path`: as it is, cut after [`MAX_PATH`] bytes, or `/<unparsable path>`.
fn push_path(shown: &mut String, path: &str) {
    if !path.chars().all(is_path_char) {
        shown.push_str("/<unparsable path>");
        return;
    }
    if path.len() <= MAX_PATH {
        shown.push_str(path);
        return;
    }
    // Every character of a valid path is ASCII: any byte offset is a boundary.
    shown.push_str(&path[..MAX_PATH]);
    shown.push('…');
}

/// Appends `?` and the query's parameters: each name kept when it looks like one, each value
/// redacted; a parameter without `=`, or whose name does not look like one, redacted whole.
fn push_query(shown: &mut String, query: &str) {
    let params = query.split('&').filter(|param| !param.is_empty());
    for (count, param) in params.enumerate() {
        shown.push(if count == 0 { '?' } else { '&' });
        if count == MAX_PARAMS {
            shown.push('…');
            return;
        }
        match param.split_once('=') {
            Some((key, _)) if is_key(key) => {
                shown.push_str(key);
                shown.push('=');
                shown.push_str(REDACTED);
            }
            _ => shown.push_str(REDACTED),
        }
    }
}

/// Whether `scheme` is one: a letter, then letters, digits, `+`, `-` or `.`; at most 32.
fn is_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Whether `host` is a host and optional port: a name (internationalised too) or an IPv4
/// address, or a bracketed IPv6 address (with a `%` zone); then nothing, or `:` and at most five
/// digits. Empty is a host (`unix:///path`).
fn is_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let Some((address, after)) = rest.split_once(']') else {
                return false;
            };
            let address_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '%');
            if address.is_empty() || !address.chars().all(address_char) {
                return false;
            }
            match after {
                "" => return true,
                _ => match after.strip_prefix(':') {
                    Some(port) => ("", port),
                    None => return false,
                },
            }
        }
        None => match host.split_once(':') {
            Some((name, port)) => (name, port),
            None => (host, ""),
        },
    };
    let name_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '~' | '%');
    name.chars().all(name_char) && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `c` may be in a path: RFC 3986's unreserved characters, sub-delimiters, `:`, `@`,
/// `/` and `%` (of a percent-encoding).
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | '~'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | ';'
                | '='
                | ':'
                | '@'
                | '/'
                | '%'
        )
}

/// Whether `key` looks like a query parameter's name: 1 to 64 letters, digits, `_`, `-`, `.`,
/// `~`, `[`, `]` or `%`.
fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY
        && key.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '~' | '[' | ']' | '%')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_url_is_kept() {
        for plain in [
            "https://api.openai.com",
            "https://api.openai.com/",
            "https://api.groq.com/openai/v1",
            "http://127.0.0.1:8000",
            "http://[::1]:8080/v1",
            "redis://redis.internal:6379/0",
            "unix:///var/run/redis.sock",
        ] {
            assert_eq!(url(plain), plain);
        }
    }

    #[test]
    fn user_info_is_redacted() {
        assert_eq!(
            url("https://user:sk-secret@api.example.com/v1"),
            "https://<redacted>@api.example.com/v1"
        );
        assert_eq!(url("redis://:pw@h:6379"), "redis://<redacted>@h:6379");
        // The last `@` of the authority ends the user info, whatever it holds.
        assert_eq!(url("https://a@b:c@host/x"), "https://<redacted>@host/x");
        assert_eq!(url("https://@host"), "https://<redacted>@host");
    }

    #[test]
    fn query_values_are_redacted_and_names_kept() {
        assert_eq!(
            url("https://h/v1?key=sk-secret&api-version=2024-10-21"),
            "https://h/v1?key=<redacted>&api-version=<redacted>"
        );
        assert_eq!(url("https://h?key=sk-secret"), "https://h?key=<redacted>");
        // A parameter without a name, or without `=`, is redacted whole.
        assert_eq!(
            url("https://h/?sk-secret&=x&a=&&b=1=2"),
            "https://h/?<redacted>&<redacted>&a=<redacted>&b=<redacted>"
        );
        assert_eq!(url("https://h/?"), "https://h/");
    }

    #[test]
    fn the_fragment_is_redacted() {
        assert_eq!(
            url("https://h/p?x=1#access_token=sk"),
            "https://h/p?x=<redacted>#<redacted>"
        );
        assert_eq!(url("https://h/p#tok"), "https://h/p#<redacted>");
        assert_eq!(url("https://h#"), "https://h");
    }

    #[test]
    fn percent_encoded_parts_are_redacted_as_any_other() {
        assert_eq!(
            url("https://us%65r:p%40ss@h/a%20b?k%65y=v%26secret"),
            "https://<redacted>@h/a%20b?k%65y=<redacted>"
        );
        // An encoded `@` in the user info is not its end.
        assert_eq!(url("https://a%40b@h"), "https://<redacted>@h");
    }

    #[test]
    fn text_without_a_scheme_is_not_shown() {
        for text in [
            "api.openai.com",
            "api.openai.com/v1?key=sk-secret",
            "sk-proj-secret",
            "//host/path",
            "",
            "   ",
            "://host",
            "1http://host",
            "ht tp://host",
            "mailto:someone@example.com",
        ] {
            assert_eq!(url(text), UNPARSABLE, "{text:?}");
        }
    }

    #[test]
    fn garbage_is_never_echoed() {
        // A host no host looks like: not shown at all.
        assert_eq!(url("https://sk secret@"), "https://<redacted>@");
        assert_eq!(url("https://user:pw@host\\evil@x"), "https://<redacted>@x");
        for text in [
            "https://user:pw@host\\evil",
            "https://user:sk-secret",
            "https://h:sk",
            "https://h:123456",
            "https://[::1]x",
            "https://[::1",
            "https://[a b]",
            "https://ho st/",
            "https://host\"/",
            "https://\u{0}/",
        ] {
            assert_eq!(url(text), UNPARSABLE, "{text:?}");
        }
        // A path no path looks like: the host only.
        assert_eq!(url("https://h/a b"), "https://h/<unparsable path>");
        assert_eq!(
            url("https://h/\"sk-secret\"?k=v"),
            "https://h/<unparsable path>?k=<redacted>"
        );
        assert_eq!(url("https://h/é"), "https://h/<unparsable path>");
        // Names that are not names are redacted with their values.
        assert_eq!(url("https://h/?a b=1"), "https://h/?<redacted>");
        assert_eq!(url("  https://h/  "), "https://h/");
    }

    #[test]
    fn long_input_is_cut() {
        let path = "/a".repeat(10_000);
        let shown = url(&format!("https://h{path}?k=v"));
        assert_eq!(
            shown,
            format!("https://h{}…?k=<redacted>", &path[..MAX_PATH])
        );

        let query: Vec<String> = (0..1_000).map(|i| format!("k{i}=v{i}")).collect();
        let shown = url(&format!("https://h/?{}", query.join("&")));
        assert_eq!(shown.matches("<redacted>").count(), MAX_PARAMS);
        assert!(shown.ends_with("&…"), "{shown}");

        let long_key = "k".repeat(65);
        assert_eq!(
            url(&format!("https://h/?{long_key}=v")),
            "https://h/?<redacted>"
        );

        let host = "h".repeat(MAX_HOST + 1);
        assert_eq!(url(&format!("https://{host}/")), UNPARSABLE);

        let huge = "x".repeat(1 << 20);
        assert!(url(&huge).len() < 64);
        assert!(url(&format!("https://h/{huge}")).len() < 512);
    }

    #[test]
    fn no_input_panics_nor_comes_back_whole() {
        // Every prefix of a URL with secrets in each place, cut at every character.
        let full = "https://u:SECRET1@h:1/p?k=SECRET2&SECRET3#SECRET4";
        for end in 0..=full.len() {
            let Some(cut) = full.get(..end) else { continue };
            let shown = url(cut);
            for secret in ["SECRET1", "SECRET2", "SECRET3", "SECRET4"] {
                assert!(!shown.contains(secret), "{cut:?} shown as {shown:?}");
            }
        }
        for text in [
            "é://x",
            "https://[",
            "https://]:",
            "a://?#",
            "a://#?",
            "a://@@@",
        ] {
            let _ = url(text);
        }
    }
}
