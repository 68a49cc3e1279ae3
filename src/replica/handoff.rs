//! Prefill/decode hand-off operations on a [`ReplicaState`] (disaggregated
//! serving and semi-PD; see `cluster::disagg`). A child module of `state`
//! so it can use the replica's bookkeeping without widening it; it only
//! composes the existing decode-set updates.
//!
//! - A *prefill* replica runs its scheduler as usual; when an iteration ends,
//!   [`ReplicaState::take_handoffs`] removes every request whose prefill just
//!   completed (and so just joined the decoding set) and returns it as a
//!   [`Handoff`]: its first token is produced at the iteration's end and
//!   becomes visible by the same rule as on a co-located replica (with
//!   async output processing, when this replica's next iteration has been
//!   scheduled and launched, or at once when it idles: the engine tells the
//!   hand-off with [`Handoff::set_first_token`], or the decode replica with
//!   [`ReplicaState::set_handoff_first_token`] if it already took it); its
//!   own KV blocks are freed here (the transfer reads them from a staging
//!   copy); its prompt prefix stays in this replica's prefix cache.
//! - A *decode* replica receives it with [`ReplicaState::accept_handoff`]
//!   once the KV has arrived: the request joins the decoding set directly
//!   with its prompt's KV, as if this replica had prefilled it; its next
//!   inter-token gap counts from its first token, so the transfer shows in
//!   TPOT and the ITL histogram. (Its prefix is not published into this
//!   replica's prefix cache: the cache serves prefills, which happen on the
//!   prefill replicas.)

use super::{Meta, NONE, Phase, ReplicaState, Req};
use crate::units::Nanos;
use crate::workload::Prefix;

/// A prefilled request on its way to a decode replica.
#[derive(Debug, Clone)]
pub struct Handoff {
    meta: Meta,
    prefix: Prefix,
    /// The request's (session, program) ids.
    identity: (Option<u64>, Option<u64>),
    scheduled: Nanos,
    /// When the first token became visible (`NONE` while async output
    /// processing has not made it visible yet).
    first_token: Nanos,
    /// When the first token was produced (the prefill iteration's end).
    produced: Nanos,
    preemptions: u32,
    cached_tokens: u32,
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
    /// When its first token became visible, `None` while still pending.
    pub fn first_token(&self) -> Option<Nanos> {
        (self.first_token != NONE).then_some(self.first_token)
    }
    /// Makes a pending first token visible at `t`.
    pub fn set_first_token(&mut self, t: Nanos) {
        if self.first_token == NONE {
            self.first_token = t;
        }
    }
    /// Prompt + output − 1: the most KV entries it will hold.
    pub fn full_tokens(&self) -> u32 {
        self.meta.prompt_tokens + self.meta.output_tokens - 1
    }
}

impl ReplicaState {
    /// Removes the requests whose prefill completed in the batch that just
    /// ended (at `now`) and appends them to `out`. Call right after the
    /// iteration's completion. Their prompt prefix stays in this replica's
    /// prefix cache (if on); their own blocks are freed.
    pub fn take_handoffs(&mut self, now: Nanos, out: &mut Vec<Handoff>) {
        for i in 0..self.batch.prefills.len() {
            let slot = self.batch.prefills[i].0;
            let r = self.reqs[slot as usize];
            if r.phase != Phase::Decoding || r.decode_entry != now || r.step0 != self.step {
                continue;
            }
            self.leave_decoding(slot, &r);
            self.remove_from_cohort(now);
            self.kv.release(self.owned_blocks(&r, r.prefilled));
            self.release_prefix(slot);
            if let Some(k) = self.running.iter().rposition(|&s| s == slot) {
                self.running.remove(k);
            }
            if let Some(k) = self.pending_first.iter().position(|&s| s == slot) {
                self.pending_first.remove(k);
            }
            // Pending (async output processing) unless already visible or
            // produced synchronously.
            let first_token = if r.first_token == NONE && !self.opts.async_output {
                now
            } else {
                r.first_token
            };
            out.push(Handoff {
                meta: r.spec,
                prefix: std::mem::take(&mut self.prefixes[slot as usize]),
                identity: self.identity[slot as usize],
                scheduled: r.scheduled,
                first_token,
                produced: now,
                preemptions: r.preemptions,
                cached_tokens: r.cached_tokens,
                kv_tokens: r.prefilled,
            });
            self.reqs[slot as usize].phase = Phase::Free;
            self.free_slots.push(slot);
        }
    }

    /// KV blocks a hand-off needs on arrival.
    pub fn handoff_blocks(&self, h: &Handoff) -> u64 {
        self.reserved_blocks(h.kv_tokens)
    }

    /// Whether this replica can take `h` into its decoding set now: not in
    /// the middle of an iteration, and enough free (or evictable cached)
    /// blocks above the watermark.
    pub fn can_accept_handoff(&self, h: &Handoff) -> bool {
        let evictable = self.cache.as_ref().map_or(0, |c| c.evictable_blocks());
        !self.busy
            && (self.kv.free() + evictable).saturating_sub(self.kv.watermark()) >= self.handoff_blocks(h)
    }

    /// Whether a request of `full_tokens` KV entries could ever fit here.
    pub fn can_ever_hold(&self, full_tokens: u32) -> bool {
        self.kv.can_ever_admit(self.reserved_blocks(full_tokens))
    }

    /// Admits a hand-off straight into the decoding set at `now` (the caller
    /// checked [`ReplicaState::can_accept_handoff`]). Its last token is its
    /// first token, so the next inter-token gap spans the transfer.
    pub fn accept_handoff(&mut self, h: Handoff, now: Nanos) {
        debug_assert!(self.can_accept_handoff(&h));
        debug_assert!(h.meta.output_tokens > 1 && h.produced <= now);
        let need = self.handoff_blocks(&h);
        let ok = self.make_free(need, self.kv.watermark());
        debug_assert!(ok, "accept_handoff without room");
        self.kv.allocate(need);
        let req = Req {
            spec: h.meta,
            phase: Phase::Waiting,
            scheduled: h.scheduled,
            first_token: h.first_token,
            last_token: h.produced,
            generated: 1,
            prefill_target: h.kv_tokens,
            prefilled: h.kv_tokens,
            blocks: need as u32,
            shared_units: 0,
            shared_blocks: 0,
            cached_tokens: h.cached_tokens,
            host_copy: 0,
            preemptions: h.preemptions,
            step0: 0,
            decode_entry: 0,
        };
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.reqs[s as usize] = req;
                self.prefixes[s as usize] = h.prefix;
                self.identity[s as usize] = h.identity;
                s
            }
            None => {
                self.reqs.push(req);
                self.prefixes.push(h.prefix);
                self.identity.push(h.identity);
                (self.reqs.len() - 1) as u32
            }
        };
        self.running.push(slot);
        self.join_decoding(slot, h.produced);
    }

    /// Makes the pending first token of hand-off `id`, admitted here at this
    /// instant, visible at `t` (semi-PD hand-offs land at once, before
    /// their prefill worker launches its next iteration). Looks at the
    /// requests admitted last; no-op if `id` is not pending here.
    pub fn set_handoff_first_token(&mut self, id: u64, t: Nanos) {
        if let Some(&slot) = self
            .running
            .iter()
            .rev()
            .find(|&&s| self.reqs[s as usize].spec.id == id)
        {
            let r = &mut self.reqs[slot as usize];
            if r.first_token == NONE {
                r.first_token = t;
            }
        }
    }
}
