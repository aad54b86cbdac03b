#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
pub mod error;
mod link;
mod plan;
mod store;
mod view;

pub use config::{RedisConfig, URL_SCHEMES, Unavailable};
pub use link::Mode;
pub use store::{AdmitFuture, RedisStats, RedisStore};
