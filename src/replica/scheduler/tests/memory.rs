//! Preemption by recompute and by swap, on hand-sized pools (vLLM
//! scheduler, 16-token blocks, no watermark, 10 ms per iteration).
//!
//! The scenario: A and B, prompts of 16 tokens (1 block each), outputs of 17
//! (2 blocks each at the end), both at 0. Iteration 1 prefills both (each
//! emits its first token). Iteration 2's decode step writes each one's 17th
//! KV entry: both need a new block. With a pool too small for both, B (the
//! newest) is preempted; A decodes its 16 steps (iterations 2–17); B then
//! comes back.

use super::{MS, plan, req, run, run_hosted};
use crate::replica::swap::SwapModel;
use crate::scenario::validate::Plan;

/// Recompute re-prefills prompt + generated tokens (vLLM
/// `_preempt_by_recompute`: the sequence's whole token list is recomputed).
/// Pool 3: at iteration 2 B is preempted having generated 1 token; B then
/// needs ⌈17/16⌉ = 2 blocks with 1 free, so it waits until A finishes (170
/// ms). Iteration 18 prefills B's 16 + 1 = 17 tokens (emitting its 2nd
/// token), then 15 decode steps: 33 iterations, B done at 330 ms. B's
/// gap across the preemption runs from its first token (10 ms) to the
/// re-prefill's (180 ms): the 32 gaps are A's 16 and B's 15 of 10 ms and
/// that one of 170 ms (mean 480 / 32 = 15 ms).
#[test]
fn recompute_prefills_the_prompt_and_the_generated_tokens() {
    let p = plan(&["scheduler.kind=vllm"], 3);
    let r = run(&p, 10 * MS, vec![req(0, 0, 16, 17), req(1, 0, 16, 17)]);
    assert_eq!(r.finishes(), [(0, 170 * MS), (1, 330 * MS)]);
    assert_eq!(r.shapes.len(), 33);
    let re = r.shapes[17];
    assert_eq!((re.prefill_seqs, re.prefill_tokens, re.decode_seqs), (1, 17, 0));
    assert_eq!(r.rec(1).preemptions, 1);
    assert_eq!(r.report.summary.memory.preemptions_recompute, 1);
    assert_eq!(r.report.summary.total_output_tokens, 34);
    let itl = &r.report.summary.itl;
    assert_eq!((itl.count, itl.max), (32, 170.0));
    assert!((itl.mean - 15.0).abs() < 1e-9, "{}", itl.mean);
}

/// A swap model moving one block in 1/64 s = 15.625 ms (exact in binary),
/// no per-call cost.
fn swap_plan(overlap: bool) -> Plan {
    with_swap_model(
        plan(&["scheduler.kind=vllm", "scheduler.preemption=swap"], 2),
        overlap,
    )
}

fn with_swap_model(mut p: Plan, overlap: bool) -> Plan {
    p.replica_options.swap = Some(SwapModel {
        block_bytes: 1.0,
        host_bandwidth: 64.0,
        layers: 1,
        call_overhead: 0.0,
        group_blocks: 1,
        overlap,
        reuse: false,
        host_blocks: 100,
    });
    p
}

const SWAP_NS: u64 = 15_625_000;

/// Swap out and swap in both cost time, added to the iteration that causes
/// them (vLLM issues the copies before the step). Pool 2: iteration 2
/// swaps B out (1 block: 10 + 15.625 ms, ends 35.625); A's other 15 steps
/// end at 185.625 ms; B cannot come back before (0 blocks free).
/// Iteration 18 swaps B in (1 block) and decodes: 25.625 ms, ends 211.25;
/// B's 15 remaining steps end at 361.25 ms.
#[test]
fn swap_out_and_swap_in_both_take_time() {
    let r = run(
        &swap_plan(false),
        10 * MS,
        vec![req(0, 0, 16, 17), req(1, 0, 16, 17)],
    );
    let (a, b) = (170 * MS + SWAP_NS, 330 * MS + 2 * SWAP_NS);
    assert_eq!(r.finishes(), [(0, a), (1, b)]);
    let m = &r.report.summary.memory;
    assert_eq!((m.preemptions_swap, m.preemptions_recompute), (1, 0));
    // B resumed decoding: no re-prefill (only iteration 1 has prefills).
    assert_eq!(r.shapes.iter().filter(|s| s.prefill_seqs > 0).count(), 1);
    assert_eq!(r.shapes.len(), 33);
}

/// FastSwitch (Shen et al. 2024) swaps on a separate stream, overlapped
/// with compute: an iteration with a swap takes max(compute, swap) =
/// max(10, 15.625) ms. The same scenario: A done at 175.625 ms (iteration 2
/// takes 15.625), B at 175.625 + 15.625 + 15·10 = 341.25 ms.
#[test]
fn fastswitch_overlaps_swap_with_compute() {
    let r = run(
        &swap_plan(true),
        10 * MS,
        vec![req(0, 0, 16, 17), req(1, 0, 16, 17)],
    );
    let (a, b) = (160 * MS + SWAP_NS, 310 * MS + 2 * SWAP_NS);
    assert_eq!(r.finishes(), [(0, a), (1, b)]);
}

/// FastSwitch hides swap I/O under the iteration's GPU work only, not under
/// its host part (scheduling runs before the kernels and the copies are
/// issued). Iterations of 10 ms with 4 ms of host work: a swap iteration
/// takes 4 + max(6, 15.625) = 19.625 ms. A done at 160 + 19.625 =
/// 179.625 ms; B swaps back in (another 19.625 ms iteration) and finishes
/// at 310 + 2 · 19.625 = 349.25 ms.
#[test]
fn fastswitch_overlaps_swap_with_gpu_work_not_host_work() {
    let r = run_hosted(
        &swap_plan(true),
        10 * MS,
        4 * MS,
        vec![req(0, 0, 16, 17), req(1, 0, 16, 17)],
    );
    assert_eq!(r.finishes(), [(0, 179_625_000), (1, 349_250_000)]);
}

/// No new request is admitted while one is swapped out (vLLM v0 and its
/// chunked-prefill scheduler serve swapped requests before waiting ones),
/// even when the newcomer would fit. Sarathi, pool 5 with a 1-block
/// watermark. A and B (32-token prompts, 17 out: 2 blocks each) at 0, C
/// (16, 1) at 15 ms. Iteration 2 (from 10 ms) needs a new block for each
/// decode with 1 free: B is swapped out (2 blocks, 31.25 ms: the iteration
/// ends at 51.25 ms) and A takes one (2 free). B's swap-in needs 2 + 1
/// (watermark) + 1 (spare) > 2, so B stays out while A decodes its last 15 tokens
/// (201.25 ms); C, which would fit (1 + 1 ≤ 2), waits with it. At 201.25 ms
/// B comes back (2 blocks, then 1 for its decode: 2 free) and C is
/// admitted beside it (1 + 1 ≤ 2).
#[test]
fn nothing_is_admitted_while_a_request_is_swapped_out() {
    let sets = [
        "scheduler.kind=sarathi",
        "scheduler.max_num_batched_tokens=512",
        "scheduler.preemption=swap",
        "scheduler.watermark=0.2",
    ];
    let p = with_swap_model(plan(&sets, 5), false);
    let reqs = vec![req(0, 0, 32, 17), req(1, 0, 32, 17), req(2, 15 * MS, 16, 1)];
    let r = run(&p, 10 * MS, reqs);
    let a_done = 201_250_000;
    assert_eq!(r.rec(0).finish, a_done);
    assert_eq!(r.rec(1).preemptions, 1);
    assert_eq!(r.rec(2).scheduled, a_done);
}

/// FastSwitch's KV reuse: a request swapped out a second time moves only
/// the blocks written since its host copy was made. vLLM, pool 5 with a
/// 1-block watermark, a host of 2 blocks. A (16, 40), C (16, 2) and B
/// (16, 40) at 0, in that order, 1 block each. Iteration 2 needs a block
/// for each of the three with 2 free: B (newest) is swapped out (1 block:
/// its 16 prompt entries; host 1 of 2). C finishes in that iteration and
/// frees 2 (3 free), so B swaps back in (1 block, + 1 for the watermark) at
/// iteration 3, one step behind A, and takes a block for its 17th entry
/// (1 free). A takes the last one for its 33rd entry; a step later B needs
/// one with none free and is swapped out again holding 2 blocks (32
/// entries), of which the host already has the first: 1 block moves and the
/// host's 2 are full. B comes back (2 blocks) only when A is done. Moved out
/// 1 + 1, in 1 + 2 — 2/3. Without reuse the host copy is dropped at swap-in
/// and the second swap-out moves both blocks: 3/3.
#[test]
fn fastswitch_reuse_moves_only_the_blocks_written_since_the_host_copy() {
    let reqs = vec![req(0, 0, 16, 40), req(1, 0, 16, 2), req(2, 0, 16, 40)];
    let swaps = |reuse: bool| {
        let mut p = plan(
            &[
                "scheduler.kind=vllm",
                "scheduler.preemption=swap",
                "scheduler.watermark=0.2",
            ],
            5,
        );
        p = with_swap_model(p, false);
        let swap = p.replica_options.swap.as_mut().expect("swap model");
        swap.reuse = reuse;
        swap.host_blocks = 2;
        let r = run(&p, 10 * MS, reqs.clone());
        let m = &r.report.summary.memory;
        assert_eq!(
            (m.preemptions_swap, m.preemptions_recompute),
            (2, 0),
            "reuse {reuse}"
        );
        assert_eq!(r.rec(2).preemptions, 2, "reuse {reuse}");
        m.swapped_out_bytes / m.swapped_in_bytes
    };
    let (reused, copied) = (swaps(true), swaps(false));
    assert!((reused - 2.0 / 3.0).abs() < 1e-12, "{reused}");
    assert!((copied - 1.0).abs() < 1e-12, "{copied}");
}

/// A request swapped back in needs one free block beyond its KV (vLLM 0.6's
/// `can_swap_in`), so it is not swapped in only to be swapped out again.
/// The previous test's requests with no watermark: at iteration 3, B (1
/// block) comes back with 3 free (1 + 1 spare ≤ 3). At its 33rd entry it is
/// swapped out holding 2 blocks, freeing 2 — and 2 + 1 > 2, so it waits for
/// A to finish: two swaps in all. Checking only its own 2 blocks, B would
/// come back at once, need a third block, be the newest again, and go back
/// out: a swap pair every step until A is done.
#[test]
fn a_swapped_request_comes_back_only_with_a_block_to_spare() {
    let reqs = vec![req(0, 0, 16, 40), req(1, 0, 16, 2), req(2, 0, 16, 40)];
    let mut p = with_swap_model(
        plan(&["scheduler.kind=vllm", "scheduler.preemption=swap"], 5),
        false,
    );
    p.replica_options.swap.as_mut().expect("swap model").host_blocks = 2;
    let r = run(&p, 10 * MS, reqs);
    let m = &r.report.summary.memory;
    assert_eq!((m.preemptions_swap, m.preemptions_recompute), (2, 0));
    assert_eq!(r.rec(2).preemptions, 2);
}

/// A swap-in waits while this step's decodes need the room (vLLM 0.6 swaps
/// in only when scheduling the running decodes preempted nothing). Pool 6,
/// no watermark; A and D (31, 18: 2 blocks, a third at their 33rd entry), C
/// (16, 2) and B (16, 40) at 0, in that order: iteration 1 fills the pool.
/// Iteration 2: C and B need a block each, none free: B (newest) is swapped
/// out (1 block, 15.625 ms) and C takes the freed one; C finishes (2 free).
/// Iteration 3: A and D write their 33rd entries (2 blocks). B's 1 block
/// and 1 spare would fit the 2 free, but not beside the decodes' 2, so B
/// stays out; A and D finish at 35.625 + 16·10 = 195.625 ms, B comes back
/// (15.625 ms) and decodes its 39 tokens alone: 601.25 ms. Swapped in first,
/// B would need a block too and be swapped out again at once, costing A
/// and D two more swaps.
#[test]
fn a_swap_in_waits_for_the_steps_decodes() {
    let reqs = vec![
        req(0, 0, 31, 18),
        req(1, 0, 31, 18),
        req(2, 0, 16, 2),
        req(3, 0, 16, 40),
    ];
    let p = with_swap_model(
        plan(&["scheduler.kind=vllm", "scheduler.preemption=swap"], 6),
        false,
    );
    let r = run(&p, 10 * MS, reqs);
    let m = &r.report.summary.memory;
    assert_eq!(m.preemptions_swap, 1);
    assert_eq!(r.rec(3).preemptions, 1);
    let (ad, b) = (195_625_000, 601_250_000);
    assert_eq!(r.finishes(), [(0, ad), (1, ad), (2, 20 * MS + SWAP_NS), (3, b)]);
}
