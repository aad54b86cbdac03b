//! tollgate: composable tower layers for calling rate-limited LLM APIs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use tollgate_core as core;
