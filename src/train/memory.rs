//! The per-device memory of a training plan: model states (weights,
//! gradients, optimizer state), stored activations, the working memory of
//! the pass running now, and what activation offload moves to the host.
//!
//! This module owns the byte counts only. How many micro-batches'
//! activations a device holds at once is not a formula here: the pipeline
//! executor measures it ([`super::pipeline::Timeline::peak_activations`])
//! and the caller passes it in as `in_flight`.
//!
//! Sources:
//! - Model states: Rajbhandari et al., "ZeRO: Memory Optimizations Toward
//!   Training Trillion Parameter Models" (SC'20), §3 and §5: mixed-precision
//!   training keeps bf16 weights (2 B/param) and gradients (2 B/param) and
//!   `K` bytes/param of optimizer state (Adam: fp32 master weights and two
//!   fp32 moments, `K = 12`). ZeRO-1 shards the optimizer state over the
//!   data-parallel group, ZeRO-2 also the gradients, ZeRO-3 also the weights.
//!   Megatron-LM's distributed optimizer shards over the DP×CP group, so
//!   dense parameters shard over `dp·cp`; expert parameters are replicated
//!   only across the `dp/ep` expert-data-parallel ranks (Megatron-LM's
//!   expert parallelism lives inside DP), so they shard over `(dp/ep)·cp`.
//! - Activations: Korthikanti et al., "Reducing Activation Recomputation in
//!   Large Transformer Models" (MLSys'23), §4, re-derived tensor by tensor
//!   for the catalog's architectures (see [`MemoryPlan::activation_bytes_per_layer`]).
//! - Offload: activation offload to host memory as in PipeOffload (Wan et
//!   al., 2025), where a device keeps the activations of the passes about
//!   to run and swaps the rest out over the host link.
//!
//! Invariants: every byte count is ≥ 0 and finite for a plan that passes
//! [`MemoryPlan::validate`]; `DeviceMemory::total` is exactly
//! `weights + gradients + optimizer + activations + transient`, and
//! `host_offloaded` is never part of it.

use crate::catalog::{DeviceSpec, ModelSpec};
use crate::error::{Error, Result};
use crate::scenario::kinds::kinds;

/// Bytes of a bf16 element (weights, gradients, activations).
const BF16: f64 = 2.0;
/// Bytes of an fp32 element (the LM head's logits).
const FP32: f64 = 4.0;
/// Bytes per GiB, for messages.
const GIB: f64 = (1u64 << 30) as f64;

kinds! {
    /// `training.recompute`: activation recomputation.
    pub enum Recompute {
        /// Store every tensor the backward pass needs.
        None = "none",
        /// Recompute the attention scores in the backward pass (Korthikanti et al. §4.2); saves nothing under flash attention, which never stores them.
        Selective = "selective",
        /// Store only each layer's input and rerun the layer's forward in its backward.
        Full = "full",
    }
}

kinds! {
    /// `training.optimizer`
    pub enum Optimizer {
        /// mixed-precision Adam/AdamW: fp32 master weights + two fp32 moments = 12 bytes/param (ZeRO paper's K = 12)
        Adam = "adam",
        /// SGD with momentum: fp32 master + fp32 momentum = 8 bytes/param
        Sgd = "sgd",
    }
}

impl Optimizer {
    /// Optimizer-state bytes per parameter (`K` of the ZeRO paper).
    pub fn state_bytes_per_param(self) -> f64 {
        match self {
            Optimizer::Adam => 12.0,
            Optimizer::Sgd => 8.0,
        }
    }
}

/// What the memory model needs of a plan (all degrees ≥ 1).
#[derive(Debug, Clone, Copy)]
pub struct MemoryPlan<'a> {
    pub model: &'a ModelSpec,
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Context-parallel degree (the sequence split over `cp` devices).
    pub cp: u32,
    /// Data-parallel degree (expert parallelism lives inside it).
    pub dp: u32,
    /// Expert-parallel degree.
    pub ep: u32,
    /// Megatron sequence parallelism (with tp > 1): the residual-stream
    /// tensors are split over the TP group too.
    pub sequence_parallel: bool,
    /// Flash attention: the attention scores are never stored.
    pub flash_attention: bool,
    /// Sequences per micro-batch.
    pub micro_batch: u32,
    /// Tokens per sequence.
    pub seq_len: u32,
    /// ZeRO stage, 0..=3.
    pub zero_stage: u8,
    pub recompute: Recompute,
    pub optimizer: Optimizer,
    /// Activation offload to host memory.
    pub offload: bool,
    /// Optimizer state beyond `optimizer`'s, bytes/param (e.g. DiLoCo's
    /// outer-optimizer state; 0 normally). Sharded like the optimizer state.
    pub extra_state_bytes_per_param: f64,
}

/// Bytes on one device.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeviceMemory {
    pub weights: f64,
    pub gradients: f64,
    pub optimizer: f64,
    /// Stored activations of the in-flight micro-batches.
    pub activations: f64,
    /// Working memory of the pass running now (see [`MemoryPlan::device_memory`]).
    pub transient: f64,
    /// Bytes moved to host memory by offload (not in `total`).
    pub host_offloaded: f64,
    /// `weights + gradients + optimizer + activations + transient`.
    pub total: f64,
}

/// Which part of the model one device holds.
#[derive(Debug, Clone, Copy)]
pub struct DeviceShare {
    /// Decoder layers, over all of the device's chunks.
    pub layers: u32,
    /// The input embedding.
    pub embedding: bool,
    /// The final norm and the LM head.
    pub lm_head: bool,
    /// Model chunks (vpp), ≥ 1.
    pub chunks: u32,
}

impl MemoryPlan<'_> {
    /// Checks the degrees against each other and the model; each error
    /// names its key and shows the values.
    pub fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("parallel.tp", self.tp),
            ("parallel.cp", self.cp),
            ("parallel.dp", self.dp),
            ("parallel.ep", self.ep),
            ("training.micro_batch", self.micro_batch),
            ("training.seq_len", self.seq_len),
        ] {
            if v == 0 {
                return Err(key_error(key, "must be ≥ 1, found 0"));
            }
        }
        if self.zero_stage > 3 {
            return Err(key_error(
                "training.zero_stage",
                format!("must be 0, 1, 2 or 3, found {}", self.zero_stage),
            ));
        }
        let x = self.extra_state_bytes_per_param;
        if !(x.is_finite() && x >= 0.0) {
            return Err(key_error(
                "sync.method",
                format!("must be a finite number ≥ 0, found {x}"),
            ));
        }
        let m = self.model;
        let tp = self.tp;
        // The same divisibility the serving time model requires
        // (`timing::analytical`): whole heads and MLP columns per rank.
        if !m.num_heads.is_multiple_of(tp) {
            return Err(key_error(
                "parallel.tp",
                format!(
                    "tp={tp} does not divide the {} attention heads of {}",
                    m.num_heads, m.name
                ),
            ));
        }
        let kv = m.num_kv_heads;
        if !kv.is_multiple_of(tp) && !tp.is_multiple_of(kv) {
            return Err(key_error(
                "parallel.tp",
                format!(
                    "tp={tp} and the {kv} KV heads of {} divide neither way \
                     (KV heads are split over tp, or replicated when fewer than tp)",
                    m.name
                ),
            ));
        }
        if !m.intermediate_size.is_multiple_of(tp) {
            return Err(key_error(
                "parallel.tp",
                format!(
                    "tp={tp} does not divide the MLP intermediate size {} of {}",
                    m.intermediate_size, m.name
                ),
            ));
        }
        if !m.num_experts.is_multiple_of(self.ep) {
            return Err(key_error(
                "parallel.ep",
                format!(
                    "ep={} does not divide the {} experts of {}",
                    self.ep, m.num_experts, m.name
                ),
            ));
        }
        if !self.dp.is_multiple_of(self.ep) {
            return Err(key_error(
                "parallel.ep",
                format!(
                    "ep={} does not divide dp={} (expert parallelism splits the data-parallel group, \
                     as in Megatron-LM)",
                    self.ep, self.dp
                ),
            ));
        }
        if !self.seq_len.is_multiple_of(self.cp) {
            return Err(key_error(
                "parallel.cp",
                format!(
                    "cp={} does not divide the sequence length {}",
                    self.cp, self.seq_len
                ),
            ));
        }
        let local = self.seq_len / self.cp;
        if self.sequence_parallel && !local.is_multiple_of(tp) {
            return Err(key_error(
                "parallel.sequence_parallel",
                format!(
                    "sequence parallelism splits each device's {local} tokens (seq_len {} / cp {}) \
                     over tp={tp}, which does not divide them",
                    self.seq_len, self.cp
                ),
            ));
        }
        Ok(())
    }

    /// Parameters one device stores before ZeRO sharding: dense (attention,
    /// norms, router, embedding/LM head as the share says) and expert
    /// separately.
    ///
    /// Split as Megatron-LM splits them: attention, the dense MLP and the
    /// vocabulary (embedding, LM head) over `tp`; KV projections over `tp`
    /// only when `tp` divides the KV heads, else each rank keeps one KV
    /// head (replicated, as the serving model does); norms and the router
    /// are replicated on every TP rank. Experts split over `ep` (whole
    /// experts) and `tp` (each expert's MLP width). A device holding the
    /// LM head of a model with tied embeddings keeps its own copy of the
    /// matrix (Megatron's last stage does), one copy when it also holds the
    /// embedding.
    pub fn device_params(&self, share: DeviceShare) -> (f64, f64) {
        let m = self.model;
        let h = m.hidden_size as f64;
        let layers = share.layers as f64;
        let matrices = match (m.tied_embeddings, share.embedding, share.lm_head) {
            (true, e, l) => u8::from(e || l),
            (false, e, l) => u8::from(e) + u8::from(l),
        } as f64;
        let vocab = matrices * m.vocab_size as f64 * h / self.tp as f64;
        // The final norm sits before the LM head.
        let final_norm = if share.lm_head { h } else { 0.0 };
        let dense = layers * self.dense_params_per_layer() + vocab + final_norm;
        (dense, layers * self.expert_params_per_layer())
    }

    /// Dense parameters of one layer on one device.
    fn dense_params_per_layer(&self) -> f64 {
        let m = self.model;
        let h = m.hidden_size as f64;
        let q = self.q_width();
        let attn = h * (q + 2.0 * self.kv_width()) + q * h;
        // A dense model's MLP is dense; an MoE's is its experts.
        let mlp = if m.is_moe() {
            0.0
        } else {
            m.mlp_params_per_expert() / self.tp as f64
        };
        // Two norms per layer, replicated over tp (as is the router).
        attn + mlp + 2.0 * h + m.router_params_per_layer()
    }

    /// Expert parameters of one layer on one device (0 for dense models).
    fn expert_params_per_layer(&self) -> f64 {
        let m = self.model;
        if !m.is_moe() {
            return 0.0;
        }
        let local_experts = (m.num_experts / self.ep) as f64;
        local_experts * m.mlp_params_per_expert() / self.tp as f64
    }

    /// Query width (heads · head_dim) on one TP rank.
    fn q_width(&self) -> f64 {
        (self.model.num_heads * self.model.head_dim) as f64 / self.tp as f64
    }

    /// Key (or value) width on one TP rank: `kv_heads/tp` heads, or one
    /// replicated head when `tp` exceeds the KV heads.
    fn kv_width(&self) -> f64 {
        let m = self.model;
        let heads = if m.num_kv_heads.is_multiple_of(self.tp) {
            m.num_kv_heads / self.tp
        } else {
            1
        };
        (heads * m.head_dim) as f64
    }

    /// Tokens of one micro-batch on one device: `b · s/cp`.
    fn local_rows(&self) -> f64 {
        self.micro_batch as f64 * self.seq_len as f64 / self.cp as f64
    }

    /// What the residual-stream tensors are divided by: `tp` under sequence
    /// parallelism, else they are replicated over the TP group.
    fn residual_split(&self) -> f64 {
        if self.sequence_parallel {
            self.tp as f64
        } else {
            1.0
        }
    }

    /// Every activation byte one layer's backward needs for one
    /// micro-batch, with or without the attention scores.
    ///
    /// Per token row (`rows = b·s/cp`), bf16, with `q`, `kv`, `i` the TP
    /// rank's query, key/value and MLP widths:
    /// - residual stream (÷tp only with sequence parallelism): norm-1 input
    ///   `2h`, QKV input (norm-1 output) `2h`, norm-2 input `2h`, MLP input
    ///   (norm-2 output, which the router also reads) `2h`; for MoE also the
    ///   `k` dispatched copies of each token the experts' first matmul
    ///   reads, `2kh`;
    /// - inside the TP region: Q, K, V `2(q + 2kv)`, attention output `2q`,
    ///   MLP up output(s) `2i` (×2 when gated: gate and up), activation
    ///   output `2i`, the MLP terms once per routed row (×k for MoE);
    /// - attention scores without flash attention: the softmax output,
    ///   `2·(heads/tp)·s` per row (each of the `s/cp` local queries against
    ///   all `s` keys).
    ///
    /// No dropout (the catalog's models train without it), so
    /// Korthikanti's dropout masks and dropout output do not appear. The
    /// MoE router's logits (`rows · experts` values, experts ≪ h) are
    /// omitted, as are the tokens' imbalance across experts (routing is
    /// taken as balanced, so each device's experts see `k·rows` rows).
    fn layer_activations(&self, with_scores: bool) -> f64 {
        let m = self.model;
        let rows = self.local_rows();
        let h = m.hidden_size as f64;
        let k = if m.is_moe() {
            m.experts_per_token as f64
        } else {
            0.0
        };
        let residual = BF16 * rows * h * (4.0 + k) / self.residual_split();
        let (q, kv) = (self.q_width(), self.kv_width());
        let i = m.intermediate_size as f64 / self.tp as f64;
        let up = if m.gated_mlp { 2.0 } else { 1.0 };
        let routed = k.max(1.0);
        let tp_region = BF16 * rows * ((q + 2.0 * kv) + q + routed * (up + 1.0) * i);
        let scores = if with_scores && !self.flash_attention {
            let heads = (m.num_heads / self.tp) as f64;
            BF16 * heads * rows * self.seq_len as f64
        } else {
            0.0
        };
        residual + tp_region + scores
    }

    /// Stored activation bytes of ONE layer for ONE micro-batch on one
    /// device (bf16 tensors), per recompute policy.
    ///
    /// For a GPT layer (plain MLP, `i = 4h`, MHA), `tp = cp = 1`, no flash
    /// attention, this is `sbh·(32 + 2·a·s/h)`: Korthikanti's
    /// `sbh·(34 + 5·a·s/h)` less the two `sbh` dropout masks, the
    /// `a·s²·b` attention-dropout mask and the `2·a·s²·b` dropout output.
    /// With `tp = t` it is `sbh·(8 + 24/t + 2as/(ht))` (their `10 + 24/t`
    /// less the masks) and `sbh·(32/t + 2as/(ht))` with sequence
    /// parallelism (their `34/t`).
    ///
    /// - `None`: everything of [`Self::layer_activations`].
    /// - `Selective` (Korthikanti §4.2): the attention scores are
    ///   recomputed, so not stored. Under flash attention they never were
    ///   (flash attention already recomputes them in its backward), so
    ///   selective recomputation saves nothing there.
    /// - `Full`: only the layer's input, `2·rows·h` (÷tp with sequence
    ///   parallelism); the backward reruns the forward from it.
    pub fn activation_bytes_per_layer(&self) -> f64 {
        match self.recompute {
            Recompute::None => self.layer_activations(true),
            Recompute::Selective => self.layer_activations(false),
            Recompute::Full => {
                BF16 * self.local_rows() * self.model.hidden_size as f64 / self.residual_split()
            }
        }
    }

    /// Memory of a device holding `share` with `in_flight` micro-batches'
    /// activations held at once, in whole-device units (1.0 = one
    /// micro-batch's activations of all the device's layers; a chunk of
    /// vpp counts 1/chunks) — the pipeline executor's
    /// `Timeline::peak_activations[d]`.
    ///
    /// Model states as ZeRO shards them (see the module doc). With offload
    /// the device keeps at most two chunks' worth (`2/chunks` units: the
    /// chunk computing now and the one being swapped in or out) and the
    /// rest is `host_offloaded`.
    ///
    /// `transient` is the working memory of the pass running now:
    /// - a decoder layer's pass: under full recomputation one layer's full
    ///   activations (rebuilt for its backward), plus under ZeRO-3 two
    ///   layers' gathered bf16 weights (the current one and the prefetched
    ///   next; the device's own 1/n shard is counted again, a small
    ///   overstatement). These two are added: the gathered weights are in
    ///   use while the layer's recomputed activations are;
    /// - the LM head's pass: one micro-batch's fp32 logits,
    ///   `4·rows·vocab/tp`.
    ///
    /// A device runs one pass at a time, and the logits are freed once the
    /// LM head's backward has produced its input gradient, before the last
    /// layer's backward starts, so the two never coexist: `transient` is
    /// the larger, not the sum.
    pub fn device_memory(&self, share: DeviceShare, in_flight: f64) -> DeviceMemory {
        let (dense, expert) = self.device_params(share);
        let dense_group = (self.dp * self.cp) as f64;
        let expert_group = (self.dp / self.ep * self.cp) as f64;
        let sharded = |on: bool| {
            if on {
                dense / dense_group + expert / expert_group
            } else {
                dense + expert
            }
        };
        let z = self.zero_stage;
        let weights = BF16 * sharded(z >= 3);
        let gradients = BF16 * sharded(z >= 2);
        let state = self.optimizer.state_bytes_per_param() + self.extra_state_bytes_per_param;
        let optimizer = state * sharded(z >= 1);

        let unit = share.layers as f64 * self.activation_bytes_per_layer();
        let held = if self.offload {
            in_flight.min(2.0 / share.chunks as f64)
        } else {
            in_flight
        };
        let activations = held * unit;
        let host_offloaded = (in_flight - held) * unit;

        let recompute = if self.recompute == Recompute::Full {
            self.layer_activations(true)
        } else {
            0.0
        };
        let gathered = if z >= 3 {
            let layer = self.dense_params_per_layer() + self.expert_params_per_layer();
            BF16 * share.layers.min(2) as f64 * layer
        } else {
            0.0
        };
        let logits = if share.lm_head {
            FP32 * self.local_rows() * self.model.vocab_size as f64 / self.tp as f64
        } else {
            0.0
        };
        let transient = (recompute + gathered).max(logits);
        DeviceMemory {
            weights,
            gradients,
            optimizer,
            activations,
            transient,
            host_offloaded,
            total: weights + gradients + optimizer + activations + transient,
        }
    }
}

/// Err([`Error::Infeasible`]) when `mem.total > device.memory_bytes`, the
/// message showing every component in GiB, the device's capacity and `what`
/// (e.g. "pipeline stage 3").
pub fn check_fits(mem: &DeviceMemory, device: &DeviceSpec, what: &str) -> Result<()> {
    if mem.total <= device.memory_bytes {
        return Ok(());
    }
    let g = |b: f64| b / GIB;
    let offloaded = if mem.host_offloaded > 0.0 {
        format!(
            " ({:.2} GiB of activations already offloaded to the host)",
            g(mem.host_offloaded)
        )
    } else {
        String::new()
    };
    Err(Error::Infeasible(format!(
        "{what} needs {:.2} GiB but a {} has {:.2} GiB: weights {:.2} + gradients {:.2} + \
         optimizer state {:.2} + activations {:.2} + transient {:.2} GiB{offloaded}",
        g(mem.total),
        device.name,
        g(device.memory_bytes),
        g(mem.weights),
        g(mem.gradients),
        g(mem.optimizer),
        g(mem.activations),
        g(mem.transient),
    )))
}

/// A configuration error about `key`, as the training scenario spells it.
fn key_error(key: &str, message: impl Into<String>) -> Error {
    Error::config(format!("key `{key}`"), message)
}
