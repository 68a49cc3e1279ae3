//! LightLLM's admission control (ModelTC/lightllm, "Efficient Router";
//! `lightllm/server/router/req_queue`): with token-granular KV memory
//! (TokenAttention), a request is admitted only if the KV the running batch
//! *will* need never exceeds capacity, given an estimate of every request's
//! remaining output. With requests sorted by remaining output `left`
//! descending and current KV sizes `cur`, the `i`-th of them (0-based)
//! finishes after `left_i` more steps, when the `i + 1` longest-running
//! requests each hold `cur_j + left_i` tokens, so the peak is
//!
//! ```text
//! need = max_i ( Σ_{j ≤ i} cur_j + (i + 1) · left_i )
//! ```
//!
//! and a candidate is admitted if `need` (with it included) fits in the KV
//! capacity. The estimate is the request's `max_tokens` (what a client asks
//! for; `scheduler.output_estimate = "max"`, LightLLM's behaviour) or the
//! true length (`"oracle"`, an upper bound on what better prediction buys).
//! Batches are otherwise formed like vLLM v0 (prefills first, whole
//! prompts); with a pessimistic estimate preemption never happens, with an
//! optimistic one the replica still preempts (recompute) as a safety net.
//! Memory here is paged with `scheduler.block_size` (set it to 1 for
//! LightLLM's token granularity); the check rounds each request up to whole
//! blocks.

use super::{Policy, Scheduler, admit_whole_prompts, requested_output, resume_swapped};
use crate::replica::state::{ReplicaState, Slot};
use crate::scenario::kinds::kinds;
use crate::units::Nanos;

kinds! {
    /// The output length LightLLM's admission assumes for a request
    /// (`scheduler.output_estimate`).
    pub enum OutputEstimate {
        /// The request's max_tokens (`workload.max_tokens`, or what fits in
        /// max_model_len): what a client asks for, LightLLM's behaviour.
        Max = "max",
        /// The true length: an upper bound on what better prediction buys.
        Oracle = "oracle",
    }
}

pub struct LightLlm {
    p: Policy,
    /// Scratch: (remaining output estimate, current KV tokens) per running request.
    scratch: Vec<(u64, u64)>,
}

impl LightLlm {
    pub fn new(p: Policy) -> Self {
        LightLlm {
            p,
            scratch: Vec::new(),
        }
    }
}

/// Remaining output tokens `p` assumes for a request.
fn remaining(st: &ReplicaState, p: &Policy, slot: Slot) -> u64 {
    let v = st.view(slot);
    let total = match p.output_estimate {
        OutputEstimate::Oracle => v.output_tokens,
        OutputEstimate::Max => requested_output(&v, p),
    };
    total.saturating_sub(v.generated) as u64
}

/// Peak future KV blocks of the running requests plus `extra`.
pub fn peak_blocks(scratch: &mut [(u64, u64)], block: u64) -> u64 {
    scratch.sort_unstable_by(|a, b| b.cmp(a));
    let (mut cum, mut peak) = (0u64, 0u64);
    for (i, &(left, cur)) in scratch.iter().enumerate() {
        cum += cur;
        let n = i as u64 + 1;
        // Tokens at that moment, each request rounded up to whole blocks:
        // n requests waste at most n·(B − 1) tokens of their last blocks, so
        // Σ⌈x_j/B⌉ ≤ ⌊(Σx_j + n·(B − 1)) / B⌋ (exact for B = 1, LightLLM's
        // token granularity; the earlier ⌈Σx/B⌉ + n overcounted by up to n).
        peak = peak.max((cum + n * left + n * (block - 1)) / block);
    }
    peak
}

impl Scheduler for LightLlm {
    fn waiting_indexes(&self) -> super::WaitIndexes {
        super::WaitIndexes::for_policy(&self.p)
    }

    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        let p = &self.p;
        let scratch = &mut self.scratch;
        let gate = |st: &ReplicaState, cand: Slot| {
            scratch.clear();
            for s in st.running() {
                // A prefilling request already holds blocks for its whole prompt.
                let v = st.view(s);
                let cur = v.kv_tokens.max(v.prompt_tokens + v.generated) as u64;
                scratch.push((remaining(st, p, s), cur));
            }
            let v = st.view(cand);
            scratch.push((
                remaining(st, p, cand),
                v.prompt_tokens as u64 + v.generated as u64,
            ));
            let (capacity, _) = st.kv_tokens();
            let block = st.block_size() as u64;
            peak_blocks(scratch, block) * block <= capacity - st.kv().watermark() * block
        };
        if st.num_swapped() == 0 && admit_whole_prompts(st, p, now, 0, gate) > 0 {
            return;
        }
        resume_swapped(st, p);
        st.make_room_for_decode();
        st.add_decode_step();
    }
}
