//! `StreamTranslator`: Anthropic Messages event streams to OpenAI Chat chunks and back, frame by
//! frame, on streams shaped as `tollgate-mock` (and the real APIs) send them — text, tool use,
//! errors, truncation, `\r\n` line ends, over-long events — and two properties: splitting the
//! input anywhere changes nothing, and arbitrary bytes never panic nor blow the output up.

#[path = "../examples/support/translate/mod.rs"]
#[allow(dead_code, unused_imports)]
mod translate;

use proptest::prelude::*;
use translate::{Api, StreamTranslator};

/// The `created` injected into OpenAI chunks.
const CREATED: u64 = 1_700_000_000;

/// A translator with a fixed `created`.
fn translator(from: Api, to: Api, usage: bool) -> StreamTranslator {
    StreamTranslator::new(from, to)
        .with_usage(usage)
        .with_created(CREATED)
}

/// Feeds `input` in the pieces between `cuts`, then finishes; the output, concatenated.
fn run_split(mut t: StreamTranslator, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let cut = cut.clamp(start, input.len());
        out.extend_from_slice(&t.feed(&input[start..cut]));
        start = cut;
    }
    out.extend_from_slice(&t.feed(&input[start..]));
    out.extend_from_slice(&t.finish());
    out
}

/// Feeds `input` whole, then finishes; the output as text.
fn run(t: StreamTranslator, input: &str) -> String {
    String::from_utf8(run_split(t, input.as_bytes(), &[])).expect("UTF-8 output")
}

/// One Anthropic event, as Anthropic writes it.
fn event(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// An Anthropic text stream as `tollgate-mock` sends it, without `message_stop` if `!terminal`.
fn anthropic_text(pieces: &[&str], terminal: bool) -> String {
    let mut s = event(
        "message_start",
        r#"{"message":{"content":[],"id":"msg_7","model":"claude-sonnet-4-5","role":"assistant","stop_reason":null,"stop_sequence":null,"type":"message","usage":{"cache_creation_input_tokens":2,"cache_read_input_tokens":3,"input_tokens":12,"output_tokens":1}},"type":"message_start"}"#,
    );
    s += &event(
        "content_block_start",
        r#"{"content_block":{"text":"","type":"text"},"index":0,"type":"content_block_start"}"#,
    );
    s += &event("ping", r#"{"type":"ping"}"#);
    for piece in pieces {
        s += &event(
            "content_block_delta",
            &format!(
                r#"{{"delta":{{"text":{},"type":"text_delta"}},"index":0,"type":"content_block_delta"}}"#,
                serde_json::to_string(piece).expect("a string")
            ),
        );
    }
    s += &event(
        "content_block_stop",
        r#"{"index":0,"type":"content_block_stop"}"#,
    );
    s += &event(
        "message_delta",
        r#"{"delta":{"stop_reason":"end_turn","stop_sequence":null},"type":"message_delta","usage":{"output_tokens":5}}"#,
    );
    if terminal {
        s += &event("message_stop", r#"{"type":"message_stop"}"#);
    }
    s
}

/// An Anthropic stream with thinking, text and two tool calls.
fn anthropic_tools() -> String {
    let mut s = event(
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_t","type":"message","role":"assistant","model":"claude-opus-4-1","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":40,"output_tokens":1}}}"#,
    );
    s += &event(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
    );
    s += &event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
    );
    s += &event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"c2ln"}}"#,
    );
    s += &event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    );
    s += &event(
        "content_block_start",
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
    );
    s += &event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking."}}"#,
    );
    s += &event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":1}"#,
    );
    s += &event(
        "content_block_start",
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}"#,
    );
    s += &event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
    );
    s += &event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}"#,
    );
    s += &event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"is\"}"}}"#,
    );
    s += &event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":2}"#,
    );
    s += &event(
        "content_block_start",
        r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_2","name":"get_time","input":{}}}"#,
    );
    s += &event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
    );
    s += &event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":3}"#,
    );
    s += &event(
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}"#,
    );
    s += &event("message_stop", r#"{"type":"message_stop"}"#);
    s
}

/// An OpenAI chunk frame.
fn chunk(choices: &str, usage: Option<&str>) -> String {
    let usage = usage.map_or(String::new(), |u| format!(r#","usage":{u}"#));
    format!(
        r#"data: {{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_mock","choices":{choices}{usage}}}"#
    ) + "\n\n"
}

/// An OpenAI text stream as `tollgate-mock` sends it, with the usage chunk if `usage`, without
/// `[DONE]` if `!terminal`.
fn openai_text(pieces: &[&str], usage: bool, terminal: bool) -> String {
    let null = usage.then_some("null");
    let mut s = chunk(
        r#"[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]"#,
        null,
    );
    for piece in pieces {
        s += &chunk(
            &format!(
                r#"[{{"index":0,"delta":{{"content":{}}},"logprobs":null,"finish_reason":null}}]"#,
                serde_json::to_string(piece).expect("a string")
            ),
            null,
        );
    }
    s += &chunk(
        r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#,
        null,
    );
    if usage {
        s += &chunk(
            "[]",
            Some(
                r#"{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27,"prompt_tokens_details":{"cached_tokens":4}}"#,
            ),
        );
    }
    if terminal {
        s += "data: [DONE]\n\n";
    }
    s
}

/// An OpenAI stream with text and two tool calls.
fn openai_tools() -> String {
    let mut s = chunk(
        r#"[{"index":0,"delta":{"role":"assistant","content":null},"logprobs":null,"finish_reason":null}]"#,
        None,
    );
    s += &chunk(
        r#"[{"index":0,"delta":{"content":"Checking."},"logprobs":null,"finish_reason":null}]"#,
        None,
    );
    s += &chunk(
        r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]"#,
        None,
    );
    s += &chunk(
        r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Par"}}]},"logprobs":null,"finish_reason":null}]"#,
        None,
    );
    s += &chunk(
        r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"is\"}"}}]},"logprobs":null,"finish_reason":null}]"#,
        None,
    );
    s += &chunk(
        r#"[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]"#,
        None,
    );
    s += &chunk(
        r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]"#,
        None,
    );
    s += "data: [DONE]\n\n";
    s
}

/// An OpenAI chunk as the translator writes it, `usage` being its `"usage"` member if any.
fn out_chunk(id: &str, model: &str, delta: &str, finish: &str, usage: Option<&str>) -> String {
    let usage = usage.map_or(String::new(), |u| format!(r#","usage":{u}"#));
    format!(
        r#"data: {{"id":"{id}","object":"chat.completion.chunk","created":1700000000,"model":"{model}","choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]{usage}}}"#
    ) + "\n\n"
}

#[test]
fn an_anthropic_text_stream_becomes_openai_chunks() {
    let input = anthropic_text(&["Hello", ", wörld", "!"], true);
    let out = run(translator(Api::Messages, Api::Chat, false), &input);
    let c =
        |delta: &str, finish: &str| out_chunk("msg_7", "claude-sonnet-4-5", delta, finish, None);
    let expected = [
        c(r#"{"role":"assistant","content":""}"#, "null"),
        c(r#"{"content":"Hello"}"#, "null"),
        c(r#"{"content":", wörld"}"#, "null"),
        c(r#"{"content":"!"}"#, "null"),
        c("{}", r#""stop""#),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    assert_eq!(out, expected);
}

#[test]
fn an_anthropic_text_stream_with_usage_ends_with_openais_usage_chunk() {
    let input = anthropic_text(&["Hi"], true);
    let out = run(translator(Api::Messages, Api::Chat, true), &input);
    let c = |delta: &str, finish: &str| {
        out_chunk("msg_7", "claude-sonnet-4-5", delta, finish, Some("null"))
    };
    let usage = r#"data: {"id":"msg_7","object":"chat.completion.chunk","created":1700000000,"model":"claude-sonnet-4-5","choices":[],"usage":{"prompt_tokens":17,"completion_tokens":5,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":3}}}"#.to_owned()
        + "\n\n";
    let expected = [
        c(r#"{"role":"assistant","content":""}"#, "null"),
        c(r#"{"content":"Hi"}"#, "null"),
        c("{}", r#""stop""#),
        usage,
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    assert_eq!(out, expected);
}

#[test]
fn message_delta_input_tokens_override_message_starts() {
    let input = anthropic_text(&["Hi"], true).replace(
        r#""usage":{"output_tokens":5}"#,
        r#""usage":{"input_tokens":100,"output_tokens":5}"#,
    );
    let out = run(translator(Api::Messages, Api::Chat, true), &input);
    assert!(
        out.contains(r#""usage":{"prompt_tokens":105,"completion_tokens":5,"total_tokens":110,"#),
        "{out}"
    );
}

#[test]
fn an_anthropic_max_tokens_stop_becomes_finish_reason_length() {
    let input = anthropic_text(&["Hi"], true).replace("end_turn", "max_tokens");
    let out = run(translator(Api::Messages, Api::Chat, false), &input);
    assert!(
        out.contains(r#""delta":{},"logprobs":null,"finish_reason":"length""#),
        "{out}"
    );
}

#[test]
fn an_anthropic_tool_use_stream_becomes_openai_tool_call_chunks_without_thinking() {
    let out = run(
        translator(Api::Messages, Api::Chat, false),
        &anthropic_tools(),
    );
    let c = |delta: &str, finish: &str| out_chunk("msg_t", "claude-opus-4-1", delta, finish, None);
    let expected = [
        c(r#"{"role":"assistant","content":""}"#, "null"),
        c(r#"{"content":"Checking."}"#, "null"),
        c(
            r#"{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":""}}]}"#,
            "null",
        ),
        c(
            r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Par"}}]}"#,
            "null",
        ),
        c(
            r#"{"tool_calls":[{"index":0,"function":{"arguments":"is\"}"}}]}"#,
            "null",
        ),
        c(
            r#"{"tool_calls":[{"index":1,"id":"toolu_2","type":"function","function":{"name":"get_time","arguments":""}}]}"#,
            "null",
        ),
        c(
            r#"{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}"#,
            "null",
        ),
        c("{}", r#""tool_calls""#),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    assert_eq!(out, expected);
}

#[test]
fn an_anthropic_error_event_becomes_an_openai_error_without_done() {
    let mut input = anthropic_text(&["Hel"], false);
    input += &event(
        "error",
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    input += &event("message_stop", r#"{"type":"message_stop"}"#);
    let out = run(translator(Api::Messages, Api::Chat, false), &input);
    let expected =
        r#"data: {"error":{"message":"Overloaded","type":"overloaded_error","code":null}}"#
            .to_owned()
            + "\n\n";
    assert!(out.ends_with(&expected), "{out}");
    assert!(!out.contains("[DONE]"), "{out}");
    assert!(!out.contains("finish_reason\":\"stop"), "{out}");
}

#[test]
fn a_truncated_anthropic_stream_gets_no_terminal_chunk() {
    let input = anthropic_text(&["Hello", " there"], false);
    let out = run(translator(Api::Messages, Api::Chat, true), &input);
    assert!(out.contains(r#"{"content":" there"}"#), "{out}");
    assert!(!out.contains("[DONE]"), "{out}");
    assert!(!out.contains(r#""finish_reason":"stop""#), "{out}");
    assert!(!out.contains(r#""choices":[]"#), "{out}");
    assert!(!out.contains("error"), "{out}");
}

#[test]
fn unknown_anthropic_events_are_ignored() {
    let plain = anthropic_text(&["Hi"], true);
    let with_unknown = plain.replacen(
        "event: ping",
        "event: future_thing\ndata: not json at all\n\n: a comment\nevent: ping",
        1,
    );
    assert_ne!(plain, with_unknown);
    assert_eq!(
        run(translator(Api::Messages, Api::Chat, false), &with_unknown),
        run(translator(Api::Messages, Api::Chat, false), &plain)
    );
}

#[test]
fn an_anthropic_event_that_is_not_json_produces_an_openai_error_and_stops() {
    let input = anthropic_text(&["Hi"], true).replacen(
        r#"{"delta":{"text":"Hi""#,
        r#"{"delta":{"text":Hi"#,
        1,
    );
    let out = run(translator(Api::Messages, Api::Chat, false), &input);
    assert!(
        out.ends_with(
            "data: {\"error\":{\"message\":\"upstream event malformed: data is not JSON\",\"type\":\"server_error\",\"code\":null}}\n\n"
        ),
        "{out}"
    );
    assert!(!out.contains("[DONE]"), "{out}");
}

#[test]
fn an_openai_text_stream_becomes_anthropic_events() {
    let input = openai_text(&["Hello", ", wörld"], true, true);
    let out = run(translator(Api::Chat, Api::Messages, false), &input);
    let expected = [
        event(
            "message_start",
            r#"{"type":"message_start","message":{"id":"chatcmpl-9","type":"message","role":"assistant","model":"gpt-4o-mini","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}"#,
        ),
        event(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        event(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        ),
        event(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", wörld"}}"#,
        ),
        event(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        event(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":16,"output_tokens":7,"cache_read_input_tokens":4}}"#,
        ),
        event("message_stop", r#"{"type":"message_stop"}"#),
    ]
    .concat();
    assert_eq!(out, expected);
}

#[test]
fn an_openai_stream_without_usage_reports_zero_tokens() {
    let input = openai_text(&["Hi"], false, true);
    let out = run(translator(Api::Chat, Api::Messages, false), &input);
    assert!(
        out.contains(r#""usage":{"input_tokens":0,"output_tokens":0,"cache_read_input_tokens":0}"#),
        "{out}"
    );
    assert!(out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[test]
fn an_openai_tool_call_stream_becomes_anthropic_tool_use_blocks() {
    let out = run(translator(Api::Chat, Api::Messages, false), &openai_tools());
    let expected = [
        event(
            "message_start",
            r#"{"type":"message_start","message":{"id":"chatcmpl-9","type":"message","role":"assistant","model":"gpt-4o-mini","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}"#,
        ),
        event(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        event(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}"#,
        ),
        event(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        event(
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"call_1","name":"get_weather","input":{}}}"#,
        ),
        event(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}"#,
        ),
        event(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"is\"}"}}"#,
        ),
        event(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        event(
            "content_block_start",
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_2","name":"get_time","input":{}}}"#,
        ),
        event(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        ),
        event(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":2}"#,
        ),
        event(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":0,"output_tokens":0,"cache_read_input_tokens":0}}"#,
        ),
        event("message_stop", r#"{"type":"message_stop"}"#),
    ]
    .concat();
    assert_eq!(out, expected);
}

#[test]
fn interleaved_openai_tool_calls_produce_an_anthropic_error() {
    let input = openai_tools().replacen(
        "data: [DONE]",
        &(chunk(
            r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"x"}}]},"finish_reason":null}]"#,
            None,
        ) + "data: [DONE]"),
        1,
    );
    // The call at index 0 was closed by call 1's start, then gets a fragment.
    let input = input.replacen(
        r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]"#,
        r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":null}]"#,
        1,
    );
    let out = run(translator(Api::Chat, Api::Messages, false), &input);
    assert!(
        out.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream tool calls interleaved: fragments for a call already closed\"}}\n\n"),
        "{out}"
    );
    assert!(!out.contains("message_stop"), "{out}");
}

#[test]
fn an_openai_refusal_becomes_text_with_stop_reason_refusal() {
    let input = chunk(
        r#"[{"index":0,"delta":{"role":"assistant","refusal":""},"finish_reason":null}]"#,
        None,
    ) + &chunk(
        r#"[{"index":0,"delta":{"refusal":"I can't."},"finish_reason":null}]"#,
        None,
    ) + &chunk(r#"[{"index":0,"delta":{},"finish_reason":"stop"}]"#, None)
        + "data: [DONE]\n\n";
    let out = run(translator(Api::Chat, Api::Messages, false), &input);
    assert!(
        out.contains(r#""delta":{"type":"text_delta","text":"I can't."}"#),
        "{out}"
    );
    assert!(out.contains(r#""stop_reason":"refusal""#), "{out}");
}

#[test]
fn an_openai_error_chunk_becomes_an_anthropic_error_event() {
    let mut input = openai_text(&["Hel"], false, false);
    input += "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";
    input += "data: [DONE]\n\n";
    let out = run(translator(Api::Chat, Api::Messages, false), &input);
    assert!(
        out.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The server had an error\"}}\n\n"),
        "{out}"
    );
    assert!(!out.contains("message_stop"), "{out}");
    assert!(!out.contains("message_delta"), "{out}");
}

#[test]
fn an_openai_rate_limit_error_becomes_anthropics_rate_limit_error() {
    let input = "data: {\"error\":{\"message\":\"Slow down\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}\n\n";
    let out = run(translator(Api::Chat, Api::Messages, false), input);
    assert_eq!(
        out,
        event(
            "error",
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}"#
        )
    );
}

#[test]
fn a_truncated_openai_stream_gets_no_terminal_event() {
    let input = openai_text(&["Hello", " there"], true, false);
    let out = run(translator(Api::Chat, Api::Messages, false), &input);
    assert!(out.contains(r#""text":" there""#), "{out}");
    assert!(!out.contains("message_delta"), "{out}");
    assert!(!out.contains("message_stop"), "{out}");
    assert!(!out.contains("error"), "{out}");
}

#[test]
fn an_openai_chunk_for_a_second_choice_produces_an_error() {
    let input = openai_text(&["Hi"], false, true).replacen(
        r#"[{"index":0,"delta":{"content":"Hi"}"#,
        r#"[{"index":1,"delta":{"content":"Hi"}"#,
        1,
    );
    let out = run(translator(Api::Chat, Api::Messages, false), &input);
    assert!(out.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream stream has several choices; only one can be translated\"}}\n\n"), "{out}");
    assert!(!out.contains("message_stop"), "{out}");
}

#[test]
fn the_same_api_passes_bytes_through_unchanged() {
    for (api, input) in [
        (
            Api::Chat,
            openai_text(&["a"], true, false) + "garbage\r\n\n\n",
        ),
        (
            Api::Messages,
            anthropic_text(&["b"], true) + "data: {not json\n\n",
        ),
    ] {
        let bytes = input.as_bytes();
        let mut t = StreamTranslator::new(api, api).with_usage(true);
        let mut out = Vec::new();
        for piece in bytes.chunks(7) {
            let fed = t.feed(piece);
            assert_eq!(&fed[..], piece);
            out.extend_from_slice(&fed);
        }
        assert!(t.finish().is_empty());
        assert_eq!(out, bytes);
    }
}

#[test]
fn crlf_line_ends_translate_like_lf() {
    for (from, to, input) in [
        (Api::Messages, Api::Chat, anthropic_tools()),
        (Api::Chat, Api::Messages, openai_tools()),
    ] {
        let crlf = input.replace('\n', "\r\n");
        let out = run(translator(from, to, true), &crlf);
        assert_eq!(out, run(translator(from, to, true), &input));
        assert!(
            out.contains("[DONE]") || out.contains("message_stop"),
            "{out}"
        );
    }
}

#[test]
fn a_last_event_without_its_blank_line_is_still_translated() {
    let input = openai_text(&["Hi"], false, true);
    let input = input.strip_suffix('\n').expect("a blank line");
    let out = run(translator(Api::Chat, Api::Messages, false), input);
    assert!(out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[test]
fn an_over_long_event_produces_the_error_and_stops() {
    for (from, to, expected) in [
        (
            Api::Messages,
            Api::Chat,
            "data: {\"error\":{\"message\":\"upstream event too large\",\"type\":\"server_error\",\"code\":null}}\n\n".to_owned(),
        ),
        (
            Api::Chat,
            Api::Messages,
            event(
                "error",
                r#"{"type":"error","error":{"type":"api_error","message":"upstream event too large"}}"#,
            ),
        ),
    ] {
        // One line, fed in pieces; then many short data lines of one event.
        let long_line = format!("data: {}", "a".repeat(1 << 20));
        let many_lines = "data: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n".repeat((1 << 20) / 40 + 2);
        for long in [long_line, many_lines] {
            let mut t = translator(from, to, false);
            let mut out = Vec::new();
            for piece in long.as_bytes().chunks(4096) {
                out.extend_from_slice(&t.feed(piece));
            }
            out.extend_from_slice(&t.feed(b"\n\ndata: [DONE]\n\n"));
            out.extend_from_slice(&t.finish());
            assert_eq!(String::from_utf8(out).expect("UTF-8"), expected);
        }
    }
}

/// The realistic streams the split property runs on, with their direction.
fn realistic() -> Vec<(Api, Api, bool, String)> {
    let unicode = ["Grüße, ", "世界 ", "🦀🦀", "\"quoted\"\n"];
    vec![
        (
            Api::Messages,
            Api::Chat,
            false,
            anthropic_text(&unicode, true),
        ),
        (
            Api::Messages,
            Api::Chat,
            true,
            anthropic_text(&unicode, true),
        ),
        (
            Api::Messages,
            Api::Chat,
            true,
            anthropic_tools().replace('\n', "\r\n"),
        ),
        (
            Api::Messages,
            Api::Chat,
            false,
            anthropic_text(&unicode, false),
        ),
        (
            Api::Chat,
            Api::Messages,
            false,
            openai_text(&unicode, true, true),
        ),
        (Api::Chat, Api::Messages, false, openai_tools()),
        (
            Api::Chat,
            Api::Messages,
            false,
            openai_text(&unicode, false, true).replace('\n', "\r\n"),
        ),
    ]
}

/// SSE-ish fragments for the robustness property, to reach past the JSON parser.
const FRAGMENTS: &[&str] = &[
    "event: message_start\n",
    "event: content_block_start\n",
    "event: content_block_delta\n",
    "event: message_delta\n",
    "event: message_stop\n",
    "event: error\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"x\"}}\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}}\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\"}}\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n",
    "data: {\"type\":\"message_stop\"}\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}}]}\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"a\"}}]}}]}\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1}}\n",
    "data: [DONE]\n",
    "data: {\"error\":{}}\n",
    ": comment\n",
    "\n",
    "\r\n",
    "\r",
    "data:",
    "\u{fe0f}",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn splitting_a_realistic_stream_anywhere_changes_no_output_byte(
        which in 0..7usize,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let (from, to, usage, input) = &realistic()[which];
        let bytes = input.as_bytes();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = run_split(translator(*from, *to, *usage), bytes, &[]);
        let split = run_split(translator(*from, *to, *usage), bytes, &cuts);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_blow_the_output_up(
        pieces in prop::collection::vec(
            prop_oneof![
                prop::sample::select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 0..16),
            ],
            0..64,
        ),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        direction in any::<bool>(),
        usage in any::<bool>(),
    ) {
        let input = pieces.concat();
        let (from, to) = if direction { (Api::Messages, Api::Chat) } else { (Api::Chat, Api::Messages) };
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let out = run_split(translator(from, to, usage), &input, &cuts);
        prop_assert!(out.len() <= 16 * input.len() + 4096, "{} bytes out of {}", out.len(), input.len());
    }
}
