//! Client-side quotas for [tollgate](https://docs.rs/tollgate) that count what providers count:
//! requests *and* tokens, per minute and per day.
//!
//! # Overview
//!
//! This crate is being built. It holds the admission [`algorithm`]s so far — token bucket, GCRA,
//! fixed window, and the exact and approximate sliding windows — each a pure function of its
//! state, a cost and `now`. `RateLimitLayer`, which admits each request against several such
//! quotas at once, per key, with fair waiting and feedback from the provider's headers, comes
//! next.
//!
//! # Example
//!
//! ```
//! use std::num::NonZeroU64;
//! use std::time::Duration;
//! use tollgate_ratelimit::algorithm::{Admission, Algorithm, Quota, TokenBucket};
//!
//! // DeepSeek-style daily cap: 500M tokens per day.
//! let daily = TokenBucket::new(Quota::per_day(NonZeroU64::new(500_000_000).unwrap()));
//! let mut state = Default::default();
//! assert_eq!(daily.wait(&state, 4_000, Duration::ZERO), Admission::Now);
//! daily.take(&mut state, 4_000, Duration::ZERO);
//! assert_eq!(daily.available(&state, Duration::ZERO), 499_996_000);
//! ```
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

pub mod algorithm;
