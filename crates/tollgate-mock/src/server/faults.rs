//! Step 10 of the pipeline: the fault and latency draw (see [`crate::faults`]), and the fault's
//! effect. Quota is already consumed, as providers count failed requests.

use std::time::Duration;

use super::connection::stopped;
use super::handler::Stop;
use super::reply::Reply;
use super::shared::Shared;
use crate::faults::{Fault, StreamPlan, draw_fault, draw_stream_faults, sample_latency};
use crate::stats::Outcome;

/// What the draw left to a request it let through.
pub(super) struct Draw {
    /// How long the answer takes.
    pub(super) latency: Duration,
    /// A streamed answer's faults; none for a whole one.
    pub(super) plan: StreamPlan,
}

/// Step 10: draws, then acts on the fault: a reset cuts the connection, a hang holds it until
/// shutdown and then cuts it, and an error status is sent after the latency.
pub(super) async fn draw(reply: &Reply<'_>, stream: bool) -> Result<Draw, Stop> {
    let shared = reply.shared;
    let (fault, draw) = draw_locked(shared, stream);
    match fault {
        Some(Fault::Reset) => {
            shared.record(Outcome::Reset, 0, 0);
            Err(Stop::Reset)
        }
        Some(Fault::Hang) => {
            shared.record(Outcome::Hang, 0, 0);
            stopped(&mut shared.shutdown.clone()).await;
            Err(Stop::Reset)
        }
        Some(Fault::Status(status)) => {
            tokio::time::sleep(draw.latency).await;
            Err(reply.status_error(status).into())
        }
        None => Ok(draw),
    }
}

/// The fault and latency, one locked draw; then the stream faults of a streamed answer that
/// no fault stops.
fn draw_locked(shared: &Shared, stream: bool) -> (Option<Fault>, Draw) {
    let mut rng = shared.rng.lock();
    let fault = draw_fault(&shared.config.faults, &mut rng);
    let latency = sample_latency(&shared.config.latency, &mut rng);
    let plan = if fault.is_none() && stream {
        draw_stream_faults(&shared.config.faults.stream, &mut rng)
    } else {
        StreamPlan::default()
    };
    (fault, Draw { latency, plan })
}
