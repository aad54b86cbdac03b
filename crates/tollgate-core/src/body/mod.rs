//! Buffering a request body once so later layers can read and replay it.
//!
//! Retry, fallback and token estimation must see a request's bytes, and retry and fallback must
//! send them more than once. The first layer that needs them calls [`buffer_request`], which
//! collects the body into one [`Bytes`] up to a limit ([`DEFAULT_BODY_LIMIT`], 32 MiB, by
//! default) and returns a `Request<`[`BufferedBody`]`>`. A `BufferedBody` is cheap to clone
//! (reference-counted), and buffering one again is free: its single chunk is handed back without
//! copying. Above the limit the request fails with [`BodyTooLarge`]; nothing is truncated.
//! As a layer, [`BufferBodyLayer`] does the same for every request before the service below
//! it, so retry and fallback underneath can clone requests freely.
//!
//! # Examples
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tollgate_core::body::{buffer_request, BodyTooLarge};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let request = http::Request::new(Full::new(Bytes::from_static(br#"{"model":"gpt-4o"}"#)));
//! let buffered = buffer_request(request, 1024).await.unwrap();
//! assert_eq!(buffered.body().bytes(), &Bytes::from_static(br#"{"model":"gpt-4o"}"#));
//!
//! // A second attempt is a clone, not a second read.
//! let again = buffered.clone();
//! assert_eq!(again.body().len(), 18);
//!
//! let too_big = http::Request::new(Full::new(Bytes::from(vec![b'x'; 2048])));
//! let err = buffer_request(too_big, 1024).await.unwrap_err();
//! assert_eq!(err.downcast_ref::<BodyTooLarge>().unwrap().limit(), 1024);
//! # }
//! ```

// Only for the link in the docs above.
#[cfg(doc)]
use bytes::Bytes;

mod buffer;
mod buffered;
mod error;
mod layer;

pub use buffer::{BufferFuture, DEFAULT_BODY_LIMIT, buffer_request};
pub use buffered::BufferedBody;
pub use error::BodyTooLarge;
pub use layer::{BufferBody, BufferBodyFuture, BufferBodyLayer};
