//! Decode-first scheduling with chunked prefill inside one token budget per
//! iteration: Sarathi-Serve (Agrawal et al., OSDI'24 "Taming
//! Throughput-Latency Tradeoff in LLM Inference with Sarathi-Serve"), as
//! vLLM's chunked-prefill scheduler implements it; vLLM v1's scheduler
//! (vLLM ≥ 0.8 `v1/core/sched/scheduler.py`: running requests first, then
//! waiting ones, all sharing `max_num_batched_tokens`, chunked prefill and
//! prefix caching on by default); and SGLang's scheduler (Zheng et al. 2024
//! "SGLang: Efficient Execution of Structured Language Model Programs"),
//! which orders the waiting queue by longest prefix match.
//!
//! Each iteration has a token budget:
//! 1. swapped-out requests resume first, then every decoding request takes
//!    one token (decodes never stall behind prefills); if the step's new KV
//!    blocks do not fit, cached prefixes are evicted, then running requests
//!    preempted (newest first, or least urgent with priorities);
//! 2. partially prefilled requests continue, in admission order, each with a
//!    chunk of what budget is left;
//! 3. waiting requests are admitted with a first chunk of the remaining
//!    budget, while `max_num_seqs` and the KV watermark allow (blocks for the
//!    whole prompt are allocated on admission, as vLLM's block manager does),
//!    in FCFS / priority order, or (`sglang`) longest cached prefix first
//!    among the first `scheduler.window` waiting requests — SGLang falls back
//!    to FCFS when more than 128 wait, and so does this policy when the queue
//!    is longer than the window.

use super::{Order, Policy, Scheduler, choose_next, resume_swapped, sglang};
use crate::replica::state::{Admit, ReplicaState};
use crate::units::Nanos;

pub struct Chunked {
    p: Policy,
    order: Order,
}

impl Chunked {
    pub fn new(p: Policy, order: Order) -> Self {
        Chunked { p, order }
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
    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        let mut budget = decode_and_continue(st, &self.p);
        loop {
            match self.order {
                Order::Fcfs => choose_next(st, &self.p),
                Order::LongestPrefix => sglang::longest_prefix_first(st, &self.p),
            }
            match admit_chunk(st, &self.p, budget, now) {
                Some(left) => budget = left,
                None => break,
            }
        }
    }
}
