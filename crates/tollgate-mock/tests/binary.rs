//! The `tollgate-mock` binary, end to end: flags, the printed base URL, the served API.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{Client, chat, messages};

/// The running binary; killed (by its own handle) when dropped.
struct Bin(Child);

impl Drop for Bin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `args` on a free port and returns it with the base URL it printed.
fn start(args: &[&str]) -> (Bin, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate-mock"))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let bin = Bin(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.starts_with("http://127.0.0.1:"), "{line:?}");
    (bin, line.trim().to_owned())
}

#[tokio::test]
async fn context_window_flag_survives_a_later_flavor_flag() {
    // 128 000 is OpenAI's default window; `--flavor anthropic` after it must not replace the
    // explicit value with Anthropic's 200 000.
    for args in [
        ["--context-window", "128000", "--flavor", "anthropic"],
        ["--flavor", "anthropic", "--context-window", "128000"],
    ] {
        let (_bin, base) = start(&args);
        let client = Client::with_base(&base);
        // 150 000 prompt tokens: fits 200 000, not 128 000.
        let r = client.messages(&messages(600_000, 10)).await;
        assert_eq!(r.status, 400, "{args:?}: {}", r.body);
        assert_eq!(
            r.json()["error"]["message"],
            "prompt is too long: 150000 tokens > 128000 maximum",
            "{args:?}"
        );
        assert!(
            r.header("request-id").is_some(),
            "{args:?}: Anthropic flavor"
        );
    }
}

#[tokio::test]
async fn proxy_limit_flags() {
    // A 99 % tenant share leaves one request per 100 s: the second is refused even on a slow
    // machine's real clock.
    let (_bin, base) = start(&[
        "--proxy-rate",
        "1",
        "--proxy-retry-after",
        "7",
        "--tenant-share",
        "0:0.99",
    ]);
    let client = Client::with_base(&base);
    assert_eq!(client.chat(&chat(8, Some(10))).await.status, 200);
    let r = client.chat(&chat(8, Some(10))).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.h("retry-after"), "7");
    assert!(r.h("content-type").starts_with("text/plain"), "{r:?}");
    assert!(r.header("x-ratelimit-limit-requests").is_none());
}
