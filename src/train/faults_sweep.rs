//! Expected outcomes and the checkpoint-interval sweep of the failure
//! model ([`super::faults`]): the mean of seeded replications (common
//! random numbers across parameter sets, so comparisons are far less noisy
//! than each mean), Young's first-order optimum √(2·C·M), a geometric grid
//! of intervals around it, and the interval with the best mean goodput.
//!
//! Invariants: the same parameters, replication count and seed give the
//! same answer bit for bit; every candidate interval is in
//! `1..=iterations`; a candidate whose runs cannot finish is skipped, not
//! an error, unless none finishes.

use super::faults::{FaultOutcome, FaultParams, key_error, simulate_rng, stream};
use crate::{Error, Result};

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
        degraded_s: 0.0,
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
        sum.degraded_s += run.degraded_s;
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
        degraded_s: sum.degraded_s / n,
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
