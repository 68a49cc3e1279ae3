//! Failures and checkpoints of a training run: how much wall time a run of
//! `iterations` fault-free iterations really takes once GPUs fail, the job
//! stalls to checkpoint, and lost work is redone.
//!
//! This module owns only the failure/checkpoint model. Its inputs are plain
//! numbers ([`FaultParams`]): the iteration time comes from the pipeline
//! simulation, the checkpoint stall (state bytes / storage bandwidth) from
//! the caller.
//!
//! # Model
//!
//! - **Failures** form a Poisson process over wall time: each of the `gpus`
//!   devices fails at rate 1 / MTBF, so the job fails at rate
//!   `gpus / mtbf_gpu_hours` and the gaps between failures are exponential
//!   (drawn from a seeded `ChaCha8Rng`). A failure may strike at any moment:
//!   while computing, while checkpointing, or while the job is down
//!   recovering (then recovery starts over from that failure, as in Daly
//!   2006).
//! - **Recovery** costs `detect_s + restart_s` of downtime; the job then
//!   resumes from its last *durable* checkpoint (the start of the run
//!   without checkpoints) and redoes the iterations after it. The iteration
//!   in progress at the failure is lost too.
//! - **Checkpoints** are taken after every iteration `k` with
//!   `k % interval_iters == 0`, also when `k` is reached again after a
//!   rollback — but **not after the last iteration**: the run ends when its
//!   last iteration ends (saving the final model is outside this model).
//!   100 iterations with an interval of 10 take 9 checkpoints.
//!   - [`CheckpointPolicy::Sync`]: training stalls `write_s`; the
//!     checkpoint is durable when the write ends.
//!   - [`CheckpointPolicy::Async`]: training stalls only `snapshot_s`
//!     (GPU → host copy); the flush to storage then runs for `flush_s` in
//!     the background and the checkpoint becomes durable when it ends. A
//!     failure during the flush falls back to the previous durable
//!     checkpoint (and aborts the flush: the host copy may have been on the
//!     failed node). A snapshot cannot start while the previous flush is
//!     running: training waits for it, and that wait is checkpoint stall
//!     (CheckFreq, Mohan et al., FAST'21; DataStates-LLM, Maurya et al.,
//!     HPDC'24).
//!   - [`CheckpointPolicy::InMemory`]: redundant copies in peers' host
//!     memory (Gemini, Wang et al., SOSP'23): durable as soon as the
//!     `snapshot_s` stall ends. Recovery reloads from peer memory; it is
//!     charged the same `restart_s` (a caller that knows the memory reload
//!     is faster passes a smaller `restart_s`). Losing every copy of a
//!     shard at once is not modelled.
//! - **Elastic continuation** ([`Elastic`], off by default): a job of `dp`
//!   data-parallel replicas loses only the replica with the failed GPU and
//!   goes on with the others, as TorchElastic (PyTorch `torch.distributed.elastic`,
//!   `torchrun --nnodes=MIN:MAX`: a membership change re-rendezvouses the
//!   surviving workers), Oobleck (Jang et al., SOSP'23: re-forms the job
//!   from pipeline templates without the failed nodes) and ElasWave
//!   (arXiv 2025: elastic-native hybrid-parallel training) do.
//!   - A failure while more than `min_dp` replicas run costs `detect_s +
//!     reconfigure_s` of downtime (instead of `detect_s + restart_s`) and
//!     loses the iteration in progress. With `state_survives` (ZeRO stage
//!     0: every replica holds the weights and optimizer state) nothing
//!     rolls back; without it the failed replica's shard is gone and the
//!     job rolls back to its durable checkpoint as above. A running async
//!     flush is aborted either way (the failed replica may be writing it).
//!   - With `live` of `dp` replicas an iteration takes `iteration_s·dp /
//!     live`: the global batch stays fixed (Megatron-LM and TorchElastic
//!     keep it; each survivor accumulates more micro-batches), so the job
//!     runs at `live/dp` of its speed. The extra time is `degraded_s`.
//!     Checkpoint stalls keep their length.
//!   - The failed replica's replacement is back `repair_s` after the
//!     failure. The job takes it back before the next iteration it starts
//!     (an iteration, or a checkpoint stall, in progress finishes first),
//!     pausing `reconfigure_s` (downtime) for every replica back by then,
//!     and from then on runs at the speed of its replicas. A replacement
//!     back before a re-formation after a failure ends joins in it without
//!     a second pause. Several replicas may be out at once.
//!   - A failure while only `min_dp` replicas run would leave too few: the
//!     job stops and restarts as without elastic continuation (`detect_s +
//!     restart_s`, rollback to the durable checkpoint) with all `dp`
//!     replicas back. A failure during that restart starts it over; one
//!     during a re-formation starts the re-formation over, one replica
//!     fewer (or turns it into a full restart at `min_dp`).
//!   - Approximation: failures keep their Poisson rate `gpus / MTBF` in
//!     wall time even while replicas are out (the missing replicas' GPUs
//!     would not fail, their replacements might); the job rate is a
//!     slight overestimate while degraded.
//! - **Optimum interval**: Young (1974, "A first order approximation to the
//!   optimum checkpoint interval") gives τ ≈ √(2·C·M) for checkpoint cost
//!   C and job MTBF M; Daly (2006, "A higher order estimate of the optimum
//!   checkpoint interval for restart dumps") refines it to
//!   √(2CM)·[1 + ⅓√(C/2M) + C/(18M)] − C. [`optimal_interval`] finds it
//!   by simulation instead; [`candidate_intervals`] builds a grid around
//!   Young's estimate.
//!
//! # Simulation
//!
//! [`simulate_with_failures`] is a discrete-event simulation over wall time
//! that jumps from event to event (next checkpoint, end of a stall or
//! flush, next failure, a replica's return, end of run) in closed form:
//! per event the work is O(1) and the result is what an
//! iteration-by-iteration run gives. Times are compared half-open: an
//! activity spanning `[start, end)` is cut by a failure at `f` when
//! `start <= f < end`, so a failure exactly at the end of an iteration,
//! stall or flush finds it done.
//!
//! # Invariants
//!
//! - Every wall second is useful compute, lost compute, checkpoint stall,
//!   downtime or degraded compute: `wall_s = iterations·iteration_s +
//!   lost_work_s + checkpoint_stall_s + downtime_s + degraded_s` (up to
//!   rounding; `degraded_s` is 0 without elastic continuation). Lost
//!   iterations count at their full-speed time in `lost_work_s`, the
//!   slowdown of every finished iteration in `degraded_s`.
//! - The durable checkpoint never lies after the current progress.
//! - Same parameters and seed ⇒ the same outcome, bit for bit.
//! - A run that would not finish (MTBF tiny next to the checkpoint
//!   interval or the restart) ends with an [`Error::Infeasible`] once wall
//!   time passes [`WALL_CAP_FACTOR`] × the fault-free wall time or the
//!   failures pass [`MAX_FAILURES`]; it never loops forever.

use crate::{Error, Result};

pub use super::faults_sweep::{candidate_intervals, expected, optimal_interval, young_interval_s};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// A run is abandoned once its wall time passes this many times its
/// fault-free wall time: a goodput below 0.1 % is no answer worth waiting for.
pub const WALL_CAP_FACTOR: f64 = 1000.0;

/// A run is abandoned after this many failures, which bounds the work of one
/// simulation even when failures come faster than recovery.
pub const MAX_FAILURES: u64 = 1_000_000;

/// How (and whether) the run checkpoints. Times in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CheckpointPolicy {
    /// No checkpoints: a failure restarts the run from the first iteration.
    None,
    /// Training stalls `write_s` every `interval_iters` iterations.
    Sync { interval_iters: u64, write_s: f64 },
    /// Training stalls `snapshot_s`; the checkpoint is durable `flush_s`
    /// after the stall ends.
    Async {
        interval_iters: u64,
        snapshot_s: f64,
        flush_s: f64,
    },
    /// Training stalls `snapshot_s`; durable when the stall ends.
    InMemory { interval_iters: u64, snapshot_s: f64 },
}

impl CheckpointPolicy {
    /// Iterations between checkpoints (`None` for [`CheckpointPolicy::None`]).
    pub fn interval_iters(&self) -> Option<u64> {
        match *self {
            CheckpointPolicy::None => None,
            CheckpointPolicy::Sync { interval_iters, .. }
            | CheckpointPolicy::Async { interval_iters, .. }
            | CheckpointPolicy::InMemory { interval_iters, .. } => Some(interval_iters),
        }
    }

    /// The same policy checkpointing every `interval_iters` iterations
    /// ([`CheckpointPolicy::None`] stays as it is).
    pub fn with_interval(&self, interval_iters: u64) -> Self {
        match *self {
            CheckpointPolicy::None => CheckpointPolicy::None,
            CheckpointPolicy::Sync { write_s, .. } => CheckpointPolicy::Sync {
                interval_iters,
                write_s,
            },
            CheckpointPolicy::Async {
                snapshot_s, flush_s, ..
            } => CheckpointPolicy::Async {
                interval_iters,
                snapshot_s,
                flush_s,
            },
            CheckpointPolicy::InMemory { snapshot_s, .. } => CheckpointPolicy::InMemory {
                interval_iters,
                snapshot_s,
            },
        }
    }

    /// The stall one checkpoint costs training when it need not wait for a
    /// previous flush: Young's C.
    pub fn stall_s(&self) -> f64 {
        match *self {
            CheckpointPolicy::None => 0.0,
            CheckpointPolicy::Sync { write_s, .. } => write_s,
            CheckpointPolicy::Async { snapshot_s, .. } | CheckpointPolicy::InMemory { snapshot_s, .. } => {
                snapshot_s
            }
        }
    }
}

/// The inputs of the failure/checkpoint model. Times in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultParams {
    /// One training iteration without faults.
    pub iteration_s: f64,
    /// The run's length in iterations.
    pub iterations: u64,
    /// Devices in the job; any one failing stops it.
    pub gpus: u32,
    /// Mean time between failures of one GPU, in hours (`f64::INFINITY`: none).
    pub mtbf_gpu_hours: f64,
    /// From a failure to noticing it.
    pub detect_s: f64,
    /// From noticing a failure to training again (reschedule, reload the
    /// checkpoint, warm up).
    pub restart_s: f64,
    pub checkpoint: CheckpointPolicy,
    /// Elastic continuation with fewer data-parallel replicas (`None`: any
    /// failure stops the job).
    pub elastic: Option<Elastic>,
}

/// Elastic continuation (e.g. TorchElastic, Oobleck, ElasWave): a failure removes one data-parallel replica instead of stopping the job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Elastic {
    /// Data-parallel replicas of the job (each replica is gpus / dp GPUs).
    pub dp: u32,
    /// Downtime to re-form the job without the failed replica (re-rendezvous, rebuild communicators), seconds; replaces restart_s.
    pub reconfigure_s: f64,
    /// Time until a failed replica's replacement is back, seconds; the job then pays reconfigure_s again to take it back.
    pub repair_s: f64,
    /// Whether the surviving replicas hold the whole training state (ZeRO stage 0: every replica has the weights and optimizer state), so nothing rolls back; false: the failed replica's shard is lost and the job rolls back to its last durable checkpoint as today.
    pub state_survives: bool,
    /// Fewest replicas the job runs with; a failure that would go below stops the job and it restarts as today (detect_s + restart_s, rollback), all replicas back.
    pub min_dp: u32,
}

/// What the faults cost a run. For [`expected`], each field is the mean over
/// the replications (so `failures` may be fractional, and `goodput` is the
/// mean of the runs' goodputs, not ideal time over mean wall time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultOutcome {
    /// Wall time to finish all iterations.
    pub wall_s: f64,
    /// `iterations·iteration_s / wall_s`: the share of wall time that was
    /// useful training.
    pub goodput: f64,
    /// Failures, including those during recovery.
    pub failures: f64,
    /// Compute time thrown away by rollbacks (redone iterations and the
    /// iterations cut by failures).
    pub lost_work_s: f64,
    /// Time training stalled for checkpoints (also stalls cut by a failure
    /// and waits for a previous flush).
    pub checkpoint_stall_s: f64,
    /// Time the job was down: detect + restart per failure, longer when a
    /// failure strikes during recovery; with [`Elastic`], detect +
    /// reconfigure per failure and a reconfigure per replica taken back.
    pub downtime_s: f64,
    /// Extra time iterations took because replicas were missing
    /// ([`Elastic`]): `iteration_s·(dp/live − 1)` per finished iteration,
    /// also for iterations a rollback later throws away (their full-speed
    /// time is in `lost_work_s`). 0 without elastic continuation.
    pub degraded_s: f64,
    /// GPU-hours not spent on useful training:
    /// `gpus·(wall_s − iterations·iteration_s)/3600`.
    pub lost_gpu_hours: f64,
}

/// The context of a configuration error about `key` of the `[faults]` section.
pub(super) fn key_error(key: &str, message: impl Into<String>) -> Error {
    Error::config(format!("key `faults.{key}`"), message)
}

/// `Ok` when `value` is a finite number ≥ 0.
fn non_negative(key: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(key_error(
            key,
            format!("expected a finite number of seconds ≥ 0, found {value}"),
        ))
    }
}

impl FaultParams {
    /// Rejects values no run can have, naming the key as a `[faults]`
    /// section spells it.
    pub fn validate(&self) -> Result<()> {
        if !(self.iteration_s.is_finite() && self.iteration_s > 0.0) {
            return Err(key_error(
                "iteration_s",
                format!(
                    "expected a finite number of seconds > 0, found {}",
                    self.iteration_s
                ),
            ));
        }
        if self.iterations == 0 {
            return Err(key_error("iterations", "expected at least 1 iteration, found 0"));
        }
        if self.gpus == 0 {
            return Err(key_error("gpus", "expected at least 1 GPU, found 0"));
        }
        // Infinity is allowed: it means a run without failures.
        if self.mtbf_gpu_hours.is_nan() || self.mtbf_gpu_hours <= 0.0 {
            return Err(key_error(
                "mtbf_hours",
                format!(
                    "expected a number of hours > 0 (or inf for no failures), found {}",
                    self.mtbf_gpu_hours
                ),
            ));
        }
        non_negative("detect_s", self.detect_s)?;
        non_negative("restart_s", self.restart_s)?;
        if self.checkpoint.interval_iters() == Some(0) {
            return Err(key_error(
                "checkpoint_interval",
                "expected at least 1 iteration between checkpoints, found 0",
            ));
        }
        match self.checkpoint {
            CheckpointPolicy::None => Ok(()),
            CheckpointPolicy::Sync { write_s, .. } => non_negative("write_s", write_s),
            CheckpointPolicy::Async {
                snapshot_s, flush_s, ..
            } => {
                non_negative("snapshot_s", snapshot_s)?;
                non_negative("flush_s", flush_s)
            }
            CheckpointPolicy::InMemory { snapshot_s, .. } => non_negative("snapshot_s", snapshot_s),
        }?;
        let Some(elastic) = self.elastic else {
            return Ok(());
        };
        elastic.validate()?;
        if elastic.dp > self.gpus {
            return Err(key_error(
                "elastic_dp",
                format!(
                    "expected at most gpus = {} data-parallel replicas, found {}",
                    self.gpus, elastic.dp
                ),
            ));
        }
        Ok(())
    }

    /// The iteration time with `live` of the job's replicas running: the
    /// fixed global batch is spread over fewer replicas,
    /// `iteration_s·dp/live` (`iteration_s` without [`Elastic`]).
    fn iteration_with(&self, live: u32) -> f64 {
        match self.elastic {
            Some(e) if live < e.dp => self.iteration_s * f64::from(e.dp) / f64::from(live),
            _ => self.iteration_s,
        }
    }

    /// Mean time between failures of the whole job, in seconds (MTBF of one
    /// GPU / gpus; infinite without failures).
    pub fn job_mtbf_s(&self) -> f64 {
        self.mtbf_gpu_hours * 3600.0 / f64::from(self.gpus)
    }

    /// Wall time of the run with no faults and no checkpoints.
    pub fn ideal_s(&self) -> f64 {
        self.iterations as f64 * self.iteration_s
    }

    /// An upper bound of the fault-free wall time (every checkpoint stalling
    /// for its snapshot and a whole flush), the base of the wall-time cap.
    fn fault_free_bound_s(&self) -> f64 {
        let checkpoints = match self.checkpoint.interval_iters() {
            Some(interval) => ((self.iterations - 1) / interval) as f64,
            None => 0.0,
        };
        let per_checkpoint = match self.checkpoint {
            CheckpointPolicy::Async {
                snapshot_s, flush_s, ..
            } => snapshot_s + flush_s,
            other => other.stall_s(),
        };
        self.ideal_s() + checkpoints * per_checkpoint
    }
}

impl Elastic {
    /// Rejects replica counts and times no run can have, keyed like the
    /// other `[faults]` settings.
    pub fn validate(&self) -> Result<()> {
        if self.dp == 0 {
            return Err(key_error(
                "elastic_dp",
                "expected at least 1 data-parallel replica, found 0",
            ));
        }
        if self.min_dp == 0 || self.min_dp > self.dp {
            return Err(key_error(
                "min_dp",
                format!(
                    "expected between 1 and parallel.dp = {} replicas, found {}",
                    self.dp, self.min_dp
                ),
            ));
        }
        non_negative("reconfigure_s", self.reconfigure_s)?;
        non_negative("repair_s", self.repair_s)
    }
}

/// Exponential gaps of rate `rate` per second, accumulated into absolute
/// failure times; no failures at rate 0.
struct PoissonFailures {
    rng: ChaCha8Rng,
    rate: f64,
    at: f64,
}

impl Iterator for PoissonFailures {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        if self.rate <= 0.0 {
            return None;
        }
        // Inverse-CDF sampling: −ln(U)/λ with U in (0, 1], as the arrivals do.
        let u: f64 = 1.0 - self.rng.random::<f64>();
        self.at += -u.ln() / self.rate;
        Some(self.at)
    }
}

/// The random stream of replication `k` of a sweep seeded with `seed`.
pub(super) fn stream(seed: u64, k: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One run with failures drawn from a Poisson process seeded with `seed`.
pub fn simulate(params: &FaultParams, seed: u64) -> Result<FaultOutcome> {
    params.validate()?;
    simulate_rng(params, ChaCha8Rng::seed_from_u64(seed))
}

pub(super) fn simulate_rng(params: &FaultParams, rng: ChaCha8Rng) -> Result<FaultOutcome> {
    let failures = PoissonFailures {
        rng,
        rate: 1.0 / params.job_mtbf_s(),
        at: 0.0,
    };
    Run::new(params, failures).finish()
}

/// One run whose job fails at the given wall times (seconds from the start,
/// ascending): the pluggable failure source [`simulate`] draws randomly.
pub fn simulate_with_failures(params: &FaultParams, failure_times: &[f64]) -> Result<FaultOutcome> {
    params.validate()?;
    let mut previous = 0.0;
    for &at in failure_times {
        if !(at.is_finite() && at >= previous) {
            return Err(Error::config(
                "failure times",
                format!("expected finite times ≥ 0 in ascending order, found {at} after {previous}"),
            ));
        }
        previous = at;
    }
    Run::new(params, failure_times.iter().copied()).finish()
}

/// A checkpoint whose flush to storage is still running.
#[derive(Debug, Clone, Copy)]
struct Flush {
    iteration: u64,
    done_at: f64,
}

/// The state of one run between events.
struct Run<'p, F: Iterator<Item = f64>> {
    params: &'p FaultParams,
    failures: F,
    /// The next failure's wall time (infinite when none is left); never
    /// before `now`.
    next_failure: f64,
    now: f64,
    /// Iterations done since the start, counting from the last rollback point.
    done: u64,
    /// The iteration the last durable checkpoint holds (0: the start).
    durable: u64,
    flush: Option<Flush>,
    /// With [`Elastic`]: when each missing replica's replacement is back,
    /// ascending (failures come in order and repairs all take `repair_s`).
    /// Always empty without elastic continuation.
    out: VecDeque<f64>,
    /// With [`Elastic`]: the job is down for a full restart (a failure
    /// struck with only `min_dp` replicas running), so a failure now starts
    /// the restart over instead of removing a replica.
    restarting: bool,
    wall_cap: f64,
    failure_count: u64,
    lost_work_s: f64,
    checkpoint_stall_s: f64,
    downtime_s: f64,
    degraded_s: f64,
}

impl<'p, F: Iterator<Item = f64>> Run<'p, F> {
    fn new(params: &'p FaultParams, mut failures: F) -> Self {
        let next_failure = failures.next().unwrap_or(f64::INFINITY);
        Run {
            params,
            failures,
            next_failure,
            now: 0.0,
            done: 0,
            durable: 0,
            flush: None,
            out: VecDeque::new(),
            restarting: false,
            wall_cap: WALL_CAP_FACTOR * params.fault_free_bound_s(),
            failure_count: 0,
            lost_work_s: 0.0,
            checkpoint_stall_s: 0.0,
            downtime_s: 0.0,
            degraded_s: 0.0,
        }
    }

    fn finish(mut self) -> Result<FaultOutcome> {
        let p = self.params;
        while self.done < p.iterations {
            self.check_caps()?;
            if self.out.front().is_some_and(|&back| back <= self.now) {
                self.take_back()?;
                continue;
            }
            let iteration_s = p.iteration_with(self.live());
            let mut target = self.next_stop();
            if let Some(&back) = self.out.front() {
                // A replacement back during an iteration joins when it ends.
                let iterations = ((back - self.now) / iteration_s).ceil() as u64;
                target = target.min(self.done.saturating_add(iterations.max(1)));
            }
            let end = self.now + (target - self.done) as f64 * iteration_s;
            if self.next_failure < end {
                let partial_s = if p.elastic.is_some() {
                    self.advance_to_failure(iteration_s, target)
                } else {
                    // The iterations since the segment began count as lost
                    // work along with those since the durable checkpoint.
                    self.next_failure - self.now
                };
                self.fail(partial_s)?;
                continue;
            }
            self.degraded_s += (target - self.done) as f64 * (iteration_s - p.iteration_s);
            self.now = end;
            self.done = target;
            if self.done < p.iterations && self.checkpoint_due() {
                self.checkpoint()?;
            }
        }
        let ideal = p.ideal_s();
        let wall = self.now;
        Ok(FaultOutcome {
            wall_s: wall,
            goodput: ideal / wall,
            failures: self.failure_count as f64,
            lost_work_s: self.lost_work_s,
            checkpoint_stall_s: self.checkpoint_stall_s,
            downtime_s: self.downtime_s,
            degraded_s: self.degraded_s,
            lost_gpu_hours: f64::from(p.gpus) * (wall - ideal) / 3600.0,
        })
    }

    /// Replicas running (`dp` of [`Elastic`]; 1 without it, unused).
    fn live(&self) -> u32 {
        let dp = self.params.elastic.map_or(1, |e| e.dp);
        // `out` never holds dp or more replicas: a failure at min_dp ≥ 1
        // restarts the job instead.
        dp - self.out.len() as u32
    }

    /// The iteration after which training next stops: the next checkpoint
    /// or the end of the run.
    fn next_stop(&self) -> u64 {
        match self.params.checkpoint.interval_iters() {
            Some(interval) => {
                ((self.done / interval + 1).saturating_mul(interval)).min(self.params.iterations)
            }
            None => self.params.iterations,
        }
    }

    /// Whether a checkpoint is due after iteration `done` (a stop may also
    /// be where a replica rejoins).
    fn checkpoint_due(&self) -> bool {
        self.params
            .checkpoint
            .interval_iters()
            .is_some_and(|interval| self.done.is_multiple_of(interval))
    }

    /// With [`Elastic`]: the iterations of the segment towards `target`
    /// that finished before the failure at `next_failure` count as done
    /// (each `iteration_s` long); returns the time spent on the one it cuts.
    fn advance_to_failure(&mut self, iteration_s: f64, target: u64) -> f64 {
        let elapsed = self.next_failure - self.now;
        // The failure lies before the segment's end, so at most all but one.
        let whole = ((elapsed / iteration_s).floor() as u64).min(target - self.done - 1);
        self.degraded_s += whole as f64 * (iteration_s - self.params.iteration_s);
        self.done += whole;
        (elapsed - whole as f64 * iteration_s).max(0.0)
    }

    fn check_caps(&self) -> Result<()> {
        if self.now > self.wall_cap || self.failure_count > MAX_FAILURES {
            return Err(Error::Infeasible(format!(
                "the training run does not finish: after {} failures and {:.0} s of wall time \
                 ({:.0}× its fault-free time) it has {} of {} iterations; the job fails every {:.0} s \
                 on average, against a checkpoint every {} iterations of {} s and a recovery of {} s",
                self.failure_count,
                self.now,
                WALL_CAP_FACTOR,
                self.done,
                self.params.iterations,
                self.params.job_mtbf_s(),
                self.params
                    .checkpoint
                    .interval_iters()
                    .map_or_else(|| "(none)".to_string(), |i| i.to_string()),
                self.params.iteration_s,
                self.params.detect_s + self.params.restart_s,
            )));
        }
        Ok(())
    }

    /// Takes the checkpoint due after iteration `done`.
    fn checkpoint(&mut self) -> Result<()> {
        match self.params.checkpoint {
            CheckpointPolicy::None => Ok(()),
            CheckpointPolicy::Sync { write_s, .. } => {
                if self.stall(write_s)? {
                    self.durable = self.done;
                }
                Ok(())
            }
            CheckpointPolicy::InMemory { snapshot_s, .. } => {
                if self.stall(snapshot_s)? {
                    self.durable = self.done;
                }
                Ok(())
            }
            CheckpointPolicy::Async {
                snapshot_s, flush_s, ..
            } => {
                // The host buffer still holds the previous snapshot until
                // its flush ends, so the next snapshot waits for it.
                if let Some(flush) = self.flush
                    && flush.done_at > self.now
                    && !self.stall(flush.done_at - self.now)?
                {
                    return Ok(());
                }
                self.promote_flush();
                if self.stall(snapshot_s)? {
                    self.flush = Some(Flush {
                        iteration: self.done,
                        done_at: self.now + flush_s,
                    });
                }
                Ok(())
            }
        }
    }

    /// Training stalls `stall_s` at iteration `done`: true when the stall
    /// ended, false when a failure cut it (and was handled).
    fn stall(&mut self, stall_s: f64) -> Result<bool> {
        let end = self.now + stall_s;
        if self.next_failure < end {
            self.checkpoint_stall_s += self.next_failure - self.now;
            self.fail(0.0)?;
            return Ok(false);
        }
        self.checkpoint_stall_s += stall_s;
        self.now = end;
        Ok(true)
    }

    /// A flush that has ended by `now` makes its checkpoint durable.
    fn promote_flush(&mut self) {
        if let Some(flush) = self.flush
            && flush.done_at <= self.now
        {
            self.durable = flush.iteration;
            self.flush = None;
        }
    }

    /// The job fails at `next_failure`, `partial_s` into an iteration (0
    /// during a stall): roll back to the durable checkpoint (or, elastic,
    /// drop the failed replica), recover, and leave `now` at the moment
    /// training resumes.
    fn fail(&mut self, partial_s: f64) -> Result<()> {
        let failed_at = self.next_failure;
        self.now = failed_at;
        let resume_at = self.strike(partial_s);
        self.next_failure = self.failures.next().unwrap_or(f64::INFINITY);
        self.recover(failed_at, resume_at)
    }

    /// A failure at `now`, `partial_s` into an iteration: the lost work,
    /// the rollback and the replica it removes; returns when the job can
    /// train again.
    fn strike(&mut self, partial_s: f64) -> f64 {
        let p = self.params;
        self.failure_count += 1;
        self.promote_flush();
        // A flush still running dies with the job (elastic: the failed
        // replica may be the one writing it).
        self.flush = None;
        if let Some(e) = p.elastic
            && !self.restarting
        {
            self.take_back_returned();
            if self.live() > e.min_dp {
                self.lost_work_s += partial_s;
                if !e.state_survives {
                    self.lost_work_s += (self.done - self.durable) as f64 * p.iteration_s;
                    self.done = self.durable;
                }
                self.out.push_back(self.now + e.repair_s);
                return self.now + p.detect_s + e.reconfigure_s;
            }
            // Below min_dp: a full restart brings every replica back.
            self.restarting = true;
            self.out.clear();
        }
        self.lost_work_s += (self.done - self.durable) as f64 * p.iteration_s + partial_s;
        self.done = self.durable;
        self.now + p.detect_s + p.restart_s
    }

    /// The job is down from `down_from` until `resume_at`; a failure before
    /// then starts the recovery over (and, elastic, removes one more
    /// replica or turns it into a full restart).
    fn recover(&mut self, down_from: f64, mut resume_at: f64) -> Result<()> {
        while self.next_failure < resume_at {
            self.now = self.next_failure;
            resume_at = self.strike(0.0);
            self.next_failure = self.failures.next().unwrap_or(f64::INFINITY);
            self.check_caps()?;
        }
        self.downtime_s += resume_at - down_from;
        self.now = resume_at;
        self.restarting = false;
        // Replacements back by now joined this re-formation.
        self.take_back_returned();
        Ok(())
    }

    /// Replacements back by `now` count as running again.
    fn take_back_returned(&mut self) {
        while self.out.front().is_some_and(|&back| back <= self.now) {
            self.out.pop_front();
        }
    }

    /// With [`Elastic`], before an iteration starts: the job pauses
    /// `reconfigure_s` (downtime) to take back the replicas whose
    /// replacements are back.
    fn take_back(&mut self) -> Result<()> {
        let reconfigure_s = self.params.elastic.map_or(0.0, |e| e.reconfigure_s);
        self.take_back_returned();
        let start = self.now;
        self.recover(start, start + reconfigure_s)
    }
}

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "faults_elastic_tests.rs"]
mod elastic_tests;
