//! [`ProviderClassifier`]: every classifier behind one enum, chosen by name at run time.

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
/// use tollgate_providers::ProviderClassifier;
///
/// let provider: ProviderClassifier = "anthropic".parse().unwrap();
/// assert_eq!(provider, ProviderClassifier::Anthropic);
/// let verdict = provider.verdict(StatusCode::from_u16(529).unwrap(), &HeaderMap::new(), b"");
/// assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
/// assert!("gpt".parse::<ProviderClassifier>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderClassifier {
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

impl ProviderClassifier {
    /// Every provider.
    pub const ALL: [ProviderClassifier; 10] = [
        ProviderClassifier::OpenAi,
        ProviderClassifier::AzureOpenAi,
        ProviderClassifier::Anthropic,
        ProviderClassifier::Gemini,
        ProviderClassifier::DeepSeek,
        ProviderClassifier::Groq,
        ProviderClassifier::Mistral,
        ProviderClassifier::OpenRouter,
        ProviderClassifier::Bedrock,
        ProviderClassifier::Generic,
    ];

    /// The provider's name, as accepted by [`FromStr`]: `openai`, `azure-openai`, `anthropic`,
    /// `gemini`, `deepseek`, `groq`, `mistral`, `openrouter`, `bedrock`, `generic`.
    pub const fn name(self) -> &'static str {
        match self {
            ProviderClassifier::OpenAi => "openai",
            ProviderClassifier::AzureOpenAi => "azure-openai",
            ProviderClassifier::Anthropic => "anthropic",
            ProviderClassifier::Gemini => "gemini",
            ProviderClassifier::DeepSeek => "deepseek",
            ProviderClassifier::Groq => "groq",
            ProviderClassifier::Mistral => "mistral",
            ProviderClassifier::OpenRouter => "openrouter",
            ProviderClassifier::Bedrock => "bedrock",
            ProviderClassifier::Generic => "generic",
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

impl Classify for ProviderClassifier {
    fn classify(&self, response: &ResponseView<'_>) -> Verdict {
        match self {
            ProviderClassifier::OpenAi => OpenAi::new().classify(response),
            ProviderClassifier::AzureOpenAi => AzureOpenAi::new().classify(response),
            ProviderClassifier::Anthropic => Anthropic::new().classify(response),
            ProviderClassifier::Gemini => Gemini::new().classify(response),
            ProviderClassifier::DeepSeek => DeepSeek::new().classify(response),
            ProviderClassifier::Groq => Groq::new().classify(response),
            ProviderClassifier::Mistral => Mistral::new().classify(response),
            ProviderClassifier::OpenRouter => OpenRouter::new().classify(response),
            ProviderClassifier::Bedrock => Bedrock::new().classify(response),
            ProviderClassifier::Generic => Generic::new().classify(response),
        }
    }

    fn needs_body(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        match self {
            ProviderClassifier::OpenAi => OpenAi::new().needs_body(status, headers),
            ProviderClassifier::AzureOpenAi => AzureOpenAi::new().needs_body(status, headers),
            ProviderClassifier::Anthropic => Anthropic::new().needs_body(status, headers),
            ProviderClassifier::Gemini => Gemini::new().needs_body(status, headers),
            ProviderClassifier::DeepSeek => DeepSeek::new().needs_body(status, headers),
            ProviderClassifier::Groq => Groq::new().needs_body(status, headers),
            ProviderClassifier::Mistral => Mistral::new().needs_body(status, headers),
            ProviderClassifier::OpenRouter => OpenRouter::new().needs_body(status, headers),
            ProviderClassifier::Bedrock => Bedrock::new().needs_body(status, headers),
            ProviderClassifier::Generic => Generic::new().needs_body(status, headers),
        }
    }
}

impl fmt::Display for ProviderClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A provider name that [`ProviderClassifier`] does not know.
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
        for (i, p) in ProviderClassifier::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(p.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownProvider {}

impl FromStr for ProviderClassifier {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalized = s.trim();
        ProviderClassifier::ALL
            .into_iter()
            .find(|p| {
                p.name().eq_ignore_ascii_case(normalized)
                    || (normalized.eq_ignore_ascii_case("azure")
                        && *p == ProviderClassifier::AzureOpenAi)
                    || (normalized.eq_ignore_ascii_case("vertex")
                        && *p == ProviderClassifier::Gemini)
            })
            .ok_or_else(|| UnknownProvider {
                name: normalized.chars().take(64).collect(),
            })
    }
}
