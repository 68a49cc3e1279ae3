//! Workloads: where requests come from. Synthetic arrival processes and
//! length distributions, and readers for public traces, behind one
//! [`RequestSource`] interface that yields requests in arrival order.
//! (Interface fixed; implementation in progress.)

use crate::units::Nanos;

/// One request as the workload defines it, before any simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSpec {
    /// 0, 1, 2, ... in arrival order.
    pub id: u64,
    /// Arrival time since the start of the run.
    pub arrival: Nanos,
    /// Prompt (context) tokens, ≥ 1.
    pub prompt_tokens: u32,
    /// Tokens to generate, ≥ 1 (the first comes from the prefill).
    pub output_tokens: u32,
    /// Client / tenant id (0 when the workload has none).
    pub client: u32,
}
