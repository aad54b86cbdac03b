//! [`Store`]: where quota state lives. [`MemoryStore`] keeps it in this process.
//!
//! The layer decides *who* may try next (its fair waiting queue is local); the store decides
//! *whether* a cost fits, and spends it, all or nothing and atomically. That split is the seam
//! for a shared store: a Redis store runs [`Store::admit`] as one script, one round trip per
//! admission, so a fleet of gateways draws from one provider account. Feedback
//! ([`Store::feedback`]) is fire-and-forget: a remote store may apply it in the background.
//!
//! `now` is the time since the layer's origin, read from tokio's clock by the layer; a store
//! never reads a clock of its own, so tests on a paused clock are exact. (A store shared between
//! processes must translate it to a clock they share.)

mod any;
mod entry;
mod memory;
mod quota_decision;
mod store_trait;

pub use any::{AnyAdmit, AnyStore};
pub use memory::MemoryStore;
pub use quota_decision::{Feedback, Outlook, QuotaDecision};
pub use store_trait::Store;
