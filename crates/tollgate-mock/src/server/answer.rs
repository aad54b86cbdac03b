//! Step 11 of the pipeline: the answer, after the latency. Output tokens are charged to OTPM
//! (and Anthropic's TPM/TPD) and to the credit. A streamed answer carries the stream faults
//! drawn in step 10, which change only its body: the head is a 200, counted and charged as a
//! complete answer.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::header::CACHE_CONTROL;
use http::{HeaderValue, Response};
use tokio::time::Instant;

use super::faults::Draw;
use super::reply::Reply;
use super::request::{Api, Parsed};
use super::shared::{Admitted, InFlight, Shared};
use crate::answer::Answer;
use crate::body::{Ending, Guard, MockBody};
use crate::faults::{StreamEnd, StreamPlan};
use crate::stats::{Outcome, StreamFault};
use crate::{anthropic, openai};

/// Step 11: the answer to an admitted request, whole or streamed as it asked.
pub(super) async fn answer(
    reply: &Reply<'_>,
    api: Api,
    parsed: &Parsed,
    draw: Draw,
    slot: Admitted,
    in_flight: InFlight,
) -> Response<MockBody> {
    let answer = compose(reply, parsed);
    if parsed.stream {
        streamed(reply, api, parsed, &answer, draw, slot, in_flight).await
    } else {
        whole(reply, api, &answer, draw.latency, slot).await
    }
}

/// What the answer says: as many tokens as configured, cut at `max_tokens` or at what is left
/// of the context window.
fn compose(reply: &Reply<'_>, parsed: &Parsed) -> Answer {
    let config = &reply.shared.config;
    let completion = config.completion_tokens;
    let cap = match parsed.max_tokens {
        Some(m) => m,
        None => config.context_window - parsed.input,
    };
    let created = reply
        .shared
        .wall_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Answer {
        id: reply.request_id.trim_start_matches("req_").to_owned(),
        model: parsed.model.clone(),
        created,
        input: parsed.input,
        output: completion.min(cap),
        truncated: completion > cap,
    }
}

/// Charges a complete answer's tokens and counts its 200.
fn charge(shared: &Shared, answer: &Answer) {
    shared
        .quota
        .lock()
        .complete(Instant::now(), answer.input, answer.output);
    shared.record(Outcome::Status(200), answer.input, answer.output);
}

/// The whole answer, after the latency; the slot is released before the response is built.
async fn whole(
    reply: &Reply<'_>,
    api: Api,
    answer: &Answer,
    latency: Duration,
    slot: Admitted,
) -> Response<MockBody> {
    tokio::time::sleep(latency).await;
    charge(reply.shared, answer);
    let body = match api {
        Api::Chat => openai::completion(answer),
        Api::Messages => anthropic::message(answer),
    };
    drop(slot);
    reply.build(200, MockBody::full(body), "application/json", &[])
}

/// The streamed answer: half the latency before the headers, half spread over the frames. The
/// body holds the slot and the in-flight count until it ends.
async fn streamed(
    reply: &Reply<'_>,
    api: Api,
    parsed: &Parsed,
    answer: &Answer,
    draw: Draw,
    slot: Admitted,
    in_flight: InFlight,
) -> Response<MockBody> {
    let Draw { latency, plan } = draw;
    let first = latency / 2;
    tokio::time::sleep(first).await;
    charge(reply.shared, answer);
    let mut frames = match api {
        Api::Chat => openai::stream(answer, parsed.include_usage),
        Api::Messages => anthropic::stream(answer),
    };
    let interval = (latency - first) / u32::try_from(frames.len().max(1)).unwrap_or(u32::MAX);
    let ending = stream_end(reply.shared, api, &mut frames, &plan);
    if !plan.first_token_delay.is_zero() {
        reply
            .shared
            .recorder
            .lock()
            .stream_fault(StreamFault::Delayed);
    }
    let guards: Vec<Guard> = vec![Box::new(slot), Box::new(in_flight)];
    let body = MockBody::stream(frames, interval, guards)
        .with_first_delay(plan.first_token_delay)
        .with_ending(ending);
    let mut res = reply.build(200, body, "text/event-stream", &[]);
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// How the stream ends under `plan`: cleanly, or after N frames (never as far as the terminal
/// event) with a stall, an error event or a cut, counted.
fn stream_end(shared: &Shared, api: Api, frames: &mut Vec<Bytes>, plan: &StreamPlan) -> Ending {
    let Some((end, after)) = plan.end else {
        return Ending::Clean;
    };
    let keep = usize::try_from(after)
        .unwrap_or(usize::MAX)
        .min(frames.len() - 1);
    frames.truncate(keep);
    let (ending, counted) = match end {
        StreamEnd::Stall => (Ending::stall(shared.shutdown.clone()), StreamFault::Stalled),
        StreamEnd::Error => {
            frames.push(match api {
                Api::Chat => openai::stream_error(),
                Api::Messages => anthropic::stream_error(),
            });
            (Ending::Clean, StreamFault::Errored)
        }
        StreamEnd::Cut => (Ending::cut(), StreamFault::Cut),
    };
    shared.recorder.lock().stream_fault(counted);
    ending
}
