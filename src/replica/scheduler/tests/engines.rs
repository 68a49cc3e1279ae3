//! What tells vLLM V1's and SGLang's schedulers apart from Sarathi's (the
//! V0 chunked loop) and from each other on the same token budget. V1:
//! blocks per chunk instead of per prompt, no admission in a step that
//! preempted, prompt blocks cached as chunks complete, recompute only.
//! SGLang: prefill batches without decodes, admission reserving future
//! decode tokens scaled by `new_token_ratio`, retraction of the request
//! with the fewest generated tokens (longest prompt among equals). Block
//! size 16, every iteration 10 ms, no watermark, answers worked out by
//! hand from `vllm_v1.rs`'s and `sglang.rs`'s rules.

use super::*;

/// Both policies with a 32-token budget (Sarathi's chunk size too).
fn budget32(kind: &str, blocks: u64) -> Plan {
    plan(
        &[
            &format!("scheduler.kind={kind}"),
            "scheduler.chunk_size=32",
            "scheduler.max_num_batched_tokens=32",
            "scheduler.prefix_caching=true",
            "scheduler.max_num_seqs=8",
        ],
        blocks,
    )
}

/// A (32-token prompt, 3 tokens) and B (128-token prompt, 1 token) at 0,
/// 9 blocks. Step 1 prefills A (2 blocks). At 10 ms A decodes (3 blocks),
/// leaving 6 free and 31 tokens of budget:
/// - V1 admits B with a 31-token chunk (2 blocks) and goes on chunk by
///   chunk (31, 31 while A decodes; A ends at 30 ms; then 32, 32, 2): B is
///   scheduled at 10 ms and its prefill ends at 60 ms.
/// - Sarathi needs B's 8 blocks at admission: it waits until A ends at
///   30 ms, then prefills 32 a step: scheduled at 30, done at 70 ms.
#[test]
fn v1_admits_a_prompt_whose_first_chunk_fits_before_the_whole_prompt_would() {
    let reqs = || vec![req(0, 0, 32, 3), req(1, 0, 128, 1)];
    let v1 = run(&budget32("vllm-v1", 9), 10 * MS, reqs());
    assert_eq!((v1.rec(1).scheduled, v1.rec(1).finish), (10 * MS, 60 * MS));
    assert_eq!(v1.rec(0).finish, 30 * MS);
    let sarathi = run(&budget32("sarathi", 9), 10 * MS, reqs());
    assert_eq!(
        (sarathi.rec(1).scheduled, sarathi.rec(1).finish),
        (30 * MS, 70 * MS)
    );
    // Neither preempted anyone: V1's chunks always fitted.
    assert_eq!((v1.rec(1).preemptions, sarathi.rec(1).preemptions), (0, 0));
}

/// A and B share a 64-token prefix (80-token prompts, 1 token each); A at
/// 0, B at 15 ms; a roomy pool. A prefills 32 + 32 + 16 (done at 30 ms).
/// At 20 ms B is admitted beside A's last chunk:
/// - V1 cached A's first 64 tokens (4 full blocks) as its chunks ended,
///   so B hits 64 tokens and computes 16: done at 30 ms.
/// - Sarathi caches A's prompt only when its prefill completes (30 ms):
///   B hits nothing and prefills 16 + 32 + 32: done at 50 ms.
#[test]
fn v1_caches_prompt_blocks_as_each_chunk_completes() {
    let shared = |r: RequestSpec| RequestSpec {
        prefix: Prefix::Group { group: 7, tokens: 64 },
        ..r
    };
    let reqs = || vec![shared(req(0, 0, 80, 1)), shared(req(1, 15 * MS, 80, 1))];
    let v1 = run(&budget32("vllm-v1", 64), 10 * MS, reqs());
    assert_eq!((v1.rec(1).cached_tokens, v1.rec(1).finish), (64, 30 * MS));
    let sarathi = run(&budget32("sarathi", 64), 10 * MS, reqs());
    assert_eq!(
        (sarathi.rec(1).cached_tokens, sarathi.rec(1).finish),
        (0, 50 * MS)
    );
}

/// V1 admits nothing in a step that preempted. Budget 17, 4 blocks; A and
/// B: 16-token prompts at 0, A 19 tokens, B 40. Step 1 prefills A (16) and
/// 1 token of B; step 2 decodes A and finishes B's prompt; from step 3
/// both decode, each in 2 blocks (pool full). In step 18 (170 ms) A's
/// KV reaches 33 entries and needs a third block: B, the newest, is
/// preempted (freeing 2). The budget left (16 tokens, 1 block) would
/// readmit B's first chunk, but V1 does not admit in that step: the batch
/// is A's decode alone, and B comes back at 180 ms beside A's last step.
#[test]
fn v1_admits_nothing_in_a_step_that_preempted() {
    let p = plan(
        &[
            "scheduler.kind=vllm-v1",
            "scheduler.max_num_batched_tokens=17",
            "scheduler.max_num_seqs=8",
            "model.max_model_len=64",
        ],
        4,
    );
    let r = run(&p, 10 * MS, vec![req(0, 0, 16, 19), req(1, 0, 16, 40)]);
    let step18 = r.shapes[17];
    assert_eq!((step18.decode_seqs, step18.prefill_tokens), (1, 0));
    let step19 = r.shapes[18];
    assert_eq!((step19.decode_seqs, step19.prefill_tokens), (1, 16));
    assert_eq!(r.rec(0).finish, 190 * MS);
    assert_eq!(r.rec(1).preemptions, 1);
}

/// V1's one token budget is shared in order: decodes, then the running
/// prefill's next chunk, then admissions get what is left. Budget 16, a
/// roomy pool, all at 0: A and B (10-token prompts, 5 tokens out), C
/// (30-token prompt, 1 out). Step 1: A 10 + B 6. Step 2: A's decode (1),
/// B's last 4, C's first 11. Step 3: two decodes, C 14 (25 of 30).
/// Step 4: C's last 5: C ends at 40 ms. (Charging B's chunk to nothing
/// would give C 19 tokens in step 2 and end it at 30 ms.)
#[test]
fn v1_admits_into_what_the_running_chunks_leave_of_the_budget() {
    let p = plan(
        &[
            "scheduler.kind=vllm-v1",
            "scheduler.max_num_batched_tokens=16",
            "scheduler.max_num_seqs=8",
        ],
        64,
    );
    let r = run(
        &p,
        10 * MS,
        vec![req(0, 0, 10, 5), req(1, 0, 10, 5), req(2, 0, 30, 1)],
    );
    let prefill: Vec<u64> = r.shapes[..4].iter().map(|s| s.prefill_tokens).collect();
    assert_eq!(prefill, [16, 15, 14, 5]);
    assert_eq!((r.rec(2).scheduled, r.rec(2).finish), (10 * MS, 40 * MS));
}

/// V1 and SGLang have no swap space: asking them to swap is refused, naming
/// the key; Sarathi (V0) may swap.
#[test]
fn recompute_only_engines_refuse_swap_preemption() {
    for kind in ["vllm-v1", "sglang"] {
        let s = crate::scenario::load(
            None,
            &[
                format!("scheduler.kind={kind}"),
                "scheduler.preemption=swap".to_string(),
            ],
        )
        .expect("loads");
        let err = validate::plan(&s).expect_err("swap refused").to_string();
        assert!(
            err.contains("scheduler.preemption") && err.contains("recompute"),
            "{err}"
        );
    }
    let s = crate::scenario::load(
        None,
        &[
            "scheduler.kind=sarathi".to_string(),
            "scheduler.preemption=swap".to_string(),
        ],
    )
    .expect("loads");
    assert!(validate::plan(&s).is_ok());
}

fn sglang(blocks: u64, sets: &[&str]) -> Plan {
    let mut all = vec![
        "scheduler.kind=sglang",
        "scheduler.max_num_batched_tokens=64",
        "scheduler.max_num_seqs=8",
    ];
    all.extend_from_slice(sets);
    plan(&all, blocks)
}

/// SGLang does not mix: a step with prefill work is a prefill batch and the
/// decodes wait. A (16-token prompt, 5 tokens) at 0, B (16, 1) at 15 ms, a
/// roomy pool. A's tokens come at 10 and 20 ms; the step at 20 ms
/// prefills B alone (no decode), so A's last three come at 40, 50, 60 ms.
/// Sarathi and V1 decode A beside B's prefill: A done at 50 ms.
#[test]
fn sglang_runs_prefill_batches_without_decodes() {
    let reqs = || vec![req(0, 0, 16, 5), req(1, 15 * MS, 16, 1)];
    let sg = run(&sglang(64, &["workload.max_tokens=8"]), 10 * MS, reqs());
    assert_eq!((sg.shapes[2].decode_seqs, sg.shapes[2].prefill_tokens), (0, 16));
    assert_eq!(sg.rec(0).finish, 60 * MS);
    for kind in ["sarathi", "vllm-v1"] {
        let r = run(&budget32(kind, 64), 10 * MS, reqs());
        assert_eq!(
            (r.shapes[2].decode_seqs, r.shapes[2].prefill_tokens),
            (1, 16),
            "{kind}"
        );
        assert_eq!(r.rec(0).finish, 50 * MS, "{kind}");
    }
}

/// SGLang admits B only if the free KV, less A's expected remaining output
/// (max_new_tokens − generated, × new_token_ratio), covers B's prompt and
/// its max_new_tokens. max_tokens = 100; A (16, 100) at 0, B (16, 1) at
/// 5 ms. At 10 ms A holds 1 block and has 99 tokens to go: reserve
/// 99 × 0.7 = 69.3; B needs 16 + 100 = 116.
/// - 13 blocks (208 tokens): 192 free − 69.3 = 122.7 ≥ 116: B at 10 ms
///   (with a ratio of 1 it would not be: 192 − 99 = 93).
/// - 10 blocks (160): 144 − 69.3 = 74.7 < 116, and A's growing KV keeps it
///   so: B waits until A ends at 1,000 ms (1 prefill + 99 decode steps).
///   V1, which reserves nothing, admits B at 10 ms.
#[test]
fn sglang_admission_reserves_the_running_requests_future_tokens() {
    let reqs = || vec![req(0, 0, 16, 100), req(1, 5 * MS, 16, 1)];
    let max = ["workload.max_tokens=100"];
    assert_eq!(run(&sglang(13, &max), 10 * MS, reqs()).rec(1).scheduled, 10 * MS);
    let tight = run(&sglang(10, &max), 10 * MS, reqs());
    assert_eq!(
        (tight.rec(0).finish, tight.rec(1).scheduled),
        (1000 * MS, 1000 * MS)
    );
    let v1 = run(&budget32("vllm-v1", 10), 10 * MS, reqs());
    assert_eq!(v1.rec(1).scheduled, 10 * MS);
}

/// SGLang retracts the request with the fewest generated tokens, the
/// longest prompt among equals — here the older one, where V1 and Sarathi
/// preempt the newest. 9 blocks (144 tokens), each asking for its true
/// output (max_tokens = 1 is less). A (48-token prompt, 40 tokens) needs
/// 48 + 40 = 88 < 144, B (16, 39) 16 + 39 = 55 < the 56 left: both
/// prefill at 0. At 330 ms, with 33 tokens each, both cross a block
/// boundary (A 80 → 81 entries, B 48 → 49) and 1 block is free for 2: A
/// is retracted. It cannot come back while B runs (81 tokens to recompute
/// and 7 to go exceed what is free), so B ends at 390 ms and A recomputes at 390
/// and 400 (64 + 17 tokens), then decodes its last 6: done at 470 ms.
#[test]
fn sglang_retracts_the_fewest_generated_then_the_longest_prompt() {
    let reqs = || vec![req(0, 0, 48, 40), req(1, 0, 16, 39)];
    let r = run(&sglang(9, &["workload.max_tokens=1"]), 10 * MS, reqs());
    assert_eq!((r.rec(0).preemptions, r.rec(1).preemptions), (1, 0));
    assert_eq!((r.rec(0).finish, r.rec(1).finish), (470 * MS, 390 * MS));
    // B queued first (55 of 144, then A's 88 of the 89 left): A, now the
    // newer, is still the one retracted.
    let r = run(
        &sglang(9, &["workload.max_tokens=1"]),
        10 * MS,
        vec![req(1, 0, 16, 39), req(0, 0, 48, 40)],
    );
    assert_eq!((r.rec(0).preemptions, r.rec(1).preemptions), (1, 0));
    // B asking for 40 would need 56, all that is left: SGLang refuses an
    // exact fit, so B waits for the next batch (at 10 ms A holds 3 blocks
    // and is charged 39 × 0.7: 96 − 27.3 = 68.7 > 56).
    let r = run(
        &sglang(9, &["workload.max_tokens=1"]),
        10 * MS,
        vec![req(0, 0, 48, 40), req(1, 0, 16, 40)],
    );
    assert_eq!(r.rec(1).scheduled, 10 * MS);
}

/// A request asking for more than the pool holds still runs on an empty
/// replica: 10 blocks (160 tokens), max_tokens = 1,000, A (20-token
/// prompt, 5 tokens): max_new_tokens is cut to 160 − 32 − 1 = 127, so A
/// needs 32 + 127 = 159 < 160 and prefills at 0; its tokens come at 10 …
/// 50 ms. (Cut to 160 − 32 it would need exactly the pool and wait for
/// ever.)
#[test]
fn sglang_admits_a_request_asking_for_more_than_the_pool_into_an_empty_replica() {
    let r = run(
        &sglang(10, &["workload.max_tokens=1000"]),
        10 * MS,
        vec![req(0, 0, 20, 5)],
    );
    assert_eq!((r.rec(0).scheduled, r.rec(0).finish), (0, 50 * MS));
}

/// One token budget per prefill batch, spent in order: the chunked request
/// first, then admissions, each charged what it schedules; and a whole
/// admission holds its clipped max_new_tokens against the next one. Budget
/// 32, a roomy pool, each asking for its true output. A (40, 2) and B
/// (30, 1) at 0: step 1 A 32; step 2 A's
/// last 8, B 24 of 30; step 3 B's last 6: B ends at 30 ms.
#[test]
fn sglang_spends_one_budget_per_prefill_batch() {
    let sets = ["scheduler.max_num_batched_tokens=32", "workload.max_tokens=1"];
    let r = run(
        &sglang(64, &sets),
        10 * MS,
        vec![req(0, 0, 40, 2), req(1, 0, 30, 1)],
    );
    let prefill: Vec<u64> = r.shapes[..3].iter().map(|s| s.prefill_tokens).collect();
    assert_eq!(prefill, [32, 32, 6]);
    assert_eq!(r.rec(1).finish, 30 * MS);
    // 13 blocks (208 tokens), max_tokens = 100, A and B (16, 1) at 0: A
    // needs 16 + 100 = 116 and leaves 92 < B's 116, so B waits for the
    // next batch (at 10 ms A's 99 × 0.7 leaves 192 − 69.3 = 122.7 > 116).
    let max = ["workload.max_tokens=100"];
    let r = run(
        &sglang(13, &max),
        10 * MS,
        vec![req(0, 0, 16, 100), req(1, 0, 16, 1)],
    );
    assert_eq!((r.rec(0).scheduled, r.rec(1).scheduled), (0, 10 * MS));
}

/// SGLang's new_token_ratio falls by (0.7 − 0.098) / 600 per decode step
/// while nothing is retracted, so admission grows bolder. 400 blocks
/// (6,400 tokens), max_tokens = 5,000; A (16, 1,000) at 0, B (16, 1) at
/// 5 ms. B needs 16 + 4,096 (clipped) = 4,112; A is charged
/// 4,096 × ratio. At step s (s ≥ 2) A has s − 1 tokens and the ratio is
/// 0.7 − (s − 2) × 0.602 / 600. At step 193 (1,920 ms) A holds 13 blocks:
/// 6,192 − 4,096 × 0.50836 = 4,109.8 < 4,112; at step 194 (1,930 ms)
/// 6,192 − 4,096 × 0.50736 = 4,113.9: B is admitted then.
#[test]
fn sglang_new_token_ratio_decays_per_decode_step() {
    let reqs = vec![req(0, 0, 16, 1000), req(1, 5 * MS, 16, 1)];
    let r = run(&sglang(400, &["workload.max_tokens=5000"]), 10 * MS, reqs);
    assert_eq!(r.rec(1).scheduled, 1930 * MS);
}

/// SGLang retracts until 20 decode steps of every remaining request fit
/// (`RETRACT_DECODE_STEPS`), not only until the next step does. 4 blocks
/// of 16; A, B and C (16-token prompts, 2 tokens) at 0 each need
/// 16 + 2 = 18 (18 < 64, < 46, < 28): all prefill at 0, one block each.
/// Their second token needs a second block each, 3 for the 1 free: C, the
/// newest of three equals, is retracted. Now the step fits (2 blocks for
/// 2), but 32 free tokens < 20 × 2, so B is retracted too; A decodes alone
/// and ends at 20 ms.
#[test]
fn sglang_retracts_until_twenty_decode_steps_fit() {
    let reqs = vec![req(0, 0, 16, 2), req(1, 0, 16, 2), req(2, 0, 16, 2)];
    let r = run(&sglang(4, &["workload.max_tokens=1"]), 10 * MS, reqs);
    let preempted: Vec<u32> = (0..3).map(|i| r.rec(i).preemptions).collect();
    assert_eq!(preempted, [0, 1, 1]);
    assert_eq!(r.rec(0).finish, 20 * MS);
}

/// The headroom test is strict: exactly 20 steps of room is enough. Blocks
/// of 8, 7 of them; A and B (8, 2) and C (32, 2) at 0 need 10, 10 and 34
/// (34 < 56 − 20): all prefill at 0 (1 + 1 + 4 blocks). Each next token
/// needs a new block, 3 for the 1 free: C (longest prompt among equal
/// generated counts) is retracted, leaving 5 blocks = 40 tokens for A and
/// B — exactly 20 × 2, so nobody else is retracted.
#[test]
fn sglang_stops_retracting_at_exactly_twenty_steps_of_room() {
    let reqs = vec![req(0, 0, 8, 2), req(1, 0, 8, 2), req(2, 0, 32, 2)];
    let sets = ["workload.max_tokens=1", "scheduler.block_size=8"];
    let r = run(&sglang(7, &sets), 10 * MS, reqs);
    let preempted: Vec<u32> = (0..3).map(|i| r.rec(i).preemptions).collect();
    assert_eq!(preempted, [0, 0, 1]);
    assert_eq!((r.rec(0).finish, r.rec(1).finish), (20 * MS, 20 * MS));
}

/// After a retraction SGLang resets `new_token_ratio` to (tokens the
/// remaining requests generated + 20 each) / their max_new_tokens, and the
/// next admission is judged with it. 45 blocks (720 tokens), priorities
/// on (prompts share nothing, so the prefix cache changes no count here);
/// A and B (16-token prompts, 400 tokens, class 1), each asking for its
/// true output (max_tokens = 1 is less). A prefills
/// at 0; at 10 ms B needs 16 + 400 = 416 < 704 − 399 × 0.7 = 424.7 and
/// prefills alone (no mixing); from 20 ms both decode together. Decode
/// step j needs ⌈(16 + j)/16⌉ blocks each: 2 × 22 ≤ 45 up to j = 336, and
/// at j = 337 (the step at 3,380 ms) 2 × 23 > 45: B, with one token fewer
/// (336 against 337), is retracted. The ratio becomes (337 + 20) / 400 =
/// 0.8925 (≠ 1), and A decodes into its 23rd block (22 blocks = 352 tokens
/// free). E (16, 278) and F (16, 30), class 0, arrive at 3,385 ms. At
/// 3,390 ms A has 62 tokens to go: E needs 16 + 278 = 294 <
/// 352 − 62 × 0.8925 = 296.67 and is admitted (with the ratio at 1:
/// 352 − 62 = 290, it would wait); F then needs 46 > 2.67 and waits (with
/// the generated tokens left out of the ratio, 20 / 400 = 0.05, it would
/// fit: 352 − 3.1 − 294 = 54.9).
#[test]
fn sglang_judges_the_next_admission_with_the_ratio_a_retraction_resets() {
    let sets = ["workload.max_tokens=1", "scheduler.priority=true"];
    let reqs = vec![
        of_client(req(0, 0, 16, 400), 0, 1),
        of_client(req(1, 5 * MS, 16, 400), 0, 1),
        of_client(req(2, 3385 * MS, 16, 278), 0, 0),
        of_client(req(3, 3385 * MS, 16, 30), 0, 0),
    ];
    let r = run(&sglang(45, &sets), 10 * MS, reqs);
    let preempted: Vec<u32> = (0..2).map(|i| r.rec(i).preemptions).collect();
    assert_eq!(preempted, [0, 1]);
    assert_eq!(r.rec(2).scheduled, 3390 * MS);
    assert!(
        r.rec(3).scheduled > 3390 * MS,
        "F admitted at {}",
        r.rec(3).scheduled
    );
}

/// SGLang's retraction stops at one request even when fewer than 20 steps
/// of room are left: the last one is never retracted. 10 blocks (160
/// tokens); A (16-token prompt, 118 tokens) needs 134 < 160 and runs alone
/// from 0 (decode step j ends at 10(j + 1) ms with KV 16 + j). B (10, 8)
/// arrives at 1,085 ms; at 1,090 ms A holds 8 blocks (KV 124), has 9 tokens
/// to go and the ratio has fallen 108 steps to 0.5916: B needs 16 + 8 = 24 <
/// 32 − 9 × 0.5916 = 26.68 and prefills (1 block; 1 free). From 1,100 ms
/// both decode: A takes the last block for KV 129 at the 5th step; at the
/// 7th (1,160 ms) B needs its second block and none is free, so B (7
/// generated against A's 115) is retracted. That leaves 16 tokens < 20
/// steps of A, and A still runs: done at 1,190 ms; B recomputes its 17
/// tokens then and ends at 1,200 ms.
#[test]
fn sglang_never_retracts_the_last_running_request() {
    let reqs = vec![req(0, 0, 16, 118), req(1, 1085 * MS, 10, 8)];
    let r = run(&sglang(10, &["workload.max_tokens=1"]), 10 * MS, reqs);
    assert_eq!((r.rec(1).scheduled, r.rec(1).preemptions), (1090 * MS, 1));
    assert_eq!((r.rec(0).finish, r.rec(0).preemptions), (1190 * MS, 0));
    assert_eq!(r.rec(1).finish, 1200 * MS);
}
