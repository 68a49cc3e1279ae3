//! What one micro-batch's passes cost on one device of a training plan:
//! forward (F), backward-input (B) and backward-weight (W) per decoder
//! layer, the first stage's embedding and the last stage's LM head and
//! loss, the activation send between stages, and the communication inside
//! each pass (TP collectives, EP all-to-all, the context-parallel KV ring,
//! ZeRO-3 parameter gathers).
//!
//! Every operator is priced by the serving time model
//! (`AnalyticalModel::breakdown` of a prefill of the micro-batch's
//! sequences), so training and serving share one roofline and one
//! calibration; what training adds is which operators each pass runs:
//! - **F**: the layer's GEMMs, causal attention over the whole sequence,
//!   RoPE, norms and residual adds (no KV-cache write), and 2 TP
//!   collectives (Megatron-LM's `g` operators; with sequence parallelism a
//!   reduce-scatter + all-gather of the same bytes, Korthikanti et al. 2022).
//! - **B** (input gradients): GEMMs with the forward's FLOPs (`dX = dY·Wᵀ`),
//!   FlashAttention's backward at 2.5× its forward (5 matrix products to the
//!   forward's 2, Dao 2023 §3.1), element-wise kernels twice (read the saved
//!   input and the incoming gradient), 2 TP collectives; plus the
//!   recomputed forward under `recompute = "full"` (Korthikanti et al.).
//! - **W** (weight gradients): GEMMs with the forward's FLOPs (`dW = Xᵀ·dY`,
//!   Qi et al. 2024's B/W split). Folded into B by schedules that do not
//!   split the backward.
//!
//! Serving-only host terms (CPU scheduling, eager launch floors, per-layer
//! launch gaps, sampling) are not part of any pass: a training step is one
//! long graph whose launches run ahead of the GPU.
//!
//! Communication inside a pass is not overlapped with it except where the
//! technique is an overlap: the context-parallel KV ring runs under the
//! attention it feeds (Liu et al. 2023, Ring Attention) and ZeRO-3 gathers
//! the next layer's parameters under the current layer (Rajbhandari et al.
//! 2020); only what exceeds the compute is exposed.
//!
//! Ranks are ordered as Megatron-LM orders them (tensor, context, data with
//! experts inside it, then pipeline), which decides which groups stay
//! inside a node: a group of `n` ranks at stride `k` is intra-node when
//! `n·k` devices fit in one.

use super::memory::Recompute;
use crate::catalog::{DeviceSpec, Dtype, ModelSpec};
use crate::error::Result;
use crate::timing::collectives::{self, Link};
use crate::timing::{AnalyticalModel, BatchShape, Calibration, ParallelConfig};

/// Bytes of one bf16 value: activations, weights and gradients.
const BF16: f64 = 2.0;
/// FlashAttention's backward FLOPs over its forward's (Dao 2023, §3.1).
const ATTENTION_BACKWARD_RATIO: f64 = 2.5;

/// What the pass costs depend on.
#[derive(Debug, Clone, Copy)]
pub struct CostPlan<'a> {
    pub model: &'a ModelSpec,
    pub device: &'a DeviceSpec,
    pub calibration: Calibration,
    pub devices_per_node: u32,
    pub tp: u32,
    pub cp: u32,
    pub dp: u32,
    pub ep: u32,
    pub sequence_parallel: bool,
    pub flash_attention: bool,
    pub micro_batch: u32,
    pub seq_len: u32,
    pub zero_stage: u8,
    pub recompute: Recompute,
}

/// Seconds of one pass of one decoder layer, communication inside it included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LayerCost {
    pub f: f64,
    pub b: f64,
    pub w: f64,
    /// The communication part of `f`, `b` and `w` (TP and EP collectives,
    /// and whatever the CP ring and ZeRO-3 gathers leave exposed).
    pub comm_f: f64,
    pub comm_b: f64,
    pub comm_w: f64,
}

/// Seconds a stage's first or last position adds to its passes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Extra {
    pub f: f64,
    pub b: f64,
    pub w: f64,
}

/// Everything a schedule needs to time one micro-batch anywhere in the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PassCosts {
    pub layer: LayerCost,
    /// Embedding lookup (F) and its gradient's scatter-add (W), on the stage holding layer 0.
    pub first: Extra,
    /// Final norm, LM head over every token, cross-entropy loss, on the last stage.
    pub last: Extra,
    /// Bytes of the activation (or its gradient) one stage sends the next per micro-batch.
    pub send_bytes: f64,
}

/// The links of the plan's groups.
#[derive(Debug, Clone, Copy)]
pub struct Links {
    pub tp: Link,
    pub cp: Link,
    pub ep: Link,
    pub dp: Link,
    /// Between pipeline neighbours in one node, and across nodes.
    pub pp_intra: Link,
    pub pp_inter: Link,
}

impl CostPlan<'_> {
    /// Ranks of one pipeline stage (`tp·cp·dp`): the stride of the pipeline group.
    pub fn stage_ranks(&self) -> u64 {
        self.tp as u64 * self.cp as u64 * self.dp as u64
    }

    /// Tokens of one micro-batch on one device (its sequences' share under CP).
    pub fn local_tokens(&self) -> f64 {
        self.micro_batch as f64 * self.seq_len as f64 / self.cp as f64
    }

    /// The links each group uses (see the module docs for the rank order).
    pub fn links(&self) -> Links {
        let (d, cal, dpn) = (self.device, &self.calibration, self.devices_per_node as u64);
        let group = |n: u32, stride: u64| {
            if n as u64 * stride <= dpn {
                Link::intra_node_group(d, cal, n)
            } else {
                Link::inter_node(d, cal)
            }
        };
        let inner = self.tp as u64 * self.cp as u64;
        Links {
            tp: group(self.tp, 1),
            cp: group(self.cp, self.tp as u64),
            ep: group(self.ep, inner),
            dp: group(self.dp, inner),
            pp_intra: Link::intra_node_group(d, cal, 2),
            pp_inter: Link::inter_node(d, cal),
        }
    }

    /// The link of the hand-off from pipeline stage `i` to `i + 1`: intra-node
    /// when both stages' ranks lie in one node.
    pub fn hop_link(&self, i: u32, links: &Links) -> Link {
        let g = self.stage_ranks();
        let dpn = self.devices_per_node as u64;
        let lo = i as u64 * g;
        let hi = (i as u64 + 2) * g - 1;
        if lo / dpn == hi / dpn {
            links.pp_intra
        } else {
            links.pp_inter
        }
    }

    /// Prices the passes.
    pub fn costs(&self) -> Result<PassCosts> {
        let model = self.model;
        // Each device holds E/ep experts and, with balanced routing, computes
        // k rows per local token whichever experts they go to. (Below k local
        // experts the model reads k experts' weights: an overestimate only
        // where the GEMMs are memory-bound, never at training batch sizes.)
        let experts_here = (model.num_experts / self.ep.max(1)).max(1);
        let mut local = model.clone();
        local.num_experts = experts_here.max(model.experts_per_token);
        let par = ParallelConfig {
            tp: self.tp,
            pp: 1,
            devices_per_node: self.devices_per_node,
        };
        let am = AnalyticalModel::new(
            &local,
            self.device,
            Dtype::Bf16,
            Dtype::Bf16,
            par,
            self.calibration,
        )?;
        let links = self.links();

        let (b, s) = (self.micro_batch as f64, self.seq_len as f64);
        let cp = self.cp as f64;
        let t = self.local_tokens();
        // Causal attention of the whole sequence, its pairs shared evenly by
        // the CP ranks (load-balanced chunking), each reading all keys.
        let shape = BatchShape {
            prefill_seqs: self.micro_batch,
            prefill_tokens: t.round() as u64,
            prefill_attn_pairs: b * s * (s + 1.0) / 2.0 / cp,
            prefill_kv_tokens: (b * s).round() as u64,
            decode_seqs: 0,
            decode_kv_tokens: 0,
        };
        let bd = am.breakdown(&shape);
        let l = am.layers();
        let norm = bd.norms / (2.0 * l + 1.0);
        // The MLP's activation function is element-wise (its backward is
        // part of B, not a weight gradient): take it out of the GEMMs.
        let mlp_mats = if model.gated_mlp { 3.0 } else { 2.0 };
        let routed = t * model.experts_per_token.max(1) as f64;
        let act_fn = am.mem_time(routed * mlp_mats * model.intermediate_size as f64 / self.tp as f64 * BF16);
        let gemm = (bd.qkv_proj + bd.o_proj + bd.mlp) / l - act_fn;
        let attention = bd.prefill_attention / l;
        let elementwise =
            bd.rope_kv_write / l - am.kv_write_time(t) + 2.0 * norm + bd.residual_adds / l + act_fn;
        let compute_f = gemm + attention + elementwise;
        let attention_b = ATTENTION_BACKWARD_RATIO * attention;
        let compute_b = gemm + attention_b + 2.0 * elementwise;
        let compute_w = gemm;

        // TP: two collectives of the layer's activations each way.
        let tp = 2.0 * am.all_reduce_time(t);
        // EP: a dispatch and a combine all-to-all in each pass (F and B) of
        // every routed row leaving the device.
        let h = model.hidden_size as f64;
        let sp = if self.sequence_parallel {
            self.tp as f64
        } else {
            1.0
        };
        let ep = if model.is_moe() && self.ep > 1 {
            let n = self.ep as f64;
            let bytes = t * model.experts_per_token as f64 * h * BF16 / sp;
            2.0 * ((n - 1.0) / n * bytes / links.ep.bandwidth + links.ep.latency)
        } else {
            0.0
        };
        // CP: each rank's K and V go round the ring (cp − 1 steps) under the
        // attention; the backward sends K, V and their gradients.
        let kv_heads = if self.tp <= model.num_kv_heads {
            (model.num_kv_heads / self.tp) as f64
        } else {
            1.0
        };
        let kv_bytes = t * 2.0 * kv_heads * model.head_dim as f64 * BF16;
        let ring = if self.cp > 1 {
            (cp - 1.0) * collectives::send_recv(kv_bytes, links.cp)
        } else {
            0.0
        };
        let cp_f = (ring - attention).max(0.0);
        let cp_b = (2.0 * ring - attention_b).max(0.0);
        // ZeRO-3: the layer's parameters gathered before F and before B, its
        // gradients reduce-scattered after W, each under that pass's compute.
        let (z_f, z_b, z_w) = if self.zero_stage >= 3 && self.dp > 1 {
            let layer_params = (model.attn_params_per_layer() + model.router_params_per_layer())
                / self.tp as f64
                + experts_here as f64 * model.mlp_params_per_expert() / self.tp as f64;
            let n = self.dp as f64;
            let gather = (n - 1.0) / n * layer_params * BF16 / links.dp.bandwidth + links.dp.latency;
            (
                (gather - compute_f).max(0.0),
                (gather - compute_b).max(0.0),
                (gather - compute_w).max(0.0),
            )
        } else {
            (0.0, 0.0, 0.0)
        };
        let recompute = match self.recompute {
            Recompute::None => 0.0,
            // With FlashAttention the scores are never stored: nothing to recompute.
            Recompute::Selective if self.flash_attention => 0.0,
            Recompute::Selective => attention,
            Recompute::Full => compute_f + tp + ep + cp_f,
        };
        let comm_f = tp + ep + cp_f + z_f;
        let comm_b = tp + ep + cp_b + z_b;
        let layer = LayerCost {
            f: compute_f + comm_f,
            b: compute_b + recompute + comm_b,
            w: compute_w + z_w,
            comm_f,
            comm_b,
            comm_w: z_w,
        };

        // First stage: the vocabulary-parallel embedding and its all-reduce;
        // its gradient is a scatter-add into the table (a weight gradient).
        let first = Extra {
            f: bd.embedding + am.all_reduce_time(t),
            b: 0.0,
            w: bd.embedding,
        };
        // Last stage: final norm, logits of every token, fp32 softmax
        // cross-entropy over the vocabulary shard (written, then read) with
        // its two small all-reduces (max and sum of t values, 4 bytes each).
        let v = model.vocab_size as f64 / self.tp as f64;
        let lm = am.lm_head_time(t);
        let logits_bytes = t * v * 4.0;
        let small = 2.0 * am.all_reduce_time(t * 4.0 / (h * BF16));
        let last = Extra {
            f: norm + lm + am.mem_time(2.0 * logits_bytes) + small,
            b: lm + am.mem_time(logits_bytes) + 2.0 * norm + am.all_reduce_time(t),
            w: lm,
        };
        Ok(PassCosts {
            layer,
            first,
            last,
            send_bytes: t * h * BF16 / sp,
        })
    }
}

#[cfg(test)]
#[path = "cost_tests.rs"]
mod tests;
