//! An SDK interceptor that records every DynamoDB request with its start and end time, so tests
//! and benchmarks count requests and round trips instead of estimating them.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// One request: the operation name (`GetItem`, `TransactWriteItems`, …) and when it ran.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub operation: String,
    pub started: Instant,
    pub finished: Option<Instant>,
}

/// Records requests; clones share one log.
#[derive(Debug, Clone, Default)]
pub struct RequestRecorder {
    log: Arc<Mutex<Vec<RecordedRequest>>>,
}

#[derive(Debug, Clone, Copy)]
struct RequestIndex(usize);

impl Storable for RequestIndex {
    type Storer = StoreReplace<Self>;
}

impl RequestRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes and returns everything recorded so far.
    pub fn take(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|poison| poison.into_inner()))
    }

    /// Operation names recorded so far, in start order.
    pub fn operations(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .map(|request| request.operation.clone())
            .collect()
    }
}

/// Counts sequential round trips: requests that overlap in time count as one.
pub fn round_trips(requests: &[RecordedRequest]) -> usize {
    let mut spans: Vec<(Instant, Instant)> = requests
        .iter()
        .map(|request| (request.started, request.finished.unwrap_or(request.started)))
        .collect();
    spans.sort();
    let mut trips = 0;
    let mut current_end: Option<Instant> = None;
    for (start, end) in spans {
        match current_end {
            Some(open_until) if start <= open_until => current_end = Some(open_until.max(end)),
            _ => {
                trips += 1;
                current_end = Some(end);
            }
        }
    }
    trips
}

impl Intercept for RequestRecorder {
    fn name(&self) -> &'static str {
        "RequestRecorder"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|metadata| metadata.name().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let mut log = self.log.lock().unwrap_or_else(|poison| poison.into_inner());
        log.push(RecordedRequest {
            operation,
            started: Instant::now(),
            finished: None,
        });
        cfg.interceptor_state()
            .store_put(RequestIndex(log.len() - 1));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(RequestIndex(index)) = cfg.load::<RequestIndex>().copied() {
            let mut log = self.log.lock().unwrap_or_else(|poison| poison.into_inner());
            if let Some(request) = log.get_mut(index) {
                request.finished = Some(Instant::now());
            }
        }
        Ok(())
    }
}
