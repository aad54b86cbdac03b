//! The shipped estimators and keyers on recorded request bodies: what OpenAI and Anthropic
//! charge, what bodies that are not JSON cost, and which quota key each request gets.

use http::Request;
use tollgate_core::body::BufferedBody;
use tollgate_core::{Cost, Dimension, RouteKey, Usage};
use tollgate_ratelimit::{
    AnthropicMessages, ByApiKey, ByHeader, ByModel, ByRouteKey, Estimator, Keyer, OpenAiChat,
    PerRequest, Unkeyed,
};

fn body(json: &str) -> Request<BufferedBody> {
    Request::new(BufferedBody::from(json.to_owned()))
}

fn tokens(cost: Cost) -> u64 {
    cost.get(Dimension::Tokens)
}

#[test]
fn openai_charges_the_prompt_and_the_allowed_output() {
    let openai = OpenAiChat::new();
    // "system", "Be brief.", "user" and the question: 49 characters, 13 tokens.
    let chat = r#"{"model":"gpt-4o","messages":[
        {"role":"system","content":"Be brief."},
        {"role":"user","content":"What is the capital of France?"}]"#;
    let with = |extra: &str| body(&format!("{chat},{extra}}}"));
    assert_eq!(tokens(openai.estimate(&body(&format!("{chat}}}")))), 13);
    assert_eq!(tokens(openai.estimate(&with(r#""max_tokens":100"#))), 113);
    // The newer name wins over the older one.
    assert_eq!(
        tokens(openai.estimate(&with(r#""max_tokens":100,"max_completion_tokens":50"#))),
        63
    );
    // n choices may each use the whole output allowance.
    assert_eq!(
        tokens(openai.estimate(&with(r#""max_tokens":100,"n":3"#))),
        313
    );
    // A default output when the request sets none.
    let defaulted = OpenAiChat::new().with_default_output(256);
    assert_eq!(tokens(defaulted.estimate(&body(&format!("{chat}}}")))), 269);
    assert_eq!(
        openai.estimate(&with("\"n\":1")).get(Dimension::Requests),
        1
    );
}

#[test]
fn openai_counts_content_parts_completions_and_responses() {
    let openai = OpenAiChat::new();
    // Content parts: "user", "text", "Describe this.", "image_url", the URL.
    let parts = r#"{"messages":[{"role":"user","content":[
        {"type":"text","text":"Describe this."},
        {"type":"image_url","image_url":{"url":"https://e.x/a.png"}}]}]}"#;
    assert_eq!(
        tokens(openai.estimate(&body(parts))),
        (4 + 4 + 14 + 9 + 16u64).div_ceil(4)
    );
    // Legacy completions: the prompt.
    assert_eq!(
        tokens(openai.estimate(&body(r#"{"prompt":"12345678","max_tokens":2}"#))),
        4
    );
    // Responses API: input, instructions, max_output_tokens.
    let responses = r#"{"input":"1234","instructions":"5678","max_output_tokens":10}"#;
    assert_eq!(tokens(openai.estimate(&body(responses))), 12);
    // Unicode characters, not bytes: 8 characters, 24 bytes.
    assert_eq!(
        tokens(openai.estimate(&body(r#"{"prompt":"日本語のテキスト"}"#))),
        2
    );
}

#[test]
fn a_body_that_is_not_json_costs_a_token_per_four_bytes() {
    let raw = body("this is not JSON at all");
    assert_eq!(tokens(OpenAiChat::new().estimate(&raw)), 6);
    let anthropic = AnthropicMessages::new().estimate(&raw);
    assert_eq!(anthropic.get(Dimension::InputTokens), 6);
    // Wrong types are not JSON we understand either.
    assert_eq!(
        tokens(OpenAiChat::new().estimate(&body(r#"{"max_tokens":"lots"}"#))),
        6
    );
    // An empty body costs one request and nothing more.
    let empty = OpenAiChat::new().estimate(&body(""));
    assert_eq!((empty.get(Dimension::Requests), tokens(empty)), (1, 0));
}

#[test]
fn anthropic_charges_input_and_output_separately() {
    let request = body(
        r#"{"model":"claude-sonnet-4","max_tokens":1024,
            "system":[{"type":"text","text":"You are terse."}],
            "messages":[{"role":"user","content":"Hello"}],
            "tools":[{"name":"get_weather","description":"Weather now","input_schema":{"type":"object"}}]}"#,
    );
    // "text", "You are terse.", "user", "Hello", "get_weather", "Weather now", "object".
    let input = (4 + 14 + 4 + 5 + 11 + 11 + 6u64).div_ceil(4);
    let cost = AnthropicMessages::new().estimate(&request);
    assert_eq!(cost.get(Dimension::InputTokens), input);
    assert_eq!(cost.get(Dimension::OutputTokens), 0);
    assert_eq!(cost.get(Dimension::Tokens), input);
    let upfront = AnthropicMessages::new()
        .with_max_tokens_charged(true)
        .estimate(&request);
    assert_eq!(upfront.get(Dimension::OutputTokens), 1024);
    assert_eq!(upfront.get(Dimension::Tokens), input + 1024);
}

#[test]
fn actual_costs_follow_each_providers_rules() {
    let usage = Usage::new()
        .with_input_tokens(1_000)
        .with_cached_input_tokens(800)
        .with_output_tokens(50);
    let estimated = Cost::requests(1)
        .with(Dimension::Tokens, 4_000)
        .with(Dimension::InputTokens, 900)
        .with(Dimension::OutputTokens, 0);
    // OpenAI counts cached prompt tokens against its token limit.
    let openai = Estimator::<BufferedBody>::actual(&OpenAiChat::new(), &usage, &estimated);
    assert_eq!(openai.get(Dimension::Tokens), 1_050);
    assert_eq!(openai.get(Dimension::Requests), 1);
    // Anthropic leaves cached input out of its input limit.
    let anthropic =
        Estimator::<BufferedBody>::actual(&AnthropicMessages::new(), &usage, &estimated);
    assert_eq!(anthropic.get(Dimension::InputTokens), 200);
    assert_eq!(anthropic.get(Dimension::OutputTokens), 50);
    // Nothing reported: the estimate stands.
    let none = Estimator::<()>::actual(&PerRequest, &Usage::new(), &estimated);
    assert_eq!(none, estimated);
}

#[test]
fn keyers_pick_the_quota() {
    let mut request = body(r#"{"model":"gpt-4o-mini","messages":[]}"#);
    request
        .headers_mut()
        .insert("x-tenant", " acme ".parse().unwrap());
    request
        .headers_mut()
        .insert("authorization", "Bearer sk-secret-123".parse().unwrap());
    request.extensions_mut().insert(RouteKey::new("eu-west"));

    assert_eq!(Unkeyed.key(&request), None);
    assert_eq!(ByModel.key(&request).unwrap().as_str(), "gpt-4o-mini");
    assert_eq!(ByRouteKey.key(&request).unwrap().as_str(), "eu-west");
    let tenant = ByHeader::new(http::HeaderName::from_static("x-tenant"));
    assert_eq!(tenant.key(&request).unwrap().as_str(), "acme");

    // The API key becomes a fingerprint: stable, distinct per key, never the secret.
    let fingerprint = ByApiKey.key(&request).unwrap();
    assert!(fingerprint.as_str().starts_with("key-"));
    assert!(!fingerprint.as_str().contains("secret"));
    assert_eq!(ByApiKey.key(&request), Some(fingerprint.clone()));
    let mut other = body("{}");
    other
        .headers_mut()
        .insert("x-api-key", "sk-ant-other".parse().unwrap());
    assert_ne!(ByApiKey.key(&other), Some(fingerprint));

    // No key to take: the unkeyed quota.
    let bare = body("not json");
    assert_eq!(ByModel.key(&bare), None);
    assert_eq!(tenant.key(&bare), None);
    assert_eq!(ByApiKey.key(&bare), None);
    assert_eq!(ByRouteKey.key(&bare), None);
}
