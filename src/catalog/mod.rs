//! The built-in hardware and model catalog: exact model architectures and
//! device datasheet numbers, embedded in the binary from `catalog/*.toml`
//! (each number cites its source in a comment there), optionally extended or
//! overridden by a user file with the same format.
//!
//! This module owns the data types ([`ModelSpec`], [`DeviceSpec`], [`Dtype`])
//! and the quantities derived from them (parameter count, weight bytes, KV
//! bytes per token). Time and memory models consume these; they never
//! hard-code a number of their own.

mod data;
mod listing;
#[cfg(test)]
mod tests;

pub use data::*;
#[doc(hidden)]
pub use listing::{render_devices, render_models};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Numeric format of weights or KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Fp32,
    Bf16,
    Fp16,
    Fp8,
    Int8,
    Int4,
}

impl Dtype {
    /// Bytes per element.
    pub fn bytes(self) -> f64 {
        match self {
            Dtype::Fp32 => 4.0,
            Dtype::Bf16 | Dtype::Fp16 => 2.0,
            Dtype::Fp8 | Dtype::Int8 => 1.0,
            Dtype::Int4 => 0.5,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::Fp32 => "fp32",
            Dtype::Bf16 => "bf16",
            Dtype::Fp16 => "fp16",
            Dtype::Fp8 => "fp8",
            Dtype::Int8 => "int8",
            Dtype::Int4 => "int4",
        }
    }
}

/// A transformer decoder's architecture. Field names follow Hugging Face
/// `config.json` semantics. MoE models have `num_experts > 1`;
/// `intermediate_size` is then per expert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Canonical name, e.g. "Llama-3-8B".
    pub name: String,
    /// Other accepted names (case-insensitive), e.g. "meta-llama/Meta-Llama-3-8B".
    #[serde(default)]
    pub aliases: Vec<String>,
    pub num_layers: u32,
    pub hidden_size: u32,
    pub num_heads: u32,
    pub num_kv_heads: u32,
    pub head_dim: u32,
    /// MLP inner width (per expert for MoE).
    pub intermediate_size: u32,
    pub vocab_size: u32,
    /// Number of experts per MoE layer; 1 for dense models.
    #[serde(default = "one")]
    pub num_experts: u32,
    /// Experts each token is routed to (top-k); 1 for dense models.
    #[serde(default = "one")]
    pub experts_per_token: u32,
    /// True for gated MLPs (SwiGLU/GeGLU: gate, up, down = 3 matrices);
    /// false for the classic 2-matrix MLP (phi-2, GPT-2).
    #[serde(default = "yes")]
    pub gated_mlp: bool,
    /// Input embedding and LM head share one matrix.
    #[serde(default)]
    pub tied_embeddings: bool,
    /// Native weight dtype of the published checkpoint.
    pub dtype: Dtype,
    /// Longest context the model supports (max_position_embeddings).
    pub max_context: u32,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

impl ModelSpec {
    pub fn is_moe(&self) -> bool {
        self.num_experts > 1
    }

    /// Parameters of one decoder layer's attention block (QKV and O projections).
    pub fn attn_params_per_layer(&self) -> f64 {
        let h = self.hidden_size as f64;
        let q = (self.num_heads * self.head_dim) as f64;
        let kv = (self.num_kv_heads * self.head_dim) as f64;
        h * (q + 2.0 * kv) + q * h
    }

    /// Parameters of one expert's MLP (or the dense MLP).
    pub fn mlp_params_per_expert(&self) -> f64 {
        let mats = if self.gated_mlp { 3.0 } else { 2.0 };
        mats * self.hidden_size as f64 * self.intermediate_size as f64
    }

    /// Router (gate) parameters of one MoE layer; 0 for dense models.
    pub fn router_params_per_layer(&self) -> f64 {
        if self.is_moe() {
            self.hidden_size as f64 * self.num_experts as f64
        } else {
            0.0
        }
    }

    /// Embedding plus LM head parameters (one matrix if tied).
    pub fn embedding_params(&self) -> f64 {
        let e = self.vocab_size as f64 * self.hidden_size as f64;
        if self.tied_embeddings { e } else { 2.0 * e }
    }

    /// Total parameters (norm weights included; biases ignored).
    pub fn total_params(&self) -> f64 {
        let per_layer = self.attn_params_per_layer()
            + self.num_experts as f64 * self.mlp_params_per_expert()
            + self.router_params_per_layer()
            + 2.0 * self.hidden_size as f64;
        self.num_layers as f64 * per_layer + self.embedding_params() + self.hidden_size as f64
    }

    /// Parameters touched per token in a forward pass (MoE: only top-k experts).
    pub fn active_params(&self) -> f64 {
        let per_layer = self.attn_params_per_layer()
            + self.experts_per_token as f64 * self.mlp_params_per_expert()
            + self.router_params_per_layer()
            + 2.0 * self.hidden_size as f64;
        self.num_layers as f64 * per_layer + self.embedding_params() + self.hidden_size as f64
    }

    /// Bytes of KV cache per token across all layers (K and V), for a KV dtype.
    pub fn kv_bytes_per_token(&self, kv_dtype: Dtype) -> f64 {
        2.0 * self.num_layers as f64 * self.num_kv_heads as f64 * self.head_dim as f64 * kv_dtype.bytes()
    }
}

/// An accelerator's datasheet numbers. Rates are dense (no sparsity), per
/// device. Link bandwidths are unidirectional, per device, in bytes/s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Canonical name, e.g. "H100-SXM".
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// High-bandwidth memory capacity, bytes.
    pub memory_bytes: f64,
    /// Peak memory bandwidth, bytes/s.
    pub memory_bandwidth: f64,
    /// Dense BF16/FP16 tensor throughput, FLOP/s.
    pub flops_bf16: f64,
    /// Dense FP8 tensor throughput, FLOP/s; 0 when the device has no FP8
    /// tensor cores (FP8 weights are then upcast and run at BF16 rate).
    #[serde(default)]
    pub flops_fp8: f64,
    /// Intra-node device-to-device bandwidth (NVLink/xGMI/PCIe), bytes/s per direction.
    pub intra_node_bandwidth: f64,
    /// On a fully connected mesh (AMD Infinity Fabric), the bandwidth of the
    /// one link between a pair of devices, bytes/s per direction; a group of
    /// `n` devices then reaches `(n − 1)` such links each. 0 (the default) is
    /// a switched fabric (NVSwitch), where any group gets the full
    /// `intra_node_bandwidth`. See [`DeviceSpec::intra_node_group_bandwidth`].
    #[serde(default)]
    pub intra_node_pair_bandwidth: f64,
    /// Intra-node link latency, seconds.
    pub intra_node_latency: f64,
    /// Inter-node network bandwidth per device (NIC), bytes/s per direction.
    pub inter_node_bandwidth: f64,
    /// Inter-node latency, seconds.
    pub inter_node_latency: f64,
    /// Host link (PCIe or C2C) bandwidth, bytes/s per direction (used for KV swap).
    pub host_link_bandwidth: f64,
    /// Devices in a typical node of this type (e.g. 8 for HGX).
    pub devices_per_node: u32,
    /// Board power (TDP), watts.
    pub power_watts: f64,
    /// Indicative on-demand cloud price per device-hour, USD (for plan ranking;
    /// users should override with their own prices).
    #[serde(default)]
    pub price_per_hour: f64,
    /// Fitted constants of the analytical time model for this device (and
    /// the engine it was measured with); `None` uses the generic defaults,
    /// unless `calibration_from` names a device to inherit them from.
    #[serde(default)]
    pub calibration: Option<crate::timing::Calibration>,
    /// A device of the same architecture family whose `calibration` and
    /// engine tables this one inherits when it has no fit of its own (H200
    /// from H100-SXM). The constants are efficiencies (fractions of this
    /// device's own datasheet peaks) and host times, so inheriting them
    /// scales the modelled rates by this device's bandwidth and FLOP/s.
    /// Resolved when the catalog loads (see [`Catalog`]): after loading,
    /// `calibration` and `engines` hold the inherited values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_from: Option<String>,
    /// Host-side constants of other serving engines on this device
    /// (`[device.engines.vllm-v1]`): each table overrides only the
    /// engine's host keys ([`crate::timing::Calibration::HOST_KEYS`]) of
    /// `calibration`, which was fitted with the base engine
    /// ([`crate::registry::BASE_ENGINE`]). An engine without a table runs on
    /// the base engine's host costs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub engines: BTreeMap<String, toml::Table>,
    /// Folder names of this device in public profile collections, used by the
    /// profile time model and `fleetsim calibrate` to find its tables.
    #[serde(default)]
    pub profile_names: ProfileNames,
}

/// Where a device's measurements live in a profile folder laid out like
/// `../shared/profiles` (empty = not profiled there).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileNames {
    /// `vidur/compute/<vidur_compute>/` (e.g. "h100").
    pub vidur_compute: String,
    /// `vidur/network/<vidur_network>/` (e.g. "h100_dgx").
    pub vidur_network: String,
    /// `apex/comm/<apex_comm>/` (e.g. "H100-SXM-80GB").
    pub apex_comm: String,
}

impl DeviceSpec {
    /// Per-device intra-node bandwidth a collective over `n` devices of one
    /// node can use: the full `intra_node_bandwidth` on a switched fabric; on
    /// a fully connected mesh each device reaches its `n − 1` peers over one
    /// link each, `min(intra_node_bandwidth, (n − 1) · pair)` (an MI300X
    /// pair: 64 GB/s, TP-4: 192, TP-8: all 7 links, 448).
    pub fn intra_node_group_bandwidth(&self, n: u32) -> f64 {
        if self.intra_node_pair_bandwidth > 0.0 {
            let peers = n.saturating_sub(1).max(1) as f64;
            (peers * self.intra_node_pair_bandwidth).min(self.intra_node_bandwidth)
        } else {
            self.intra_node_bandwidth
        }
    }

    /// Peak dense FLOP/s for matrix multiplies whose operands are `dtype`.
    pub fn peak_flops(&self, dtype: Dtype) -> f64 {
        match dtype {
            Dtype::Fp8 | Dtype::Int8 | Dtype::Int4 if self.flops_fp8 > 0.0 => self.flops_fp8,
            Dtype::Fp32 => self.flops_bf16 / 2.0,
            _ => self.flops_bf16,
        }
    }
}
