//! Unit tests of the scheduling policies: tiny workloads (two to six
//! requests) through the real engine with every iteration taking the same
//! time, a KV pool sized by hand, and answers worked out by hand from each
//! policy's definition (the comment above each assertion says how).
//! Memory mechanisms (preemption, swapping) are in `tests/memory.rs`.

mod engines;
mod memory;

use crate::engine::Simulation;
use crate::metrics::{Report, RequestRecord};
use crate::scenario::validate::{self, Plan};
use crate::timing::{BatchShape, IterationCost, TimeModel};
use crate::units::Nanos;
use crate::workload::{Prefix, RequestSource, RequestSpec};
use std::sync::{Arc, Mutex};

pub const MS: Nanos = 1_000_000;

/// Every iteration takes `d`, the first `host` of it on the host; each
/// batch's shape is recorded.
pub struct Recording {
    d: Nanos,
    host: Nanos,
    shapes: Arc<Mutex<Vec<BatchShape>>>,
}

impl TimeModel for Recording {
    fn iteration(&self, b: &BatchShape) -> IterationCost {
        self.shapes.lock().expect("not poisoned").push(*b);
        IterationCost {
            duration: self.d,
            stage: self.d,
            host: self.host,
            ..Default::default()
        }
    }
    fn peak_rates(&self) -> (f64, f64) {
        (1.0, 1.0)
    }
}

struct List(std::vec::IntoIter<RequestSpec>);

impl RequestSource for List {
    fn next_request(&mut self) -> Option<RequestSpec> {
        self.0.next()
    }
}

/// A plan from `--set` overrides (tokens visible at once, no watermark)
/// with `kv_blocks` blocks per replica.
pub fn plan(sets: &[&str], kv_blocks: u64) -> Plan {
    let mut all = vec![
        "scheduler.async_output=false".to_string(),
        "scheduler.watermark=0".to_string(),
    ];
    all.extend(sets.iter().map(|s| s.to_string()));
    let s = crate::scenario::load(None, &all).expect("test scenario loads");
    let mut p = validate::plan(&s).expect("test scenario is valid");
    p.pools[0].kv_blocks = kv_blocks;
    p
}

pub struct Run {
    pub report: Report,
    /// Shapes of the batches priced, in order.
    pub shapes: Vec<BatchShape>,
}

impl Run {
    pub fn rec(&self, id: u64) -> &RequestRecord {
        self.report
            .requests
            .iter()
            .find(|r| r.id == id)
            .expect("request reported")
    }
    /// (id, scheduled) of every request, in id order.
    pub fn scheduled(&self) -> Vec<(u64, Nanos)> {
        self.report.requests.iter().map(|r| (r.id, r.scheduled)).collect()
    }
    pub fn finishes(&self) -> Vec<(u64, Nanos)> {
        self.report.requests.iter().map(|r| (r.id, r.finish)).collect()
    }
}

/// Runs `reqs` through the engine, every iteration taking `d`, with the
/// replica invariants checked after each iteration.
pub fn run(p: &Plan, d: Nanos, reqs: Vec<RequestSpec>) -> Run {
    run_hosted(p, d, 0, reqs)
}

/// [`run`] with iterations of `d` whose first `host` is host work.
pub fn run_hosted(p: &Plan, d: Nanos, host: Nanos, reqs: Vec<RequestSpec>) -> Run {
    let shapes = Arc::new(Mutex::new(Vec::new()));
    let model = Recording {
        d,
        host,
        shapes: shapes.clone(),
    };
    let mut sim = Simulation::with_source(p, Box::new(model), Box::new(List(reqs.into_iter())));
    sim.set_paranoid(true);
    let report = sim.run(&mut |_| {});
    let shapes = shapes.lock().expect("not poisoned").clone();
    Run { report, shapes }
}

pub fn req(id: u64, at: Nanos, prompt: u32, output: u32) -> RequestSpec {
    RequestSpec::new(id, at, prompt, output)
}

pub fn of_client(mut r: RequestSpec, client: u32, priority: u32) -> RequestSpec {
    r.client = client;
    r.priority = priority;
    r
}

/// VTC's counter lift (Sheng et al., OSDI'24, Algorithm 2). One request
/// runs at a time (max_num_seqs = 1), each only a prefill (output 1), every
/// iteration 10 ms. Client 0 queues a0..a3 (100-token prompts) at 0;
/// client 1 queues b0, b1 (30 tokens) at 1 ms, while a0 runs (c0 = 100).
/// With the lift, client 1 becomes active at c1 = max(0, min over active
/// clients = c0 = 100) = 100; the tie goes to client 0 (a1, c0 = 200), then
/// b0 (c1 = 130), b1 (160), a2, a3: admissions at 0, 10, 20, 30, 40, 50 ms
/// in the order a0 a1 b0 b1 a2 a3. Without it client 1 starts at 0 and
/// both b's (60 < 100) go before a1.
#[test]
fn vtc_lifts_a_newly_active_client_to_the_least_active_counter() {
    let p = plan(&["scheduler.kind=vtc", "scheduler.max_num_seqs=1"], 1000);
    let mut reqs: Vec<RequestSpec> = (0..4).map(|i| of_client(req(i, 0, 100, 1), 0, 0)).collect();
    reqs.push(of_client(req(4, MS, 30, 1), 1, 0));
    reqs.push(of_client(req(5, MS, 30, 1), 1, 0));
    let r = run(&p, 10 * MS, reqs);
    // ids 0..3 = a0..a3, 4, 5 = b0, b1.
    let want = [(0, 0), (1, 10), (2, 40), (3, 50), (4, 20), (5, 30)];
    let want: Vec<(u64, Nanos)> = want.iter().map(|&(i, t)| (i, t * MS)).collect();
    assert_eq!(r.scheduled(), want);
}

/// Priority-aware preemption (vLLM `_preempt` with priorities: the least
/// urgent class, newest first). vLLM scheduler, 16-token blocks, pool of 4
/// blocks, 10 ms per iteration; R0 and R1 (class 1) at 0, R2 (class 0, the
/// urgent one) at 1 ms; prompts 16 (1 block), outputs 17 (2 blocks at the end).
/// Iteration 1 prefills R0, R1; iteration 2 prefills R2 (3 blocks used);
/// iteration 3's decode step needs a new block for each of the three (16 →
/// 17 tokens) with 1 free, so one is preempted (recompute), freeing one
/// block: with priorities the newest of class 1, R1; without, the newest
/// overall, R2. The two others decode 16 steps (iterations 3–18, done at
/// 180 ms, 2 blocks each: the pool is full); the victim is then re-prefilled
/// (iteration 19) and decodes 15 steps: done at 340 ms.
#[test]
fn priority_preemption_evicts_the_newest_of_the_least_urgent_class() {
    let reqs = vec![
        of_client(req(0, 0, 16, 17), 0, 1),
        of_client(req(1, 0, 16, 17), 0, 1),
        of_client(req(2, MS, 16, 17), 0, 0),
    ];
    let victim = |priority: bool| {
        let prio = format!("scheduler.priority={priority}");
        let r = run(&plan(&["scheduler.kind=vllm", &prio], 4), 10 * MS, reqs.clone());
        let preempted: Vec<u64> = r
            .report
            .requests
            .iter()
            .filter(|x| x.preemptions > 0)
            .map(|x| x.id)
            .collect();
        assert_eq!(preempted.len(), 1, "{:?}", r.report.requests);
        let v = preempted[0];
        for x in &r.report.requests {
            let want = if x.id == v { 340 * MS } else { 180 * MS };
            assert_eq!(x.finish, want, "request {}", x.id);
            assert_eq!(x.preemptions, u32::from(x.id == v));
        }
        v
    };
    assert_eq!(victim(true), 1, "newest of the least urgent class");
    assert_eq!(victim(false), 2, "newest overall");
}

/// LightLLM's peak estimate, by hand. Requests (left, cur) = (16, 16),
/// (160, 16), (144, 16), 16-token blocks. Sorted by remaining output
/// descending: (160, 16), (144, 16), (16, 16). The i-th finishes after
/// left_i steps, when the i+1 longest hold Σcur + (i+1)·left_i tokens:
/// i = 0: 16 + 160 = 176; i = 1: 32 + 288 = 320; i = 2: 48 + 48 = 96. The
/// peak is at i = 1 (neither the first nor the last): 320 tokens, and the
/// two requests' last blocks may waste up to 2·15 tokens: ⌊350/16⌋ = 21
/// blocks (i = 0: ⌊191/16⌋ = 11; i = 2: ⌊141/16⌋ = 8). Unsorted input
/// would peak later and higher; the last term alone gives 8.
#[test]
fn lightllm_peak_is_the_max_over_finishing_times_of_sorted_requests() {
    let mut s = vec![(16, 16), (160, 16), (144, 16)];
    assert_eq!(super::lightllm::peak_blocks(&mut s, 16), 21);
    // Token granularity (LightLLM's TokenAttention, B = 1): exactly 320.
    let mut s = vec![(16, 16), (160, 16), (144, 16)];
    assert_eq!(super::lightllm::peak_blocks(&mut s, 1), 320);
    // One request: cur + left = 10 + 22 = 32 tokens, exactly 2 blocks
    // (⌊(32 + 15)/16⌋ = 2; the old ⌈32/16⌉ + 1 = 3 overcounted).
    assert_eq!(super::lightllm::peak_blocks(&mut [(22, 10)], 16), 2);
    // Two requests equal in length: both hold cur + left at the end:
    // 2·(8 + 24) = 64 tokens: ⌊(64 + 30)/16⌋ = 5 blocks.
    assert_eq!(super::lightllm::peak_blocks(&mut [(24, 8), (24, 8)], 16), 5);
}

/// SGLang's longest-prefix-first order applies only while the queue is
/// within `scheduler.window`; beyond it, FCFS. One request at a time, 10 ms
/// per iteration, outputs of 1 token. R0 (prefix group 7, 32 tokens = 2
/// blocks) runs first and leaves its prefix cached. At 1 ms R1 (no
/// prefix), R2 (group 7: 32 tokens cached) and R3 (group 9) queue.
/// Window 2: at 10 ms three wait (> 2), so FCFS admits R1; at 20 ms two
/// wait and R2's cached prefix puts it first; then R3. Window 3: R2 first
/// at 10 ms, then R1 and R3 (no hits: earliest first).
#[test]
fn sglang_serves_fcfs_when_the_queue_exceeds_its_window() {
    let group = |g| Prefix::Group { group: g, tokens: 32 };
    let mut reqs = vec![
        req(0, 0, 64, 1),
        req(1, MS, 64, 1),
        req(2, MS, 64, 1),
        req(3, MS, 64, 1),
    ];
    reqs[0].prefix = group(7);
    reqs[2].prefix = group(7);
    reqs[3].prefix = group(9);
    let order = |window: &str| {
        let w = format!("scheduler.window={window}");
        let p = plan(
            &[
                "scheduler.kind=sglang",
                "scheduler.prefix_caching=true",
                "scheduler.max_num_seqs=1",
                &w,
            ],
            1000,
        );
        let r = run(&p, 10 * MS, reqs.clone());
        assert_eq!(r.rec(2).cached_tokens, 32);
        r.scheduled()
            .iter()
            .map(|&(i, t)| (i, t / MS))
            .collect::<Vec<_>>()
    };
    assert_eq!(order("2"), [(0, 0), (1, 10), (2, 20), (3, 30)]);
    assert_eq!(order("3"), [(0, 0), (1, 20), (2, 10), (3, 30)]);
}

/// LAPS's batching window: with nothing running, short prefills wait until
/// the oldest has waited `laps_window` (20 ms here), so R0 (at 0) and R1 (at
/// 5 ms) are prefilled together at 20 ms and both finish (output 1) at 30
/// ms. Without the window, R0 runs at once (done at 10 ms) and R1 next
/// (done at 20 ms).
#[test]
fn laps_batching_window_holds_short_prefills_for_company() {
    let reqs = vec![req(0, 0, 100, 1), req(1, 5 * MS, 100, 1)];
    let finishes = |window: &str| {
        let w = format!("scheduler.laps_window={window}");
        let r = run(&plan(&["scheduler.kind=laps", &w], 1000), 10 * MS, reqs.clone());
        (r.finishes(), r.shapes.len())
    };
    assert_eq!(finishes("0"), (vec![(0, 10 * MS), (1, 20 * MS)], 2));
    assert_eq!(finishes("0.02"), (vec![(0, 30 * MS), (1, 30 * MS)], 1));
}

/// FasterTransformer's static batch returns every response when the batch
/// ends. R0 (output 2) and R1 (output 5) start together, 10 ms per
/// iteration: prefill [0, 10] (first tokens at 10 ms), then four decode
/// steps for R1's remaining 4 tokens, during which R0 (done after one) stays
/// in the batch as padding: 2 sequences each step; the batch ends at 50 ms,
/// so R0 finishes at 50 ms, not 20 ms (Orca, iteration-level, returns it at 20).
/// The padding is computed too: each step's attention reads the live
/// sequence's context (16 prompt + the tokens written so far, + 1 for the
/// new one) plus R0's 17 frozen entries (16 + its first token, written by
/// step 1): 17 + 17 = 34 at step 1, then 18 + 17, 19 + 17, 20 + 17.
#[test]
fn fastertransformer_returns_responses_at_batch_end() {
    let reqs = vec![req(0, 0, 16, 2), req(1, 0, 16, 5)];
    let r = run(
        &plan(&["scheduler.kind=fastertransformer"], 2000),
        10 * MS,
        reqs.clone(),
    );
    assert_eq!(r.finishes(), [(0, 50 * MS), (1, 50 * MS)]);
    assert_eq!(r.rec(0).first_token, 10 * MS);
    let decode: Vec<u32> = r.shapes[1..].iter().map(|s| s.decode_seqs).collect();
    assert_eq!(decode, [2, 2, 2, 2]);
    let read: Vec<u64> = r.shapes[1..].iter().map(|s| s.decode_kv_tokens).collect();
    assert_eq!(read, [34, 35, 36, 37]);
    let orca = run(&plan(&["scheduler.kind=orca"], 2000), 10 * MS, reqs);
    assert_eq!(orca.finishes(), [(0, 20 * MS), (1, 50 * MS)]);
}

/// Ties in a non-FCFS order go to the earliest request: SGLang with three
/// requests at 0, none with a cached prefix (all 0 hits), one at a time
/// (max_num_seqs = 1), a prefill-only output each: served R0, R1, R2 at
/// 10, 20, 30 ms. (Taking the last of equals would serve R2 first.)
#[test]
fn ties_in_longest_prefix_order_go_to_the_earliest() {
    let p = plan(&["scheduler.kind=sglang", "scheduler.max_num_seqs=1"], 64);
    let r = run(&p, 10 * MS, (0..3).map(|i| req(i, 0, 16, 1)).collect());
    assert_eq!(r.finishes(), [(0, 10 * MS), (1, 20 * MS), (2, 30 * MS)]);
}

/// Whole-prompt admission charges a waiting request only its uncached
/// tokens against the budget. vLLM, prefix caching, a 90-token budget
/// (and max_model_len); A, B and C have 80-token prompts sharing a 64-token
/// prefix. A prefills alone at 0 (B and C arrive at 5 ms) and its prompt
/// blocks join the cache at 10 ms; then B and C each need 80 − 64 = 16:
/// both prefill in the 10 ms batch (32 ≤ 90) and end at 20 ms. Charged by
/// cached *units* instead of tokens (80 − 4 = 76 each: 16 + 76 > 90), C
/// would wait a step.
#[test]
fn whole_prompt_admission_charges_only_the_uncached_tokens() {
    let shared = |r: RequestSpec| RequestSpec {
        prefix: Prefix::Group { group: 3, tokens: 64 },
        ..r
    };
    let reqs = vec![
        shared(req(0, 0, 80, 1)),
        shared(req(1, 5 * MS, 80, 1)),
        shared(req(2, 5 * MS, 80, 1)),
    ];
    let sets = [
        "scheduler.kind=vllm",
        "scheduler.prefix_caching=true",
        "model.max_model_len=90",
        "scheduler.max_num_batched_tokens=90",
        "scheduler.max_num_seqs=8",
    ];
    let r = run(&plan(&sets, 64), 10 * MS, reqs);
    assert_eq!((r.shapes[1].prefill_seqs, r.shapes[1].prefill_tokens), (2, 32));
    assert_eq!(r.finishes(), [(0, 10 * MS), (1, 20 * MS), (2, 20 * MS)]);
}

/// Whole-prompt admission stops at whichever limit comes first. vLLM, three
/// 16-token prompts at 0, a roomy pool: with max_num_seqs = 2 the first
/// batch prefills two (32 tokens); with a 40-token budget (and 8 sequences)
/// it also prefills two, since a third would need 48; a limit met
/// exactly still admits.
#[test]
fn whole_prompt_admission_stops_at_max_num_seqs_and_at_the_token_budget() {
    let reqs = || (0..3).map(|i| req(i, 0, 16, 4)).collect();
    let first = |sets: &[&str]| {
        let r = run(&plan(sets, 64), 10 * MS, reqs());
        (r.shapes[0].prefill_seqs, r.shapes[0].prefill_tokens)
    };
    assert_eq!(
        first(&["scheduler.kind=vllm", "scheduler.max_num_seqs=2"]),
        (2, 32)
    );
    let budget = [
        "scheduler.kind=vllm",
        "scheduler.max_num_seqs=8",
        "model.max_model_len=40",
        "scheduler.max_num_batched_tokens=40",
    ];
    assert_eq!(first(&budget), (2, 32));
    // A budget the two fill exactly (32 tokens) still takes both.
    let exact = [
        "scheduler.kind=vllm",
        "scheduler.max_num_seqs=8",
        "model.max_model_len=32",
        "scheduler.max_num_batched_tokens=32",
    ];
    assert_eq!(first(&exact), (2, 32));
    // max_num_seqs = 3 admits the third (3 + 1 > 3 stops only a fourth).
    assert_eq!(
        first(&["scheduler.kind=vllm", "scheduler.max_num_seqs=3"]),
        (3, 48)
    );
    assert_eq!(
        first(&["scheduler.kind=vllm", "scheduler.max_num_seqs=8"]),
        (3, 48)
    );
}

/// The periodic samples (`timeseries.csv`) show the replica as it is: at
/// 5 ms, inside the first 10 ms iteration, both 16-token prompts are being
/// prefilled (2 sequences, 32 tokens), both are running, none waits, and
/// each holds one 16-token block of the 64.
#[test]
fn samples_show_the_batch_in_flight_and_the_blocks_held() {
    let p = plan(&["scheduler.kind=vllm", "metrics.sample_interval=0.005"], 64);
    let r = run(&p, 10 * MS, vec![req(0, 0, 16, 4), req(1, 0, 16, 4)]);
    let s = r
        .report
        .samples
        .iter()
        .find(|s| s.time == 5 * MS)
        .unwrap_or_else(|| panic!("no sample at 5 ms: {:?}", r.report.samples));
    let st = s.state;
    assert_eq!(
        (st.running, st.queued, st.batch_seqs, st.batch_tokens),
        (2, 0, 2, 32)
    );
    assert_eq!(
        (st.kv_blocks_used, st.kv_blocks_total, st.cache_blocks),
        (2, 64, 0)
    );
}

/// Sarathi's token budget (chunk_size = 32), decodes first, then continuing
/// chunks, then new requests with what is left. Three 80-token prompts at 0:
/// 1: R0 32. 2: R0 32. 3: R0's last 16, R1 admitted with the other 16.
/// 4: R0 decodes (1), R1 31. 5: R0 decodes, R1 31 (2 left). 6: R0 decodes,
/// R1's last 2, R2 admitted with 29. Prefill tokens per iteration
/// 32, 32, 32, 31, 31, 31; prefilling sequences 1, 1, 2, 1, 1, 2.
#[test]
fn chunked_prefill_shares_one_token_budget_in_order() {
    let p = plan(
        &[
            "scheduler.kind=sarathi",
            "scheduler.chunk_size=32",
            "scheduler.max_num_seqs=8",
        ],
        64,
    );
    let r = run(&p, 10 * MS, (0..3).map(|i| req(i, 0, 80, 8)).collect());
    let got: Vec<(u64, u32, u32)> = r.shapes[..6]
        .iter()
        .map(|s| (s.prefill_tokens, s.prefill_seqs, s.decode_seqs))
        .collect();
    assert_eq!(
        got,
        [
            (32, 1, 0),
            (32, 1, 0),
            (32, 2, 0),
            (31, 1, 1),
            (31, 1, 1),
            (31, 2, 1)
        ]
    );
}

/// LAPS with a 64-token budget, up to 8 sequences, prompts ≤ 32 short.
const LAPS_64: &[&str] = &[
    "scheduler.kind=laps",
    "scheduler.chunk_size=64",
    "scheduler.max_num_batched_tokens=64",
    "scheduler.max_num_seqs=8",
    "scheduler.laps_threshold=32",
];

/// LAPS (threshold 32, budget 64): shorts first, longs take what is left,
/// continuing chunks before new admissions. L0 (200), S1 (16), S2 (16),
/// L3 (200) at 0. 1: S1 + S2 (32), L0 32. 2: S1, S2 decode (2), L0 62.
/// 3: L0 62 (44 left). 4: L0's last 44, L3 admitted with the 18 left.
#[test]
fn laps_serves_shorts_first_and_longs_from_the_budget_left() {
    let reqs = vec![
        req(0, 0, 200, 2),
        req(1, 0, 16, 8),
        req(2, 0, 16, 8),
        req(3, 0, 200, 2),
    ];
    let r = run(&plan(LAPS_64, 128), 10 * MS, reqs);
    let got: Vec<(u64, u32, u32)> = r.shapes[..4]
        .iter()
        .map(|s| (s.prefill_tokens, s.prefill_seqs, s.decode_seqs))
        .collect();
    assert_eq!(got, [(64, 3, 0), (62, 1, 2), (62, 1, 2), (62, 2, 2)]);
}

/// LAPS's batching window holds shorts only until they fill the budget:
/// with a 1 s window and budget 64, four 16-token shorts at 0 fill it and
/// run at once (one iteration, 10 ms), three do not and wait the window.
#[test]
fn laps_window_ends_when_the_shorts_fill_the_budget() {
    let sets = [LAPS_64, &["scheduler.laps_window=1"]].concat();
    let shorts = |n: u64| (0..n).map(|i| req(i, 0, 16, 1)).collect::<Vec<_>>();
    let r = run(&plan(&sets, 128), 10 * MS, shorts(4));
    assert!(
        r.finishes().iter().all(|&(_, t)| t == 10 * MS),
        "{:?}",
        r.finishes()
    );
    let r = run(&plan(&sets, 128), 10 * MS, shorts(3));
    assert!(
        r.finishes().iter().all(|&(_, t)| t == 1010 * MS),
        "{:?}",
        r.finishes()
    );
}

/// LightLLM's gate with a client `max_tokens` and a watermark, exactly.
/// Blocks of 16 tokens, a pool of 20 blocks (320 tokens) with a 6%
/// watermark (⌊1.2⌋ = 1 block kept free: 304 tokens usable),
/// `max_model_len` 200. A and B (64-token prompts, 10 output tokens)
/// arrive together; every iteration takes 10 ms.
///
/// The estimate of each one's remaining output is `max_tokens` = M (not
/// `max_model_len − prompt` = 136, which alone would keep B out: with both,
/// ⌊(128 + 2·136 + 30)/16⌋ = 26 blocks). When B is considered, A has just
/// been admitted and holds no KV yet, but counts with its whole prompt (64).
/// Both then peak when the shorter-left finishes, with n = 2:
/// - M = 76: ⌊(128 + 152 + 30)/16⌋ = 19 blocks = 304 tokens ≤ 304: B joins
///   A at 0.
/// - M = 84: ⌊(128 + 168 + 30)/16⌋ = 20 blocks = 320 > 304: B waits. Once
///   A has g tokens (g at 10·g ms) it holds 64 + g with 84 − g left, so the
///   peak is ⌊(326 − g)/16⌋ blocks, 19 from g = 7: B is admitted at 70 ms;
///   its prefill (70–80 ms, vLLM v0 runs prefills alone) delays A's last
///   three tokens to 90, 100, 110 ms.
/// - No `max_tokens`: the estimate 136 gives ⌊(430 − g)/16⌋ > 20 blocks for
///   every g ≤ 10, so B starts when A finishes (prefill, 9 decodes: 100 ms).
#[test]
fn lightllm_gate_uses_max_tokens_and_keeps_the_watermark_free() {
    let reqs = || vec![req(0, 0, 64, 10), req(1, 0, 64, 10)];
    let sets = |m: u32| {
        vec![
            "scheduler.kind=lightllm".to_string(),
            "scheduler.watermark=0.06".to_string(),
            "model.max_model_len=200".to_string(),
            format!("workload.max_tokens={m}"),
        ]
    };
    let of = |m| {
        let s = sets(m);
        let refs: Vec<&str> = s.iter().map(String::as_str).collect();
        run(&plan(&refs, 20), 10 * MS, reqs())
    };
    let fits = of(76);
    assert_eq!(fits.scheduled(), vec![(0, 0), (1, 0)]);
    let waits = of(84);
    assert_eq!(waits.scheduled(), vec![(0, 0), (1, 70 * MS)]);
    assert_eq!(waits.rec(0).finish, 110 * MS);
    // Without max_tokens the estimate is max_model_len − prompt = 136.
    let unbounded = run(
        &plan(&["scheduler.kind=lightllm", "model.max_model_len=200"], 20),
        10 * MS,
        reqs(),
    );
    assert_eq!(unbounded.rec(0).finish, 100 * MS);
    assert_eq!(unbounded.scheduled(), vec![(0, 0), (1, 100 * MS)]);
}

/// LAPS's batching window holds shorts only while nothing runs, and longs
/// are admitted past held shorts. Threshold 32, budget 64, window 100 ms.
///
/// While decodes run, a short joins them at once: L0 (40 tokens, 10 out)
/// is admitted at 0 (no short to wait for) and decodes; S1 (16, 1) arrives
/// at 25 ms and is prefilled at 30 ms beside L0's decode, done at 40 ms.
/// (Holding it would keep it until L0 ends at 100 ms.)
///
/// With the window holding S0 (16, at 0), L1 (40, at 0, behind S0 in the
/// queue) still runs at 0, done at 10 ms; S0 waits out the window alone
/// (prefill at 100 ms, done at 110 ms).
#[test]
fn laps_window_holds_shorts_only_when_idle_and_not_the_longs() {
    let sets = [LAPS_64, &["scheduler.laps_window=0.1"]].concat();
    let p = plan(&sets, 128);
    let r = run(&p, 10 * MS, vec![req(0, 0, 40, 10), req(1, 25 * MS, 16, 1)]);
    assert_eq!(r.finishes(), [(0, 100 * MS), (1, 40 * MS)]);
    let r = run(&p, 10 * MS, vec![req(0, 0, 16, 1), req(1, 0, 40, 1)]);
    assert_eq!(r.finishes(), [(0, 110 * MS), (1, 10 * MS)]);
}

/// VTC charges `w_out` per generated token to the generating client.
/// Output weight 3, up to 3 sequences, 10 ms per iteration, all at 0:
/// a0, a0' (client 0, prompts 10, 40 tokens out), b0 (client 1, prompt 25,
/// 1 out), a1 (client 0), b1, b2 (client 1; prompts 10, 1 out).
/// 0 ms: a0 (c0 = 10), b0 (c1 = 25), a0' (c0 = 20). 10 ms: b0 is done,
/// a0 and a0' decode: c0 = 20 + 3·2 = 26 > 25, so b1 (c1 = 35). 20 ms:
/// c0 = 32 < 35: a1. 30 ms: b2, the only one left.
#[test]
fn vtc_charges_each_generated_token_at_the_output_weight() {
    let p = plan(
        &[
            "scheduler.kind=vtc",
            "scheduler.max_num_seqs=3",
            "scheduler.vtc_output_weight=3",
        ],
        1000,
    );
    let reqs = vec![
        of_client(req(0, 0, 10, 40), 0, 0),
        of_client(req(1, 0, 10, 40), 0, 0),
        of_client(req(2, 0, 25, 1), 1, 0),
        of_client(req(3, 0, 10, 1), 0, 0),
        of_client(req(4, 0, 10, 1), 1, 0),
        of_client(req(5, 0, 10, 1), 1, 0),
    ];
    let r = run(&p, 10 * MS, reqs);
    let at: Vec<Nanos> = r.scheduled().iter().map(|&(_, t)| t / MS).collect();
    assert_eq!(at, [0, 0, 0, 20, 10, 30]);
}

/// VTC charges `w_in` per prompt token: with weight 1, client 0's two
/// 10-token prompts (20) tie client 1's one 20-token prompt, and ties go to
/// the lower client. One at a time, 1 token out, 10 ms each; a0, a1
/// (client 0), b0 (client 1, 20 tokens), a2 (client 0), b1 (client 1):
/// a0 at 0 (c0 = 10), b0 at 10 (c1 = 20), a1 at 20 (c0 = 20), a2 at 30
/// (tie), b1 at 40.
#[test]
fn vtc_charges_prompt_tokens_at_the_input_weight() {
    let p = plan(&["scheduler.kind=vtc", "scheduler.max_num_seqs=1"], 1000);
    let reqs = vec![
        of_client(req(0, 0, 10, 1), 0, 0),
        of_client(req(1, 0, 10, 1), 0, 0),
        of_client(req(2, 0, 20, 1), 1, 0),
        of_client(req(3, 0, 10, 1), 0, 0),
        of_client(req(4, 0, 10, 1), 1, 0),
    ];
    let r = run(&p, 10 * MS, reqs);
    let at: Vec<Nanos> = r.scheduled().iter().map(|&(_, t)| t / MS).collect();
    assert_eq!(at, [0, 20, 10, 30, 40]);
}

/// A client that went idle is lifted again when it comes back. One at a
/// time, 1 token out, 10 ms each, prompts of 10: a0..a3 (client 0) and b0
/// (client 1) at 0, b1 (client 1) at 25 ms. a0 at 0 (c0 = 10), b0 at 10
/// (c1 = 10), a1 at 20 (c0 = 20; client 1 now idle). At 30 ms b1 waits:
/// client 1 is lifted to the least active counter, 20, and the tie goes to
/// client 0: a2 at 30, b1 at 40, a3 at 50. (Unlifted, b1 would go at 30.)
#[test]
fn vtc_lifts_a_client_returning_from_idle() {
    let p = plan(&["scheduler.kind=vtc", "scheduler.max_num_seqs=1"], 1000);
    let mut reqs: Vec<RequestSpec> = (0..4).map(|i| of_client(req(i, 0, 10, 1), 0, 0)).collect();
    reqs.push(of_client(req(4, 0, 10, 1), 1, 0));
    reqs.push(of_client(req(5, 25 * MS, 10, 1), 1, 0));
    let r = run(&p, 10 * MS, reqs);
    let at: Vec<Nanos> = r.scheduled().iter().map(|&(_, t)| t / MS).collect();
    assert_eq!(at, [0, 20, 30, 50, 10, 40]);
}

/// VTC preempts the most-served client's request, not the newest. Pool of
/// 4 blocks (16 tokens), a (client 0, prompt 32: 2 blocks) and b (client
/// 1, prompt 16: 1 block), 17 tokens out each, at 0: both admitted (a
/// first). At 10 ms each decode needs a new block with 1 free; c0 = 32 + 2
/// > c1 = 16 + 2, so a is preempted (by default the newest, b, would be).
#[test]
fn vtc_preempts_the_most_served_client() {
    let p = plan(&["scheduler.kind=vtc"], 4);
    let reqs = vec![
        of_client(req(0, 0, 32, 17), 0, 0),
        of_client(req(1, 0, 16, 17), 1, 0),
    ];
    let r = run(&p, 10 * MS, reqs);
    assert_eq!((r.rec(0).preemptions, r.rec(1).preemptions), (1, 0));
}

/// An iteration priced at the clock's limit (u64::MAX ns) still ends: the
/// engine's queue of iteration ends keeps `u64::MAX` for "idle", so such an
/// end is kept one nanosecond short of it rather than lost (which would
/// leave the request unserved).
#[test]
fn an_iteration_ending_at_the_clocks_limit_still_ends() {
    let p = plan(&["scheduler.kind=vllm"], 100);
    let run = run(&p, Nanos::MAX, vec![req(0, 0, 10, 1)]);
    assert_eq!(run.finishes(), [(0, Nanos::MAX - 1)]);
}
