//! Counters and the per-second timeline.

use std::collections::{BTreeMap, VecDeque};

/// A snapshot of what the server has seen since it started ([`MockServer::stats`]).
///
/// [`MockServer::stats`]: crate::MockServer::stats
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MockStats {
    /// Requests received (every request, including 404s, rejections and faults).
    pub requests: u64,
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Answers with status 429 (rate limits, concurrency, `insufficient_quota` and the
    /// reverse-proxy limiter).
    pub rate_limited: u64,
    /// The reverse-proxy limiter's 429s (also counted in `rate_limited` and in `by_status`).
    pub proxy_limited: u64,
    /// Answers by status, successes included.
    pub by_status: BTreeMap<u16, u64>,
    /// Connections closed without a response by the reset fault.
    pub resets: u64,
    /// Requests never answered by the hang fault.
    pub hangs: u64,
    /// Streamed answers whose first event was delayed by the first-token-delay fault.
    ///
    /// This and the three stream-fault counters below count answers *given* the fault, when
    /// their 200 head is sent (a client that goes away before event N is counted all the same).
    /// Those answers are also counted in `ok`, `by_status` and the timeline's `ok` as 200s, with
    /// their input and output tokens, charged as for a complete answer.
    pub streams_delayed: u64,
    /// Streamed answers stalled after N events by the stream stall fault.
    pub streams_stalled: u64,
    /// Streamed answers ended by a mid-stream error event after N events.
    pub streams_errored: u64,
    /// Streamed answers whose connection was cut after N events.
    pub streams_cut: u64,
    /// Input (prompt) tokens of successful answers.
    pub input_tokens: u64,
    /// Output (completion) tokens of successful answers.
    pub output_tokens: u64,
    /// The most requests in flight at once (from the request's arrival to the end of its answer).
    pub max_in_flight: u64,
}

/// One second of the timeline ([`MockServer::timeline`]).
///
/// [`MockServer::timeline`]: crate::MockServer::timeline
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Seconds since the server started.
    pub second: u64,
    /// 2xx answers.
    pub ok: u64,
    /// 429 answers (the provider's and the reverse proxy's).
    pub rate_limited: u64,
    /// Other non-2xx answers, resets and hangs.
    pub errors: u64,
    /// Input + output tokens of the successful answers.
    pub tokens: u64,
}

/// At most this many seconds are kept (24 hours); older buckets are dropped.
pub(crate) const TIMELINE_CAP: usize = 86_400;

/// What happened to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Status(u16),
    /// The reverse proxy's 429.
    ProxyLimited,
    Reset,
    Hang,
}

/// A stream fault given to a streamed answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamFault {
    Delayed,
    Stalled,
    Errored,
    Cut,
}

#[derive(Debug, Default)]
pub(crate) struct Recorder {
    stats: MockStats,
    timeline: VecDeque<Bucket>,
}

impl Recorder {
    pub(crate) fn request(&mut self) {
        self.stats.requests += 1;
    }

    pub(crate) fn in_flight(&mut self, n: u64) {
        self.stats.max_in_flight = self.stats.max_in_flight.max(n);
    }

    pub(crate) fn outcome(&mut self, second: u64, outcome: Outcome, input: u64, output: u64) {
        let bucket = bucket(&mut self.timeline, second);
        match outcome {
            Outcome::Status(s) => count_status(&mut self.stats, bucket, s, input, output),
            Outcome::ProxyLimited => {
                // A 429 like any other, and counted apart as well.
                self.stats.proxy_limited += 1;
                count_status(&mut self.stats, bucket, 429, 0, 0);
            }
            Outcome::Reset | Outcome::Hang => {
                if outcome == Outcome::Reset {
                    self.stats.resets += 1;
                } else {
                    self.stats.hangs += 1;
                }
                if let Some(b) = bucket {
                    b.errors += 1;
                }
            }
        }
    }

    pub(crate) fn stream_fault(&mut self, fault: StreamFault) {
        let counter = match fault {
            StreamFault::Delayed => &mut self.stats.streams_delayed,
            StreamFault::Stalled => &mut self.stats.streams_stalled,
            StreamFault::Errored => &mut self.stats.streams_errored,
            StreamFault::Cut => &mut self.stats.streams_cut,
        };
        *counter += 1;
    }

    pub(crate) fn stats(&self) -> MockStats {
        self.stats.clone()
    }

    /// Buckets up to and including `now_second` (empty ones filled in).
    pub(crate) fn timeline(&self, now_second: u64) -> Vec<Bucket> {
        let mut out: Vec<Bucket> = self.timeline.iter().copied().collect();
        let next = out.last().map_or(0, |b| b.second + 1);
        let first = next.max((now_second + 1).saturating_sub(TIMELINE_CAP as u64));
        if first > next {
            out.clear();
        }
        out.extend((first..=now_second).map(|second| Bucket {
            second,
            ..Bucket::default()
        }));
        if out.len() > TIMELINE_CAP {
            out.drain(..out.len() - TIMELINE_CAP);
        }
        out
    }
}

/// Counts an answer with `status` in the totals and in its second's bucket (if still kept).
fn count_status(
    stats: &mut MockStats,
    bucket: Option<&mut Bucket>,
    status: u16,
    input: u64,
    output: u64,
) {
    *stats.by_status.entry(status).or_insert(0) += 1;
    if (200..300).contains(&status) {
        stats.ok += 1;
        stats.input_tokens += input;
        stats.output_tokens += output;
        if let Some(b) = bucket {
            b.ok += 1;
            b.tokens += input + output;
        }
    } else if status == 429 {
        stats.rate_limited += 1;
        if let Some(b) = bucket {
            b.rate_limited += 1;
        }
    } else if let Some(b) = bucket {
        b.errors += 1;
    }
}

/// The bucket for `second`, creating empty ones up to it; `None` if it is older than the cap.
fn bucket(timeline: &mut VecDeque<Bucket>, second: u64) -> Option<&mut Bucket> {
    let next = timeline.back().map_or(0, |b| b.second + 1);
    if second >= next {
        // Skip straight to the window that will be kept.
        let first = next.max((second + 1).saturating_sub(TIMELINE_CAP as u64));
        if first > next {
            timeline.clear();
        }
        for s in first..=second {
            timeline.push_back(Bucket {
                second: s,
                ..Bucket::default()
            });
        }
        while timeline.len() > TIMELINE_CAP {
            timeline.pop_front();
        }
    }
    let front = timeline.front()?.second;
    let idx = usize::try_from(second.checked_sub(front)?).ok()?;
    timeline.get_mut(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_fills_gaps_and_stays_bounded() {
        let mut r = Recorder::default();
        r.outcome(0, Outcome::Status(200), 3, 4);
        r.outcome(2, Outcome::Status(429), 0, 0);
        r.outcome(2, Outcome::Hang, 0, 0);
        r.outcome(3, Outcome::ProxyLimited, 0, 0);
        let t = r.timeline(3);
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].tokens, 7);
        assert_eq!((t[2].rate_limited, t[2].errors), (1, 1));
        assert_eq!((t[3].rate_limited, t[3].errors), (1, 0));
        let stats = r.stats();
        assert_eq!((stats.rate_limited, stats.proxy_limited), (2, 1));
        assert_eq!(stats.by_status[&429], 2);
        r.outcome(1_000_000, Outcome::Status(200), 0, 0);
        assert_eq!(r.timeline.len(), TIMELINE_CAP);
        assert_eq!(r.timeline.back().unwrap().second, 1_000_000);
        // Too old to keep: counted in stats, not in the timeline.
        r.outcome(5, Outcome::Status(500), 0, 0);
        assert_eq!(r.stats().by_status[&500], 1);
        assert_eq!(r.timeline(1_000_000).len(), TIMELINE_CAP);
    }
}
