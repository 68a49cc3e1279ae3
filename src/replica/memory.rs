//! KV-cache memory: how many KV blocks a replica has, and the pool that hands
//! them out.
//!
//! Capacity follows vLLM's profiling step (vLLM `Worker.determine_num_available_blocks`):
//! per device, the engine may use `memory × gpu_memory_utilization`; from that it
//! subtracts the weights the device holds, the peak activation memory of one
//! forward pass at the batch limits, and a fixed runtime overhead (CUDA
//! context, NCCL buffers, CUDA graphs); what is left, divided by the bytes
//! one block takes on that device, is the number of blocks. Every device of
//! the replica gets the same number of blocks, so the most loaded device
//! (the pipeline stage holding the most layers, plus the embeddings) sets it.

use crate::catalog::{DeviceSpec, Dtype, ModelSpec};
use crate::error::{Error, Result};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Fixed per-device memory outside weights, KV and activations: CUDA context
/// (~0.5 GiB), NCCL buffers and CUDA-graph pools. 1 GiB is a typical figure
/// for vLLM on Hopper; the fidelity work calibrates it.
pub(crate) const RUNTIME_OVERHEAD_BYTES: f64 = GIB;

/// Inputs of the capacity computation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemoryInputs<'a> {
    pub model: &'a ModelSpec,
    pub device: &'a DeviceSpec,
    pub weight_dtype: Dtype,
    pub kv_dtype: Dtype,
    pub tp: u32,
    pub pp: u32,
    pub block_size: u32,
    pub gpu_memory_utilization: f64,
    /// Tokens in the largest forward pass (max_num_batched_tokens).
    pub max_batch_tokens: u32,
    /// Sequences in the largest batch (max_num_seqs): logits are kept for each.
    pub max_batch_seqs: u32,
    /// Explicit activation reserve per device, bytes (overrides the estimate).
    pub activation_reserve: Option<f64>,
}

/// Per-device memory plan of a replica (the most loaded device), in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryPlan {
    pub budget: f64,
    pub weights: f64,
    pub activations: f64,
    pub runtime_overhead: f64,
    pub kv_bytes: f64,
    /// Bytes one KV block takes on the most loaded device.
    pub block_bytes: f64,
    /// KV blocks per replica (each block holds `block_size` tokens of every layer).
    pub num_blocks: u64,
}

/// KV heads one device holds: vLLM shards KV heads across TP ranks and
/// replicates them when tp > num_kv_heads (each rank keeps one).
pub(crate) fn kv_heads_per_device(model: &ModelSpec, tp: u32) -> u32 {
    (model.num_kv_heads / tp).max(1)
}

/// Layers on the most loaded pipeline stage (vLLM gives stages ⌈L/pp⌉ or ⌊L/pp⌋ layers).
pub(crate) fn max_layers_per_stage(model: &ModelSpec, pp: u32) -> u32 {
    model.num_layers.div_ceil(pp)
}

/// Computes the memory plan, or explains with numbers why the model does not fit.
pub(crate) fn plan(m: &MemoryInputs) -> Result<MemoryPlan> {
    let model = m.model;
    let tp = m.tp as f64;
    let layers = max_layers_per_stage(model, m.pp) as f64;
    let per_layer_params = model.attn_params_per_layer()
        + model.num_experts as f64 * model.mlp_params_per_expert()
        + model.router_params_per_layer()
        + 2.0 * model.hidden_size as f64;
    // Embedding and LM head are vocab-sharded across TP; with PP they sit on
    // the first and last stages, so the most loaded stage carries one of them.
    let vocab_matrix = model.vocab_size as f64 * model.hidden_size as f64;
    let embed_params = if m.pp == 1 {
        model.embedding_params()
    } else {
        vocab_matrix
    };
    let weights = (layers * per_layer_params + embed_params) / tp * m.weight_dtype.bytes();

    let activations = match m.activation_reserve {
        Some(a) => a,
        None => activation_estimate(m),
    };
    let budget = m.device.memory_bytes * m.gpu_memory_utilization;
    let kv_bytes = budget - weights - activations - RUNTIME_OVERHEAD_BYTES;
    let block_bytes = 2.0
        * layers
        * kv_heads_per_device(model, m.tp) as f64
        * model.head_dim as f64
        * m.kv_dtype.bytes()
        * m.block_size as f64;
    let num_blocks = if kv_bytes > 0.0 {
        (kv_bytes / block_bytes).floor() as u64
    } else {
        0
    };
    if num_blocks == 0 {
        return Err(Error::Infeasible(format!(
            "{} ({} weights) does not fit on {} with tp={} pp={}: each device may use {:.1} GiB \
             ({:.0} GiB × gpu_memory_utilization {}), but needs {:.1} GiB of weights, {:.1} GiB of \
             activations and {:.1} GiB of runtime overhead, leaving {:.1} GiB for the KV cache \
             (one block of {} tokens needs {:.2} MiB). Use more tensor/pipeline parallelism, a \
             device with more memory, or smaller weights (model.dtype).",
            model.name,
            m.weight_dtype.name(),
            m.device.name,
            m.tp,
            m.pp,
            budget / GIB,
            m.device.memory_bytes / GIB,
            m.gpu_memory_utilization,
            weights / GIB,
            activations / GIB,
            RUNTIME_OVERHEAD_BYTES / GIB,
            kv_bytes / GIB,
            m.block_size,
            block_bytes / (1024.0 * 1024.0),
        )));
    }
    Ok(MemoryPlan {
        budget,
        weights,
        activations,
        runtime_overhead: RUNTIME_OVERHEAD_BYTES,
        kv_bytes,
        block_bytes,
        num_blocks,
    })
}

/// Peak activation memory of one forward pass of `max_batch_tokens` tokens on
/// one device, as vLLM's profiling run would see it: the largest live set is
/// the MLP's inner activations (gate and up outputs, `2·I/tp` per token for a
/// gated MLP, MoE: top-k experts' worth) plus the residual stream and
/// attention projections (`hidden + (q+2kv)/tp` per token), in bf16, plus
/// fp32 logits for every sampled sequence (`vocab/tp` each).
pub(crate) fn activation_estimate(m: &MemoryInputs) -> f64 {
    let model = m.model;
    let tp = m.tp as f64;
    let t = m.max_batch_tokens as f64;
    let mats = if model.gated_mlp { 2.0 } else { 1.0 };
    let mlp = mats * model.intermediate_size as f64 * model.experts_per_token as f64 / tp;
    let qkv = (model.num_heads + 2 * model.num_kv_heads) as f64 * model.head_dim as f64 / tp;
    let per_token = (2.0 * model.hidden_size as f64 + qkv + mlp) * 2.0;
    let logits = m.max_batch_seqs.min(m.max_batch_tokens) as f64 * model.vocab_size as f64 / tp * 4.0;
    t * per_token + logits
}

/// Hands out KV blocks of one replica. A counter, not a free list: no policy
/// here needs block identities (prefix caching will).
#[derive(Debug, Clone)]
pub struct KvPool {
    total: u64,
    used: u64,
    /// Blocks kept free when admitting new sequences (vLLM's watermark).
    watermark: u64,
}

impl KvPool {
    pub(crate) fn new(total: u64, watermark_fraction: f64) -> Self {
        KvPool {
            total,
            used: 0,
            watermark: (watermark_fraction * total as f64) as u64,
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }
    pub fn used(&self) -> u64 {
        self.used
    }
    pub fn free(&self) -> u64 {
        self.total - self.used
    }

    /// Blocks admissions keep free (vLLM's watermark).
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// Could a sequence needing `blocks` ever be admitted (vLLM `AllocStatus::NEVER` otherwise)?
    pub fn can_ever_admit(&self, blocks: u64) -> bool {
        blocks + self.watermark <= self.total
    }

    /// Can `blocks` be allocated now for a new sequence, keeping the watermark free?
    pub fn can_admit(&self, blocks: u64) -> bool {
        self.free() >= blocks + self.watermark
    }

    /// Allocates `blocks`; the caller has checked there is room.
    pub(crate) fn allocate(&mut self, blocks: u64) {
        debug_assert!(blocks <= self.free(), "KV over-allocation");
        self.used += blocks;
    }

    pub(crate) fn release(&mut self, blocks: u64) {
        debug_assert!(blocks <= self.used, "KV double free");
        self.used -= blocks;
    }
}

#[cfg(test)]
mod tests {
    //! Exact capacities of Llama-3-8B (8,030,261,248 parameters on its model
    //! card: 32 layers of 218,112,000, embedding and LM head of 128,256 ×
    //! 4,096 each, one final norm of 4,096 that the plan leaves out; KV of
    //! 2 × 32 layers × 8 heads × 128 × 2 bytes = 128 KiB per bf16 token).
    use super::*;
    use crate::catalog::Catalog;

    const LAYER_PARAMS: f64 = 218_112_000.0;
    const VOCAB_MATRIX: f64 = 128_256.0 * 4_096.0;
    const MIB: f64 = 1024.0 * 1024.0;

    fn plan_of(tp: u32, pp: u32, memory_gib: f64, reserve: Option<f64>) -> Result<MemoryPlan> {
        plan_of_model("Llama-3-8B", tp, pp, memory_gib, reserve)
    }

    fn plan_of_model(
        name: &str,
        tp: u32,
        pp: u32,
        memory_gib: f64,
        reserve: Option<f64>,
    ) -> Result<MemoryPlan> {
        let catalog = Catalog::builtin();
        let model = catalog.model(name).unwrap().clone();
        let mut device = catalog.device("H100-SXM").unwrap().clone();
        device.memory_bytes = memory_gib * GIB;
        plan(&MemoryInputs {
            model: &model,
            device: &device,
            weight_dtype: Dtype::Bf16,
            kv_dtype: Dtype::Bf16,
            tp,
            pp,
            block_size: 16,
            gpu_memory_utilization: 0.5,
            max_batch_tokens: 2048,
            max_batch_seqs: 256,
            activation_reserve: reserve,
        })
    }

    #[test]
    fn one_device_holds_every_weight_and_what_is_left_is_kv() {
        let p = plan_of(1, 1, 40.0, Some(GIB)).unwrap();
        assert_eq!(p.weights, (8_030_261_248.0 - 4_096.0) * 2.0);
        assert_eq!(p.budget, 20.0 * GIB);
        assert_eq!(p.runtime_overhead, GIB);
        assert_eq!(p.activations, GIB, "an explicit reserve replaces the estimate");
        assert_eq!(p.block_bytes, 2.0 * MIB, "16 tokens × 128 KiB");
        // 20 GiB − 16,060,514,304 B of weights − 1 GiB reserve − 1 GiB overhead
        // = 3,266,838,528 B = 1,557.75 blocks of 2 MiB.
        assert_eq!(p.kv_bytes, 3_266_838_528.0);
        assert_eq!(p.num_blocks, 1_557);
    }

    #[test]
    fn tensor_parallelism_shards_weights_and_kv_heads() {
        let p = plan_of(2, 1, 40.0, Some(GIB)).unwrap();
        assert_eq!(p.weights, (8_030_261_248.0 - 4_096.0));
        assert_eq!(p.block_bytes, MIB, "4 of the 8 KV heads per device");
        // (20 − 2) GiB − 8,030,257,152 B = 11,297,099,776 B → 10,773.75 MiB blocks.
        assert_eq!(p.num_blocks, 10_773);
        // More devices than KV heads: each keeps one head (vLLM replicates).
        let p16 = plan_of(16, 1, 40.0, Some(GIB)).unwrap();
        assert_eq!(p16.block_bytes, 2.0 * 32.0 * 128.0 * 2.0 * 16.0);
    }

    #[test]
    fn a_pipeline_stage_holds_its_layers_and_one_vocabulary_matrix() {
        let p = plan_of(1, 2, 40.0, Some(GIB)).unwrap();
        assert_eq!(p.weights, (16.0 * LAYER_PARAMS + VOCAB_MATRIX) * 2.0);
        assert_eq!(p.block_bytes, MIB, "16 layers per stage");
        // Three stages of 11, 11 and 10 layers: the most loaded sets it.
        let p3 = plan_of(1, 3, 40.0, Some(GIB)).unwrap();
        assert_eq!(p3.weights, (11.0 * LAYER_PARAMS + VOCAB_MATRIX) * 2.0);
        assert_eq!(p3.block_bytes, 2.0 * 11.0 * 8.0 * 128.0 * 2.0 * 16.0);
    }

    #[test]
    fn the_activation_estimate_is_the_mlp_and_projections_of_the_largest_pass_plus_logits() {
        let p = plan_of(1, 1, 40.0, None).unwrap();
        // Per token, bf16: 2 × 4,096 (residual) + 48 × 128 (q, k, v) +
        // 2 × 14,336 (gate, up) = 43,008 values = 86,016 B; 2,048 tokens,
        // plus fp32 logits of 256 sequences × 128,256.
        assert_eq!(p.activations, 2_048.0 * 86_016.0 + 256.0 * 128_256.0 * 4.0);
    }

    #[test]
    fn a_moe_model_holds_every_expert_and_its_router_and_activates_top_k() {
        // Mixtral-8x7B: 46,702,792,704 parameters on its model card (per
        // layer: attention 41,943,040, eight experts of 176,160,768, a
        // 4,096 × 8 router and two norms), the final norm left out.
        let p = plan_of_model("Mixtral-8x7B", 1, 1, 200.0, Some(GIB)).unwrap();
        assert_eq!(p.weights, (46_702_792_704.0 - 4_096.0) * 2.0);
        // TP 2: per token, bf16: 2 × 4,096 + 48 × 128 / 2 + 2 × 14,336 × 2
        // experts / 2 = 39,936 values = 79,872 B for 2,048 tokens, plus
        // fp32 logits of 256 sequences × 32,000 / 2.
        let p2 = plan_of_model("Mixtral-8x7B", 2, 1, 200.0, None).unwrap();
        assert_eq!(p2.activations, 2_048.0 * 79_872.0 + 256.0 * 16_000.0 * 4.0);
    }

    #[test]
    fn a_model_that_leaves_no_kv_room_is_refused_with_its_numbers() {
        let e = plan_of(1, 1, 30.0, Some(GIB)).err().unwrap().to_string();
        // 15 GiB may be used, 15.0 GiB of weights alone.
        assert!(e.contains("does not fit") && e.contains("15.0 GiB"), "{e}");
        assert!(plan_of(1, 1, 36.0, Some(GIB)).is_ok(), "18 GiB leaves room");
    }

    #[test]
    fn the_pool_keeps_its_watermark_free_for_admissions() {
        let mut pool = KvPool::new(100, 0.05);
        assert_eq!((pool.total(), pool.free(), pool.watermark()), (100, 100, 5));
        assert!(pool.can_ever_admit(95) && !pool.can_ever_admit(96));
        pool.allocate(90);
        assert_eq!((pool.used(), pool.free()), (90, 10));
        assert!(pool.can_admit(5) && !pool.can_admit(6));
        pool.release(40);
        assert_eq!(pool.free(), 50);
    }
}
