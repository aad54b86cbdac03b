//! Every provider classifier on arbitrary status, headers and body.
//!
//! Input layout:
//!
//! | bytes | meaning |
//! |---|---|
//! | 0..2 | status: `100 + u16::from_be_bytes(..) % 900` (so 100..=999) |
//! | 2 | provider selector: `ProviderClassifier::ALL[byte % 10]` gets the extra checks |
//! | 3 | header block length `n`; 0 = no headers |
//! | 4..4+n | header lines as in `rate_limit_headers` (first byte picks the name from the delay, classifier and rate-limit names) |
//! | rest | body |
//!
//! Checks, for every provider: no panic; `verdict` records the status; a delay is non-zero
//! and has a source (and no source without a delay); the snapshot has unique pairs; the class
//! and advice do not depend on the time; classification is deterministic; `needs_body` asks for
//! every error status, and a body it does not ask for does not change the verdict. For the selected
//! provider, the concrete classifier and `ProviderClassifier` agree. For `Generic`, the class
//! (and advice and delay) are the same with an empty body.

#![no_main]

use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;
use tollgate_core::{Classify, DelaySource, ResponseView, Verdict};
use tollgate_fuzz::{
    CLASSIFIER_NAMES, DELAY_NAMES, RATE_LIMIT_NAMES, check_snapshot, fixed_now, header_lines,
};
use tollgate_providers::{
    Anthropic, AzureOpenAi, Bedrock, DeepSeek, Gemini, Generic, Groq, Mistral, OpenAi, OpenRouter,
    ProviderClassifier,
};

fuzz_target!(|data: &[u8]| {
    let [hi, lo, selector, header_len, rest @ ..] = data else {
        return;
    };
    let status = 100 + u16::from_be_bytes([*hi, *lo]) % 900;
    let status = StatusCode::from_u16(status).expect("100..=999 is a valid status");
    let selected = ProviderClassifier::ALL[usize::from(*selector) % ProviderClassifier::ALL.len()];
    let (header_bytes, body) = rest.split_at(usize::from(*header_len).min(rest.len()));
    let headers = if *header_len == 0 {
        HeaderMap::new()
    } else {
        header_lines(
            header_bytes,
            &[DELAY_NAMES, CLASSIFIER_NAMES, RATE_LIMIT_NAMES],
        )
    };

    let now = fixed_now();
    let view = ResponseView::new(status, &headers, body).received_at(now);
    for provider in ProviderClassifier::ALL {
        let live = provider.verdict(status, &headers, body);
        let pinned = provider.classify(&view);
        check(provider, status, &live);
        check(provider, status, &pinned);
        assert_eq!(
            pinned,
            provider.classify(&view),
            "{provider}: not deterministic"
        );
        assert_eq!(
            (live.class(), live.advice()),
            (pinned.class(), pinned.advice()),
            "{provider}: class or advice depends on the time",
        );

        // `ClassifyLayer` shows the body only when `needs_body` asks for it: every error status
        // asks, and a response that does not ask must not be judged differently by its body.
        if provider.needs_body(status, &headers) {
            continue;
        }
        assert!(status.as_u16() < 400, "{provider}: {status} without its body");
        let unread = provider.classify(&ResponseView::new(status, &headers, b"").received_at(now));
        assert_eq!(
            (pinned.class(), pinned.advice(), pinned.delay(), pinned.delay_source()),
            (unread.class(), unread.advice(), unread.delay(), unread.delay_source()),
            "{provider}: a body it does not ask for changes the verdict",
        );
    }

    let concrete = match selected {
        ProviderClassifier::OpenAi => OpenAi::new().classify(&view),
        ProviderClassifier::AzureOpenAi => AzureOpenAi::new().classify(&view),
        ProviderClassifier::Anthropic => Anthropic::new().classify(&view),
        ProviderClassifier::Gemini => Gemini::new().classify(&view),
        ProviderClassifier::DeepSeek => DeepSeek::new().classify(&view),
        ProviderClassifier::Groq => Groq::new().classify(&view),
        ProviderClassifier::Mistral => Mistral::new().classify(&view),
        ProviderClassifier::OpenRouter => OpenRouter::new().classify(&view),
        ProviderClassifier::Bedrock => Bedrock::new().classify(&view),
        ProviderClassifier::Generic => Generic::new().classify(&view),
        _ => return,
    };
    assert_eq!(
        concrete,
        selected.classify(&view),
        "{selected}: enum and concrete type differ"
    );

    // Generic decides from the status and headers only.
    let generic = ProviderClassifier::Generic.classify(&view);
    let without_body = ProviderClassifier::Generic
        .classify(&ResponseView::new(status, &headers, b"").received_at(now));
    assert_eq!(
        generic.class(),
        without_body.class(),
        "generic: class depends on the body"
    );
    assert_eq!(
        generic.advice(),
        without_body.advice(),
        "generic: advice depends on the body"
    );
    assert_eq!(
        (generic.delay(), generic.delay_source()),
        (without_body.delay(), without_body.delay_source()),
        "generic: delay depends on the body",
    );
});

fn check(provider: ProviderClassifier, status: StatusCode, verdict: &Verdict) {
    assert_eq!(
        verdict.status(),
        Some(status),
        "{provider}: status not recorded"
    );
    match verdict.delay() {
        Some(delay) => {
            assert!(!delay.is_zero(), "{provider}: zero delay");
            assert_ne!(
                verdict.delay_source(),
                DelaySource::None,
                "{provider}: delay without source"
            );
        }
        None => assert_eq!(
            verdict.delay_source(),
            DelaySource::None,
            "{provider}: source without delay"
        ),
    }
    check_snapshot(verdict.rate_limits());
}
