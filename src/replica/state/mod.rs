//! The bookkeeping of one replica: requests, queues, KV blocks (paged or
//! reserved, shared through the prefix cache, swapped to host), the batch
//! being formed, and the operations schedulers compose (admit a prefill,
//! continue a chunk, run a decode step, preempt, resume a swapped request).
//!
//! ## Decoding without touching every sequence
//! Every sequence in the decoding set emits one token per decode step, so
//! the set advances all of them with a step counter and running sums
//! (Σ KV lengths, block-boundary residues, a finish heap, cohorts of equal
//! last-token time) instead of touching each one: see `decode_set`.
//! Each request keeps its KV length `kv0` and step `s0` at decode entry; at
//! step `S` its KV length is `kv0 + S − s0`.
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
//!   blocks), allocated for the whole prefill at admission (or, with
//!   `blocks_per_chunk`, for the tokens computed so far plus the scheduled
//!   chunk) and one block at a time while decoding;
//! - reserved mode (Orca, FasterTransformer): `⌈max_model_len / B⌉` from
//!   admission to the end, never growing.
//!
//! Unreferenced cached blocks are evicted (LRU) before anyone is preempted.
//!
//! ## The parts of a replica
//! Each part owns one job and checks its own invariants; this module
//! composes them into the operations schedulers, the engine and the
//! hand-off use, and checks what ties them together (every block the pool
//! counts is owned by a request, the cache or the padding).
//! - `slab`: the request slots (hot per-request state; prefix and ids
//!   kept cold beside it);
//! - the queues: waiting (per-client and per-priority facades,
//!   `super::queue`), swapped, running (`running`: a linked list, O(1)
//!   removal anywhere) and prefilling, in admission order;
//! - `kv_ledger`: the device pool, the prefix cache's blocks and the host
//!   swap space;
//! - `decode_set`: the decoding set and its running sums;
//! - `batch`: the batch being formed;
//! - `outputs`: when first tokens and responses become visible (async
//!   output processing, static batches).
//!
//! The operations are grouped by who calls them: `scheduling` (forming a
//! batch: admit, chunk, decode step, preempt, swap), `completion` (an
//! iteration's effects when it ends) and `detach` (moving a request with
//! its KV between replicas, which `replica::handoff` builds on).

mod batch;
mod completion;
mod decode_set;
mod detach;
mod kv_ledger;
mod outputs;
mod running;
mod scheduling;
mod slab;

use super::memory::KvPool;
use super::queue::WaitQueue;
use super::swap::SwapModel;
use crate::metrics::{Metrics, Outcome, RejectReason, ReplicaSample, RequestRecord};
use crate::timing::BatchShape;
use crate::units::Nanos;
use crate::workload::{Prefix, RequestSpec};
use batch::Batch;
use decode_set::{DecodeSet, Member};
use kv_ledger::KvLedger;
use outputs::OutputTiming;
use running::RunningList;
pub use slab::Slot;
pub(crate) use slab::{Identity, Meta};
use slab::{NONE, Phase, Req, RequestSlab};
use std::collections::VecDeque;

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
    /// Paged blocks are allocated for each scheduled chunk, without the
    /// admission watermark, and full prompt units join the prefix cache as
    /// each chunk completes (vLLM V1), instead of blocks for the whole
    /// prefill at admission and the prompt cached when it completes (V0).
    /// Only with `kv_mode = Paged`.
    pub blocks_per_chunk: bool,
    pub prefix_caching: bool,
    /// Preempt by swapping to host (else by recompute).
    pub swap: Option<SwapModel>,
    /// FasterTransformer: finished requests stay in the batch as padding
    /// until the whole batch ends, and their responses return then.
    pub static_batch: bool,
    pub victim: Victim,
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

/// Finished members a static batch keeps computing until it ends.
#[derive(Debug, Default)]
struct Padding {
    seqs: u32,
    kv_tokens: u64,
    blocks: u64,
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

/// A request taken out of a replica with its KV in place (a hand-off to a
/// decode replica): everything needed to continue it elsewhere.
#[derive(Debug, Clone)]
pub(crate) struct Detached {
    pub meta: Meta,
    pub prefix: Prefix,
    pub identity: Identity,
    pub scheduled: Nanos,
    /// `NONE` while its first token waits for output processing.
    pub first_token: Nanos,
    pub generated: u32,
    pub preemptions: u32,
    pub cached_tokens: u32,
    /// KV entries it holds.
    pub kv_tokens: u32,
}

/// Replica bookkeeping. See the module docs for the parts and the
/// decode-step scheme.
pub struct ReplicaState {
    pub id: u32,
    opts: StateOptions,
    block_size: u32,
    slab: RequestSlab,
    kv: KvLedger,
    waiting: WaitQueue,
    swapped: VecDeque<Slot>,
    /// Admitted requests (prefilling or decoding) in admission order.
    running: RunningList,
    /// Admitted requests whose prefill is incomplete, in admission order.
    prefilling: Vec<Slot>,
    waiting_prompt_tokens: u64,
    padding: Padding,
    counters: MemoryCounters,
    decode: DecodeSet,
    batch: Batch,
    outputs: OutputTiming,
    busy: bool,
    /// A scheduler asked to hold the replica idle until this time (LAPS batching window).
    wait_until: Option<Nanos>,
}

impl ReplicaState {
    pub(crate) fn new(id: u32, kv_blocks: u64, opts: StateOptions) -> Self {
        debug_assert!(
            !opts.blocks_per_chunk || matches!(opts.kv_mode, KvMode::Paged),
            "blocks are allocated per chunk only in paged mode"
        );
        ReplicaState {
            id,
            opts,
            block_size: opts.block_size,
            slab: RequestSlab::default(),
            kv: KvLedger::new(
                kv_blocks,
                opts.watermark,
                opts.block_size,
                opts.kv_mode,
                opts.prefix_caching,
                opts.swap,
            ),
            waiting: WaitQueue::new(),
            swapped: VecDeque::new(),
            running: RunningList::default(),
            prefilling: Vec::new(),
            waiting_prompt_tokens: 0,
            padding: Padding::default(),
            counters: MemoryCounters::default(),
            decode: DecodeSet::new(opts.block_size),
            batch: Batch::default(),
            outputs: OutputTiming::new(opts.async_output, opts.static_batch),
            busy: false,
            wait_until: None,
        }
    }

    /// Keeps the waiting-queue indexes a policy reads (before any arrival).
    pub(crate) fn set_waiting_indexes(&mut self, indexes: crate::replica::scheduler::WaitIndexes) {
        self.waiting.set_indexes(indexes);
    }

    /// Asks the CPU to load, all at once, the buffer lines an iteration's
    /// end and the next batch read first (a hint, see `crate::prefetch`).
    pub(crate) fn prefetch_working_set(&self) {
        self.decode.prefetch_working_set();
        crate::prefetch::prefetch_at(&self.batch.prefills, 0);
        self.waiting.prefetch_front();
        if let Some(&(slot, _)) = self.batch.prefills.first() {
            self.slab.prefetch(slot);
        }
    }

    // ----- what routers, samplers and schedulers see -----

    /// The waiting-queue indexes kept (what the scheduler asked for).
    pub fn waiting_indexes(&self) -> crate::replica::scheduler::WaitIndexes {
        self.waiting.indexes()
    }

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
        self.decode.len()
    }
    /// Waiting + swapped + running requests.
    pub fn outstanding(&self) -> usize {
        self.num_waiting() + self.running.len()
    }
    /// KV tokens held plus prompt tokens waiting: the load `least-kv` balances.
    pub fn kv_load_tokens(&self) -> u64 {
        self.kv.pool().used() * self.block_size as u64 + self.waiting_prompt_tokens
    }
    pub fn kv(&self) -> &KvPool {
        self.kv.pool()
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
        if let Some(cache) = self.kv.cache() {
            c.prefix_hit_tokens = cache.hit_tokens;
            c.prefix_queried_tokens = cache.queried_tokens;
            c.prefix_evicted_blocks = cache.evicted_blocks;
        }
        c
    }
    /// Blocks held by the prefix cache.
    pub fn cache_blocks(&self) -> u64 {
        self.kv.cache_blocks()
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
    /// Admitted requests in admission order (`.rev()`: newest first).
    pub fn running(&self) -> impl DoubleEndedIterator<Item = Slot> + ExactSizeIterator + '_ {
        self.running.iter()
    }
    /// Decoding sequences per client id (index = client).
    pub fn decoding_by_client(&self) -> &[u32] {
        self.decode.by_client()
    }
    pub fn view(&self, slot: Slot) -> RequestView {
        let r = self.slab.get(slot);
        RequestView {
            id: r.spec.id,
            arrival: r.spec.arrival,
            prompt_tokens: r.spec.prompt_tokens,
            output_tokens: r.spec.output_tokens,
            client: r.spec.client,
            priority: r.spec.priority,
            generated: match r.phase {
                Phase::Decoding => r.generated + self.decode.steps_since(r.step0),
                _ => r.generated,
            },
            kv_tokens: match r.phase {
                Phase::Decoding => self.decode.kv_of(r.prefilled, r.step0),
                _ => r.prefilled,
            },
        }
    }
    /// KV tokens that could be allocated now without preempting anyone:
    /// free blocks plus unreferenced cached ones, no watermark kept.
    pub fn free_kv_tokens(&self) -> u64 {
        (self.kv.pool().free() + self.kv.evictable()) * self.block_size as u64
    }

    /// KV capacity in tokens, and tokens that could be allocated now
    /// (free blocks plus evictable cached blocks, minus the watermark).
    pub fn kv_tokens(&self) -> (u64, u64) {
        let b = self.block_size as u64;
        (self.kv.pool().total() * b, self.kv.admittable() * b)
    }

    pub(crate) fn sample(&self) -> ReplicaSample {
        ReplicaSample {
            queued: self.num_waiting() as u32,
            running: self.running.len() as u32,
            kv_blocks_used: self.kv.pool().used(),
            kv_blocks_total: self.kv.pool().total(),
            batch_seqs: if self.busy { self.batch.seqs() } else { 0 },
            batch_tokens: if self.busy {
                self.batch.shape.total_tokens() as u32
            } else {
                0
            },
            cache_blocks: self.cache_blocks(),
        }
    }

    fn member(r: &Req) -> Member {
        Member {
            kv0: r.prefilled,
            step0: r.step0,
            client: r.spec.client,
        }
    }

    // ----- arrivals -----

    /// Queues a request, or rejects it if its full sequence can never fit in
    /// this replica's KV cache.
    pub(crate) fn enqueue(&mut self, spec: RequestSpec, now: Nanos, metrics: &mut Metrics) {
        let full = spec.prompt_tokens + spec.output_tokens - 1;
        if !self.can_ever_hold(full) {
            self.reject(spec, now, RejectReason::ExceedsKvCapacity, metrics);
            return;
        }
        let (client, priority, prompt) = (spec.client, spec.priority, spec.prompt_tokens);
        let req = Req::waiting(&spec);
        let slot = self.slab.insert(req, spec.prefix, (spec.session, spec.program));
        self.waiting.push_back(slot, client, priority);
        self.waiting_prompt_tokens += prompt as u64;
    }

    /// Whether a request of `full_tokens` KV entries could ever fit here.
    pub(crate) fn can_ever_hold(&self, full_tokens: u32) -> bool {
        self.kv
            .pool()
            .can_ever_admit(self.kv.reserved_blocks(full_tokens))
    }

    /// Records a rejection decided outside the replica's memory (e.g. max_model_len).
    pub(crate) fn reject(
        &mut self,
        spec: RequestSpec,
        now: Nanos,
        reason: RejectReason,
        metrics: &mut Metrics,
    ) {
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
}

impl ReplicaState {
    /// Checks every part's own invariants and what ties them together: the
    /// decode sums against the decoding requests, the cache's references
    /// against the running requests', and the pool's used blocks against
    /// what requests, the cache and the padding hold (O(requests + cache);
    /// for tests and debug builds).
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        self.slab.check()?;
        self.running.check()?;
        self.outputs.check(&self.slab)?;
        let mut blocks = 0u64;
        let mut refs = 0u64;
        for slot in self.running.iter() {
            let r = self.slab.get(slot);
            match r.phase {
                Phase::Decoding => blocks += self.owned_blocks(r, self.decode.kv_of(r.prefilled, r.step0)),
                Phase::Prefilling => blocks += r.blocks as u64,
                p => return Err(format!("running request in phase {p:?}")),
            }
            refs += r.shared_units as u64;
            if let Some(cache) = self.kv.cache() {
                let p = self.slab.prefix(slot);
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
        self.decode.check(
            self.running
                .iter()
                .map(|s| self.slab.get(s))
                .filter(|r| r.phase == Phase::Decoding)
                .map(Self::member),
        )?;
        for &slot in &self.swapped {
            let r = self.slab.get(slot);
            if r.phase != Phase::Swapped || r.shared_units != 0 {
                return Err(format!("swapped request {} in phase {:?}", r.spec.id, r.phase));
            }
        }
        // The load `least-kv` reads: every waiting request's prompt.
        let waiting_prompts: u64 = self
            .waiting
            .iter()
            .map(|s| self.slab.get(s).spec.prompt_tokens as u64)
            .sum();
        if waiting_prompts != self.waiting_prompt_tokens {
            return Err(format!(
                "waiting prompts hold {waiting_prompts} tokens, {} kept",
                self.waiting_prompt_tokens
            ));
        }
        let queued = self.waiting.len() + self.swapped.len() + self.running.len();
        if queued != self.slab.len() {
            return Err(format!(
                "{} requests in slots, {queued} in the queues",
                self.slab.len()
            ));
        }
        self.kv.check(refs)?;
        // Blocks allocated for the in-flight decode step are counted by the
        // pool but not yet reflected in KV lengths.
        let in_flight = if self.busy && self.batch.decode {
            self.decode_blocks_needed()
        } else {
            0
        };
        let cache_blocks = self.kv.cache_blocks();
        let accounted = blocks + in_flight + cache_blocks + self.padding.blocks;
        if accounted != self.kv.pool().used() {
            return Err(format!(
                "KV blocks: requests hold {blocks} (+{in_flight} for the step in flight, {cache_blocks} cached, \
                 {} padding), pool says {}",
                self.padding.blocks,
                self.kv.pool().used()
            ));
        }
        Ok(())
    }

    /// Blocks in use that no request, cache entry or padding accounts for
    /// once the replica is idle (0 when everything was freed). The prefix
    /// cache keeps blocks after the run; they are not a leak.
    pub(crate) fn leaked_blocks(&self) -> u64 {
        self.kv.pool().used() - self.cache_blocks()
    }
}
