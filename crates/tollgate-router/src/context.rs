//! [`ContextWindows`]: how many tokens each model takes, input and output together.

use std::sync::Arc;

/// A table of model context windows, by model-name prefix (the longest matching prefix wins),
/// so that `gpt-4o-2024-08-06` finds `gpt-4o` and `gpt-4o-mini` its own entry.
///
/// [`ContextWindows::default`] holds the current OpenAI, Anthropic, Gemini and DeepSeek
/// models; [`with`](Self::with) adds or overrides entries.
///
/// # Examples
///
/// ```
/// use tollgate_router::ContextWindows;
///
/// let windows = ContextWindows::default().with("my-fine-tune", 16_384);
/// assert_eq!(windows.lookup("gpt-4o-2024-08-06"), Some(128_000));
/// assert_eq!(windows.lookup("gpt-4.1-mini"), Some(1_047_576));
/// assert_eq!(windows.lookup("claude-sonnet-4-5"), Some(200_000));
/// assert_eq!(windows.lookup("my-fine-tune"), Some(16_384));
/// assert_eq!(windows.lookup("unknown-model"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextWindows {
    /// `(prefix, tokens)`, longest prefix first.
    entries: Vec<(Arc<str>, u64)>,
}

/// The published context windows of current models, in tokens (input and output together).
const DEFAULTS: &[(&str, u64)] = &[
    // OpenAI
    ("gpt-3.5-turbo", 16_385),
    ("gpt-4-turbo", 128_000),
    ("gpt-4o", 128_000),
    ("gpt-4o-mini", 128_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
    // Anthropic: every current Claude model (the 1M-token beta is opt-in).
    ("claude-", 200_000),
    // Gemini
    ("gemini-1.5-flash", 1_048_576),
    ("gemini-1.5-pro", 2_097_152),
    ("gemini-2.0-flash", 1_048_576),
    ("gemini-2.5", 1_048_576),
    // DeepSeek
    ("deepseek-chat", 128_000),
    ("deepseek-reasoner", 128_000),
];

impl ContextWindows {
    /// An empty table: no model's window is known, so none is checked.
    pub fn empty() -> Self {
        ContextWindows {
            entries: Vec::new(),
        }
    }

    /// Adds (or replaces) the window of the models whose names start with `prefix`.
    #[must_use]
    pub fn with(mut self, prefix: &str, tokens: u64) -> Self {
        self.entries.retain(|(p, _)| &**p != prefix);
        self.entries.push((Arc::from(prefix), tokens));
        self.entries
            .sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self
    }

    /// The prefix whose entry `model` falls under (the longest that matches), if any: the
    /// model's family as the table knows it.
    pub fn family(&self, model: &str) -> Option<&str> {
        self.entry(model).map(|(prefix, _)| &**prefix)
    }

    /// The window of `model`, if a prefix in the table matches it.
    pub fn lookup(&self, model: &str) -> Option<u64> {
        self.entry(model).map(|&(_, tokens)| tokens)
    }

    /// Every prefix in the table, longest first.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|(prefix, _)| &**prefix)
    }

    /// The entry of the longest prefix of `model`.
    fn entry(&self, model: &str) -> Option<&(Arc<str>, u64)> {
        self.entries
            .iter()
            .find(|(prefix, _)| model.starts_with(&**prefix))
    }
}

impl Default for ContextWindows {
    fn default() -> Self {
        DEFAULTS
            .iter()
            .fold(ContextWindows::empty(), |table, &(prefix, tokens)| {
                table.with(prefix, tokens)
            })
    }
}
