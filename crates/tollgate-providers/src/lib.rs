//! Provider classifiers for [tollgate](https://docs.rs/tollgate): each turns a provider's
//! responses — status, headers and error body — into the [`Verdict`] every tollgate layer reads.
//!
//! # Overview
//!
//! The same status means different things at different providers. A 429 from OpenAI is a rate
//! limit unless its body says `insufficient_quota` (then retrying is useless); Anthropic's 529 is
//! an overload, not your quota; Gemini reports a bad API key as a **400** and its per-day quota
//! as a 429 with a misleadingly short `retryDelay`; a 400 `context_length_exceeded` needs a
//! bigger model, not a retry. Each classifier here knows its provider's rules
//! (`../shared/PROVIDERS.md` in the repository lists them, with sources):
//!
//! | classifier | provider |
//! |---|---|
//! | [`OpenAi`] | OpenAI |
//! | [`AzureOpenAi`] | Azure OpenAI |
//! | [`Anthropic`] | Anthropic |
//! | [`Gemini`] | Google Gemini and Vertex AI |
//! | [`DeepSeek`] | DeepSeek |
//! | [`Groq`] | Groq |
//! | [`Mistral`] | Mistral |
//! | [`OpenRouter`] | OpenRouter |
//! | [`Bedrock`] | Amazon Bedrock |
//! | [`Generic`] | any HTTP API: the official SDKs' status rules |
//!
//! [`ProviderClassifier`] holds any of them, chosen by name. Every classifier implements
//! [`Classify`](tollgate_core::Classify) and has `verdict(status, headers, body)` for direct use.
//! [`ClassifyLayer`] runs one once per response, nearest the wire, and attaches the verdict.
//!
//! Every classifier takes any bytes: a body that is not JSON, not UTF-8, truncated or huge
//! gives a verdict (from the status, Unknown where nothing fits), never a panic, and the body
//! parse allocates at most in proportion to the peeked body (64 KiB).
//!
//! The [`rewrite`] module holds the rewriters that send one request to another provider or
//! model: [`SetModel`], [`IncludeUsage`], [`Endpoint`] and [`Credentials`], each a
//! [`Rewrite`](tollgate_core::rewrite::Rewrite) for a fallback's targets or a router's
//! deployments.
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use tollgate_core::{DelaySource, ErrorClass, RetryAdvice};
//! use tollgate_providers::OpenAi;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("retry-after-ms", "1500".parse().unwrap());
//! headers.insert("x-ratelimit-remaining-tokens", "0".parse().unwrap());
//! let body = br#"{"error":{"message":"Rate limit reached for gpt-4o. Please try again in 1.2s.","type":"tokens","code":"rate_limit_exceeded"}}"#;
//!
//! let verdict = OpenAi::new().verdict(StatusCode::TOO_MANY_REQUESTS, &headers, body);
//! assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));
//! assert_eq!(verdict.advice(), RetryAdvice::SameTarget);
//! assert_eq!(verdict.delay(), Some(std::time::Duration::from_millis(1500)));
//! assert_eq!(verdict.delay_source(), DelaySource::RetryAfterMs);
//! ```
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).
//!
//! [`Verdict`]: tollgate_core::Verdict

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

mod anthropic;
mod bedrock;
mod body;
pub mod classify_layer;
mod gemini;
mod generic;
mod members;
mod mistral;
mod openai;
mod openrouter;
mod provider;
pub mod rewrite;
mod rules;
mod signals;

pub use anthropic::Anthropic;
pub use bedrock::Bedrock;
pub use classify_layer::{ClassifyLayer, ClassifyService, PeekedBody};
pub use gemini::Gemini;
pub use generic::Generic;
pub use mistral::Mistral;
pub use openai::{AzureOpenAi, DeepSeek, Groq, OpenAi};
pub use openrouter::OpenRouter;
pub use provider::{ProviderClassifier, UnknownProvider};
pub use rewrite::{Credentials, Endpoint, IncludeUsage, SetModel};

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
