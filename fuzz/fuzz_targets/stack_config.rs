//! `tollgate::stack::StackConfig::from_toml` on arbitrary text, and what an accepted
//! configuration builds.
//!
//! Input layout: the bytes as UTF-8 text; inputs that are not UTF-8 are skipped.
//!
//! Checks: no panic, whatever the text; an error displays, a syntax error's line and column
//! count from 1 and lie within the text, an invalid field names its path; an accepted
//! configuration has a primary provider among its providers, its builder is made with every
//! key variable set, each to a key of its own (or refused with an error naming the field, for a key that cannot be a
//! header), and the stack is built from it over an always-ready transport (no runtime
//! needed): the checks let through only what the builder takes, so it is never refused
//! ([`ConfigError::Build`]); with no variable set, the builder is made or refused with an
//! error naming the field. The key the environment gives never shows in an error or a
//! `Debug` of the builder or the stack (unless the text holds it).

#![no_main]

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use libfuzzer_sys::fuzz_target;
use tollgate::body::BufferedBody;
use tollgate::stack::{ConfigError, StackConfig};
use tower_service::Service;

/// The start of the key each variable holds (its name follows: each key its own).
const KEY: &str = "sk-fuzz-SECRET-4d2c";

/// An always-ready transport answering 200.
#[derive(Clone, Copy)]
struct Transport;

impl Service<Request<BufferedBody>> for Transport {
    type Response = Response<Empty<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<BufferedBody>) -> Self::Future {
        std::future::ready(Ok(Response::new(Empty::new())))
    }
}

/// Checks an error: it displays, and says where.
fn check_error(error: &ConfigError, text: &str, secret_free: bool) {
    let shown = error.to_string();
    assert!(!shown.is_empty(), "empty message");
    if secret_free {
        assert!(!shown.contains(KEY), "the key in {shown}");
        assert!(!format!("{error:?}").contains(KEY), "the key in {error:?}");
    }
    match error {
        ConfigError::Syntax { line, column, .. } => {
            assert!(*line >= 1 && *column >= 1, "{line}:{column}");
            let lines = text.split('\n').count();
            assert!(*line <= lines, "line {line} past the text ({lines} lines)");
        }
        ConfigError::Invalid { field, .. } | ConfigError::MissingEnv { field, .. } => {
            assert!(!field.is_empty(), "no field: {shown}");
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let secret_free = !text.contains("SECRET");
    let config = match StackConfig::from_toml(text) {
        Ok(config) => config,
        Err(error) => {
            check_error(&error, text, secret_free);
            return;
        }
    };
    assert!(config.providers().len() >= 1, "no provider");
    assert!(
        config.providers().any(|p| p == config.primary()),
        "the primary is not a provider"
    );
    let _ = config.fallback().count();
    let _ = config.context_window().count();
    let _ = config.cache();
    let _ = format!("{config:?}");

    let builder = match config.to_builder_with_env(|name| Some(format!("{KEY}-{name}"))) {
        Ok(builder) => builder,
        Err(error) => {
            check_error(&error, text, secret_free);
            assert!(
                matches!(error, ConfigError::Invalid { .. }),
                "with every variable set: {error:?}"
            );
            return;
        }
    };
    if secret_free {
        assert!(
            !format!("{builder:?}").contains(KEY),
            "the key in the builder"
        );
    }
    match builder.build(Transport) {
        Ok(stack) => {
            if secret_free {
                assert!(!format!("{stack:?}").contains(KEY), "the key in the stack");
            }
        }
        Err(error) => panic!("the builder refused what the checks let through: {error}"),
    }

    if let Err(error) = config.to_builder_with_env(|_| None) {
        check_error(&error, text, secret_free);
    }
});
