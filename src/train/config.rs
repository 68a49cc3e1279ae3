//! The training scenario schema (`fleetsim train TRAIN.toml`): every
//! section and key, with its documentation and default. Read with the
//! serving scenario's loader (`scenario::load`), so errors name the file,
//! line and dotted key, `--set` overrides work the same, and unknown keys
//! are rejected with a "did you mean" hint.
//!
//! `[model]` and `[hardware]` mean what they mean in `fleetsim run`
//! (`[hardware.calibration]` overrides the same time-model constants).

use super::memory::{Optimizer, Recompute};
use super::schedule::ScheduleKind;
use super::sync::SyncMethod;
use crate::scenario::config::HardwareConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A whole training scenario; an empty file is Llama-3-8B on 8 H100s with
/// data parallelism 8.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainScenario {
    /// Free-text name shown in outputs.
    pub name: String,
    /// Extra catalog file whose models and devices extend the built-in ones.
    pub catalog: Option<PathBuf>,
    pub model: TrainModel,
    pub hardware: HardwareConfig,
    pub parallel: ParallelSection,
    pub training: TrainingSection,
    pub sync: SyncSection,
    pub faults: FaultsSection,
}

impl Default for TrainScenario {
    fn default() -> Self {
        TrainScenario {
            name: "default".into(),
            catalog: None,
            model: TrainModel::default(),
            hardware: HardwareConfig::default(),
            parallel: ParallelSection::default(),
            training: TrainingSection::default(),
            sync: SyncSection::default(),
            faults: FaultsSection::default(),
        }
    }
}

/// `[model]`: the catalog model trained (bf16 weights, activations and
/// gradients; fp32 optimizer state).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainModel {
    /// Catalog name or alias (`fleetsim catalog models`).
    pub name: String,
}

impl Default for TrainModel {
    fn default() -> Self {
        TrainModel {
            name: "Llama-3-8B".into(),
        }
    }
}

/// `[parallel]`: how the model is split over `tp·cp·dp·pp` devices.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ParallelSection {
    /// Tensor parallelism (Megatron-LM): each layer's GEMMs split over `tp` devices.
    pub tp: u32,
    /// Pipeline parallelism: the layers split into `pp` stages.
    pub pp: u32,
    /// Model chunks per pipeline device (`schedule = "interleaved"`).
    pub vpp: u32,
    /// Data parallelism: replicas of the model, each on its share of the batch.
    pub dp: u32,
    /// Expert parallelism (MoE): experts split over `ep` of the `dp` replicas.
    pub ep: u32,
    /// Context parallelism: each sequence split over `cp` devices (ring attention).
    pub cp: u32,
    /// Sequence parallelism with TP (Korthikanti et al. 2022): norms and
    /// residuals split over the TP group too, saving activation memory at
    /// the same communication volume.
    pub sequence_parallel: bool,
}

impl Default for ParallelSection {
    fn default() -> Self {
        ParallelSection {
            tp: 1,
            pp: 1,
            vpp: 1,
            dp: 8,
            ep: 1,
            cp: 1,
            sequence_parallel: true,
        }
    }
}

/// `[training]`: the batch, the schedule and the memory policies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSection {
    /// Sequences per micro-batch.
    pub micro_batch: u32,
    /// Sequences per optimizer step over all replicas; a multiple of
    /// `micro_batch × dp` (the quotient is the pipeline's micro-batch count).
    pub global_batch: u32,
    /// Tokens per sequence.
    pub seq_len: u32,
    pub schedule: ScheduleKind,
    /// ZeRO stage (Rajbhandari et al. 2020): 0 none, 1 optimizer state
    /// sharded over DP (Megatron-LM's distributed optimizer), 2 also
    /// gradients, 3 also weights (FSDP).
    pub zero_stage: u8,
    pub recompute: Recompute,
    /// Offload stored activations to host memory between forward and backward.
    pub offload: bool,
    pub optimizer: Optimizer,
    /// FlashAttention (never stores the attention scores). false: the
    /// softmax output is stored, as in Korthikanti et al.'s accounting.
    pub flash_attention: bool,
    /// Steps of the whole run (for `[faults]` and the time to train).
    /// Unset: derived from `tokens`, else 1,000.
    pub steps: Option<u64>,
    /// Token budget of the run (sets `steps` when it is unset).
    pub tokens: Option<f64>,
}

impl Default for TrainingSection {
    fn default() -> Self {
        TrainingSection {
            micro_batch: 1,
            global_batch: 64,
            seq_len: 4096,
            schedule: ScheduleKind::OneFOneB,
            zero_stage: 1,
            recompute: Recompute::None,
            offload: false,
            optimizer: Optimizer::Adam,
            flash_attention: true,
            steps: None,
            tokens: None,
        }
    }
}

/// `[sync]`: how data-parallel replicas agree on the weights.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    pub method: SyncMethod,
    /// DDP gradient bucket, MB (PyTorch DDP's default 25).
    pub bucket_mb: f64,
    /// Inner steps between synchronisations (local SGD, DiLoCo, Streaming DiLoCo).
    pub inner_steps: Option<u32>,
    /// Parameter fragments synced at staggered times (Streaming DiLoCo).
    pub fragments: Option<u32>,
    /// Inner steps a fragment's exchange overlaps (Streaming DiLoCo's τ).
    pub overlap_steps: Option<u32>,
    /// Bits per value sent (default 16 for gradients, 32 for DiLoCo's pseudo-gradients).
    pub bits: Option<u32>,
    /// DDP: start each gradient bucket's collective as soon as it is full,
    /// under the last micro-batch's backward (Megatron-LM's
    /// `--overlap-grad-reduce`, PyTorch DDP). false: after the backward ends,
    /// as Megatron-LM did before it overlapped (Narayanan et al. 2021).
    pub overlap: bool,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            method: SyncMethod::Ddp,
            bucket_mb: 25.0,
            inner_steps: None,
            fragments: None,
            overlap_steps: None,
            bits: None,
            overlap: true,
        }
    }
}

/// `[faults]`: failures and checkpoints. Without `mtbf_gpu_hours` nothing fails.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsSection {
    /// Mean time between failures of one GPU, hours.
    pub mtbf_gpu_hours: Option<f64>,
    /// From a failure to noticing it, seconds.
    pub detect_s: f64,
    /// From noticing a failure to training again (reschedule, reload), seconds.
    pub restart_s: f64,
    pub checkpoint: CheckpointKind,
    /// Steps between checkpoints; unset: the best interval found by sweeping
    /// around Young's √(2·C·MTBF).
    pub interval_steps: Option<u64>,
    /// Write bandwidth from one node to checkpoint storage, GB/s.
    pub storage_gbps: f64,
    /// Continue with fewer data-parallel replicas after a failure instead of
    /// restarting the job (TorchElastic, Oobleck, ElasWave): steps slow down
    /// by dp / live replicas until the failed replica's replacement is back.
    /// With ZeRO stage 0 the survivors hold the whole state (no rollback);
    /// otherwise the lost shard rolls the job back to its checkpoint.
    pub elastic: bool,
    /// Elastic: downtime to re-form the job without a replica (or to take
    /// its replacement back), seconds.
    pub reconfigure_s: f64,
    /// Elastic: from a failure until its replica's replacement is back, seconds.
    pub repair_s: f64,
    /// Elastic: fewest replicas the job runs with (a failure below restarts
    /// it); unset: half of `parallel.dp`, at least 1.
    pub min_dp: Option<u32>,
    /// Simulated runs averaged per estimate.
    pub replications: u32,
    pub seed: u64,
}

impl Default for FaultsSection {
    fn default() -> Self {
        FaultsSection {
            mtbf_gpu_hours: None,
            // Detection by NCCL/heartbeat timeouts and a restart that
            // reschedules and reloads take minutes at scale (Meta's Llama 3
            // report and ByteDance's MegaScale both describe ~10-minute
            // recoveries); these defaults are that order, not a fit.
            detect_s: 60.0,
            restart_s: 600.0,
            checkpoint: CheckpointKind::Sync,
            interval_steps: None,
            // Gemini (Wang et al., SOSP'23) measures ~20 Gb/s from an AWS
            // p4d node to remote persistent storage.
            storage_gbps: 2.5,
            elastic: false,
            // Re-forming means a new rendezvous and rebuilt NCCL
            // communicators: tens of seconds at thousands of GPUs; swapping
            // a node out takes of the order of an hour. Orders of
            // magnitude, not fits: set them to your cluster's.
            reconfigure_s: 60.0,
            repair_s: 3600.0,
            min_dp: None,
            replications: 20,
            seed: 1,
        }
    }
}

crate::scenario::kinds::kinds! {
    /// `faults.checkpoint`: how state is saved.
    pub enum CheckpointKind {
        /// No checkpoints: a failure restarts the run.
        None = "none",
        /// Training stalls while the state is written to storage.
        Sync = "sync",
        /// Training stalls for a GPU → host snapshot; the host flushes it in the background.
        Async = "async",
        /// Snapshot into host memory replicated on peers (Gemini): durable at once.
        InMemory = "in-memory",
    }
}
