//! Prefill/decode hand-off operations on a [`ReplicaState`] (disaggregated
//! serving and semi-PD; see `cluster::disagg`). A child module of `state`
//! so it can use the replica's bookkeeping without widening it; it only
//! composes the existing decode-set updates.
//!
//! - A *prefill* replica runs its scheduler as usual; when an iteration ends,
//!   [`ReplicaState::take_handoffs`] removes every request whose prefill just
//!   completed (and so just joined the decoding set) and returns it as a
//!   [`Handoff`]: its first token is emitted at the iteration's end, its KV
//!   blocks are freed here (the transfer reads them from a staging copy).
//! - A *decode* replica receives it with [`ReplicaState::accept_handoff`]
//!   once the KV has arrived: the request joins the decoding set directly
//!   with its prompt's KV, as if this replica had prefilled it; its next
//!   inter-token gap counts from its first token, so the transfer shows in
//!   TPOT and the ITL histogram.

use super::{Meta, NONE, Phase, Req, ReplicaState};
use crate::units::Nanos;
use std::cmp::Reverse;

/// A prefilled request on its way to a decode replica.
#[derive(Debug, Clone, Copy)]
pub struct Handoff {
    meta: Meta,
    scheduled: Nanos,
    first_token: Nanos,
    preemptions: u32,
    /// KV entries it carries (the prompt; the first token's KV is written by
    /// the first decode step).
    kv_tokens: u32,
}

impl Handoff {
    pub fn id(&self) -> u64 {
        self.meta.id
    }
    pub fn kv_tokens(&self) -> u32 {
        self.kv_tokens
    }
    pub fn first_token(&self) -> Nanos {
        self.first_token
    }
    /// Prompt + output − 1: the most KV entries it will hold.
    pub fn full_tokens(&self) -> u32 {
        self.meta.prompt_tokens + self.meta.output_tokens - 1
    }
}

impl ReplicaState {
    /// Removes the requests whose prefill completed in the batch that just
    /// ended (at `now`) and appends them to `out`. Call right after the
    /// iteration's completion. O(prefill chunks × running).
    pub fn take_handoffs(&mut self, now: Nanos, out: &mut Vec<Handoff>) {
        for i in 0..self.batch.prefills.len() {
            let slot = self.batch.prefills[i].0;
            let r = self.reqs[slot as usize];
            if r.phase != Phase::Decoding || r.decode_entry != now || r.step0 != self.step {
                continue;
            }
            self.leave_decoding(slot, &r);
            self.kv.release(self.blocks_for(r.prefilled));
            self.remove_from_cohort(now);
            self.remove_running(slot);
            if let Some(k) = self.pending_first.iter().position(|&s| s == slot) {
                self.pending_first.remove(k);
            }
            let first_token = if r.first_token == NONE { now } else { r.first_token };
            out.push(Handoff {
                meta: r.spec,
                scheduled: r.scheduled,
                first_token,
                preemptions: r.preemptions,
                kv_tokens: r.prefilled,
            });
            let q = &mut self.reqs[slot as usize];
            q.phase = Phase::Free;
            self.free_slots.push(slot);
        }
    }

    /// KV blocks a hand-off needs on arrival.
    pub fn handoff_blocks(&self, h: &Handoff) -> u64 {
        self.blocks_for(h.kv_tokens)
    }

    /// Whether this replica can take `h` into its decoding set now (free
    /// blocks above the watermark, not in the middle of an iteration).
    pub fn can_accept_handoff(&self, h: &Handoff) -> bool {
        !self.busy && self.kv.can_admit(self.handoff_blocks(h))
    }

    /// Whether `h` could ever fit in this replica's KV cache.
    pub fn can_ever_hold(&self, full_tokens: u32) -> bool {
        self.kv.can_ever_admit(self.blocks_for(full_tokens))
    }

    /// Admits a hand-off straight into the decoding set at `now` (the caller
    /// checked [`ReplicaState::can_accept_handoff`]).
    pub fn accept_handoff(&mut self, h: Handoff, now: Nanos) {
        debug_assert!(self.can_accept_handoff(&h));
        let need = self.handoff_blocks(&h);
        self.kv.allocate(need);
        // Its last token came at `first_token`; a decode step already
        // recorded since then cannot have included it, so its cohort time
        // is the later of the two (what preemption looks up).
        let last = h.first_token.max(self.last_step_end).min(now);
        let req = Req {
            spec: h.meta,
            phase: Phase::Decoding,
            scheduled: h.scheduled,
            first_token: h.first_token,
            last_token: last,
            generated: 1,
            prefill_target: h.kv_tokens,
            prefilled: h.kv_tokens,
            blocks: need as u32,
            preemptions: h.preemptions,
            step0: self.step,
            decode_entry: last,
        };
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.reqs[s as usize] = req;
                s
            }
            None => {
                self.reqs.push(req);
                (self.reqs.len() - 1) as u32
            }
        };
        self.running.push(slot);
        let res = self.residue_of(h.kv_tokens, self.step);
        self.residue[res] += 1;
        self.decoding += 1;
        self.decode_kv_sum += h.kv_tokens as u64;
        let finish_at = self.step + (h.meta.output_tokens - 1) as u64;
        self.finish_heap.push(Reverse((finish_at, slot)));
        match self.cohorts.iter_mut().find(|c| c.0 == last) {
            Some(c) => c.1 += 1,
            None => self.cohorts.push((last, 1)),
        }
    }
}
