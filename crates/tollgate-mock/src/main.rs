//! The `tollgate-mock` binary: serves a mock OpenAI or Anthropic API until Ctrl-C.
//!
//! Run `tollgate-mock --help` for the flags.

use std::net::SocketAddr;
use std::process::ExitCode;

use std::time::Duration;

use tollgate_mock::{
    FirstTokenDelay, Flavor, Latency, MockConfig, MockServer, ProxyLimit, StreamFault, TenantShare,
};

const USAGE: &str = "\
tollgate-mock: a mock LLM provider (OpenAI or Anthropic) with quotas, rate-limit headers and faults

USAGE:
    tollgate-mock [OPTIONS]

OPTIONS:
    --config FILE            TOML configuration (flags below override it)
    --flavor openai|anthropic
                             provider to imitate [default: openai]
    --addr ADDR              address to listen on [default: 127.0.0.1:8080]
    --rpm N                  requests per minute
    --tpm N                  tokens per minute
    --itpm N                 input tokens per minute (Anthropic ITPM)
    --otpm N                 output tokens per minute (Anthropic OTPM)
    --tpd N                  tokens per day
    --concurrency N          max requests in flight
    --context-window N       context window in tokens
    --completion-tokens N    tokens per answer
    --latency-ms N           fixed latency in milliseconds
    --error-rate STATUS=P    answer STATUS with probability P (repeatable)
    --api-key KEY            require this API key
    --credit-tokens N        prepaid credit in tokens
    --seed N                 RNG seed
    -h, --help               print this help

STREAM FAULTS (streamed answers, after the 200 head; P is a probability per stream, default 1):
    --first-token-delay MS[:P]
                             send the first event MS milliseconds late
    --stream-stall N[:P]     after N events send nothing more, never end
    --stream-error N[:P]     after N events send the error event, end without [DONE] /
                             message_stop
    --stream-cut N[:P]       after N events close the connection abruptly

REVERSE-PROXY LIMITER (per API key, checked before the provider's quotas):
    --proxy-rate N           requests per second per key
    --proxy-burst N          extra requests allowed back to back [default: 0]
    --proxy-retry-after SECS Retry-After of the proxy's 429 [default: 1]
    --tenant-share MS:SHARE  another tenant takes SHARE (0 to 0.99) of the rate from MS
                             milliseconds after the start (repeatable or comma-separated;
                             replaces the file's schedule; increasing MS)

ROUTES:
    POST /v1/chat/completions   OpenAI Chat Completions shape
    POST /v1/messages           Anthropic Messages shape
";

/// Flags that take a value.
const FLAGS: &[&str] = &[
    "--config",
    "--flavor",
    "--addr",
    "--rpm",
    "--tpm",
    "--itpm",
    "--otpm",
    "--tpd",
    "--concurrency",
    "--context-window",
    "--completion-tokens",
    "--latency-ms",
    "--error-rate",
    "--api-key",
    "--credit-tokens",
    "--seed",
    "--first-token-delay",
    "--stream-stall",
    "--stream-error",
    "--stream-cut",
    "--proxy-rate",
    "--proxy-burst",
    "--proxy-retry-after",
    "--tenant-share",
];

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    Help,
    Serve(SocketAddr, Box<MockConfig>),
}

/// Flags that configure the reverse-proxy limiter: they need `--proxy-rate` or a
/// `[proxy_limit]` table in the `--config` file.
const PROXY_FLAGS: &[&str] = &["--proxy-burst", "--proxy-retry-after", "--tenant-share"];

/// A bad command line: the message names the flag.
#[derive(Debug, PartialEq, Eq)]
struct ArgError(String);

fn number(flag: &str, value: &str) -> Result<u64, ArgError> {
    value.trim().parse::<u64>().map_err(|_| {
        ArgError(format!(
            "invalid value `{value}` for `{flag}`: expected an integer"
        ))
    })
}

/// `MS:SHARE`, comma-separated, e.g. `20000:0.5,60000:0`.
fn tenant_shares(value: &str) -> Result<Vec<TenantShare>, ArgError> {
    let bad = || {
        ArgError(format!(
            "invalid value `{value}` for `--tenant-share`: expected MS:SHARE[,MS:SHARE…], e.g. 20000:0.5"
        ))
    };
    value
        .split(',')
        .map(|entry| {
            let (from_ms, share) = entry.split_once(':').ok_or_else(bad)?;
            Ok(TenantShare {
                from_ms: from_ms.trim().parse().map_err(|_| bad())?,
                share: share.trim().parse().map_err(|_| bad())?,
            })
        })
        .collect()
}

/// `N[:P]`: a count and an optional probability (default 1).
fn count_and_rate(flag: &str, value: &str) -> Result<(u64, f64), ArgError> {
    let bad = || {
        ArgError(format!(
            "invalid value `{value}` for `{flag}`: expected N or N:PROBABILITY, e.g. 3:0.1"
        ))
    };
    let (n, p) = match value.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (value, None),
    };
    let n = n.trim().parse().map_err(|_| bad())?;
    let p = match p {
        Some(p) => p.trim().parse().map_err(|_| bad())?,
        None => 1.0,
    };
    Ok((n, p))
}

/// The proxy limit to configure: the file's, or a new one once `--proxy-rate` is given.
fn proxy_limit<'a>(config: &'a mut MockConfig, flag: &str) -> Result<&'a mut ProxyLimit, ArgError> {
    config.proxy_limit.as_mut().ok_or_else(|| {
        ArgError(format!(
            "`{flag}` needs `--proxy-rate` (or a [proxy_limit] table in the --config file)"
        ))
    })
}

/// Applies one of [`PROXY_FLAGS`]; the first `--tenant-share` replaces the file's schedule.
fn apply_proxy_flag(
    limit: &mut ProxyLimit,
    flag: &str,
    value: &str,
    tenant_flag_seen: &mut bool,
) -> Result<(), ArgError> {
    match flag {
        "--proxy-burst" => limit.burst = number(flag, value)?,
        "--proxy-retry-after" => limit.retry_after_secs = number(flag, value)?,
        _ => {
            if !*tenant_flag_seen {
                limit.tenant_schedule.clear();
                *tenant_flag_seen = true;
            }
            limit.tenant_schedule.extend(tenant_shares(value)?);
        }
    }
    Ok(())
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, ArgError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(ArgError(format!("unexpected argument `{arg}`")));
        };
        let (flag, value) = match flag.split_once('=') {
            Some((f, v)) => (format!("--{f}"), v.to_owned()),
            None => {
                let flag = format!("--{flag}");
                if !FLAGS.contains(&flag.as_str()) {
                    return Err(ArgError(format!("unknown flag `{flag}`")));
                }
                let value = args
                    .next()
                    .ok_or_else(|| ArgError(format!("missing value for `{flag}`")))?;
                (flag, value)
            }
        };
        pairs.push((flag, value));
    }

    let mut config = match pairs.iter().find(|(f, _)| f == "--config") {
        Some((_, path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ArgError(format!("cannot read `--config` file `{path}`: {e}")))?;
            MockConfig::from_toml(&text)
                .map_err(|e| ArgError(format!("invalid `--config` file `{path}`: {e}")))?
        }
        None => MockConfig::openai(),
    };
    // `--flavor` first: switching flavors moves the flavor-default context window and outage
    // statuses, which must not overwrite an explicit `--context-window` given before it.
    for (_, value) in pairs.iter().filter(|(f, _)| f == "--flavor") {
        let flavor = match value.trim().to_ascii_lowercase().as_str() {
            "openai" => Flavor::OpenAi,
            "anthropic" => Flavor::Anthropic,
            _ => {
                return Err(ArgError(format!(
                    "invalid value `{value}` for `--flavor`: expected openai or anthropic"
                )));
            }
        };
        let old = config.flavor;
        if config.context_window == old.default_context_window() {
            config.context_window = flavor.default_context_window();
        }
        for o in &mut config.faults.outages {
            if o.status == old.outage_status() {
                o.status = flavor.outage_status();
            }
        }
        config.flavor = flavor;
    }
    // `--proxy-rate` first: the other proxy flags refine the limit it creates.
    for (flag, value) in pairs.iter().filter(|(f, _)| f == "--proxy-rate") {
        let rate = number(flag, value)?;
        match &mut config.proxy_limit {
            Some(limit) => limit.rate_per_second = rate,
            None => config.proxy_limit = Some(ProxyLimit::per_second(rate)),
        }
    }
    let mut tenant_flag_seen = false;
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8080));
    for (flag, value) in &pairs {
        let f = flag.as_str();
        if PROXY_FLAGS.contains(&f) {
            let limit = proxy_limit(&mut config, f)?;
            apply_proxy_flag(limit, f, value, &mut tenant_flag_seen)?;
            continue;
        }
        match f {
            "--config" | "--flavor" | "--proxy-rate" => {}
            "--addr" => {
                addr = value.trim().parse().map_err(|_| {
                    ArgError(format!(
                        "invalid value `{value}` for `--addr`: expected IP:PORT"
                    ))
                })?;
            }
            "--rpm" => config.quota.requests_per_minute = Some(number(f, value)?),
            "--tpm" => config.quota.tokens_per_minute = Some(number(f, value)?),
            "--itpm" => config.quota.input_tokens_per_minute = Some(number(f, value)?),
            "--otpm" => config.quota.output_tokens_per_minute = Some(number(f, value)?),
            "--tpd" => config.quota.tokens_per_day = Some(number(f, value)?),
            "--concurrency" => config.quota.max_concurrency = Some(number(f, value)?),
            "--context-window" => config.context_window = number(f, value)?,
            "--completion-tokens" => config.completion_tokens = number(f, value)?,
            "--latency-ms" => {
                config.latency = Latency::Fixed {
                    ms: number(f, value)?,
                }
            }
            "--credit-tokens" => config.credit_tokens = Some(number(f, value)?),
            "--seed" => config.seed = number(f, value)?,
            "--api-key" => config.api_key = Some(value.clone()),
            "--first-token-delay" => {
                let (ms, p) = count_and_rate(f, value)?;
                let delay = FirstTokenDelay::new(Duration::from_millis(ms)).with_rate(p);
                config.faults.stream.first_token_delay = Some(delay);
            }
            "--stream-stall" | "--stream-error" | "--stream-cut" => {
                let (after, p) = count_and_rate(f, value)?;
                let fault = Some(StreamFault::after(after).with_rate(p));
                let stream = &mut config.faults.stream;
                match f {
                    "--stream-stall" => stream.stall = fault,
                    "--stream-error" => stream.error = fault,
                    _ => stream.cut = fault,
                }
            }
            "--error-rate" => {
                let bad = || {
                    ArgError(format!(
                        "invalid value `{value}` for `--error-rate`: expected STATUS=PROBABILITY, e.g. 503=0.02"
                    ))
                };
                let (status, p) = value.split_once('=').ok_or_else(bad)?;
                let status: u16 = status.trim().parse().map_err(|_| bad())?;
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                config.faults.error_rates.insert(status, p);
            }
            _ => return Err(ArgError(format!("unknown flag `{flag}`"))),
        }
    }
    config
        .validate()
        .map_err(|e| ArgError(format!("invalid configuration: {e}")))?;
    Ok(Command::Serve(addr, Box::new(config)))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (addr, config) = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Serve(addr, config)) => (addr, config),
        Err(ArgError(message)) => {
            eprintln!("error: {message}\n\nRun `tollgate-mock --help` for usage.");
            return ExitCode::from(2);
        }
    };
    let flavor = config.flavor;
    let server = match MockServer::bind(addr, *config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.base_url());
    eprintln!("tollgate-mock ({flavor}) serving; Ctrl-C to stop");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error: cannot wait for Ctrl-C: {e}");
    }
    let stats = server.stats();
    server.shutdown().await;
    eprintln!(
        "requests: {}, ok: {}, rate limited: {} (by the proxy: {}), by status: {:?}, resets: {}, hangs: {}, streams delayed/stalled/errored/cut: {}/{}/{}/{}, tokens in/out: {}/{}, max in flight: {}",
        stats.requests,
        stats.ok,
        stats.rate_limited,
        stats.proxy_limited,
        stats.by_status,
        stats.resets,
        stats.hangs,
        stats.streams_delayed,
        stats.streams_stalled,
        stats.streams_errored,
        stats.streams_cut,
        stats.input_tokens,
        stats.output_tokens,
        stats.max_in_flight
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn serve(s: &str) -> (SocketAddr, MockConfig) {
        match parse_args(args(s)).unwrap() {
            Command::Serve(a, c) => (a, *c),
            Command::Help => panic!("help"),
        }
    }

    #[test]
    fn flags() {
        let (addr, c) = serve(
            "--flavor anthropic --addr 127.0.0.1:0 --rpm 5 --tpm=100 --concurrency 3 --latency-ms 20 --error-rate 529=0.5 --error-rate 500=0.1 --seed 9",
        );
        assert_eq!(addr.port(), 0);
        assert_eq!(c.flavor, Flavor::Anthropic);
        assert_eq!(c.context_window, 200_000);
        assert_eq!(c.quota.requests_per_minute, Some(5));
        assert_eq!(c.quota.tokens_per_minute, Some(100));
        assert_eq!(c.quota.max_concurrency, Some(3));
        assert_eq!(c.latency, Latency::Fixed { ms: 20 });
        assert_eq!(c.faults.error_rates.len(), 2);
        assert_eq!(c.seed, 9);
        assert!(matches!(parse_args(args("-h")), Ok(Command::Help)));
    }

    #[test]
    fn stream_fault_flags() {
        let (_, c) = serve(
            "--first-token-delay 8000 --stream-stall 3:0.25 --stream-error=5:0.5 --stream-cut 2:0.125",
        );
        let s = c.faults.stream;
        assert_eq!(
            s.first_token_delay,
            Some(FirstTokenDelay::new(Duration::from_secs(8)))
        );
        assert_eq!(s.stall, Some(StreamFault::after(3).with_rate(0.25)));
        assert_eq!(s.error, Some(StreamFault::after(5).with_rate(0.5)));
        assert_eq!(s.cut, Some(StreamFault::after(2).with_rate(0.125)));
        let (_, c) = serve("--first-token-delay 100:0.5 --stream-cut 4");
        assert_eq!(c.faults.stream.cut, Some(StreamFault::after(4)));
        assert_eq!(c.faults.stream.first_token_delay.unwrap().rate, 0.5);
        assert_eq!(serve("--rpm 5").1.faults.stream, Default::default());
    }

    #[test]
    fn stream_flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("tollgate-mock-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stream.toml");
        std::fs::write(
            &path,
            "[faults.stream]\ncut = { after = 4, rate = 0.5 }\nerror = { after = 1, rate = 0.25 }\n",
        )
        .unwrap();
        let (_, c) = serve(&format!("--config {} --stream-cut 2:0.75", path.display()));
        assert_eq!(
            c.faults.stream.cut,
            Some(StreamFault::after(2).with_rate(0.75))
        );
        assert_eq!(
            c.faults.stream.error,
            Some(StreamFault::after(1).with_rate(0.25))
        );
        // 1 (the flag's default rate) + 0.25 > 1: the combination is validated.
        let err =
            parse_args(args(&format!("--config {} --stream-cut 2", path.display()))).unwrap_err();
        assert!(err.0.contains("faults.stream"), "{}", err.0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn proxy_flags() {
        let (_, c) = serve(
            "--proxy-burst 10 --proxy-rate 50 --proxy-retry-after=2 --tenant-share 0:0,20000:0.5 --tenant-share 60000:0",
        );
        let expected = ProxyLimit::per_second(50)
            .with_burst(10)
            .with_retry_after(std::time::Duration::from_secs(2))
            .with_tenant_share(std::time::Duration::ZERO, 0.0)
            .with_tenant_share(std::time::Duration::from_secs(20), 0.5)
            .with_tenant_share(std::time::Duration::from_secs(60), 0.0);
        assert_eq!(c.proxy_limit, Some(expected));
        assert_eq!(serve("--rpm 5").1.proxy_limit, None);
    }

    #[test]
    fn proxy_flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("tollgate-mock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("proxy.toml");
        std::fs::write(
            &path,
            "[proxy_limit]\nrate_per_second = 5\nburst = 3\n[[proxy_limit.tenant]]\nfrom_ms = 100\nshare = 0.5\n",
        )
        .unwrap();
        let config = format!("--config {}", path.display());
        let (_, c) = serve(&format!("{config} --proxy-burst 1"));
        let limit = c.proxy_limit.unwrap();
        assert_eq!((limit.rate_per_second, limit.burst), (5, 1));
        assert_eq!(
            limit.tenant_schedule.len(),
            1,
            "kept without --tenant-share"
        );
        let (_, c) = serve(&format!("{config} --proxy-rate 7 --tenant-share 5:0.25"));
        let limit = c.proxy_limit.unwrap();
        assert_eq!((limit.rate_per_second, limit.burst), (7, 3));
        assert_eq!(
            limit.tenant_schedule,
            [TenantShare {
                from_ms: 5,
                share: 0.25
            }],
            "replaced by --tenant-share"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_flags_name_the_flag() {
        for (line, flag) in [
            ("--rpm x", "--rpm"),
            ("--rpm 0", "requests_per_minute"),
            ("--bogus 1", "--bogus"),
            ("--bogus", "unknown flag `--bogus`"),
            ("--bogus=1", "unknown flag `--bogus`"),
            ("--error-rate 503", "--error-rate"),
            ("--error-rate 503=2", "error_rates.503"),
            ("--first-token-delay x", "--first-token-delay"),
            ("--first-token-delay 5:x", "--first-token-delay"),
            (
                "--first-token-delay 5:2",
                "faults.stream.first_token_delay.rate",
            ),
            (
                "--first-token-delay 3600001",
                "faults.stream.first_token_delay.ms",
            ),
            ("--stream-stall -1", "--stream-stall"),
            ("--stream-error 1:0.5:2", "--stream-error"),
            ("--stream-cut 3:1.5", "faults.stream.cut.rate"),
            ("--stream-cut 3:0.5 --stream-stall 1:0.6", "faults.stream"),
            ("--flavor gemini", "--flavor"),
            ("--addr nowhere", "--addr"),
            ("--seed", "--seed"),
            ("--config /nonexistent.toml", "--config"),
            ("--proxy-rate x", "--proxy-rate"),
            ("--proxy-rate 0", "proxy_limit.rate_per_second"),
            ("--proxy-burst 5", "`--proxy-burst` needs `--proxy-rate`"),
            (
                "--tenant-share 0:0.5",
                "`--tenant-share` needs `--proxy-rate`",
            ),
            ("--proxy-rate 5 --proxy-burst -1", "--proxy-burst"),
            (
                "--proxy-rate 5 --proxy-retry-after x",
                "--proxy-retry-after",
            ),
            ("--proxy-rate 5 --tenant-share 0.5", "--tenant-share"),
            ("--proxy-rate 5 --tenant-share 0:x", "--tenant-share"),
            (
                "--proxy-rate 5 --tenant-share 0:1",
                "proxy_limit.tenant[0].share",
            ),
            (
                "--proxy-rate 5 --tenant-share 20:0.5,10:0",
                "proxy_limit.tenant[1].from_ms",
            ),
        ] {
            let err = parse_args(args(line)).unwrap_err();
            assert!(err.0.contains(flag), "{line}: {}", err.0);
        }
    }
}
