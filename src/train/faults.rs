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
//! flush, next failure, end of run) in closed form: per event the work is
//! O(1) and the result is what an iteration-by-iteration run gives. Times
//! are compared half-open: an activity spanning `[start, end)` is cut by a
//! failure at `f` when `start <= f < end`, so a failure exactly at the end
//! of an iteration, stall or flush finds it done.
//!
//! # Invariants
//!
//! - Every wall second is useful compute, lost compute, checkpoint stall or
//!   downtime: `wall_s = iterations·iteration_s + lost_work_s +
//!   checkpoint_stall_s + downtime_s` (up to rounding).
//! - The durable checkpoint never lies after the current progress.
//! - Same parameters and seed ⇒ the same outcome, bit for bit.
//! - A run that would not finish (MTBF tiny next to the checkpoint
//!   interval or the restart) ends with an [`Error::Infeasible`] once wall
//!   time passes [`WALL_CAP_FACTOR`] × the fault-free wall time or the
//!   failures pass [`MAX_FAILURES`]; it never loops forever.

use crate::{Error, Result};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
    /// failure strikes during recovery.
    pub downtime_s: f64,
    /// GPU-hours not spent on useful training:
    /// `gpus·(wall_s − iterations·iteration_s)/3600`.
    pub lost_gpu_hours: f64,
}

/// The context of a configuration error about `key` of the `[faults]` section.
fn key_error(key: &str, message: impl Into<String>) -> Error {
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
fn stream(seed: u64, k: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One run with failures drawn from a Poisson process seeded with `seed`.
pub fn simulate(params: &FaultParams, seed: u64) -> Result<FaultOutcome> {
    params.validate()?;
    simulate_rng(params, ChaCha8Rng::seed_from_u64(seed))
}

fn simulate_rng(params: &FaultParams, rng: ChaCha8Rng) -> Result<FaultOutcome> {
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
    wall_cap: f64,
    failure_count: u64,
    lost_work_s: f64,
    checkpoint_stall_s: f64,
    downtime_s: f64,
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
            wall_cap: WALL_CAP_FACTOR * params.fault_free_bound_s(),
            failure_count: 0,
            lost_work_s: 0.0,
            checkpoint_stall_s: 0.0,
            downtime_s: 0.0,
        }
    }

    fn finish(mut self) -> Result<FaultOutcome> {
        let p = self.params;
        while self.done < p.iterations {
            self.check_caps()?;
            let target = self.next_stop();
            let end = self.now + (target - self.done) as f64 * p.iteration_s;
            if self.next_failure < end {
                // The iterations since the segment began count as lost work
                // along with those since the durable checkpoint.
                let partial_s = self.next_failure - self.now;
                self.fail(partial_s)?;
                continue;
            }
            self.now = end;
            self.done = target;
            if self.done < p.iterations {
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
            lost_gpu_hours: f64::from(p.gpus) * (wall - ideal) / 3600.0,
        })
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
    /// during a stall): roll back to the durable checkpoint, recover, and
    /// leave `now` at the moment training resumes.
    fn fail(&mut self, partial_s: f64) -> Result<()> {
        let p = self.params;
        let failed_at = self.next_failure;
        self.now = failed_at;
        self.promote_flush();
        // A flush still running dies with the job.
        self.flush = None;
        self.lost_work_s += (self.done - self.durable) as f64 * p.iteration_s + partial_s;
        self.done = self.durable;
        self.failure_count += 1;
        let mut resume_at = failed_at + p.detect_s + p.restart_s;
        self.next_failure = self.failures.next().unwrap_or(f64::INFINITY);
        // A failure during recovery starts it over.
        while self.next_failure < resume_at {
            self.now = self.next_failure;
            self.failure_count += 1;
            resume_at = self.now + p.detect_s + p.restart_s;
            self.next_failure = self.failures.next().unwrap_or(f64::INFINITY);
            self.check_caps()?;
        }
        self.downtime_s += resume_at - failed_at;
        self.now = resume_at;
        Ok(())
    }
}

/// The mean outcome of `replications` runs, run `k` seeded from `seed` and
/// `k` (so the same call gives the same answer, and two calls with the same
/// `seed` see the same failure times: comparisons between parameter sets
/// use common random numbers).
pub fn expected(params: &FaultParams, replications: u32, seed: u64) -> Result<FaultOutcome> {
    params.validate()?;
    if replications == 0 {
        return Err(Error::config(
            "replications",
            "expected at least 1 replication, found 0",
        ));
    }
    let mut sum = FaultOutcome {
        wall_s: 0.0,
        goodput: 0.0,
        failures: 0.0,
        lost_work_s: 0.0,
        checkpoint_stall_s: 0.0,
        downtime_s: 0.0,
        lost_gpu_hours: 0.0,
    };
    for k in 0..u64::from(replications) {
        let run = simulate_rng(params, stream(seed, k))?;
        sum.wall_s += run.wall_s;
        sum.goodput += run.goodput;
        sum.failures += run.failures;
        sum.lost_work_s += run.lost_work_s;
        sum.checkpoint_stall_s += run.checkpoint_stall_s;
        sum.downtime_s += run.downtime_s;
        sum.lost_gpu_hours += run.lost_gpu_hours;
    }
    let n = f64::from(replications);
    Ok(FaultOutcome {
        wall_s: sum.wall_s / n,
        goodput: sum.goodput / n,
        failures: sum.failures / n,
        lost_work_s: sum.lost_work_s / n,
        checkpoint_stall_s: sum.checkpoint_stall_s / n,
        downtime_s: sum.downtime_s / n,
        lost_gpu_hours: sum.lost_gpu_hours / n,
    })
}

/// Young's first-order optimum interval √(2·C·M) in seconds of compute,
/// with C the policy's stall per checkpoint and M the job's MTBF; `None`
/// without checkpoints or without failures.
pub fn young_interval_s(params: &FaultParams) -> Option<f64> {
    let mtbf = params.job_mtbf_s();
    if params.checkpoint.interval_iters().is_none() || !mtbf.is_finite() {
        return None;
    }
    Some((2.0 * params.checkpoint.stall_s() * mtbf).sqrt())
}

/// `points` checkpoint intervals (in iterations, ascending, deduplicated)
/// spaced geometrically from Young's estimate / `span` to Young's estimate ·
/// `span`, each at least 1 and at most `iterations`. Without failures the
/// best is never to checkpoint: the one candidate is `iterations` (no
/// checkpoint is taken after the last iteration).
pub fn candidate_intervals(params: &FaultParams, points: u32, span: f64) -> Result<Vec<u64>> {
    params.validate()?;
    if params.checkpoint.interval_iters().is_none() {
        return Err(key_error(
            "checkpoint",
            "there is no checkpoint interval to sweep without checkpoints; choose sync, async or in-memory",
        ));
    }
    if points < 2 || !(span.is_finite() && span > 1.0) {
        return Err(Error::config(
            "candidate intervals",
            format!("expected at least 2 points and a span > 1, found {points} points and span {span}"),
        ));
    }
    let Some(young_s) = young_interval_s(params) else {
        return Ok(vec![params.iterations]);
    };
    let centre = young_s / params.iteration_s;
    let mut candidates: Vec<u64> = (0..points)
        .map(|k| {
            let exponent = -1.0 + 2.0 * f64::from(k) / f64::from(points - 1);
            let iterations = (centre * span.powf(exponent)).round();
            // The float-to-int cast saturates; the clamp keeps it in range.
            (iterations as u64).clamp(1, params.iterations)
        })
        .collect();
    candidates.dedup();
    Ok(candidates)
}

/// The checkpoint interval among `candidates` (same policy kind as
/// `params.checkpoint`) with the highest mean goodput over `replications`
/// runs, and its mean outcome. Every candidate sees the same failure times
/// (common random numbers), so the noise of the comparison is far smaller
/// than that of each mean. Ties go to the earlier candidate; a candidate
/// whose runs do not finish is skipped.
pub fn optimal_interval(
    params: &FaultParams,
    candidates: &[u64],
    replications: u32,
    seed: u64,
) -> Result<(u64, FaultOutcome)> {
    if params.checkpoint.interval_iters().is_none() {
        return Err(key_error(
            "checkpoint",
            "there is no checkpoint interval to sweep without checkpoints; choose sync, async or in-memory",
        ));
    }
    let mut best: Option<(u64, FaultOutcome)> = None;
    let mut unfinished = None;
    for &interval in candidates {
        let swept = FaultParams {
            checkpoint: params.checkpoint.with_interval(interval),
            ..*params
        };
        match expected(&swept, replications, seed) {
            Ok(outcome) => {
                if best.is_none_or(|(_, b)| outcome.goodput > b.goodput) {
                    best = Some((interval, outcome));
                }
            }
            Err(e @ Error::Infeasible(_)) => unfinished = Some(e),
            Err(e) => return Err(e),
        }
    }
    best.ok_or_else(|| {
        unfinished.unwrap_or_else(|| Error::config("candidate intervals", "expected at least one candidate"))
    })
}

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;
