//! The gateway of `examples/axum_gateway.rs`, served on loopback in front of `tollgate-mock`
//! upstreams and called by the official Python SDKs (`openai==3.63.0`, `anthropic==2.17.0`):
//! `tests/sdk/gateway_e2e.py` runs as a child process and makes one check a line — a plain
//! completion, a stream with usage, the gateway's own 429, every upstream down (503, never a
//! 429), a spent quota (429 `insufficient_quota` the SDK does not retry), a prompt beyond the
//! context window — and this test asserts that every expected check printed its `ok` line.
//!
//! The interpreter is `TOLLGATE_PYTHON`, else `python3`. One that cannot `import openai,
//! anthropic` skips the test loudly (a `SKIPPED:` line on stderr, with the `pip` command to
//! run), unless `TOLLGATE_REQUIRE_PYTHON_SDKS=1` (`.ci/run` sets it), which fails it instead.
//! How to run it locally: `tests/sdk/README.md`.
//!
//! On the real clock and a multi-thread runtime: the SDKs run in another process. The whole
//! run takes a few seconds; the driver is killed after [`DRIVER_TIMEOUT`].

#![cfg(all(
    feature = "circuit-breaker",
    feature = "fallback",
    feature = "providers",
    feature = "ratelimit",
    feature = "retry"
))]

#[path = "../examples/axum_gateway.rs"]
#[allow(dead_code)]
mod axum_gateway;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use axum_gateway::{
    Api, ConnectionLimits, Quotas, ReqwestTransport, Upstream, app, per_minute, retry_policy,
    serve_gateway, stack,
};
use tollgate::providers::ProviderClassifier;
use tollgate::ratelimit::Limits;
use tollgate_mock::{MockConfig, MockServer};

/// Which of the driver's suites run: `openai`, `anthropic` or `all`.
const SUITE: &str = "all";

/// The checks the driver's OpenAI suite must pass (its `ok openai: <check>` lines).
const OPENAI_CHECKS: [&str; 6] = [
    "plain completion",
    "stream with usage",
    "rate limited",
    "every upstream down",
    "insufficient quota",
    "context window",
];

/// The checks the driver's Anthropic suite must pass (its `ok anthropic: <check>` lines).
const ANTHROPIC_CHECKS: [&str; 5] = [
    "messages.create",
    "messages stream",
    "rate limited",
    "every upstream down",
    "context window",
];

/// The longest the driver may run before it is killed and the test fails.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(60);

/// The interpreter variable; `python3` without it.
const PYTHON_VAR: &str = "TOLLGATE_PYTHON";

/// Set to `1` to fail, not skip, when the interpreter lacks the SDKs.
const REQUIRE_VAR: &str = "TOLLGATE_REQUIRE_PYTHON_SDKS";

/// The SDK versions the driver is written for.
const PIP_INSTALL: &str = "pip install openai==3.63.0 anthropic==2.17.0";

/// The key every mock expects and every upstream sends.
const KEY: &str = "sk-upstream-secret";

/// The interpreter, if it can import both SDKs. Otherwise a loud `SKIPPED:` line and `None`,
/// or with `TOLLGATE_REQUIRE_PYTHON_SDKS=1` a panic.
fn python() -> Option<OsString> {
    let python = std::env::var_os(PYTHON_VAR).unwrap_or_else(|| "python3".into());
    let shown = python.to_string_lossy().into_owned();
    let why = match std::process::Command::new(&python)
        .args(["-c", "import openai, anthropic"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => return Some(python),
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().last().unwrap_or("no error output");
            format!("{} ({last})", output.status)
        }
        Err(error) => format!("it cannot be run: {error}"),
    };
    let message = format!(
        "the Python SDK tests (tests/python_sdks.rs) cannot run: `{shown} -c \"import \
         openai, anthropic\"` failed: {why}. Install the SDKs in a venv and point \
         {PYTHON_VAR} at it: `python3 -m venv target/python-sdks && \
         target/python-sdks/bin/{PIP_INSTALL} && export \
         {PYTHON_VAR}=$PWD/target/python-sdks/bin/python` (or `{shown} -m {PIP_INSTALL}` into \
         an interpreter of your own); see tests/sdk/README.md."
    );
    if std::env::var_os(REQUIRE_VAR).is_some_and(|v| v == "1") {
        panic!("FAILED ({REQUIRE_VAR}=1, so not skipped): {message}");
    }
    let rule = "!".repeat(72);
    eprintln!("\n{rule}\nSKIPPED: {message}\n{rule}\n");
    None
}

/// Every upstream of every gateway here: the one place that builds an [`Upstream`].
fn upstream(name: &str, base_url: String, limits: Limits, max_wait: Option<Duration>) -> Upstream {
    Upstream {
        name: name.to_owned(),
        base_url,
        api: Api::Chat,
        api_key: Some(KEY.to_owned()),
        model: None,
        provider: ProviderClassifier::OpenAi,
        limits,
        max_wait,
        context_window: None,
    }
}

/// An upstream on `mock`, with no quota of the gateway's own.
fn on(mock: &MockServer) -> Upstream {
    upstream("primary", mock.base_url(), Limits::unlimited(), None)
}

/// Starts an OpenAI-shaped mock upstream, expecting [`KEY`], configured by `configure`.
async fn mock(configure: impl FnOnce(MockConfig) -> MockConfig) -> MockServer {
    MockServer::start(configure(MockConfig::openai().with_api_key(KEY)))
        .await
        .unwrap()
}

/// A base URL where nothing listens: a port bound, then let go.
fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Serves the gateway over `primary` (and `fallback`) on a free loopback port, until the
/// runtime ends.
async fn serve(primary: &Upstream, fallback: Option<&Upstream>) -> String {
    let stack = stack(
        primary,
        fallback,
        &retry_policy(),
        &Quotas::Local,
        ReqwestTransport::new(reqwest::Client::new()),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(serve_gateway(
        listener,
        app(stack),
        ConnectionLimits::default(),
        std::future::pending(),
        std::future::pending(),
    ));
    format!("http://{addr}")
}

/// The checks `suite` must pass, as the driver prints them: `ok openai: plain completion`.
fn expected(suite: &str) -> Vec<String> {
    let mut lines = Vec::new();
    if matches!(suite, "openai" | "all") {
        lines.extend(OPENAI_CHECKS.iter().map(|c| format!("ok openai: {c}")));
    }
    if matches!(suite, "anthropic" | "all") {
        lines.extend(
            ANTHROPIC_CHECKS
                .iter()
                .map(|c| format!("ok anthropic: {c}")),
        );
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdks_get_what_they_expect() {
    let Some(python) = python() else {
        return;
    };

    // One mock that answers.
    let ok_mock = mock(|c| c).await;
    let ok = serve(&on(&ok_mock), None).await;
    // One mock, behind a gateway quota of 2 requests a minute that waits at most 50 ms.
    let limited_mock = mock(|c| c).await;
    let limited = serve(
        &upstream(
            "primary",
            limited_mock.base_url(),
            per_minute(2, 1_000_000).unwrap(),
            Some(Duration::from_millis(50)),
        ),
        None,
    )
    .await;
    // A primary and a fallback where nothing listens.
    let down = serve(
        &upstream("primary", nowhere(), Limits::unlimited(), None),
        Some(&upstream("fallback", nowhere(), Limits::unlimited(), None)),
    )
    .await;
    // One mock whose prepaid credit is spent.
    let spent_mock = mock(|c| c.with_credit_tokens(0)).await;
    let spent = serve(&on(&spent_mock), None).await;
    // One mock with a context window of 1,000 tokens (the driver sends about 12,000).
    let small_mock = mock(|c| c.with_context_window(1_000)).await;
    let small = serve(&on(&small_mock), None).await;

    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/gateway_e2e.py");
    let started = tokio::time::Instant::now();
    let child = tokio::process::Command::new(&python)
        .arg(driver)
        .args(["--suite", SUITE])
        .args(["--ok", &ok, "--limited", &limited, "--down", &down])
        .args(["--spent", &spent, "--small", &small])
        // Loopback only, whatever proxy the environment names; no stray SDK settings.
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.to_string_lossy()));
    let output = tokio::time::timeout(DRIVER_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the driver ran past {DRIVER_TIMEOUT:?} and was killed"))
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!(
        "the driver ({}, suite {SUITE}) took {took:.2?} and exited with {}\n--- stdout\n{stdout}\
         --- stderr\n{stderr}---",
        python.to_string_lossy(),
        output.status
    );
    println!("{report}");
    assert!(output.status.success(), "{report}");

    let passed: Vec<&str> = stdout
        .lines()
        .map(|line| line.split(" (").next().unwrap_or(line))
        .filter(|line| line.starts_with("ok "))
        .collect();
    for check in expected(SUITE) {
        assert!(
            passed.contains(&check.as_str()),
            "no `{check}` line: the check did not run or did not pass\n{report}"
        );
    }

    // `x-should-retry: false` kept the SDK (max_retries=2) to one attempt, and the gateway
    // did not retry the spent quota either.
    if matches!(SUITE, "openai" | "all") {
        let spent_stats = spent_mock.stats();
        assert_eq!(spent_stats.requests, 1, "{spent_stats:?}\n{report}");
    }
    // The gateway's quota kept the limited mock to 2 requests.
    let limited_stats = limited_mock.stats();
    assert!(limited_stats.requests <= 2, "{limited_stats:?}\n{report}");
    assert!(ok_mock.stats().ok >= 2, "{:?}", ok_mock.stats());
}
