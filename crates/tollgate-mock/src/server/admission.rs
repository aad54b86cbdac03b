//! The refusals before an answer, steps 3 to 9 of the pipeline: the reverse-proxy limiter, the
//! API key, an outage, the prepaid credit, the context window and the quotas. Each returns the
//! refusal as a response; only admission (9) consumes quota, and only when it admits.

use std::sync::Arc;

use http::HeaderMap;
use tokio::time::Instant;

use super::handler::Stop;
use super::reply::Reply;
use super::request::{Parsed, api_key};
use super::shared::{Admitted, Shared};
use crate::config::Flavor;
use crate::quota::Charge;
use crate::{anthropic, openai};

/// Step 3: the reverse proxy's bare 429, when its limiter refuses the request; nothing consumed.
pub(super) fn proxy(reply: &Reply<'_>, headers: &HeaderMap) -> Result<(), Stop> {
    if reply.shared.proxy_refuses(headers) {
        return Err(reply.proxy_refusal().into());
    }
    Ok(())
}

/// Step 4: a 401 unless the request presents the configured key (when one is configured).
pub(super) fn authenticate(reply: &Reply<'_>, headers: &HeaderMap) -> Result<(), Stop> {
    let Some(expected) = &reply.shared.config.api_key else {
        return Ok(());
    };
    let presented = api_key(headers);
    if presented.as_deref() == Some(expected.as_str()) {
        return Ok(());
    }
    let body = match reply.flavor() {
        Flavor::OpenAi => openai::unauthorized(presented.as_deref()),
        Flavor::Anthropic => {
            let message = if presented.is_some() {
                "invalid x-api-key"
            } else {
                "x-api-key header is required"
            };
            anthropic::error("authentication_error", message, &reply.request_id)
        }
    };
    Err(reply.json(401, body, &[]).into())
}

/// Step 5: the outage's status during an outage, manual or scheduled; no quota consumed.
pub(super) fn outage(reply: &Reply<'_>) -> Result<(), Stop> {
    match reply.shared.outage_status() {
        Some(status) => Err(reply.status_error(status).into()),
        None => Ok(()),
    }
}

/// Step 7: once the prepaid credit is spent, OpenAI's 429 `insufficient_quota` or Anthropic's
/// 400.
pub(super) fn credit(reply: &Reply<'_>) -> Result<(), Stop> {
    if !reply.shared.quota.lock().credit_exhausted() {
        return Ok(());
    }
    let refusal = match reply.flavor() {
        Flavor::OpenAi => reply.json(429, openai::insufficient_quota(), &[]),
        Flavor::Anthropic => reply.json(
            400,
            anthropic::credit_exhausted(&reply.request_id),
            &[("x-should-retry", "false".to_owned())],
        ),
    };
    Err(refusal.into())
}

/// Step 8: a 400 when the prompt and the most it may generate exceed the context window; no
/// quota consumed.
pub(super) fn context_window(reply: &Reply<'_>, parsed: &Parsed) -> Result<(), Stop> {
    let window = reply.shared.config.context_window;
    let over = match parsed.max_tokens {
        Some(m) => parsed.input.saturating_add(m) > window,
        None => parsed.input > window,
    };
    if !over {
        return Ok(());
    }
    let body = match reply.flavor() {
        Flavor::OpenAi => openai::context_length_exceeded(window, parsed.input, parsed.max_tokens),
        Flavor::Anthropic => anthropic::context_too_long(
            window,
            parsed.input,
            parsed.max_tokens.unwrap_or(0),
            &reply.request_id,
        ),
    };
    Err(reply.json(400, body, &[]).into())
}

/// Step 9: admission against the quotas, charging the prompt and the most it may generate: the
/// request's concurrency slot, or a 429 with nothing consumed.
pub(super) fn admit(
    shared: &Arc<Shared>,
    reply: &Reply<'_>,
    parsed: &Parsed,
) -> Result<Admitted, Stop> {
    let charged_max = parsed.max_tokens.unwrap_or(shared.config.completion_tokens);
    let charge = Charge::admission(shared.config.flavor, parsed.input, charged_max);
    let admitted = {
        let mut quota = shared.quota.lock();
        quota.admit(Instant::now(), charge)
    };
    if let Err(r) = admitted {
        return Err(reply.rate_limited(&parsed.model, &r).into());
    }
    Ok(Admitted(shared.clone()))
}
