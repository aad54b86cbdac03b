//! Registered metric handles, kept per label set: a request's metrics are recorded through
//! handles found in a map, not built (name, labels, hash) anew for each request.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, SharedString};
use parking_lot::Mutex;

/// The labels of a request's metrics.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct RequestLabels {
    pub(crate) route: SharedString,
    pub(crate) outcome: &'static str,
    pub(crate) status: SharedString,
    pub(crate) attempts: SharedString,
    pub(crate) hops: SharedString,
}

/// The handles of one label set.
#[derive(Clone)]
pub(crate) struct Handles {
    pub(crate) http_duration: Histogram,
    pub(crate) operation_duration: Histogram,
    pub(crate) requests: Counter,
}

/// At most this many label sets are kept; beyond, handles are registered for each request.
const MAX_ENTRIES: usize = 4_096;

pub(crate) struct HandleCache {
    provider: SharedString,
    map: Mutex<HashMap<RequestLabels, Handles, RandomState>>,
}

impl HandleCache {
    pub(crate) fn new(provider: SharedString) -> Self {
        HandleCache {
            provider,
            map: Mutex::new(HashMap::default()),
        }
    }

    /// The handles for `labels`, registered with the recorder current the first time.
    pub(crate) fn get(&self, labels: &RequestLabels) -> Handles {
        if let Some(handles) = self.map.lock().get(labels) {
            return handles.clone();
        }
        let handles = self.register(labels);
        let mut map = self.map.lock();
        if map.len() < MAX_ENTRIES {
            map.insert(labels.clone(), handles.clone());
        }
        handles
    }

    fn register(&self, labels: &RequestLabels) -> Handles {
        static METADATA: Metadata<'static> =
            Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
        let provider = || Label::new("provider", self.provider.clone());
        let route = || Label::new("route", labels.route.clone());
        let http = Key::from_parts(
            "http.client.request.duration",
            vec![
                provider(),
                route(),
                Label::new("http.response.status_code", labels.status.clone()),
                Label::from_static_parts("error.type", labels.outcome),
            ],
        );
        let operation = Key::from_parts(
            "gen_ai.client.operation.duration",
            vec![
                Label::new("gen_ai.system", self.provider.clone()),
                route(),
                Label::from_static_parts("error.type", labels.outcome),
            ],
        );
        let requests = Key::from_parts(
            "tollgate_requests_total",
            vec![
                provider(),
                route(),
                Label::from_static_parts("outcome", labels.outcome),
                Label::new("status", labels.status.clone()),
                Label::new("attempts", labels.attempts.clone()),
                Label::new("hops", labels.hops.clone()),
            ],
        );
        metrics::with_recorder(|recorder| Handles {
            http_duration: recorder.register_histogram(&http, &METADATA),
            operation_duration: recorder.register_histogram(&operation, &METADATA),
            requests: recorder.register_counter(&requests, &METADATA),
        })
    }
}
