//! vLLM V1's scheduler (vLLM ≥ 0.8, `vllm/v1/core/sched/scheduler.py`,
//! `Scheduler.schedule`; the KV side in `vllm/v1/core/kv_cache_manager.py`,
//! `allocate_slots`). It has no prefill or decode phases: every request
//! has computed some of its tokens and is given up to its remaining ones
//! from one token budget (`max_num_batched_tokens`) per step.
//!
//! 1. Running requests first, in the order they were admitted: each
//!    decoding request takes one token, then each request still
//!    prefilling a chunk of what budget is left. Admission order puts
//!    every decoding request before every prefilling one (a request is
//!    admitted only after all running ones were served, so one left
//!    part-way through its prompt is the newest), so this is the decode
//!    step followed by the continuing chunks.
//! 2. Blocks are allocated for the tokens being scheduled, chunk by chunk,
//!    not for the whole prompt at admission, and no watermark is kept
//!    free (`allocate_slots` fails only when the free blocks do not cover
//!    the new ones). When a running request's blocks cannot be had, the
//!    newest running request (`running.pop()`; the least urgent one with
//!    priorities) is preempted by recompute — V1 has no swap — until they
//!    can, or until the request itself is the one preempted.
//! 3. Waiting requests are admitted only in a step that preempted nothing,
//!    while `max_num_seqs` and the budget allow, each with the blocks of
//!    its first chunk; the first that does not fit stops admission.
//! 4. Full blocks of a prompt join the prefix cache as each chunk is
//!    computed (`cache_blocks` inside `allocate_slots`), so a request with
//!    the same prefix can hit the blocks of a prompt still being prefilled.
//!
//! Not modelled: decodes beyond the token budget (V1 would leave the last
//! running requests unscheduled; here the decode step is whole, as when
//! `max_num_seqs` ≤ `max_num_batched_tokens`, which V1 requires of its
//! defaults), `long_prefill_token_threshold` (0 by default) and the
//! speculative-decoding and encoder budgets.

use super::{Policy, Scheduler, choose_next};
use crate::replica::state::{Admit, ReplicaState};
use crate::units::Nanos;

pub struct VllmV1 {
    p: Policy,
}

impl VllmV1 {
    pub fn new(p: Policy) -> Self {
        VllmV1 { p }
    }
}

impl Scheduler for VllmV1 {
    fn waiting_indexes(&self) -> super::WaitIndexes {
        super::WaitIndexes::for_policy(&self.p)
    }

    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        let mut preempted = st.make_room_for_decode() > 0;
        st.add_decode_step();
        let mut budget = (self.p.limits.token_budget as u64).saturating_sub(st.batch_tokens());
        // Only an admission the budget cut short leaves a prompt half
        // prefilled, so one request at most continues here, and the decodes
        // never take the whole budget from it (they are fewer than the
        // tokens of the step that cut it); the loop is kept general.
        let mut i = 0;
        while budget > 0 && i < st.prefilling().len() {
            let slot = st.prefilling()[i];
            let chunk = (st.prefill_remaining(slot) as u64).min(budget) as u32;
            // Preempt the newest prefilling requests (never one already in
            // this batch) until this chunk's blocks can be had.
            while !st.try_add_chunk(slot, chunk) {
                let newest = *st.prefilling().last().expect("slot is prefilling");
                st.preempt(newest);
                preempted = true;
                if newest == slot {
                    break;
                }
            }
            if st.prefilling().get(i) == Some(&slot) {
                budget -= chunk as u64;
                i += 1;
            } else {
                break;
            }
        }
        if preempted {
            return;
        }
        loop {
            choose_next(st, &self.p);
            if budget == 0 || st.num_running() as u32 >= self.p.limits.max_num_seqs {
                return;
            }
            if st.peek_waiting().is_none() {
                return;
            }
            match st.admit_head(budget.min(u32::MAX as u64) as u32, now) {
                Admit::Admitted(n) => budget -= n as u64,
                Admit::Later => return,
            }
        }
    }
}
