//! Data-parallel synchronisation of one training iteration: how the `dp`
//! replicas of a device agree on the weights (`sync.method`), what that
//! costs on the DP group's link, and how much of it compute hides.
//!
//! This module owns the *communication schedule* of the data-parallel
//! group — bucket ready times, the order of the collectives on one
//! communication stream, the period of the infrequent methods — and turns
//! it into [`SyncOutcome`]: the exposed (not hidden) seconds per iteration,
//! the seconds of one sync event, and the bytes sent. The collectives'
//! costs come from [`crate::timing::collectives`]; the compute it overlaps
//! with (the last micro-batch's backward windows, the iteration's compute)
//! comes from the caller, usually the pipeline execution of
//! [`super::pipeline`].
//!
//! Methods:
//!
//! - **DDP** (Li et al., "PyTorch Distributed", VLDB 2020; Megatron-LM's
//!   `overlap_grad_reduce`): gradients are grouped into buckets of
//!   `bucket_mb` MB (PyTorch's default 25 MB) in the order backward produces
//!   them; a bucket's all-reduce starts once the bucket is full and the
//!   previous bucket's collective has ended (one communication stream), so
//!   it runs under the rest of the backward. With ZeRO (stage ≥ 1,
//!   Rajbhandari et al., SC'20) each bucket is reduce-scattered instead, and
//!   after the last one the updated parameters are all-gathered — the same
//!   bytes as the all-reduce. We count that all-gather as exposed: Megatron
//!   can overlap it with the next iteration's forward
//!   (`overlap_param_gather`), which this model does not do.
//! - **Local SGD** (Stich, ICLR 2019; Lin et al., "Don't use large
//!   mini-batches, use local SGD", ICLR 2020): replicas step alone for `H`
//!   steps, then average their parameters in one blocking all-reduce.
//! - **DiLoCo** (Douillard et al. 2023, arXiv:2311.08105): the same traffic
//!   as local SGD every `H` steps (the pseudo-gradient, in fp32), but an
//!   outer Nesterov optimizer applies it, keeping an fp32 global copy and
//!   fp32 outer momentum on the device: 8 bytes per parameter
//!   ([`SyncConfig::extra_state_bytes_per_param`]).
//! - **Streaming DiLoCo** (Douillard et al. 2025, arXiv:2501.18512): the
//!   parameters in `K` fragments, one fragment synchronised every `H/K`
//!   steps, its all-reduce overlapped with `τ` inner steps of compute; the
//!   peak traffic of one sync event is `1/K` of DiLoCo's.
//! - **CO2** (Sun et al., ICLR 2024): local updates with a one-step-stale
//!   all-reduce that overlaps the whole next step's compute.
//!
//! Invariants of every [`SyncOutcome`]:
//!
//! - `dp ≤ 1` (or nothing to send) is all zeros;
//! - `comm_s · syncs_per_step` is the communication seconds per iteration,
//!   and `exposed_s` never exceeds it (for DDP: when the backward windows
//!   end by `compute_end`, as an executed schedule's do);
//! - bytes use ring accounting: an all-reduce of `S` bytes over `n` devices
//!   sends `2(n−1)/n · S` per device (Patarasuk & Yuan 2009), a
//!   reduce-scatter or an all-gather half of that;
//! - `bytes_per_step ≤ peak_bytes`, equal for the every-step methods.
//!
//! Not modelled: contention of the DP collectives with tensor- or
//! pipeline-parallel traffic on the same link, the outer optimizer's
//! compute, and the methods' effect on convergence (tokens to a loss).

use crate::error::{Error, Result};
use crate::scenario::kinds::{Kind, kinds};
use crate::timing::collectives::{Link, all_gather, reduce_scatter, ring_all_reduce};

kinds! {
    /// `sync.method`: how data-parallel replicas agree on the weights.
    pub enum SyncMethod {
        /// Every step: bucketed gradient all-reduce overlapped with the last micro-batch's backward (PyTorch DDP, Li et al. 2020 VLDB; Megatron-LM overlap_grad_reduce).
        Ddp = "ddp",
        /// Local SGD: replicas step alone for `inner_steps` steps, then average parameters, blocking (Stich 2019; Lin et al. 2020).
        LocalSgd = "local-sgd",
        /// DiLoCo (Douillard et al. 2023): like local SGD but an outer Nesterov optimizer on the averaged pseudo-gradient; its outer state (fp32 global copy + momentum) costs memory.
        Diloco = "diloco",
        /// Streaming DiLoCo (Douillard et al. 2025): parameters in `fragments` fragments synced at staggered times, each sync overlapped with `overlap_steps` inner steps, values sent with `bits` bits.
        StreamingDiloco = "streaming-diloco",
        /// CO2 (Sun et al. 2024, ICLR): local updates with a one-step-stale all-reduce overlapped with the whole next step's compute.
        Co2 = "co2",
    }
}

impl SyncMethod {
    /// Bits per value sent when `sync.bits` is not given: bf16 gradients
    /// (or parameters) for the every-step methods and local SGD, fp32
    /// pseudo-gradients for DiLoCo and Streaming DiLoCo (the papers'
    /// baseline; Streaming DiLoCo also shows 4-bit values train as well).
    pub fn default_bits(self) -> u32 {
        match self {
            SyncMethod::Ddp | SyncMethod::Co2 | SyncMethod::LocalSgd => 16,
            SyncMethod::Diloco | SyncMethod::StreamingDiloco => 32,
        }
    }
}

/// More buckets than this is a bucket size no run uses (and a long loop).
const MAX_BUCKETS: f64 = 1e6;

/// The `[sync]` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncConfig {
    pub method: SyncMethod,
    /// DDP bucket size in MB (1e6 bytes); PyTorch DDP's default is 25.
    pub bucket_mb: f64,
    /// `H`: inner steps between syncs (local SGD, DiLoCo, Streaming DiLoCo).
    pub inner_steps: u32,
    /// `K`: fragments of Streaming DiLoCo; must divide `inner_steps`.
    pub fragments: u32,
    /// `τ`: inner steps a Streaming DiLoCo fragment's sync overlaps;
    /// at most `inner_steps / fragments`.
    pub overlap_steps: u32,
    /// Bits per value sent; `None` is [`SyncMethod::default_bits`].
    pub bits: Option<u32>,
}

impl Default for SyncConfig {
    /// DDP with 25 MB buckets and bf16 gradients.
    fn default() -> Self {
        SyncConfig::for_method(SyncMethod::Ddp)
    }
}

impl SyncConfig {
    /// `method` with its papers' settings:
    ///
    /// - DDP, CO2: 25 MB buckets (PyTorch DDP's `bucket_cap_mb`); `H`,
    ///   `K`, `τ` unused (1, 1, 0);
    /// - local SGD: `H = 16`, our pick among the short periods (a few to a
    ///   few tens of steps) Lin et al. 2020 run local SGD with;
    /// - DiLoCo: `H = 500`, the paper's main setting;
    /// - Streaming DiLoCo: `H = 100` and `τ = 1`, the paper's setting;
    ///   `K = 4` is our choice (the paper cuts fragments of a few layers
    ///   each, so `K` grows with depth).
    pub fn for_method(method: SyncMethod) -> Self {
        let (inner_steps, fragments, overlap_steps) = match method {
            SyncMethod::Ddp | SyncMethod::Co2 => (1, 1, 0),
            SyncMethod::LocalSgd => (16, 1, 0),
            SyncMethod::Diloco => (500, 1, 0),
            SyncMethod::StreamingDiloco => (100, 4, 1),
        };
        SyncConfig {
            method,
            bucket_mb: 25.0,
            inner_steps,
            fragments,
            overlap_steps,
            bits: None,
        }
    }

    /// Bits per value sent: `bits`, else the method's default.
    pub fn value_bits(&self) -> u32 {
        self.bits.unwrap_or(self.method.default_bits())
    }

    /// Rejects settings no run can have, naming the key.
    pub fn validate(&self) -> Result<()> {
        if !(self.bucket_mb.is_finite() && self.bucket_mb > 0.0) {
            return Err(key_error(
                "sync.bucket_mb",
                format!("expected a finite number of MB > 0, found {}", self.bucket_mb),
            ));
        }
        if self.inner_steps == 0 {
            return Err(key_error(
                "sync.inner_steps",
                "expected at least 1 inner step between syncs, found 0",
            ));
        }
        if self.fragments == 0 {
            return Err(key_error(
                "sync.fragments",
                "expected at least 1 fragment, found 0",
            ));
        }
        if self.method == SyncMethod::StreamingDiloco {
            let (h, k, tau) = (self.inner_steps, self.fragments, self.overlap_steps);
            if !h.is_multiple_of(k) {
                return Err(key_error(
                    "sync.fragments",
                    format!(
                        "`{}` syncs one fragment every inner_steps / fragments steps, \
                         so the fragment count must divide `sync.inner_steps`; found {k} fragments \
                         for {h} inner steps",
                        self.method.name()
                    ),
                ));
            }
            if tau > h / k {
                return Err(key_error(
                    "sync.overlap_steps",
                    format!(
                        "a fragment's sync may overlap at most the {} steps until the next \
                         fragment's (inner_steps / fragments = {h} / {k}), so one sync is in flight \
                         at a time; found {tau}",
                        h / k
                    ),
                ));
            }
        }
        if let Some(bits) = self.bits
            && !(1..=32).contains(&bits)
        {
            return Err(key_error(
                "sync.bits",
                format!("expected 1 to 32 bits per value, found {bits}"),
            ));
        }
        Ok(())
    }

    /// Extra optimizer-state bytes per parameter the method keeps on the
    /// device: DiLoCo and Streaming DiLoCo keep an fp32 outer copy and fp32
    /// outer momentum (8); the others nothing.
    pub fn extra_state_bytes_per_param(&self) -> f64 {
        match self.method {
            SyncMethod::Diloco | SyncMethod::StreamingDiloco => 8.0,
            SyncMethod::Ddp | SyncMethod::LocalSgd | SyncMethod::Co2 => 0.0,
        }
    }
}

/// One device's view of its data-parallel synchronisation in one
/// iteration. Times in seconds from the iteration's start.
#[derive(Debug, Clone)]
pub struct SyncInputs<'a> {
    /// Gradient/parameter values this device synchronises (its parameter
    /// shard after the TP/PP split).
    pub values: f64,
    /// Data-parallel group size.
    pub dp: u32,
    /// The DP group's link.
    pub link: Link,
    /// ≥ 1: DDP reduce-scatters gradients and all-gathers the updated
    /// parameters instead of one all-reduce (same total bytes). The other
    /// methods ignore it.
    pub zero_stage: u8,
    /// Intervals `[start, end]` during which this device computes the LAST
    /// micro-batch's backward passes, in order; gradients become ready
    /// uniformly over their total duration (reverse layer order), filling
    /// buckets.
    pub backward_windows: &'a [(f64, f64)],
    /// When the device's last pass of the iteration ends.
    pub compute_end: f64,
    /// The device's whole iteration compute time (what CO2 and Streaming
    /// DiLoCo overlap with).
    pub step_compute_s: f64,
}

/// What a device's data-parallel synchronisation costs per iteration.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SyncOutcome {
    /// Communication seconds NOT hidden under compute, averaged per iteration.
    pub exposed_s: f64,
    /// Seconds of one sync event's communication (DDP: every bucket and the
    /// ZeRO all-gather; Streaming DiLoCo: one fragment's all-reduce).
    pub comm_s: f64,
    /// Bytes this device sends per iteration, averaged over the sync period.
    pub bytes_per_step: f64,
    /// Bytes sent in the busiest single iteration.
    pub peak_bytes: f64,
    /// Sync events per iteration (1 for DDP and CO2, `1/H` for local SGD
    /// and DiLoCo, `K/H` for Streaming DiLoCo).
    pub syncs_per_step: f64,
}

/// Bytes one device sends in a ring all-reduce of `bytes` over `n`.
fn ring_bytes(bytes: f64, n: u32) -> f64 {
    2.0 * (n - 1) as f64 / n as f64 * bytes
}

/// The device's data-parallel synchronisation in one iteration (see the
/// module docs for each method).
pub fn dp_sync(cfg: &SyncConfig, inp: &SyncInputs) -> Result<SyncOutcome> {
    cfg.validate()?;
    let bytes = inp.values * cfg.value_bits() as f64 / 8.0;
    if inp.dp <= 1 || bytes <= 0.0 {
        return Ok(SyncOutcome::default());
    }
    let (n, link) = (inp.dp, inp.link);
    let h = cfg.inner_steps as f64;
    let all_reduce = ring_all_reduce(bytes, n, link);
    let ring = ring_bytes(bytes, n);
    Ok(match cfg.method {
        SyncMethod::Ddp => ddp(cfg, inp, bytes)?,
        SyncMethod::Co2 => SyncOutcome {
            exposed_s: (all_reduce - inp.step_compute_s).max(0.0),
            comm_s: all_reduce,
            bytes_per_step: ring,
            peak_bytes: ring,
            syncs_per_step: 1.0,
        },
        SyncMethod::LocalSgd | SyncMethod::Diloco => SyncOutcome {
            exposed_s: all_reduce / h,
            comm_s: all_reduce,
            bytes_per_step: ring / h,
            peak_bytes: ring,
            syncs_per_step: 1.0 / h,
        },
        SyncMethod::StreamingDiloco => {
            let k = cfg.fragments as f64;
            let fragment = ring_all_reduce(bytes / k, n, link);
            let hidden = cfg.overlap_steps as f64 * inp.step_compute_s;
            SyncOutcome {
                exposed_s: k * (fragment - hidden).max(0.0) / h,
                comm_s: fragment,
                bytes_per_step: ring / h,
                peak_bytes: ring / k,
                syncs_per_step: k / h,
            }
        }
    })
}

/// DDP: the buckets' collectives on one stream, each starting when its
/// bucket is full and the previous one has ended; then ZeRO's all-gather.
fn ddp(cfg: &SyncConfig, inp: &SyncInputs, bytes: f64) -> Result<SyncOutcome> {
    let (n, link) = (inp.dp, inp.link);
    let bucket = cfg.bucket_mb * 1e6;
    let buckets = (bytes / bucket).ceil();
    if buckets > MAX_BUCKETS {
        return Err(key_error(
            "sync.bucket_mb",
            format!(
                "{} MB buckets split {bytes} bytes of gradients into {buckets} buckets; \
                 at most {MAX_BUCKETS} are supported",
                cfg.bucket_mb
            ),
        ));
    }
    let zero = inp.zero_stage >= 1;
    let backward = Backward::new(inp.backward_windows, inp.compute_end);
    let mut stream_free = f64::NEG_INFINITY;
    let mut comm = 0.0;
    for k in 0..buckets as u64 {
        let filled = ((k + 1) as f64 * bucket).min(bytes);
        let size = filled - k as f64 * bucket;
        let t = if zero {
            reduce_scatter(size, n, link)
        } else {
            ring_all_reduce(size, n, link)
        };
        stream_free = backward.time_at(filled / bytes).max(stream_free) + t;
        comm += t;
    }
    if zero {
        let t = all_gather(bytes, n, link);
        stream_free += t;
        comm += t;
    }
    let sent = ring_bytes(bytes, n);
    Ok(SyncOutcome {
        exposed_s: (stream_free - inp.compute_end).max(0.0),
        comm_s: comm,
        bytes_per_step: sent,
        peak_bytes: sent,
        syncs_per_step: 1.0,
    })
}

/// The last micro-batch's backward windows as a clock of gradient
/// production: gaps between windows produce nothing.
struct Backward<'a> {
    windows: &'a [(f64, f64)],
    total: f64,
    /// When gradients are ready if there are no windows.
    fallback: f64,
}

impl<'a> Backward<'a> {
    fn new(windows: &'a [(f64, f64)], compute_end: f64) -> Self {
        Backward {
            windows,
            total: windows.iter().map(|(s, e)| e - s).sum(),
            fallback: compute_end,
        }
    }

    /// When `fraction` of the backward's total duration has elapsed; at a
    /// window's end exactly, that end (not the next window's start).
    fn time_at(&self, fraction: f64) -> f64 {
        let target = fraction * self.total;
        let mut elapsed = 0.0;
        for &(start, end) in self.windows {
            let len = end - start;
            if elapsed + len >= target {
                return start + (target - elapsed);
            }
            elapsed += len;
        }
        // Only without windows: `fraction ≤ 1` keeps `target ≤ total`, the
        // same sum the loop reaches.
        self.fallback
    }
}

/// A configuration error about `key`, as the training scenario spells it.
fn key_error(key: &str, message: impl Into<String>) -> Error {
    Error::config(format!("key `{key}`"), message)
}
