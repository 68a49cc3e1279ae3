//! One training plan from scenario to report: resolve the catalog entries,
//! check the plan's shape, price the passes ([`super::cost`]), run the
//! schedule ([`super::pipeline`]), add each device's data-parallel
//! synchronisation ([`super::sync`]) and optimizer step, size every
//! device's memory ([`super::memory`]) and price failures and checkpoints
//! ([`super::faults`]).
//!
//! The iteration time is the longest any device spends on one step, from
//! its first pass to the end of its optimizer step (its synchronisation's
//! exposed part included): the period at which steps repeat.
//!
//! **MFU** follows PaLM's definition (Chowdhery et al. 2022, appendix B):
//! model FLOPs per token `6·N + 12·L·H·Q·S` (N the parameters a token
//! touches, without the input embedding, which is a lookup; H heads of
//! width Q, S the sequence length: attention counted without the causal
//! half), over the devices' peak dense BF16 rate. `tflops_per_gpu` counts
//! the FLOPs the devices execute, recomputation included (what Megatron-LM
//! reports, Narayanan et al. 2021).

use super::config::{CheckpointKind, TrainScenario};
use super::cost::{CostPlan, Links, PassCosts};
use super::faults::{self, CheckpointPolicy, FaultParams};
use super::memory::{self, DeviceMemory, DeviceShare, MemoryPlan, Recompute};
use super::pipeline::{self, Timeline};
use super::schedule::{self, Layout, Pass, PassTimes, Placement, ScheduleKind};
use super::sync::{self, SyncConfig, SyncInputs, SyncMethod, SyncOutcome};
use crate::catalog::{Catalog, DeviceSpec, ModelSpec};
use crate::error::{Error, Result};
use crate::scenario::kinds::Kind;
use crate::scenario::validate::{apply_interconnect, resolve_calibration};
use crate::timing::Calibration;
use crate::timing::analytical::stage_layer_counts;
use crate::timing::collectives;
use serde::Serialize;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

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

/// One device's part of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceReport {
    pub device: u32,
    pub layers: u32,
    pub busy_s: f64,
    /// Micro-batches' activations held at the peak (whole-device units).
    pub peak_in_flight: f64,
    pub peak_memory_gib: f64,
    pub weights_gib: f64,
    pub gradients_gib: f64,
    pub optimizer_gib: f64,
    pub activations_gib: f64,
    pub transient_gib: f64,
    pub host_offloaded_gib: f64,
    /// Data-parallel synchronisation not hidden under this device's compute, per step.
    pub dp_exposed_s: f64,
    pub optimizer_step_s: f64,
}

/// The data-parallel synchronisation of the busiest device.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncReport {
    pub method: String,
    pub exposed_s: f64,
    pub comm_s: f64,
    pub bytes_per_step: f64,
    pub peak_bytes: f64,
}

/// Failures and checkpoints over the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FaultReport {
    pub checkpoint: String,
    pub interval_steps: Option<u64>,
    pub checkpoint_stall_s: f64,
    pub failures: f64,
    pub lost_gpu_hours: f64,
    pub wall_s: f64,
}

/// What `fleetsim train` prints (`--format json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrainReport {
    pub name: String,
    pub model: String,
    pub device: String,
    pub gpus: u64,
    pub schedule: String,
    pub micro_batches: u32,
    pub iteration_s: f64,
    pub tokens_per_s: f64,
    pub tflops_per_gpu: f64,
    pub mfu: f64,
    pub bubble_fraction: f64,
    /// Communication on the critical device not hidden under compute, per
    /// step: TP/EP collectives and exposed CP/ZeRO-3 traffic inside its
    /// passes, and its exposed data-parallel synchronisation.
    pub exposed_comm_s: f64,
    pub peak_memory_gib: f64,
    pub goodput: f64,
    pub steps: u64,
    /// Steps × iteration time / goodput.
    pub time_to_train_s: f64,
    pub dp_sync: SyncReport,
    pub faults: FaultReport,
    pub devices: Vec<DeviceReport>,
}

/// The simulation of one plan: the report and the schedule's timeline.
#[derive(Debug, Clone)]
pub struct TrainRun {
    pub report: TrainReport,
    pub timeline: Timeline,
}

/// Simulates one step of `plan` and the run around it.
pub fn simulate(plan: &TrainPlan) -> Result<TrainRun> {
    let s = &plan.scenario;
    let cost_plan = plan.cost_plan();
    let costs = cost_plan.costs()?;
    let links = cost_plan.links();
    let times = plan.pass_times(&costs, &links);
    let kind = s.training.schedule;
    let split = kind.splits_backward();
    let lists = schedule::lists(kind, plan.layout, &times);
    let timeline = pipeline::execute(&plan.layout, &lists, &times, split)?;

    let mem_plan = plan.memory_plan();
    let p = plan.layout.p;
    let last_mb = plan.micro_batches - 1;
    let grad_pass = if split { Pass::W } else { Pass::B };
    let expert_dp = (s.parallel.dp / s.parallel.ep).max(1);
    let mut devices = Vec::with_capacity(p as usize);
    let mut iteration_s = 0.0f64;
    let mut critical = 0usize;
    let mut sync_of_critical = SyncOutcome::default();
    let mut windows = Vec::new();
    for d in 0..p {
        let ran = &timeline.devices[d as usize];
        let share = plan.share(d);
        let mem = mem_plan.device_memory(share, timeline.peak_activations[d as usize]);
        memory::check_fits(&mem, &plan.device, &format!("pipeline device {d}"))?;
        windows.clear();
        // Without overlap, every bucket waits for the end of the backward.
        windows.extend(
            ran.iter()
                .filter(|r| s.sync.overlap && r.task.micro_batch == last_mb && r.task.pass == grad_pass)
                .map(|r| (r.start, r.end)),
        );
        let (start, end) = (
            ran.first().map_or(0.0, |r| r.start),
            ran.last().map_or(0.0, |r| r.end),
        );
        let (dense, expert) = mem_plan.device_params(share);
        let sync_one = |values: f64, group: u32| {
            sync::dp_sync(
                &plan.sync,
                &SyncInputs {
                    values,
                    dp: group,
                    link: links.dp,
                    zero_stage: s.training.zero_stage,
                    backward_windows: &windows,
                    compute_end: end,
                    step_compute_s: end - start,
                },
            )
        };
        // ZeRO-3 reduce-scatters every micro-batch's gradients inside its
        // W passes (see `cost`): nothing is left to synchronise at the end.
        let synced = if s.training.zero_stage >= 3 {
            SyncOutcome::default()
        } else {
            let a = sync_one(dense, s.parallel.dp)?;
            let b = sync_one(expert, expert_dp)?;
            SyncOutcome {
                exposed_s: a.exposed_s + b.exposed_s,
                comm_s: a.comm_s + b.comm_s,
                bytes_per_step: a.bytes_per_step + b.bytes_per_step,
                peak_bytes: a.peak_bytes + b.peak_bytes,
                syncs_per_step: a.syncs_per_step.max(b.syncs_per_step),
            }
        };
        let optimizer_step_s = optimizer_step_s(plan, dense + expert);
        let period = end - start + synced.exposed_s + optimizer_step_s;
        if period > iteration_s {
            iteration_s = period;
            critical = d as usize;
            sync_of_critical = synced;
        }
        devices.push(device_report(
            d,
            share.layers,
            &timeline,
            &mem,
            synced.exposed_s,
            optimizer_step_s,
        ));
    }

    let critical_comm: f64 = timeline.devices[critical]
        .iter()
        .map(|r| {
            let n = plan.stage_layers()[r.task.stage as usize] as f64;
            n * match r.task.pass {
                Pass::F => costs.layer.comm_f,
                Pass::B if split => costs.layer.comm_b,
                Pass::B => costs.layer.comm_b + costs.layer.comm_w,
                Pass::W => costs.layer.comm_w,
            }
        })
        .sum();
    let exposed_comm_s = critical_comm + sync_of_critical.exposed_s;

    let tokens = s.training.global_batch as f64 * s.training.seq_len as f64;
    let gpus = plan.gpus();
    let (model_flops, hardware_flops) = step_flops(plan);
    let peak = plan.device.flops_bf16 * gpus as f64;
    let steps = s.training.steps.unwrap_or_else(|| match s.training.tokens {
        Some(budget) => (budget / tokens).ceil().max(1.0) as u64,
        None => 1000,
    });
    let faults = fault_report(plan, iteration_s, steps, &devices)?;
    let goodput = if faults.wall_s > 0.0 {
        steps as f64 * iteration_s / faults.wall_s
    } else {
        1.0
    };
    let report = TrainReport {
        name: s.name.clone(),
        model: plan.model.name.clone(),
        device: plan.device.name.clone(),
        gpus,
        schedule: kind.name().to_string(),
        micro_batches: plan.micro_batches,
        iteration_s,
        tokens_per_s: tokens / iteration_s,
        tflops_per_gpu: hardware_flops / iteration_s / gpus as f64 / 1e12,
        mfu: model_flops / iteration_s / peak,
        bubble_fraction: timeline.bubble_fraction(),
        exposed_comm_s,
        peak_memory_gib: devices.iter().map(|d| d.peak_memory_gib).fold(0.0, f64::max),
        goodput,
        steps,
        time_to_train_s: steps as f64 * iteration_s / goodput,
        dp_sync: SyncReport {
            method: plan.sync.method.name().to_string(),
            exposed_s: sync_of_critical.exposed_s,
            comm_s: sync_of_critical.comm_s,
            bytes_per_step: sync_of_critical.bytes_per_step,
            peak_bytes: sync_of_critical.peak_bytes,
        },
        faults,
        devices,
    };
    Ok(TrainRun { report, timeline })
}

fn device_report(
    d: u32,
    layers: u32,
    timeline: &Timeline,
    mem: &DeviceMemory,
    dp_exposed_s: f64,
    optimizer_step_s: f64,
) -> DeviceReport {
    DeviceReport {
        device: d,
        layers,
        busy_s: timeline.busy(d as usize),
        peak_in_flight: timeline.peak_activations[d as usize],
        peak_memory_gib: mem.total / GIB,
        weights_gib: mem.weights / GIB,
        gradients_gib: mem.gradients / GIB,
        optimizer_gib: mem.optimizer / GIB,
        activations_gib: mem.activations / GIB,
        transient_gib: mem.transient / GIB,
        host_offloaded_gib: mem.host_offloaded / GIB,
        dp_exposed_s,
        optimizer_step_s,
    }
}

/// The optimizer step over the device's shard of the parameters: a
/// memory-bound pass reading and writing the fp32 state, reading the
/// gradient and writing the bf16 weights.
fn optimizer_step_s(plan: &TrainPlan, params: f64) -> f64 {
    let (p, t) = (&plan.scenario.parallel, &plan.scenario.training);
    let shard = if t.zero_stage >= 1 {
        params / (p.dp as f64 * p.cp as f64)
    } else {
        params
    };
    let bytes = shard * (2.0 * t.optimizer.state_bytes_per_param() + 4.0);
    bytes / (plan.device.memory_bandwidth * plan.calibration.memory_efficiency)
}

/// Model FLOPs (PaLM's definition, see the module docs) and executed FLOPs of one step.
fn step_flops(plan: &TrainPlan) -> (f64, f64) {
    let m = &plan.model;
    let t = &plan.scenario.training;
    let tokens = t.global_batch as f64 * t.seq_len as f64;
    let input_embedding = if m.tied_embeddings {
        0.0
    } else {
        m.vocab_size as f64 * m.hidden_size as f64
    };
    let n = m.active_params() - input_embedding;
    let attention_fwd = 4.0 * m.num_layers as f64 * (m.num_heads * m.head_dim) as f64 * t.seq_len as f64;
    let forward = 2.0 * n + attention_fwd;
    let model = 3.0 * forward * tokens;
    let extra = match t.recompute {
        Recompute::None => 0.0,
        Recompute::Selective if t.flash_attention => 0.0,
        Recompute::Selective => attention_fwd,
        Recompute::Full => forward,
    };
    (model, model + extra * tokens)
}

/// Checkpoint costs from the state each node writes, then the failure model.
fn fault_report(
    plan: &TrainPlan,
    iteration_s: f64,
    steps: u64,
    devices: &[DeviceReport],
) -> Result<FaultReport> {
    let f = &plan.scenario.faults;
    if let Some(i) = f.interval_steps
        && steps / i > MAX_CHECKPOINTS
    {
        return Err(key_error(
            "faults.interval_steps",
            format!(
                "a checkpoint every {i} of {steps} steps is {} checkpoints; at most {MAX_CHECKPOINTS} are simulated",
                steps / i
            ),
        ));
    }
    if let Some(mtbf) = f.mtbf_gpu_hours {
        let failures = steps as f64 * iteration_s * plan.gpus() as f64 / (mtbf * 3600.0);
        if failures > MAX_EXPECTED_FAILURES {
            return Err(key_error(
                "faults.mtbf_gpu_hours",
                format!(
                    "{steps} steps of {iteration_s:.3} s on {} GPUs failing every {mtbf} GPU-hours expect \
                     {failures:.0} failures; at most {MAX_EXPECTED_FAILURES} are simulated",
                    plan.gpus()
                ),
            ));
        }
    }
    // What a device must save: weights and optimizer state (gradients are
    // rebuilt by the next step).
    let per_device = devices
        .iter()
        .map(|d| (d.weights_gib + d.optimizer_gib) * GIB)
        .fold(0.0, f64::max);
    let per_node = per_device * plan.devices_per_node.min(plan.gpus() as u32) as f64;
    let write_s = per_node / (f.storage_gbps * 1e9);
    let snapshot_s = per_device / plan.device.host_link_bandwidth;
    let interval = f.interval_steps.unwrap_or(steps);
    let checkpoint = match f.checkpoint {
        CheckpointKind::None => CheckpointPolicy::None,
        CheckpointKind::Sync => CheckpointPolicy::Sync {
            interval_iters: interval,
            write_s,
        },
        CheckpointKind::Async => CheckpointPolicy::Async {
            interval_iters: interval,
            snapshot_s,
            flush_s: write_s,
        },
        CheckpointKind::InMemory => CheckpointPolicy::InMemory {
            interval_iters: interval,
            snapshot_s,
        },
    };
    let params = FaultParams {
        iteration_s,
        iterations: steps,
        gpus: plan.gpus().min(u32::MAX as u64) as u32,
        mtbf_gpu_hours: f.mtbf_gpu_hours.unwrap_or(f64::INFINITY),
        detect_s: f.detect_s,
        restart_s: f.restart_s,
        checkpoint,
    };
    let sweep =
        f.interval_steps.is_none() && f.mtbf_gpu_hours.is_some() && f.checkpoint != CheckpointKind::None;
    let (interval, outcome) = if sweep {
        // Intervals so short that the run takes more checkpoints than the
        // model simulates are not worth a stall each anyway.
        let shortest = steps.div_ceil(MAX_CHECKPOINTS).max(1);
        let mut candidates = faults::candidate_intervals(&params, 13, 8.0)?;
        candidates.iter_mut().for_each(|c| *c = (*c).max(shortest));
        candidates.dedup();
        let (i, o) = faults::optimal_interval(&params, &candidates, f.replications, f.seed)?;
        (Some(i), o)
    } else if f.mtbf_gpu_hours.is_none() && f.interval_steps.is_none() {
        // Nothing fails and no interval was asked for: no checkpoint stalls.
        let none = FaultParams {
            checkpoint: CheckpointPolicy::None,
            ..params
        };
        (None, faults::expected(&none, 1, f.seed)?)
    } else {
        (
            params.checkpoint.interval_iters(),
            faults::expected(&params, f.replications, f.seed)?,
        )
    };
    Ok(FaultReport {
        checkpoint: f.checkpoint.name().to_string(),
        interval_steps: interval,
        checkpoint_stall_s: outcome.checkpoint_stall_s,
        failures: outcome.failures,
        lost_gpu_hours: outcome.lost_gpu_hours,
        wall_s: outcome.wall_s,
    })
}

/// The schedule names `training.schedule` accepts (for listings).
pub fn schedule_names() -> Vec<&'static str> {
    ScheduleKind::ALL.iter().map(|k| k.name()).collect()
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
