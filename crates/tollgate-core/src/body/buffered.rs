//! [`BufferedBody`]: a request body held in memory, cheap to clone, replayable.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use once_cell::race::OnceBox;

use crate::json::Outline;

/// A request body held in memory: one [`Bytes`], cheap to clone, replayable.
///
/// As an [`http_body::Body`] it yields its bytes as one frame (none when empty) and never fails;
/// it hands them over as it yields them, so a body that was read is empty (its clones made
/// before keep them: that is how a request is replayed).
///
/// Its bytes never change, so it keeps what one reader learnt of them for the next: the
/// [`outline`](Self::outline) of a JSON object, scanned once however many layers read it.
#[derive(Default)]
pub struct BufferedBody {
    /// The bytes not yet yielded as a frame.
    bytes: Bytes,
    /// The bytes' outline, once asked for (`None` inside: no outline). One pointer wide: every
    /// move of a request moves its body.
    outline: OnceBox<Option<Outline>>,
}

impl BufferedBody {
    /// A body of these bytes.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        BufferedBody {
            bytes: bytes.into(),
            outline: OnceBox::new(),
        }
    }

    /// An empty body.
    pub const fn empty() -> Self {
        BufferedBody {
            bytes: Bytes::new(),
            outline: OnceBox::new(),
        }
    }

    /// The bytes (none once the body has been read).
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
                let mut outline = Box::new(Some(Outline::EMPTY));
                if let Some(fresh) = outline.as_mut()
                    && !matches!(fresh.fill(&self.bytes), Ok(true))
                {
                    *outline = None;
                }
                outline
            })
            .as_ref()
    }

    /// The outline an earlier reader had scanned ([`outline`](Self::outline)), if any; never
    /// scans.
    pub fn kept_outline(&self) -> Option<&Outline> {
        self.outline.get().and_then(Option::as_ref)
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes, by value (none once the body has been read).
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
            outline: OnceBox::new(),
        }
    }
}

impl PartialEq for BufferedBody {
    /// Equal bytes (what was learnt of them aside).
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
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
        if this.bytes.is_empty() {
            return Poll::Ready(None);
        }
        // The outline describes bytes this body no longer holds.
        this.outline = OnceBox::new();
        Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut this.bytes)))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.len() as u64)
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

    #[tokio::test]
    async fn a_read_body_is_empty_and_forgets_its_outline() {
        let mut body = BufferedBody::from(r#"{"model":"m"}"#);
        let copy = body.clone();
        assert_eq!(
            body.outline().map(|outline| outline.members().len()),
            Some(1)
        );
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), r#"{"model":"m"}"#);
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(body.bytes().is_empty());
        assert!(body.kept_outline().is_none());
        assert!(body.outline().is_none(), "an empty body is no JSON object");
        assert!(body.frame().await.is_none());
        // A copy made before keeps the bytes.
        assert_eq!(copy.bytes(), r#"{"model":"m"}"#);
        assert_ne!(copy, body);
    }

    #[test]
    fn a_body_is_as_small_as_its_bytes_and_a_pointer() {
        assert_eq!(
            std::mem::size_of::<BufferedBody>(),
            std::mem::size_of::<Bytes>() + std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn an_outline_is_kept_once_asked_for() {
        let body = BufferedBody::from(r#"{"a":1,"b":"x"}"#);
        assert!(body.kept_outline().is_none());
        let first = body.outline().unwrap() as *const Outline;
        assert_eq!(body.kept_outline().unwrap() as *const Outline, first);
        assert!(body.clone().kept_outline().is_none());
        assert!(BufferedBody::from("[1]").outline().is_none());
    }
}
