//! [`Provider`] and [`ProviderKind`]: one provider account and model, and how to reach it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::uri::Uri;
use tollgate_circuit_breaker::BreakerConfig;
use tollgate_core::redact;
use tollgate_providers::rewrite::{Credentials, Endpoint, IncludeUsage, SetModel};
use tollgate_ratelimit::Limits;
use tollgate_ratelimit::adaptive::Adaptive;
use tollgate_ratelimit::presets::{
    AnthropicModel, DeepSeekLevel, GeminiModel, GeminiPlan, OpenAiTier,
};
use tollgate_retry::RetryPolicy;
use tollgate_router::Strategy;
use tollgate_timeout::TimeoutConfig;

use super::error::StackError;
use super::model_key::ModelKey;

/// The Azure OpenAI `api-version` used unless [`Provider::with_api_version`] says otherwise.
pub const AZURE_API_VERSION: &str = "2024-10-21";

/// Which API a [`Provider`] is: its default base URL, its credentials header and its
/// classifier.
///
/// Every kind is reached through its OpenAI-compatible chat-completions endpoint.
///
/// | kind | name | default base URL | key header | classifier |
/// |---|---|---|---|---|
/// | `OpenAi` | `openai` | `https://api.openai.com` | `authorization: Bearer` | [`OpenAi`](crate::providers::OpenAi) |
/// | `AzureOpenAi` | `azure-openai` | none: your deployment's URL | `api-key` | [`AzureOpenAi`](crate::providers::AzureOpenAi) |
/// | `Anthropic` | `anthropic` | `https://api.anthropic.com` | `authorization: Bearer` | [`Anthropic`](crate::providers::Anthropic) |
/// | `DeepSeek` | `deepseek` | `https://api.deepseek.com` | `authorization: Bearer` | [`DeepSeek`](crate::providers::DeepSeek) |
/// | `Gemini` | `gemini` | `https://generativelanguage.googleapis.com/v1beta/openai` | `authorization: Bearer` | [`Gemini`](crate::providers::Gemini) |
/// | `Groq` | `groq` | `https://api.groq.com/openai/v1` | `authorization: Bearer` | [`Groq`](crate::providers::Groq) |
/// | `Mistral` | `mistral` | `https://api.mistral.ai` | `authorization: Bearer` | [`Mistral`](crate::providers::Mistral) |
/// | `OpenRouter` | `openrouter` | `https://openrouter.ai/api/v1` | `authorization: Bearer` | [`OpenRouter`](crate::providers::OpenRouter) |
/// | `OpenAiCompatible` | `openai-compatible` (or `generic`) | none: the server's URL | `authorization: Bearer` | [`Generic`](crate::providers::Generic) |
///
/// # Examples
///
/// ```
/// use tollgate::stack::ProviderKind;
///
/// let kind: ProviderKind = "azure-openai".parse().unwrap();
/// assert_eq!(kind, ProviderKind::AzureOpenAi);
/// assert_eq!(kind.default_base_url(), None);
/// assert_eq!(ProviderKind::OpenAi.default_base_url(), Some("https://api.openai.com"));
/// assert!("bedrock".parse::<ProviderKind>().is_err()); // not OpenAI-compatible
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderKind {
    /// OpenAI.
    OpenAi,
    /// Azure OpenAI: a deployment's URL, the `api-key` header, an `api-version` parameter.
    AzureOpenAi,
    /// Anthropic, through its OpenAI-compatible endpoint (`/v1/chat/completions`).
    Anthropic,
    /// DeepSeek.
    DeepSeek,
    /// Google Gemini, through its OpenAI-compatible endpoint.
    Gemini,
    /// Groq.
    Groq,
    /// Mistral.
    Mistral,
    /// OpenRouter.
    OpenRouter,
    /// Any other OpenAI-compatible server (vLLM, Ollama, LiteLLM, …), judged by the
    /// official SDKs' generic rules.
    OpenAiCompatible,
}

impl ProviderKind {
    /// Whether its chat endpoint accepts `stream_options.include_usage`, so that streamed
    /// answers report their usage at the end: every kind but Mistral, whose streams report it
    /// unasked and whose API refuses fields it does not know.
    pub const fn accepts_stream_options(self) -> bool {
        !matches!(self, ProviderKind::Mistral)
    }

    /// The time limits per attempt its stacks get by default: the provider's preset where
    /// it has one ([`TimeoutConfig::openai`], [`anthropic`](TimeoutConfig::anthropic),
    /// [`gemini`](TimeoutConfig::gemini), [`deepseek`](TimeoutConfig::deepseek)), else
    /// [`TimeoutConfig::default`].
    pub const fn timeouts(self) -> TimeoutConfig {
        match self {
            ProviderKind::OpenAi | ProviderKind::AzureOpenAi => TimeoutConfig::openai(),
            ProviderKind::Anthropic => TimeoutConfig::anthropic(),
            ProviderKind::Gemini => TimeoutConfig::gemini(),
            ProviderKind::DeepSeek => TimeoutConfig::deepseek(),
            _ => TimeoutConfig::new(),
        }
    }

    /// Every kind.
    pub const ALL: [ProviderKind; 9] = [
        ProviderKind::OpenAi,
        ProviderKind::AzureOpenAi,
        ProviderKind::Anthropic,
        ProviderKind::DeepSeek,
        ProviderKind::Gemini,
        ProviderKind::Groq,
        ProviderKind::Mistral,
        ProviderKind::OpenRouter,
        ProviderKind::OpenAiCompatible,
    ];

    /// The kind's name, as [`FromStr`] accepts it (which also takes `azure` and `generic`).
    pub const fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::AzureOpenAi => "azure-openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::DeepSeek => "deepseek",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Groq => "groq",
            ProviderKind::Mistral => "mistral",
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }

    /// The base URL used unless [`Provider::with_base_url`] sets one; `None` for Azure OpenAI and
    /// other OpenAI-compatible servers, which need one.
    pub const fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://api.openai.com"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::DeepSeek => Some("https://api.deepseek.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com/v1beta/openai"),
            ProviderKind::Groq => Some("https://api.groq.com/openai/v1"),
            ProviderKind::Mistral => Some("https://api.mistral.ai"),
            ProviderKind::OpenRouter => Some("https://openrouter.ai/api/v1"),
            ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => None,
        }
    }

    /// The classifier for the kind's responses.
    pub const fn classifier(self) -> tollgate_providers::ProviderClassifier {
        use tollgate_providers::ProviderClassifier as C;
        match self {
            ProviderKind::OpenAi => C::OpenAi,
            ProviderKind::AzureOpenAi => C::AzureOpenAi,
            ProviderKind::Anthropic => C::Anthropic,
            ProviderKind::DeepSeek => C::DeepSeek,
            ProviderKind::Gemini => C::Gemini,
            ProviderKind::Groq => C::Groq,
            ProviderKind::Mistral => C::Mistral,
            ProviderKind::OpenRouter => C::OpenRouter,
            ProviderKind::OpenAiCompatible => C::Generic,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that [`ProviderKind`] does not know.
///
/// Neither its `Display` nor its `Debug` quotes the name: a secret pasted where a kind belongs
/// must not reach a log. [`name`](Self::name) gives it to a caller who knows it is safe to show.
#[derive(Clone, PartialEq, Eq)]
pub struct UnknownKind {
    name: String,
}

impl UnknownKind {
    /// The name that was given (cut to 64 characters).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown kind; expected one of ")?;
        for (i, kind) in ProviderKind::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(kind.name())?;
        }
        Ok(())
    }
}

impl fmt::Debug for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnknownKind").finish_non_exhaustive()
    }
}

impl std::error::Error for UnknownKind {}

impl FromStr for ProviderKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("azure") {
            return Ok(ProviderKind::AzureOpenAi);
        }
        if s.eq_ignore_ascii_case("generic") {
            return Ok(ProviderKind::OpenAiCompatible);
        }
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownKind {
                name: s.chars().take(64).collect(),
            })
    }
}

/// An API key: kept out of `Debug` output and error messages.
#[derive(Clone, PartialEq, Eq)]
struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// One provider account and model: where requests go, with which key and model, and the
/// per-provider layers in front of it — retry, circuit breaker, rate limit, concurrency cap,
/// classifier.
///
/// The keys given to [`with_api_key`](Self::with_api_key) or
/// [`with_api_keys`](Self::with_api_keys) never appear in `Debug` output or in errors.
///
/// # Defaults
///
/// | setting | default |
/// |---|---|
/// | name | [`with_name`](Self::with_name), else `kind/model` (`openai/gpt-4o`), else the kind's name |
/// | base URL | the kind's ([`ProviderKind::default_base_url`]) |
/// | API key | none: requests keep the credential headers the caller set |
/// | routing over several keys | [`Strategy::RoundRobin`] |
/// | model | none: the request's `model` is kept |
/// | limits | the preset passed to the constructor ([`openai`](Self::openai), [`anthropic`](Self::anthropic), [`deepseek`](Self::deepseek), [`gemini`](Self::gemini)); none for the others |
/// | adaptive limit | on, [`Adaptive::default()`]: with no limits, the request rate is learned; limits are ceilings (see below) |
/// | time limits per attempt | the kind's ([`ProviderKind::timeouts`]): to the response head, to the first token, between chunks, in total |
/// | retry | [`RetryPolicy::default()`] |
/// | circuit breaker | [`BreakerConfig::default()`] |
/// | concurrency cap | none |
///
/// The default retry policy is [`RetryPolicy::default()`], not [`RetryPolicy::openai()`]: it
/// also honours a body's "try again in 1.2s" hint and a rate limit's reset (within 120 s), and
/// it does not retry a refusal from the layers below — an open circuit fails the attempt at
/// once, so that a fallback takes over without sleeping.
///
/// # When you don't know your quota
///
/// Every provider's stack holds an adaptive limit ([`adaptive`](crate::ratelimit::adaptive))
/// unless turned off ([`without_adaptive`](Self::without_adaptive), or
/// [`without_rate_limit`](Self::without_rate_limit) for no client-side limit at all):
///
/// - with no [limits](Self::with_limits), it learns the sustainable request rate per model from
///   the provider's answers — slow start from 10 requests/s, one multiplicative decrease per
///   429 episode, a cubic climb back — and paces requests at it, so callers that all hear
///   "retry after 1 s" do not come back as one herd; a limit the provider reports in its
///   headers is adopted at once;
/// - with limits, they are ceilings, not promises: a 429 the local accounting did not expect
///   paces requests a little below them for a while, instead of pausing the key for the whole
///   `retry-after`.
///
/// Set its starting rate, floor and ceiling with [`with_adaptive`](Self::with_adaptive).
///
/// # Base URL
///
/// Requests are OpenAI chat completions, `POST /v1/chat/completions`. A base URL without a
/// path (`https://api.openai.com`, `http://127.0.0.1:8080`) keeps the request's path; a base
/// URL with a path is the API root, as the OpenAI SDKs' `base_url`, and replaces the `/v1`
/// prefix (`https://api.groq.com/openai/v1` → `https://api.groq.com/openai/v1/chat/completions`,
/// `…/v1beta/openai` → `…/v1beta/openai/chat/completions`).
///
/// A base URL with user info (`https://user:secret@host`) or a query (`?key=…`) is refused: a
/// key goes in [`with_api_key`](Self::with_api_key), never in the URL. So is a port that is not
/// a number from 0 to 65535, which clients would silently replace with the scheme's default.
/// `Debug` output and errors show a base URL only through [`redact::url`](crate::redact::url): its user info, every
/// query value and its fragment replaced by `<redacted>`, and text that is not a URL not at
/// all.
///
/// # Several API keys
///
/// Given more than one key ([`with_api_keys`](Self::with_api_keys)), the provider's stack
/// spreads its requests over them with a [`RouterLayer`](crate::router::RouterLayer), each key a
/// deployment named `<label>/key-<i>` (from 0, in the order given; never the key) with its own
/// copy of the provider's [limits](Self::with_limits) and [breaker](Self::with_breaker):
///
/// ```text
/// rewrites                   endpoint, model (not the credentials)
/// RetryLayer                 the provider's RetryPolicy
/// RouterLayer                the routing strategy; per key: its credentials,
///                            CircuitBreakerLayer, RateLimitLayer (the provider's limits)
/// ConcurrencyLayer           (optional) max_in_flight, for all the keys together
/// ClassifyLayer              the kind's classifier
/// transport
/// ```
///
/// - each key has its own quota, so the provider takes the sum of them. That holds for keys of
///   different accounts: OpenAI, for one, counts its limits per organization and project, and
///   keys of one project share them;
/// - a request goes to a key that can take it now, as the [routing](Self::with_routing) chooses
///   (round-robin by default). When none can, it waits in the queue of the key free soonest,
///   up to the provider's [maximum wait](Self::with_max_wait) (a minute) or the request's
///   deadline; beyond that it fails at once with
///   [`NoDeployment`](crate::router::error::NoDeployment), which carries `retry_after`;
/// - a key that is rejected (401 `Unauthorized`, 403 `PermissionDenied`) or whose quota is
///   spent (`QuotaExhausted`) is taken out of rotation for 5 minutes, and the request goes on to
///   another key at once: the caller sees no error while a key is left;
/// - each key's quota counts every model together (a single key's counts per model): give the
///   provider a [model](Self::with_model);
/// - with the breaker turned off ([`without_circuit_breaker`](Self::without_circuit_breaker)),
///   each key still gets [`BreakerConfig::default()`]: the router needs one per key to pass over
///   a failing key.
///
/// With one key (or none) there is no router, and [`with_routing`](Self::with_routing) is
/// ignored.
///
/// # Examples
///
/// ```
/// use tollgate::ratelimit::presets::{AnthropicModel, OpenAiTier};
/// use tollgate::stack::Provider;
///
/// let openai = Provider::openai(OpenAiTier::Tier3).with_model("gpt-4o").with_api_key("sk-secret");
/// let claude = Provider::anthropic(AnthropicModel::Sonnet4)
///     .with_model("claude-sonnet-4-5")
///     .with_api_key("sk-ant-secret")
///     .with_max_in_flight(200);
/// let local = Provider::openai_compatible("http://127.0.0.1:8000")
///     .with_name("vllm")
///     .without_rate_limit();
/// assert!(!format!("{openai:?}").contains("sk-secret"));
/// # let _ = (claude, local);
/// ```
#[derive(Clone, PartialEq)]
pub struct Provider {
    name: Option<String>,
    kind: ProviderKind,
    base_url: Option<String>,
    api_keys: Vec<ApiKey>,
    routing: Strategy,
    api_version: Option<String>,
    model: Option<String>,
    limits: Option<Limits>,
    adaptive: Option<Adaptive>,
    timeouts: Option<TimeoutConfig>,
    retry: RetryPolicy,
    breaker: Option<BreakerConfig>,
    max_in_flight: Option<u32>,
    max_wait: Duration,
    max_queue: u32,
    models: Vec<String>,
    unknown_models: UnknownModels,
}

/// What a provider without a [model](Provider::with_model) of its own does with a request
/// naming a model it does not know: neither one of its [models](Provider::with_models) nor a
/// family of the context-window table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownModels {
    /// Sends it, every unknown model drawing from one shared quota (the default).
    #[default]
    Share,
    /// Refuses it with [`UnknownModel`](super::UnknownModel), sending nothing; a fallback
    /// provider may serve it.
    Refuse,
}

/// The default [`Provider::with_max_wait`]: a minute, a per-minute window's full refill, so
/// any request a per-minute quota can hold is admitted within it.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// The default [`Provider::with_max_queue`].
pub const DEFAULT_MAX_QUEUE: u32 = 1_024;

impl Provider {
    /// A provider of `kind` with the defaults above: no configured limits, the request rate
    /// learned.
    pub fn new(kind: ProviderKind) -> Self {
        Provider {
            name: None,
            kind,
            base_url: None,
            api_keys: Vec::new(),
            routing: Strategy::RoundRobin,
            api_version: None,
            model: None,
            limits: None,
            adaptive: Some(Adaptive::default()),
            timeouts: Some(kind.timeouts()),
            retry: RetryPolicy::default(),
            breaker: Some(BreakerConfig::default()),
            max_in_flight: None,
            max_wait: DEFAULT_MAX_WAIT,
            max_queue: DEFAULT_MAX_QUEUE,
            models: Vec::new(),
            unknown_models: UnknownModels::Share,
        }
    }

    /// OpenAI, limited as `tier` ([`OpenAiTier::limits`]).
    pub fn openai(tier: OpenAiTier) -> Self {
        Provider::new(ProviderKind::OpenAi).with_limits(tier.limits())
    }

    /// An Azure OpenAI deployment at `deployment_url`
    /// (`https://<resource>.openai.azure.com/openai/deployments/<deployment>`), with the
    /// `api-key` header and `api-version` [`AZURE_API_VERSION`]; no configured limits, the rate learned (set your
    /// deployment's with [`with_limits`](Self::with_limits)).
    pub fn azure_openai(deployment_url: &str) -> Self {
        Provider::new(ProviderKind::AzureOpenAi).with_base_url(deployment_url)
    }

    /// Anthropic through its OpenAI-compatible endpoint, limited as `model`
    /// ([`AnthropicModel::limits`]).
    pub fn anthropic(model: AnthropicModel) -> Self {
        Provider::new(ProviderKind::Anthropic).with_limits(model.limits())
    }

    /// DeepSeek, limited as `level` ([`DeepSeekLevel::limits`]). DeepSeek also caps
    /// concurrency: add [`with_max_in_flight`](Self::with_max_in_flight).
    pub fn deepseek(level: DeepSeekLevel) -> Self {
        Provider::new(ProviderKind::DeepSeek).with_limits(level.limits())
    }

    /// Gemini through its OpenAI-compatible endpoint, limited as `plan` for `model`
    /// ([`GeminiPlan::limits`]).
    pub fn gemini(plan: GeminiPlan, model: GeminiModel) -> Self {
        Provider::new(ProviderKind::Gemini).with_limits(plan.limits(model))
    }

    /// Groq; no configured limits, the rate learned (set your account's with
    /// [`with_limits`](Self::with_limits)).
    pub fn groq() -> Self {
        Provider::new(ProviderKind::Groq)
    }

    /// Mistral; no configured limits, the rate learned (set your account's with
    /// [`with_limits`](Self::with_limits)).
    pub fn mistral() -> Self {
        Provider::new(ProviderKind::Mistral)
    }

    /// OpenRouter; no configured limits, the rate learned (set your account's with
    /// [`with_limits`](Self::with_limits)).
    pub fn openrouter() -> Self {
        Provider::new(ProviderKind::OpenRouter)
    }

    /// Any OpenAI-compatible server at `base_url`; no configured limits, the rate learned.
    pub fn openai_compatible(base_url: &str) -> Self {
        Provider::new(ProviderKind::OpenAiCompatible).with_base_url(base_url)
    }

    /// Called `name` in errors, metrics and the fallback's reports. Two providers of one stack
    /// with the same name must be the same provider: they share one stack (one quota, one
    /// breaker).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sends requests to `base_url` (see [Base URL](#base-url)); checked when the stack is
    /// built.
    #[must_use]
    pub fn with_base_url(mut self, base_url: &str) -> Self {
        self.base_url = Some(base_url.to_owned());
        self
    }

    /// Authenticates with `key`: `authorization: Bearer <key>`, or Azure's `api-key: <key>`,
    /// replacing the credential headers the request had. Never shown in `Debug` output or
    /// errors.
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_keys = vec![ApiKey(key.into())];
        self
    }

    /// Authenticates with `keys`, all of the provider's, replacing any given before: one key
    /// is [`with_api_key`](Self::with_api_key); several are spread by a router as
    /// [`with_routing`](Self::with_routing) says, each with its own quota and breaker (see
    /// [Several API keys](#several-api-keys)); none leaves the caller's credential headers.
    /// At most 64, checked when the stack is built. Never shown in `Debug` output or errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate::ratelimit::presets::OpenAiTier;
    /// use tollgate::router::Strategy;
    /// use tollgate::stack::Provider;
    ///
    /// let keys = ["sk-team-a", "sk-team-b", "sk-team-c"]; // in practice, from a secret store
    /// let openai = Provider::openai(OpenAiTier::Tier3) // each key: Tier 3's limits
    ///     .with_model("gpt-4o")
    ///     .with_api_keys(keys)
    ///     .with_routing(Strategy::LeastLoaded);
    /// assert!(!format!("{openai:?}").contains("sk-team"));
    /// ```
    #[must_use]
    pub fn with_api_keys(mut self, keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.api_keys = keys.into_iter().map(|key| ApiKey(key.into())).collect();
        self
    }

    /// How the router chooses a key for each request when there are several
    /// ([`with_api_keys`](Self::with_api_keys)): [`Strategy::RoundRobin`] by default. Every key
    /// weighs 1, so [`Strategy::Weighted`] spreads evenly. Ignored with one key or none.
    #[must_use]
    pub fn with_routing(mut self, strategy: Strategy) -> Self {
        self.routing = strategy;
        self
    }

    /// Azure OpenAI's `api-version` parameter (default [`AZURE_API_VERSION`]); ignored for the
    /// other kinds.
    #[must_use]
    pub fn with_api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = Some(version.into());
        self
    }

    /// Sets the JSON body's `model` to `model` ([`SetModel`]).
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Holds requests to `limits`, per model, counting tokens as OpenAI does
    /// ([`OpenAiChat`](crate::ratelimit::OpenAiChat)), waiting as long as it takes.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// No client-side rate limit: neither configured limits nor an adaptive one.
    #[must_use]
    pub fn without_rate_limit(mut self) -> Self {
        self.limits = None;
        self.adaptive = None;
        self
    }

    /// Learns the request rate as `adaptive` says: its starting rate, floor and ceiling (on by
    /// default, with [`Adaptive::default()`]); see [When you don't know your quota](Self#when-you-dont-know-your-quota).
    #[must_use]
    pub fn with_adaptive(mut self, adaptive: Adaptive) -> Self {
        self.adaptive = Some(adaptive);
        self
    }

    /// Holds each attempt to `config`'s time limits — to the response head, to the first
    /// token, between chunks, in total — in place of the kind's
    /// ([`ProviderKind::timeouts`]). An attempt that runs out of time before its first byte
    /// reached the caller is retried, or moved on by the fallback; after that, the caller's
    /// body ends with the timeout.
    #[must_use]
    pub fn with_timeouts(mut self, config: TimeoutConfig) -> Self {
        self.timeouts = Some(config);
        self
    }

    /// No time limit per attempt (the request's deadline, if any, still holds above).
    #[must_use]
    pub fn without_timeouts(mut self) -> Self {
        self.timeouts = None;
        self
    }

    /// No adaptive limit: the configured limits alone (none: no client-side limit), and a
    /// 429's `retry-after` pauses the whole key.
    #[must_use]
    pub fn without_adaptive(mut self) -> Self {
        self.adaptive = None;
        self
    }

    /// Retries as `policy` says.
    #[must_use]
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A circuit breaker configured by `config`.
    #[must_use]
    pub fn with_breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = Some(config);
        self
    }

    /// No circuit breaker.
    #[must_use]
    pub fn without_circuit_breaker(mut self) -> Self {
        self.breaker = None;
        self
    }

    /// At most `max` requests in flight ([`ConcurrencyLayer`](crate::ConcurrencyLayer),
    /// slots held until the response body ends); more wait in a fair queue. Zero is refused
    /// when the stack is built.
    #[must_use]
    pub fn with_max_in_flight(mut self, max: u32) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// The longest a request waits — for quota, for a key, for a slot under
    /// [`with_max_in_flight`](Self::with_max_in_flight) — before it is refused with a
    /// `retry_after` ([`DEFAULT_MAX_WAIT`], a minute, by default); the request's own deadline
    /// counts when sooner. `Duration::ZERO`: never wait.
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// How many requests may wait at once in each of the provider's queues (quota, router,
    /// concurrency; [`DEFAULT_MAX_QUEUE`], 1,024, by default); one more is refused at once
    /// with a `retry_after`. Memory held by waiters is about this many requests' bodies per
    /// queue. 0: nobody waits.
    #[must_use]
    pub fn with_max_queue(mut self, max_queue: u32) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// The models a caller may name (when no [model](Self::with_model) is set) that get a
    /// quota of their own. The quota is kept per model among the models the stack knows —
    /// these, the provider's model, and the families of the published context-window table
    /// by prefix (`gpt-4o-2024-08-06` counts as `gpt-4o`) — and every other model name shares
    /// one quota, so that varying the model neither bypasses the quota nor grows memory.
    #[must_use]
    pub fn with_models<I, M>(mut self, models: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: Into<String>,
    {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// Whether a request naming a model the provider does not know shares one quota with
    /// every other unknown model ([`UnknownModels::Share`], the default) or is refused
    /// ([`UnknownModels::Refuse`]). No effect with a [model](Self::with_model) set: every
    /// request is sent as that model.
    #[must_use]
    pub fn with_unknown_models(mut self, unknown_models: UnknownModels) -> Self {
        self.unknown_models = unknown_models;
        self
    }

    /// The kind.
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The name the stack knows it by: the one set with [`with_name`](Self::with_name), else
    /// `kind/model`, else the kind's name.
    ///
    /// ```
    /// use tollgate::ratelimit::presets::OpenAiTier;
    /// use tollgate::stack::Provider;
    ///
    /// let openai = Provider::openai(OpenAiTier::Tier1).with_model("gpt-4o");
    /// assert_eq!(openai.label(), "openai/gpt-4o");
    /// assert_eq!(Provider::groq().label(), "groq");
    /// ```
    pub fn label(&self) -> String {
        match (&self.name, &self.model) {
            (Some(name), _) => name.clone(),
            (None, Some(model)) => format!("{}/{model}", self.kind),
            (None, None) => self.kind.name().to_owned(),
        }
    }

    /// The limits the provider's rate limit holds requests to: the configured ones, with the
    /// adaptive limit if on; `None` for no rate limit.
    pub(crate) fn effective_limits(&self) -> Option<Limits> {
        match (&self.limits, self.adaptive) {
            (Some(limits), Some(adaptive)) => Some(limits.clone().with_adaptive(adaptive)),
            (Some(limits), None) => Some(limits.clone()),
            (None, Some(adaptive)) => Some(Limits::adaptive(adaptive)),
            (None, None) => None,
        }
    }

    pub(crate) fn timeout_config(&self) -> Option<&TimeoutConfig> {
        self.timeouts.as_ref()
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub(crate) fn breaker_config(&self) -> Option<&BreakerConfig> {
        self.breaker.as_ref()
    }

    pub(crate) fn max_in_flight_limit(&self) -> Option<u32> {
        self.max_in_flight
    }

    /// The models with a quota of their own: the configured list and model.
    pub(crate) fn known_models(&self) -> impl Iterator<Item = &str> {
        self.models.iter().chain(&self.model).map(String::as_str)
    }

    /// The key of its rate limit, behind its rewrites: its own model's when it has one.
    pub(crate) fn model_key(&self) -> ModelKey {
        match &self.model {
            Some(model) => ModelKey::fixed(model),
            None => ModelKey::new(self.known_models()),
        }
    }

    pub(crate) fn max_wait(&self) -> Duration {
        self.max_wait
    }

    pub(crate) fn max_queue(&self) -> u32 {
        self.max_queue
    }

    pub(crate) fn routing_strategy(&self) -> Strategy {
        self.routing
    }

    /// The credentials of each key, in order, when there are several; empty with one or none
    /// (those go in [`rewrites`](Self::rewrites)).
    pub(crate) fn key_credentials(&self) -> Result<Vec<Credentials>, StackError> {
        if self.api_keys.len() < 2 {
            return Ok(Vec::new());
        }
        for (second, ApiKey(key)) in self.api_keys.iter().enumerate() {
            if let Some(first) = self.api_keys[..second].iter().position(|k| k.0 == *key) {
                return Err(StackError::DuplicateApiKey {
                    provider: self.label(),
                    positions: (first, second),
                });
            }
        }
        self.api_keys
            .iter()
            .map(|ApiKey(key)| {
                credentials(self.kind, key).ok_or_else(|| StackError::InvalidApiKey {
                    provider: self.label(),
                })
            })
            .collect()
    }

    /// The request rewrites: endpoint, credentials (with exactly one key), model.
    pub(crate) fn rewrites(&self) -> Result<Rewrites, StackError> {
        let provider = self.label();
        let base = self
            .base_url
            .as_deref()
            .or(self.kind.default_base_url())
            .ok_or_else(|| StackError::MissingBaseUrl {
                provider: provider.clone(),
                kind: self.kind,
            })?;
        let endpoint =
            endpoint(self.kind, base, self.api_version.as_deref()).map_err(|reason| {
                StackError::InvalidBaseUrl {
                    provider: provider.clone(),
                    url: redact::url(base),
                    reason,
                }
            })?;
        let credentials = match self.api_keys.as_slice() {
            [] | [_, _, ..] => None,
            [ApiKey(key)] => {
                Some(
                    credentials(self.kind, key).ok_or_else(|| StackError::InvalidApiKey {
                        provider: provider.clone(),
                    })?,
                )
            }
        };
        if self.max_in_flight == Some(0) {
            return Err(StackError::ZeroMaxInFlight { provider });
        }
        Ok(Rewrites {
            provider: provider.into(),
            endpoint,
            credentials,
            model: self.model.as_deref().map(SetModel::new),
            include_usage: self.kind.accepts_stream_options().then_some(IncludeUsage),
            refused_models: (self.unknown_models == UnknownModels::Refuse && self.model.is_none())
                .then(|| ModelKey::new(self.known_models())),
        })
    }
}

/// The endpoint for `base`: checked, and replacing `/v1` when the base has a path.
pub(crate) fn endpoint(
    kind: ProviderKind,
    base: &str,
    api_version: Option<&str>,
) -> Result<Endpoint, String> {
    let uri: Uri = base
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        // Not quoted: text that is not a URL (a key pasted by mistake) can parse as a scheme.
        Some(_) => return Err("the scheme is not http or https".to_owned()),
        None => return Err("not an absolute URL (no scheme)".to_owned()),
    }
    let Some(authority) = uri.authority() else {
        return Err("no host".to_owned());
    };
    if authority.as_str().contains('@') {
        return Err(
            "has user info: give the key through with_api_key (or api_key_env), not in the URL"
                .to_owned(),
        );
    }
    // After the host (an IPv6 host is bracketed): a port http could not read, which clients
    // would replace with the scheme's default.
    let after_host = authority.as_str().rfind(']').map_or(0, |i| i + 1);
    if authority.as_str()[after_host..].contains(':') && uri.port_u16().is_none() {
        return Err("the port is not a number from 0 to 65535".to_owned());
    }
    if uri.query().is_some() {
        return Err(
            "has a query: a key goes in with_api_key (or api_key_env), Azure's api-version in \
             with_api_version (or api_version)"
                .to_owned(),
        );
    }
    let has_path = !uri.path().trim_matches('/').is_empty();
    let mut endpoint =
        Endpoint::new(base.trim_end_matches('/')).map_err(|error| error.to_string())?;
    if has_path {
        endpoint = endpoint.with_prefix_replaced("/v1");
    }
    if kind == ProviderKind::AzureOpenAi {
        let version = api_version.unwrap_or(AZURE_API_VERSION);
        check_api_version(version)?;
        endpoint = endpoint.with_query(&format!("api-version={version}"));
    }
    Ok(endpoint)
}

/// Whether `version` can be Azure's `api-version` parameter.
pub(crate) fn check_api_version(version: &str) -> Result<(), String> {
    if version.is_empty()
        || !version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(
            "the api-version is not a version (letters, digits, `-` and `.`; not shown)".to_owned(),
        );
    }
    Ok(())
}

/// The credentials for `key`, `None` when it cannot be a header value. The error never says
/// why: the reason would quote the key.
pub(crate) fn credentials(kind: ProviderKind, key: &str) -> Option<Credentials> {
    if key.is_empty() {
        return None;
    }
    match kind {
        ProviderKind::AzureOpenAi => Credentials::header("api-key", key).ok(),
        _ => Credentials::bearer(key).ok(),
    }
}

/// What a provider's stack changes in each request, before its retry layer.
#[derive(Debug, Clone)]
pub(crate) struct Rewrites {
    pub(crate) provider: std::sync::Arc<str>,
    pub(crate) endpoint: Endpoint,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) model: Option<SetModel>,
    /// Asks for the usage of streamed answers, where the kind accepts `stream_options`.
    pub(crate) include_usage: Option<IncludeUsage>,
    /// Refuses requests naming a model outside these ([`UnknownModels::Refuse`]).
    pub(crate) refused_models: Option<ModelKey>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Provider");
        f.field("name", &self.label())
            .field("kind", &self.kind)
            .field(
                "base_url",
                &self
                    .base_url
                    .as_deref()
                    .or(self.kind.default_base_url())
                    .map(redact::url),
            );
        // Each key shows as "<redacted>": how many there are, never what they are.
        match self.api_keys.as_slice() {
            [] => f.field("api_key", &None::<ApiKey>),
            [key] => f.field("api_key", &Some(key)),
            keys => f.field("api_keys", &keys).field("routing", &self.routing),
        };
        f.field("api_version", &self.api_version)
            .field("model", &self.model)
            .field("limits", &self.limits)
            .field("adaptive", &self.adaptive)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_wait", &self.max_wait)
            .field("max_queue", &self.max_queue)
            .field("models", &self.models)
            .field("unknown_models", &self.unknown_models)
            .finish()
    }
}
