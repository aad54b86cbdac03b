//! [`Provider`]: every classifier behind one enum, chosen by name at run time.

use std::fmt;
use std::str::FromStr;

use http::{HeaderMap, StatusCode};
use tollgate_core::{Classify, ResponseView, Verdict};

use crate::{
    Anthropic, AzureOpenAi, Bedrock, DeepSeek, Gemini, Generic, Groq, Mistral, OpenAi, OpenRouter,
};

/// One of the provider classifiers, chosen at run time (from configuration, say).
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::ErrorClass;
/// use tollgate_providers::Provider;
///
/// let provider: Provider = "anthropic".parse().unwrap();
/// assert_eq!(provider, Provider::Anthropic);
/// let verdict = provider.verdict(StatusCode::from_u16(529).unwrap(), &HeaderMap::new(), b"");
/// assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
/// assert!("gpt".parse::<Provider>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provider {
    /// [`OpenAi`].
    OpenAi,
    /// [`AzureOpenAi`].
    AzureOpenAi,
    /// [`Anthropic`].
    Anthropic,
    /// [`Gemini`].
    Gemini,
    /// [`DeepSeek`].
    DeepSeek,
    /// [`Groq`].
    Groq,
    /// [`Mistral`].
    Mistral,
    /// [`OpenRouter`].
    OpenRouter,
    /// [`Bedrock`].
    Bedrock,
    /// [`Generic`].
    Generic,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 10] = [
        Provider::OpenAi,
        Provider::AzureOpenAi,
        Provider::Anthropic,
        Provider::Gemini,
        Provider::DeepSeek,
        Provider::Groq,
        Provider::Mistral,
        Provider::OpenRouter,
        Provider::Bedrock,
        Provider::Generic,
    ];

    /// The provider's name, as accepted by [`FromStr`]: `openai`, `azure-openai`, `anthropic`,
    /// `gemini`, `deepseek`, `groq`, `mistral`, `openrouter`, `bedrock`, `generic`.
    pub const fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::AzureOpenAi => "azure-openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::DeepSeek => "deepseek",
            Provider::Groq => "groq",
            Provider::Mistral => "mistral",
            Provider::OpenRouter => "openrouter",
            Provider::Bedrock => "bedrock",
            Provider::Generic => "generic",
        }
    }

    /// Classifies a response received now; see each classifier's `verdict`.
    pub fn verdict(
        self,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Verdict {
        self.classify(&ResponseView::new(status, headers, body))
    }
}

impl Classify for Provider {
    fn classify(&self, response: &ResponseView<'_>) -> Verdict {
        match self {
            Provider::OpenAi => OpenAi::new().classify(response),
            Provider::AzureOpenAi => AzureOpenAi::new().classify(response),
            Provider::Anthropic => Anthropic::new().classify(response),
            Provider::Gemini => Gemini::new().classify(response),
            Provider::DeepSeek => DeepSeek::new().classify(response),
            Provider::Groq => Groq::new().classify(response),
            Provider::Mistral => Mistral::new().classify(response),
            Provider::OpenRouter => OpenRouter::new().classify(response),
            Provider::Bedrock => Bedrock::new().classify(response),
            Provider::Generic => Generic::new().classify(response),
        }
    }

    fn needs_body(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        match self {
            Provider::OpenAi => OpenAi::new().needs_body(status, headers),
            Provider::AzureOpenAi => AzureOpenAi::new().needs_body(status, headers),
            Provider::Anthropic => Anthropic::new().needs_body(status, headers),
            Provider::Gemini => Gemini::new().needs_body(status, headers),
            Provider::DeepSeek => DeepSeek::new().needs_body(status, headers),
            Provider::Groq => Groq::new().needs_body(status, headers),
            Provider::Mistral => Mistral::new().needs_body(status, headers),
            Provider::OpenRouter => OpenRouter::new().needs_body(status, headers),
            Provider::Bedrock => Bedrock::new().needs_body(status, headers),
            Provider::Generic => Generic::new().needs_body(status, headers),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A provider name that [`Provider`] does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProvider {
    name: String,
}

impl UnknownProvider {
    /// The name that was given (cut to 64 characters).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown provider {:?}; expected one of ", self.name)?;
        for (i, p) in Provider::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(p.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownProvider {}

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalized = s.trim();
        Provider::ALL
            .into_iter()
            .find(|p| {
                p.name().eq_ignore_ascii_case(normalized)
                    || (normalized.eq_ignore_ascii_case("azure") && *p == Provider::AzureOpenAi)
                    || (normalized.eq_ignore_ascii_case("vertex") && *p == Provider::Gemini)
            })
            .ok_or_else(|| UnknownProvider {
                name: normalized.chars().take(64).collect(),
            })
    }
}
