//! Worked examples of the analytical model: tiny models on a round device
//! (10^12 B/s, 10^15 BF16 FLOP/s) with [`round_calibration`], each operator
//! of a breakdown computed by hand in the test's doc, so that a changed
//! term in `breakdown` changes a figure the test states.

use super::*;

/// A calibration with round numbers for worked examples: GEMMs at half of
/// peak padded by 64 rows, memory at full bandwidth, no kernel floor.
fn round_calibration() -> Calibration {
    Calibration {
        gemm_efficiency: 0.5,
        gemm_half_tokens: 64.0,
        memory_efficiency: 1.0,
        min_kernel_time: 0.0,
        ..Calibration::default()
    }
}

/// 10^12 B/s of memory, 10^15 BF16 FLOP/s.
fn round_device() -> DeviceSpec {
    device("round", 1e12, 1e15, 2e15, 300e9)
}

/// One layer of a Llama-2-7B-like model: hidden 4,096, 32 query and 32 KV
/// heads of 128.
fn one_layer() -> ModelSpec {
    model("one-layer", 1, 4096, 32, 32, 11008, 32000)
}

/// The QKV GEMM of one layer, worked by hand: hidden 4,096, 32 query and
/// 32 KV heads of 128, so W = 4,096 × (32 + 2·32)·128 = 50,331,648 BF16
/// weights, on a device of 10^15 FLOP/s and 10^12 B/s.
/// - A 4,096-token prefill is compute-bound: 2W × (4,096 + 64 padding rows)
///   / (10^15 × 0.5) = 837.53 µs (its bytes, 2W + 4,096 rows × (4,096 +
///   12,288) × 2, take 234.9 µs).
/// - A 64-sequence decode is memory-bound: 2W + 64 rows × 32,768 bytes =
///   102,760,448 bytes, 102.76 µs (compute: 2W × 128 / 5·10^14 = 25.8 µs).
///
/// Its rotary embedding reads and writes Q and K (2 × 64 heads × 128 × 2
/// bytes a token) and its KV write reads K, V and stores them (2 × 32 × 128
/// × (2 + 2)): 32,768 + 32,768 bytes a token, 4.19 µs for the 64.
#[test]
fn a_weight_gemm_is_its_padded_flops_or_its_weight_and_activation_bytes() {
    let (m, d) = (one_layer(), round_device());
    let a = build_with(&m, &d, Dtype::Bf16, 1, 1, round_calibration());
    let w = 4096.0 * 12288.0;
    let prefill = a.breakdown(&prefill(4096)).qkv_proj;
    assert!(close(prefill, 2.0 * w * 4160.0 / 5e14, 1e-12), "{prefill}");
    let step = a.breakdown(&decode(64, 100));
    let qkv = step.qkv_proj;
    assert!(close(qkv, (2.0 * w + 64.0 * 32768.0) / 1e12, 1e-12), "{qkv}");
    let rope_kv = step.rope_kv_write;
    assert!(close(rope_kv, 64.0 * 65536.0 / 1e12, 1e-12), "{rope_kv}");
}

/// Prefill attention reads the cached and new keys and values and writes
/// its output: a 16-token chunk after 10,000 cached tokens (32 KV heads of
/// 128 in BF16: 16,384 bytes a token for K and V, as many for Q and O per
/// new token) moves (10,016 + 16) × 16,384 bytes, 164.36 µs at 10^12 B/s,
/// far above its 2.6 µs of FLOPs. A batch with no prefill has none, even
/// where every kernel has a floor (and one with no decode no decode attention).
#[test]
fn prefill_attention_after_a_long_prefix_is_its_bytes() {
    let (m, d) = (one_layer(), round_device());
    let with = |cal: Calibration| build_with(&m, &d, Dtype::Bf16, 1, 1, cal);
    let mut chunk = BatchShape::default();
    chunk.add_prefill_chunk(10_000, 16);
    let attn = with(round_calibration()).breakdown(&chunk).prefill_attention;
    assert!(close(attn, 10_032.0 * 16384.0 / 1e12, 1e-12), "{attn}");
    let floored = Calibration {
        min_kernel_time: 5e-6,
        ..round_calibration()
    };
    assert_eq!(with(floored).breakdown(&decode(8, 100)).prefill_attention, 0.0);
    assert_eq!(with(floored).breakdown(&prefill(16)).decode_attention, 0.0);
}

/// An eager prefill cannot end before the host has launched every layer's
/// kernels: 80 layers × 0.1 ms = 8 ms with BF16 weights, and with FP8 the
/// activation-quantisation kernels add 0.05 ms a layer: 12 ms.
#[test]
fn the_eager_launch_floor_counts_every_layer_and_the_fp8_kernels() {
    let cal = Calibration {
        eager_launch_per_layer: 1e-4,
        quantized_launch_per_layer: 5e-5,
        ..Calibration::default()
    };
    let floor = |w: Dtype| build_with(&llama2_70b(), &h100(), w, 4, 1, cal).eager_launch_floor();
    assert!(close(floor(Dtype::Bf16), 8e-3, 1e-12), "{}", floor(Dtype::Bf16));
    assert!(close(floor(Dtype::Fp8), 12e-3, 1e-12), "{}", floor(Dtype::Fp8));
}

/// A two-layer model small enough to work by hand: hidden 1,024, 8 query
/// and 8 KV heads of 128, a gated MLP of 2,048, a vocabulary of 1,000.
fn small(experts: u32, top_k: u32) -> ModelSpec {
    ModelSpec {
        num_experts: experts,
        experts_per_token: top_k,
        ..model("small", 2, 1024, 8, 8, 2048, 1000)
    }
}

/// [`round_calibration`] with the host and fixed costs a breakdown adds:
/// decode attention at half the bandwidth and a quarter of peak, 1 µs a
/// decode layer (5 µs eager, 2 µs more with quantised weights), 1 ms + 10
/// µs a sequence of host time, 1 µs a sequence of sampling.
fn host_calibration() -> Calibration {
    Calibration {
        decode_attention_memory_efficiency: 0.5,
        decode_attention_compute_efficiency: 0.25,
        layer_overhead: 1e-6,
        eager_layer_overhead: 5e-6,
        quantized_layer_overhead: 2e-6,
        cpu_overhead_base: 1e-3,
        cpu_overhead_per_seq: 1e-5,
        sampling_per_seq: 1e-6,
        ..round_calibration()
    }
}

fn assert_us(what: &str, actual: f64, expected_us: f64) {
    assert!(
        (actual * 1e6 - expected_us).abs() <= 1e-9 * expected_us.abs().max(1.0),
        "{what}: {} µs, expected {expected_us} µs",
        actual * 1e6
    );
}

/// A decode step of 4 sequences with 1,000 tokens of context each, on
/// [`small`] (dense), every operator by hand (bytes at 10^12 B/s: 1 µs per
/// 10^6 bytes; every GEMM here is memory-bound, its padded FLOPs far below).
/// One layer:
/// - QKV: 1,024 × 3,072 weights × 2 B + 4 rows × (1,024 + 3,072) × 2 B =
///   6,324,224 B: 6.324224 µs; 2 × 3,145,728 × 4 = 25,165,824 FLOPs.
/// - rotary + KV write: 4 × (8,192 + 8,192) B = 0.065536 µs.
/// - decode attention: 4,000 KV tokens × 4,096 B + 4 rows of Q and O ×
///   4,096 B = 16,400,384 B at half the bandwidth: 32.800768 µs;
///   4,000 × 4 × 128 × 8 = 16,384,000 FLOPs (0.07 µs at a quarter of peak).
/// - O: 2,097,152 + 4 × 4,096 B = 2.113536 µs; 8,388,608 FLOPs.
/// - MLP: gate-up 8,388,608 + 4 × 10,240 B, down 4,194,304 + 4 × 6,144 B,
///   activation 4 × 3 × 2,048 × 2 B: 8.429568 + 4.21888 + 0.049152 =
///   12.6976 µs; 33,554,432 + 16,777,216 FLOPs.
/// - two norms and two residual adds of 4 × 4,096 B: 4 × 0.016384 µs.
/// - 1 µs fixed (a decode layer).
///
/// Layer: 55.0672 µs. Iteration: embedding 0.016384 µs, final norm
/// 0.016384, LM head 2,048,000 + 4 × 4,048 B = 2.064192 µs, sampling 4 µs;
/// GPU 2 × 55.0672 + 6.09696 = 116.23136 µs; host 1 ms + 4 × 10 µs.
/// FLOPs 2 × 100,270,080 + 8,192,000; bytes 2 × 37,666,816 + 16,384 +
/// 16,384 + 2,064,192.
#[test]
fn a_decode_step_is_the_sum_of_its_operators_worked_by_hand() {
    let a = build_with(
        &small(1, 1),
        &round_device(),
        Dtype::Bf16,
        1,
        1,
        host_calibration(),
    );
    let b = a.breakdown(&decode(4, 1000));
    assert_us("qkv", b.qkv_proj, 2.0 * 6.324224);
    assert_us("rope + kv write", b.rope_kv_write, 2.0 * 0.065536);
    assert_us("prefill attention", b.prefill_attention, 0.0);
    assert_us("decode attention", b.decode_attention, 2.0 * 32.800768);
    assert_us("o", b.o_proj, 2.0 * 2.113536);
    assert_us("mlp", b.mlp, 2.0 * 12.6976);
    assert_us("norms", b.norms, 2.0 * 2.0 * 0.016384 + 0.016384);
    assert_us("residual adds", b.residual_adds, 2.0 * 2.0 * 0.016384);
    assert_us("embedding", b.embedding, 0.016384);
    assert_us("lm head", b.lm_head, 2.064192);
    assert_us("sampling", b.sampling, 4.0);
    assert_us("tp comm", b.tp_comm, 0.0);
    assert_us("pp comm", b.pp_comm, 0.0);
    assert_us("per layer", b.per_layer, 55.0672);
    assert_us("first stage extra", b.first_stage_extra, 0.016384);
    assert_us("last stage extra", b.last_stage_extra, 6.080576);
    assert_us("critical stage", b.critical_stage, 116.23136);
    assert_us("cpu", b.cpu_overhead, 1040.0);
    assert_us("total", b.total, 1156.23136);
    assert_eq!(b.active_experts, 1.0);
    assert_eq!(b.flops, 2.0 * 100_270_080.0 + 8_192_000.0);
    assert_eq!(
        b.hbm_bytes,
        2.0 * 37_666_816.0 + 16_384.0 + 16_384.0 + 2_064_192.0
    );
}

/// The fixed per-layer cost is the eager one (5 µs) in an iteration with
/// prefill tokens and the graph one (1 µs) otherwise; quantised weights add
/// 2 µs to either. Everything else in the layer is the same with and
/// without the fixed costs, so the differences are exact.
#[test]
fn a_layers_fixed_cost_depends_on_prefill_and_on_quantised_weights() {
    let m = small(1, 1);
    let d = round_device();
    let per_layer = |w: Dtype, cal: Calibration, batch: &BatchShape| {
        build_with(&m, &d, w, 1, 1, cal).breakdown(batch).per_layer
    };
    let none = Calibration {
        layer_overhead: 0.0,
        eager_layer_overhead: 0.0,
        quantized_layer_overhead: 0.0,
        ..host_calibration()
    };
    for w in [Dtype::Bf16, Dtype::Fp8] {
        let extra = if w == Dtype::Fp8 { 2.0 } else { 0.0 };
        for (batch, fixed) in [(decode(4, 1000), 1.0), (prefill(16), 5.0)] {
            let with = per_layer(w, host_calibration(), &batch);
            assert_us("fixed cost", with - per_layer(w, none, &batch), fixed + extra);
        }
    }
}

/// A MoE layer at one decode token with top-2 of 4 experts reads 2 copies of
/// the expert weights and adds the router: a 1,024 × 4 GEMM (8,192 + 2,056
/// B: 10.248 ns) and two top-k/sorting kernels at the 1 ns floor. MLP:
/// gate-up 2 × 8,388,608 + 2 × 10,240 B, down 2 × 4,194,304 + 2 × 6,144,
/// activation 2 × 12,288: 16.797696 + 8.400896 + 0.024576 + 0.010248 +
/// 0.002 = 25.235416 µs a layer; FLOPs 2 rows through each expert GEMM and 1
/// through the router (25,174,016); bytes 25,233,416. The rest of the layer
/// at 1 token and 100 of context: QKV 6,299,648 B and 6,291,456 FLOPs,
/// rotary + KV write 16,384 B, decode attention 100 × 4,096 + 4,096 B and
/// 409,600 FLOPs, O 2,101,248 B and 2,097,152 FLOPs, norms and residuals
/// 16,384 B; the iteration adds 4,096 + 4,096 + 2,052,048 B and the LM
/// head's 2,048,000 FLOPs. (How many experts a batch reads is
/// `moe_reads_top_k_experts_at_batch_1_and_all_at_batch_64`'s.)
#[test]
fn a_moe_layer_reads_its_routed_experts_and_adds_the_router() {
    let cal = Calibration {
        min_kernel_time: 1e-9,
        ..host_calibration()
    };
    let a = build_with(&small(4, 2), &round_device(), Dtype::Bf16, 1, 1, cal);
    let b = a.breakdown(&decode(1, 100));
    assert_eq!(b.active_experts, 2.0);
    assert_us("mlp", b.mlp, 2.0 * 25.235416);
    let layer_flops = 6_291_456.0 + 409_600.0 + 2_097_152.0 + 25_174_016.0;
    assert_eq!(b.flops, 2.0 * layer_flops + 2_048_000.0);
    let layer_bytes = 6_299_648.0 + 16_384.0 + 413_696.0 + 2_101_248.0 + 25_233_416.0 + 16_384.0;
    assert_eq!(b.hbm_bytes, 2.0 * layer_bytes + 4_096.0 + 4_096.0 + 2_052_048.0);
}

/// At TP 2 the last stage gathers the vocabulary-split logits to one rank
/// before sampling, and every layer's two all-reduces and the embedding's
/// one cross the 300 GB/s link (efficiency 1, 2 µs a hop, no extra
/// collective latency). The decode step of 4 sequences on [`small`]:
/// - the logits gather: half of 4 rows × 1,000 logits × 2 B = 4,000 B at
///   300 GB/s plus one hop: 2.0133… µs;
/// - the last stage's extra: final norm 0.016384 µs, the LM head's half
///   (512,000 weights × 2 B + 4 rows × (1,024 + 500) × 2 B = 1,036,192 B)
///   1.036192 µs, the gather, sampling 4 µs: 7.0658853… µs;
/// - an all-reduce of 4 × 1,024 × 2 B: 2 × ½ × 8,192 B / 300 GB/s + one
///   hop = 2.0273067 µs; five of them (two per layer, the embedding's) and
///   the gather: 12.1498667 µs of TP communication.
#[test]
fn at_tp_2_the_last_stage_gathers_the_logits_before_sampling() {
    let cal = Calibration {
        intra_node_link_efficiency: 1.0,
        collective_latency: 0.0,
        ..host_calibration()
    };
    let a = build_with(&small(1, 1), &round_device(), Dtype::Bf16, 2, 1, cal);
    let b = a.breakdown(&decode(4, 1000));
    let gather = 4000.0 / 300e9 * 1e6 + 2.0;
    let all_reduce = 8192.0 / 300e9 * 1e6 + 2.0;
    assert_us("lm head", b.lm_head, 1.036192);
    assert_us(
        "last stage extra",
        b.last_stage_extra,
        0.016384 + 1.036192 + gather + 4.0,
    );
    assert_us("tp comm", b.tp_comm, 5.0 * all_reduce + gather);
}
