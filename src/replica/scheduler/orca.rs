//! Orca (Yu et al., OSDI'22 "Orca: A Distributed Serving System for
//! Transformer-Based Generative Models"): iteration-level scheduling with
//! selective batching, without paged memory.
//!
//! Every iteration runs one decode token for each running request *and*
//! whole-prompt prefills of newly admitted requests in the same batch
//! (selective batching: attention per request, everything else batched).
//! Requests are admitted FCFS (or by priority) while `max_num_seqs` and the
//! token budget allow and while the memory for the request's **maximum
//! sequence length** (`max_model_len`) can be reserved: Orca allocates each
//! request's KV slots for the longest sequence it might produce, because
//! without paging the buffer cannot grow later (§4.2: "reserves the KV
//! cache for max tokens"). This admits fewer concurrent requests than paged
//! allocation but never needs preemption.

use super::{Policy, Scheduler, admit_whole_prompts};
use crate::replica::state::ReplicaState;
use crate::units::Nanos;

pub struct Orca {
    p: Policy,
}

impl Orca {
    pub fn new(p: Policy) -> Self {
        Orca { p }
    }
}

impl Scheduler for Orca {
    fn waiting_indexes(&self) -> super::WaitIndexes {
        super::WaitIndexes::for_policy(&self.p)
    }

    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        // Reserved memory: the decode step never needs new blocks.
        st.add_decode_step();
        let used = st.batch_tokens();
        admit_whole_prompts(st, &self.p, now, used, |_, _| true);
    }
}
