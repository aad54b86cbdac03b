//! Translation between the two chat API shapes the gateway serves: OpenAI's Chat Completions
//! (`POST /v1/chat/completions`) and Anthropic's Messages (`POST /v1/messages`) — requests,
//! successful answers, and their event streams.
//!
//! A caller of either shape can be served by an upstream of either shape: when they differ, the
//! request is translated on its way up ([`request`]) and the answer on its way back
//! ([`response`], or [`StreamTranslator`] frame by frame for an event stream). A request using
//! a feature the other shape cannot express is refused with [`TranslateError::Untranslatable`],
//! naming the feature: nothing the caller sent is dropped silently.

mod body;
mod request;
mod response;
mod stream;

pub(crate) use body::TranslatedBody;
// The default is read by the tests and named in the gateway's docs.
#[allow(unused_imports)]
pub(crate) use request::DEFAULT_MAX_TOKENS;
pub(crate) use request::request;
pub(crate) use response::response;
pub(crate) use stream::StreamTranslator;

use std::error::Error;
use std::fmt;

/// A chat API shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Api {
    /// OpenAI's Chat Completions: `POST /v1/chat/completions`.
    Chat,
    /// Anthropic's Messages: `POST /v1/messages`.
    Messages,
}

impl Api {
    /// The API's path, under the API root: `/v1/chat/completions` or `/v1/messages`.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Messages => "/v1/messages",
        }
    }

    /// Its name in messages: `OpenAI Chat Completions` or `Anthropic Messages`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Api::Chat => "OpenAI Chat Completions",
            Api::Messages => "Anthropic Messages",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a request or an answer cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TranslateError {
    /// The body is not what its API expects: not a JSON object, a required member missing, a
    /// member of the wrong type. `what` says which, in the gateway's words (never quoting the
    /// body).
    Invalid {
        /// What is wrong: `messages must be an array`.
        what: String,
    },
    /// The request uses a feature the other API cannot express.
    Untranslatable {
        /// The member or value at fault: `n`, `logprobs`, `tools[0].type`.
        feature: String,
        /// The API it cannot be translated to.
        to: Api,
    },
}

impl TranslateError {
    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        TranslateError::Invalid { what: what.into() }
    }

    pub(crate) fn untranslatable(feature: impl Into<String>, to: Api) -> Self {
        TranslateError::Untranslatable {
            feature: feature.into(),
            to,
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TranslateError::Invalid { what } => write!(f, "invalid request: {what}"),
            TranslateError::Untranslatable { feature, to } => write!(
                f,
                "`{feature}` cannot be translated to {to}, the upstream's API"
            ),
        }
    }
}

impl Error for TranslateError {}
