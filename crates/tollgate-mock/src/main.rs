//! The `tollgate-mock` binary: serves a mock OpenAI or Anthropic API until Ctrl-C.
//!
//! Run `tollgate-mock --help` for the flags.

use std::net::SocketAddr;
use std::process::ExitCode;

use tollgate_mock::{Flavor, Latency, MockConfig, MockServer};

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
];

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    Help,
    Serve(SocketAddr, Box<MockConfig>),
}

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
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8080));
    for (flag, value) in &pairs {
        let f = flag.as_str();
        match f {
            "--config" | "--flavor" => {}
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
        "requests: {}, ok: {}, rate limited: {}, by status: {:?}, resets: {}, hangs: {}, tokens in/out: {}/{}, max in flight: {}",
        stats.requests,
        stats.ok,
        stats.rate_limited,
        stats.by_status,
        stats.resets,
        stats.hangs,
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
    fn bad_flags_name_the_flag() {
        for (line, flag) in [
            ("--rpm x", "--rpm"),
            ("--rpm 0", "requests_per_minute"),
            ("--bogus 1", "--bogus"),
            ("--bogus", "unknown flag `--bogus`"),
            ("--bogus=1", "unknown flag `--bogus`"),
            ("--error-rate 503", "--error-rate"),
            ("--error-rate 503=2", "error_rates.503"),
            ("--flavor gemini", "--flavor"),
            ("--addr nowhere", "--addr"),
            ("--seed", "--seed"),
            ("--config /nonexistent.toml", "--config"),
        ] {
            let err = parse_args(args(line)).unwrap_err();
            assert!(err.0.contains(flag), "{line}: {}", err.0);
        }
    }
}
