//! [`Keyer`]s: which quota a request draws from — per model, per API key, per tenant.
//!
//! | keyer | key |
//! |---|---|
//! | [`Unkeyed`] (default) | none: one quota for everything |
//! | [`ByRouteKey`] | the [`RouteKey`] request extension |
//! | [`ByHeader`] | a header's value, such as a tenant id |
//! | [`ByApiKey`] | a fingerprint of `authorization`, `x-api-key`, `api-key` or `x-goog-api-key` (the secret itself is never kept) |
//! | [`ByModel`] | the `model` field of a JSON body |
//! | [`keyer_fn`] | whatever a closure says |
//!
//! All but [`ByModel`] come from [`tollgate_core::key`], shared with the other keyed layers. A
//! request without a key (no such header, no `model` field) draws from the unkeyed quota.

use std::any::Any;
use std::borrow::Cow;

use tollgate_core::RouteKey;
use tollgate_core::body::BufferedBody;
use tollgate_core::json::Scanner;

pub use tollgate_core::key::{ByApiKey, ByHeader, ByRouteKey, Keyer, KeyerFn, Unkeyed, keyer_fn};

/// The `model` field of a JSON body (`B: AsRef<[u8]>`, a buffered body).
#[derive(Debug, Clone, Copy, Default)]
pub struct ByModel;

impl ByModel {
    /// A JSON body's top-level `model` string, found without building a tree and borrowed
    /// from the body unless it holds escapes (decoded as `serde_json` decodes them); none when
    /// the body is not a JSON object, has no `model`, names it twice or holds something else
    /// in it. What [`key`](Keyer::key) keys by, without building the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate_ratelimit::ByModel;
    ///
    /// let body = br#"{"model":"gpt-4o","messages":[]}"#;
    /// assert_eq!(ByModel::model_of(body).as_deref(), Some("gpt-4o"));
    /// assert_eq!(ByModel::model_of(br#"{"model":"gpt-\u0034o"}"#).as_deref(), Some("gpt-4o"));
    /// assert_eq!(ByModel::model_of(br#"{"model":4}"#), None);
    /// ```
    pub fn model_of(bytes: &[u8]) -> Option<Cow<'_, str>> {
        let mut scanner = Scanner::new(bytes).ok()?;
        let (mut model, mut repeated) = (None, false);
        scanner
            .object(|scanner, name| {
                let value = scanner.skip()?;
                if name.is("model") {
                    repeated |= model.replace(value).is_some();
                }
                Ok(())
            })
            .ok()?;
        scanner.finish().ok()?;
        if repeated {
            return None;
        }
        model_string(&bytes[model?])
    }

    /// [`model_of`](Self::model_of) a body. A [`BufferedBody`] is read through its
    /// [outline](BufferedBody::outline), scanned once and kept for the readers after this one
    /// (the token estimate reads it rather than scanning the body again); any other body is
    /// scanned by `model_of`. What [`key`](Keyer::key) keys by.
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate_core::body::BufferedBody;
    /// use tollgate_ratelimit::ByModel;
    ///
    /// let body = BufferedBody::from(r#"{"model":"gpt-4o","messages":[]}"#);
    /// assert_eq!(ByModel::model_of_body(&body).as_deref(), Some("gpt-4o"));
    /// assert!(body.kept_outline().is_some());
    /// ```
    pub fn model_of_body<B: AsRef<[u8]> + 'static>(body: &B) -> Option<Cow<'_, str>> {
        let Some(buffered) = (body as &dyn Any).downcast_ref::<BufferedBody>() else {
            return ByModel::model_of(body.as_ref());
        };
        let bytes = buffered.bytes();
        // No outline: no JSON object (`model_of` says none), or too many members to keep.
        let Some(outline) = buffered.outline() else {
            return ByModel::model_of(bytes);
        };
        let found = outline.find(bytes, ["model"]);
        if found.repeated {
            return None;
        }
        model_string(&bytes[found.members[0]?.value()])
    }
}

/// A `model` member's value as a string: borrowed unless it holds escapes (decoded as
/// `serde_json` decodes them, rare in a model's name); none for any other value.
fn model_string(value: &[u8]) -> Option<Cow<'_, str>> {
    match value {
        [b'"', text @ .., b'"'] if !text.contains(&b'\\') => {
            std::str::from_utf8(text).ok().map(Cow::Borrowed)
        }
        text => serde_json::from_slice::<String>(text).ok().map(Cow::Owned),
    }
}

impl<B: AsRef<[u8]> + 'static> Keyer<B> for ByModel {
    /// The body's top-level `model` string ([`ByModel::model_of_body`]).
    fn key(&self, request: &http::Request<B>) -> Option<RouteKey> {
        ByModel::model_of_body(request.body()).map(|model| RouteKey::new(&*model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Estimator, OpenAiChat};

    #[test]
    fn a_buffered_body_gives_the_model_its_bytes_give() {
        let many: Vec<String> = (0..=tollgate_core::json::Outline::CAPACITY)
            .map(|i| format!(r#""x{i}":{i}"#))
            .collect();
        let beyond_an_outline = format!(r#"{{{},"model":"wide"}}"#, many.join(","));
        for body in [
            r#"{"model":"gpt-4o","messages":[]}"#,
            r#" { "messages" : [] , "model" : "claude-sonnet-4-5" } "#,
            r#"{"mod\u0065l":"escaped-name"}"#,
            r#"{"model":"gpt-\u0034o"}"#,
            r#"{"model":"a","model":"b"}"#,
            r#"{"model":4}"#,
            r#"{"model":null}"#,
            r#"{"model":"\ud800"}"#,
            r#"{"other":{"model":"nested"}}"#,
            r#"{}"#,
            r#"{"model":"x""#,
            "[\"model\"]",
            "not json",
            "",
            &beyond_an_outline,
        ] {
            let buffered = BufferedBody::from(body.to_owned());
            assert_eq!(
                ByModel::model_of_body(&buffered),
                ByModel::model_of(body.as_bytes()),
                "{body}"
            );
            let bytes = body.as_bytes().to_vec();
            assert_eq!(ByModel::model_of_body(&bytes), ByModel::model_of(&bytes));
        }
        assert_eq!(
            ByModel::model_of_body(&BufferedBody::from(beyond_an_outline)).as_deref(),
            Some("wide")
        );
    }

    #[test]
    fn the_model_key_leaves_the_outline_for_the_estimate() {
        let text = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Bonjour"}]}"#;
        let request = http::Request::new(BufferedBody::from(text));
        assert_eq!(ByModel.key(&request).unwrap().as_str(), "gpt-4o");
        assert!(request.body().kept_outline().is_some());
        // The estimate read from that outline equals a fresh one.
        let fresh = http::Request::new(BufferedBody::from(text));
        let chat = OpenAiChat::new();
        assert_eq!(chat.estimate(&request), chat.estimate(&fresh));
    }
}
