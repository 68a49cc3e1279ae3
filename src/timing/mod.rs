//! Time models: how long one iteration (forward pass) of a replica takes.
//!
//! The engine describes each iteration by a [`BatchShape`] — aggregates over
//! the batch that the replica keeps as running sums, so pricing an iteration
//! is O(1) whatever the batch size — and asks a [`TimeModel`] for its
//! [`IterationCost`]. Implementations:
//! - `analytical::AnalyticalModel`: operator-level roofline with calibrated
//!   efficiencies (time model v1).
//! - [`profile::ProfileModel`]: operator times interpolated from measured
//!   profile tables (Vidur, APEX+), the analytical model for the rest.

pub(crate) mod analytical;
pub(crate) mod calibration;
#[doc(hidden)]
pub mod collectives;
pub(crate) mod pipeline;
#[doc(hidden)]
pub mod profile;

pub(crate) use analytical::{AnalyticalModel, ParallelConfig};
pub use calibration::Calibration;

use crate::units::Nanos;

/// What one iteration computes, as sums over the sequences in the batch.
///
/// For a prefill chunk of `c` new tokens of a sequence with `k` tokens
/// already in the KV cache, causal attention computes
/// `c·k + c·(c+1)/2` query–key pairs and touches `k + c` cached tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchShape {
    /// Sequences with a prefill chunk in this iteration.
    pub prefill_seqs: u32,
    /// Σ c_i: new prompt tokens processed.
    pub prefill_tokens: u64,
    /// Σ (c_i·k_i + c_i·(c_i+1)/2): causal query–key pairs of the prefill chunks.
    pub prefill_attn_pairs: f64,
    /// Σ (k_i + c_i): KV tokens the prefill chunks' attention reads.
    pub prefill_kv_tokens: u64,
    /// Sequences decoding one token each.
    pub decode_seqs: u32,
    /// Σ context lengths of the decoding sequences (KV tokens read by decode attention).
    pub decode_kv_tokens: u64,
}

impl BatchShape {
    /// Tokens the forward pass processes (prefill chunk tokens + one per decode).
    pub fn total_tokens(&self) -> u64 {
        self.prefill_tokens + self.decode_seqs as u64
    }

    pub fn is_empty(&self) -> bool {
        self.prefill_tokens == 0 && self.decode_seqs == 0
    }

    /// Adds a prefill chunk of `chunk` tokens for a sequence with `cached` tokens already in KV.
    pub fn add_prefill_chunk(&mut self, cached: u64, chunk: u64) {
        let (k, c) = (cached as f64, chunk as f64);
        self.prefill_seqs += 1;
        self.prefill_tokens += chunk;
        self.prefill_attn_pairs += c * k + c * (c + 1.0) / 2.0;
        self.prefill_kv_tokens += cached + chunk;
    }
}

/// The price of one iteration.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IterationCost {
    /// Wall time of the iteration, CPU overhead and communication included.
    pub duration: Nanos,
    /// Floating-point operations executed, summed over the replica's devices.
    pub flops: f64,
    /// Bytes moved to/from device memory, summed over the replica's devices.
    pub hbm_bytes: f64,
    /// The host (CPU) part of `duration` at its start: scheduling and input
    /// preparation before the GPU work is launched.
    pub host: Nanos,
    /// How long the iteration occupies its busiest pipeline stage, host part
    /// included: with pipeline parallelism another micro-batch can enter
    /// the pipeline this much later. Equals `duration` without PP (or when
    /// a model does not say).
    pub stage: Nanos,
}

/// Prices iterations for one replica configuration (model × device × TP × PP).
pub trait TimeModel: Send + Sync {
    fn iteration(&self, batch: &BatchShape) -> IterationCost;

    /// The GPU time of each pipeline stage for `batch`, seconds, in stage
    /// order, written into `out`; left empty (the default) by a model that
    /// prices whole iterations only. Read by the `--trace` PP stage tracks,
    /// never by the simulation.
    fn stage_times(&self, _batch: &BatchShape, out: &mut Vec<f64>) {
        out.clear();
    }

    /// Peak FLOP/s and memory bytes/s of the whole replica (all its devices),
    /// the denominators of MFU and memory-bandwidth utilisation.
    fn peak_rates(&self) -> (f64, f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that prices whole iterations only.
    struct WholeIterations;

    impl TimeModel for WholeIterations {
        fn iteration(&self, _batch: &BatchShape) -> IterationCost {
            IterationCost::default()
        }
        fn peak_rates(&self) -> (f64, f64) {
            (1.0, 1.0)
        }
    }

    /// Without stage times of its own a model empties the caller's buffer,
    /// so the trace's stage tracks never show a previous batch's stages.
    #[test]
    fn a_model_without_stages_leaves_the_buffer_empty() {
        let mut out = vec![1.0, 2.0];
        WholeIterations.stage_times(&BatchShape::default(), &mut out);
        assert!(out.is_empty());
    }
}
