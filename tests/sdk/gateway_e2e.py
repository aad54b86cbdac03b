"""Drives the gateway of examples/axum_gateway.rs with the official Python SDKs.

Run by tests/python_sdks.rs, which starts tollgate-mock upstreams and the gateways on
loopback and passes their base URLs (scheme, host and port, no path):

    python tests/sdk/gateway_e2e.py --suite openai \
        --ok URL --limited URL --down URL --spent URL --small URL

| gateway     | its upstreams                                                          |
|-------------|------------------------------------------------------------------------|
| `--ok`      | one mock that answers                                                  |
| `--limited` | one mock, behind a gateway quota of 2 requests a minute, a short wait  |
| `--down`    | a primary and a fallback at ports where nothing listens                |
| `--spent`   | one mock whose prepaid credit is spent                                 |
| `--small`   | one mock with a small context window                                   |

Each check prints one line, `ok <suite>: <check>`, or `FAIL <suite>: <check>: <why>` (with
the traceback on stderr); the exit status is 1 when any check failed. The Rust test asserts
the set of `ok` lines, so a check that silently did not run fails it too. Every client sets
`max_retries` explicitly and a 10 s timeout.

Needs `openai==3.63.0` and `anthropic==2.17.0`.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from typing import Callable

import anthropic
import openai

MODEL_OPENAI = "gpt-4o-mini"
MODEL_ANTHROPIC = "claude-sonnet-4-5"
TIMEOUT = 10.0
# A prompt far beyond the `--small` gateway's context window, far within the 4 MiB body limit.
LONG_PROMPT = "Tell me everything about this. " * 2_000


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def header(headers, name: str) -> str | None:
    return headers.get(name)


# ===== OpenAI =====


def openai_client(url: str, max_retries: int) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{url}/v1", api_key="unused", max_retries=max_retries, timeout=TIMEOUT
    )


def chat_args(text: str = "Say hello.") -> dict:
    return {
        "model": MODEL_OPENAI,
        "max_tokens": 20,
        "messages": [{"role": "user", "content": text}],
    }


def openai_plain(urls: argparse.Namespace) -> None:
    client = openai_client(urls.ok, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(**chat_args())
    check(raw.status_code == 200, f"status {raw.status_code}")
    check(bool(raw.headers.get("x-request-id")), f"no x-request-id in {dict(raw.headers)}")
    completion = raw.parse()
    content = completion.choices[0].message.content
    check(bool(content), f"empty content: {completion!r}")
    check(completion.usage is not None, f"no usage: {completion!r}")
    check(completion.usage.total_tokens > 0, f"usage {completion.usage!r}")


def openai_stream(urls: argparse.Namespace) -> None:
    client = openai_client(urls.ok, max_retries=0)
    stream = client.chat.completions.create(
        **chat_args(), stream=True, stream_options={"include_usage": True}
    )
    content_chunks = 0
    usage = None
    text = ""
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                content_chunks += 1
                text += choice.delta.content
        if chunk.usage is not None:
            usage = chunk.usage
    check(content_chunks >= 2, f"{content_chunks} content chunks ({text!r})")
    check(usage is not None, "no usage chunk at the end")
    check(usage.total_tokens > 0, f"usage {usage!r}")


def openai_rate_limited(urls: argparse.Namespace) -> None:
    client = openai_client(urls.limited, max_retries=0)
    answered = 0
    for _ in range(6):
        try:
            client.chat.completions.create(**chat_args())
            answered += 1
        except openai.RateLimitError as e:
            check(e.status_code == 429, f"status {e.status_code}")
            check(e.code == "rate_limit_exceeded", f"code {e.code!r}: {e.body!r}")
            headers = e.response.headers
            check(
                bool(header(headers, "retry-after-ms")),
                f"no retry-after-ms in {dict(headers)}",
            )
            check(bool(header(headers, "retry-after")), f"no retry-after in {dict(headers)}")
            check(
                header(headers, "x-should-retry") == "true",
                f"x-should-retry {header(headers, 'x-should-retry')!r}",
            )
            check(answered <= 2, f"{answered} answers under a quota of 2 a minute")
            return
    raise AssertionError(f"{answered} answers, never a RateLimitError")


def openai_down(urls: argparse.Namespace) -> None:
    client = openai_client(urls.down, max_retries=0)
    for attempt in range(5):
        started = time.monotonic()
        try:
            client.chat.completions.create(**chat_args())
        except openai.RateLimitError as e:
            raise AssertionError(
                f"call {attempt + 1}: a RateLimitError with every upstream down: "
                f"{e.body!r} {dict(e.response.headers)}"
            ) from e
        except openai.InternalServerError as e:
            check(e.status_code == 503, f"call {attempt + 1}: status {e.status_code}: {e.body!r}")
            check(
                e.code == "upstream_unavailable",
                f"call {attempt + 1}: code {e.code!r}: {e.body!r}",
            )
            took = time.monotonic() - started
            wait = e.response.headers.get("retry-after-ms")
            print(f"  call {attempt + 1}: 503 in {took:.3f} s, retry-after-ms {wait}: {e.message}")
        else:
            raise AssertionError(f"call {attempt + 1}: an answer with every upstream down")


def openai_spent(urls: argparse.Namespace) -> None:
    # max_retries=2: the SDK would retry a 429, unless told not to (`x-should-retry: false`).
    # The Rust side asserts that the mock saw one request.
    client = openai_client(urls.spent, max_retries=2)
    started = time.monotonic()
    try:
        client.chat.completions.create(**chat_args())
    except openai.RateLimitError as e:
        took = time.monotonic() - started
        check(e.code == "insufficient_quota", f"code {e.code!r}: {e.body!r}")
        headers = e.response.headers
        check(
            header(headers, "x-should-retry") == "false",
            f"x-should-retry {header(headers, 'x-should-retry')!r}",
        )
        # Reported only: a retry would wait at least 0.375 s (the SDK's initial delay of 0.5 s
        # less its jitter of 25 %); the mock's request count is what the Rust side asserts.
        print(f"  insufficient quota answered in {took:.3f} s", flush=True)
    else:
        raise AssertionError("an answer with the credit spent")


def openai_context_window(urls: argparse.Namespace) -> None:
    client = openai_client(urls.small, max_retries=0)
    try:
        client.chat.completions.create(**chat_args(LONG_PROMPT))
    except openai.BadRequestError as e:
        check(e.code == "context_length_exceeded", f"code {e.code!r}: {e.body!r}")
        check(e.type == "invalid_request_error", f"type {e.type!r}: {e.body!r}")
    else:
        raise AssertionError("an answer to a prompt beyond the context window")


OPENAI_CHECKS: list[tuple[str, Callable[[argparse.Namespace], None]]] = [
    ("plain completion", openai_plain),
    ("stream with usage", openai_stream),
    ("rate limited", openai_rate_limited),
    ("every upstream down", openai_down),
    ("insufficient quota", openai_spent),
    ("context window", openai_context_window),
]


# ===== Anthropic =====


def anthropic_client(url: str, max_retries: int) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=url, api_key="unused", max_retries=max_retries, timeout=TIMEOUT
    )


def message_args(text: str = "Say hello.") -> dict:
    return {
        "model": MODEL_ANTHROPIC,
        "max_tokens": 20,
        "messages": [{"role": "user", "content": text}],
    }


def anthropic_plain(urls: argparse.Namespace) -> None:
    client = anthropic_client(urls.ok, max_retries=0)
    message = client.messages.create(**message_args())
    check(message.type == "message", f"type {message.type!r}")
    check(message.role == "assistant", f"role {message.role!r}")
    check(len(message.content) > 0, f"no content: {message!r}")
    check(message.content[0].type == "text", f"content {message.content!r}")
    check(bool(message.content[0].text), f"empty text: {message!r}")
    check(message.usage.input_tokens > 0, f"usage {message.usage!r}")
    check(message.stop_reason in ("end_turn", "max_tokens"), f"stop_reason {message.stop_reason!r}")


def anthropic_stream(urls: argparse.Namespace) -> None:
    client = anthropic_client(urls.ok, max_retries=0)
    stream = client.messages.create(**message_args(), stream=True)
    events = []
    text = ""
    for event in stream:
        events.append(event.type)
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
    check(len(events) >= 3, f"events {events}")
    check(events[0] == "message_start", f"events {events}")
    check(events[-1] == "message_stop", f"events {events}")
    check("content_block_delta" in events, f"events {events}")
    first_delta = events.index("content_block_delta")
    check(
        "content_block_start" in events[:first_delta],
        f"a delta before its block starts: {events}",
    )
    check(bool(text), f"empty text from {events}")
    # The SDK's own accumulation agrees.
    with client.messages.stream(**message_args()) as helper:
        final = helper.get_final_text()
    check(bool(final), "messages.stream: empty final text")


def anthropic_rate_limited(urls: argparse.Namespace) -> None:
    client = anthropic_client(urls.limited, max_retries=0)
    answered = 0
    for _ in range(6):
        try:
            client.messages.create(**message_args())
            answered += 1
        except anthropic.RateLimitError as e:
            check(e.status_code == 429, f"status {e.status_code}")
            body = e.body
            check(isinstance(body, dict), f"body {body!r}")
            check(body.get("type") == "error", f"body {body!r}")
            error = body.get("error")
            check(isinstance(error, dict), f"body {body!r}")
            check(error.get("type") == "rate_limit_error", f"body {body!r}")
            check(bool(error.get("message")), f"body {body!r}")
            headers = e.response.headers
            check(bool(header(headers, "retry-after")), f"no retry-after in {dict(headers)}")
            check(answered <= 2, f"{answered} answers under a quota of 2 a minute")
            return
    raise AssertionError(f"{answered} answers, never a RateLimitError")


def anthropic_down(urls: argparse.Namespace) -> None:
    client = anthropic_client(urls.down, max_retries=0)
    for attempt in range(5):
        try:
            client.messages.create(**message_args())
        except anthropic.RateLimitError as e:
            raise AssertionError(
                f"call {attempt + 1}: a RateLimitError with every upstream down: "
                f"{e.body!r} {dict(e.response.headers)}"
            ) from e
        except anthropic.InternalServerError as e:
            check(e.status_code == 503, f"call {attempt + 1}: status {e.status_code}: {e.body!r}")
            body = e.body
            check(
                isinstance(body, dict) and body.get("type") == "error",
                f"call {attempt + 1}: body {body!r}",
            )
        else:
            raise AssertionError(f"call {attempt + 1}: an answer with every upstream down")


def anthropic_context_window(urls: argparse.Namespace) -> None:
    client = anthropic_client(urls.small, max_retries=0)
    try:
        client.messages.create(**message_args(LONG_PROMPT))
    except anthropic.BadRequestError as e:
        check(e.status_code == 400, f"status {e.status_code}")
        body = e.body
        check(isinstance(body, dict) and body.get("type") == "error", f"body {body!r}")
        check(
            body["error"].get("type") == "invalid_request_error",
            f"error type {body['error'].get('type')!r}: {body!r}",
        )
    else:
        raise AssertionError("an answer to a prompt beyond the context window")


ANTHROPIC_CHECKS: list[tuple[str, Callable[[argparse.Namespace], None]]] = [
    ("messages.create", anthropic_plain),
    ("messages stream", anthropic_stream),
    ("rate limited", anthropic_rate_limited),
    ("every upstream down", anthropic_down),
    ("context window", anthropic_context_window),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=["openai", "anthropic", "all"], default="all")
    for name in ["ok", "limited", "down", "spent", "small"]:
        parser.add_argument(f"--{name}", required=True, help="a gateway's base URL")
    urls = parser.parse_args()
    suites = []
    if urls.suite in ("openai", "all"):
        suites.append(("openai", OPENAI_CHECKS))
    if urls.suite in ("anthropic", "all"):
        suites.append(("anthropic", ANTHROPIC_CHECKS))
    print(f"openai {openai.__version__}, anthropic {anthropic.__version__}", flush=True)
    failed = 0
    for suite, checks in suites:
        for name, run in checks:
            started = time.monotonic()
            try:
                run(urls)
            except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check
                failed += 1
                took = time.monotonic() - started
                print(f"FAIL {suite}: {name} ({took:.2f} s): {type(e).__name__}: {e}", flush=True)
                traceback.print_exc(file=sys.stderr)
            else:
                took = time.monotonic() - started
                print(f"ok {suite}: {name} ({took:.2f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
