//! The bookkeeping of one replica: requests, queues, KV blocks, the batch
//! being formed, and the operations schedulers compose (admit a prefill,
//! continue a chunk, run a decode step, preempt).
//!
//! ## Decoding without touching every sequence
//! Every sequence in the decoding set emits one token per decode step, so
//! the replica keeps a step counter `S` and records, for each decoding
//! sequence, the step `s0` at which it joined and its KV length `kv0` and
//! generated count `g0` then. At step `S` its KV length is `kv0 + S − s0`.
//! What a step needs is kept as running sums, updated only when a sequence
//! joins or leaves:
//! - `decode_kv_sum` = Σ KV lengths (decode attention reads these);
//! - new blocks needed = number of sequences whose KV length is a multiple
//!   of the block size: `(kv0 − s0 + S) mod B = 0`, so a count per residue
//!   `(kv0 − s0) mod B` answers it in O(1);
//! - finishes come from a min-heap keyed by the step at which
//!   `g0 + S − s0` reaches the requested output length;
//! - inter-token gaps: sequences whose last token came at the same time form
//!   a cohort; a step records one gap per cohort (weight = its size).
//!
//! ## Token accounting
//! A prefill of `n` tokens (the prompt, or prompt + generated tokens when a
//! preempted request is recomputed) writes `n` KV entries and emits one
//! token. A decode step writes the KV of the last emitted token and emits the
//! next. A request generating `o` tokens therefore holds `p + o − 1` KV
//! entries when it finishes (vLLM never stores the final token's KV).

use super::memory::KvPool;
use crate::metrics::{Metrics, Outcome, RejectReason, ReplicaSample, RequestRecord};
use crate::timing::BatchShape;
use crate::units::Nanos;
use crate::workload::RequestSpec;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Index of a request in the replica's slab.
pub type Slot = u32;

const NONE: Nanos = Nanos::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Free,
    Waiting,
    Prefilling,
    Decoding,
}

/// The numbers of a [`RequestSpec`] the replica keeps per request (its
/// prefix identity lives in `ReplicaState::prefixes`, which is not `Copy`).
#[derive(Debug, Clone, Copy)]
struct Meta {
    id: u64,
    arrival: Nanos,
    prompt_tokens: u32,
    output_tokens: u32,
    client: u32,
    priority: u32,
}

impl Meta {
    fn of(s: &RequestSpec) -> Meta {
        Meta {
            id: s.id,
            arrival: s.arrival,
            prompt_tokens: s.prompt_tokens,
            output_tokens: s.output_tokens,
            client: s.client,
            priority: s.priority,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Req {
    spec: Meta,
    phase: Phase,
    scheduled: Nanos,
    first_token: Nanos,
    /// Time of the last emitted token (kept while not decoding).
    last_token: Nanos,
    /// Tokens generated (while decoding: at decode entry, `g0`).
    generated: u32,
    /// KV entries the current prefill must reach (prompt + generated).
    prefill_target: u32,
    /// KV entries written so far by the current prefill (while decoding: `kv0`).
    prefilled: u32,
    /// Blocks held (while not decoding; decoders' blocks derive from their KV length).
    blocks: u32,
    preemptions: u32,
    /// Decode step counter at decode entry (`s0`).
    step0: u64,
    /// Time of decode entry (the first token of this decode run).
    decode_entry: Nanos,
}

/// Outcome of trying to admit a waiting request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Admitted,
    /// Not enough free blocks now.
    Later,
}

/// The batch being formed or in flight.
#[derive(Debug, Default)]
struct Batch {
    /// (slot, chunk tokens) of each prefill chunk.
    prefills: Vec<(Slot, u32)>,
    /// Whether the decoding set runs a step in this iteration.
    decode: bool,
    shape: BatchShape,
}

/// Replica bookkeeping. See the module docs for the decode-step scheme.
pub struct ReplicaState {
    pub id: u32,
    block_size: u32,
    kv: KvPool,
    reqs: Vec<Req>,
    free_slots: Vec<Slot>,
    waiting: VecDeque<Slot>,
    /// Admitted requests (prefilling or decoding) in admission order.
    running: Vec<Slot>,
    /// Admitted requests whose prefill is incomplete, in admission order.
    prefilling: Vec<Slot>,
    waiting_prompt_tokens: u64,
    // Decode set.
    step: u64,
    decoding: u32,
    decode_kv_sum: u64,
    residue: Vec<u32>,
    finish_heap: BinaryHeap<Reverse<(u64, Slot)>>,
    cohorts: Vec<(Nanos, u32)>,
    last_step_end: Nanos,
    batch: Batch,
    busy: bool,
    /// Tokens become visible one iteration late (vLLM ≥ 0.6 async output processing).
    async_output: bool,
    /// Requests whose first token the previous iteration produced, not yet visible.
    pending_first: Vec<Slot>,
    /// Requests the previous iteration finished, not yet visible.
    pending_done: Vec<RequestRecord>,
    /// Requests finished or rejected by this replica (for conservation checks).
    pub done: u64,
}

impl ReplicaState {
    pub fn new(id: u32, kv_blocks: u64, block_size: u32, watermark: f64, async_output: bool) -> Self {
        ReplicaState {
            id,
            block_size,
            kv: KvPool::new(kv_blocks, watermark),
            reqs: Vec::new(),
            free_slots: Vec::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            prefilling: Vec::new(),
            waiting_prompt_tokens: 0,
            step: 0,
            decoding: 0,
            decode_kv_sum: 0,
            residue: vec![0; block_size as usize],
            finish_heap: BinaryHeap::new(),
            cohorts: Vec::new(),
            last_step_end: 0,
            batch: Batch::default(),
            busy: false,
            async_output,
            pending_first: Vec::new(),
            pending_done: Vec::new(),
            done: 0,
        }
    }

    // ----- what routers and samplers see -----

    pub fn busy(&self) -> bool {
        self.busy
    }
    pub(crate) fn set_busy(&mut self, b: bool) {
        self.busy = b;
    }
    /// Requests waiting to be admitted.
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }
    /// Admitted requests (prefilling or decoding).
    pub fn num_running(&self) -> usize {
        self.running.len()
    }
    pub fn num_decoding(&self) -> u32 {
        self.decoding
    }
    /// Waiting + running requests.
    pub fn outstanding(&self) -> usize {
        self.waiting.len() + self.running.len()
    }
    /// KV tokens held plus prompt tokens waiting: the load `least-kv` balances.
    pub fn kv_load_tokens(&self) -> u64 {
        self.kv.used() * self.block_size as u64 + self.waiting_prompt_tokens
    }
    pub fn kv(&self) -> &KvPool {
        &self.kv
    }
    pub fn block_size(&self) -> u32 {
        self.block_size
    }
    pub fn has_work(&self) -> bool {
        !self.waiting.is_empty() || !self.running.is_empty()
    }

    pub fn sample(&self) -> ReplicaSample {
        ReplicaSample {
            queued: self.waiting.len() as u32,
            running: self.running.len() as u32,
            kv_blocks_used: self.kv.used(),
            kv_blocks_total: self.kv.total(),
            batch_seqs: if self.busy {
                self.batch.shape.prefill_seqs + self.batch.shape.decode_seqs
            } else {
                0
            },
            batch_tokens: if self.busy {
                self.batch.shape.total_tokens() as u32
            } else {
                0
            },
        }
    }

    fn blocks_for(&self, tokens: u32) -> u64 {
        tokens.div_ceil(self.block_size) as u64
    }

    // ----- arrivals -----

    /// Queues a request, or rejects it if its full sequence can never fit in
    /// this replica's KV cache.
    pub fn enqueue(&mut self, spec: RequestSpec, now: Nanos, metrics: &mut Metrics) {
        let full = spec.prompt_tokens + spec.output_tokens - 1;
        if !self.kv.can_ever_admit(self.blocks_for(full)) {
            self.reject(spec, now, RejectReason::ExceedsKvCapacity, metrics);
            return;
        }
        let req = Req {
            spec: Meta::of(&spec),
            phase: Phase::Waiting,
            scheduled: NONE,
            first_token: NONE,
            last_token: NONE,
            generated: 0,
            prefill_target: spec.prompt_tokens,
            prefilled: 0,
            blocks: 0,
            preemptions: 0,
            step0: 0,
            decode_entry: 0,
        };
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.reqs[s as usize] = req;
                s
            }
            None => {
                self.reqs.push(req);
                (self.reqs.len() - 1) as Slot
            }
        };
        self.waiting.push_back(slot);
        self.waiting_prompt_tokens += spec.prompt_tokens as u64;
    }

    /// Records a rejection decided outside the replica's memory (e.g. max_model_len).
    pub fn reject(&mut self, spec: RequestSpec, now: Nanos, reason: RejectReason, metrics: &mut Metrics) {
        self.done += 1;
        metrics.record_request(RequestRecord {
            id: spec.id,
            client: spec.client,
            replica: self.id,
            arrival: spec.arrival,
            scheduled: now,
            first_token: now,
            finish: now,
            prompt_tokens: spec.prompt_tokens,
            output_tokens: 0,
            preemptions: 0,
            outcome: Outcome::Rejected(reason),
        });
    }

    // ----- batch formation (used by schedulers) -----

    pub(crate) fn begin_batch(&mut self) {
        self.batch.prefills.clear();
        self.batch.decode = false;
        self.batch.shape = BatchShape::default();
    }

    pub fn batch_shape(&self) -> BatchShape {
        self.batch.shape
    }

    /// Sequences already in the batch being formed.
    pub fn batch_seqs(&self) -> u32 {
        self.batch.shape.prefill_seqs + self.batch.shape.decode_seqs
    }

    /// Tokens already in the batch being formed.
    pub fn batch_tokens(&self) -> u64 {
        self.batch.shape.total_tokens()
    }

    /// The request at the head of the waiting queue.
    pub fn peek_waiting(&self) -> Option<Slot> {
        self.waiting.front().copied()
    }

    /// Prefill tokens still to compute for a waiting or prefilling request.
    pub fn prefill_remaining(&self, slot: Slot) -> u32 {
        let r = &self.reqs[slot as usize];
        r.prefill_target - r.prefilled
    }

    /// Admits the head of the waiting queue with a first prefill chunk of
    /// `chunk` tokens, allocating blocks for its whole prefill (as vLLM's
    /// block manager does), if the watermark allows.
    pub fn admit_head(&mut self, chunk: u32, now: Nanos) -> Admit {
        let slot = self.waiting.front().copied().expect("admit_head on empty queue");
        let need = self.blocks_for(self.reqs[slot as usize].prefill_target);
        if !self.kv.can_admit(need) {
            return Admit::Later;
        }
        self.waiting.pop_front();
        self.kv.allocate(need);
        let r = &mut self.reqs[slot as usize];
        self.waiting_prompt_tokens -= r.spec.prompt_tokens as u64;
        r.blocks = need as u32;
        r.phase = Phase::Prefilling;
        if r.scheduled == NONE {
            r.scheduled = now;
        }
        self.running.push(slot);
        self.prefilling.push(slot);
        self.add_chunk(slot, chunk);
        Admit::Admitted
    }

    /// Admitted requests whose prefill is not complete, in admission order.
    pub fn prefilling(&self) -> &[Slot] {
        &self.prefilling
    }

    /// Adds a prefill chunk of an admitted request to the batch.
    pub fn add_chunk(&mut self, slot: Slot, chunk: u32) {
        let r = &self.reqs[slot as usize];
        debug_assert!(chunk >= 1 && chunk <= r.prefill_target - r.prefilled);
        self.batch.prefills.push((slot, chunk));
        self.batch
            .shape
            .add_prefill_chunk(r.prefilled as u64, chunk as u64);
    }

    /// New KV blocks the decoding set needs for its next step.
    pub fn decode_blocks_needed(&self) -> u64 {
        let b = self.block_size as u64;
        self.residue[((b - self.step % b) % b) as usize] as u64
    }

    /// Preempts (newest first, by recompute) until the decoding set's next
    /// step fits in free blocks. Returns the number of preemptions.
    pub fn make_room_for_decode(&mut self, now: Nanos) -> u32 {
        let mut n = 0;
        while self.decoding > 0 && self.decode_blocks_needed() > self.kv.free() {
            self.preempt_newest(now);
            n += 1;
        }
        n
    }

    /// Adds one decode step of every decoding sequence to the batch,
    /// allocating the blocks it needs (the caller made room).
    pub fn add_decode_step(&mut self) {
        if self.decoding == 0 {
            return;
        }
        let need = self.decode_blocks_needed();
        self.kv.allocate(need);
        self.batch.decode = true;
        self.batch.shape.decode_seqs = self.decoding;
        self.batch.shape.decode_kv_tokens = self.decode_kv_sum + self.decoding as u64;
    }

    /// Preempts the most recently admitted running request by recompute:
    /// its blocks are freed and it goes to the front of the waiting queue,
    /// to prefill prompt + generated tokens again when readmitted.
    pub fn preempt_newest(&mut self, now: Nanos) {
        let slot = self.running.pop().expect("preempt with nothing running");
        let r = self.reqs[slot as usize];
        match r.phase {
            Phase::Decoding => {
                let kv = self.decode_kv(&r);
                let generated = r.generated + (self.step - r.step0) as u32;
                self.leave_decoding(slot, &r);
                self.kv.release(self.blocks_for(kv));
                let last = r.decode_entry.max(self.last_step_end);
                self.remove_from_cohort(last);
                let q = &mut self.reqs[slot as usize];
                q.generated = generated;
                q.last_token = last;
            }
            Phase::Prefilling => {
                self.kv.release(r.blocks as u64);
                if let Some(i) = self.prefilling.iter().position(|&s| s == slot) {
                    self.prefilling.remove(i);
                }
            }
            Phase::Waiting | Phase::Free => unreachable!("running request in phase {:?}", r.phase),
        }
        let q = &mut self.reqs[slot as usize];
        q.phase = Phase::Waiting;
        q.blocks = 0;
        q.prefilled = 0;
        q.prefill_target = q.spec.prompt_tokens + q.generated;
        q.preemptions += 1;
        self.waiting_prompt_tokens += q.spec.prompt_tokens as u64;
        self.waiting.push_front(slot);
        let _ = now;
    }

    fn decode_kv(&self, r: &Req) -> u32 {
        r.prefilled + (self.step - r.step0) as u32
    }

    fn residue_of(&self, kv0: u32, step0: u64) -> usize {
        let b = self.block_size as u64;
        ((kv0 as u64 % b + b - step0 % b) % b) as usize
    }

    fn leave_decoding(&mut self, slot: Slot, r: &Req) {
        let kv = self.decode_kv(r);
        let res = self.residue_of(r.prefilled, r.step0);
        self.residue[res] -= 1;
        self.decoding -= 1;
        self.decode_kv_sum -= kv as u64;
        self.finish_heap.retain(|&Reverse((_, s))| s != slot);
    }

    fn remove_from_cohort(&mut self, time: Nanos) {
        if let Some(i) = self.cohorts.iter().position(|c| c.0 == time) {
            self.cohorts[i].1 -= 1;
            if self.cohorts[i].1 == 0 {
                self.cohorts.remove(i);
            }
        } else {
            debug_assert!(false, "decoding request without a cohort");
        }
    }

    // ----- iteration completion -----

    /// Applies the batch's effects at its end time `now`.
    pub(crate) fn complete_batch(&mut self, now: Nanos, metrics: &mut Metrics) {
        if self.batch.decode {
            self.complete_decode_step(now, metrics);
        }
        for i in 0..self.batch.prefills.len() {
            let (slot, chunk) = self.batch.prefills[i];
            self.complete_chunk(slot, chunk, now, metrics);
        }
    }

    fn complete_decode_step(&mut self, now: Nanos, metrics: &mut Metrics) {
        for &(t, n) in &self.cohorts {
            metrics.record_itl(now - t, n);
        }
        self.cohorts.clear();
        self.cohorts.push((now, self.decoding));
        self.last_step_end = now;
        self.decode_kv_sum += self.decoding as u64;
        self.step += 1;
        while let Some(&Reverse((at, slot))) = self.finish_heap.peek() {
            if at > self.step {
                break;
            }
            self.finish_heap.pop();
            let r = self.reqs[slot as usize];
            let kv = self.decode_kv(&r);
            let res = self.residue_of(r.prefilled, r.step0);
            self.residue[res] -= 1;
            self.decoding -= 1;
            self.decode_kv_sum -= kv as u64;
            self.kv.release(self.blocks_for(kv));
            self.remove_from_cohort(now);
            let generated = r.generated + (self.step - r.step0) as u32;
            debug_assert_eq!(generated, r.spec.output_tokens);
            self.remove_running(slot);
            self.finish(slot, now, metrics);
        }
    }

    fn complete_chunk(&mut self, slot: Slot, chunk: u32, now: Nanos, metrics: &mut Metrics) {
        let r = &mut self.reqs[slot as usize];
        r.prefilled += chunk;
        if r.prefilled < r.prefill_target {
            return;
        }
        // Prefill complete: it emits a token.
        if r.first_token == NONE {
            if self.async_output {
                self.pending_first.push(slot);
            } else {
                r.first_token = now;
            }
        } else {
            metrics.record_itl(now - r.last_token, 1);
        }
        r.generated += 1;
        r.last_token = now;
        if let Some(i) = self.prefilling.iter().position(|&s| s == slot) {
            self.prefilling.remove(i);
        }
        let r = self.reqs[slot as usize];
        if r.generated >= r.spec.output_tokens {
            self.kv.release(r.blocks as u64);
            self.remove_running(slot);
            self.finish(slot, now, metrics);
            return;
        }
        // Join the decoding set; its blocks now derive from its KV length,
        // which equals the prefill target (blocks = ceil(kv / B)).
        debug_assert_eq!(r.blocks as u64, self.blocks_for(r.prefill_target));
        let q = &mut self.reqs[slot as usize];
        q.phase = Phase::Decoding;
        q.step0 = self.step;
        q.decode_entry = now;
        let res = self.residue_of(r.prefilled, self.step);
        self.residue[res] += 1;
        self.decoding += 1;
        self.decode_kv_sum += r.prefilled as u64;
        let finish_at = self.step + (r.spec.output_tokens - r.generated) as u64;
        self.finish_heap.push(Reverse((finish_at, slot)));
        match self.cohorts.last_mut() {
            Some(c) if c.0 == now => c.1 += 1,
            _ => self.cohorts.push((now, 1)),
        }
    }

    /// Makes the tokens and completions of the previous iteration visible at
    /// `now`. With async output processing (vLLM ≥ 0.6) the engine processes
    /// an iteration's outputs while the next iteration runs on the GPU, so a
    /// token's timestamp is the next iteration's start plus its host part
    /// (scheduling and launch) — or the end of its own iteration when no
    /// iteration follows (the replica flushes when it idles).
    pub fn flush_outputs(&mut self, now: Nanos, metrics: &mut Metrics) {
        for i in 0..self.pending_first.len() {
            let slot = self.pending_first[i];
            self.reqs[slot as usize].first_token = now;
        }
        self.pending_first.clear();
        for mut rec in self.pending_done.drain(..) {
            if rec.first_token == NONE {
                rec.first_token = now;
            }
            rec.finish = now;
            metrics.record_request(rec);
        }
    }

    /// Whether outputs of a finished iteration still wait to be made visible.
    pub fn has_pending_outputs(&self) -> bool {
        !self.pending_first.is_empty() || !self.pending_done.is_empty()
    }

    fn remove_running(&mut self, slot: Slot) {
        if let Some(i) = self.running.iter().position(|&s| s == slot) {
            self.running.remove(i);
        }
    }

    fn finish(&mut self, slot: Slot, now: Nanos, metrics: &mut Metrics) {
        let r = &mut self.reqs[slot as usize];
        r.phase = Phase::Free;
        self.done += 1;
        let pending_first = self.async_output && r.first_token == NONE;
        if pending_first && let Some(i) = self.pending_first.iter().position(|&s| s == slot) {
            self.pending_first.remove(i);
        }
        let rec = RequestRecord {
            id: r.spec.id,
            client: r.spec.client,
            replica: self.id,
            arrival: r.spec.arrival,
            scheduled: r.scheduled,
            first_token: r.first_token,
            finish: now,
            prompt_tokens: r.spec.prompt_tokens,
            output_tokens: r.spec.output_tokens,
            preemptions: r.preemptions,
            outcome: Outcome::Finished,
        };
        if self.async_output {
            self.pending_done.push(rec);
        } else {
            metrics.record_request(rec);
        }
        self.free_slots.push(slot);
    }

    /// Checks the invariants that tie the running sums to the per-request
    /// state (O(requests); for tests and debug builds).
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut blocks = 0u64;
        let mut decoding = 0u32;
        let mut kv_sum = 0u64;
        for &slot in &self.running {
            let r = &self.reqs[slot as usize];
            match r.phase {
                Phase::Decoding => {
                    let kv = self.decode_kv(r);
                    blocks += self.blocks_for(kv);
                    decoding += 1;
                    kv_sum += kv as u64;
                }
                Phase::Prefilling => blocks += r.blocks as u64,
                p => return Err(format!("running request in phase {p:?}")),
            }
        }
        // Blocks allocated for the in-flight decode step are counted by the
        // pool but not yet reflected in KV lengths.
        let in_flight = if self.busy && self.batch.decode {
            // Each decoder whose KV length is a block multiple got one block.
            self.decode_blocks_needed()
        } else {
            0
        };
        if blocks + in_flight != self.kv.used() {
            return Err(format!(
                "KV blocks: requests hold {blocks} (+{in_flight} for the step in flight), pool says {}",
                self.kv.used()
            ));
        }
        if self.kv.used() > self.kv.total() {
            return Err(format!(
                "KV blocks used {} exceed capacity {}",
                self.kv.used(),
                self.kv.total()
            ));
        }
        if decoding != self.decoding || kv_sum != self.decode_kv_sum {
            return Err(format!(
                "decode sums: {decoding} seqs / {kv_sum} KV tokens recomputed, {} / {} kept",
                self.decoding, self.decode_kv_sum
            ));
        }
        let cohort_total: u32 = self.cohorts.iter().map(|c| c.1).sum();
        if cohort_total != self.decoding {
            return Err(format!(
                "cohorts hold {cohort_total} sequences, {} decoding",
                self.decoding
            ));
        }
        Ok(())
    }
}

// Prefill/decode hand-off (disaggregation, semi-PD): new operations only,
// in their own file; a child module so they can use the fields above.
#[path = "handoff.rs"]
mod handoff;
pub use handoff::Handoff;
