//! [`handle`]: one request through the pipeline, one function per step, in the order the
//! [module docs](super) give. The steps that read the request are here: route (1), body (2)
//! and parse (6); the refusals are in `admission`, the fault in `faults`, the answer in
//! `answer`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use super::MAX_BODY_BYTES;
use super::reply::Reply;
use super::request::{Api, Parsed, parse};
use super::shared::{InFlight, Shared};
use super::{admission, answer, faults};
use crate::body::{ConnectionReset, MockBody};
use crate::config::Flavor;

/// Why the pipeline stopped before its answer: a response to send, or a connection to cut.
pub(super) enum Stop {
    /// A refusal, an error status or an outage's; boxed, so that every step's `Result` stays
    /// small and only a stopped request pays for it.
    Reply(Box<Response<MockBody>>),
    /// The client went away, or a fault resets the connection.
    Reset,
}

impl From<Response<MockBody>> for Stop {
    fn from(res: Response<MockBody>) -> Self {
        Stop::Reply(Box::new(res))
    }
}

/// Serves one request: counts it in flight, gives it an id, and runs the pipeline.
pub(super) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, ConnectionReset> {
    let in_flight = InFlight::enter(&shared);
    let reply = Reply::new(&shared);
    match pipeline(&shared, &reply, req, in_flight).await {
        Ok(res) => Ok(res),
        Err(Stop::Reply(res)) => Ok(*res),
        Err(Stop::Reset) => Err(ConnectionReset),
    }
}

/// The steps, in order; each one either lets the request through or stops it.
async fn pipeline(
    shared: &Arc<Shared>,
    reply: &Reply<'_>,
    req: Request<Incoming>,
    in_flight: InFlight,
) -> Result<Response<MockBody>, Stop> {
    let api = route(reply, req.method(), req.uri().path())?;
    let (headers, bytes) = read_body(reply, req).await?;
    admission::proxy(reply, &headers)?;
    admission::authenticate(reply, &headers)?;
    admission::outage(reply)?;
    let parsed = parse_body(reply, api, &bytes)?;
    admission::credit(reply)?;
    admission::context_window(reply, &parsed)?;
    let slot = admission::admit(shared, reply, &parsed)?;
    let draw = faults::draw(reply, parsed.stream).await?;
    Ok(answer::answer(reply, api, &parsed, draw, slot, in_flight).await)
}

/// Step 1: the API a method and path name; 404 for any other.
fn route(reply: &Reply<'_>, method: &Method, path: &str) -> Result<Api, Stop> {
    match (method, path) {
        (&Method::POST, "/v1/chat/completions") => Ok(Api::Chat),
        (&Method::POST, "/v1/messages") => Ok(Api::Messages),
        (method, path) => {
            let message = match reply.flavor() {
                Flavor::OpenAi => format!("Invalid URL ({method} {path})"),
                Flavor::Anthropic => "Not Found".to_owned(),
            };
            Err(reply.invalid_request(404, &message).into())
        }
    }
}

/// Step 2: the headers and the whole body, at most [`MAX_BODY_BYTES`]: 413 above (as declared
/// or as read), and a reset when the client goes away mid-body.
async fn read_body(reply: &Reply<'_>, req: Request<Incoming>) -> Result<(HeaderMap, Bytes), Stop> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = "Request exceeds the maximum allowed number of bytes.";
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(reply.invalid_request(413, too_large).into());
    }
    let (parts, body) = req.into_parts();
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => Ok((parts.headers, c.to_bytes())),
        Err(e) if e.is::<LengthLimitError>() => Err(reply.invalid_request(413, too_large).into()),
        // The client went away mid-body.
        Err(_) => Err(Stop::Reset),
    }
}

/// Step 6: what matters in the JSON body; 400 when it is not what the API takes.
fn parse_body(reply: &Reply<'_>, api: Api, bytes: &[u8]) -> Result<Parsed, Stop> {
    parse(api, reply.flavor(), bytes).map_err(|message| reply.invalid_request(400, &message).into())
}
