//! Replica schedulers: the policy that forms each iteration's batch from a
//! replica's waiting queue and running set. Each policy is one file; adding
//! one touches its file and its entry in `builtin` (name, defaults,
//! constructor; see [`crate::registry`]). A library user registers their
//! own with [`crate::registry::Registry::register_scheduler`].
//!
//! | `scheduler.kind` | policy | file |
//! |---|---|---|
//! | `vllm` | vLLM v0: prefills first, whole prompts | `vllm.rs` |
//! | `sarathi` | decode-first chunked prefill in a token budget, blocks for the whole prompt at admission | `chunked.rs` |
//! | `vllm-v1` | vLLM V1: running first in one token budget, blocks allocated per chunk, recompute only, prompt blocks cached as chunks complete | `vllm_v1.rs` |
//! | `orca` | iteration-level batching, max length reserved | `orca.rs` |
//! | `fastertransformer` | static request-level batching | `fastertransformer.rs` |
//! | `lightllm` | admission by estimated future KV use | `lightllm.rs` |
//! | `sglang` | SGLang: prefill-first unmixed batches, admission reserving future decode tokens (`new_token_ratio`), retraction, longest cached prefix first | `sglang.rs` |
//! | `laps` | short prefills ahead of long ones | `laps.rs` |
//! | `vtc` | Virtual Token Counter fairness | `vtc.rs` |
//!
//! Options that apply across policies: priorities (`scheduler.priority`:
//! admission by class, least urgent preempted first), swap preemption and
//! FastSwitch (in `replica::swap` and the replica state).

mod chunked;
mod fastertransformer;
mod laps;
mod lightllm;
mod orca;
mod sglang;
mod vllm;
mod vllm_v1;
mod vtc;

pub(crate) use chunked::Chunked;
pub(crate) use fastertransformer::FasterTransformer;
pub(crate) use laps::Laps;
pub(crate) use lightllm::LightLlm;
pub use lightllm::OutputEstimate;
pub(crate) use orca::Orca;
pub(crate) use sglang::Sglang;
pub(crate) use vllm::Vllm;
pub(crate) use vllm_v1::VllmV1;
pub(crate) use vtc::Vtc;

use super::state::{ReplicaState, RequestView, Slot};
use crate::registry::{Batching, Caching, DefaultBudget, KvLayout, SchedulerSpec};
use crate::scenario::engine_profile::{SGLANG, VLLM_V1};
use crate::units::Nanos;

/// Forms the next batch by calling the [`ReplicaState`] operations (admit,
/// add chunk, decode step, preempt, resume). Leaving the batch empty idles
/// the replica until the next arrival (or the time it asked to wait for).
pub trait Scheduler: Send {
    fn schedule(&mut self, state: &mut ReplicaState, now: Nanos);

    /// The waiting-queue indexes this policy reads: the first waiting
    /// request of a client ([`ReplicaState::waiting_of_client`]) and of the
    /// most urgent class ([`ReplicaState::waiting_by_priority`]). An index
    /// left out is not kept — arrivals and admissions touch less memory —
    /// and its question is answered by a scan of the queue instead, with
    /// the same answer. The default keeps both.
    fn waiting_indexes(&self) -> WaitIndexes {
        WaitIndexes::BOTH
    }
}

/// Which indexes the waiting queue keeps beside its arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitIndexes {
    /// The first waiting request of each client, in O(1).
    pub by_client: bool,
    /// The first waiting request of the most urgent class, in O(classes).
    pub by_priority: bool,
}

impl WaitIndexes {
    pub const BOTH: WaitIndexes = WaitIndexes {
        by_client: true,
        by_priority: true,
    };

    /// What a policy that admits in arrival order (or by priority class
    /// with `scheduler.priority`) reads.
    pub fn for_policy(p: &Policy) -> WaitIndexes {
        WaitIndexes {
            by_client: false,
            by_priority: p.priority,
        }
    }
}

/// Batch limits shared by the policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most sequences in a batch (vLLM `max_num_seqs`).
    pub max_num_seqs: u32,
    /// Most tokens in a batch (vLLM `max_num_batched_tokens`; the chunk budget of chunked policies).
    pub token_budget: u32,
}

/// Everything a policy may be configured with (resolved from the scenario).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The scheduler's name (`scheduler.kind`).
    pub kind: String,
    pub limits: Limits,
    /// Admission by priority class instead of arrival order.
    pub priority: bool,
    /// Waiting requests a non-FCFS choice looks at.
    pub window: usize,
    pub max_model_len: u32,
    /// `workload.max_tokens` (0 = none): what a client asks for at most.
    pub max_tokens: u32,
    pub laps_threshold: u32,
    pub laps_window: Nanos,
    /// lightllm: the output length admission assumes.
    pub output_estimate: OutputEstimate,
    pub vtc_weights: (f64, f64),
}

/// The built-in schedulers, in the order help texts list them (see
/// [`crate::registry`]): each one's name, defaults and constructor.
pub(crate) fn builtin() -> Vec<SchedulerSpec> {
    // vLLM V1's default budget for online serving (EngineArgs, 8192);
    // SGLang's default chunked_prefill_size is the same.
    let v1_budget = Batching::Chunked(DefaultBudget::Tokens(8192));
    vec![
        SchedulerSpec::new("vllm", "vLLM v0: prefills first, whole prompts", |p| {
            Box::new(Vllm::new(p.clone()))
        })
        .batching(Batching::WholePrompt),
        SchedulerSpec::new(
            "sarathi",
            "Sarathi-Serve: decode-first chunked prefill in a token budget",
            |p| Box::new(Chunked::new(p.clone())),
        )
        .batching(Batching::Chunked(DefaultBudget::ChunkSize)),
        SchedulerSpec::new(
            "vllm-v1",
            "vLLM V1: running requests first in one token budget, blocks per chunk, recompute only",
            |p| Box::new(VllmV1::new(p.clone())),
        )
        .batching(v1_budget)
        .kv(KvLayout::PagedPerChunk)
        .caching(Caching::On)
        .recompute_only()
        .engine(VLLM_V1.id),
        SchedulerSpec::new(
            "orca",
            "Orca: iteration-level batching, maximum length reserved",
            |p| Box::new(Orca::new(p.clone())),
        )
        .batching(Batching::WholePrompt)
        .kv(KvLayout::ReserveMaxLen),
        SchedulerSpec::new(
            "fastertransformer",
            "FasterTransformer: static request-level batches",
            |p| Box::new(FasterTransformer::new(p.clone())),
        )
        .batching(Batching::WholePrompt)
        .kv(KvLayout::ReserveMaxLen)
        .static_batches(),
        SchedulerSpec::new(
            "lightllm",
            "LightLLM: admission by estimated future KV use",
            |p| Box::new(LightLlm::new(p.clone())),
        )
        .batching(Batching::WholePrompt),
        SchedulerSpec::new(
            "sglang",
            "SGLang: prefill-first batches, admission reserving future decode tokens, retraction",
            |p| Box::new(Sglang::new(p.clone())),
        )
        .batching(v1_budget)
        .kv(KvLayout::PagedPerChunk)
        .caching(Caching::Required)
        .recompute_only()
        .engine(SGLANG.id),
        SchedulerSpec::new("laps", "short prefills ahead of long ones", |p| {
            Box::new(Laps::new(p.clone()))
        })
        .batching(v1_budget),
        SchedulerSpec::new("vtc", "Virtual Token Counter fairness", |p| {
            Box::new(Vtc::new(p.clone()))
        })
        .batching(v1_budget),
    ]
}

/// The most output tokens a request asks for: `workload.max_tokens` when
/// set, else what fits in `max_model_len` after its prompt — never fewer
/// than it generates (the true length stands in for an unknown one that
/// is longer). What an engine that plans memory by `max_tokens` assumes.
pub fn requested_output(v: &RequestView, p: &Policy) -> u32 {
    let asked = if p.max_tokens > 0 {
        p.max_tokens
    } else {
        p.max_model_len.saturating_sub(v.prompt_tokens)
    };
    asked.max(v.output_tokens)
}

/// Moves the waiting request that minimises `key` among the first `window`
/// to the head of the queue (ties: earliest in the queue). O(window).
pub fn promote_min_by<K: Ord>(
    st: &mut ReplicaState,
    window: usize,
    mut key: impl FnMut(&ReplicaState, Slot) -> K,
) {
    let mut best: Option<(Slot, K)> = None;
    for slot in st.waiting().take(window) {
        let k = key(st, slot);
        if best.as_ref().is_none_or(|(_, b)| k < *b) {
            best = Some((slot, k));
        }
    }
    if let Some((slot, _)) = best {
        st.promote_waiting(slot);
    }
}

/// Puts the next request to admit at the head: the oldest of the most
/// urgent priority class when the policy asks for it (O(classes) over the
/// whole queue), else the queue order stands (FCFS).
pub fn choose_next(st: &mut ReplicaState, p: &Policy) {
    if p.priority
        && let Some(slot) = st.waiting_by_priority()
    {
        st.promote_waiting(slot);
    }
}

/// Swapped-out requests come back first (vLLM v0 serves running, then
/// swapped, then waiting requests), as many as memory and `max_num_seqs` allow.
pub fn resume_swapped(st: &mut ReplicaState, p: &Policy) {
    while st.num_swapped() > 0 && st.resume_swapped(p.limits.max_num_seqs) {}
}

/// Admits waiting requests with whole prompts while the batch stays within
/// `max_num_seqs` and the token budget and memory allows; `gate` may veto a
/// candidate (LightLLM's future-memory check). Returns the tokens admitted.
pub fn admit_whole_prompts(
    st: &mut ReplicaState,
    p: &Policy,
    now: Nanos,
    mut tokens: u64,
    mut gate: impl FnMut(&ReplicaState, Slot) -> bool,
) -> u64 {
    loop {
        choose_next(st, p);
        let Some(slot) = st.peek_waiting() else { break };
        let need = st.prefill_remaining(slot);
        if st.num_running() as u32 + 1 > p.limits.max_num_seqs
            || tokens + need as u64 > p.limits.token_budget as u64
            || !gate(st, slot)
        {
            break;
        }
        match st.admit_head(u32::MAX, now) {
            super::state::Admit::Admitted(n) => tokens += n as u64,
            super::state::Admit::Later => break,
        }
    }
    tokens
}

#[cfg(test)]
mod tests;
