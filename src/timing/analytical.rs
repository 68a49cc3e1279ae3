//! Analytical time model v1: an operator-level roofline with calibrated
//! efficiencies.
//!
//! # Model
//!
//! One iteration is one forward pass of the replica over a batch described by
//! a [`BatchShape`]. Every operator (kernel) is priced with a per-operator
//! roofline (Williams, Waterman & Patterson 2009, "Roofline: an insightful
//! visual performance model for multicore architectures", CACM 52(4)):
//!
//! ```text
//! t_op = max( FLOPs / (peak_FLOPs · eff_compute),  bytes / (HBM_bw · eff_mem),  t_kernel )
//! ```
//!
//! and the operators are summed (kernels of one stream do not overlap).
//! FLOP counting follows the standard inference accounting (2 FLOPs per
//! multiply-accumulate, 2·params FLOPs per token through a matrix; Kaplan et
//! al. 2020 "Scaling laws for neural language models" §2.1; Yuan et al. 2024
//! "LLM Inference Unveiled: Survey and Roofline Model Insights").
//!
//! ## Notation
//!
//! Per iteration: `T = prefill_tokens + decode_seqs` rows through the GEMMs;
//! `T_p = prefill_tokens`; `P = prefill_attn_pairs`; `K_p = prefill_kv_tokens`;
//! `D = decode_seqs`; `K_d = decode_kv_tokens`; `S = decode_seqs + prefill_seqs`
//! sequences that sample (approximation: every prefill chunk is counted as
//! completing its prompt).
//!
//! Model: `L` layers, hidden `h`, head dim `d`, vocab `V`, MLP width `I` (per
//! expert), `E` experts, top-`k` routing, `m = 3` matrices for gated MLPs
//! (gate, up, down) else 2. Parallelism: tensor-parallel degree `tp`,
//! pipeline degree `pp`. Per device: query heads `n_q = heads/tp`; KV heads
//! `n_kv = kv_heads/tp` if `tp ≤ kv_heads`, else 1 (vLLM replicates each KV
//! head on `tp/kv_heads` ranks when `tp > kv_heads`, so every rank holds one
//! whole KV head); MLP width `I_d = I/tp` (vLLM's fused MoE also shards
//! every expert by TP).
//!
//! Bytes per element: weights `b_w` (weight dtype), KV cache `b_kv` (KV
//! dtype), activations `b_a = 2` (BF16). Embedding, LM head and MoE router
//! are kept in 16-bit when the layer weights are quantized below 16 bits
//! (vLLM does not quantize them by default): `b_e = max(b_w, 2)`. GEMMs on
//! layer weights run at `peak_flops(weight dtype)` (FP8 weights use the FP8
//! tensor rate; on a device without FP8 units the catalog falls back to the
//! BF16 rate); attention, embedding, LM head and router run at the BF16 rate.
//!
//! ## GEMM efficiency
//!
//! A GEMM with `M` rows (tokens) reaches `eff(M) = eff_max · M / (M + t_half)`
//! of peak, so small-M GEMMs are inefficient. Its compute time is therefore
//! `2·W·M / (peak · eff(M)) = 2·W·(M + t_half) / (peak · eff_max)`: every GEMM
//! pays for `t_half` padding rows (tensor-core tiles are 64–128 rows). Its
//! bytes are `W·b_w + M·(K + N)·b_a` (weights, input and output activations).
//!
//! ## Operators and their per-device FLOPs and bytes
//!
//! Per layer (all times multiplied by `L`; no loop over layers):
//!
//! | operator | FLOPs | bytes |
//! |---|---|---|
//! | QKV projection, `W = h·(n_q + 2·n_kv)·d` | `2·T·W` | `W·b_w + T·(h + (n_q+2n_kv)·d)·b_a` |
//! | RoPE (in place on q, k) | – | `2·T·(n_q + n_kv)·d·b_a` |
//! | KV-cache write | – | `T·2·n_kv·d·(b_a + b_kv)` |
//! | prefill attention (if any prefill) | `4·P·d·n_q` (QKᵀ and PV over causal pairs) | `K_p·2·n_kv·d·b_kv + T_p·2·n_q·d·b_a` |
//! | decode attention (if any decode) | `4·K_d·d·n_q` | `K_d·2·n_kv·d·b_kv + D·2·n_q·d·b_a` |
//! | O projection, `W = n_q·d·h` | `2·T·W` | `W·b_w + T·(n_q·d + h)·b_a` |
//! | MLP gate+up, `W = (m−1)·h·I_d` | `2·R·W` | `n_e·W·b_w + R·(h + (m−1)·I_d)·b_a` |
//! | MLP activation (SiLU·mul / GELU) | – | `R·m·I_d·b_a` |
//! | MLP down, `W = I_d·h` | `2·R·W` | `n_e·W·b_w + R·(I_d + h)·b_a` |
//! | MoE router GEMM `W = h·E` (+ top-k and token-sort kernels) | `2·T·W` | `W·b_e + T·(h + E)·b_a` |
//! | 2 RMSNorms | – | `2 × 2·T·h·b_a` |
//! | 2 residual adds (fused into the norms) | – | `2 × 2·T·h·b_a` |
//! | 2 TP all-reduces (after attention, after MLP), `tp > 1` | – | ring, `T·h·b_a` bytes each |
//!
//! Dense MLP: `R = T` rows, `n_e = 1` copy of the weights. MoE: `R = T·k`
//! routed rows, weights of `n_e = min(E, T·k)` distinct experts read (an
//! upper bound; uniform random routing would give `E·(1 − (1 − k/E)^T)`), and
//! each expert GEMM has `R/n_e` rows, so its compute is
//! `2·W·(R + n_e·t_half) / (peak·eff_max)`.
//!
//! Attention: prefill at `eff_attn_prefill` of BF16 peak (FlashAttention
//! exploits the causal mask, hence pairs rather than `T_p·K_p`); decode at
//! `eff_attn_decode_flops` of BF16 peak and `eff_attn_decode_mem` of HBM
//! bandwidth — with ≤ 4 FLOP/byte it is memory-bound, linear in `K_d`.
//!
//! vLLM fuses each residual add into the following RMSNorm
//! (`fused_add_rms_norm`: read the sublayer output and the residual, write
//! the new residual and the normalised activations, `4·T·h·b_a` in all). The
//! residual add is therefore priced as the fused kernel's extra traffic
//! (read and write the residual stream) with no kernel floor of its own;
//! every other row above is at least one kernel of ≥ `t_kernel`.
//!
//! Per iteration:
//!
//! | operator | FLOPs | bytes |
//! |---|---|---|
//! | embedding lookup (first stage) | – | `T·h·(b_e + b_a)`; plus a TP all-reduce (vocab-parallel embedding) |
//! | final RMSNorm (last stage) | – | `2·T·h·b_a` |
//! | LM head on `S` rows, `W = (V/tp)·h` | `2·S·W` | `W·b_e + S·(h + V/tp)·b_a`; plus a TP gather of `S·V·b_a` logits |
//! | sampling | – | `t_sample · S` |
//!
//! ## Communication
//!
//! TP all-reduce of `B = T·h·b_a` bytes, ring bandwidth term (Patarasuk &
//! Yuan 2009) with a tree latency term:
//! `2·(tp−1)/tp · B / (link_bw·eff_link) + ⌈log2 tp⌉·link_latency`, with the
//! intra-node link when `tp ≤ devices_per_node` (on a fully connected mesh,
//! the `tp − 1` links of the group) and the inter-node network otherwise. There are `2·L + 1` per iteration when `tp > 1` (two per layer
//! plus the vocab-parallel embedding's). Logits gather:
//! `(tp−1)/tp · S·V·b_a / bw + latency`. See [`super::collectives`].
//!
//! PP: stage `i` hands `hidden_states` and `residual` (vLLM's
//! `IntermediateTensors`, `2·T·h·b_a` bytes) to stage `i+1`:
//! `bytes / (link_bw·eff_link) + latency`. Stages are laid out contiguously,
//! `tp` devices each; a hop uses the inter-node link when the two stages'
//! devices do not all sit in one node.
//!
//! ## Pipeline parallelism
//!
//! Layers are split as vLLM's `get_pp_indices` does: `⌊L/pp⌋` each, the
//! remainder given one layer each to the stages just before the last. The
//! iteration's latency is the sum over stages — `L` × per-layer time +
//! embedding (first stage) + final norm, LM head and sampling (last stage) +
//! `(pp−1)` hops. **Micro-batch overlap across iterations is not modelled**
//! here: a pipelined engine (vLLM's virtual engines) keeps `pp` batches in
//! flight and its throughput is limited by the slowest stage, which
//! [`Breakdown::critical_stage`] reports (at least `⌈L/pp⌉` layers) for an
//! engine that wants to model it.
//!
//! ## CPU overhead
//!
//! `cpu_base + cpu_seq · (prefill_seqs + decode_seqs)` is added to every
//! iteration, not overlapped with the GPU (vLLM v0 schedules, prepares
//! inputs and processes outputs synchronously between forward passes).
//!
//! ## Totals
//!
//! [`IterationCost::flops`] counts matmul and attention FLOPs (the MFU
//! convention; element-wise FLOPs are negligible and not counted) and
//! [`IterationCost::hbm_bytes`] all the bytes above, each summed over the
//! `tp × pp` devices. Times are f64 seconds, converted once to [`Nanos`](crate::units::Nanos)
//! (at least 1 ns for a non-empty batch; an empty batch costs 0).
//!
//! The calibration constants (`eff_max`, `t_half`, `eff_mem`, …) are the
//! fields of [`Calibration`], documented there with their default values and
//! sources.
//!
//! ## Cost of pricing
//!
//! [`AnalyticalModel::new`] precomputes every per-model constant;
//! [`TimeModel::iteration`] does no allocation, no loop, and a few float
//! operations per operator.

use super::calibration::Calibration;
use super::collectives::{self, Link};
use super::{BatchShape, IterationCost, TimeModel};
use crate::catalog::{DeviceSpec, Dtype, ModelSpec};
use crate::error::{Error, Result};
use crate::units::secs_to_nanos;

/// Bytes per activation element (BF16).
pub const ACTIVATION_BYTES: f64 = 2.0;

/// How one replica is parallelised and laid out on nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParallelConfig {
    /// Tensor-parallel degree (devices sharing every matrix).
    pub tp: u32,
    /// Pipeline-parallel degree (stages of consecutive layers).
    pub pp: u32,
    /// Devices per node; TP groups larger than a node, and pipeline hops that
    /// cross a node boundary, use the inter-node network.
    pub devices_per_node: u32,
}

impl ParallelConfig {
    pub fn new(tp: u32, pp: u32, devices_per_node: u32) -> Self {
        ParallelConfig {
            tp,
            pp,
            devices_per_node,
        }
    }

    /// `tp × pp` on nodes of the device's typical size.
    pub fn for_device(tp: u32, pp: u32, device: &DeviceSpec) -> Self {
        ParallelConfig::new(tp, pp, device.devices_per_node)
    }

    /// Devices of one replica.
    pub fn devices(&self) -> u32 {
        self.tp * self.pp
    }
}

/// Time of one iteration broken down by operator, in seconds, summed over
/// all layers and stages (so the GPU fields add up to the GPU time).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Breakdown {
    /// Embedding lookup (first stage).
    pub embedding: f64,
    /// QKV projection GEMM.
    pub qkv_proj: f64,
    /// Rotary embedding and KV-cache write kernels.
    pub rope_kv_write: f64,
    /// Attention of the prefill chunks (0 without prefill).
    pub prefill_attention: f64,
    /// Paged attention of the decoding sequences (0 without decodes).
    pub decode_attention: f64,
    /// Attention output projection GEMM.
    pub o_proj: f64,
    /// MLP: gate/up GEMM, activation, down GEMM; for MoE also the router.
    pub mlp: f64,
    /// Two RMSNorms per layer and the final norm.
    pub norms: f64,
    /// Two residual adds per layer (their extra bytes in vLLM's fused add+norm kernel).
    pub residual_adds: f64,
    /// LM head GEMM on the sampled rows.
    pub lm_head: f64,
    /// Sampler.
    pub sampling: f64,
    /// TP all-reduces and the logits gather.
    pub tp_comm: f64,
    /// Pipeline-stage activation hand-offs.
    pub pp_comm: f64,
    /// CPU scheduling / input-preparation overhead.
    pub cpu_overhead: f64,
    /// Wall time of the iteration: the sum of all fields above.
    pub total: f64,
    /// GPU time of the slowest pipeline stage (its layers, its share of
    /// embedding / LM head / sampling and its TP communication) — the
    /// throughput limit of a micro-batch-pipelined engine. Equals the GPU
    /// time without the CPU overhead when `pp = 1`.
    pub critical_stage: f64,
    /// One decoder layer's time (every stage runs `count × per_layer` of
    /// them), and the first and last stages' extras: embedding (+ its TP
    /// all-reduce); final norm, LM head, logits gather and sampling.
    pub per_layer: f64,
    pub first_stage_extra: f64,
    pub last_stage_extra: f64,
    /// Distinct experts whose weights each MoE layer reads (1 for dense models).
    pub active_experts: f64,
    /// Matmul + attention FLOPs summed over the replica's devices.
    pub flops: f64,
    /// HBM bytes summed over the replica's devices.
    pub hbm_bytes: f64,
}

impl Breakdown {
    /// Everything but the CPU overhead.
    pub fn gpu(&self) -> f64 {
        self.total - self.cpu_overhead
    }

    /// The iteration's cost (zero for an empty batch's all-zero breakdown,
    /// at least 1 ns otherwise).
    pub fn cost(&self) -> IterationCost {
        if self.total == 0.0 {
            return IterationCost::default();
        }
        let duration = secs_to_nanos(self.total).max(1);
        IterationCost {
            duration,
            flops: self.flops,
            hbm_bytes: self.hbm_bytes,
            host: secs_to_nanos(self.cpu_overhead),
            stage: secs_to_nanos(self.critical_stage + self.cpu_overhead).clamp(1, duration),
        }
    }
}

/// A weight GEMM's per-device constants.
#[derive(Debug, Clone, Copy, Default)]
struct Gemm {
    /// `2·W`: FLOPs per row.
    flops_per_row: f64,
    /// `W·b`: bytes of one copy of the weights.
    weight_bytes: f64,
    /// `(K + N)·b_a`: activation bytes per row.
    act_bytes_per_row: f64,
    /// `1 / (peak · eff_max)`.
    secs_per_flop: f64,
}

impl Gemm {
    fn new(in_dim: f64, out_dim: f64, weight_bytes_per_elem: f64, peak: f64, cal: &Calibration) -> Self {
        let w = in_dim * out_dim;
        Gemm {
            flops_per_row: 2.0 * w,
            weight_bytes: w * weight_bytes_per_elem,
            act_bytes_per_row: (in_dim + out_dim) * ACTIVATION_BYTES,
            secs_per_flop: 1.0
                / (peak
                    * if weight_bytes_per_elem < 2.0 {
                        cal.quantized_gemm_efficiency
                    } else {
                        cal.gemm_efficiency
                    }),
        }
    }
}

/// Time, FLOPs and bytes of one operator (per device).
#[derive(Debug, Clone, Copy)]
struct Cost {
    time: f64,
    flops: f64,
    bytes: f64,
}

/// The analytical time model for one replica configuration.
#[derive(Debug, Clone)]
pub struct AnalyticalModel {
    par: ParallelConfig,
    cal: Calibration,
    layers: f64,
    /// Layer counts of the first stage, the last stage and the largest middle stage (0 if none).
    stage_layers: (f64, f64, f64),
    /// Layer count of every stage, and each stage's hand-off to the next
    /// as `per_row·T + fixed` seconds (the last stage has none). Read only
    /// by `stage_times` (tracing); `stage_layers` and `pp_per_row` /
    /// `pp_fixed` are their summaries, kept so that pricing an iteration
    /// does not walk the stages.
    stage_counts: Vec<u32>,
    hops: Vec<(f64, f64)>,
    // Shared rates.
    inv_mem: f64,
    t_half: f64,
    floor: f64,
    // Per-layer weight GEMMs (per device).
    qkv: Gemm,
    o: Gemm,
    gate_up: Gemm,
    down: Gemm,
    router: Option<Gemm>,
    num_experts: f64,
    experts_per_token: f64,
    /// Activation-function bytes per routed row.
    act_fn_bytes_per_row: f64,
    /// RoPE bytes per token; KV-cache write bytes per token.
    rope_bytes_per_row: f64,
    kv_write_bytes_per_row: f64,
    // Attention (per device, per layer).
    attn_flops_per_pair: f64,
    kv_bytes_per_token: f64,
    q_o_bytes_per_row: f64,
    prefill_attn_secs_per_flop: f64,
    decode_attn_secs_per_flop: f64,
    decode_attn_secs_per_byte: f64,
    /// One RMSNorm's bytes per row; one residual add's bytes per row.
    norm_bytes_per_row: f64,
    residual_bytes_per_row: f64,
    // Per iteration.
    embed_bytes_per_row: f64,
    lm_head: Gemm,
    /// TP all-reduce of one `T·h·b_a` message: `ar_per_row·T + ar_fixed`.
    ar_per_row: f64,
    ar_fixed: f64,
    /// Decoder layers of the whole model (all stages launch their kernels in parallel,
    /// but each stage's host launches its own layers; the pipeline sums stages).
    model_layers: f64,
    /// Weights are 8-bit or narrower (W8A8 paths quantise activations per layer).
    quantized: bool,
    /// Logits gather: `gather_per_seq·S + gather_fixed`.
    gather_per_seq: f64,
    gather_fixed: f64,
    /// All PP hops together: `pp_per_row·T + pp_fixed`.
    pp_per_row: f64,
    pp_fixed: f64,
    peak_flops: f64,
    peak_bw: f64,
}

fn infeasible(model: &ModelSpec, par: &ParallelConfig, what: String) -> Error {
    Error::Infeasible(format!(
        "model `{}` with tp={} pp={}: {what}",
        model.name, par.tp, par.pp
    ))
}

/// Layer count of each pipeline stage, as vLLM's `get_pp_indices` splits them:
/// `⌊L/pp⌋` each, the remainder one each to the stages just before the last.
pub fn stage_layer_counts(layers: u32, pp: u32) -> Vec<u32> {
    let pp = pp.max(1) as usize;
    let mut parts = vec![layers / pp as u32; pp];
    let rem = (layers % pp as u32) as usize;
    for i in 2..rem + 2 {
        parts[pp - i] += 1;
    }
    parts
}

impl AnalyticalModel {
    /// Precomputes the per-iteration constants of `model` on `device` with the
    /// given dtypes, parallelism and calibration.
    ///
    /// Errors with [`Error::Infeasible`] when `tp` does not divide the query
    /// heads or the MLP width, when `tp` and the KV heads divide neither way,
    /// or when `pp` exceeds the layer count; with [`Error::Config`] when a
    /// degree or the calibration is out of range.
    pub fn new(
        model: &ModelSpec,
        device: &DeviceSpec,
        weight_dtype: Dtype,
        kv_dtype: Dtype,
        par: ParallelConfig,
        cal: Calibration,
    ) -> Result<Self> {
        cal.validate()?;
        for (key, v) in [
            ("tp", par.tp),
            ("pp", par.pp),
            ("devices_per_node", par.devices_per_node),
        ] {
            if v == 0 {
                return Err(Error::config(
                    "parallel config",
                    format!("`{key}` must be ≥ 1, found 0"),
                ));
            }
        }
        for (key, v) in [
            ("memory_bandwidth", device.memory_bandwidth),
            ("flops_bf16", device.flops_bf16),
            ("intra_node_bandwidth", device.intra_node_bandwidth),
            ("inter_node_bandwidth", device.inter_node_bandwidth),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::config(
                    format!("device `{}`", device.name),
                    format!("`{key}` must be a positive number, found {v}"),
                ));
            }
        }
        if model.num_layers == 0 || model.num_heads == 0 || model.num_kv_heads == 0 {
            return Err(infeasible(
                model,
                &par,
                "the model needs at least one layer, one head and one KV head".into(),
            ));
        }
        let tp = par.tp;
        if !model.num_heads.is_multiple_of(tp) {
            return Err(infeasible(
                model,
                &par,
                format!(
                    "tp={tp} does not divide the {} attention heads (tp must divide num_heads)",
                    model.num_heads
                ),
            ));
        }
        let kv = model.num_kv_heads;
        if !kv.is_multiple_of(tp) && !tp.is_multiple_of(kv) {
            return Err(infeasible(
                model,
                &par,
                format!(
                    "tp={tp} and the {kv} KV heads divide neither way (tp must divide num_kv_heads, \
                     or num_kv_heads divide tp so that KV heads are replicated)"
                ),
            ));
        }
        if !model.intermediate_size.is_multiple_of(tp) {
            return Err(infeasible(
                model,
                &par,
                format!(
                    "tp={tp} does not divide the MLP intermediate size {}",
                    model.intermediate_size
                ),
            ));
        }
        if par.pp > model.num_layers {
            return Err(infeasible(
                model,
                &par,
                format!(
                    "pp={} exceeds the {} layers (every stage needs a layer)",
                    par.pp, model.num_layers
                ),
            ));
        }

        let a = ACTIVATION_BYTES;
        let tpf = tp as f64;
        let h = model.hidden_size as f64;
        let d = model.head_dim as f64;
        let n_q = (model.num_heads / tp) as f64;
        let n_kv = if tp <= kv { (kv / tp) as f64 } else { 1.0 };
        let i_d = model.intermediate_size as f64 / tpf;
        let vocab = model.vocab_size as f64;
        let b_w = weight_dtype.bytes();
        let b_kv = kv_dtype.bytes();
        let (embed_dtype, b_e) = if b_w < 2.0 {
            (Dtype::Bf16, 2.0)
        } else {
            (weight_dtype, b_w)
        };
        let peak_w = device.peak_flops(weight_dtype);
        let peak_16 = device.peak_flops(Dtype::Bf16);
        let peak_e = device.peak_flops(embed_dtype);
        let bw = device.memory_bandwidth;
        if !(peak_w.is_finite() && peak_w > 0.0) {
            return Err(Error::config(
                format!("device `{}`", device.name),
                format!(
                    "peak FLOP/s for {} must be positive, found {peak_w}",
                    weight_dtype.name()
                ),
            ));
        }

        let up_mats = if model.gated_mlp { 2.0 } else { 1.0 };
        let mlp_mats = up_mats + 1.0;
        let qkv_out = (n_q + 2.0 * n_kv) * d;
        let router = model
            .is_moe()
            .then(|| Gemm::new(h, model.num_experts as f64, b_e, peak_e, &cal));

        // Pipeline stages.
        let counts = stage_layer_counts(model.num_layers, par.pp);
        let first = counts[0] as f64;
        let last = counts[counts.len() - 1] as f64;
        let mid = if counts.len() > 2 {
            counts[1..counts.len() - 1].iter().copied().max().unwrap_or(0) as f64
        } else {
            0.0
        };

        // Links.
        // A TP group inside a node uses the links among its `tp` devices; a
        // PP hand-off is one device pair.
        let intra = Link::intra_node_group(device, &cal, 2);
        let inter = Link::inter_node(device, &cal);
        let tp_link = if tp <= par.devices_per_node {
            Link::intra_node_group(device, &cal, tp)
        } else {
            inter
        };
        let (ar_per_byte, ar_ring_latency) = collectives::ring_all_reduce_coefficients(tp, tp_link);
        let ar_fixed = if tp > 1 {
            ar_ring_latency + cal.collective_latency
        } else {
            0.0
        };
        // collectives::gather(S·V·b_a) = gather_per_seq·S + gather_fixed.
        let (gather_per_seq, gather_fixed) = if tp > 1 {
            ((tpf - 1.0) / tpf * vocab * a / tp_link.bandwidth, tp_link.latency)
        } else {
            (0.0, 0.0)
        };
        // PP hops: stage i occupies devices [i·tp, (i+1)·tp).
        let hop_bytes_per_row = 2.0 * h * a;
        let (mut pp_per_row, mut pp_fixed) = (0.0, 0.0);
        let mut hops = Vec::new();
        let dpn = par.devices_per_node as u64;
        for i in 0..par.pp.saturating_sub(1) as u64 {
            let lo = i * tp as u64;
            let hi = (i + 2) * tp as u64 - 1;
            let link = if lo / dpn == hi / dpn { intra } else { inter };
            // collectives::send_recv(T·hop_bytes_per_row, link), split into its linear form.
            hops.push((hop_bytes_per_row / link.bandwidth, link.latency));
            pp_per_row += hop_bytes_per_row / link.bandwidth;
            pp_fixed += link.latency;
        }

        Ok(AnalyticalModel {
            par,
            cal,
            layers: model.num_layers as f64,
            stage_layers: (first, last, mid),
            stage_counts: counts,
            hops,
            inv_mem: 1.0 / (bw * cal.memory_efficiency),
            t_half: cal.gemm_half_tokens,
            floor: cal.min_kernel_time,
            qkv: Gemm::new(h, qkv_out, b_w, peak_w, &cal),
            o: Gemm::new(n_q * d, h, b_w, peak_w, &cal),
            gate_up: Gemm::new(h, up_mats * i_d, b_w, peak_w, &cal),
            down: Gemm::new(i_d, h, b_w, peak_w, &cal),
            router,
            num_experts: model.num_experts as f64,
            experts_per_token: model.experts_per_token.min(model.num_experts) as f64,
            act_fn_bytes_per_row: mlp_mats * i_d * a,
            rope_bytes_per_row: 2.0 * (n_q + n_kv) * d * a,
            kv_write_bytes_per_row: 2.0 * n_kv * d * (a + b_kv),
            attn_flops_per_pair: 4.0 * d * n_q,
            kv_bytes_per_token: 2.0 * n_kv * d * b_kv,
            q_o_bytes_per_row: 2.0 * n_q * d * a,
            prefill_attn_secs_per_flop: 1.0 / (peak_16 * cal.prefill_attention_efficiency),
            decode_attn_secs_per_flop: 1.0 / (peak_16 * cal.decode_attention_compute_efficiency),
            decode_attn_secs_per_byte: 1.0 / (bw * cal.decode_attention_memory_efficiency),
            norm_bytes_per_row: 2.0 * h * a,
            residual_bytes_per_row: 2.0 * h * a,
            embed_bytes_per_row: h * (b_e + a),
            lm_head: Gemm::new(h, vocab / tpf, b_e, peak_e, &cal),
            ar_per_row: ar_per_byte * h * a,
            ar_fixed,
            quantized: weight_dtype.bytes() < 2.0,
            model_layers: model.num_layers as f64,
            gather_per_seq,
            gather_fixed,
            pp_per_row,
            pp_fixed,
            peak_flops: peak_w * par.devices() as f64,
            peak_bw: bw * par.devices() as f64,
        })
    }

    pub fn parallel(&self) -> ParallelConfig {
        self.par
    }

    /// Decoder layers summed over stages (the `L` of the formulas).
    pub fn layers(&self) -> f64 {
        self.layers
    }

    /// One layer's KV-cache write kernel for `tokens` new tokens, seconds.
    pub fn kv_write_time(&self, tokens: f64) -> f64 {
        self.mem_op(tokens * self.kv_write_bytes_per_row)
    }

    /// The LM head GEMM over `rows` rows (training computes logits for every
    /// token, serving only for the sampled rows), seconds.
    pub fn lm_head_time(&self, rows: f64) -> f64 {
        self.gemm(&self.lm_head, rows, 1.0).time
    }

    /// A memory-bound kernel moving `bytes` per device, seconds.
    pub fn mem_time(&self, bytes: f64) -> f64 {
        self.mem_op(bytes)
    }

    /// One TP all-reduce of `tokens` rows of hidden states, seconds (0 when `tp = 1`).
    pub fn all_reduce_time(&self, tokens: f64) -> f64 {
        if self.par.tp > 1 {
            self.ar_per_row * tokens + self.ar_fixed
        } else {
            0.0
        }
    }

    /// The GPU time of an iteration from one layer's time and the stage
    /// extras (first stage: embedding; last: final norm, LM head, sampling),
    /// and the slowest stage's time (see [`Breakdown::critical_stage`]).
    pub fn compose(
        &self,
        b: &BatchShape,
        layer_time: f64,
        first_extra: f64,
        last_extra: f64,
        pp_comm: f64,
    ) -> (f64, f64) {
        let layers = self.layers;
        let (first, last, mid) = self.stage_layers;
        let critical_stage = if self.par.pp == 1 {
            layers * layer_time + first_extra + last_extra
        } else {
            (first * layer_time + first_extra)
                .max(last * layer_time + last_extra)
                .max(mid * layer_time)
        };
        let mut gpu = layers * layer_time + first_extra + last_extra + pp_comm;
        if b.prefill_tokens > 0 {
            // Eager iteration: the host launches every kernel, overlapping
            // the GPU's work only in part (`Calibration::eager_launch_overlap`).
            let launch = self.eager_launch_floor();
            // launch + gpu − o·min, written so that o = 1 is exactly the max.
            gpu = gpu.max(launch) + (1.0 - self.cal.eager_launch_overlap) * gpu.min(launch);
        }
        (gpu, critical_stage)
    }

    /// Each stage's GPU time, seconds, of an iteration of `tokens` tokens
    /// broken down as `b` (this model's or a profile's): its layers × one
    /// layer's time, the first stage's and the last stage's extras, and its
    /// hand-off to the next stage — `b.pp_comm` shared over the hops as
    /// this model prices them (a profile measures their sum). Empty when
    /// `pp = 1` or the batch is empty.
    pub fn stage_times_of(&self, b: &Breakdown, tokens: f64, out: &mut Vec<f64>) {
        out.clear();
        if self.par.pp <= 1 || b.total == 0.0 {
            return;
        }
        let hop = |&(per_row, fixed): &(f64, f64)| per_row * tokens + fixed;
        let priced: f64 = self.hops.iter().map(hop).sum();
        let scale = if priced > 0.0 { b.pp_comm / priced } else { 0.0 };
        let last = self.stage_counts.len() - 1;
        out.extend(self.stage_counts.iter().enumerate().map(|(i, &n)| {
            let extra = match i {
                0 => b.first_stage_extra,
                i if i == last => b.last_stage_extra,
                _ => 0.0,
            };
            n as f64 * b.per_layer + extra + self.hops.get(i).map_or(0.0, |h| scale * hop(h))
        }));
    }

    /// Lower bound of an eager (prefill) iteration's GPU time set by the host
    /// launching every kernel (see `Calibration::eager_launch_per_layer`).
    pub fn eager_launch_floor(&self) -> f64 {
        self.model_layers
            * (self.cal.eager_launch_per_layer
                + if self.quantized {
                    self.cal.quantized_launch_per_layer
                } else {
                    0.0
                })
    }

    /// A weight GEMM over `rows` rows reading `copies` copies of the weights
    /// (distinct experts), each copy's GEMM padded by `t_half` rows.
    #[inline(always)]
    fn gemm(&self, g: &Gemm, rows: f64, copies: f64) -> Cost {
        let flops = g.flops_per_row * rows;
        let bytes = copies * g.weight_bytes + rows * g.act_bytes_per_row;
        let compute = g.flops_per_row * (rows + copies * self.t_half) * g.secs_per_flop;
        Cost {
            time: compute.max(bytes * self.inv_mem).max(self.floor),
            flops,
            bytes,
        }
    }

    /// A memory-bound (element-wise) kernel.
    #[inline(always)]
    fn mem_op(&self, bytes: f64) -> f64 {
        (bytes * self.inv_mem).max(self.floor)
    }

    /// Time of one forward pass broken down by operator.
    #[inline]
    pub fn breakdown(&self, b: &BatchShape) -> Breakdown {
        if b.is_empty() {
            return Breakdown::default();
        }
        let t = b.total_tokens() as f64;
        let t_p = b.prefill_tokens as f64;
        let dec = b.decode_seqs as f64;
        let seqs = b.prefill_seqs as f64 + dec;
        let layers = self.layers;
        let floor = self.floor;

        // ---- one layer, per device ----
        let qkv = self.gemm(&self.qkv, t, 1.0);
        let o = self.gemm(&self.o, t, 1.0);

        let rope_bytes = t * self.rope_bytes_per_row;
        let kv_write_bytes = t * self.kv_write_bytes_per_row;
        let rope_kv = self.mem_op(rope_bytes) + self.mem_op(kv_write_bytes);

        let (pre_attn, pre_flops, pre_bytes) = if b.prefill_seqs > 0 {
            let flops = b.prefill_attn_pairs * self.attn_flops_per_pair;
            let bytes = b.prefill_kv_tokens as f64 * self.kv_bytes_per_token + t_p * self.q_o_bytes_per_row;
            let time = (flops * self.prefill_attn_secs_per_flop)
                .max(bytes * self.inv_mem)
                .max(floor);
            (time, flops, bytes)
        } else {
            (0.0, 0.0, 0.0)
        };
        let (dec_attn, dec_flops, dec_bytes) = if b.decode_seqs > 0 {
            let kv_tokens = b.decode_kv_tokens as f64;
            let flops = kv_tokens * self.attn_flops_per_pair;
            let bytes = kv_tokens * self.kv_bytes_per_token + dec * self.q_o_bytes_per_row;
            let time = (flops * self.decode_attn_secs_per_flop)
                .max(bytes * self.decode_attn_secs_per_byte)
                .max(floor);
            (time, flops, bytes)
        } else {
            (0.0, 0.0, 0.0)
        };

        // MLP: dense (R = T, one copy) or MoE (R = T·k, n_e distinct experts).
        let rows = t * self.experts_per_token;
        let experts = rows.min(self.num_experts);
        let gate_up = self.gemm(&self.gate_up, rows, experts);
        let down = self.gemm(&self.down, rows, experts);
        let act_bytes = rows * self.act_fn_bytes_per_row;
        let mut mlp_time = gate_up.time + down.time + self.mem_op(act_bytes);
        let mut mlp_flops = gate_up.flops + down.flops;
        let mut mlp_bytes = gate_up.bytes + down.bytes + act_bytes;
        if let Some(r) = &self.router {
            let router = self.gemm(r, t, 1.0);
            // + top-k softmax and token-sorting kernels.
            mlp_time += router.time + 2.0 * floor;
            mlp_flops += router.flops;
            mlp_bytes += router.bytes;
        }

        let norm_bytes = t * self.norm_bytes_per_row;
        let norm = self.mem_op(norm_bytes);
        let residual_bytes = t * self.residual_bytes_per_row;
        let residual = residual_bytes * self.inv_mem;
        let all_reduce = self.all_reduce_time(t);

        // Fixed per-layer costs beyond the rooflines (see `Calibration`).
        let layer_fixed = if b.prefill_tokens > 0 {
            self.cal.eager_layer_overhead
        } else {
            self.cal.layer_overhead
        } + if self.quantized {
            self.cal.quantized_layer_overhead
        } else {
            0.0
        };
        let layer_time = layer_fixed
            + qkv.time
            + rope_kv
            + pre_attn
            + dec_attn
            + o.time
            + mlp_time
            + 2.0 * norm
            + 2.0 * residual
            + 2.0 * all_reduce;
        let layer_flops = qkv.flops + pre_flops + dec_flops + o.flops + mlp_flops;
        let layer_bytes = qkv.bytes
            + rope_bytes
            + kv_write_bytes
            + pre_bytes
            + dec_bytes
            + o.bytes
            + mlp_bytes
            + 2.0 * norm_bytes
            + 2.0 * residual_bytes;

        // ---- per iteration ----
        let embed_bytes = t * self.embed_bytes_per_row;
        let embedding = self.mem_op(embed_bytes);
        let final_norm = norm;
        let lm = self.gemm(&self.lm_head, seqs, 1.0);
        let gather = if self.par.tp > 1 {
            self.gather_per_seq * seqs + self.gather_fixed
        } else {
            0.0
        };
        let sampling = self.cal.sampling_per_seq * seqs;
        let pp_comm = self.pp_per_row * t + self.pp_fixed;
        let cpu = self.cal.cpu_overhead_base + self.cal.cpu_overhead_per_seq * seqs;

        let first_extra = embedding + all_reduce;
        let last_extra = final_norm + lm.time + gather + sampling;
        let (gpu, critical_stage) = self.compose(b, layer_time, first_extra, last_extra, pp_comm);
        let tpf = self.par.tp as f64;
        Breakdown {
            embedding,
            qkv_proj: layers * qkv.time,
            rope_kv_write: layers * rope_kv,
            prefill_attention: layers * pre_attn,
            decode_attention: layers * dec_attn,
            o_proj: layers * o.time,
            mlp: layers * mlp_time,
            norms: layers * 2.0 * norm + final_norm,
            residual_adds: layers * 2.0 * residual,
            lm_head: lm.time,
            sampling,
            tp_comm: (2.0 * layers + 1.0) * all_reduce + gather,
            pp_comm,
            cpu_overhead: cpu,
            total: gpu + cpu,
            critical_stage,
            per_layer: layer_time,
            first_stage_extra: first_extra,
            last_stage_extra: last_extra,
            active_experts: experts,
            flops: tpf * (layers * layer_flops + lm.flops),
            hbm_bytes: tpf * (layers * layer_bytes + embed_bytes + norm_bytes + lm.bytes),
        }
    }
}

impl TimeModel for AnalyticalModel {
    #[inline]
    fn iteration(&self, batch: &BatchShape) -> IterationCost {
        self.breakdown(batch).cost()
    }

    /// Stage `i`: its layers × one layer's time, the first stage's
    /// embedding, the last stage's final norm, LM head and sampling, and
    /// its hand-off to stage `i + 1`. They add up to the iteration's GPU
    /// time, except that an eager prefill cannot end before the host's last
    /// launch (`eager_launch_floor`), which the trace spreads over the
    /// stages in proportion.
    fn stage_times(&self, batch: &BatchShape, out: &mut Vec<f64>) {
        self.stage_times_of(&self.breakdown(batch), batch.total_tokens() as f64, out);
    }

    fn peak_rates(&self) -> (f64, f64) {
        (self.peak_flops, self.peak_bw)
    }
}

#[cfg(test)]
mod tests;
