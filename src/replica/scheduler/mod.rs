//! Replica schedulers: the policy that forms each iteration's batch from a
//! replica's waiting queue and running set. Each policy is one file; adding
//! one touches its file and the registry in [`build`].

mod sarathi;
mod vllm;

pub use sarathi::Sarathi;
pub use vllm::Vllm;

use super::state::ReplicaState;
use crate::units::Nanos;

/// Scenario names of the schedulers (`scheduler.kind`).
pub const NAMES: &[&str] = &["vllm", "sarathi"];

/// Forms the next batch by calling the [`ReplicaState`] operations (admit,
/// add chunk, decode step, preempt). Leaving the batch empty idles the
/// replica until the next arrival.
pub trait Scheduler: Send {
    fn schedule(&mut self, state: &mut ReplicaState, now: Nanos);
}

/// Batch limits shared by the policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most sequences in a batch (vLLM `max_num_seqs`).
    pub max_num_seqs: u32,
    /// Most tokens in a batch (vLLM `max_num_batched_tokens`; Sarathi's chunk budget).
    pub token_budget: u32,
}

/// Builds the scheduler called `kind` (validated beforehand).
pub fn build(kind: &str, limits: Limits) -> Box<dyn Scheduler> {
    match kind {
        "vllm" => Box::new(Vllm::new(limits)),
        "sarathi" => Box::new(Sarathi::new(limits)),
        other => unreachable!("scheduler `{other}` passed validation"),
    }
}
