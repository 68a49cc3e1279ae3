//! The bookkeeping of one replica: requests, queues, KV blocks (paged or
//! reserved, shared through the prefix cache, swapped to host), the batch
//! being formed, and the operations schedulers compose (admit a prefill,
//! continue a chunk, run a decode step, preempt, resume a swapped request).
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
//!   `(kv0 − s0) mod B` answers it in O(1) (0 in reserved mode);
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
//! Prompt tokens found in the prefix cache are not computed again: the
//! prefill starts after them (vLLM and SGLang always compute at least the
//! last prompt token, so a full hit still prefills one unit).
//!
//! ## Block accounting
//! The pool's used blocks = blocks owned by running requests + blocks held
//! by the prefix cache (shared by running requests, or unreferenced and
//! evictable) + blocks of finished requests kept as padding by a static
//! batch. A running request owns:
//! - paged mode: `⌈kv / B⌉ − shared` (shared = its cached prefix units'
//!   blocks), allocated for the whole prefill at admission and one block at
//!   a time while decoding;
//! - reserved mode (Orca, FasterTransformer): `⌈max_model_len / B⌉` from
//!   admission to the end, never growing.
//!
//! Unreferenced cached blocks are evicted (LRU) before anyone is preempted.

use super::memory::KvPool;
use super::prefix_cache::PrefixCache;
use super::queue::WaitQueue;
use super::swap::SwapModel;
use crate::metrics::{Metrics, Outcome, RejectReason, ReplicaSample, RequestRecord};
use crate::timing::BatchShape;
use crate::units::Nanos;
use crate::workload::{Prefix, RequestSpec};
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
    /// Preempted by swap: KV on the host, waiting to be swapped back in.
    Swapped,
}

/// How KV blocks are given to requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvMode {
    /// PagedAttention: blocks on demand (vLLM).
    Paged,
    /// Each admitted request reserves `tokens` (the maximum sequence length)
    /// up front, as engines without paging do (Orca, FasterTransformer).
    Reserve { tokens: u32 },
}

/// Which running request a scheduler preempts when memory runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    /// The most recently admitted (vLLM).
    Newest,
    /// The least urgent priority class, newest first within it.
    LowestPriority,
}

/// How a replica manages its requests' memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateOptions {
    pub block_size: u32,
    /// Fraction of blocks kept free at admission (vLLM's 1% watermark).
    pub watermark: f64,
    /// Tokens become visible one iteration late (vLLM ≥ 0.6 async output processing).
    pub async_output: bool,
    pub kv_mode: KvMode,
    pub prefix_caching: bool,
    /// Preempt by swapping to host (else by recompute).
    pub swap: Option<SwapModel>,
    /// FasterTransformer: finished requests stay in the batch as padding
    /// until the whole batch ends, and their responses return then.
    pub static_batch: bool,
    pub victim: Victim,
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
    /// KV entries written so far by the current prefill (while decoding:
    /// `kv0`; while swapped: the KV length on the host).
    prefilled: u32,
    /// Blocks owned while prefilling (and throughout in reserved mode).
    blocks: u32,
    /// Leading prefix units this request references in the cache, and their blocks.
    shared_units: u32,
    shared_blocks: u32,
    /// Prompt tokens served from the prefix cache at its first admission.
    cached_tokens: u32,
    /// Blocks of a retained host copy (FastSwitch KV reuse).
    host_copy: u32,
    preemptions: u32,
    /// Decode step counter at decode entry (`s0`).
    step0: u64,
    /// Time of decode entry (the first token of this decode run).
    decode_entry: Nanos,
}

/// Outcome of trying to admit a waiting request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Admitted with a first chunk of this many tokens (prefix hits excluded).
    Admitted(u32),
    /// Not enough free blocks now.
    Later,
}

/// What a scheduler may read about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestView {
    pub id: u64,
    pub arrival: Nanos,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    pub client: u32,
    pub priority: u32,
    /// Tokens generated so far.
    pub generated: u32,
    /// KV entries held now.
    pub kv_tokens: u32,
}

/// The batch being formed or in flight.
#[derive(Debug, Default)]
struct Batch {
    /// (slot, chunk tokens) of each prefill chunk.
    prefills: Vec<(Slot, u32)>,
    /// Whether the decoding set runs a step in this iteration.
    decode: bool,
    shape: BatchShape,
    /// Ids of the requests preempted / readmitted while forming this batch (for the trace).
    preempted: Vec<u64>,
    resumed: Vec<u64>,
    /// Seconds of swap I/O this batch's scheduling caused.
    swap_secs: f64,
}

/// Finished requests a static batch keeps as padding until it ends.
#[derive(Debug, Default)]
struct Padding {
    seqs: u32,
    kv_tokens: u64,
    blocks: u64,
    records: Vec<RequestRecord>,
}

/// Lifetime memory counters of a replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryCounters {
    pub preemptions_recompute: u64,
    pub preemptions_swap: u64,
    /// Blocks moved device→host and host→device (per device).
    pub swapped_out_blocks: u64,
    pub swapped_in_blocks: u64,
    pub prefix_hit_tokens: u64,
    pub prefix_queried_tokens: u64,
    pub prefix_evicted_blocks: u64,
}

/// Replica bookkeeping. See the module docs for the decode-step scheme.
pub struct ReplicaState {
    pub id: u32,
    opts: StateOptions,
    block_size: u32,
    kv: KvPool,
    reqs: Vec<Req>,
    prefixes: Vec<Prefix>,
    /// Each slot's (session, program) ids: read only when the request is
    /// recorded, so kept out of the hot per-request state.
    identity: Vec<(Option<u64>, Option<u64>)>,
    free_slots: Vec<Slot>,
    waiting: WaitQueue,
    swapped: VecDeque<Slot>,
    /// Admitted requests (prefilling or decoding) in admission order.
    running: Vec<Slot>,
    /// Admitted requests whose prefill is incomplete, in admission order.
    prefilling: Vec<Slot>,
    waiting_prompt_tokens: u64,
    cache: Option<PrefixCache>,
    host_blocks_used: u64,
    padding: Padding,
    counters: MemoryCounters,
    // Decode set.
    step: u64,
    decoding: u32,
    decode_kv_sum: u64,
    decoding_by_client: Vec<u32>,
    residue: Vec<u32>,
    finish_heap: BinaryHeap<Reverse<(u64, Slot)>>,
    cohorts: Vec<(Nanos, u32)>,
    last_step_end: Nanos,
    batch: Batch,
    busy: bool,
    /// A scheduler asked to hold the replica idle until this time (LAPS batching window).
    wait_until: Option<Nanos>,
    /// Requests whose first token the previous iteration produced, not yet visible.
    pending_first: Vec<Slot>,
    /// Requests the previous iteration finished, not yet visible.
    pending_done: Vec<RequestRecord>,
    /// Requests finished or rejected by this replica (for conservation checks).
    pub done: u64,
}

impl ReplicaState {
    pub fn new(id: u32, kv_blocks: u64, opts: StateOptions) -> Self {
        ReplicaState {
            id,
            opts,
            block_size: opts.block_size,
            kv: KvPool::new(kv_blocks, opts.watermark),
            reqs: Vec::new(),
            prefixes: Vec::new(),
            identity: Vec::new(),
            free_slots: Vec::new(),
            waiting: WaitQueue::new(),
            swapped: VecDeque::new(),
            running: Vec::new(),
            prefilling: Vec::new(),
            waiting_prompt_tokens: 0,
            cache: opts.prefix_caching.then(PrefixCache::new),
            host_blocks_used: 0,
            padding: Padding::default(),
            counters: MemoryCounters::default(),
            step: 0,
            decoding: 0,
            decode_kv_sum: 0,
            decoding_by_client: Vec::new(),
            residue: vec![0; opts.block_size as usize],
            finish_heap: BinaryHeap::new(),
            cohorts: Vec::new(),
            last_step_end: 0,
            batch: Batch::default(),
            busy: false,
            wait_until: None,
            pending_first: Vec::new(),
            pending_done: Vec::new(),
            done: 0,
        }
    }

    // ----- what routers, samplers and schedulers see -----

    pub fn busy(&self) -> bool {
        self.busy
    }
    pub(crate) fn set_busy(&mut self, b: bool) {
        self.busy = b;
    }
    /// Requests waiting to be admitted (swapped-out ones included).
    pub fn num_waiting(&self) -> usize {
        self.waiting.len() + self.swapped.len()
    }
    /// Admitted requests (prefilling or decoding).
    pub fn num_running(&self) -> usize {
        self.running.len()
    }
    pub fn num_decoding(&self) -> u32 {
        self.decoding
    }
    /// Waiting + swapped + running requests.
    pub fn outstanding(&self) -> usize {
        self.num_waiting() + self.running.len()
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
    pub fn options(&self) -> &StateOptions {
        &self.opts
    }
    pub fn has_work(&self) -> bool {
        !self.waiting.is_empty() || !self.running.is_empty() || !self.swapped.is_empty()
    }
    pub fn counters(&self) -> MemoryCounters {
        let mut c = self.counters;
        if let Some(cache) = &self.cache {
            c.prefix_hit_tokens = cache.hit_tokens;
            c.prefix_queried_tokens = cache.queried_tokens;
            c.prefix_evicted_blocks = cache.evicted_blocks;
        }
        c
    }
    /// Blocks held by the prefix cache.
    pub fn cache_blocks(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.blocks())
    }
    /// Requests waiting for admission, head first.
    pub fn waiting(&self) -> impl Iterator<Item = Slot> + '_ {
        self.waiting.iter()
    }

    /// Requests waiting for admission (swapped-out ones not included).
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// The first waiting request of `client`, and waiting requests per client.
    pub fn waiting_of_client(&self, client: u32) -> Option<Slot> {
        self.waiting.front_of_client(client)
    }
    pub fn waiting_per_client(&self) -> &[u32] {
        self.waiting.per_client()
    }

    /// The first waiting request of the most urgent priority class.
    pub fn waiting_by_priority(&self) -> Option<Slot> {
        self.waiting.front_by_priority()
    }
    /// Admitted requests in admission order.
    pub fn running(&self) -> &[Slot] {
        &self.running
    }
    /// Decoding sequences per client id (index = client).
    pub fn decoding_by_client(&self) -> &[u32] {
        &self.decoding_by_client
    }
    pub fn view(&self, slot: Slot) -> RequestView {
        let r = &self.reqs[slot as usize];
        RequestView {
            id: r.spec.id,
            arrival: r.spec.arrival,
            prompt_tokens: r.spec.prompt_tokens,
            output_tokens: r.spec.output_tokens,
            client: r.spec.client,
            priority: r.spec.priority,
            generated: match r.phase {
                Phase::Decoding => r.generated + (self.step - r.step0) as u32,
                _ => r.generated,
            },
            kv_tokens: match r.phase {
                Phase::Decoding => self.decode_kv(r),
                _ => r.prefilled,
            },
        }
    }
    /// KV capacity in tokens, and tokens that could be allocated now
    /// (free blocks plus evictable cached blocks, minus the watermark).
    pub fn kv_tokens(&self) -> (u64, u64) {
        let b = self.block_size as u64;
        let evictable = self.cache.as_ref().map_or(0, |c| c.evictable_blocks());
        let free = (self.kv.free() + evictable).saturating_sub(self.kv.watermark());
        (self.kv.total() * b, free * b)
    }

    pub fn sample(&self) -> ReplicaSample {
        ReplicaSample {
            queued: self.num_waiting() as u32,
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
            cache_blocks: self.cache_blocks(),
        }
    }

    fn blocks_for(&self, tokens: u32) -> u64 {
        tokens.div_ceil(self.block_size) as u64
    }

    /// Blocks a request holds for its whole life in reserved mode.
    fn reserved_blocks(&self, tokens: u32) -> u64 {
        match self.opts.kv_mode {
            KvMode::Reserve { tokens: max } => self.blocks_for(max.max(tokens)),
            KvMode::Paged => self.blocks_for(tokens),
        }
    }

    // ----- arrivals -----

    /// Queues a request, or rejects it if its full sequence can never fit in
    /// this replica's KV cache.
    pub fn enqueue(&mut self, spec: RequestSpec, now: Nanos, metrics: &mut Metrics) {
        let full = spec.prompt_tokens + spec.output_tokens - 1;
        if !self.kv.can_ever_admit(self.reserved_blocks(full)) {
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
            shared_units: 0,
            shared_blocks: 0,
            cached_tokens: 0,
            host_copy: 0,
            preemptions: 0,
            step0: 0,
            decode_entry: 0,
        };
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.reqs[s as usize] = req;
                self.prefixes[s as usize] = spec.prefix;
                self.identity[s as usize] = (spec.session, spec.program);
                s
            }
            None => {
                self.reqs.push(req);
                self.prefixes.push(spec.prefix);
                self.identity.push((spec.session, spec.program));
                (self.reqs.len() - 1) as Slot
            }
        };
        self.waiting.push_back(slot, spec.client, spec.priority);
        self.waiting_prompt_tokens += spec.prompt_tokens as u64;
    }

    /// Records a rejection decided outside the replica's memory (e.g. max_model_len).
    pub fn reject(&mut self, spec: RequestSpec, now: Nanos, reason: RejectReason, metrics: &mut Metrics) {
        self.done += 1;
        metrics.record_request(RequestRecord {
            id: spec.id,
            client: spec.client,
            session: spec.session,
            program: spec.program,
            replica: self.id,
            arrival: spec.arrival,
            scheduled: now,
            first_token: now,
            finish: now,
            prompt_tokens: spec.prompt_tokens,
            output_tokens: 0,
            preemptions: 0,
            cached_tokens: 0,
            outcome: Outcome::Rejected(reason),
        });
    }

    // ----- batch formation (used by schedulers) -----

    pub(crate) fn begin_batch(&mut self) {
        self.batch.prefills.clear();
        self.batch.decode = false;
        self.batch.shape = BatchShape::default();
        self.batch.preempted.clear();
        self.batch.resumed.clear();
        self.batch.swap_secs = 0.0;
        self.wait_until = None;
    }

    /// Ids of the requests preempted, and of those readmitted after a
    /// preemption, while the current batch was formed (in that order of events).
    pub fn batch_preemptions(&self) -> (&[u64], &[u64]) {
        (&self.batch.preempted, &self.batch.resumed)
    }

    /// Swap I/O time (seconds) the current batch's scheduling caused.
    pub fn batch_swap_secs(&self) -> f64 {
        self.batch.swap_secs
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

    /// Prefix units of a request, their size in tokens and in blocks (0
    /// units when caching is off or the unit is not a whole number of blocks).
    fn prefix_shape(&self, slot: Slot) -> (u32, u32, u32) {
        if self.cache.is_none() {
            return (0, 0, 0);
        }
        let p = &self.prefixes[slot as usize];
        let unit = p.unit_tokens(self.block_size);
        if unit == 0 || !unit.is_multiple_of(self.block_size) {
            return (0, 0, 0);
        }
        let prompt = self.reqs[slot as usize].spec.prompt_tokens;
        (p.units(prompt, self.block_size), unit, unit / self.block_size)
    }

    /// Leading prefix units of a waiting request found in the cache, capped
    /// so at least one prompt token is computed.
    fn cache_hit_units(&self, slot: Slot) -> u32 {
        if self.opts.kv_mode != KvMode::Paged {
            return 0;
        }
        let (units, unit_tokens, _) = self.prefix_shape(slot);
        let Some(cache) = &self.cache else { return 0 };
        if units == 0 {
            return 0;
        }
        let p = &self.prefixes[slot as usize];
        let hit = cache.lookup((0..units).map(|j| p.unit_hash(j)));
        let target = self.reqs[slot as usize].prefill_target;
        hit.min((target - 1) / unit_tokens)
    }

    /// Prompt tokens of a waiting request the prefix cache holds now.
    pub fn cached_prefix_tokens(&self, slot: Slot) -> u32 {
        let (_, unit_tokens, _) = self.prefix_shape(slot);
        self.cache_hit_units(slot) * unit_tokens
    }

    /// Prefill tokens still to compute for a waiting or prefilling request
    /// (for a waiting one, net of what the prefix cache holds now).
    pub fn prefill_remaining(&self, slot: Slot) -> u32 {
        let r = &self.reqs[slot as usize];
        let cached = if r.phase == Phase::Waiting {
            self.cached_prefix_tokens(slot)
        } else {
            0
        };
        r.prefill_target - r.prefilled - cached
    }

    /// Makes `blocks` allocatable now, evicting unreferenced cached prefixes
    /// if needed, keeping `reserve` blocks free beyond them (the watermark
    /// for admissions, 0 for running requests). Returns whether it succeeded.
    fn make_free(&mut self, blocks: u64, reserve: u64) -> bool {
        while self.kv.free() < blocks + reserve {
            let freed = self.cache.as_mut().map_or(0, |c| c.evict_one());
            if freed == 0 {
                return false;
            }
            self.kv.release(freed);
        }
        true
    }

    /// Admits the head of the waiting queue: references its cached prefix,
    /// allocates blocks for its whole prefill (as vLLM's block manager does;
    /// the maximum length in reserved mode) if the watermark allows, and adds
    /// a first chunk of at most `max_chunk` tokens.
    pub fn admit_head(&mut self, max_chunk: u32, now: Nanos) -> Admit {
        let slot = self.waiting.front().expect("admit_head on empty queue");
        let (_, unit_tokens, unit_blocks) = self.prefix_shape(slot);
        let hit = self.cache_hit_units(slot);
        let target = self.reqs[slot as usize].prefill_target;
        let shared_blocks = hit * unit_blocks;
        let need = match self.opts.kv_mode {
            KvMode::Reserve { .. } => self.reserved_blocks(target),
            KvMode::Paged => self.blocks_for(target) - shared_blocks as u64,
        };
        // Reference the hits first so that making room cannot evict them.
        self.acquire_prefix(slot, hit);
        if !self.make_free(need, self.kv.watermark()) {
            self.release_prefix_units(slot, hit);
            return Admit::Later;
        }
        self.waiting.remove(slot);
        self.kv.allocate(need);
        let first = self.reqs[slot as usize].scheduled == NONE;
        if let Some(cache) = &mut self.cache {
            cache.queried_tokens += self.reqs[slot as usize].spec.prompt_tokens as u64;
            cache.hit_tokens += (hit * unit_tokens) as u64;
        }
        let r = &mut self.reqs[slot as usize];
        self.waiting_prompt_tokens -= r.spec.prompt_tokens as u64;
        r.blocks = need as u32;
        r.shared_units = hit;
        r.shared_blocks = shared_blocks;
        r.prefilled = hit * unit_tokens;
        r.phase = Phase::Prefilling;
        if first {
            r.scheduled = now;
            r.cached_tokens = hit * unit_tokens;
        } else {
            self.batch.resumed.push(r.spec.id);
        }
        let chunk = max_chunk.min(r.prefill_target - r.prefilled);
        self.running.push(slot);
        self.prefilling.push(slot);
        self.add_chunk(slot, chunk);
        Admit::Admitted(chunk)
    }

    fn acquire_prefix(&mut self, slot: Slot, units: u32) {
        if let Some(cache) = &mut self.cache {
            let p = &self.prefixes[slot as usize];
            for j in 0..units {
                cache.acquire(p.unit_hash(j));
            }
        }
    }

    /// Drops the references to units `0..units`, deepest first (so a
    /// chain's leaves are evicted before its root).
    fn release_prefix_units(&mut self, slot: Slot, units: u32) {
        if let Some(cache) = &mut self.cache {
            let p = &self.prefixes[slot as usize];
            for j in (0..units).rev() {
                cache.release(p.unit_hash(j));
            }
        }
    }

    fn release_prefix(&mut self, slot: Slot) {
        let units = self.reqs[slot as usize].shared_units;
        self.release_prefix_units(slot, units);
        let r = &mut self.reqs[slot as usize];
        r.shared_units = 0;
        r.shared_blocks = 0;
    }

    /// Hands a request's computed prompt units to the prefix cache (its
    /// prefill just completed): each becomes a shared, referenced entry; a
    /// unit someone else cached meanwhile is shared and this copy freed.
    fn publish_prefix(&mut self, slot: Slot) {
        let (units, _, unit_blocks) = self.prefix_shape(slot);
        let from = self.reqs[slot as usize].shared_units;
        if units <= from || self.opts.kv_mode != KvMode::Paged {
            return;
        }
        let Some(cache) = &mut self.cache else { return };
        let p = &self.prefixes[slot as usize];
        let mut freed = 0u64;
        for j in from..units {
            let h = p.unit_hash(j);
            if !cache.insert(h, unit_blocks) {
                cache.acquire(h);
                freed += unit_blocks as u64;
            }
        }
        self.kv.release(freed);
        let moved = (units - from) * unit_blocks;
        let r = &mut self.reqs[slot as usize];
        r.blocks -= moved;
        r.shared_units = units;
        r.shared_blocks += moved;
    }

    /// At a request's end, the full blocks of its sequence beyond its prompt
    /// that its prefix declares shareable (a session turn's answer, which
    /// the next turn's prompt repeats) join the cache, as vLLM caches every
    /// full block, generated ones included. `kv` is the sequence's computed
    /// KV length. Returns how many of the request's own blocks the cache
    /// now holds (a unit someone cached meanwhile is shared instead, and
    /// the request's copy is freed with the rest of its blocks).
    fn publish_sequence(&mut self, slot: Slot, kv: u32) -> u64 {
        let (_, _, unit_blocks) = self.prefix_shape(slot);
        if unit_blocks == 0 || self.opts.kv_mode != KvMode::Paged {
            return 0;
        }
        let Some(cache) = &mut self.cache else { return 0 };
        let p = &self.prefixes[slot as usize];
        let r = &self.reqs[slot as usize];
        let units = p.sequence_units(r.spec.prompt_tokens, kv, self.block_size);
        let from = r.shared_units;
        if units <= from {
            return 0;
        }
        let mut moved = 0u64;
        for j in from..units {
            let h = p.unit_hash(j);
            if cache.insert(h, unit_blocks) {
                moved += unit_blocks as u64;
            } else {
                cache.acquire(h);
            }
        }
        let r = &mut self.reqs[slot as usize];
        r.shared_units = units;
        moved
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
        if self.opts.kv_mode != KvMode::Paged {
            return 0;
        }
        let b = self.block_size as u64;
        self.residue[((b - self.step % b) % b) as usize] as u64
    }

    /// Whether the decoding set's next step fits in free (or evictable cached) blocks.
    pub fn decode_fits(&self) -> bool {
        let evictable = self.cache.as_ref().map_or(0, |c| c.evictable_blocks());
        self.decode_blocks_needed() <= self.kv.free() + evictable
    }

    /// Frees room (evicting cached prefixes, then preempting by the replica's
    /// victim policy) until the decoding set's next step fits. Returns the
    /// number of preemptions.
    pub fn make_room_for_decode(&mut self) -> u32 {
        let mut n = 0;
        while self.decoding > 0 && !self.make_free(self.decode_blocks_needed(), 0) {
            let victim = self.pick_victim();
            self.preempt(victim);
            n += 1;
        }
        n
    }

    /// The running request the victim policy would preempt.
    pub fn pick_victim(&self) -> Slot {
        match self.opts.victim {
            Victim::Newest => *self.running.last().expect("preempt with nothing running"),
            // `max_by_key` keeps the last maximum: in admission order, the newest.
            Victim::LowestPriority => *self
                .running
                .iter()
                .max_by_key(|&&s| self.reqs[s as usize].spec.priority)
                .expect("preempt with nothing running"),
        }
    }

    /// Adds one decode step of every decoding sequence to the batch,
    /// allocating the blocks it needs (the caller made room).
    pub fn add_decode_step(&mut self) {
        if self.decoding == 0 && self.padding.seqs == 0 {
            return;
        }
        let need = self.decode_blocks_needed();
        self.kv.allocate(need);
        self.batch.decode = true;
        // Static batches keep computing their finished members (padding).
        self.batch.shape.decode_seqs = self.decoding + self.padding.seqs;
        self.batch.shape.decode_kv_tokens =
            self.decode_kv_sum + self.decoding as u64 + self.padding.kv_tokens;
    }

    /// Preempts a running request. A decoding request is swapped to host
    /// memory when the replica swaps and the host has room (it resumes
    /// decoding after a swap-in); otherwise — and always for a request still
    /// prefilling — it is preempted by recompute: its blocks are freed and it
    /// goes to the front of the waiting queue, to prefill prompt + generated
    /// tokens again when readmitted.
    pub fn preempt(&mut self, slot: Slot) {
        let i = self
            .running
            .iter()
            .rposition(|&s| s == slot)
            .expect("preempting a request that is not running");
        self.running.remove(i);
        let r = self.reqs[slot as usize];
        let mut generated = r.generated;
        let mut last = r.last_token;
        match r.phase {
            Phase::Decoding => {
                let kv = self.decode_kv(&r);
                generated += (self.step - r.step0) as u32;
                // Its last token came from the last step if it took part in
                // one, else from before it joined (prefill or swap-in).
                last = if self.step > r.step0 {
                    self.last_step_end
                } else {
                    r.decode_entry
                };
                self.leave_decoding(slot, &r);
                self.remove_from_cohort(last);
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
        let q = &mut self.reqs[slot as usize];
        q.generated = generated;
        q.last_token = last;
        q.phase = Phase::Waiting;
        q.blocks = 0;
        q.prefilled = 0;
        q.prefill_target = q.spec.prompt_tokens + q.generated;
        q.preemptions += 1;
        self.waiting_prompt_tokens += q.spec.prompt_tokens as u64;
        self.batch.preempted.push(q.spec.id);
        let (client, priority) = (q.spec.client, q.spec.priority);
        self.waiting.push_front(slot, client, priority);
    }

    /// Blocks a running request owns (see the module docs).
    fn owned_blocks(&self, r: &Req, kv: u32) -> u64 {
        match (self.opts.kv_mode, r.phase) {
            (KvMode::Reserve { .. }, _) | (_, Phase::Prefilling) => r.blocks as u64,
            _ => self.blocks_for(kv) - r.shared_blocks as u64,
        }
    }

    /// Swaps a decoding request (already out of the decode set) to host
    /// memory, if the replica swaps and the host has room.
    fn try_swap_out(&mut self, slot: Slot, kv: u32, generated: u32, last: Nanos) -> bool {
        let Some(swap) = self.opts.swap else { return false };
        let r = self.reqs[slot as usize];
        let blocks = self.blocks_for(kv);
        let reused = if swap.reuse {
            (r.host_copy as u64).min(blocks)
        } else {
            0
        };
        if self.host_blocks_used + (blocks - reused) > swap.host_blocks {
            return false;
        }
        // The full KV goes to the host (shared prefix blocks included), so
        // the request lets go of its cache references.
        let moved = (blocks - reused).max(1);
        self.kv.release(self.owned_blocks(&r, kv));
        self.release_prefix(slot);
        self.host_blocks_used += blocks - reused;
        self.batch.swap_secs += swap.time(moved);
        self.counters.swapped_out_blocks += moved;
        self.counters.preemptions_swap += 1;
        let q = &mut self.reqs[slot as usize];
        q.phase = Phase::Swapped;
        q.prefilled = kv;
        q.generated = generated;
        q.last_token = last;
        q.host_copy = blocks as u32;
        q.preemptions += 1;
        self.batch.preempted.push(q.spec.id);
        self.swapped.push_back(slot);
        true
    }

    /// Requests swapped out to host memory.
    pub fn num_swapped(&self) -> usize {
        self.swapped.len()
    }

    /// Swaps the oldest swapped-out request back in if its blocks fit (with
    /// the watermark free) and `max_num_seqs` allows; it rejoins the
    /// decoding set. Returns whether it did.
    pub fn resume_swapped(&mut self, max_seqs: u32) -> bool {
        let Some(&slot) = self.swapped.front() else {
            return false;
        };
        if self.running.len() as u32 >= max_seqs {
            return false;
        }
        let kv = self.reqs[slot as usize].prefilled;
        let need = self.reserved_blocks(kv);
        if !self.make_free(need, self.kv.watermark()) {
            return false;
        }
        let swap = self.opts.swap.expect("swapped requests imply a swap model");
        self.swapped.pop_front();
        self.kv.allocate(need);
        let blocks = self.blocks_for(kv);
        self.batch.swap_secs += swap.time(blocks);
        self.counters.swapped_in_blocks += blocks;
        if !swap.reuse {
            self.host_blocks_used -= blocks;
            self.reqs[slot as usize].host_copy = 0;
        }
        let r = &mut self.reqs[slot as usize];
        r.blocks = need as u32;
        self.batch.resumed.push(r.spec.id);
        self.running.push(slot);
        let last = r.last_token;
        self.join_decoding(slot, last);
        true
    }

    fn decode_kv(&self, r: &Req) -> u32 {
        r.prefilled + (self.step - r.step0) as u32
    }

    fn residue_of(&self, kv0: u32, step0: u64) -> usize {
        let b = self.block_size as u64;
        ((kv0 as u64 % b + b - step0 % b) % b) as usize
    }

    /// Adds a request whose KV (`prefilled` tokens) is in place to the
    /// decoding set; its last token was produced at `last`.
    fn join_decoding(&mut self, slot: Slot, last: Nanos) {
        let step = self.step;
        let r = &mut self.reqs[slot as usize];
        r.phase = Phase::Decoding;
        r.step0 = step;
        r.decode_entry = last;
        let r = *r;
        let res = self.residue_of(r.prefilled, step);
        self.residue[res] += 1;
        self.decoding += 1;
        self.decode_kv_sum += r.prefilled as u64;
        let c = r.spec.client as usize;
        if self.decoding_by_client.len() <= c {
            self.decoding_by_client.resize(c + 1, 0);
        }
        self.decoding_by_client[c] += 1;
        let finish_at = step + (r.spec.output_tokens - r.generated) as u64;
        self.finish_heap.push(Reverse((finish_at, slot)));
        match self.cohorts.iter_mut().rev().find(|c| c.0 == last) {
            Some(c) => c.1 += 1,
            None => self.cohorts.push((last, 1)),
        }
    }

    fn leave_decoding(&mut self, slot: Slot, r: &Req) {
        let kv = self.decode_kv(r);
        let res = self.residue_of(r.prefilled, r.step0);
        self.residue[res] -= 1;
        self.decoding -= 1;
        self.decode_kv_sum -= kv as u64;
        self.decoding_by_client[r.spec.client as usize] -= 1;
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
        self.end_static_batch(now, metrics);
    }

    fn complete_decode_step(&mut self, now: Nanos, metrics: &mut Metrics) {
        for &(t, n) in &self.cohorts {
            metrics.record_itl(now - t, n);
        }
        self.cohorts.clear();
        if self.decoding > 0 {
            self.cohorts.push((now, self.decoding));
        }
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
            self.decoding_by_client[r.spec.client as usize] -= 1;
            self.remove_from_cohort(now);
            let generated = r.generated + (self.step - r.step0) as u32;
            debug_assert_eq!(generated, r.spec.output_tokens);
            let owned = self.owned_blocks(&r, kv);
            self.retire(slot, owned, kv, now, metrics);
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
            if self.opts.async_output {
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
        self.publish_prefix(slot);
        let r = self.reqs[slot as usize];
        if r.generated >= r.spec.output_tokens {
            self.retire(slot, r.blocks as u64, r.prefilled, now, metrics);
            return;
        }
        // Join the decoding set; its blocks now derive from its KV length
        // (paged: ⌈kv / B⌉ − shared).
        debug_assert!(
            self.opts.kv_mode != KvMode::Paged
                || r.blocks as u64 + r.shared_blocks as u64 == self.blocks_for(r.prefill_target)
        );
        self.join_decoding(slot, now);
    }

    /// A request is done: frees its memory (or, in a static batch, keeps it
    /// as padding until the batch ends) and records it.
    fn retire(&mut self, slot: Slot, owned: u64, kv: u32, now: Nanos, metrics: &mut Metrics) {
        if let Some(i) = self.running.iter().position(|&s| s == slot) {
            self.running.remove(i);
        }
        let host = self.reqs[slot as usize].host_copy as u64;
        self.host_blocks_used -= host;
        if self.opts.static_batch {
            self.padding.seqs += 1;
            self.padding.kv_tokens += kv as u64;
            self.padding.blocks += owned;
        } else {
            let cached = self.publish_sequence(slot, kv);
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
        self.padding.seqs = 0;
        self.padding.kv_tokens = 0;
        self.padding.blocks = 0;
        for i in 0..self.padding.records.len() {
            let mut rec = self.padding.records[i];
            rec.finish = now;
            if self.opts.async_output {
                self.pending_done.push(rec);
            } else {
                if rec.first_token == NONE {
                    rec.first_token = now;
                }
                metrics.record_request(rec);
            }
        }
        self.padding.records.clear();
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

    fn finish(&mut self, slot: Slot, now: Nanos, metrics: &mut Metrics) {
        let r = &mut self.reqs[slot as usize];
        r.phase = Phase::Free;
        self.done += 1;
        let pending_first = self.opts.async_output && r.first_token == NONE;
        let rec = RequestRecord {
            id: r.spec.id,
            client: r.spec.client,
            session: self.identity[slot as usize].0,
            program: self.identity[slot as usize].1,
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
        if pending_first && let Some(i) = self.pending_first.iter().position(|&s| s == slot) {
            self.pending_first.remove(i);
        }
        if self.opts.static_batch {
            self.padding.records.push(rec);
        } else if self.opts.async_output {
            self.pending_done.push(rec);
        } else {
            metrics.record_request(rec);
        }
        self.prefixes[slot as usize] = Prefix::None;
        self.free_slots.push(slot);
    }

    /// Checks the invariants that tie the running sums to the per-request
    /// state, and the block accounting with shared and cached blocks
    /// (O(requests + cache); for tests and debug builds).
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut blocks = 0u64;
        let mut decoding = 0u32;
        let mut kv_sum = 0u64;
        let mut refs = 0u64;
        for &slot in &self.running {
            let r = &self.reqs[slot as usize];
            match r.phase {
                Phase::Decoding => {
                    let kv = self.decode_kv(r);
                    blocks += self.owned_blocks(r, kv);
                    decoding += 1;
                    kv_sum += kv as u64;
                }
                Phase::Prefilling => blocks += r.blocks as u64,
                p => return Err(format!("running request in phase {p:?}")),
            }
            refs += r.shared_units as u64;
            if let Some(cache) = &self.cache {
                let p = &self.prefixes[slot as usize];
                for j in 0..r.shared_units {
                    match cache.refs(p.unit_hash(j)) {
                        Some(n) if n > 0 => {}
                        other => {
                            return Err(format!(
                                "request {} uses cached unit {j} but the cache has it with refs {other:?}",
                                r.spec.id
                            ));
                        }
                    }
                }
            }
        }
        for &slot in &self.swapped {
            let r = &self.reqs[slot as usize];
            if r.phase != Phase::Swapped || r.shared_units != 0 {
                return Err(format!("swapped request {} in phase {:?}", r.spec.id, r.phase));
            }
        }
        let cache_blocks = match &self.cache {
            Some(c) => {
                c.check()?;
                let (cache_refs, _, _) = c.totals();
                if cache_refs != refs {
                    return Err(format!(
                        "prefix cache holds {cache_refs} references, running requests {refs}"
                    ));
                }
                c.blocks()
            }
            None => 0,
        };
        // Blocks allocated for the in-flight decode step are counted by the
        // pool but not yet reflected in KV lengths.
        let in_flight = if self.busy && self.batch.decode {
            self.decode_blocks_needed()
        } else {
            0
        };
        let accounted = blocks + in_flight + cache_blocks + self.padding.blocks;
        if accounted != self.kv.used() {
            return Err(format!(
                "KV blocks: requests hold {blocks} (+{in_flight} for the step in flight, {cache_blocks} cached, \
                 {} padding), pool says {}",
                self.padding.blocks,
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
        if let Some(swap) = self.opts.swap
            && self.host_blocks_used > swap.host_blocks
        {
            return Err(format!(
                "host swap space: {} blocks used of {}",
                self.host_blocks_used, swap.host_blocks
            ));
        }
        if decoding != self.decoding || kv_sum != self.decode_kv_sum {
            return Err(format!(
                "decode sums: {decoding} seqs / {kv_sum} KV tokens recomputed, {} / {} kept",
                self.decoding, self.decode_kv_sum
            ));
        }
        let by_client: u32 = self.decoding_by_client.iter().sum();
        if by_client != self.decoding {
            return Err(format!(
                "decoding by client sums to {by_client}, {} decoding",
                self.decoding
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

    /// Blocks in use that no request, cache entry or padding accounts for
    /// once the replica is idle (0 when everything was freed). The prefix
    /// cache keeps blocks after the run; they are not a leak.
    pub fn leaked_blocks(&self) -> u64 {
        self.kv.used() - self.cache_blocks()
    }
}

// Prefill/decode hand-off (disaggregation, semi-PD): new operations only,
// in their own file; a child module so they can use the fields above.
#[path = "handoff.rs"]
mod handoff;
pub use handoff::Handoff;
