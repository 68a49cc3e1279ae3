//! Moving a request with its KV in place out of one replica and into
//! another's decoding set, on [`ReplicaState`]: the primitives the
//! prefill/decode hand-off (`replica::handoff`) is built from.

use super::*;

impl ReplicaState {
    /// Slots of the batch that just ended whose prefill completed in it and
    /// that joined the decoding set (at `now`, the iteration's end).
    pub(crate) fn just_prefilled(&self, i: usize, now: Nanos) -> Option<Slot> {
        let slot = self.batch.prefills.get(i)?.0;
        let r = self.slab.get(slot);
        (r.phase == Phase::Decoding && r.decode_entry == now && r.step0 == self.decode.step()).then_some(slot)
    }

    /// Prefill chunks in the batch that just ended.
    pub(crate) fn batch_prefill_count(&self) -> usize {
        self.batch.prefills.len()
    }

    /// Takes a decoding request out of this replica: it leaves the decoding
    /// set, its own blocks and cache references are freed (its prompt
    /// prefix stays cached) and its slot is reused. A first token still
    /// pending output processing goes with it (`first_token == NONE`).
    pub(crate) fn detach_decoding(&mut self, slot: Slot) -> Detached {
        let r = *self.slab.get(slot);
        debug_assert_eq!(r.phase, Phase::Decoding);
        let kv = self.decode.kv_of(r.prefilled, r.step0);
        let last = self.decode.last_token_of(r.step0, r.decode_entry);
        self.decode.leave(slot, Self::member(&r), last);
        self.kv.release(self.owned_blocks(&r, kv));
        self.release_prefix(slot);
        self.running.remove(slot);
        if r.first_token == NONE {
            self.outputs.forget_first_token(slot);
        }
        let identity = self.slab.identity(slot);
        Detached {
            meta: r.spec,
            prefix: self.slab.remove(slot),
            identity,
            scheduled: r.scheduled,
            first_token: r.first_token,
            generated: r.generated + self.decode.steps_since(r.step0),
            preemptions: r.preemptions,
            cached_tokens: r.cached_tokens,
            kv_tokens: kv,
        }
    }

    /// Whether `blocks` could be allocated now for a request arriving with
    /// its KV: not in the middle of an iteration, and enough free (or
    /// evictable cached) blocks above the watermark.
    pub(crate) fn can_take(&self, blocks: u64) -> bool {
        !self.busy && self.kv.admittable() >= blocks
    }

    /// Blocks a request holding `kv_tokens` KV entries needs on arrival.
    pub(crate) fn blocks_on_arrival(&self, kv_tokens: u32) -> u64 {
        self.kv.reserved_blocks(kv_tokens)
    }

    /// Admits a detached request straight into the decoding set, its KV in
    /// place; its last token was produced at `last` (so its next
    /// inter-token gap counts from there). The caller checked
    /// [`ReplicaState::can_take`].
    pub(crate) fn attach_decoding(&mut self, d: Detached, last: Nanos) {
        let need = self.blocks_on_arrival(d.kv_tokens);
        let ok = self.kv.make_free_for_admission(need);
        debug_assert!(ok, "attach_decoding without room");
        self.kv.allocate(need);
        let req = Req {
            spec: d.meta,
            phase: Phase::Waiting,
            scheduled: d.scheduled,
            first_token: d.first_token,
            last_token: last,
            generated: d.generated,
            prefill_target: d.kv_tokens,
            prefilled: d.kv_tokens,
            blocks: need as u32,
            shared_units: 0,
            shared_blocks: 0,
            cached_tokens: d.cached_tokens,
            host_copy: 0,
            preemptions: d.preemptions,
            step0: 0,
            decode_entry: 0,
        };
        let slot = self.slab.insert(req, d.prefix, d.identity);
        self.running.push_back(slot);
        self.join_decoding(slot, last);
    }

    /// Makes the pending first token of request `id`, attached here at
    /// this instant, visible at `t`. Looks at the requests admitted last.
    /// Returns its client if it was pending here.
    pub(crate) fn set_first_token_of(&mut self, id: u64, t: Nanos) -> Option<u32> {
        let slot = self
            .running
            .iter()
            .rev()
            .find(|&s| self.slab.get(s).spec.id == id)?;
        let r = self.slab.get_mut(slot);
        if r.first_token != NONE {
            return None;
        }
        r.first_token = t;
        Some(r.spec.client)
    }
}
