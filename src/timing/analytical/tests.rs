//! Tests of the analytical time model. Specs are built by hand so the tests do
//! not depend on the (evolving) built-in catalog.

use super::*;
use crate::timing::collectives::ring_all_reduce;
use proptest::prelude::*;

fn model(name: &str, layers: u32, hidden: u32, heads: u32, kv: u32, inter: u32, vocab: u32) -> ModelSpec {
    ModelSpec {
        name: name.into(),
        aliases: vec![],
        num_layers: layers,
        hidden_size: hidden,
        num_heads: heads,
        num_kv_heads: kv,
        head_dim: 128,
        intermediate_size: inter,
        vocab_size: vocab,
        num_experts: 1,
        experts_per_token: 1,
        gated_mlp: true,
        tied_embeddings: false,
        dtype: Dtype::Bf16,
        max_context: 4096,
    }
}

fn llama2_7b() -> ModelSpec {
    model("Llama-2-7B", 32, 4096, 32, 32, 11008, 32000)
}

fn llama2_70b() -> ModelSpec {
    model("Llama-2-70B", 80, 8192, 64, 8, 28672, 32000)
}

fn llama3_8b() -> ModelSpec {
    model("Llama-3-8B", 32, 4096, 32, 8, 14336, 128256)
}

fn mixtral() -> ModelSpec {
    ModelSpec {
        num_experts: 8,
        experts_per_token: 2,
        ..model("Mixtral-8x7B", 32, 4096, 32, 8, 14336, 32000)
    }
}

fn device(name: &str, bw: f64, bf16: f64, fp8: f64, intra: f64) -> DeviceSpec {
    DeviceSpec {
        name: name.into(),
        aliases: vec![],
        memory_bytes: 80e9,
        memory_bandwidth: bw,
        flops_bf16: bf16,
        flops_fp8: fp8,
        intra_node_bandwidth: intra,
        intra_node_pair_bandwidth: 0.0,
        intra_node_latency: 2e-6,
        inter_node_bandwidth: 25e9,
        inter_node_latency: 5e-6,
        host_link_bandwidth: 32e9,
        devices_per_node: 8,
        power_watts: 400.0,
        price_per_hour: 0.0,
        calibration: None,
        engines: Default::default(),
        calibration_from: None,
        profile_names: Default::default(),
    }
}

fn a100() -> DeviceSpec {
    device("A100-80GB", 2.039e12, 312e12, 0.0, 300e9)
}

fn h100() -> DeviceSpec {
    device("H100-SXM", 3.35e12, 989e12, 1979e12, 450e9)
}

fn build(m: &ModelSpec, d: &DeviceSpec, w: Dtype, tp: u32, pp: u32) -> AnalyticalModel {
    build_with(m, d, w, tp, pp, Calibration::default())
}

/// [`build`] with a calibration of the test's own (BF16 KV).
fn build_with(
    m: &ModelSpec,
    d: &DeviceSpec,
    w: Dtype,
    tp: u32,
    pp: u32,
    cal: Calibration,
) -> AnalyticalModel {
    AnalyticalModel::new(m, d, w, Dtype::Bf16, ParallelConfig::for_device(tp, pp, d), cal).unwrap()
}

fn decode(seqs: u32, ctx: u64) -> BatchShape {
    BatchShape {
        decode_seqs: seqs,
        decode_kv_tokens: seqs as u64 * ctx,
        ..BatchShape::default()
    }
}

fn prefill(chunk: u64) -> BatchShape {
    let mut b = BatchShape::default();
    b.add_prefill_chunk(0, chunk);
    b
}

/// Time of the weight GEMMs (QKV, O, MLP, LM head).
fn gemm(b: &Breakdown) -> f64 {
    b.qkv_proj + b.o_proj + b.mlp + b.lm_head
}

/// An iteration's cost: its duration, its host part, and the slowest
/// stage's time with the host part (what a PP virtual engine's turn at the
/// busiest stage takes): 3 + 2 = 5 ms of a 10 ms iteration.
#[test]
fn an_iterations_cost_carries_the_slowest_stage_with_its_host_part() {
    let b = Breakdown {
        total: 0.010,
        cpu_overhead: 0.002,
        critical_stage: 0.003,
        flops: 7.0,
        hbm_bytes: 9.0,
        ..Default::default()
    };
    let c = b.cost();
    assert_eq!((c.duration, c.host, c.stage), (10_000_000, 2_000_000, 5_000_000));
    assert_eq!((c.flops, c.hbm_bytes), (7.0, 9.0));
    // The stage never exceeds the iteration, and an empty batch costs nothing.
    let long = Breakdown {
        critical_stage: 0.050,
        ..b
    }
    .cost();
    assert_eq!(long.stage, long.duration);
    assert_eq!(Breakdown::default().cost(), IterationCost::default());
}

fn close(actual: f64, expected: f64, rel: f64) -> bool {
    (actual / expected - 1.0).abs() <= rel
}

/// A fixed calibration for these tests (independent of the fitted defaults):
/// pure rooflines, no fixed per-layer costs.
const CAL: Calibration = Calibration {
    gemm_efficiency: 0.70,
    gemm_half_tokens: 64.0,
    memory_efficiency: 0.80,
    prefill_attention_efficiency: 0.50,
    decode_attention_memory_efficiency: 0.70,
    decode_attention_compute_efficiency: 0.25,
    min_kernel_time: 2e-6,
    intra_node_link_efficiency: 0.80,
    inter_node_link_efficiency: 0.80,
    cpu_overhead_base: 1e-3,
    cpu_overhead_per_seq: 25e-6,
    sampling_per_seq: 2e-6,
    quantized_gemm_efficiency: 0.70,
    layer_overhead: 0.0,
    eager_layer_overhead: 0.0,
    quantized_layer_overhead: 0.0,
    eager_launch_per_layer: 0.0,
    eager_launch_overlap: 1.0,
    quantized_launch_per_layer: 0.0,
    collective_latency: 0.0,
};

#[test]
fn decode_batch1_is_weight_read_plus_overhead() {
    let m = llama2_7b();
    let d = a100();
    let tm = build(&m, &d, Dtype::Bf16, 1, 1);
    let b = tm.breakdown(&decode(1, 128));
    let overhead = CAL.cpu_overhead_base + CAL.cpu_overhead_per_seq + CAL.sampling_per_seq;
    let expected = m.total_params() * 2.0 / (d.memory_bandwidth * CAL.memory_efficiency) + overhead;
    assert!(close(b.total, expected, 0.10), "{} vs {expected}", b.total);
    // Weights dominate: the weight GEMMs are > 90% of the GPU time.
    assert!(gemm(&b) > 0.9 * b.gpu(), "{b:?}");
    // And the HBM traffic is essentially the weights (minus the unread embedding rows).
    let weight_bytes = (m.total_params() - (m.vocab_size * m.hidden_size) as f64) * 2.0;
    assert!(
        close(b.hbm_bytes, weight_bytes, 0.02),
        "{} vs {weight_bytes}",
        b.hbm_bytes
    );
    let cost = tm.iteration(&decode(1, 128));
    assert_eq!(cost.duration, (b.total * 1e9).round() as u64);
}

#[test]
fn large_prefill_is_compute_bound() {
    let m = llama2_70b();
    let d = a100();
    let tp = 4;
    let tm = build(&m, &d, Dtype::Bf16, tp, 1);
    let t = 8192.0;
    let b = tm.breakdown(&prefill(8192));
    // Layer GEMMs (QKV, O, MLP): every active parameter but the embeddings and norms.
    let layer_params =
        m.active_params() - m.embedding_params() - (2 * m.num_layers + 1) as f64 * m.hidden_size as f64;
    let expected = 2.0 * layer_params * t / (tp as f64 * d.flops_bf16 * CAL.gemm_efficiency);
    let layer_gemm = b.qkv_proj + b.o_proj + b.mlp;
    assert!(close(layer_gemm, expected, 0.10), "{layer_gemm} vs {expected}");
    // Compute-bound: far above the time to stream the weights once.
    let weight_read = m.total_params() * 2.0 / tp as f64 / (d.memory_bandwidth * CAL.memory_efficiency);
    assert!(layer_gemm > 20.0 * weight_read);
    // FLOPs: 2·params·T through the layers + 4·pairs·d·heads attention + LM head on one row.
    let attn = 4.0 * (t * (t + 1.0) / 2.0) * 128.0 * 64.0 * 80.0;
    let lm = 2.0 * (m.vocab_size * m.hidden_size) as f64;
    let flops = 2.0 * layer_params * t + attn + lm;
    assert!(close(b.flops, flops, 0.001), "{} vs {flops}", b.flops);
}

#[test]
fn decode_attention_is_linear_in_kv_tokens() {
    let m = llama3_8b();
    let d = h100();
    let tm = build(&m, &d, Dtype::Bf16, 1, 1);
    let att = |ctx| tm.breakdown(&decode(64, ctx)).decode_attention;
    let (a1, a2, a3) = (att(1000), att(2000), att(3000));
    assert!(a2 > a1);
    assert!(close(a3 - a2, a2 - a1, 1e-9), "{a1} {a2} {a3}");
    // Slope: L · 2·n_kv·d·b_kv bytes per KV token at the decode-attention bandwidth.
    let slope =
        32.0 * 2.0 * 8.0 * 128.0 * 2.0 / (d.memory_bandwidth * CAL.decode_attention_memory_efficiency);
    assert!(close((a2 - a1) / 64_000.0, slope, 1e-9));
    // Other operators do not depend on the context length.
    let b1 = tm.breakdown(&decode(64, 1000));
    let b2 = tm.breakdown(&decode(64, 2000));
    assert!(close(b2.total - b1.total, a2 - a1, 1e-9));
}

#[test]
fn prefill_attention_is_quadratic_in_chunk_length() {
    let m = llama3_8b();
    let tm = build(&m, &h100(), Dtype::Bf16, 1, 1);
    let att = |c: u64| tm.breakdown(&prefill(c)).prefill_attention;
    for c in [2048u64, 4096] {
        let cf = c as f64;
        let pair_ratio = (2.0 * cf) * (2.0 * cf + 1.0) / (cf * (cf + 1.0));
        let ratio = att(2 * c) / att(c);
        assert!(close(ratio, pair_ratio, 0.01), "c={c}: {ratio} vs {pair_ratio}");
        assert!(ratio > 3.9);
    }
    // With a cache, pairs grow linearly in the cached length: c·k + c(c+1)/2.
    let mut b = BatchShape::default();
    b.add_prefill_chunk(8192, 512);
    let mut b2 = BatchShape::default();
    b2.add_prefill_chunk(16384, 512);
    let p = |k: f64| 512.0 * k + 512.0 * 513.0 / 2.0;
    let ratio = tm.breakdown(&b2).prefill_attention / tm.breakdown(&b).prefill_attention;
    assert!(close(ratio, p(16384.0) / p(8192.0), 0.01), "{ratio}");
}

#[test]
fn tp2_is_faster_than_tp1_but_not_twice() {
    let m = llama2_7b();
    let d = a100();
    for batch in [decode(1, 512), decode(32, 512), prefill(2048)] {
        let b1 = build(&m, &d, Dtype::Bf16, 1, 1).breakdown(&batch);
        let b2 = build(&m, &d, Dtype::Bf16, 2, 1).breakdown(&batch);
        assert!(b2.total < b1.total, "{b2:?} vs {b1:?}");
        assert!(b2.total > b1.total / 2.0, "{b2:?} vs {b1:?}");
        assert_eq!(b1.tp_comm, 0.0);
        assert!(b2.tp_comm > 0.0);
        // Per-device GEMM work halves (up to the GEMM efficiency curve and kernel floors).
        assert!(gemm(&b2) < 0.55 * gemm(&b1) && gemm(&b2) > 0.45 * gemm(&b1));
        // Totals over devices: the same matmul FLOPs.
        assert!(close(b2.flops, b1.flops, 1e-9));
    }
}

/// Llama-2-70B (80 layers, hidden 8192, vocab 32000), 300 decode tokens,
/// BF16: per iteration 2·80 + 1 = 161 all-reduces of 300·8192·2 =
/// 4,915,200 bytes and one gather of 300·32000·2 = 19.2 MB of logits.
/// Worked by hand (link efficiency 0.8):
/// - TP 4 on A100 NVLink (300 GB/s → 240 GB/s, 2 µs): all-reduce
///   1.5 · 4,915,200 / 240e9 = 30.72 µs + ⌈log2 4⌉ · 2 µs = 34.72 µs;
///   gather 0.75 · 19.2e6 / 240e9 = 60 µs + 2 µs; total 161 · 34.72 + 62 =
///   5,651.92 µs.
/// - TP 16 over the network (25 GB/s → 20 GB/s, 5 µs): all-reduce
///   1.875 · 4,915,200 / 20e9 = 460.8 µs + 4 · 5 µs = 480.8 µs; gather
///   0.9375 · 19.2e6 / 20e9 = 900 µs + 5 µs; total 161 · 480.8 + 905 =
///   78,313.8 µs.
#[test]
fn tp_communication_is_161_all_reduces_and_one_logits_gather() {
    let m = llama2_70b();
    let d = a100();
    for (tp, expected_us) in [(4u32, 5_651.92), (16, 78_313.8)] {
        let b = build(&m, &d, Dtype::Bf16, tp, 1).breakdown(&decode(300, 100));
        assert!(
            close(b.tp_comm, expected_us * 1e-6, 1e-9),
            "tp={tp}: {} µs vs {expected_us} µs",
            b.tp_comm * 1e6
        );
    }
    // The collective on its own: 8 devices, 64 MB at 100 GB/s with 3 µs
    // hops: 1.75 · 64e6 / 100e9 = 1,120 µs + 3 · 3 µs = 1,129 µs.
    let link = Link {
        bandwidth: 100e9,
        latency: 3e-6,
    };
    assert!(close(ring_all_reduce(64e6, 8, link), 1_129e-6, 1e-12));
}

#[test]
fn fp8_weights_halve_the_weight_read() {
    let m = llama3_8b();
    let d = h100();
    let batch = decode(1, 1000);
    let bf = build(&m, &d, Dtype::Bf16, 1, 1).breakdown(&batch);
    let f8 = build(&m, &d, Dtype::Fp8, 1, 1).breakdown(&batch);
    let layer = |b: &Breakdown| b.qkv_proj + b.o_proj + b.mlp;
    let ratio = layer(&bf) / layer(&f8);
    assert!(ratio > 1.93 && ratio < 2.0, "{ratio}");
    // The LM head stays 16-bit, so the whole iteration speeds up a bit less.
    assert_eq!(bf.lm_head, f8.lm_head);
    let gpu_ratio = bf.gpu() / f8.gpu();
    assert!(gpu_ratio > 1.6 && gpu_ratio < 2.0, "{gpu_ratio}");
    // A large prefill runs at the FP8 tensor rate: 2× faster attention
    // projections (pure GEMMs; the MLP also has its 16-bit activation kernel).
    let proj = |b: &Breakdown| b.qkv_proj + b.o_proj;
    let bf = build(&m, &d, Dtype::Bf16, 1, 1).breakdown(&prefill(8192));
    let f8 = build(&m, &d, Dtype::Fp8, 1, 1).breakdown(&prefill(8192));
    assert!(close(proj(&bf) / proj(&f8), 1979.0 / 989.0, 1e-9));
    assert!(bf.mlp / f8.mlp > 1.8);
    // Without FP8 tensor cores (A100), FP8 weights only save bytes.
    let bf = build(&m, &a100(), Dtype::Bf16, 1, 1).breakdown(&prefill(8192));
    let f8 = build(&m, &a100(), Dtype::Fp8, 1, 1).breakdown(&prefill(8192));
    assert!(close(layer(&bf) / layer(&f8), 1.0, 1e-9));
}

#[test]
fn moe_reads_top_k_experts_at_batch_1_and_all_at_batch_64() {
    let m = mixtral();
    let d = h100();
    let tm = build(&m, &d, Dtype::Bf16, 1, 1);
    let expert_bytes = 3.0 * 4096.0 * 14336.0 * 2.0;
    let mem = d.memory_bandwidth * CAL.memory_efficiency;

    let b1 = tm.breakdown(&decode(1, 500));
    assert_eq!(b1.active_experts, 2.0);
    let expected = 2.0 * expert_bytes / mem;
    assert!(
        close(b1.mlp / 32.0, expected, 0.05),
        "{} vs {expected}",
        b1.mlp / 32.0
    );

    let b64 = tm.breakdown(&decode(64, 500));
    assert_eq!(b64.active_experts, 8.0);
    let expected = 8.0 * expert_bytes / mem;
    assert!(
        close(b64.mlp / 32.0, expected, 0.05),
        "{} vs {expected}",
        b64.mlp / 32.0
    );

    // In between, min(E, T·k) experts.
    assert_eq!(tm.breakdown(&decode(3, 500)).active_experts, 6.0);
    // FLOPs count only the routed experts: T·k rows.
    let dense_like = 2.0 * 64.0 * 2.0 * (3.0 * 4096.0 * 14336.0) * 32.0;
    assert!(b64.flops > dense_like && b64.flops < 1.5 * dense_like);
}

#[test]
fn infeasible_parallelism_is_reported_with_numbers() {
    let d = a100();
    let err = |m: &ModelSpec, tp, pp| {
        AnalyticalModel::new(
            m,
            &d,
            Dtype::Bf16,
            Dtype::Bf16,
            ParallelConfig::for_device(tp, pp, &d),
            Calibration::default(),
        )
        .unwrap_err()
    };
    let e = err(&llama2_7b(), 3, 1);
    assert!(matches!(e, Error::Infeasible(_)));
    let msg = e.to_string();
    assert!(
        msg.contains("tp=3") && msg.contains("32 attention heads"),
        "{msg}"
    );

    let odd = model("odd", 32, 6144, 48, 12, 16384, 32000);
    let msg = err(&odd, 8, 1).to_string();
    assert!(msg.contains("tp=8") && msg.contains("12 KV heads"), "{msg}");

    let msg = err(&llama2_7b(), 1, 33).to_string();
    assert!(msg.contains("pp=33") && msg.contains("32 layers"), "{msg}");

    let msg = err(&model("x", 32, 4096, 32, 32, 11000, 32000), 16, 1).to_string();
    assert!(msg.contains("11000"), "{msg}");

    // tp > kv heads is fine: vLLM replicates KV heads.
    assert!(
        AnalyticalModel::new(
            &llama2_70b(),
            &d,
            Dtype::Bf16,
            Dtype::Bf16,
            ParallelConfig::new(16, 1, 16),
            Calibration::default()
        )
        .is_ok()
    );
    // Bad calibration is a config error.
    let bad = Calibration {
        memory_efficiency: 0.0,
        ..Calibration::default()
    };
    let e = AnalyticalModel::new(
        &llama2_7b(),
        &d,
        Dtype::Bf16,
        Dtype::Bf16,
        ParallelConfig::new(1, 1, 8),
        bad,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e}");
}

#[test]
fn kv_heads_are_replicated_when_tp_exceeds_them() {
    // Llama-2-70B has 8 KV heads: at tp=8 and tp=16 every device holds one
    // KV head, so each device reads the same KV bytes per token.
    let m = llama2_70b();
    let d = a100();
    let dpn16 = |tp| {
        AnalyticalModel::new(
            &m,
            &d,
            Dtype::Bf16,
            Dtype::Bf16,
            ParallelConfig::new(tp, 1, 16),
            CAL,
        )
        .unwrap()
    };
    let batch = decode(64, 4000);
    let a8 = dpn16(8).breakdown(&batch).decode_attention;
    let a16 = dpn16(16).breakdown(&batch).decode_attention;
    assert!(close(a16, a8, 0.01), "{a16} vs {a8}");
    let a4 = dpn16(4).breakdown(&batch).decode_attention;
    assert!(close(a4, 2.0 * a8, 0.01), "{a4} vs {a8}");
    // Replicated KV is read by every replica: replica-wide bytes grow.
    let bytes8 = dpn16(8).iteration(&batch).hbm_bytes;
    let bytes16 = dpn16(16).iteration(&batch).hbm_bytes;
    assert!(bytes16 > bytes8);
}

/// The slowest pipeline stage is its layers plus its own extras: Llama-2-70B
/// over pp = 3 is 27, 27, 26 layers; with 1 ms a layer, a first-stage
/// extra of 5 ms and a last-stage one of 2 ms the first stage is slowest
/// (27 + 5 = 32 ms against 27 and 26 + 2); with 1 and 9 ms the last is
/// (26 + 9 = 35 against 28). The GPU time is every layer and both extras:
/// 80 + 7 = 87 ms, 80 + 10 = 90 ms.
#[test]
fn the_critical_stage_is_the_slowest_stage_with_its_extras() {
    let m = build(&llama2_70b(), &h100(), Dtype::Bf16, 1, 3);
    let batch = decode(8, 1000);
    let (gpu, stage) = m.compose(&batch, 1e-3, 5e-3, 2e-3, 0.0);
    assert!(
        close(gpu, 0.087, 1e-12) && close(stage, 0.032, 1e-12),
        "{gpu} {stage}"
    );
    let (gpu, stage) = m.compose(&batch, 1e-3, 1e-3, 9e-3, 0.0);
    assert!(
        close(gpu, 0.090, 1e-12) && close(stage, 0.035, 1e-12),
        "{gpu} {stage}"
    );
}

#[test]
fn pipeline_stages_and_hops() {
    assert_eq!(stage_layer_counts(80, 3), vec![27, 27, 26]);
    assert_eq!(stage_layer_counts(32, 5), vec![6, 6, 7, 7, 6]);
    assert_eq!(stage_layer_counts(31, 4), vec![8, 8, 8, 7]);
    assert_eq!(stage_layer_counts(32, 1), vec![32]);

    let m = llama2_70b();
    let d = a100();
    let batch = decode(16, 1000);
    let t = 16.0;
    let hop = |bw: f64, lat: f64| 2.0 * t * 8192.0 * 2.0 / (bw * 0.8) + lat;
    let b1 = build(&m, &d, Dtype::Bf16, 4, 1).breakdown(&batch);
    // Two stages of 4 devices in one 8-device node: one intra-node hop;
    // latency is the sum over stages (no micro-batch overlap).
    let b2 = build(&m, &d, Dtype::Bf16, 4, 2).breakdown(&batch);
    let h = hop(d.intra_node_bandwidth, d.intra_node_latency);
    assert!(close(b2.pp_comm, h, 1e-12));
    assert!(
        close(b2.total - b1.total, h, 1e-9),
        "{} {} {h}",
        b2.total,
        b1.total
    );
    // Stages of 8 devices each fill a node: hops cross nodes.
    let b3 = build(&m, &d, Dtype::Bf16, 8, 3).breakdown(&batch);
    let h = hop(d.inter_node_bandwidth, d.inter_node_latency);
    assert!(close(b3.pp_comm, 2.0 * h, 1e-12));
    // The critical stage holds ⌈80/3⌉ = 27 layers: a bit over a third of the GPU time.
    let frac = b3.critical_stage / (b3.gpu() - b3.pp_comm);
    assert!(frac > 1.0 / 3.0 && frac < 0.35, "{frac}");
    assert!(close(b1.critical_stage, b1.gpu(), 1e-12));
}

/// Llama-2-70B (80 layers) on two nodes of 8 A100s, tp 4 × pp 4: 20
/// layers a stage; stage i's hand-off to i + 1 links devices
/// [4i, 4i + 8): inside node 0, across the nodes, inside node 1.
#[test]
fn stage_times_split_an_iteration_by_layers_extras_and_hops() {
    let (m, d) = (llama2_70b(), a100());
    let tm = build(&m, &d, Dtype::Bf16, 4, 4);
    let batch = decode(16, 1000);
    let b = tm.breakdown(&batch);
    let mut s = vec![1.0; 7];
    tm.stage_times(&batch, &mut s);
    assert_eq!(s.len(), 4);
    // They add up to the GPU time (a decode step has no eager floor).
    assert!(close(s.iter().sum(), b.gpu(), 1e-12), "{s:?} vs {}", b.gpu());
    // Stages 1 and 2 run the same 20 layers with no extras: they differ by
    // their hops, 1's across the nodes and 2's inside one.
    let hop = |bw: f64, lat: f64| 2.0 * 16.0 * 8192.0 * 2.0 / (bw * 0.8) + lat;
    let (inter, intra) = (
        hop(d.inter_node_bandwidth, d.inter_node_latency),
        hop(d.intra_node_bandwidth, d.intra_node_latency),
    );
    assert!(close(s[1] - s[2], inter - intra, 1e-6), "{s:?}");
    // The first adds the embedding (and its all-reduce) to a middle stage's
    // work; the last, without a hop, adds the 8,192 × 32,000 LM head,
    // the logits gather and sampling: the slowest.
    assert!(s[0] > s[2] && s[3] > s[0], "{s:?}");
    // One stage: nothing to split.
    build(&m, &d, Dtype::Bf16, 4, 1).stage_times(&batch, &mut s);
    assert!(s.is_empty());
}

#[test]
fn empty_batch_costs_nothing_and_tiny_batches_at_least_1ns() {
    let tm = build(&llama3_8b(), &h100(), Dtype::Bf16, 1, 1);
    assert_eq!(tm.iteration(&BatchShape::default()), IterationCost::default());
    let zero = Calibration {
        min_kernel_time: 0.0,
        cpu_overhead_base: 0.0,
        cpu_overhead_per_seq: 0.0,
        sampling_per_seq: 0.0,
        ..CAL
    };
    let tiny = model("tiny", 1, 8, 1, 1, 8, 8);
    let d = h100();
    let tm = AnalyticalModel::new(
        &tiny,
        &d,
        Dtype::Bf16,
        Dtype::Bf16,
        ParallelConfig::new(1, 1, 8),
        zero,
    )
    .unwrap();
    assert!(tm.iteration(&decode(1, 1)).duration >= 1);
}

#[test]
fn peak_rates_cover_all_devices() {
    let d = h100();
    let tm = build(&llama2_70b(), &d, Dtype::Bf16, 4, 2);
    assert_eq!(tm.peak_rates(), (989e12 * 8.0, 3.35e12 * 8.0));
    let tm = build(&llama2_70b(), &d, Dtype::Fp8, 2, 1);
    assert_eq!(tm.peak_rates(), (1979e12 * 2.0, 3.35e12 * 2.0));
}

#[test]
fn cpu_overhead_and_sampling_scale_with_sequences() {
    let tm = build(&llama3_8b(), &h100(), Dtype::Bf16, 1, 1);
    let b = tm.breakdown(&decode(100, 10));
    assert!(close(b.cpu_overhead, 1e-3 + 100.0 * 25e-6, 1e-12));
    assert!(close(b.sampling, 100.0 * 2e-6, 1e-12));
    let sum = b.embedding
        + b.qkv_proj
        + b.rope_kv_write
        + b.prefill_attention
        + b.decode_attention
        + b.o_proj
        + b.mlp
        + b.norms
        + b.residual_adds
        + b.lm_head
        + b.sampling
        + b.tp_comm
        + b.pp_comm
        + b.cpu_overhead;
    assert!(close(sum, b.total, 1e-12));
}

/// The headline numbers users get: Llama-3-8B on one H100-SXM with the
/// *shipped* catalog entries and H100 calibration (not this file's fixed
/// test constants), as `fleetsim run` builds them.
#[test]
fn llama3_8b_h100_reference_points() {
    let sets = [
        "model.name=Llama-3-8B".to_string(),
        "hardware.device=H100-SXM".to_string(),
    ];
    let plan = crate::scenario::validate::plan(&crate::scenario::load(None, &sets).unwrap()).unwrap();
    assert!(
        plan.device.calibration.is_some(),
        "the shipped H100 entry carries its fitted calibration"
    );
    let tm = crate::engine::time_model(&plan).unwrap();
    let secs = |b: &BatchShape| tm.iteration(b).duration as f64 * 1e-9;
    let d1 = secs(&decode(1, 1000));
    let d64 = secs(&decode(64, 1000));
    let p = secs(&prefill(2048));
    // Physical floor of a batch-1 decode step: every weight read once,
    // 2 bytes × 8.03e9 parameters at the 3.35 TB/s datasheet peak = 4.8 ms.
    let floor = plan.model.total_params() * 2.0 / plan.device.memory_bandwidth;
    assert!(d1 > floor, "{d1} below the bandwidth floor {floor}");
    // Above it by the engine's per-step host costs. The shipped H100
    // constants come from vLLM 0.6 on 70B-class models at TP 2–8 (per-step
    // and per-layer launch costs, docs/fidelity.md) and give 9.6 ms here;
    // no measurement of this configuration is in ../shared, so the bound is
    // the floor plus those fitted host costs at most (about 5 ms), not a
    // measured figure. (An earlier version of this test asserted 6–8 ms
    // against a test-local calibration that no user runs.)
    assert!(d1 < floor + 5.5e-3, "{d1}");
    // Batch 64 still reads the weights once: far less than 64 × batch 1.
    assert!(d64 > d1 && d64 < 3.0 * d1, "{d64}");
    // 2048-token prefill: 2·8e9·2048 FLOP = 33 TFLOP at 989 TFLOP/s is a
    // 33 ms floor; at the fitted GEMM efficiency plus attention, 40–80 ms.
    assert!(p > 40e-3 && p < 80e-3, "{p}");
}

fn shape(prefills: &[(u64, u64)], decodes: &[u64]) -> BatchShape {
    let mut b = BatchShape::default();
    for &(k, c) in prefills {
        b.add_prefill_chunk(k, c);
    }
    b.decode_seqs = decodes.len() as u32;
    b.decode_kv_tokens = decodes.iter().sum();
    b
}

fn monotonic_models() -> Vec<AnalyticalModel> {
    vec![
        build(&llama3_8b(), &h100(), Dtype::Bf16, 1, 1),
        build(&llama2_70b(), &a100(), Dtype::Bf16, 4, 2),
        build(&mixtral(), &h100(), Dtype::Fp8, 2, 1),
        build(&llama2_70b(), &a100(), Dtype::Bf16, 16, 1),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn adding_work_never_lowers_the_time(
        prefills in prop::collection::vec((0u64..4000, 1u64..2000), 0..4),
        decodes in prop::collection::vec(1u64..8000, 0..64),
        extra_ctx in 1u64..8000,
        extra_cached in 0u64..4000,
        which in 0usize..4,
    ) {
        let base = shape(&prefills, &decodes);
        let mut more_decodes = decodes.clone();
        more_decodes.push(extra_ctx);
        let with_decode = shape(&prefills, &more_decodes);
        let mut longer = prefills.clone();
        match longer.get_mut(which) {
            Some(p) => p.1 += 1,
            None => longer.push((extra_cached, 1)),
        }
        let with_token = shape(&longer, &decodes);
        for tm in monotonic_models() {
            let t0 = tm.iteration(&base);
            for bigger in [&with_decode, &with_token] {
                let t1 = tm.iteration(bigger);
                prop_assert!(t1.duration >= t0.duration, "{:?} -> {:?}: {} > {}", base, bigger, t0.duration, t1.duration);
                prop_assert!(tm.breakdown(bigger).total >= tm.breakdown(&base).total);
                prop_assert!(t1.flops >= t0.flops && t1.hbm_bytes >= t0.hbm_bytes);
            }
        }
    }
}

/// A fully connected mesh (MI300X: 7 Infinity Fabric links of 64 GB/s per
/// direction, one per peer) gives a TP group of `n` devices `n − 1` links.
/// Per byte of message, a ring all-reduce costs `2(n−1)/n / B_n`:
/// TP-2 `1 / 64 GB/s`, TP-8 `1.75 / 448 GB/s = 1 / 256 GB/s` — TP-2 is 4×
/// slower per byte (on a switched fabric with 448 GB/s it would be 1.75×
/// *faster*). The fixed terms cancel in the difference of two sizes.
#[test]
fn mesh_fabric_gives_a_small_tp_group_only_its_own_links() {
    let mi300x = DeviceSpec {
        intra_node_pair_bandwidth: 64e9,
        ..device("MI300X", 5.3e12, 1307e12, 2615e12, 448e9)
    };
    let per_byte = |tp: u32| {
        let m = build(&llama2_70b(), &mi300x, Dtype::Bf16, tp, 1);
        m.all_reduce_time(2000.0) - m.all_reduce_time(1000.0)
    };
    let ratio = per_byte(2) / per_byte(8);
    assert!(close(ratio, 4.0, 1e-9), "TP-2 / TP-8 per byte: {ratio}");
    // TP-4: 2·3/4 / 192 GB/s = 1 / 128 GB/s, twice TP-8's.
    assert!(close(per_byte(4) / per_byte(8), 2.0, 1e-9));
    // The catalog's MI300X carries the pair link.
    let cat = crate::catalog::Catalog::builtin();
    let d = cat.device("MI300X").unwrap();
    assert_eq!(d.intra_node_pair_bandwidth, 64e9);
    assert_eq!(d.intra_node_group_bandwidth(2), 64e9);
    assert_eq!(d.intra_node_group_bandwidth(8), 448e9);
}

#[test]
fn eager_launch_time_is_hidden_under_the_gpu_by_the_overlap_fraction() {
    // Llama-2-7B (32 layers) on an A100: a 16-token prefill's GPU time g
    // is far below a 32 × 1 ms launch, a 4,096-token one's far above it.
    let m = llama2_7b();
    let d = a100();
    let with = |launch: f64, overlap: f64| {
        let cal = Calibration {
            eager_launch_per_layer: launch,
            eager_launch_overlap: overlap,
            ..CAL
        };
        build_with(&m, &d, Dtype::Bf16, 1, 1, cal)
    };
    let launch = 32.0 * 1e-3;
    for tokens in [16, 4096] {
        let g = with(0.0, 1.0).breakdown(&prefill(tokens)).gpu();
        let gpu = |overlap: f64| with(1e-3, overlap).breakdown(&prefill(tokens)).gpu();
        let rel = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b;
        assert!(
            rel(gpu(1.0), g.max(launch)),
            "{tokens}: {} vs max({g}, {launch})",
            gpu(1.0)
        );
        assert!(
            rel(gpu(0.0), g + launch),
            "{tokens}: {} vs {g} + {launch}",
            gpu(0.0)
        );
        let half = g + launch - 0.5 * g.min(launch);
        assert!(rel(gpu(0.5), half), "{tokens}: {} vs {half}", gpu(0.5));
    }
    // A decode step launches from a CUDA graph: no eager launch time at all.
    let g = with(0.0, 0.0).breakdown(&decode(4, 128)).gpu();
    assert_eq!(with(1e-3, 0.0).breakdown(&decode(4, 128)).gpu(), g);
    // Out of [0, 1] is refused.
    let bad = Calibration {
        eager_launch_overlap: 1.5,
        ..CAL
    };
    assert!(
        bad.validate()
            .unwrap_err()
            .to_string()
            .contains("eager_launch_overlap")
    );
}

mod worked;
