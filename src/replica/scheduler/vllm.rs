//! vLLM v0's default scheduler (vLLM 0.6 `Scheduler._schedule_default`,
//! Kwon et al., SOSP'23 "Efficient Memory Management for Large Language
//! Model Serving with PagedAttention").
//!
//! Each iteration is either prefill-only or decode-only:
//! 1. Unless requests are swapped out, waiting requests are admitted
//!    first-come-first-served (or by priority class with
//!    `scheduler.priority`) while the batch stays within `max_num_seqs`
//!    (counting requests already running) and `max_num_batched_tokens`
//!    (whole prompts, no chunking), and while the KV pool can allocate every
//!    block of the prompt leaving the 1% watermark free. Admission stops at
//!    the first request that does not fit (no skipping ahead). If any
//!    prefill was admitted, the iteration runs only those prefills.
//! 2. Otherwise swapped-out requests are swapped back in (oldest first) while
//!    their blocks fit with one to spare beyond the watermark and beyond the
//!    new blocks of this step's decodes (vLLM 0.6's `can_swap_in`), and every
//!    running request decodes one token. If the step's new blocks do not
//!    fit, requests are preempted (newest first, or least urgent first with
//!    priorities) by recompute or swap until it does. (vLLM forms the
//!    decode step first and swaps in only if that preempted nothing;
//!    counting the decodes' blocks in the swap-in check gives the same
//!    batch with the swap-in first, so the resumed requests decode in this
//!    step.)

use super::{Policy, Scheduler, admit_whole_prompts, resume_swapped};
use crate::replica::state::ReplicaState;
use crate::units::Nanos;

pub struct Vllm {
    p: Policy,
}

impl Vllm {
    pub fn new(p: Policy) -> Self {
        Vllm { p }
    }
}

impl Scheduler for Vllm {
    fn waiting_indexes(&self) -> super::WaitIndexes {
        super::WaitIndexes::for_policy(&self.p)
    }

    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        if st.num_swapped() == 0 && admit_whole_prompts(st, &self.p, now, 0, |_, _| true) > 0 {
            return;
        }
        resume_swapped(st, &self.p);
        st.make_room_for_decode();
        st.add_decode_step();
    }
}
