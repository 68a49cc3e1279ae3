//! SGLang's scheduler (Zheng et al. 2024, "SGLang: Efficient Execution of
//! Structured Language Model Programs"; `python/sglang/srt/managers/`
//! `scheduler.py` `get_next_batch_to_run` / `update_running_batch`,
//! `schedule_policy.py` `PrefillAdder`, `schedule_batch.py`
//! `retract_decode`), with its default settings (no mixed chunks, LPM order).
//!
//! 1. **Prefill first, not mixed.** Each step is a prefill batch whenever
//!    there is prefill work it can take — the request part-way through its
//!    prompt (chunked prefill) continues first, then waiting requests are
//!    admitted — and the decodes wait that step; otherwise it is one decode
//!    step of every running request. Prefill batches share one token budget
//!    (`chunked_prefill_size`, `scheduler.max_num_batched_tokens`).
//! 2. **Admission reserves future decode tokens.** A waiting request is
//!    admitted only if the free and evictable KV tokens, less what the
//!    running requests are expected to still write — each one's remaining
//!    `max_new_tokens` (clipped at 4,096) times `new_token_ratio` — and less
//!    what this batch already admitted, exceed its uncached prompt (in
//!    whole blocks) plus its clipped `max_new_tokens` (SGLang refuses when
//!    they are equal: `total_tokens >= rem_total_tokens`). `max_new_tokens`
//!    is what the client asks for (`workload.max_tokens`, else what fits in
//!    `max_model_len`), cut so that the request alone fits an empty pool.
//!    The first request that does not fit stops admission; KV is then
//!    allocated only for the tokens each chunk computes.
//! 3. **`new_token_ratio` learns from retractions.** It starts at 0.7 and
//!    falls by (0.7 − 0.7 × 0.14) / 600 per decode step down to 0.7 × 0.14
//!    (`SGLANG_INIT_NEW_TOKEN_RATIO`, `…_MIN_NEW_TOKEN_RATIO_FACTOR`,
//!    `…_NEW_TOKEN_RATIO_DECAY_STEPS`): admission grows bolder while
//!    nothing is retracted.
//! 4. **Retraction.** When a decode step's KV does not fit, running
//!    requests are retracted (recompute; SGLang has no swap) — the one
//!    with the fewest generated tokens first, the longest prompt among
//!    equals — until the free KV covers 20 more steps of those left
//!    (`retract_decode_steps`); the ratio is then reset to (tokens they
//!    generated + 20 per request) / their `max_new_tokens`, at most 1.
//! 5. **Waiting order.** The request with the longest prefix in the radix
//!    cache goes first (LPM), while at most `scheduler.window` (SGLang: 128)
//!    wait; beyond that, FCFS (matching every request costs too much).
//!    Prompt blocks join the cache as chunks complete, generated ones when
//!    a request ends (the radix tree holds both).
//!
//! Not modelled: CPU/GPU overlap scheduling (it lives in the engine's host
//! costs, and no SGLang host table is fitted yet), `max_prefill_tokens`
//! (16,384 by default, above the default chunk budget), in-batch prefix
//! deprioritisation, and page sizes other than `scheduler.block_size`.
//! The reservation sums over the running requests once per step in which
//! a request waits, as SGLang's own `PrefillAdder` does: O(running) then.

use super::{Policy, Scheduler, choose_next, promote_min_by, requested_output};
use crate::replica::state::{Admit, ReplicaState, Slot};
use crate::units::Nanos;
use std::cmp::Reverse;

/// `new_token_ratio` at start (`SGLANG_INIT_NEW_TOKEN_RATIO` × conservativeness 1).
const INIT_RATIO: f64 = 0.7;
/// Its floor: `SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR` of the start.
const MIN_RATIO: f64 = INIT_RATIO * 0.14;
/// Decode steps over which it falls from start to floor.
const DECAY_STEPS: f64 = 600.0;
/// Most remaining output tokens one request is charged for
/// (`SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION`).
const CLIP_MAX_NEW_TOKENS: u32 = 4096;
/// Decode steps of headroom a retraction restores (`retract_decode_steps`).
const RETRACT_DECODE_STEPS: u64 = 20;

pub struct Sglang {
    p: Policy,
    new_token_ratio: f64,
}

impl Sglang {
    pub fn new(p: Policy) -> Self {
        Sglang {
            p,
            new_token_ratio: INIT_RATIO,
        }
    }

    /// A request's `max_new_tokens` as SGLang holds it: what the client
    /// asks for, cut to `max_req_len − prompt − 1` with the pool as
    /// `max_req_len` and the prompt in whole blocks, so that its admission
    /// test passes on an empty replica (a request asking for more than the
    /// pool would otherwise wait for ever).
    fn max_new_tokens(&self, st: &ReplicaState, slot: Slot) -> u32 {
        let v = st.view(slot);
        let (pool, _) = st.kv_tokens();
        let prompt_blocks = (v.prompt_tokens as u64).div_ceil(st.block_size() as u64);
        let fits = pool
            .saturating_sub(prompt_blocks * st.block_size() as u64 + 1)
            .min(u32::MAX as u64) as u32;
        requested_output(&v, &self.p).min(fits.max(v.output_tokens))
    }

    /// Tokens a request may still write, clipped as SGLang's estimate is.
    fn max_new_left(&self, st: &ReplicaState, slot: Slot) -> u32 {
        let left = self
            .max_new_tokens(st, slot)
            .saturating_sub(st.view(slot).generated);
        left.min(CLIP_MAX_NEW_TOKENS)
    }

    /// Tokens a running request is expected to still write.
    fn running_reserve(&self, st: &ReplicaState, slot: Slot) -> f64 {
        self.max_new_left(st, slot) as f64 * self.new_token_ratio
    }

    /// A prefill batch: the chunk in progress, then admissions. Returns
    /// whether it scheduled anything.
    fn prefill(&mut self, st: &mut ReplicaState, now: Nanos) -> bool {
        let mut budget = self.p.limits.token_budget as u64;
        let mut i = 0;
        while budget > 0 && i < st.prefilling().len() {
            let slot = st.prefilling()[i];
            let chunk = (st.prefill_remaining(slot) as u64).min(budget) as u32;
            if !st.try_add_chunk(slot, chunk) {
                break;
            }
            budget -= chunk as u64;
            i += 1;
        }
        // Summed only when someone waits: O(running), so not on every step.
        let mut left: Option<f64> = None;
        let block = st.block_size() as u64;
        loop {
            if budget == 0 || st.num_running() as u32 >= self.p.limits.max_num_seqs {
                break;
            }
            if self.p.priority {
                choose_next(st, &self.p);
            } else {
                longest_prefix_first(st, &self.p);
            }
            let Some(head) = st.peek_waiting() else { break };
            let uncached = st.prefill_remaining(head) as u64;
            let extend = uncached.div_ceil(block) * block;
            let need = extend + self.max_new_left(st, head) as u64;
            let left = left.get_or_insert_with(|| {
                let reserved: f64 = st.running().map(|s| self.running_reserve(st, s)).sum();
                st.free_kv_tokens() as f64 - reserved
            });
            if need as f64 >= *left {
                break;
            }
            match st.admit_head(budget.min(u32::MAX as u64) as u32, now) {
                Admit::Admitted(n) => {
                    budget -= n as u64;
                    // (SGLang charges a truncated chunk only its own tokens,
                    // but a truncated admission spends the whole budget, so
                    // nothing is admitted after it.)
                    *left -= need as f64;
                }
                Admit::Later => break,
            }
        }
        st.batch_tokens() > 0
    }

    /// A decode step of every running request, retracting first if its KV
    /// does not fit; updates `new_token_ratio`.
    fn decode(&mut self, st: &mut ReplicaState) {
        if st.num_decoding() == 0 {
            return;
        }
        if st.decode_fits() {
            self.new_token_ratio =
                (self.new_token_ratio - (INIT_RATIO - MIN_RATIO) / DECAY_STEPS).max(MIN_RATIO);
        } else {
            while st.num_decoding() > 1
                && (!st.decode_fits()
                    || st.free_kv_tokens() < RETRACT_DECODE_STEPS * st.num_decoding() as u64)
            {
                let victim = self.retraction_victim(st);
                st.preempt(victim);
            }
            let (mut generated, mut asked) = (0u64, 0u64);
            for s in st.running() {
                generated += st.view(s).generated as u64;
                asked += self.max_new_tokens(st, s) as u64;
            }
            self.new_token_ratio = ratio_after_retraction(generated, asked, st.num_running() as u64);
        }
        st.make_room_for_decode();
        st.add_decode_step();
    }

    /// The running request SGLang retracts first: fewest generated tokens,
    /// then the longest prompt, then the newest.
    fn retraction_victim(&self, st: &ReplicaState) -> Slot {
        let mut best: Option<(Slot, (u32, Reverse<u32>))> = None;
        for s in st.running().rev() {
            let v = st.view(s);
            let key = (v.generated, Reverse(v.prompt_tokens));
            if best.as_ref().is_none_or(|(_, b)| key < *b) {
                best = Some((s, key));
            }
        }
        best.expect("retracting with nothing running").0
    }
}

impl Scheduler for Sglang {
    fn waiting_indexes(&self) -> super::WaitIndexes {
        super::WaitIndexes::for_policy(&self.p)
    }

    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        if !self.prefill(st, now) {
            self.decode(st);
        }
    }
}

/// `new_token_ratio` after a retraction (`retract_decode`'s
/// `new_estimate_ratio`): what the `running` requests left have generated,
/// plus `RETRACT_DECODE_STEPS` each, over the `max_new_tokens` they asked
/// for in all — at most 1.
fn ratio_after_retraction(generated: u64, asked: u64, running: u64) -> f64 {
    ((generated + RETRACT_DECODE_STEPS * running) as f64 / asked.max(1) as f64).min(1.0)
}

/// Moves the waiting request with the most cached prompt tokens (ties: the
/// earliest) to the head, when the queue is within the window.
pub fn longest_prefix_first(st: &mut ReplicaState, p: &Policy) {
    if st.waiting_len() > p.window {
        return;
    }
    promote_min_by(st, p.window, |st, slot| Reverse(st.cached_prefix_tokens(slot)));
}

#[cfg(test)]
mod tests {
    use super::ratio_after_retraction;

    /// (generated + 20 per request) / asked, capped at 1.
    #[test]
    fn the_ratio_after_a_retraction_is_generated_plus_twenty_each_over_asked() {
        // Two requests left, 300 tokens generated between them, 800 asked.
        assert_eq!(ratio_after_retraction(300, 800, 2), 340.0 / 800.0);
        // One left: 20 once (20 + n would give 21).
        assert_eq!(ratio_after_retraction(337, 400, 1), 357.0 / 400.0);
        // Three left: 60, not 20 / 3 or 23.
        assert_eq!(ratio_after_retraction(100, 1000, 3), 0.16);
        assert_eq!(ratio_after_retraction(390, 400, 1), 1.0);
        // Nothing asked (no request left) divides by 1, not by 0.
        assert_eq!(ratio_after_retraction(0, 0, 0), 0.0);
        assert_eq!(ratio_after_retraction(0, 0, 1), 1.0);
    }
}
