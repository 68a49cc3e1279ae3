//! FasterTransformer-style static (request-level) batching (NVIDIA
//! FasterTransformer; the baseline of Orca, OSDI'22 §2.2, and of vLLM's
//! evaluation): a batch is formed from waiting requests when the replica is
//! free, its prompts are prefilled together, and it decodes until its
//! *longest* request ends. Requests that finish early stay in the batch as
//! padding (they are still computed, and their memory — reserved for the
//! maximum length, as FasterTransformer allocates fixed buffers — is held),
//! their responses return when the whole batch ends, and no request joins
//! a running batch.

use super::{Policy, Scheduler, admit_whole_prompts};
use crate::replica::state::ReplicaState;
use crate::units::Nanos;

pub struct FasterTransformer {
    p: Policy,
}

impl FasterTransformer {
    pub fn new(p: Policy) -> Self {
        FasterTransformer { p }
    }
}

impl Scheduler for FasterTransformer {
    fn waiting_indexes(&self) -> super::WaitIndexes {
        super::WaitIndexes::for_policy(&self.p)
    }

    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        // A new batch forms only when the previous one has ended; its
        // first iteration prefills it (the decode step below is then empty:
        // nothing decodes and no padding is left from the ended batch).
        if st.num_running() == 0 {
            admit_whole_prompts(st, &self.p, now, 0, |_, _| true);
        }
        st.add_decode_step();
    }
}
