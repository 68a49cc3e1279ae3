//! The operations schedulers compose to form a batch, on [`ReplicaState`]:
//! admit the head of the waiting queue (with its cached prefix), add a
//! chunk of a prefill in progress, add the decoding set's step, make room
//! for it by evicting cached prefixes and preempting (by recompute or swap),
//! and swap a preempted request back in.
//!
//! Each keeps the parts consistent: a request's blocks are allocated in the
//! ledger when it is given them, and it enters or leaves the decoding set
//! and the queues in the same operation that changes its phase.

use super::*;

impl ReplicaState {
    pub(crate) fn begin_batch(&mut self) {
        self.batch.clear();
        self.wait_until = None;
    }

    /// Ids of the requests preempted, and of those readmitted after a
    /// preemption, while the current batch was formed (in that order of events).
    pub(crate) fn batch_preemptions(&self) -> (&[u64], &[u64]) {
        (&self.batch.preempted, &self.batch.resumed)
    }

    /// Swap I/O time (seconds) the current batch's scheduling caused.
    pub(crate) fn batch_swap_secs(&self) -> f64 {
        self.batch.swap_secs
    }

    pub fn batch_shape(&self) -> BatchShape {
        self.batch.shape
    }

    /// Sequences already in the batch being formed.
    pub fn batch_seqs(&self) -> u32 {
        self.batch.seqs()
    }

    /// Tokens already in the batch being formed.
    pub fn batch_tokens(&self) -> u64 {
        self.batch.shape.total_tokens()
    }

    /// Asks the engine to wake this replica at `t` although it runs nothing
    /// now (a scheduler holding requests back, e.g. LAPS's batching window).
    pub fn wait_until(&mut self, t: Nanos) {
        self.wait_until = Some(self.wait_until.map_or(t, |w| w.min(t)));
    }

    pub(crate) fn wake_time(&self) -> Option<Nanos> {
        self.wait_until
    }

    /// The request at the head of the waiting queue.
    pub fn peek_waiting(&self) -> Option<Slot> {
        self.waiting.front()
    }

    /// Moves a waiting request to the head of the queue (schedulers that do
    /// not serve in arrival order). O(1).
    pub fn promote_waiting(&mut self, slot: Slot) {
        if self.waiting.front() != Some(slot) {
            self.waiting.promote(slot);
        }
    }

    /// Leading prefix units of a waiting request found in the cache.
    fn cache_hit_units(&self, slot: Slot) -> u32 {
        let r = self.slab.get(slot);
        self.kv
            .hit_units(self.slab.prefix(slot), r.spec.prompt_tokens, r.prefill_target)
    }

    fn unit_tokens(&self, slot: Slot) -> u32 {
        let r = self.slab.get(slot);
        self.kv
            .prefix_shape(self.slab.prefix(slot), r.spec.prompt_tokens)
            .unit_tokens
    }

    /// Prompt tokens of a waiting request the prefix cache holds now.
    pub fn cached_prefix_tokens(&self, slot: Slot) -> u32 {
        self.cache_hit_units(slot) * self.unit_tokens(slot)
    }

    /// Prefill tokens still to compute for a waiting or prefilling request
    /// (for a waiting one, net of what the prefix cache holds now).
    pub fn prefill_remaining(&self, slot: Slot) -> u32 {
        let r = self.slab.get(slot);
        let cached = if r.phase == Phase::Waiting {
            self.cached_prefix_tokens(slot)
        } else {
            0
        };
        r.prefill_target - r.prefilled - cached
    }

    /// Admits the head of the waiting queue: references its cached prefix,
    /// allocates blocks for its whole prefill (as vLLM's block manager does;
    /// the maximum length in reserved mode) if the watermark allows, and adds
    /// a first chunk of at most `max_chunk` tokens.
    pub fn admit_head(&mut self, max_chunk: u32, now: Nanos) -> Admit {
        let slot = self.waiting.front().expect("admit_head on empty queue");
        let r = *self.slab.get(slot);
        let shape = self.kv.prefix_shape(self.slab.prefix(slot), r.spec.prompt_tokens);
        let hit = self.cache_hit_units(slot);
        let shared_blocks = hit * shape.unit_blocks;
        let hit_tokens = hit * shape.unit_tokens;
        let chunk = max_chunk.min(r.prefill_target - hit_tokens);
        let need = match self.opts.kv_mode {
            KvMode::Reserve { .. } => self.kv.reserved_blocks(r.prefill_target),
            KvMode::Paged if self.opts.blocks_per_chunk => {
                self.kv.blocks_for(hit_tokens + chunk) - shared_blocks as u64
            }
            KvMode::Paged => self.kv.blocks_for(r.prefill_target) - shared_blocks as u64,
        };
        // Reference the hits first so that making room cannot evict them.
        self.kv.acquire(self.slab.prefix(slot), hit);
        let room = if self.opts.blocks_per_chunk {
            self.kv.make_free(need, 0)
        } else {
            self.kv.make_free_for_admission(need)
        };
        if !room {
            self.kv.release_units(self.slab.prefix(slot), hit);
            return Admit::Later;
        }
        self.waiting.remove(slot);
        self.kv.allocate(need);
        let first = r.scheduled == NONE;
        self.kv.count_lookup(r.spec.prompt_tokens, hit_tokens);
        self.waiting_prompt_tokens -= r.spec.prompt_tokens as u64;
        let q = self.slab.get_mut(slot);
        q.blocks = need as u32;
        q.shared_units = hit;
        q.shared_blocks = shared_blocks;
        q.prefilled = hit_tokens;
        q.phase = Phase::Prefilling;
        if first {
            q.scheduled = now;
            q.cached_tokens = hit_tokens;
        } else {
            self.batch.resumed.push(q.spec.id);
        }
        self.running.push_back(slot);
        self.prefilling.push(slot);
        self.add_chunk(slot, chunk);
        Admit::Admitted(chunk)
    }

    /// Drops a request's cache references.
    pub(super) fn release_prefix(&mut self, slot: Slot) {
        let units = self.slab.get(slot).shared_units;
        self.kv.release_units(self.slab.prefix(slot), units);
        let r = self.slab.get_mut(slot);
        r.shared_units = 0;
        r.shared_blocks = 0;
    }

    /// Hands a request's computed prompt units to the prefix cache: the
    /// units wholly within its `prefilled` tokens (all of them when its
    /// prefill just completed); the blocks move from the request to the cache.
    pub(super) fn publish_prefix(&mut self, slot: Slot) {
        let r = *self.slab.get(slot);
        let prefix = self.slab.prefix(slot);
        let mut shape = self.kv.prefix_shape(prefix, r.spec.prompt_tokens);
        if let Some(done) = r.prefilled.checked_div(shape.unit_tokens) {
            shape.units = shape.units.min(done);
        }
        let moved = self.kv.publish_prompt(prefix, shape, r.shared_units);
        if moved > 0 {
            let q = self.slab.get_mut(slot);
            q.blocks -= moved;
            q.shared_units = shape.units;
            q.shared_blocks += moved;
        }
    }

    /// Admitted requests whose prefill is not complete, in admission order.
    pub fn prefilling(&self) -> &[Slot] {
        &self.prefilling
    }

    /// Adds a prefill chunk of an admitted request to the batch.
    pub fn add_chunk(&mut self, slot: Slot, chunk: u32) {
        let r = self.slab.get(slot);
        debug_assert!(chunk >= 1 && chunk <= r.prefill_target - r.prefilled);
        self.batch.add_prefill(slot, r.prefilled, chunk);
    }

    /// New blocks a prefilling request needs to compute `chunk` more
    /// tokens (0 unless its blocks are allocated per chunk).
    pub fn chunk_blocks_needed(&self, slot: Slot, chunk: u32) -> u64 {
        let r = self.slab.get(slot);
        if !self.opts.blocks_per_chunk {
            return 0;
        }
        let held = r.blocks as u64 + r.shared_blocks as u64;
        self.kv.blocks_for(r.prefilled + chunk).saturating_sub(held)
    }

    /// Adds a chunk of a prefilling request to the batch after allocating
    /// the blocks it needs (evicting unreferenced cached prefixes if it
    /// must). Returns false, adding nothing, when they cannot be had.
    pub fn try_add_chunk(&mut self, slot: Slot, chunk: u32) -> bool {
        let need = self.chunk_blocks_needed(slot, chunk);
        if !self.kv.make_free(need, 0) {
            return false;
        }
        self.kv.allocate(need);
        self.slab.get_mut(slot).blocks += need as u32;
        self.add_chunk(slot, chunk);
        true
    }

    /// New KV blocks the decoding set needs for its next step.
    pub fn decode_blocks_needed(&self) -> u64 {
        if !self.kv.paged() {
            return 0;
        }
        self.decode.blocks_needed()
    }

    /// Whether the decoding set's next step fits in free (or evictable cached) blocks.
    pub fn decode_fits(&self) -> bool {
        self.decode_blocks_needed() <= self.kv.pool().free() + self.kv.evictable()
    }

    /// Frees room (evicting cached prefixes, then preempting by the replica's
    /// victim policy) until the decoding set's next step fits. Returns the
    /// number of preemptions.
    pub fn make_room_for_decode(&mut self) -> u32 {
        let mut n = 0;
        while self.decode.len() > 0 && !self.kv.make_free(self.decode_blocks_needed(), 0) {
            let victim = self.pick_victim();
            self.preempt(victim);
            n += 1;
        }
        n
    }

    /// The running request the victim policy would preempt.
    pub fn pick_victim(&self) -> Slot {
        match self.opts.victim {
            Victim::Newest => self.running.newest().expect("preempt with nothing running"),
            // `max_by_key` keeps the last maximum: in admission order, the newest.
            Victim::LowestPriority => self
                .running
                .iter()
                .max_by_key(|&s| self.slab.get(s).spec.priority)
                .expect("preempt with nothing running"),
        }
    }

    /// Adds one decode step of every decoding sequence to the batch,
    /// allocating the blocks it needs (the caller made room).
    pub fn add_decode_step(&mut self) {
        let decoding = self.decode.len();
        if decoding == 0 {
            // A static batch's padding ends with its last live member
            // (`end_static_batch`), so nothing is left to compute.
            debug_assert_eq!(self.padding.seqs, 0, "padding outlived its static batch");
            return;
        }
        let need = self.decode_blocks_needed();
        self.kv.allocate(need);
        self.batch.decode = true;
        // Static batches keep computing their finished members (padding).
        self.batch.shape.decode_seqs = decoding + self.padding.seqs;
        self.batch.shape.decode_kv_tokens = self.decode.kv_sum() + decoding as u64 + self.padding.kv_tokens;
    }

    /// Preempts a running request. A decoding request is swapped to host
    /// memory when the replica swaps and the host has room (it resumes
    /// decoding after a swap-in); otherwise — and always for a request still
    /// prefilling — it is preempted by recompute: its blocks are freed and it
    /// goes to the front of the waiting queue, to prefill prompt + generated
    /// tokens again when readmitted.
    pub fn preempt(&mut self, slot: Slot) {
        let was_running = self.running.remove(slot);
        assert!(was_running, "preempting a request that is not running");
        let r = *self.slab.get(slot);
        let mut generated = r.generated;
        let mut last = r.last_token;
        match r.phase {
            Phase::Decoding => {
                let kv = self.decode.kv_of(r.prefilled, r.step0);
                generated += self.decode.steps_since(r.step0);
                last = self.decode.last_token_of(r.step0, r.decode_entry);
                self.decode.leave(slot, Self::member(&r), last);
                if self.try_swap_out(slot, kv, generated, last) {
                    return;
                }
                self.kv.release(self.owned_blocks(&r, kv));
            }
            Phase::Prefilling => {
                self.kv.release(r.blocks as u64);
                if let Some(i) = self.prefilling.iter().position(|&s| s == slot) {
                    self.prefilling.remove(i);
                }
            }
            p => unreachable!("running request in phase {p:?}"),
        }
        self.release_prefix(slot);
        self.counters.preemptions_recompute += 1;
        let q = self.slab.get_mut(slot);
        q.generated = generated;
        q.last_token = last;
        q.phase = Phase::Waiting;
        q.blocks = 0;
        q.prefilled = 0;
        q.prefill_target = q.spec.prompt_tokens + q.generated;
        q.preemptions += 1;
        let (id, client, priority, prompt) =
            (q.spec.id, q.spec.client, q.spec.priority, q.spec.prompt_tokens);
        self.waiting_prompt_tokens += prompt as u64;
        self.batch.preempted.push(id);
        self.waiting.push_front(slot, client, priority);
    }

    /// Blocks a running request owns (see the module docs).
    pub(super) fn owned_blocks(&self, r: &Req, kv: u32) -> u64 {
        match (self.opts.kv_mode, r.phase) {
            (KvMode::Reserve { .. }, _) | (_, Phase::Prefilling) => r.blocks as u64,
            _ => self.kv.blocks_for(kv) - r.shared_blocks as u64,
        }
    }

    /// Swaps a decoding request (already out of the decode set) to host
    /// memory, if the replica swaps and the host has room.
    fn try_swap_out(&mut self, slot: Slot, kv: u32, generated: u32, last: Nanos) -> bool {
        let Some(swap) = self.opts.swap else { return false };
        let r = *self.slab.get(slot);
        let blocks = self.kv.blocks_for(kv);
        let reused = if swap.reuse {
            (r.host_copy as u64).min(blocks)
        } else {
            0
        };
        if !self.kv.take_host(blocks - reused) {
            return false;
        }
        // The full KV goes to the host (shared prefix blocks included), so
        // the request lets go of its cache references.
        let moved = (blocks - reused).max(1);
        self.kv.release(self.owned_blocks(&r, kv));
        self.release_prefix(slot);
        self.batch.swap_secs += swap.time(moved);
        self.counters.swapped_out_blocks += moved;
        self.counters.preemptions_swap += 1;
        let q = self.slab.get_mut(slot);
        q.phase = Phase::Swapped;
        q.prefilled = kv;
        q.generated = generated;
        q.last_token = last;
        q.host_copy = blocks as u32;
        q.preemptions += 1;
        let id = q.spec.id;
        self.batch.preempted.push(id);
        self.swapped.push_back(slot);
        true
    }

    /// Requests swapped out to host memory.
    pub fn num_swapped(&self) -> usize {
        self.swapped.len()
    }

    /// Swaps the oldest swapped-out request back in if its blocks fit with
    /// one block to spare beyond the watermark and beyond what this step's
    /// decodes need, and `max_num_seqs` allows; it rejoins the decoding
    /// set. Returns whether it did.
    ///
    /// vLLM 0.6 schedules the running decodes first (preempting if their new
    /// blocks do not fit) and swaps in only when that preempted nothing, each
    /// swapped request needing `len(blocks) + num_swapped_seqs` free beyond
    /// the watermark (`BlockSpaceManagerV1.can_swap_in`: "conservatively, we
    /// assume that every sequence will allocate at least one free block right
    /// after the swap-in"). Counting the decodes' blocks here gives the same
    /// answer in either order: a swap-in never makes the step preempt. The
    /// spare block is checked, not allocated (though cached prefix blocks
    /// are evicted to make it free, where vLLM would evict lazily). Without
    /// these a request whose KV fills its last block would come back and be
    /// swapped out again in the same step.
    pub fn resume_swapped(&mut self, max_seqs: u32) -> bool {
        let Some(&slot) = self.swapped.front() else {
            return false;
        };
        if self.running.len() as u32 >= max_seqs {
            return false;
        }
        let kv = self.slab.get(slot).prefilled;
        let need = self.kv.reserved_blocks(kv);
        let decodes = self.decode_blocks_needed();
        if !self.kv.make_free_for_admission(need + 1 + decodes) {
            return false;
        }
        let swap = self.opts.swap.expect("swapped requests imply a swap model");
        self.swapped.pop_front();
        self.kv.allocate(need);
        let blocks = self.kv.blocks_for(kv);
        self.batch.swap_secs += swap.time(blocks);
        self.counters.swapped_in_blocks += blocks;
        if !swap.reuse {
            self.kv.free_host(blocks);
            self.slab.get_mut(slot).host_copy = 0;
        }
        let r = self.slab.get_mut(slot);
        r.blocks = need as u32;
        let (id, last) = (r.spec.id, r.last_token);
        self.batch.resumed.push(id);
        self.running.push_back(slot);
        self.join_decoding(slot, last);
        true
    }

    /// Adds a request whose KV (`prefilled` tokens) is in place to the
    /// decoding set; its last token was produced at `last`.
    pub(super) fn join_decoding(&mut self, slot: Slot, last: Nanos) {
        let r = *self.slab.get(slot);
        let remaining = r.spec.output_tokens - r.generated;
        let step0 = self
            .decode
            .join(slot, r.prefilled, r.spec.client, remaining, last);
        let q = self.slab.get_mut(slot);
        q.phase = Phase::Decoding;
        q.step0 = step0;
        q.decode_entry = last;
    }
}
