//! [`Rng`]: the random source for jitter, injectable so tests pin it.

use std::fmt;
use std::hash::{BuildHasher, RandomState};

/// A source of random draws in `[0, 1)` for the backoff's jitter and the server delays'
/// [`Spread`](crate::Spread).
pub trait Rng {
    /// The next draw.
    fn next_f64(&mut self) -> f64;
}

/// The default source: xorshift64*, seeded from std's per-process random hasher keys. Fast,
/// not cryptographic (jitter needs neither).
#[derive(Clone)]
pub struct HasherRng {
    state: u64,
}

impl Default for HasherRng {
    fn default() -> Self {
        let seed = RandomState::new().hash_one(0x7011_6a7e_u64) | 1;
        HasherRng { state: seed }
    }
}

impl fmt::Debug for HasherRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HasherRng").finish_non_exhaustive()
    }
}

impl Rng for HasherRng {
    fn next_f64(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let bits = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        bits as f64 / (1u64 << 53) as f64
    }
}

/// A source from a closure; see [`rng_fn`].
#[derive(Clone, Copy)]
pub struct RngFn<F> {
    f: F,
}

/// An [`Rng`] from a closure, such as a fixed draw for tests.
///
/// # Examples
///
/// ```
/// use tollgate_retry::{Rng, rng_fn};
///
/// let mut half = rng_fn(|| 0.5);
/// assert_eq!(half.next_f64(), 0.5);
/// ```
pub const fn rng_fn<F: FnMut() -> f64>(f: F) -> RngFn<F> {
    RngFn { f }
}

impl<F> fmt::Debug for RngFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RngFn").finish_non_exhaustive()
    }
}

impl<F: FnMut() -> f64> Rng for RngFn<F> {
    fn next_f64(&mut self) -> f64 {
        (self.f)()
    }
}
