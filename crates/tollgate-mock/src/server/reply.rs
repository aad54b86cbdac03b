//! [`Reply`]: building the server's responses, with the flavor's error bodies, the request id
//! and the rate-limit headers, and recording each outcome.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use tokio::time::Instant;

use super::shared::Shared;
use crate::body::MockBody;
use crate::config::Flavor;
use crate::faults::Rng;
use crate::quota::Rejection;
use crate::stats::Outcome;
use crate::{anthropic, openai};

/// The body of the reverse proxy's 429.
const PROXY_REFUSAL_BODY: &[u8] = b"429 Too Many Requests\n";

/// A response under construction.
pub(super) struct Reply<'a> {
    pub(super) shared: &'a Shared,
    pub(super) request_id: String,
}

// ===== impl Reply =====

impl<'a> Reply<'a> {
    /// A reply to a new request, with the next request id.
    pub(super) fn new(shared: &'a Shared) -> Self {
        Reply {
            shared,
            request_id: request_id(shared),
        }
    }
}

impl Reply<'_> {
    pub(super) fn flavor(&self) -> Flavor {
        self.shared.config.flavor
    }

    /// A JSON response with the common and rate-limit headers; records the outcome.
    pub(super) fn json(
        &self,
        status: u16,
        body: Bytes,
        extra: &[(&str, String)],
    ) -> Response<MockBody> {
        self.shared.record(Outcome::Status(status), 0, 0);
        self.build(status, MockBody::full(body), "application/json", extra)
    }

    pub(super) fn build(
        &self,
        status: u16,
        body: MockBody,
        content_type: &'static str,
        extra: &[(&str, String)],
    ) -> Response<MockBody> {
        let mut res = Response::new(body);
        *res.status_mut() =
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self.common_headers(headers);
        for (name, value) in extra {
            openai::insert(headers, name, value.clone());
        }
        res
    }

    fn common_headers(&self, headers: &mut HeaderMap) {
        let snap = self.shared.quota.lock().snapshot(Instant::now());
        match self.flavor() {
            Flavor::OpenAi => {
                openai::insert(headers, "x-request-id", self.request_id.clone());
                openai::rate_limit_headers(&snap, headers);
            }
            Flavor::Anthropic => {
                openai::insert(headers, "request-id", self.request_id.clone());
                anthropic::rate_limit_headers(&snap, self.shared.wall_now(), headers);
            }
        }
    }

    /// The reverse proxy's refusal: 429, a fixed `Retry-After`, a plain-text body, and none of
    /// the provider's headers (no request id, no rate-limit headers).
    pub(super) fn proxy_refusal(&self) -> Response<MockBody> {
        self.shared.record(Outcome::ProxyLimited, 0, 0);
        let retry_after_secs = self
            .shared
            .config
            .proxy_limit
            .as_ref()
            .map_or(1, |limit| limit.retry_after_secs);
        let mut res = Response::new(MockBody::full(Bytes::from_static(PROXY_REFUSAL_BODY)));
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let headers = res.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
        res
    }

    /// The flavor's body for an error status (faults and outages).
    pub(super) fn status_error(&self, status: u16) -> Response<MockBody> {
        let (body, mut extra) = match self.flavor() {
            Flavor::OpenAi => (openai::status_error(status), Vec::new()),
            Flavor::Anthropic => (
                anthropic::status_error(status, &self.request_id),
                Vec::new(),
            ),
        };
        if status == 429 {
            extra.extend(retry_after(self.flavor(), Duration::from_secs(1)));
        }
        if status == 529 {
            extra.push(("x-should-retry", "true".to_owned()));
        }
        self.json(status, body, &extra)
    }

    pub(super) fn invalid_request(&self, status: u16, message: &str) -> Response<MockBody> {
        let body = match self.flavor() {
            Flavor::OpenAi => openai::error(message, "invalid_request_error", None, None),
            Flavor::Anthropic => {
                let kind = match status {
                    404 => "not_found_error",
                    413 => "request_too_large",
                    _ => "invalid_request_error",
                };
                anthropic::error(kind, message, &self.request_id)
            }
        };
        self.json(status, body, &[])
    }

    pub(super) fn rate_limited(&self, model: &str, r: &Rejection) -> Response<MockBody> {
        let body = match self.flavor() {
            Flavor::OpenAi => openai::rate_limit_error(model, r),
            Flavor::Anthropic => anthropic::rate_limit_error(r, &self.request_id),
        };
        let extra = r
            .wait
            .map(|w| retry_after(self.flavor(), w))
            .unwrap_or_default();
        self.json(429, body, &extra)
    }
}

/// `retry-after` (whole seconds, rounded up, at least 1) and, for OpenAI, `retry-after-ms`.
fn retry_after(flavor: Flavor, wait: Duration) -> Vec<(&'static str, String)> {
    let ms = wait.as_nanos().div_ceil(1_000_000).max(1);
    let secs = ms.div_ceil(1000);
    let mut v = vec![("retry-after", secs.to_string())];
    if flavor == Flavor::OpenAi {
        v.push(("retry-after-ms", ms.to_string()));
    }
    v
}

/// A unique id, `req_` and 24 hex digits, the same for the same seed and request number.
fn request_id(shared: &Shared) -> String {
    let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let mut rng = Rng::new(shared.config.seed ^ n.rotate_left(32));
    format!("req_{:016x}{:08x}", rng.next_u64(), n & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(
            retry_after(Flavor::OpenAi, Duration::from_millis(1200)),
            vec![
                ("retry-after", "2".to_owned()),
                ("retry-after-ms", "1200".to_owned())
            ]
        );
        assert_eq!(
            retry_after(Flavor::Anthropic, Duration::from_nanos(1)),
            vec![("retry-after", "1".to_owned())]
        );
    }
}
