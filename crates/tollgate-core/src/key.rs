//! [`Keyer`]: which key a request belongs to — per API key, per tenant, per target — for the
//! layers that keep state per key (rate limits, circuit breakers).
//!
//! | keyer | key |
//! |---|---|
//! | [`Unkeyed`] (default) | none: one state for everything |
//! | [`ByRouteKey`] | the [`RouteKey`] request extension |
//! | [`ByHeader`] | a header's value, such as a tenant id |
//! | [`ByApiKey`] | a fingerprint of `authorization`, `x-api-key`, `api-key` or `x-goog-api-key` (the secret itself is never kept) |
//! | [`keyer_fn`] | whatever a closure says |
//!
//! `tollgate-ratelimit` adds `ByModel`, the `model` field of a JSON body. A request without a
//! key (no such header) belongs to the unkeyed state.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use crate::RouteKey;
use http::HeaderName;

/// Takes the quota key from a request.
pub trait Keyer<B> {
    /// The key, or `None` for the unkeyed quota.
    fn key(&self, request: &http::Request<B>) -> Option<RouteKey>;
}

/// No key: every request draws from one quota.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unkeyed;

impl<B> Keyer<B> for Unkeyed {
    fn key(&self, _: &http::Request<B>) -> Option<RouteKey> {
        None
    }
}

/// The [`RouteKey`] request extension.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByRouteKey;

impl<B> Keyer<B> for ByRouteKey {
    fn key(&self, request: &http::Request<B>) -> Option<RouteKey> {
        RouteKey::of(request).cloned()
    }
}

/// A header's value (valid UTF-8, trimmed), such as a tenant id.
#[derive(Debug, Clone)]
pub struct ByHeader {
    name: HeaderName,
}

impl ByHeader {
    /// Keys by the header `name`.
    pub const fn new(name: HeaderName) -> Self {
        ByHeader { name }
    }
}

impl<B> Keyer<B> for ByHeader {
    fn key(&self, request: &http::Request<B>) -> Option<RouteKey> {
        let value = request.headers().get(&self.name)?.to_str().ok()?.trim();
        (!value.is_empty()).then(|| RouteKey::new(value))
    }
}

/// The caller's API key, as a fingerprint: `authorization` (OpenAI and compatibles),
/// `x-api-key` (Anthropic), `api-key` (Azure) or `x-goog-api-key` (Gemini), whichever comes
/// first. The key is hashed (SipHash with fixed keys, 64 bits, shown as `key-<hex>`), so the
/// limiter never keeps the secret; fingerprints are the same in every run of one build.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByApiKey;

const API_KEY_HEADERS: [&str; 4] = ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

impl<B> Keyer<B> for ByApiKey {
    fn key(&self, request: &http::Request<B>) -> Option<RouteKey> {
        let value = API_KEY_HEADERS
            .iter()
            .find_map(|name| request.headers().get(*name))?;
        let mut hasher = FixedState.build_hasher();
        hasher.write(value.as_bytes());
        Some(RouteKey::new(format!("key-{:016x}", hasher.finish())))
    }
}

/// `std`'s SipHash with fixed keys, so fingerprints do not change between runs.
struct FixedState;

impl BuildHasher for FixedState {
    type Hasher = std::hash::DefaultHasher;

    fn build_hasher(&self) -> Self::Hasher {
        std::hash::DefaultHasher::new()
    }
}

/// A keyer from a closure; see [`keyer_fn`].
#[derive(Clone, Copy)]
pub struct KeyerFn<F> {
    f: F,
}

/// A [`Keyer`] from a closure.
///
/// # Examples
///
/// ```
/// use tollgate_core::RouteKey;
/// use tollgate_core::key::{Keyer, keyer_fn};
///
/// let by_path = keyer_fn(|request: &http::Request<()>| Some(RouteKey::new(request.uri().path())));
/// let request = http::Request::get("/v1/chat/completions").body(()).unwrap();
/// assert_eq!(by_path.key(&request).unwrap().as_str(), "/v1/chat/completions");
/// ```
pub const fn keyer_fn<F>(f: F) -> KeyerFn<F> {
    KeyerFn { f }
}

impl<F> fmt::Debug for KeyerFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyerFn").finish_non_exhaustive()
    }
}

impl<B, F> Keyer<B> for KeyerFn<F>
where
    F: Fn(&http::Request<B>) -> Option<RouteKey>,
{
    fn key(&self, request: &http::Request<B>) -> Option<RouteKey> {
        (self.f)(request)
    }
}
