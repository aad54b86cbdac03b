//! [`poll_sleep`]: one boxed tokio `Sleep` per future, re-armed rather than re-allocated, for
//! the layers whose futures wait on a moving deadline (a quota's next admission, a time limit).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// Polls `sleep` until `deadline`: created at the first wait, reset (not re-allocated) when the
/// deadline moves. `Ready` once the deadline has passed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use tollgate_core::timer::poll_sleep;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut sleep = None;
/// let deadline = Instant::now() + Duration::from_secs(3);
/// std::future::poll_fn(|cx| poll_sleep(&mut sleep, deadline, cx)).await;
/// assert!(Instant::now() >= deadline);
/// assert!(sleep.is_some(), "kept for the next wait");
/// # }
/// ```
pub fn poll_sleep(
    sleep: &mut Option<Pin<Box<Sleep>>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> Poll<()> {
    match sleep {
        Some(sleep) => {
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            sleep.as_mut().poll(cx)
        }
        None => sleep
            .insert(Box::pin(tokio::time::sleep_until(deadline)))
            .as_mut()
            .poll(cx),
    }
}
