//! [`BodyTooLarge`]: the error of a request body above the buffering limit.

use std::fmt;

/// A request body was larger than the buffering limit.
///
/// # Examples
///
/// ```
/// # use tollgate_core::body::BodyTooLarge;
/// # fn show(err: &BodyTooLarge) {
/// println!("{err}"); // "request body too large; limit is 1024 bytes"
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyTooLarge {
    pub(super) limit: usize,
}

impl BodyTooLarge {
    /// The limit that was exceeded, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request body too large; limit is {} bytes", self.limit)
    }
}

impl std::error::Error for BodyTooLarge {}
