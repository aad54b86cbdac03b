//! What the model "said": filler text of a given number of words (one word = one token).

const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
];

/// Streamed answers are cut into at most this many content frames.
const MAX_PIECES: u64 = 16;

/// A successful answer.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    /// Hex id suffix (`chatcmpl-…`, `msg_…`).
    pub(crate) id: String,
    pub(crate) model: String,
    /// Unix seconds.
    pub(crate) created: u64,
    pub(crate) input: u64,
    pub(crate) output: u64,
    /// The answer was cut by `max_tokens`.
    pub(crate) truncated: bool,
}

impl Answer {
    fn word(i: u64) -> &'static str {
        WORDS[(i % WORDS.len() as u64) as usize]
    }

    /// The whole text: `output` words.
    pub(crate) fn text(&self) -> String {
        self.range(0, self.output)
    }

    fn range(&self, from: u64, to: u64) -> String {
        let mut s = String::new();
        for i in from..to {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(Self::word(i));
        }
        s
    }

    /// The text cut into at least one and at most 16 pieces that concatenate to [`Answer::text`].
    pub(crate) fn pieces(&self) -> Vec<String> {
        if self.output == 0 {
            return Vec::new();
        }
        let n = self.output.min(MAX_PIECES);
        (0..n)
            .map(|k| self.range(self.output * k / n, self.output * (k + 1) / n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_text() {
        for output in [0, 1, 5, 16, 17, 100] {
            let a = Answer {
                id: "x".into(),
                model: "m".into(),
                created: 0,
                input: 1,
                output,
                truncated: false,
            };
            assert_eq!(a.pieces().concat(), a.text());
            assert_eq!(a.text().split_whitespace().count() as u64, output);
        }
    }
}
