//! A training scenario made a plan: the catalog entries resolved, every
//! setting checked (errors name the key as the user wrote it), and what
//! the simulation needs derived from it: the micro-batch count and the
//! schedule's layout, the layers of every virtual stage, what each device
//! holds, the cost and memory models' inputs and the pass times of every
//! stage.
//!
//! Invariants: a plan that [`plan`] returns has every degree ≥ 1, a global
//! batch that divides into micro-batches, at most [`MAX_PASSES`] passes per
//! step, at least one layer per virtual stage, and a memory plan that
//! validates; nothing here depends on anything but the scenario.

use super::config::TrainScenario;
use super::cost::{CostPlan, Links, PassCosts};
use super::memory::{DeviceShare, MemoryPlan};
use super::schedule::{Layout, PassTimes, Placement};
use super::sync::{SyncConfig, SyncMethod};
use crate::catalog::{Catalog, DeviceSpec, ModelSpec};
use crate::error::{Error, Result};
use crate::scenario::kinds::Kind;
use crate::scenario::validate::{apply_interconnect, resolve_calibration};
use crate::timing::Calibration;
use crate::timing::analytical::stage_layer_counts;
use crate::timing::collectives;

/// Most passes one simulated step may have.
pub const MAX_PASSES: u64 = 1_000_000;

/// Most failures a simulated run may expect (each is an event of the
/// failure model, for each replication and swept interval).
pub const MAX_EXPECTED_FAILURES: f64 = 100_000.0;

/// Most checkpoints one simulated run may take (each is an event of the
/// failure model, for each replication and swept interval).
pub const MAX_CHECKPOINTS: u64 = 1_000_000;

/// A training scenario resolved against the catalog and checked.
#[derive(Debug, Clone)]
pub struct TrainPlan {
    pub scenario: TrainScenario,
    pub model: ModelSpec,
    pub device: DeviceSpec,
    pub calibration: Calibration,
    pub devices_per_node: u32,
    /// Micro-batches per step on each pipeline.
    pub micro_batches: u32,
    pub layout: Layout,
    pub sync: SyncConfig,
}

fn key_error(key: &str, message: impl Into<String>) -> Error {
    Error::config(format!("key `{key}`"), message)
}

/// Resolves and checks `s` (every error names the key).
pub fn plan(s: &TrainScenario) -> Result<TrainPlan> {
    let mut catalog = Catalog::builtin();
    if let Some(path) = &s.catalog {
        catalog.merge_file(path)?;
    }
    let model = catalog.model(&s.model.name)?.clone();
    let mut device = catalog.device(&s.hardware.device)?.clone();
    apply_interconnect(&mut device, &s.hardware.interconnect)?;
    if s.hardware.time_model != "analytical" {
        return Err(key_error(
            "hardware.time_model",
            format!(
                "training is priced by the analytical model only; found \"{}\"",
                s.hardware.time_model
            ),
        ));
    }
    // Training has no serving engine: no engine table's host keys apply.
    let calibration = resolve_calibration(&device, "", &s.hardware.calibration)?;
    let devices_per_node = s.hardware.devices_per_node.unwrap_or(device.devices_per_node);
    let p = &s.parallel;
    let t = &s.training;
    for (key, v) in [
        ("hardware.devices_per_node", devices_per_node),
        ("parallel.tp", p.tp),
        ("parallel.pp", p.pp),
        ("parallel.vpp", p.vpp),
        ("parallel.dp", p.dp),
        ("parallel.ep", p.ep),
        ("parallel.cp", p.cp),
        ("training.micro_batch", t.micro_batch),
        ("training.global_batch", t.global_batch),
        ("training.seq_len", t.seq_len),
    ] {
        if v == 0 {
            return Err(key_error(key, "must be at least 1, found 0"));
        }
    }
    let per_step = t.micro_batch as u64 * p.dp as u64;
    if !(t.global_batch as u64).is_multiple_of(per_step) {
        return Err(key_error(
            "training.global_batch",
            format!(
                "must be a multiple of micro_batch × dp = {} × {} = {per_step}; found {}",
                t.micro_batch, p.dp, t.global_batch
            ),
        ));
    }
    let micro_batches = (t.global_batch as u64 / per_step) as u32;
    // One step simulates every pass; a bound keeps a typo from asking for
    // billions of them (1,024 micro-batches × 64 stages × 3 passes is 0.2 M).
    let passes = micro_batches as u64 * p.pp as u64 * p.vpp.max(2) as u64 * 3;
    if passes > MAX_PASSES {
        return Err(key_error(
            "training.global_batch",
            format!(
                "{micro_batches} micro-batches per pipeline (global_batch {} / (micro_batch {} × dp {})) over {} stages \
                 is {passes} passes per step; at most {MAX_PASSES} are simulated",
                t.global_batch, t.micro_batch, p.dp, p.pp
            ),
        ));
    }
    let layout = t.schedule.layout(p.pp, p.vpp, micro_batches)?;
    if layout.stages() > model.num_layers {
        return Err(key_error(
            "parallel.pp",
            format!(
                "{} pipeline stages (pp = {} × {} chunks) exceed the model's {} layers",
                layout.stages(),
                p.pp,
                layout.v,
                model.num_layers
            ),
        ));
    }
    if let Some(steps) = t.steps
        && steps == 0
    {
        return Err(key_error("training.steps", "must be at least 1, found 0"));
    }
    if let Some(tokens) = t.tokens
        && !(tokens.is_finite() && tokens > 0.0)
    {
        return Err(key_error(
            "training.tokens",
            format!("must be a positive token count, found {tokens}"),
        ));
    }
    let sync = sync_config(s)?;
    if sync.method != SyncMethod::Ddp && t.zero_stage > 0 && p.dp > 1 {
        return Err(key_error(
            "training.zero_stage",
            format!(
                "`sync.method = \"{}\"` lets every replica step alone, which needs its whole optimizer \
                 state, but ZeRO stage {} shards it over the replicas; set training.zero_stage = 0",
                sync.method.name(),
                t.zero_stage
            ),
        ));
    }
    let plan = TrainPlan {
        scenario: s.clone(),
        model,
        device,
        calibration,
        devices_per_node,
        micro_batches,
        layout,
        sync,
    };
    plan.memory_plan().validate()?;
    s.faults_params_check()?;
    Ok(plan)
}

fn sync_config(s: &TrainScenario) -> Result<SyncConfig> {
    let y = &s.sync;
    let mut cfg = SyncConfig {
        bucket_mb: y.bucket_mb,
        ..SyncConfig::for_method(y.method)
    };
    if let Some(h) = y.inner_steps {
        cfg.inner_steps = h;
    }
    if let Some(k) = y.fragments {
        cfg.fragments = k;
    }
    if let Some(tau) = y.overlap_steps {
        cfg.overlap_steps = tau;
    }
    cfg.bits = y.bits;
    cfg.validate()?;
    Ok(cfg)
}

impl TrainScenario {
    fn faults_params_check(&self) -> Result<()> {
        let f = &self.faults;
        for (key, v) in [("faults.detect_s", f.detect_s), ("faults.restart_s", f.restart_s)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(key_error(key, format!("must be ≥ 0 seconds, found {v}")));
            }
        }
        if !(f.storage_gbps.is_finite() && f.storage_gbps > 0.0) {
            return Err(key_error(
                "faults.storage_gbps",
                format!("must be a positive bandwidth in GB/s, found {}", f.storage_gbps),
            ));
        }
        if let Some(m) = f.mtbf_gpu_hours
            && (m.is_nan() || m <= 0.0)
        {
            return Err(key_error(
                "faults.mtbf_gpu_hours",
                format!("must be a positive number of hours, found {m}"),
            ));
        }
        if f.interval_steps == Some(0) {
            return Err(key_error("faults.interval_steps", "must be at least 1, found 0"));
        }
        if f.replications == 0 {
            return Err(key_error("faults.replications", "must be at least 1, found 0"));
        }
        Ok(())
    }
}

impl TrainPlan {
    pub fn gpus(&self) -> u64 {
        let p = &self.scenario.parallel;
        p.tp as u64 * p.pp as u64 * p.dp as u64 * p.cp as u64
    }

    pub fn cost_plan(&self) -> CostPlan<'_> {
        let (p, t) = (&self.scenario.parallel, &self.scenario.training);
        CostPlan {
            model: &self.model,
            device: &self.device,
            calibration: self.calibration,
            devices_per_node: self.devices_per_node,
            tp: p.tp,
            cp: p.cp,
            dp: p.dp,
            ep: p.ep,
            sequence_parallel: p.sequence_parallel && p.tp > 1,
            flash_attention: t.flash_attention,
            micro_batch: t.micro_batch,
            seq_len: t.seq_len,
            zero_stage: t.zero_stage,
            recompute: t.recompute,
        }
    }

    pub fn memory_plan(&self) -> MemoryPlan<'_> {
        let (p, t) = (&self.scenario.parallel, &self.scenario.training);
        MemoryPlan {
            model: &self.model,
            tp: p.tp,
            cp: p.cp,
            dp: p.dp,
            ep: p.ep,
            sequence_parallel: p.sequence_parallel && p.tp > 1,
            flash_attention: t.flash_attention,
            micro_batch: t.micro_batch,
            seq_len: t.seq_len,
            zero_stage: t.zero_stage,
            recompute: t.recompute,
            optimizer: t.optimizer,
            offload: t.offload,
            extra_state_bytes_per_param: self.sync.extra_state_bytes_per_param(),
        }
    }

    /// Layers of every virtual stage. Looped placements split the layers
    /// evenly over the virtual stages in order (Megatron-LM); the V
    /// placement balances the devices first (each holds its two chunks'
    /// layers) and then splits each device's share over its two chunks, so
    /// an uneven layer count does not pile onto the devices holding the
    /// middle of the V.
    pub fn stage_layers(&self) -> Vec<u32> {
        let layers = self.model.num_layers;
        match self.layout.placement {
            Placement::Looped => stage_layer_counts(layers, self.layout.stages()),
            Placement::V => {
                let p = self.layout.p;
                let per_device = stage_layer_counts(layers, p);
                (0..self.layout.stages())
                    .map(|s| {
                        let d = self.layout.device(s) as usize;
                        let n = per_device[d];
                        if s < p { n.div_ceil(2) } else { n / 2 }
                    })
                    .collect()
            }
        }
    }

    /// What device `d` holds.
    pub fn share(&self, d: u32) -> DeviceShare {
        let stages = self.layout.stages();
        let counts = self.stage_layers();
        let layers = (0..stages)
            .filter(|&s| self.layout.device(s) == d)
            .map(|s| counts[s as usize])
            .sum();
        DeviceShare {
            layers,
            embedding: self.layout.device(0) == d,
            lm_head: self.layout.device(stages - 1) == d,
            chunks: self.layout.v,
        }
    }

    /// Pass times of every virtual stage (offload's exposed transfers included).
    pub fn pass_times(&self, costs: &PassCosts, links: &Links) -> PassTimes {
        let stages = self.layout.stages() as usize;
        let counts = self.stage_layers();
        let split = self.scenario.training.schedule.splits_backward();
        let cp = self.cost_plan();
        let act = self.memory_plan().activation_bytes_per_layer();
        let host = self.device.host_link_bandwidth;
        let mut t = PassTimes {
            f: Vec::with_capacity(stages),
            b: Vec::with_capacity(stages),
            w: Vec::with_capacity(stages),
            send: Vec::with_capacity(stages.saturating_sub(1)),
        };
        for (s, &n) in counts.iter().enumerate() {
            let n = n as f64;
            let (first, last) = (s == 0, s + 1 == stages);
            let mut f = n * costs.layer.f;
            let mut b = n * costs.layer.b;
            let mut w = n * costs.layer.w;
            if first {
                f += costs.first.f;
                b += costs.first.b;
                w += costs.first.w;
            }
            if last {
                f += costs.last.f;
                b += costs.last.b;
                w += costs.last.w;
            }
            if self.scenario.training.offload && host > 0.0 {
                // The chunk's activations go to the host after F and come back
                // before B, each under that pass (PipeOffload's overlap); only
                // a transfer longer than the pass shows.
                let copy = n * act / host;
                f += (copy - f).max(0.0);
                b += (copy - b).max(0.0);
            }
            if !split {
                b += w;
                w = 0.0;
            }
            t.f.push(f);
            t.b.push(b);
            t.w.push(w);
            if !last {
                let (d0, d1) = (self.layout.device(s as u32), self.layout.device(s as u32 + 1));
                let link = cp.hop_link(d0.min(d1), links);
                t.send.push(collectives::send_recv(costs.send_bytes, link));
            }
        }
        t
    }
}
