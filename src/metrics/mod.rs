//! Metrics: per-request records, streaming histograms, summaries and the
//! writers of `summary.json`, `requests.csv`, `timeseries.csv` and the
//! summary table. (Interface fixed; implementation in progress.)

use crate::units::Nanos;

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Prompt + output exceed the model's (or engine's) maximum context.
    ExceedsMaxModelLen,
    /// The request's KV cache can never fit in the replica's KV capacity.
    ExceedsKvCapacity,
}

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Rejected(RejectReason),
}

/// The life of one request, recorded when it finishes or is rejected.
/// Times are absolute simulated times; for rejected requests only
/// `arrival` and `finish` (the rejection time) are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: u64,
    pub client: u32,
    pub replica: u32,
    pub arrival: Nanos,
    /// First time a scheduler put the request in a batch.
    pub scheduled: Nanos,
    pub first_token: Nanos,
    pub finish: Nanos,
    pub prompt_tokens: u32,
    /// Tokens generated (equals the requested output tokens when finished).
    pub output_tokens: u32,
    pub preemptions: u32,
    pub outcome: Outcome,
}
