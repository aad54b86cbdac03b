//! Parsing what providers say in response headers: the requested delay ([`retry_after`]), Go
//! durations ([`go_duration`]), `x-should-retry` ([`should_retry`]), and one parser per
//! rate-limit header family into a [`RateLimitSnapshot`].
//!
//! Every function here takes untrusted input and never panics: a header that is missing,
//! malformed, not UTF-8, negative, NaN or infinite is simply absent. A requested delay that is
//! a number too large to represent is not absent: [`retry_after`] and [`server_delay`] saturate
//! it to [`Duration::MAX`], "longer than any cap" (PROVIDERS.md §7 item 4). Elsewhere (counts,
//! resets, Go durations) an overflowing value is absent.
//!
//! | family | function | notes |
//! |---|---|---|
//! | OpenAI | [`openai`] | per minute; reset is a Go duration until the bucket is full |
//! | Azure OpenAI | [`azure_openai`] | per minute; reset in integer seconds; `-1` (and reset `0`) mean unknown |
//! | Groq | [`groq`] | `*-requests` are **per day**, `*-tokens` per minute; Go durations |
//! | Anthropic | [`anthropic`] | requests, tokens, input and output tokens per minute; RFC 3339 reset times |
//! | Mistral | [`mistral`] | tokens per minute and per month; reset in seconds |
//! | OpenRouter | [`openrouter`] | requests over an unspecified window; reset is an epoch time |
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::HeaderMap;
//! use tollgate_core::{headers, Dimension, Window};
//!
//! let mut map = HeaderMap::new();
//! map.insert("retry-after-ms", "1500".parse().unwrap());
//! map.insert("retry-after", "30".parse().unwrap());
//! map.insert("x-ratelimit-remaining-tokens", "0".parse().unwrap());
//! map.insert("x-ratelimit-reset-tokens", "6m0s".parse().unwrap());
//!
//! let now = SystemTime::now();
//! // retry-after-ms wins over retry-after
//! assert_eq!(headers::retry_after(&map, now), Some(Duration::from_millis(1500)));
//!
//! let snapshot = headers::openai(&map, now);
//! let tokens = snapshot.get(Dimension::Tokens, Window::Minute).unwrap();
//! assert_eq!(tokens.remaining, Some(0));
//! assert_eq!(tokens.reset, Some(Duration::from_secs(360)));
//! ```
//!
//! [`RateLimitSnapshot`]: crate::RateLimitSnapshot
//! [`Duration::MAX`]: std::time::Duration::MAX

mod go_duration;
mod rate_limit;
mod read;
mod retry;
mod rfc3339;

pub use go_duration::go_duration;
pub use rate_limit::{anthropic, azure_openai, groq, mistral, openai, openrouter};
pub use retry::{retry_after, server_delay, should_retry};
pub use rfc3339::rfc3339;
