//! Tests of the pass costs: the physical relations between passes (the
//! backward's GEMMs, recomputation), the GEMM rate against hand-counted
//! FLOPs, and the communication each parallelism adds, with the bytes
//! counted by hand.

use super::*;
use crate::catalog::Catalog;
use crate::scenario::validate::resolve_calibration;

fn plan_for<'a>(model: &'a ModelSpec, device: &'a DeviceSpec) -> CostPlan<'a> {
    CostPlan {
        model,
        device,
        calibration: resolve_calibration(device, "", &toml::Table::new()).unwrap(),
        devices_per_node: 8,
        tp: 1,
        cp: 1,
        dp: 1,
        ep: 1,
        sequence_parallel: false,
        flash_attention: true,
        micro_batch: 4,
        seq_len: 4096,
        zero_stage: 1,
        recompute: Recompute::None,
    }
}

fn llama8b() -> (ModelSpec, DeviceSpec) {
    let c = Catalog::builtin();
    (
        c.model("Llama-3-8B").unwrap().clone(),
        c.device("H100-SXM").unwrap().clone(),
    )
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

#[test]
fn weight_gradients_run_the_layer_gemms_at_the_calibrated_tensor_rate() {
    let (m, d) = llama8b();
    let p = plan_for(&m, &d);
    let c = p.costs().unwrap().layer;
    // One Llama-3-8B layer: QKV 4096×(4096 + 2·1024) + O 4096×4096 +
    // MLP 3×4096×14336 = 25,165,824 + 16,777,216 + 176,160,768
    // = 218,103,808 weights; W does 2 FLOPs per weight per token over
    // 4 × 4096 = 16,384 tokens = 7.1468e12 FLOPs, each GEMM padded by
    // `gemm_half_tokens` rows, at 989.4 TFLOP/s × gemm_efficiency.
    let cal = p.calibration;
    let flops = 2.0 * 218_103_808.0 * 16_384.0 * (16_384.0 + cal.gemm_half_tokens) / 16_384.0;
    let expected = flops / (d.flops_bf16 * cal.gemm_efficiency);
    assert!(close(c.w, expected, 1e-9), "W {} vs {expected}", c.w);
    // F is the GEMMs, causal attention (4 × 4096·4097/2 = 33,562,624 pairs
    // of 4·128·32 FLOPs at the FlashAttention rate) and the element-wise
    // kernels, which move per token: RoPE 2·(32 + 8)·128·2 = 20,480 bytes,
    // two RMSNorms 2 × 2·4096·2 = 32,768, two residual adds 32,768, the
    // SwiGLU activation 3·14,336·2 = 86,016: 172,032 bytes at the
    // calibrated share of HBM bandwidth (no KV-cache write in training).
    let attention = 33_562_624.0 * 16_384.0 / (d.flops_bf16 * cal.prefill_attention_efficiency);
    let elementwise = 172_032.0 * 16_384.0 / (d.memory_bandwidth * cal.memory_efficiency);
    assert!(
        close(c.f, c.w + attention + elementwise, 1e-9),
        "F {} vs {}",
        c.f,
        c.w + attention + elementwise
    );
    // B: the input-gradient GEMMs (W's FLOPs), attention's backward (2.5×)
    // and every element-wise kernel twice.
    assert!(close(c.b, c.w + 2.5 * attention + 2.0 * elementwise, 1e-9));
    // So B > F > W.
    assert!(c.b > c.f && c.f > c.w, "{c:?}");
    assert_eq!(c.comm_f, 0.0, "one device: no communication");
}

#[test]
fn full_recomputation_runs_the_forward_again_in_the_backward() {
    let (m, d) = llama8b();
    let none = plan_for(&m, &d).costs().unwrap().layer;
    for tp in [1, 2] {
        let plan = |recompute| CostPlan {
            tp,
            recompute,
            ..plan_for(&m, &d)
        };
        let base = plan(Recompute::None).costs().unwrap().layer;
        let full = plan(Recompute::Full).costs().unwrap().layer;
        assert!(
            close(full.b - base.b, base.f, 1e-12),
            "tp {tp}: {full:?} vs {base:?}"
        );
        assert_eq!((full.f, full.w), (base.f, base.w));
    }
    // With FlashAttention nothing is stored that selective recomputation
    // would drop, so it costs nothing; without, it recomputes attention's
    // forward only: more than nothing, less than the whole forward.
    let sel = CostPlan {
        recompute: Recompute::Selective,
        ..plan_for(&m, &d)
    };
    assert_eq!(sel.costs().unwrap().layer, none);
    let eager = |recompute| CostPlan {
        recompute,
        flash_attention: false,
        ..plan_for(&m, &d)
    };
    let (e_none, e_sel) = (
        eager(Recompute::None).costs().unwrap().layer,
        eager(Recompute::Selective).costs().unwrap().layer,
    );
    let extra = e_sel.b - e_none.b;
    assert!(extra > 0.0 && extra < 0.5 * e_none.f, "{extra} of F {}", e_none.f);
}

#[test]
fn tensor_parallelism_adds_two_all_reduces_to_forward_and_backward() {
    let (m, d) = llama8b();
    let p = CostPlan {
        tp: 2,
        ..plan_for(&m, &d)
    };
    let c = p.costs().unwrap().layer;
    // 16,384 tokens × 4096 × 2 bytes = 134,217,728 bytes per all-reduce,
    // over the two devices' link: the ring moves 2·(2−1)/2 of it each way,
    // plus one hop and the calibrated collective latency.
    let link = Link::intra_node_group(&d, &p.calibration, 2);
    let one = 134_217_728.0 / link.bandwidth + link.latency + p.calibration.collective_latency;
    assert!(close(c.comm_f, 2.0 * one, 1e-12), "{} vs {}", c.comm_f, 2.0 * one);
    assert!(close(c.comm_b, 2.0 * one, 1e-12));
    assert_eq!(c.comm_w, 0.0);
    // Over a slow network the collectives dominate, and each pass still
    // takes its compute plus its communication.
    let mut slow = d.clone();
    slow.inter_node_bandwidth = 1e9;
    let s = CostPlan {
        device: &slow,
        devices_per_node: 1,
        ..p
    }
    .costs()
    .unwrap()
    .layer;
    assert!(s.comm_b > s.w && s.b > s.comm_b + s.w, "{s:?}");
}

#[test]
fn links_follow_megatron_rank_order() {
    let (m, d) = llama8b();
    let base = plan_for(&m, &d);
    let intra = |n| Link::intra_node_group(&d, &base.calibration, n);
    let inter = Link::inter_node(&d, &base.calibration);
    // tp 2 × dp 4 fill one 8-device node: the DP group is inside it.
    let l = CostPlan { tp: 2, dp: 4, ..base }.links();
    assert_eq!((l.tp, l.dp), (intra(2), intra(4)));
    // tp 4 × dp 4: the DP group spans two nodes.
    assert_eq!(CostPlan { tp: 4, dp: 4, ..base }.links().dp, inter);
    // Pipeline stages of 2 ranks: stages 0–1, 1–2 and 2–3 share node 0
    // (ranks 0..8); stage 3 (ranks 6, 7) hands off to stage 4 (ranks 8, 9)
    // on the next node.
    let p = CostPlan { tp: 2, ..base };
    let links = p.links();
    let hops: Vec<Link> = (0..5).map(|i| p.hop_link(i, &links)).collect();
    assert_eq!(hops[..3], [links.pp_intra; 3]);
    assert_eq!(hops[3], links.pp_inter);
    assert_eq!(hops[4], links.pp_intra);
    // With dp 2, a stage is tp × dp = 4 ranks: stage 0 (ranks 0–3) hands
    // off to stage 1 (4–7) inside node 0, stage 1 to stage 2 (8–11) across.
    let p = CostPlan { tp: 2, dp: 2, ..base };
    let links = p.links();
    assert_eq!(p.stage_ranks(), 4);
    assert_eq!(
        CostPlan {
            tp: 4,
            cp: 2,
            dp: 2,
            ..base
        }
        .stage_ranks(),
        16
    );
    assert_eq!(
        (p.hop_link(0, &links), p.hop_link(1, &links)),
        (links.pp_intra, links.pp_inter)
    );
    // tp 4 × cp 2: the DP group's stride is 8 ranks, so dp 2 spans two nodes
    // (tp 4 alone would keep it inside one).
    let l = CostPlan {
        tp: 4,
        cp: 2,
        dp: 2,
        ..base
    }
    .links();
    assert_eq!((l.cp, l.dp), (intra(2), inter));
    // Stages of 8 ranks: every hop leaves the node.
    let wide = CostPlan { tp: 8, ..base };
    assert_eq!(wide.hop_link(0, &wide.links()), wide.links().pp_inter);
}

#[test]
fn the_pipeline_send_is_one_micro_batch_of_hidden_states_split_by_sequence_parallelism() {
    let (m, d) = llama8b();
    // 4 × 4096 tokens × 4096 × 2 bytes = 134,217,728; with sequence
    // parallelism each of the 4 TP ranks sends its quarter.
    let full = CostPlan {
        tp: 4,
        ..plan_for(&m, &d)
    };
    assert_eq!(full.costs().unwrap().send_bytes, 134_217_728.0);
    let sp = CostPlan {
        sequence_parallel: true,
        ..full
    };
    assert_eq!(sp.costs().unwrap().send_bytes, 33_554_432.0);
    // Context parallelism halves each device's tokens.
    let cp = CostPlan { cp: 2, ..full };
    assert_eq!(cp.costs().unwrap().send_bytes, 67_108_864.0);
}

#[test]
fn the_context_parallel_ring_hides_under_attention_until_the_link_is_slow() {
    let (m, d) = llama8b();
    let p = CostPlan {
        cp: 2,
        micro_batch: 1,
        seq_len: 32_768,
        ..plan_for(&m, &d)
    };
    // K and V of 16,384 local tokens × 8 KV heads × 128 × 2 bytes = 64 MiB
    // cross NVLink in ~0.2 ms, far under the attention of a 32k sequence.
    assert_eq!(p.costs().unwrap().layer.comm_f, 0.0);
    // Across nodes at 1 GB/s the same 67 MB take 67 ms: exposed.
    let mut d = d.clone();
    d.inter_node_bandwidth = 1e9;
    let slow = CostPlan {
        device: &d,
        devices_per_node: 1,
        ..p
    };
    let c = slow.costs().unwrap().layer;
    // Exposed: the ring's 67,108,864 bytes at 1 GB/s × the link efficiency
    // (one step of a 2-ring) less the attention it hides under, each
    // device's half of the 32k sequence's 536,887,296 pairs.
    let cal = slow.calibration;
    let ring = 67_108_864.0 / (1e9 * cal.inter_node_link_efficiency) + d.inter_node_latency;
    let attention = 268_443_648.0 * 16_384.0 / (d.flops_bf16 * cal.prefill_attention_efficiency);
    assert!(
        close(c.comm_f, ring - attention, 1e-9),
        "{} vs {}",
        c.comm_f,
        ring - attention
    );
    // With tp 2 each rank holds 4 of the 8 KV heads and 16 of the 32 query
    // heads: half the ring's bytes, half the attention, plus TP's own two
    // all-reduces of 16,384 tokens × 4096 × 2 bytes on NVLink (nodes of 2:
    // the TP pair inside one, the CP pair across).
    let tp2 = CostPlan {
        tp: 2,
        devices_per_node: 2,
        ..slow
    }
    .costs()
    .unwrap()
    .layer;
    let nvlink = Link::intra_node_group(&d, &cal, 2);
    let all_reduce = 134_217_728.0 / nvlink.bandwidth + nvlink.latency + cal.collective_latency;
    let ring2 = 33_554_432.0 / (1e9 * cal.inter_node_link_efficiency) + d.inter_node_latency;
    let expected = ring2 - attention / 2.0 + 2.0 * all_reduce;
    assert!(close(tp2.comm_f, expected, 1e-9), "{} vs {expected}", tp2.comm_f);
    assert!(c.comm_b > c.comm_f);
}

#[test]
fn expert_parallelism_adds_a_dispatch_and_a_combine_each_way() {
    let c = Catalog::builtin();
    let (m, d) = (c.model("Mixtral-8x7B").unwrap(), c.device("H100-SXM").unwrap());
    let base = CostPlan {
        dp: 8,
        micro_batch: 1,
        ..plan_for(m, d)
    };
    let ep = CostPlan { ep: 8, ..base };
    let (c1, c8) = (base.costs().unwrap().layer, ep.costs().unwrap().layer);
    // 4096 tokens × top-2 × 4096 × 2 bytes = 67,108,864 bytes routed, of
    // which 7/8 leave the device, over the 8 devices' NVLink: one
    // all-to-all; F runs dispatch + combine.
    let link = Link::intra_node_group(d, &base.calibration, 8);
    let a2a = 7.0 / 8.0 * 67_108_864.0 / link.bandwidth + link.latency;
    assert!(close(c8.comm_f - c1.comm_f, 2.0 * a2a, 1e-12), "{c8:?}");
    assert!(close(c8.comm_b - c1.comm_b, 2.0 * a2a, 1e-12));
    // With TP 2 and sequence parallelism each rank routes its half of the
    // tokens: 33,554,432 bytes per all-to-all (on nodes of 16, so that the
    // EP group at stride 2 stays on the same NVLink fabric).
    let sp = |ep| {
        CostPlan {
            ep,
            tp: 2,
            devices_per_node: 16,
            sequence_parallel: true,
            ..base
        }
        .costs()
        .unwrap()
        .layer
    };
    let half = 7.0 / 8.0 * 33_554_432.0 / link.bandwidth + link.latency;
    assert!(close(sp(8).comm_f - sp(1).comm_f, 2.0 * half, 1e-9));
    // Eight experts on eight devices: each device's GEMMs stay the
    // routed rows' (the same FLOPs), so W barely moves.
    assert!(close(c8.w, c1.w, 0.05), "{} vs {}", c8.w, c1.w);
}

#[test]
fn zero3_gathers_show_only_beyond_the_pass_they_hide_under() {
    let (m, d) = llama8b();
    let z = |zero_stage, device| CostPlan {
        zero_stage,
        dp: 8,
        devices_per_node: 1,
        device,
        ..plan_for(&m, &d)
    };
    let (z1, z3) = (z(1, &d).costs().unwrap().layer, z(3, &d).costs().unwrap().layer);
    // 218M bf16 weights (436 MB) gathered at 50 GB/s × 0.8 take ~10 ms,
    // under a 16k-token layer's ~35 ms forward: hidden.
    assert_eq!(z1, z3);
    let mut slow_d = d.clone();
    slow_d.inter_node_bandwidth = 1e9;
    let slow = z(3, &slow_d).costs().unwrap().layer;
    let gather = 7.0 / 8.0 * 218_103_808.0 * 2.0
        / (1e9 * z(3, &slow_d).calibration.inter_node_link_efficiency)
        + d.inter_node_latency;
    assert!(
        close(slow.comm_f, gather - z1.f, 1e-9),
        "{} vs {}",
        slow.comm_f,
        gather - z1.f
    );
    assert!(close(slow.comm_w, gather - z1.w, 1e-9));
    assert!(close(slow.comm_b, gather - z1.b, 1e-9));
    // The exposed part is time the pass takes.
    assert!(close(slow.w, z1.w + slow.comm_w, 1e-12) && close(slow.b, z1.b + slow.comm_b, 1e-12));
}

#[test]
fn the_last_stage_prices_logits_for_every_token() {
    let (m, d) = llama8b();
    let p = plan_for(&m, &d);
    let c = p.costs().unwrap();
    // LM head 4096 × 128,256 over 16,384 tokens: 2 × 525,336,576 × 16,384
    // = 1.7214e13 FLOPs per GEMM (its W is that one GEMM).
    let flops = 2.0 * 4096.0 * 128_256.0 * (16_384.0 + p.calibration.gemm_half_tokens);
    let expected = flops / (d.flops_bf16 * p.calibration.gemm_efficiency);
    assert!(close(c.last.w, expected, 1e-9), "{} vs {expected}", c.last.w);
    assert!(c.last.f > c.last.w && c.last.b > c.last.w);
    // The embedding is a lookup: F and its gradient's scatter-add, no GEMM.
    assert!(c.first.f > 0.0 && c.first.w > 0.0 && c.first.b == 0.0);
    assert!(c.first.f < 0.01 * c.layer.f);
}

#[test]
fn causal_attention_is_priced_by_its_query_key_pairs() {
    let (m, d) = llama8b();
    let at = |micro_batch, seq_len, cp| {
        CostPlan {
            micro_batch,
            seq_len,
            cp,
            ..plan_for(&m, &d)
        }
        .costs()
        .unwrap()
        .layer
    };
    // One 32k sequence and two 16k ones have the same tokens (the same
    // GEMMs and element-wise kernels), but the long one has
    // 32,768·32,769/2 = 536,887,296 causal pairs against 2 × 16,384·16,385/2
    // = 268,451,840: the difference of their forwards is exactly the
    // 16k pair's attention, 268,451,840 pairs × 4·128·32 FLOPs at the
    // calibrated FlashAttention rate.
    let (long, short) = (at(1, 32_768, 1), at(2, 16_384, 1));
    let cal = plan_for(&m, &d).calibration;
    let attention =
        (536_887_296.0 - 268_451_840.0) * 16_384.0 / (d.flops_bf16 * cal.prefill_attention_efficiency);
    assert!(
        close(long.f - short.f, attention, 1e-9),
        "{} vs {attention}",
        long.f - short.f
    );
    assert_eq!(long.w, short.w);
    // Its backward is 2.5× the forward's attention.
    assert!(close(long.b - short.b, 2.5 * attention, 1e-9));
    // Context parallelism over 2 devices halves each one's tokens and pairs
    // (the ring is hidden on NVLink): the 32k sequence's pairs on each of 2
    // devices are 268,443,648, one 16k micro-batch's GEMMs.
    let (split, half) = (at(1, 32_768, 2), at(1, 16_384, 1));
    assert_eq!(split.w, half.w);
    let pairs_split = 536_887_296.0 / 2.0;
    let pairs_half = 16_384.0 * 16_385.0 / 2.0;
    let extra = (pairs_split - pairs_half) * 16_384.0 / (d.flops_bf16 * cal.prefill_attention_efficiency);
    assert!(
        close(split.f - half.f, extra, 1e-6),
        "{} vs {extra}",
        split.f - half.f
    );
}

#[test]
fn each_device_reads_the_weights_of_its_own_experts_only() {
    let c = Catalog::builtin();
    let (m, d) = (c.model("Mixtral-8x7B").unwrap(), c.device("H100-SXM").unwrap());
    // 16 tokens × top-2 = 32 routed rows: the expert GEMMs stream weights.
    // With ep = 2 a device holds 4 of the 8 experts, with ep = 4 two: W
    // reads twice the expert weights (4 × 3 × 4096 × 14,336 × 2 bytes =
    // 1.41 GB against 0.70 GB), so it takes nearly twice as long.
    let w = |ep| {
        CostPlan {
            ep,
            dp: 4,
            micro_batch: 1,
            seq_len: 16,
            ..plan_for(m, d)
        }
        .costs()
        .unwrap()
        .layer
        .w
    };
    let (w2, w4) = (w(2), w(4));
    assert!(w2 > 1.7 * w4 && w2 < 2.0 * w4, "{w2} vs {w4}");
}

#[test]
fn the_first_and_last_stages_add_the_embedding_and_the_loss() {
    let (m, d) = llama8b();
    let p = plan_for(&m, &d);
    let c = p.costs().unwrap();
    let per_byte = 1.0 / (d.memory_bandwidth * p.calibration.memory_efficiency);
    let t = 16_384.0;
    // Embedding: a bf16 row read and written per token (4096 × 4 bytes),
    // forward and as the gradient's scatter-add.
    assert!(close(c.first.f, t * 16_384.0 * per_byte, 1e-9));
    assert!(close(c.first.w, t * 16_384.0 * per_byte, 1e-9));
    // Loss: the final RMSNorm (2·4096·2 bytes per token), the LM head, and
    // fp32 logits over 128,256 entries written and read (8 bytes each);
    // its backward the LM head's input gradient, the logits' gradient
    // (4 bytes each) and the norm twice.
    let norm = t * 16_384.0 * per_byte;
    let logits = t * 128_256.0 * 4.0 * per_byte;
    assert!(
        close(c.last.f, c.last.w + norm + 2.0 * logits, 1e-9),
        "{:?}",
        c.last
    );
    assert!(
        close(c.last.b, c.last.w + logits + 2.0 * norm, 1e-9),
        "{:?}",
        c.last
    );
    // With TP 2 the embedding's output is all-reduced, and so is the LM
    // head's input gradient: one all-reduce of 16,384 × 4096 × 2 bytes each.
    let tp = CostPlan { tp: 2, ..p };
    let c2 = tp.costs().unwrap();
    let link = Link::intra_node_group(&d, &tp.calibration, 2);
    let all_reduce = 134_217_728.0 / link.bandwidth + link.latency + tp.calibration.collective_latency;
    assert!(close(c2.first.f - c2.first.w, all_reduce, 1e-9));
    let v2 = t * 64_128.0 * 4.0 * per_byte;
    // The loss's forward adds the vocabulary-parallel softmax's two small
    // all-reduces (max and sum: 16,384 fp32 values, 65,536 bytes each).
    let small = 65_536.0 / link.bandwidth + link.latency + tp.calibration.collective_latency;
    assert!(
        close(c2.last.f, c2.last.w + norm + 2.0 * v2 + 2.0 * small, 1e-9),
        "{:?}",
        c2.last
    );
    assert!(
        close(c2.last.b, c2.last.w + v2 + 2.0 * norm + all_reduce, 1e-9),
        "{:?}",
        c2.last
    );
}

#[test]
fn full_recomputation_repeats_the_forwards_communication_too() {
    let c = Catalog::builtin();
    let (m, d) = (c.model("Mixtral-8x7B").unwrap(), c.device("H100-SXM").unwrap());
    // One device per node: the CP ring and the EP group cross a network
    // slow enough that the ring shows (TP's part is the test above).
    let mut slow = d.clone();
    slow.inter_node_bandwidth = 1e9;
    let plan = |recompute| CostPlan {
        device: &slow,
        ep: 8,
        dp: 8,
        cp: 2,
        devices_per_node: 1,
        micro_batch: 1,
        seq_len: 8192,
        recompute,
        ..plan_for(m, d)
    };
    let (none, full) = (
        plan(Recompute::None).costs().unwrap().layer,
        plan(Recompute::Full).costs().unwrap().layer,
    );
    // The recomputed forward runs its EP all-to-alls and exposed CP ring
    // again: B grows by exactly F.
    let ring_only = CostPlan {
        ep: 1,
        ..plan(Recompute::None)
    }
    .costs()
    .unwrap()
    .layer;
    assert!(ring_only.comm_f > 0.0, "the CP ring must show: {ring_only:?}");
    assert!(
        close(full.b - none.b, none.f, 1e-12),
        "{} vs {}",
        full.b - none.b,
        none.f
    );
}

#[test]
fn zero3_gathers_each_ranks_shard_of_dense_and_expert_weights() {
    let c = Catalog::builtin();
    let (m, d) = (c.model("Mixtral-8x7B").unwrap(), c.device("H100-SXM").unwrap());
    let mut slow = d.clone();
    slow.inter_node_bandwidth = 1e8;
    let p = CostPlan {
        device: &slow,
        tp: 2,
        ep: 4,
        dp: 4,
        zero_stage: 3,
        devices_per_node: 2,
        micro_batch: 1,
        seq_len: 1024,
        ..plan_for(m, d)
    };
    let z3 = p.costs().unwrap().layer;
    let z1 = CostPlan { zero_stage: 1, ..p }.costs().unwrap().layer;
    // Per TP rank: attention 4096×(4096 + 2·1024) + 4096×4096 =
    // 41,943,040 and the router 4096 × 8 = 32,768, halved: 20,987,904;
    // two of the 8 experts (3 × 4096 × 14,336 each = 176,160,768), halved:
    // 176,160,768. 197,148,672 bf16 weights gathered from 4 ranks (3/4 of
    // them arrive) at 0.1 GB/s × the link efficiency, under W's compute.
    let gather = 0.75 * 197_148_672.0 * 2.0 / (1e8 * p.calibration.inter_node_link_efficiency)
        + slow.inter_node_latency;
    assert!(
        close(z3.comm_w, gather - z1.w, 1e-9),
        "{} vs {}",
        z3.comm_w,
        gather - z1.w
    );
    // The backward pass's CP ring carries K, V and their gradients: twice
    // the forward's bytes, under 2.5× its attention.
    let cp = CostPlan {
        device: &slow,
        cp: 2,
        tp: 1,
        devices_per_node: 1,
        micro_batch: 1,
        seq_len: 8192,
        ..plan_for(m, d)
    };
    let c = cp.costs().unwrap().layer;
    // 4096 local tokens × 8 KV heads × 128 × 2 (K, V) × 2 bytes = 16,777,216
    // per ring step. F exposes ring − A; B sends twice the bytes under 2.5 A:
    // 2·ring − 2.5·(ring − comm_f) = 2.5·comm_f − 0.5·ring.
    let ring = 16_777_216.0 / (1e8 * cp.calibration.inter_node_link_efficiency) + slow.inter_node_latency;
    assert!(c.comm_f > 0.0 && c.comm_f < ring);
    assert!(
        close(c.comm_b, 2.5 * c.comm_f - 0.5 * ring, 1e-9),
        "{} {} {ring}",
        c.comm_b,
        c.comm_f
    );
}

#[test]
fn weight_gradients_split_over_tp_and_follow_the_routed_rows() {
    let (m, d) = llama8b();
    let one = plan_for(&m, &d).costs().unwrap().layer;
    let two = CostPlan {
        tp: 2,
        ..plan_for(&m, &d)
    }
    .costs()
    .unwrap()
    .layer;
    // Each TP rank holds half of every GEMM's columns or rows: half the FLOPs.
    assert!(close(two.w, one.w / 2.0, 1e-9), "{} vs {}", two.w, one.w / 2.0);
    // Mixtral-8x7B, 4096 tokens, top-2 of 8 experts on one device: the
    // attention GEMMs (41,943,040 weights) see 4096 rows, the experts
    // (176,160,768 weights each) 8,192 routed rows, each of the 8 experts'
    // GEMMs padded by `gemm_half_tokens`; the router (4096 × 8 weights)
    // is memory-bound, reading 4096 rows in and writing 8 out per token
    // (4096 × 4104 × 2 = 33,619,968 bytes) and its 65,536 bytes of weights,
    // and its top-k and sort kernels
    // take the shortest kernel time each.
    let c = Catalog::builtin();
    let (x, h100) = (c.model("Mixtral-8x7B").unwrap(), c.device("H100-SXM").unwrap());
    let p = CostPlan {
        micro_batch: 1,
        ..plan_for(x, h100)
    };
    let cal = p.calibration;
    let (t, th) = (4096.0, cal.gemm_half_tokens);
    let flops = 2.0 * (41_943_040.0 * (t + th) + 176_160_768.0 * (2.0 * t + 8.0 * th));
    let router = 33_685_504.0 / (h100.memory_bandwidth * cal.memory_efficiency);
    let expected = flops / (h100.flops_bf16 * cal.gemm_efficiency) + router + 2.0 * cal.min_kernel_time;
    let w = p.costs().unwrap().layer.w;
    assert!(close(w, expected, 1e-9), "{w} vs {expected}");
}
