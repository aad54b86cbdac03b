//! [`Estimator`]: what a request will cost before the provider says.
//!
//! A request's [`Cost`] request extension, when set, always wins; the layer asks its estimator
//! only for requests without one. After the response, [`Estimator::actual`] turns the usage the
//! provider reported into the cost it really charged, and the layer refunds or charges the
//! difference.
//!
//! | estimator | charges |
//! |---|---|
//! | [`PerRequest`] (default) | one request, no tokens |
//! | [`OpenAiChat`] | one request; tokens = ⌈prompt characters / 4⌉ + `max_completion_tokens` (or `max_tokens`, `max_output_tokens`) × `n` |
//! | [`AnthropicMessages`] | one request; input tokens = ⌈prompt characters / 4⌉; output tokens = 0 until the usage is known (or `max_tokens`, if asked) |
//! | [`estimator_fn`] | whatever a closure says |
//!
//! The JSON estimators read a buffered body (`B: AsRef<[u8]>`, such as
//! [`BufferedBody`], `Bytes`, `Vec<u8>` or `String`). "Prompt
//! characters" are the Unicode characters of every string in the prompt (`messages`, `system`,
//! `prompt`, `input`, `tools`), without the JSON around them. A body that is not JSON is charged
//! ⌈bytes / 4⌉ tokens, never nothing. The characters are counted as the body is read, without
//! building a JSON tree or decoding a string ([`tollgate_core::json::Scanner`]).

use std::any::Any;
use std::fmt;

use tollgate_core::body::BufferedBody;
use tollgate_core::json::{Outline, Scanner};
use tollgate_core::{Cost, Dimension, Usage};

/// Estimates a request's cost, and the actual cost from the reported usage.
pub trait Estimator<B> {
    /// What `request` will cost, per dimension.
    fn estimate(&self, request: &http::Request<B>) -> Cost;

    /// What the provider actually charged, given the usage it reported and what was estimated.
    /// A dimension the usage says nothing about keeps its estimate.
    ///
    /// The default: tokens = input + output (or the reported total), input and output tokens as
    /// reported; requests as estimated.
    fn actual(&self, usage: &Usage, estimated: &Cost) -> Cost {
        let mut actual = *estimated;
        if let Some(total) = usage.total_tokens() {
            actual = actual.with(Dimension::Tokens, total);
        }
        if let Some(input) = usage.input_tokens {
            actual = actual.with(Dimension::InputTokens, input);
        }
        if let Some(output) = usage.output_tokens {
            actual = actual.with(Dimension::OutputTokens, output);
        }
        actual
    }
}

/// One request, no tokens: for request-count limits alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerRequest;

impl<B> Estimator<B> for PerRequest {
    fn estimate(&self, _: &http::Request<B>) -> Cost {
        Cost::requests(1)
    }
}

/// An estimator from a closure; see [`estimator_fn`].
#[derive(Clone, Copy)]
pub struct EstimatorFn<F> {
    f: F,
}

/// An [`Estimator`] from a closure over the request; the actual cost uses the default rules.
///
/// # Examples
///
/// ```
/// use tollgate_core::{Cost, Dimension};
/// use tollgate_ratelimit::{Estimator, estimator_fn};
///
/// let estimator = estimator_fn(|request: &http::Request<String>| {
///     Cost::requests(1).with(Dimension::Tokens, request.body().len() as u64)
/// });
/// let cost = estimator.estimate(&http::Request::new("hello".to_owned()));
/// assert_eq!(cost.get(Dimension::Tokens), 5);
/// ```
pub const fn estimator_fn<F>(f: F) -> EstimatorFn<F> {
    EstimatorFn { f }
}

impl<F> fmt::Debug for EstimatorFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EstimatorFn").finish_non_exhaustive()
    }
}

impl<B, F> Estimator<B> for EstimatorFn<F>
where
    F: Fn(&http::Request<B>) -> Cost,
{
    fn estimate(&self, request: &http::Request<B>) -> Cost {
        (self.f)(request)
    }
}

// ===== impl OpenAiChat =====

/// OpenAI-compatible chat completions, completions and responses bodies, charged as OpenAI
/// charges its token limit: the prompt estimate plus the output the request allows for
/// (PROVIDERS.md §5, §7 item 15).
///
/// Tokens = ⌈prompt characters / 4⌉ + `max_completion_tokens` (else `max_tokens`, else
/// `max_output_tokens`, else [`with_default_output`](Self::with_default_output), 0 by default)
/// × `n` (choices, 1 by default). Requests = 1. The actual cost counts cached prompt tokens too:
/// OpenAI charges them against the token limit.
///
/// # Examples
///
/// ```
/// use tollgate_core::Dimension;
/// use tollgate_ratelimit::{Estimator, OpenAiChat};
///
/// let body = r#"{"model":"gpt-4o","max_tokens":100,
///                "messages":[{"role":"user","content":"Say hello in French."}]}"#;
/// let cost = OpenAiChat::new().estimate(&http::Request::new(body));
/// // "Say hello in French." and "user": 24 characters, 6 tokens; plus 100 allowed for the reply.
/// assert_eq!(cost.get(Dimension::Tokens), 106);
/// assert_eq!(cost.get(Dimension::Requests), 1);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiChat {
    default_output: u64,
}

impl OpenAiChat {
    /// The estimator.
    pub const fn new() -> Self {
        OpenAiChat { default_output: 0 }
    }

    /// Output tokens to charge when the request sets no maximum.
    #[must_use]
    pub const fn with_default_output(mut self, tokens: u64) -> Self {
        self.default_output = tokens;
        self
    }
}

impl<B: AsRef<[u8]> + 'static> Estimator<B> for OpenAiChat {
    fn estimate(&self, request: &http::Request<B>) -> Cost {
        let bytes = request.body().as_ref();
        let read = Members::read(
            request.body(),
            ["messages", "prompt", "input", "instructions", "tools"],
            [
                "max_completion_tokens",
                "max_tokens",
                "max_output_tokens",
                "n",
            ],
        );
        let tokens = match read {
            Some(Members {
                characters,
                numbers: [max_completion_tokens, max_tokens, max_output_tokens, n],
            }) => {
                let output = max_completion_tokens
                    .or(max_tokens)
                    .or(max_output_tokens)
                    .unwrap_or(self.default_output);
                characters
                    .div_ceil(4)
                    .saturating_add(output.saturating_mul(n.unwrap_or(1).max(1)))
            }
            None => raw_tokens(bytes),
        };
        Cost::requests(1).with(Dimension::Tokens, tokens)
    }
}

// ===== impl AnthropicMessages =====

/// Anthropic Messages bodies, charged as Anthropic counts: input and output tokens are separate
/// limits (ITPM, OTPM), and `max_tokens` is not charged to OTPM (PROVIDERS.md §5).
///
/// Input tokens = ⌈characters of `system`, `messages` and `tools` / 4⌉; output tokens = 0 (or
/// `max_tokens` with [`with_max_tokens_charged`](Self::with_max_tokens_charged)); tokens = both;
/// requests = 1. An output limit in debt still holds requests back, and the actual output is
/// charged from the usage; cached input tokens are not charged to the input limit.
///
/// # Examples
///
/// ```
/// use tollgate_core::Dimension;
/// use tollgate_ratelimit::{AnthropicMessages, Estimator};
///
/// let body = r#"{"model":"claude-sonnet-4","max_tokens":1024,"system":"Be brief.",
///                "messages":[{"role":"user","content":"Hello, Claude"}]}"#;
/// let cost = AnthropicMessages::new().estimate(&http::Request::new(body));
/// // "Be brief.", "user", "Hello, Claude": 26 characters, 7 tokens.
/// assert_eq!(cost.get(Dimension::InputTokens), 7);
/// assert_eq!(cost.get(Dimension::OutputTokens), 0);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AnthropicMessages {
    charge_max_tokens: bool,
}

impl AnthropicMessages {
    /// The estimator.
    pub const fn new() -> Self {
        AnthropicMessages {
            charge_max_tokens: false,
        }
    }

    /// Whether to charge `max_tokens` to the output limit up front (as Anthropic did before;
    /// safer when output limits are tight), refunding the unused part once the usage is known.
    /// Off by default.
    #[must_use]
    pub const fn with_max_tokens_charged(mut self, charged: bool) -> Self {
        self.charge_max_tokens = charged;
        self
    }
}

impl<B: AsRef<[u8]> + 'static> Estimator<B> for AnthropicMessages {
    fn estimate(&self, request: &http::Request<B>) -> Cost {
        let bytes = request.body().as_ref();
        let read = Members::read(
            request.body(),
            ["system", "messages", "tools"],
            ["max_tokens"],
        );
        let (input, output) = match read {
            Some(Members {
                characters,
                numbers: [max_tokens],
            }) => {
                let output = if self.charge_max_tokens {
                    max_tokens.unwrap_or(0)
                } else {
                    0
                };
                (characters.div_ceil(4), output)
            }
            None => (raw_tokens(bytes), 0),
        };
        Cost::requests(1)
            .with(Dimension::InputTokens, input)
            .with(Dimension::OutputTokens, output)
            .with(Dimension::Tokens, input.saturating_add(output))
    }

    fn actual(&self, usage: &Usage, estimated: &Cost) -> Cost {
        let mut actual = *estimated;
        let input = usage
            .input_tokens
            .map(|n| n.saturating_sub(usage.cached_input_tokens.unwrap_or(0)));
        if let Some(input) = input {
            actual = actual.with(Dimension::InputTokens, input);
        }
        if let Some(output) = usage.output_tokens {
            actual = actual.with(Dimension::OutputTokens, output);
        }
        if let Some(total) = usage.total_tokens() {
            actual = actual.with(Dimension::Tokens, total);
        }
        actual
    }
}

/// What an estimate reads of a body: the characters of every string in its prompt members
/// (their members' names aside, escapes counted as the characters they stand for) and its
/// numeric members, read in one pass without building a tree or decoding a string.
struct Members<const U: usize> {
    characters: u64,
    numbers: [Option<u64>; U],
}

impl<const U: usize> Members<U> {
    /// Reads `body` as one JSON object: the characters of the members named in `prompts`
    /// (`null` counts none) and the non-negative integers (or `null`) of those in `numbers`.
    /// `None`, so that the bytes are counted instead, when it is no such object: not JSON, not
    /// an object, a number member that is no such integer, a prompt member holding a lone
    /// surrogate, or a member given twice — as `serde_json` would refuse it.
    ///
    /// From the [`Outline`] a [`BufferedBody`] keeps when an earlier reader (a rewriter such
    /// as `SetModel`) scanned it, else in one pass of its own (keeping nothing: the estimate is
    /// usually a body's last reader).
    fn read<B: AsRef<[u8]> + 'static, const P: usize>(
        body: &B,
        prompts: [&str; P],
        numbers: [&str; U],
    ) -> Option<Self> {
        let kept = (body as &dyn Any)
            .downcast_ref::<BufferedBody>()
            .and_then(BufferedBody::kept_outline);
        match kept {
            Some(outline) => Self::from_outline(body.as_ref(), outline, prompts, numbers),
            None => Self::scan(body.as_ref(), prompts, numbers),
        }
    }

    /// [`read`](Self::read) from the outline of `bytes`.
    fn from_outline<const P: usize>(
        bytes: &[u8],
        outline: &Outline,
        prompts: [&str; P],
        numbers: [&str; U],
    ) -> Option<Self> {
        let (prompts, numbers) = (outline.find(bytes, prompts), outline.find(bytes, numbers));
        if prompts.repeated || numbers.repeated {
            return None;
        }
        let mut read = Members {
            characters: 0,
            numbers: [None; U],
        };
        for member in prompts.members.into_iter().flatten() {
            read.characters = read.characters.saturating_add(member.characters()?);
        }
        for (number, member) in read.numbers.iter_mut().zip(numbers.members) {
            if let Some(member) = member {
                let mut scanner = Scanner::new(bytes.get(member.value())?).ok()?;
                *number = scanner.unsigned().ok()?;
            }
        }
        Some(read)
    }

    /// [`read`](Self::read) in one pass over `bytes`.
    fn scan<const P: usize>(bytes: &[u8], prompts: [&str; P], numbers: [&str; U]) -> Option<Self> {
        let mut scanner = Scanner::new(bytes).ok()?;
        let mut read = Members {
            characters: 0,
            numbers: [None; U],
        };
        let (mut prompt_seen, mut number_seen) = ([false; P], [false; U]);
        let mut repeated = false;
        scanner
            .object(|scanner, name| {
                if let Some(i) = prompts.iter().position(|p| name.is(p)) {
                    repeated |= std::mem::replace(&mut prompt_seen[i], true);
                    if !scanner.null() {
                        read.characters = read.characters.saturating_add(scanner.characters()?);
                    }
                } else if let Some(i) = numbers.iter().position(|n| name.is(n)) {
                    repeated |= std::mem::replace(&mut number_seen[i], true);
                    read.numbers[i] = scanner.unsigned()?;
                } else {
                    scanner.skip()?;
                }
                Ok(())
            })
            .ok()?;
        scanner.finish().ok()?;
        (!repeated).then_some(read)
    }
}

/// A body that is not JSON: a token per four bytes.
fn raw_tokens(bytes: &[u8]) -> u64 {
    (bytes.len() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Read = Option<(u64, [Option<u64>; 2])>;

    fn both(body: &str) -> (Read, Read) {
        let prompts = ["messages", "prompt"];
        let numbers = ["max_tokens", "n"];
        let plain = |m: Members<2>| (m.characters, m.numbers);
        let outlined = Outline::scan(body.as_bytes())
            .ok()
            .flatten()
            .and_then(|outline| Members::from_outline(body.as_bytes(), &outline, prompts, numbers));
        let scanned = Members::scan(body.as_bytes(), prompts, numbers);
        (outlined.map(plain), scanned.map(plain))
    }

    #[test]
    fn the_outline_reads_what_one_pass_reads() {
        for body in [
            r#"{"messages":[{"role":"user","content":"Bonjour"}],"max_tokens":64,"n":2}"#,
            r#"{"mess\u0061ges":"é\"x\" \ud83d\ude00","model":"gpt-4o"}"#,
            r#"{"prompt":null,"max_tokens":null}"#,
            r#"{"prompt":["a","b"],"max_tokens":0}"#,
            r#"{"max_tokens":18446744073709551615}"#,
            r#"{"user":"\ud800","prompt":"ok"}"#,
            "{}",
        ] {
            let (outlined, scanned) = both(body);
            assert_eq!(outlined, scanned, "{body}");
            assert!(outlined.is_some(), "{body}");
        }
        // Refused alike: counted as bytes instead.
        for body in [
            r#"{"prompt":"a","prompt":"b"}"#,
            r#"{"n":1,"n":1}"#,
            r#"{"prompt":"\ud800"}"#,
            r#"{"max_tokens":1.5}"#,
            r#"{"max_tokens":-1}"#,
            r#"{"max_tokens":"64"}"#,
            r#"{"max_tokens":18446744073709551616}"#,
        ] {
            assert_eq!(both(body), (None, None), "{body}");
        }
    }

    #[test]
    fn a_kept_outline_gives_the_estimate_one_pass_gives() {
        for body in [
            r#"{"model":"m","messages":[{"role":"user","content":"Bonjour"}],"max_tokens":64}"#,
            r#"{"system":"Be brief.","messages":[],"max_tokens":10,"n":3}"#,
            r#"{"prompt":"a","prompt":"b"}"#,
            r#"{"prompt":"\ud800"}"#,
            "not json",
        ] {
            let fresh = http::Request::new(BufferedBody::from(body));
            let outlined = http::Request::new(BufferedBody::from(body));
            let kept = outlined.body().outline().is_some();
            assert_eq!(kept, outlined.body().kept_outline().is_some());
            assert!(fresh.body().kept_outline().is_none());
            let chat = OpenAiChat::new().with_default_output(7);
            assert_eq!(chat.estimate(&outlined), chat.estimate(&fresh), "{body}");
            let messages = AnthropicMessages::new().with_max_tokens_charged(true);
            assert_eq!(
                messages.estimate(&outlined),
                messages.estimate(&fresh),
                "{body}"
            );
            assert!(
                fresh.body().kept_outline().is_none(),
                "the estimate keeps nothing"
            );
        }
    }

    #[test]
    fn a_body_without_an_outline_is_read_in_one_pass() {
        // More members than an outline holds: the estimate is the same.
        let extra: Vec<String> = (0..Outline::CAPACITY)
            .map(|i| format!(r#""x{i}":{i}"#))
            .collect();
        let long = format!(
            r#"{{{},"prompt":"abcdefgh","max_tokens":10}}"#,
            extra.join(",")
        );
        assert_eq!(Outline::scan(long.as_bytes()).unwrap(), None);
        let request = http::Request::new(long);
        assert_eq!(
            OpenAiChat::new().estimate(&request).get(Dimension::Tokens),
            12
        );
    }
}
