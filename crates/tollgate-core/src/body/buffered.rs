//! [`BufferedBody`]: a request body held in memory, cheap to clone, replayable.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::json::Outline;

/// A request body held in memory: one [`Bytes`], cheap to clone, replayable.
///
/// As an [`http_body::Body`] it yields its bytes as one frame (none when empty) and never fails.
///
/// Its bytes never change, so it keeps what one reader learnt of them for the next: the
/// [`outline`](Self::outline) of a JSON object, scanned once however many layers read it.
#[derive(Default)]
pub struct BufferedBody {
    bytes: Bytes,
    /// Set once the bytes have been yielded as a frame.
    done: bool,
    /// The bytes' outline, once asked for (`None` inside: no outline).
    outline: OnceLock<Option<Arc<Outline>>>,
}

impl BufferedBody {
    /// A body of these bytes.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        BufferedBody {
            bytes: bytes.into(),
            done: false,
            outline: OnceLock::new(),
        }
    }

    /// An empty body.
    pub const fn empty() -> Self {
        BufferedBody {
            bytes: Bytes::new(),
            done: false,
            outline: OnceLock::new(),
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The top-level members of the JSON object the bytes hold ([`Outline::scan`]), scanned on
    /// the first call and kept (by this body, not by its clones); `None` when the bytes are no
    /// JSON object or it has no outline.
    ///
    /// For a reader that scans the whole body anyway and precedes others (a rewriter): it pays
    /// one allocation to keep what it learns. A reader that usually comes last takes
    /// [`kept_outline`](Self::kept_outline) and scans by itself when there is none.
    pub fn outline(&self) -> Option<&Outline> {
        self.outline
            .get_or_init(|| {
                // Scanned where it is kept: no copy of its members.
                let mut outline = Arc::new(Outline::EMPTY);
                let fresh = Arc::get_mut(&mut outline)?;
                matches!(fresh.fill(&self.bytes), Ok(true)).then_some(outline)
            })
            .as_deref()
    }

    /// The outline an earlier reader had scanned ([`outline`](Self::outline)), if any; never
    /// scans.
    pub fn kept_outline(&self) -> Option<&Outline> {
        self.outline.get().and_then(Option::as_deref)
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl fmt::Debug for BufferedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies can hold prompts and secrets: show the size only.
        f.debug_struct("BufferedBody")
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Clone for BufferedBody {
    /// The same bytes, shared; not the outline. Retry and fallback keep a copy of each
    /// request for an attempt that is rarely made: carrying the outline would cost every copy a
    /// check and a counter, and a copy that is sent scans again when asked.
    #[inline]
    fn clone(&self) -> Self {
        BufferedBody {
            bytes: self.bytes.clone(),
            done: self.done,
            outline: OnceLock::new(),
        }
    }
}

impl PartialEq for BufferedBody {
    /// Equal bytes, both yielded or neither (what was learnt of them aside).
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes && self.done == other.done
    }
}

impl Eq for BufferedBody {}

impl AsRef<[u8]> for BufferedBody {
    /// The whole body, for readers such as token estimators.
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<Bytes> for BufferedBody {
    fn from(bytes: Bytes) -> Self {
        BufferedBody::new(bytes)
    }
}

impl From<Vec<u8>> for BufferedBody {
    fn from(bytes: Vec<u8>) -> Self {
        BufferedBody::new(bytes)
    }
}

impl From<String> for BufferedBody {
    fn from(text: String) -> Self {
        BufferedBody::new(text)
    }
}

impl From<&'static str> for BufferedBody {
    fn from(text: &'static str) -> Self {
        BufferedBody::new(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for BufferedBody {
    fn from(bytes: &'static [u8]) -> Self {
        BufferedBody::new(Bytes::from_static(bytes))
    }
}

impl Body for BufferedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done || this.bytes.is_empty() {
            this.done = true;
            return Poll::Ready(None);
        }
        this.done = true;
        Poll::Ready(Some(Ok(Frame::data(this.bytes.clone()))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.bytes.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            SizeHint::with_exact(0)
        } else {
            SizeHint::with_exact(self.bytes.len() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn buffered_body_replays_from_clones() {
        let body = BufferedBody::from("xyz");
        let first = body.clone().collect().await.unwrap().to_bytes();
        let second = body.collect().await.unwrap().to_bytes();
        assert_eq!(first, second);
    }
}
