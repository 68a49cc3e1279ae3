//! Sarathi-Serve (Agrawal et al., OSDI'24 "Taming Throughput-Latency
//! Tradeoff in LLM Inference with Sarathi-Serve"): stall-free batching with
//! chunked prefills, as vLLM's chunked-prefill scheduler implements it.
//!
//! Each iteration has a token budget (`chunk_size`):
//! 1. every decoding request takes one token (decode-first, so decodes never
//!    stall behind prefills); if the step's new KV blocks do not fit, the
//!    most recently admitted requests are preempted by recompute;
//! 2. partially prefilled requests continue, in admission order, each with a
//!    chunk of what budget is left;
//! 3. waiting requests are admitted FCFS with a first chunk of the remaining
//!    budget, while `max_num_seqs` and the KV watermark allow (blocks for the
//!    whole prompt are allocated on admission, as vLLM's block manager does).

use super::{Limits, Scheduler};
use crate::replica::state::{Admit, ReplicaState};
use crate::units::Nanos;

pub struct Sarathi {
    limits: Limits,
}

impl Sarathi {
    pub fn new(limits: Limits) -> Self {
        Sarathi { limits }
    }
}

impl Scheduler for Sarathi {
    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        st.make_room_for_decode(now);
        st.add_decode_step();
        let mut budget = (self.limits.token_budget as u64).saturating_sub(st.batch_tokens());
        let mut i = 0;
        while budget > 0 && i < st.prefilling().len() {
            let slot = st.prefilling()[i];
            let chunk = (st.prefill_remaining(slot) as u64).min(budget) as u32;
            st.add_chunk(slot, chunk);
            budget -= chunk as u64;
            i += 1;
        }
        while budget > 0 && (st.num_running() as u32) < self.limits.max_num_seqs {
            let Some(slot) = st.peek_waiting() else { break };
            let chunk = (st.prefill_remaining(slot) as u64).min(budget) as u32;
            match st.admit_head(chunk, now) {
                Admit::Admitted => budget -= chunk as u64,
                Admit::Later => break,
            }
        }
    }
}
