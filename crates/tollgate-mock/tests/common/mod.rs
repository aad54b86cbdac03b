//! Shared helpers: a hyper-util client and request builders.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as Legacy;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tollgate_mock::MockServer;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct Client {
    inner: Legacy<HttpConnector, Full<Bytes>>,
    base: String,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The header, or a panic naming it.
    pub fn h(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no `{name}` header in {:?}", self.headers))
    }
}

impl Client {
    pub fn new(server: &MockServer) -> Self {
        Client {
            inner: Legacy::builder(TokioExecutor::new()).build_http(),
            base: server.base_url(),
        }
    }

    /// A client for a server started elsewhere (the binary), at `base` (`http://IP:PORT`).
    pub fn with_base(base: &str) -> Self {
        Client {
            inner: Legacy::builder(TokioExecutor::new()).build_http(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        body: String,
        headers: &[(&str, &str)],
    ) -> Result<Reply, BoxError> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self.inner.request(req.body(Full::from(body))?).await?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.try_send("POST", path, body.to_string(), &[])
            .await
            .unwrap()
    }

    pub async fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
        self.try_send("POST", path, body.to_string(), headers)
            .await
            .unwrap()
    }

    pub async fn chat(&self, body: &Value) -> Reply {
        self.post("/v1/chat/completions", body).await
    }

    pub async fn messages(&self, body: &Value) -> Reply {
        self.post("/v1/messages", body).await
    }
}

/// A chat completion request with `chars` characters of prompt.
pub fn chat(chars: usize, max_tokens: Option<u64>) -> Value {
    let mut v = json!({
        "model": "gpt-4o",
        "messages": [{ "role": "user", "content": "x".repeat(chars) }],
    });
    if let Some(m) = max_tokens {
        v["max_tokens"] = json!(m);
    }
    v
}

/// A Messages request with `chars` characters of prompt.
pub fn messages(chars: usize, max_tokens: u64) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": max_tokens,
        "messages": [{ "role": "user", "content": "x".repeat(chars) }],
    })
}

/// `data:` payloads of an SSE body, with their event names.
pub fn sse(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let mut event = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (event, data)
        })
        .collect()
}
