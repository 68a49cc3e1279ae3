//! The effects of an iteration when it ends, on [`ReplicaState`]: the
//! decoding set's step (tokens, inter-token gaps, finishes), prefill
//! progress (first tokens, prompt units published to the prefix cache,
//! entry into the decoding set), retirement of finished requests (their
//! blocks freed, or kept as a static batch's padding) and their records.

use super::*;

impl ReplicaState {
    /// Applies the batch's effects at its end time `now`.
    pub(crate) fn complete_batch(&mut self, now: Nanos, metrics: &mut Metrics) {
        if self.batch.decode {
            self.complete_decode_step(now, metrics);
        }
        for i in 0..self.batch.prefills.len() {
            let (slot, chunk) = self.batch.prefills[i];
            self.complete_chunk(slot, chunk, now, metrics);
        }
        self.end_static_batch(now, metrics);
    }

    fn complete_decode_step(&mut self, now: Nanos, metrics: &mut Metrics) {
        self.decode.complete_step(now, metrics);
        while let Some(slot) = self.decode.pop_finished() {
            let r = *self.slab.get(slot);
            let kv = self.decode.kv_of(r.prefilled, r.step0);
            self.decode.remove_finished(Self::member(&r));
            debug_assert_eq!(
                r.generated + self.decode.steps_since(r.step0),
                r.spec.output_tokens
            );
            let owned = self.owned_blocks(&r, kv);
            self.retire(slot, owned, kv, now, metrics);
        }
    }

    fn complete_chunk(&mut self, slot: Slot, chunk: u32, now: Nanos, metrics: &mut Metrics) {
        let r = self.slab.get_mut(slot);
        r.prefilled += chunk;
        if r.prefilled < r.prefill_target {
            if self.opts.blocks_per_chunk {
                self.publish_prefix(slot);
            }
            return;
        }
        // Prefill complete: it emits a token.
        if r.first_token == NONE {
            r.first_token = self.outputs.first_token(slot, now);
            if r.first_token != NONE {
                metrics.record_first_token(r.spec.id, r.spec.client, now);
            }
        } else {
            metrics.record_itl(now - r.last_token, 1);
        }
        r.generated += 1;
        r.last_token = now;
        if let Some(i) = self.prefilling.iter().position(|&s| s == slot) {
            self.prefilling.remove(i);
        }
        self.publish_prefix(slot);
        let r = *self.slab.get(slot);
        if r.generated >= r.spec.output_tokens {
            self.retire(slot, r.blocks as u64, r.prefilled, now, metrics);
            return;
        }
        // Join the decoding set; its blocks now derive from its KV length
        // (paged: ⌈kv / B⌉ − shared).
        debug_assert!(
            !self.kv.paged()
                || r.blocks as u64 + r.shared_blocks as u64 == self.kv.blocks_for(r.prefill_target)
        );
        self.join_decoding(slot, now);
    }

    /// A request is done: frees its memory (or, in a static batch, keeps it
    /// as padding until the batch ends) and records it.
    fn retire(&mut self, slot: Slot, owned: u64, kv: u32, now: Nanos, metrics: &mut Metrics) {
        self.running.remove(slot);
        self.kv.free_host(self.slab.get(slot).host_copy as u64);
        if self.opts.static_batch {
            self.padding.seqs += 1;
            self.padding.kv_tokens += kv as u64;
            self.padding.blocks += owned;
        } else {
            let r = self.slab.get(slot);
            let (units, cached) =
                self.kv
                    .publish_sequence(self.slab.prefix(slot), r.spec.prompt_tokens, kv, r.shared_units);
            self.slab.get_mut(slot).shared_units = units;
            self.kv.release(owned - cached);
        }
        self.release_prefix(slot);
        self.finish(slot, now, metrics);
    }

    /// A static batch whose real requests have all finished ends: its
    /// padding is freed and every member's response returns now.
    fn end_static_batch(&mut self, now: Nanos, metrics: &mut Metrics) {
        if !self.opts.static_batch || !self.running.is_empty() || self.padding.seqs == 0 {
            return;
        }
        self.kv.release(self.padding.blocks);
        self.padding = Padding::default();
        self.outputs.release_held(now, metrics);
    }

    /// Makes the tokens and completions of the previous iteration visible at
    /// `now`. With async output processing (vLLM ≥ 0.6) the engine processes
    /// an iteration's outputs while the next iteration runs on the GPU, so a
    /// token's timestamp is the next iteration's start plus its host part
    /// (scheduling and launch) — or the end of its own iteration when no
    /// iteration follows (the replica flushes when it idles).
    pub(crate) fn flush_outputs(&mut self, now: Nanos, metrics: &mut Metrics) {
        self.outputs.flush(now, &mut self.slab, metrics);
    }

    /// Whether outputs of a finished iteration still wait to be made visible.
    pub(crate) fn has_pending_outputs(&self) -> bool {
        self.outputs.has_pending()
    }

    fn finish(&mut self, slot: Slot, now: Nanos, metrics: &mut Metrics) {
        let r = *self.slab.get(slot);
        let (session, program) = self.slab.identity(slot);
        let rec = RequestRecord {
            id: r.spec.id,
            client: r.spec.client,
            session,
            program,
            replica: self.id,
            arrival: r.spec.arrival,
            scheduled: r.scheduled,
            first_token: r.first_token,
            finish: now,
            prompt_tokens: r.spec.prompt_tokens,
            output_tokens: r.spec.output_tokens,
            preemptions: r.preemptions,
            cached_tokens: r.cached_tokens,
            outcome: Outcome::Finished,
        };
        // Its slot is about to be reused: the record carries the pending first token.
        if r.first_token == NONE {
            self.outputs.forget_first_token(slot);
        }
        self.outputs.deliver(rec, metrics);
        self.slab.remove(slot);
    }
}
