//! The gateway's translation between OpenAI's Chat Completions and Anthropic's Messages:
//! requests both ways (every mapping, every refusal, round trips), non-streamed answers both
//! ways, and a property test that no input makes any direction panic.

#[path = "../examples/support/translate/mod.rs"]
#[allow(dead_code, unused_imports)]
mod translate;

use proptest::prelude::*;
use serde_json::{Value, json};
use translate::{Api, DEFAULT_MAX_TOKENS, TranslateError, request, response};

// ===== helpers =====

/// Translates a request, expecting success, and parses the result.
fn req(body: &Value, from: Api, to: Api) -> Value {
    let bytes = serde_json::to_vec(body).expect("serializable");
    let out = request(&bytes, from, to).expect("translatable");
    serde_json::from_slice(&out).expect("the translation is JSON")
}

/// An OpenAI request translated to Anthropic.
fn to_anthropic(body: Value) -> Value {
    req(&body, Api::Chat, Api::Messages)
}

/// An Anthropic request translated to OpenAI.
fn to_openai(body: Value) -> Value {
    req(&body, Api::Messages, Api::Chat)
}

/// The error translating a request.
fn request_error(body: Value, from: Api, to: Api) -> TranslateError {
    let bytes = serde_json::to_vec(&body).expect("serializable");
    request(&bytes, from, to).expect_err("refused")
}

/// The feature named by refusing an OpenAI request.
fn refused_to_anthropic(body: Value) -> String {
    match request_error(body, Api::Chat, Api::Messages) {
        TranslateError::Untranslatable { feature, to } => {
            assert_eq!(to, Api::Messages);
            feature
        }
        other => panic!("expected Untranslatable, got {other:?}"),
    }
}

/// The feature named by refusing an Anthropic request.
fn refused_to_openai(body: Value) -> String {
    match request_error(body, Api::Messages, Api::Chat) {
        TranslateError::Untranslatable { feature, to } => {
            assert_eq!(to, Api::Chat);
            feature
        }
        other => panic!("expected Untranslatable, got {other:?}"),
    }
}

/// Whether a request error is `Invalid`, with its message.
fn invalid(body: Value, from: Api, to: Api) -> String {
    match request_error(body, from, to) {
        TranslateError::Invalid { what } => what,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A minimal OpenAI request with extra members.
fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    body
}

/// A minimal Anthropic request with extra members.
fn messages(extra: Value) -> Value {
    let mut body = json!({
        "model": "m",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    body
}

/// Translates an answer, expecting success, and parses the result.
fn answer(body: &Value, from: Api, to: Api) -> Value {
    let bytes = serde_json::to_vec(body).expect("serializable");
    let out = response(&bytes, from, to).expect("translatable");
    serde_json::from_slice(&out).expect("the translation is JSON")
}

// ===== same API =====

#[test]
fn the_same_api_returns_the_input_bytes_unchanged() {
    let body = b"not even json {";
    for api in [Api::Chat, Api::Messages] {
        assert_eq!(&request(body, api, api).expect("same api")[..], body);
        assert_eq!(&response(body, api, api).expect("same api")[..], body);
    }
}

#[test]
fn a_body_that_is_not_a_json_object_is_invalid() {
    for body in [&b"nope"[..], b"[1]", b"\"text\""] {
        for (from, to) in [(Api::Chat, Api::Messages), (Api::Messages, Api::Chat)] {
            assert!(matches!(
                request(body, from, to),
                Err(TranslateError::Invalid { .. })
            ));
            assert!(matches!(
                response(body, from, to),
                Err(TranslateError::Invalid { .. })
            ));
        }
    }
}

// ===== OpenAI to Anthropic requests =====

#[test]
fn a_minimal_openai_request_gets_the_model_messages_and_default_max_tokens() {
    let out = to_anthropic(chat(json!({})));
    assert_eq!(
        out,
        json!({
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": DEFAULT_MAX_TOKENS,
        })
    );
}

#[test]
fn a_system_message_becomes_the_system_member() {
    let out = to_anthropic(json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "be kind"}]},
            {"role": "user", "content": "hi"},
        ],
    }));
    assert_eq!(
        out["system"],
        json!([{"type": "text", "text": "be brief"}, {"type": "text", "text": "be kind"}])
    );
    assert_eq!(out["messages"], json!([{"role": "user", "content": "hi"}]));
}

#[test]
fn a_system_message_after_the_conversation_started_is_hoisted() {
    let out = to_anthropic(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": "now be formal"},
            {"role": "user", "content": "go on"},
        ],
    }));
    assert_eq!(
        out["system"],
        json!([{"type": "text", "text": "now be formal"}])
    );
    assert_eq!(out["messages"].as_array().map(Vec::len), Some(3));
}

#[test]
fn a_non_text_part_in_a_system_message_is_refused() {
    let feature = refused_to_anthropic(json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]},
            {"role": "user", "content": "hi"},
        ],
    }));
    assert_eq!(feature, "messages[0].content[0].type=image_url");
}

#[test]
fn user_text_and_image_parts_become_blocks() {
    let out = to_anthropic(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "auto"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        ]}],
    }));
    assert_eq!(
        out["messages"][0]["content"],
        json!([
            {"type": "text", "text": "what is this"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        ])
    );
}

#[test]
fn an_image_detail_other_than_auto_is_refused() {
    let feature = refused_to_anthropic(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "high"}},
        ]}],
    }));
    assert_eq!(feature, "messages[0].content[0].image_url.detail");
}

#[test]
fn audio_and_file_parts_are_refused_naming_their_type() {
    for kind in ["input_audio", "file"] {
        let feature = refused_to_anthropic(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "listen"},
                {"type": kind, kind: {}},
            ]}],
        }));
        assert_eq!(feature, format!("messages[0].content[1].type={kind}"));
    }
}

#[test]
fn an_image_url_that_is_neither_http_nor_data_is_invalid() {
    let what = invalid(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://x/a.png"}},
        ]}]}),
        Api::Chat,
        Api::Messages,
    );
    assert!(
        what.contains("messages[0].content[0].image_url.url"),
        "{what}"
    );
}

#[test]
fn an_image_url_scheme_is_read_without_regard_to_case() {
    let out = to_anthropic(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "HTTP://é.example/a.png"}},
        ]}],
    }));
    assert_eq!(
        out["messages"][0]["content"][0]["source"],
        json!({"type": "url", "url": "HTTP://é.example/a.png"})
    );
}

#[test]
fn an_empty_anthropic_user_message_is_invalid() {
    let what = invalid(
        messages(json!({"messages": [{"role": "user", "content": []}]})),
        Api::Messages,
        Api::Chat,
    );
    assert_eq!(what, "messages[0] has no content");
}

#[test]
fn assistant_tool_calls_become_tool_use_blocks_and_tool_messages_merge_into_one_user_message() {
    let out = to_anthropic(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "b", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "a", "content": "sunny"},
            {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "rainy"}]},
        ],
    }));
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "a", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "b", "name": "weather", "input": {"city": "Rome"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "a", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "b", "content": [{"type": "text", "text": "rainy"}]},
            ]},
        ])
    );
}

#[test]
fn consecutive_user_messages_are_merged_into_block_arrays() {
    let out = to_anthropic(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
    }));
    assert_eq!(
        out["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "one"},
            {"type": "text", "text": "two"},
        ]}])
    );
}

#[test]
fn assistant_text_content_becomes_a_text_block() {
    let out = to_anthropic(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "bye"},
        ],
    }));
    assert_eq!(
        out["messages"][1],
        json!({"role": "assistant", "content": [{"type": "text", "text": "hello"}]})
    );
}

#[test]
fn tool_call_arguments_that_are_not_a_json_object_are_invalid() {
    let what = invalid(
        json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1]"}},
            ]},
            {"role": "tool", "tool_call_id": "a", "content": "ok"},
        ]}),
        Api::Chat,
        Api::Messages,
    );
    assert!(
        what.contains("messages[1].tool_calls[0].function.arguments"),
        "{what}"
    );
}

#[test]
fn an_empty_assistant_message_is_invalid() {
    let what = invalid(
        json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "hi"},
        ]}),
        Api::Chat,
        Api::Messages,
    );
    assert_eq!(what, "messages[1] has no content");
}

#[test]
fn an_assistant_refusal_a_message_name_and_the_function_role_are_refused() {
    let base = |message: Value| {
        json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            message,
            {"role": "user", "content": "hi"},
        ]})
    };
    assert_eq!(
        refused_to_anthropic(base(
            json!({"role": "assistant", "content": "x", "refusal": "no"})
        )),
        "messages[1].refusal"
    );
    assert_eq!(
        refused_to_anthropic(base(
            json!({"role": "assistant", "content": "x", "name": "bot"})
        )),
        "messages[1].name"
    );
    assert_eq!(
        refused_to_anthropic(base(
            json!({"role": "function", "name": "f", "content": "x"})
        )),
        "messages[1].name"
    );
    assert_eq!(
        refused_to_anthropic(base(json!({"role": "function", "content": "x"}))),
        "messages[1].role=function"
    );
}

#[test]
fn a_conversation_ending_with_an_assistant_message_is_refused_both_ways() {
    let feature = refused_to_anthropic(json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "The answer is"},
    ]}));
    assert!(feature.starts_with("messages[1]"), "{feature}");
    let feature = refused_to_openai(messages(json!({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "The answer is"},
    ]})));
    assert!(feature.starts_with("messages[1]"), "{feature}");
}

#[test]
fn max_completion_tokens_wins_over_max_tokens() {
    let out = to_anthropic(chat(json!({"max_completion_tokens": 50, "max_tokens": 70})));
    assert_eq!(out["max_tokens"], json!(50));
    let out = to_anthropic(chat(json!({"max_tokens": 70})));
    assert_eq!(out["max_tokens"], json!(70));
}

#[test]
fn max_tokens_must_be_a_positive_integer() {
    for bad in [json!(0), json!(-1), json!(1.5), json!("10")] {
        invalid(chat(json!({"max_tokens": bad})), Api::Chat, Api::Messages);
    }
    invalid(messages(json!({"max_tokens": 0})), Api::Messages, Api::Chat);
}

#[test]
fn temperature_up_to_one_passes_and_above_one_is_refused() {
    let out = to_anthropic(chat(json!({"temperature": 0.7, "top_p": 0.9})));
    assert_eq!(out["temperature"], json!(0.7));
    assert_eq!(out["top_p"], json!(0.9));
    assert_eq!(
        refused_to_anthropic(chat(json!({"temperature": 1.5}))),
        "temperature above 1"
    );
}

#[test]
fn stop_becomes_stop_sequences() {
    assert_eq!(
        to_anthropic(chat(json!({"stop": "END"})))["stop_sequences"],
        json!(["END"])
    );
    assert_eq!(
        to_anthropic(chat(json!({"stop": ["a", "b"]})))["stop_sequences"],
        json!(["a", "b"])
    );
    assert!(
        to_anthropic(chat(json!({"stop": null})))
            .get("stop_sequences")
            .is_none()
    );
}

#[test]
fn stream_is_kept_and_stream_options_need_stream() {
    let out = to_anthropic(chat(
        json!({"stream": true, "stream_options": {"include_usage": true}}),
    ));
    assert_eq!(out["stream"], json!(true));
    assert!(out.get("stream_options").is_none());
    invalid(
        chat(json!({"stream_options": {"include_usage": true}})),
        Api::Chat,
        Api::Messages,
    );
}

#[test]
fn the_user_member_becomes_metadata_user_id() {
    let out = to_anthropic(chat(json!({"user": "u-1"})));
    assert_eq!(out["metadata"], json!({"user_id": "u-1"}));
}

#[test]
fn function_tools_become_anthropic_tools() {
    let out = to_anthropic(chat(json!({"tools": [
        {"type": "function", "function": {
            "name": "weather",
            "description": "The weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": false,
        }},
        {"type": "function", "function": {"name": "now"}},
    ]})));
    assert_eq!(
        out["tools"],
        json!([
            {"name": "weather", "description": "The weather",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        ])
    );
}

#[test]
fn strict_tools_and_other_tool_types_are_refused() {
    assert_eq!(
        refused_to_anthropic(chat(json!({"tools": [
            {"type": "function", "function": {"name": "f", "strict": true}},
        ]}))),
        "tools[0].function.strict"
    );
    assert_eq!(
        refused_to_anthropic(chat(json!({"tools": [
            {"type": "function", "function": {"name": "f"}},
            {"type": "custom", "custom": {"name": "g"}},
        ]}))),
        "tools[1].type"
    );
}

#[test]
fn every_tool_choice_maps_to_anthropic() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    for (choice, expected) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("none"), json!({"type": "none"})),
        (json!("required"), json!({"type": "any"})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
        ),
    ] {
        let out = to_anthropic(chat(json!({"tools": tools, "tool_choice": choice})));
        assert_eq!(out["tool_choice"], expected);
    }
}

#[test]
fn parallel_tool_calls_false_disables_parallel_tool_use() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let out = to_anthropic(chat(json!({"tools": tools, "parallel_tool_calls": false})));
    assert_eq!(
        out["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    let out = to_anthropic(chat(
        json!({"tools": tools, "tool_choice": "required", "parallel_tool_calls": false}),
    ));
    assert_eq!(
        out["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    let out = to_anthropic(chat(json!({"tools": tools, "parallel_tool_calls": true})));
    assert!(out.get("tool_choice").is_none());
}

#[test]
fn members_at_their_default_value_are_accepted() {
    let out = to_anthropic(chat(json!({
        "n": 1,
        "logprobs": false,
        "frequency_penalty": 0,
        "presence_penalty": 0.0,
        "response_format": {"type": "text"},
        "store": false,
        "seed": null,
    })));
    assert_eq!(out, to_anthropic(chat(json!({}))));
}

#[test]
fn members_away_from_their_default_are_refused_by_name() {
    for (member, value) in [
        ("n", json!(2)),
        ("logprobs", json!(true)),
        ("frequency_penalty", json!(0.5)),
        ("presence_penalty", json!(-0.5)),
        ("response_format", json!({"type": "json_object"})),
        ("store", json!(true)),
        ("metadata", json!({"k": "v"})),
        ("seed", json!(7)),
        ("logit_bias", json!({"50256": -100})),
        ("top_logprobs", json!(2)),
        ("audio", json!({"voice": "alloy"})),
        ("modalities", json!(["text"])),
        ("prediction", json!({"type": "content"})),
        ("service_tier", json!("auto")),
        ("reasoning_effort", json!("low")),
        ("web_search_options", json!({})),
        ("functions", json!([])),
        ("function_call", json!("auto")),
        ("some_future_member", json!(1)),
    ] {
        let mut extra = serde_json::Map::new();
        extra.insert(member.to_owned(), value);
        assert_eq!(
            refused_to_anthropic(chat(Value::Object(extra))),
            member,
            "{member}"
        );
    }
}

#[test]
fn a_missing_model_or_empty_messages_is_invalid() {
    invalid(
        json!({"messages": [{"role": "user", "content": "hi"}]}),
        Api::Chat,
        Api::Messages,
    );
    invalid(
        json!({"model": "m", "messages": []}),
        Api::Chat,
        Api::Messages,
    );
    invalid(
        json!({"model": "m", "messages": [{"role": "system", "content": "only"}]}),
        Api::Chat,
        Api::Messages,
    );
}

#[test]
fn an_error_never_quotes_the_body_text() {
    let secret = "SECRET PROMPT TEXT";
    let bodies = [
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": secret}]}]}),
        json!({"model": "m", "messages": [{"role": secret, "content": "x"}]}),
        chat(json!({secret: 1})),
        chat(json!({"tool_choice": secret})),
    ];
    for body in bodies {
        let message = request_error(body, Api::Chat, Api::Messages).to_string();
        assert!(!message.contains(secret), "{message}");
    }
}

// ===== Anthropic to OpenAI requests =====

#[test]
fn a_minimal_anthropic_request_becomes_an_openai_one() {
    assert_eq!(
        to_openai(messages(json!({}))),
        json!({
            "model": "m",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}],
        })
    );
}

#[test]
fn the_system_member_becomes_a_first_system_message() {
    let out = to_openai(messages(json!({"system": "be brief"})));
    assert_eq!(
        out["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    let out = to_openai(messages(json!({"system": [
        {"type": "text", "text": "one", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "two"},
    ]})));
    assert_eq!(
        out["messages"][0],
        json!({"role": "system", "content": "one\n\ntwo"})
    );
}

#[test]
fn anthropic_user_blocks_become_parts_and_tool_results_become_tool_messages_first() {
    let out = to_openai(messages(json!({"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me "},
            {"type": "text", "text": "check."},
            {"type": "tool_use", "id": "a", "name": "weather", "input": {"city": "Paris"}},
        ]},
        {"role": "user", "content": [
            {"type": "text", "text": "and this picture", "cache_control": {"type": "ephemeral"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
            {"type": "tool_result", "tool_use_id": "a", "content": [{"type": "text", "text": "sunny"}]},
        ]},
    ]})));
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "a", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "a", "content": "sunny"},
            {"role": "user", "content": [
                {"type": "text", "text": "and this picture"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
            ]},
        ])
    );
}

#[test]
fn an_error_tool_result_keeps_its_content() {
    let out = to_openai(messages(json!({"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "a", "content": "boom", "is_error": true},
        ]},
    ]})));
    assert_eq!(
        out["messages"][2],
        json!({"role": "tool", "tool_call_id": "a", "content": "boom"})
    );
    assert_eq!(out["messages"][1]["content"], Value::Null);
}

#[test]
fn anthropic_only_blocks_are_refused_naming_their_type() {
    for (role, kind) in [
        ("user", "document"),
        ("assistant", "thinking"),
        ("assistant", "redacted_thinking"),
        ("assistant", "server_tool_use"),
    ] {
        let feature = refused_to_openai(messages(json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": role, "content": [{"type": kind}]},
            {"role": "user", "content": "hi"},
        ]})));
        assert_eq!(feature, format!("messages[1].content[0].type={kind}"));
    }
}

#[test]
fn anthropic_sampling_members_map_and_top_k_is_refused() {
    let out = to_openai(messages(json!({
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "top_p": 0.5,
    })));
    assert_eq!(out["stop"], json!(["END"]));
    assert_eq!(out["temperature"], json!(0.2));
    assert_eq!(out["top_p"], json!(0.5));
    assert_eq!(refused_to_openai(messages(json!({"top_k": 5}))), "top_k");
}

#[test]
fn an_anthropic_stream_asks_openai_for_usage() {
    let out = to_openai(messages(json!({"stream": true})));
    assert_eq!(out["stream"], json!(true));
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
}

#[test]
fn metadata_user_id_becomes_user_and_other_metadata_is_refused() {
    let out = to_openai(messages(json!({"metadata": {"user_id": "u-1"}})));
    assert_eq!(out["user"], json!("u-1"));
    assert_eq!(
        refused_to_openai(messages(json!({"metadata": {"tenant": "t"}}))),
        "metadata.tenant"
    );
}

#[test]
fn anthropic_tools_become_function_tools_and_server_tools_are_refused() {
    let out = to_openai(messages(json!({"tools": [{
        "name": "weather",
        "description": "The weather",
        "input_schema": {"type": "object"},
        "cache_control": {"type": "ephemeral"},
    }]})));
    assert_eq!(
        out["tools"],
        json!([{"type": "function", "function": {
            "name": "weather", "description": "The weather", "parameters": {"type": "object"},
        }}])
    );
    assert_eq!(
        refused_to_openai(messages(json!({"tools": [
            {"type": "web_search_20250305", "name": "web_search"},
        ]}))),
        "tools[0].type"
    );
}

#[test]
fn every_anthropic_tool_choice_maps_to_openai() {
    for (choice, expected) in [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
        (
            json!({"type": "tool", "name": "f"}),
            json!({"type": "function", "function": {"name": "f"}}),
        ),
    ] {
        assert_eq!(
            to_openai(messages(json!({"tool_choice": choice})))["tool_choice"],
            expected
        );
    }
    let out = to_openai(messages(
        json!({"tool_choice": {"type": "auto", "disable_parallel_tool_use": true}}),
    ));
    assert_eq!(out["parallel_tool_calls"], json!(false));
}

#[test]
fn thinking_is_refused_unless_disabled_and_unknown_members_are_refused() {
    assert_eq!(
        refused_to_openai(messages(
            json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})
        )),
        "thinking"
    );
    assert!(
        to_openai(messages(json!({"thinking": {"type": "disabled"}})))
            .get("thinking")
            .is_none()
    );
    for member in ["service_tier", "container", "mcp_servers"] {
        let mut extra = serde_json::Map::new();
        extra.insert(member.to_owned(), json!("x"));
        assert_eq!(refused_to_openai(messages(Value::Object(extra))), member);
    }
}

#[test]
fn an_anthropic_request_without_max_tokens_is_invalid() {
    invalid(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        Api::Messages,
        Api::Chat,
    );
}

// ===== round trips =====

#[test]
fn an_openai_request_survives_a_round_trip_through_anthropic() {
    let original = json!({
        "model": "m",
        "max_tokens": 300,
        "stop": ["END"],
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "b", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "a", "content": "sunny"},
            {"role": "tool", "tool_call_id": "b", "content": "rainy"},
            {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
        ],
        "tools": [{"type": "function", "function": {
            "name": "weather",
            "description": "The weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
    });
    let back = to_openai(to_anthropic(original.clone()));
    assert_eq!(back, original);
}

#[test]
fn an_anthropic_request_survives_a_round_trip_through_openai() {
    let original = messages(json!({
        "system": "be brief",
        "stop_sequences": ["END"],
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "a", "name": "weather", "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "a", "content": "sunny"},
                {"type": "text", "text": "thanks"},
            ]},
        ],
        "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
    }));
    let back = to_anthropic(to_openai(original.clone()));
    let mut expected = original;
    expected["system"] = json!([{"type": "text", "text": "be brief"}]);
    assert_eq!(back, expected);
}

// ===== answers =====

#[test]
fn an_anthropic_answer_becomes_a_chat_completion() {
    let out = answer(
        &json!({
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Checking "},
                {"type": "text", "text": "now."},
                {"type": "tool_use", "id": "a", "name": "weather", "input": {"city": "Paris"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
            },
        }),
        Api::Messages,
        Api::Chat,
    );
    assert!(out["created"].as_u64().is_some_and(|t| t > 1_600_000_000));
    let mut out = out;
    out["created"] = json!(0);
    assert_eq!(
        out,
        json!({
            "id": "msg_1",
            "object": "chat.completion",
            "created": 0,
            "model": "claude",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Checking now.",
                    "tool_calls": [{"id": "a", "type": "function",
                        "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}],
                    "refusal": null,
                },
                "logprobs": null,
                "finish_reason": "tool_calls",
            }],
            "usage": {
                "prompt_tokens": 130,
                "completion_tokens": 5,
                "total_tokens": 135,
                "prompt_tokens_details": {"cached_tokens": 100},
            },
        })
    );
}

#[test]
fn every_anthropic_stop_reason_maps_to_a_finish_reason() {
    for (stop, finish) in [
        (json!("end_turn"), "stop"),
        (json!("stop_sequence"), "stop"),
        (json!("max_tokens"), "length"),
        (json!("tool_use"), "tool_calls"),
        (json!("refusal"), "content_filter"),
        (json!("pause_turn"), "stop"),
        (json!(null), "stop"),
    ] {
        let out = answer(
            &json!({"id": "i", "model": "m", "content": [], "stop_reason": stop,
                    "usage": {"input_tokens": 1, "output_tokens": 1}}),
            Api::Messages,
            Api::Chat,
        );
        assert_eq!(out["choices"][0]["finish_reason"], json!(finish));
        assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    }
}

#[test]
fn a_chat_completion_becomes_an_anthropic_message() {
    let out = answer(
        &json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Checking.", "refusal": null,
                    "tool_calls": [{"id": "a", "type": "function",
                        "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                "finish_reason": "tool_calls",
            }],
            "usage": {"prompt_tokens": 120, "completion_tokens": 7, "total_tokens": 127,
                      "prompt_tokens_details": {"cached_tokens": 100}},
        }),
        Api::Chat,
        Api::Messages,
    );
    assert_eq!(
        out,
        json!({
            "id": "chatcmpl-1",
            "type": "message",
            "role": "assistant",
            "model": "gpt",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "a", "name": "weather", "input": {"city": "Paris"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 20,
                "output_tokens": 7,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 0,
            },
        })
    );
}

#[test]
fn every_finish_reason_maps_to_a_stop_reason() {
    for (finish, stop) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
    ] {
        let out = answer(
            &json!({"id": "i", "model": "m", "choices": [{
                "message": {"role": "assistant", "content": "x"}, "finish_reason": finish}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
            Api::Chat,
            Api::Messages,
        );
        assert_eq!(out["stop_reason"], json!(stop));
        assert_eq!(out["usage"]["input_tokens"], json!(3));
        assert_eq!(out["usage"]["cache_read_input_tokens"], json!(0));
    }
}

#[test]
fn an_openai_refusal_becomes_a_text_block_with_stop_reason_refusal() {
    let out = answer(
        &json!({"id": "i", "model": "m", "choices": [{
            "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."},
            "finish_reason": "stop"}]}),
        Api::Chat,
        Api::Messages,
    );
    assert_eq!(
        out["content"],
        json!([{"type": "text", "text": "I can't help with that."}])
    );
    assert_eq!(out["stop_reason"], json!("refusal"));
}

#[test]
fn a_chat_completion_without_choices_or_with_bad_arguments_is_invalid() {
    let no_choices = json!({"id": "i", "model": "m", "choices": []});
    let bytes = serde_json::to_vec(&no_choices).expect("serializable");
    assert!(matches!(
        response(&bytes, Api::Chat, Api::Messages),
        Err(TranslateError::Invalid { .. })
    ));
    let bad_arguments = json!({"id": "i", "model": "m", "choices": [{"message": {
        "role": "assistant", "content": null,
        "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{"}}],
    }, "finish_reason": "tool_calls"}]});
    let bytes = serde_json::to_vec(&bad_arguments).expect("serializable");
    assert!(matches!(
        response(&bytes, Api::Chat, Api::Messages),
        Err(TranslateError::Invalid { .. })
    ));
}

// ===== nothing panics =====

/// Any JSON value, nested a few levels, with the member names the translators look for mixed
/// in so that the interesting paths are reached.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("model".to_owned()),
        Just("messages".to_owned()),
        Just("role".to_owned()),
        Just("content".to_owned()),
        Just("type".to_owned()),
        Just("text".to_owned()),
        Just("tool_calls".to_owned()),
        Just("function".to_owned()),
        Just("arguments".to_owned()),
        Just("choices".to_owned()),
        Just("message".to_owned()),
        Just("usage".to_owned()),
        Just("max_tokens".to_owned()),
        Just("tools".to_owned()),
        Just("tool_choice".to_owned()),
        Just("system".to_owned()),
        Just("image_url".to_owned()),
        Just("url".to_owned()),
        Just("source".to_owned()),
        "[a-z_]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("user".to_owned()),
            Just("assistant".to_owned()),
            Just("system".to_owned()),
            Just("tool".to_owned()),
            Just("text".to_owned()),
            Just("tool_use".to_owned()),
            Just("tool_result".to_owned()),
            Just("function".to_owned()),
            Just("image_url".to_owned()),
            Just("data:image/png;base64,AA".to_owned()),
            Just("{}".to_owned()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every direction of both translations.
const DIRECTIONS: [(Api, Api); 2] = [(Api::Chat, Api::Messages), (Api::Messages, Api::Chat)];

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for (from, to) in DIRECTIONS {
            let _ = request(&bytes, from, to);
            let _ = response(&bytes, from, to);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        let bytes = serde_json::to_vec(&value).expect("serializable");
        for (from, to) in DIRECTIONS {
            let _ = request(&bytes, from, to);
            let _ = response(&bytes, from, to);
        }
    }

    #[test]
    fn arbitrary_members_in_a_valid_request_never_panic(extra in any_json()) {
        for (base, from, to) in [
            (chat(json!({})), Api::Chat, Api::Messages),
            (messages(json!({})), Api::Messages, Api::Chat),
        ] {
            let mut base = base;
            if let (Value::Object(b), Value::Object(e)) = (&mut base, extra.clone()) {
                b.extend(e);
            }
            let bytes = serde_json::to_vec(&base).expect("serializable");
            let _ = request(&bytes, from, to);
        }
    }
}
