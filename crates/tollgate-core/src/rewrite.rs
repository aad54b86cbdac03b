//! [`Rewrite`]: how a request is changed before it goes to one target — its model, endpoint,
//! credentials.
//!
//! The trait lives here so that every layer that sends to several targets (a fallback's
//! targets, a router's deployments) takes the same rewriters without depending on one another.
//! Any closure `Fn(&mut http::Request<BufferedBody>) -> Result<(), BoxError>` is one. The
//! concrete rewriters for provider APIs — the JSON body's `model`, the endpoint, the
//! credentials, streamed usage — live in `tollgate-providers` (`tollgate_providers::rewrite`).
//!
//! # Examples
//!
//! ```
//! use http::HeaderValue;
//! use tollgate_core::BoxError;
//! use tollgate_core::body::BufferedBody;
//! use tollgate_core::rewrite::Rewrite;
//!
//! // A closure is a rewriter: this one tags each request.
//! let tag = |request: &mut http::Request<BufferedBody>| -> Result<(), BoxError> {
//!     request.headers_mut().insert("x-tenant", HeaderValue::from_static("blue"));
//!     Ok(())
//! };
//! let mut request = http::Request::new(BufferedBody::empty());
//! tag.rewrite(&mut request)?;
//! assert_eq!(request.headers()["x-tenant"], "blue");
//! # Ok::<(), BoxError>(())
//! ```

use crate::BoxError;
use crate::body::BufferedBody;

/// Changes a request before it goes to one target.
pub trait Rewrite: Send + Sync + 'static {
    /// Rewrites `request` in place.
    ///
    /// # Errors
    ///
    /// When the request cannot be sent to this target (a body that is not the JSON expected);
    /// the layer that sends it then does not send it there (a fallback moves on and lists the
    /// error).
    fn rewrite(&self, request: &mut http::Request<BufferedBody>) -> Result<(), BoxError>;
}

impl<F> Rewrite for F
where
    F: Fn(&mut http::Request<BufferedBody>) -> Result<(), BoxError> + Send + Sync + 'static,
{
    fn rewrite(&self, request: &mut http::Request<BufferedBody>) -> Result<(), BoxError> {
        self(request)
    }
}
