//! One training plan simulated, from plan to report (making the plan —
//! catalog entries resolved, settings checked — is [`super::plan`]'s):
//! price the passes ([`super::cost`]), run the schedule ([`super::pipeline`]), add each device's data-parallel
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

use super::config::CheckpointKind;
use super::faults::{self, CheckpointPolicy, FaultParams};
use super::memory::{self, DeviceMemory, Recompute};
use super::pipeline::{self, Timeline};
use super::schedule::{self, Pass};
use super::sync::{self, SyncInputs, SyncOutcome};
use crate::error::{Error, Result};
use crate::scenario::kinds::Kind;
use serde::Serialize;

pub use super::plan::{MAX_CHECKPOINTS, MAX_EXPECTED_FAILURES, MAX_PASSES, TrainPlan, plan};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn key_error(key: &str, message: impl Into<String>) -> Error {
    Error::config(format!("key `{key}`"), message)
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
    /// Extra time steps took while elastic continuation ran short of replicas.
    pub degraded_s: f64,
    /// Time the job was down: detection, restarts, elastic re-formations.
    pub downtime_s: f64,
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

    // (Counted once: `stage_layers` builds the whole split.)
    let stage_layers = plan.stage_layers();
    let critical_comm: f64 = timeline.devices[critical]
        .iter()
        .map(|r| {
            let n = stage_layers[r.task.stage as usize] as f64;
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
        // With ZeRO stage 0 every replica holds the whole state, so losing
        // one loses nothing; a ZeRO shard dies with its replica.
        elastic: f.elastic.then(|| faults::Elastic {
            dp: plan.scenario.parallel.dp,
            reconfigure_s: f.reconfigure_s,
            repair_s: f.repair_s,
            state_survives: plan.scenario.training.zero_stage == 0,
            min_dp: f.min_dp.unwrap_or((plan.scenario.parallel.dp / 2).max(1)),
        }),
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
        degraded_s: outcome.degraded_s,
        downtime_s: outcome.downtime_s,
        wall_s: outcome.wall_s,
    })
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
