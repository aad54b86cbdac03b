//! `SetModel` and `IncludeUsage` splice the body instead of writing it again: whatever the
//! object, the result means what parsing, changing and writing it would have meant, and the
//! bytes they do not change stay as they were.

use http::Request;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tollgate_core::body::BufferedBody;
use tollgate_core::rewrite::Rewrite;
use tollgate_providers::rewrite::{IncludeUsage, SetModel};

fn request(body: &str) -> Request<BufferedBody> {
    Request::post("/v1/chat/completions")
        .header("content-length", body.len())
        .body(BufferedBody::from(body.to_owned()))
        .unwrap()
}

/// Rewrites `body`, and checks `content-length` against the new body.
fn rewritten(rewrite: &impl Rewrite, body: &str) -> Result<String, String> {
    let mut request = request(body);
    rewrite
        .rewrite(&mut request)
        .map_err(|error| error.to_string())?;
    let bytes = request.body().bytes().clone();
    assert_eq!(request.headers()["content-length"], bytes.len().to_string());
    Ok(String::from_utf8(bytes.to_vec()).unwrap())
}

#[test]
fn set_model_replaces_only_the_value() {
    let set = SetModel::new("claude-sonnet-4-5");
    let cases = [
        (
            r#"{ "messages": [{"role":"user","content":"model"}], "model" : "gpt-4o", "n": 1 }"#,
            r#"{ "messages": [{"role":"user","content":"model"}], "model" : "claude-sonnet-4-5", "n": 1 }"#,
        ),
        // An escaped name is the same name.
        (
            r#"{"mod\u0065l":null}"#,
            r#"{"mod\u0065l":"claude-sonnet-4-5"}"#,
        ),
        // None: added first.
        (
            "\n{\n  \"n\": 1\n}\n",
            "\n{\"model\":\"claude-sonnet-4-5\",\n  \"n\": 1\n}\n",
        ),
        (" {} ", r#" {"model":"claude-sonnet-4-5"} "#),
        // A nested `model` is not the body's.
        (
            r#"{"x":{"model":"a"}}"#,
            r#"{"model":"claude-sonnet-4-5","x":{"model":"a"}}"#,
        ),
        // Already the model: left alone.
        (
            r#"{"model" : "claude-sonnet-4-5"}"#,
            r#"{"model" : "claude-sonnet-4-5"}"#,
        ),
        // Named twice: parsed and written again, once.
        (
            r#"{"model":"a","n":1,"model":"b"}"#,
            r#"{"model":"claude-sonnet-4-5","n":1}"#,
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(rewritten(&set, body).as_deref(), Ok(expected), "{body}");
    }
    // A model that needs escaping is written escaped.
    assert_eq!(
        rewritten(&SetModel::new("a\"b\\c\u{1}"), r#"{"model":"x"}"#).as_deref(),
        Ok(r#"{"model":"a\"b\\c\u0001"}"#)
    );
    assert_eq!(
        format!("{set:?}"),
        r#"SetModel { model: "claude-sonnet-4-5" }"#
    );
}

#[test]
fn include_usage_appends_the_options_last() {
    let cases = [
        (
            r#"{"stream": true, "model":"gpt-4o" }"#,
            r#"{"stream": true, "model":"gpt-4o" ,"stream_options":{"include_usage":true}}"#,
        ),
        (
            "{\"stream\":true,\"n\":1}\n",
            "{\"stream\":true,\"n\":1,\"stream_options\":{\"include_usage\":true}}\n",
        ),
        // `stream` written with an escape is not looked for (the quick check reads the text).
        ("{\"str\\u0065am\":true}", "{\"str\\u0065am\":true}"),
        // Not streaming, or options already there, or `stream` only nested: left alone.
        (r#"{"stream":false}"#, r#"{"stream":false}"#),
        (r#"{"stream":"true"}"#, r#"{"stream":"true"}"#),
        (
            r#"{"stream":true,"stream_options":{"include_usage":false}}"#,
            r#"{"stream":true,"stream_options":{"include_usage":false}}"#,
        ),
        (r#"{"x":{"stream":true}}"#, r#"{"x":{"stream":true}}"#),
        // Named twice: the last wins, as `serde_json` reads it.
        (
            r#"{"stream":false,"stream":true}"#,
            r#"{"stream":true,"stream_options":{"include_usage":true}}"#,
        ),
        (
            r#"{"stream":true,"stream":false}"#,
            r#"{"stream":true,"stream":false}"#,
        ),
        // No `"stream"` in the text: not even parsed.
        ("not json", "not json"),
    ];
    for (body, expected) in cases {
        assert_eq!(
            rewritten(&IncludeUsage, body).as_deref(),
            Ok(expected),
            "{body}"
        );
    }
}

#[test]
fn include_usage_reads_the_outline_set_model_left() {
    let both = |body: &str| {
        let mut request = request(body);
        SetModel::new("m").rewrite(&mut request).unwrap();
        assert!(request.body().kept_outline().is_some(), "{body}");
        IncludeUsage.rewrite(&mut request).unwrap();
        String::from_utf8(request.body().bytes().to_vec()).unwrap()
    };
    // The same answer as from the text alone.
    for body in [
        r#"{"model":"m","stream":true}"#,
        r#"{"model":"m","stream":false}"#,
        r#"{"model":"m","x":{"stream":true}}"#,
        r#"{"model":"m","stream":true,"stream_options":{}}"#,
        r#"{"model":"m","stream":false,"stream":true}"#,
        r#"{"model":"m"}"#,
    ] {
        assert_eq!(Ok(both(body)), rewritten(&IncludeUsage, body), "{body}");
    }
    // The outline knows every top-level name, escaped ones too.
    assert_eq!(
        both(r#"{"model":"m","str\u0065am":true}"#),
        r#"{"model":"m","str\u0065am":true,"stream_options":{"include_usage":true}}"#
    );
}

#[test]
fn what_is_not_one_object_is_refused() {
    for body in [
        "",
        "[]",
        "null",
        r#"{"model":"a""#,
        r#"{"model":"a"} {}"#,
        r#"{"model":"a",}"#,
        r#"["model"]"#,
    ] {
        let error = rewritten(&SetModel::new("m"), body).unwrap_err();
        assert!(!error.is_empty(), "{body}");
    }
    for body in [r#"["stream"]"#, r#"{"stream":tru}"#, r#"{"stream":true"#] {
        assert!(rewritten(&IncludeUsage, body).is_err(), "{body}");
    }
}

/// Any JSON value, a few levels deep.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z \"\\\\\u{e9}\n]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((name(), inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Member names, the ones the rewriters look for among them.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("model".to_owned()),
        Just("stream".to_owned()),
        Just("stream_options".to_owned()),
        "[a-z_]{1,6}",
    ]
}

/// A top-level object, compact or pretty.
fn object() -> impl Strategy<Value = (Map<String, Value>, String)> {
    (
        prop::collection::vec((name(), value()), 0..6),
        any::<bool>(),
    )
        .prop_map(|(members, pretty)| {
            let map: Map<String, Value> = members.into_iter().collect();
            let text = if pretty {
                serde_json::to_string_pretty(&map).unwrap()
            } else {
                serde_json::to_string(&map).unwrap()
            };
            (map, text)
        })
}

proptest! {
    #[test]
    fn set_model_means_what_a_parse_would(
        (mut map, text) in object(),
        model in "[a-z0-9\"\\\\./-]{1,12}",
    ) {
        let out = rewritten(&SetModel::new(model.as_str()), &text).unwrap();
        map.insert("model".to_owned(), json!(model));
        prop_assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), Value::Object(map));
    }

    #[test]
    fn include_usage_means_what_a_parse_would((mut map, text) in object()) {
        let out = rewritten(&IncludeUsage, &text).unwrap();
        if map.get("stream") == Some(&Value::Bool(true)) && !map.contains_key("stream_options") {
            map.insert("stream_options".to_owned(), json!({ "include_usage": true }));
        } else {
            prop_assert_eq!(&out, &text);
        }
        prop_assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), Value::Object(map));
    }
}
