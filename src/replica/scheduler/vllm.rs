//! vLLM v0's default scheduler (vLLM 0.6 `Scheduler._schedule_default`,
//! Kwon et al., SOSP'23 "Efficient Memory Management for Large Language
//! Model Serving with PagedAttention").
//!
//! Each iteration is either prefill-only or decode-only:
//! 1. Waiting requests are admitted first-come-first-served while the batch
//!    stays within `max_num_seqs` (counting requests already running) and
//!    `max_num_batched_tokens` (whole prompts, no chunking), and while the KV
//!    pool can allocate every block of the prompt leaving the 1% watermark
//!    free. Admission stops at the first request that does not fit (no
//!    skipping ahead). If any prefill was admitted, the iteration runs only
//!    those prefills: running decodes wait.
//! 2. Otherwise every running request decodes one token. If the step's new
//!    blocks do not fit, the most recently admitted requests are preempted
//!    by recompute (freed and put back at the front of the queue) until it does.

use super::{Limits, Scheduler};
use crate::replica::state::{Admit, ReplicaState};
use crate::units::Nanos;

pub struct Vllm {
    limits: Limits,
}

impl Vllm {
    pub fn new(limits: Limits) -> Self {
        Vllm { limits }
    }
}

impl Scheduler for Vllm {
    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        let mut tokens = 0u64;
        while let Some(slot) = st.peek_waiting() {
            let need = st.prefill_remaining(slot);
            if st.num_running() as u32 + 1 > self.limits.max_num_seqs
                || tokens + need as u64 > self.limits.token_budget as u64
            {
                break;
            }
            match st.admit_head(need, now) {
                Admit::Admitted => tokens += need as u64,
                Admit::Later => break,
            }
        }
        if tokens > 0 {
            return;
        }
        st.make_room_for_decode(now);
        st.add_decode_step();
    }
}
