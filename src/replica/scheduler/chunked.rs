//! Decode-first scheduling with chunked prefill inside one token budget per
//! iteration: Sarathi-Serve (Agrawal et al., OSDI'24 "Taming
//! Throughput-Latency Tradeoff in LLM Inference with Sarathi-Serve"), as
//! vLLM 0.6's chunked-prefill scheduler (V0 engine) implements it.
//!
//! Each iteration has a token budget:
//! 1. swapped-out requests resume first (while their blocks fit with one to
//!    spare beyond the watermark and the decodes' new blocks, as
//!    `ReplicaState::resume_swapped` explains), then every decoding request takes
//!    one token (decodes never stall behind prefills); if the step's new KV
//!    blocks do not fit, cached prefixes are evicted, then running requests
//!    preempted (newest first, or least urgent with priorities);
//! 2. partially prefilled requests continue, in admission order, each with a
//!    chunk of what budget is left;
//! 3. waiting requests are admitted with a first chunk of the remaining
//!    budget, while `max_num_seqs` and the KV watermark allow (blocks for the
//!    whole prompt are allocated on admission, as vLLM's V0 block manager
//!    does), in FCFS / priority order.
//!
//! vLLM V1 (`vllm_v1.rs`) and SGLang (`sglang.rs`) are their own policies.

use super::{Policy, Scheduler, choose_next, resume_swapped};
use crate::replica::state::{Admit, ReplicaState};
use crate::units::Nanos;

pub struct Chunked {
    p: Policy,
}

impl Chunked {
    pub fn new(p: Policy) -> Self {
        Chunked { p }
    }
}

/// Decodes (after swap-ins and preemptions) and continuing prefill chunks;
/// returns the budget left.
pub fn decode_and_continue(st: &mut ReplicaState, p: &Policy) -> u64 {
    resume_swapped(st, p);
    st.make_room_for_decode();
    st.add_decode_step();
    let mut budget = (p.limits.token_budget as u64).saturating_sub(st.batch_tokens());
    let mut i = 0;
    while budget > 0 && i < st.prefilling().len() {
        let slot = st.prefilling()[i];
        let chunk = (st.prefill_remaining(slot) as u64).min(budget) as u32;
        st.add_chunk(slot, chunk);
        budget -= chunk as u64;
        i += 1;
    }
    budget
}

/// Admits the head of the queue with a chunk of the budget; returns the
/// budget left, or `None` when nothing more can be admitted.
pub fn admit_chunk(st: &mut ReplicaState, p: &Policy, budget: u64, now: Nanos) -> Option<u64> {
    if budget == 0 || st.num_running() as u32 >= p.limits.max_num_seqs || st.num_swapped() > 0 {
        return None;
    }
    st.peek_waiting()?;
    match st.admit_head(budget.min(u32::MAX as u64) as u32, now) {
        Admit::Admitted(n) => Some(budget - n as u64),
        Admit::Later => None,
    }
}

impl Scheduler for Chunked {
    fn waiting_indexes(&self) -> super::WaitIndexes {
        super::WaitIndexes::for_policy(&self.p)
    }

    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        let mut budget = decode_and_continue(st, &self.p);
        loop {
            choose_next(st, &self.p);
            match admit_chunk(st, &self.p, budget, now) {
                Some(left) => budget = left,
                None => break,
            }
        }
    }
}
