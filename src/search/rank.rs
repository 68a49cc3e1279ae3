//! Ranking plans and their Pareto frontiers.
//!
//! Per plan, from its capacity `c` (requests/s), devices `g`, price `$` per
//! device-hour and power `W` per device:
//! - capacity per GPU = `c / g` (requests/s per device);
//! - requests per dollar = `c · 3600 / (g · $)`;
//! - requests per kWh = `c · 3600 / (g · W / 1000)` (board power, so an upper
//!   bound on energy).
//!
//! The best plan is the highest by `search.objective`; with
//! `search.target_rate` set it is instead the cheapest plan ($/h) whose
//! capacity reaches the target. Ties are broken by higher capacity, then by
//! the plan order ([`PlanParams`]), so the ranking never depends on the order
//! plans finished in.
//!
//! Frontiers (plans with capacity > 0 only):
//! - cost vs capacity: plans no other plan beats on both $/h (lower) and
//!   capacity (higher or equal, one strictly);
//! - TTFT vs TPOT: the same on TTFT and TPOT at `slo.percentile`, measured
//!   at the lowest probed rate (`search.rate.low`, by default the workload's
//!   own rate), among plans that met the SLO there.

use super::capacity::{Capacity, Status};
use super::space::PlanParams;
use crate::scenario::kinds::kinds;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

kinds! {
    /// What the best plan maximises (`search.objective`).
    pub enum Objective {
        /// Requests per dollar (capacity per $/h).
        PerDollar = "per_dollar",
        /// Capacity per GPU.
        PerGpu = "per_gpu",
        /// Requests per kWh of board power.
        PerWatt = "per_watt",
        /// Capacity, whatever it costs.
        Capacity = "capacity",
    }
}

/// Everything known about one searched plan (one line of `plans.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanResult {
    /// Canonical key ([`PlanParams::key`]).
    pub key: String,
    /// Fingerprint of the space settings the result depends on (base
    /// scenario, SLO, rate search); a resumed search reuses only lines
    /// with the current fingerprint.
    pub space: String,
    pub params: PlanParams,
    pub gpus: u32,
    /// USD per hour for the whole plan.
    pub cost_per_hour: f64,
    /// Watts for the whole plan (board power).
    pub power_watts: f64,
    pub status: Status,
    /// Highest rate that met the SLO, requests/s (0 when none).
    pub capacity_rps: f64,
    /// Lowest rate that missed it, requests/s (null when none did).
    pub first_fail_rps: Option<f64>,
    /// That rate failed only for want of requests (see `capacity`): the
    /// capacity is bounded by the request count, not measured at a steady
    /// state; raise `workload.count` to measure it.
    pub count_limited: bool,
    pub capacity_per_gpu: f64,
    pub requests_per_dollar: f64,
    pub requests_per_kwh: f64,
    /// TTFT / TPOT at `slo.percentile` at the capacity, ms (null when capacity is 0).
    pub ttft_ms_at_capacity: Option<f64>,
    pub tpot_ms_at_capacity: Option<f64>,
    /// TTFT / TPOT at `slo.percentile` at the lowest rate probed, ms.
    pub ttft_ms_at_low: f64,
    pub tpot_ms_at_low: f64,
    /// The plan met the SLO at the lowest rate probed.
    pub met_at_low: bool,
    /// Every probe: rate, met, latencies, attainment.
    pub search: Capacity,
}

impl PlanResult {
    /// Builds the result of a plan from its capacity search.
    pub fn new(params: PlanParams, space: String, price: f64, power: f64, cap: Capacity) -> PlanResult {
        let gpus = params.gpus();
        let cost = gpus as f64 * price;
        let watts = gpus as f64 * power;
        let c = cap.capacity;
        let at_cap = cap.at_capacity().copied();
        let low = cap.at_low().copied();
        PlanResult {
            key: params.key(),
            space,
            gpus,
            cost_per_hour: cost,
            power_watts: watts,
            status: cap.status,
            capacity_rps: c,
            first_fail_rps: cap.first_fail,
            count_limited: cap.count_limited(),
            capacity_per_gpu: c / gpus as f64,
            requests_per_dollar: c * 3600.0 / cost,
            requests_per_kwh: c * 3600.0 / (watts / 1000.0),
            ttft_ms_at_capacity: at_cap.map(|p| p.ttft_ms),
            tpot_ms_at_capacity: at_cap.map(|p| p.tpot_ms),
            ttft_ms_at_low: low.map_or(0.0, |p| p.ttft_ms),
            tpot_ms_at_low: low.map_or(0.0, |p| p.tpot_ms),
            met_at_low: low.is_some_and(|p| p.met),
            params,
            search: cap,
        }
    }

    /// The value of a ranking objective (higher is better).
    pub fn score(&self, objective: Objective) -> f64 {
        match objective {
            Objective::PerGpu => self.capacity_per_gpu,
            Objective::PerWatt => self.requests_per_kwh,
            Objective::Capacity => self.capacity_rps,
            Objective::PerDollar => self.requests_per_dollar,
        }
    }
}

/// Plans with capacity > 0, best first (see the module docs).
pub fn rank(results: &[PlanResult], objective: Objective, target_rate: f64) -> Vec<&PlanResult> {
    let mut v: Vec<&PlanResult> = results
        .iter()
        .filter(|r| r.capacity_rps > 0.0 && r.capacity_rps >= target_rate)
        .collect();
    v.sort_by(|a, b| {
        let first = if target_rate > 0.0 {
            a.cost_per_hour.total_cmp(&b.cost_per_hour)
        } else {
            b.score(objective).total_cmp(&a.score(objective))
        };
        first
            .then(b.capacity_rps.total_cmp(&a.capacity_rps))
            .then_with(|| a.params.cmp(&b.params))
    });
    v
}

/// The non-dominated plans when minimising `x` and optimising `y`, where
/// `y_order(a, b)` is `Less` when `a`'s y is strictly better. Sweeps plans in
/// (x ascending, y best first, plan order) and keeps each one strictly better
/// in y than all before it.
fn frontier(
    mut v: Vec<&PlanResult>,
    x: impl Fn(&PlanResult) -> f64,
    y_order: impl Fn(&PlanResult, &PlanResult) -> Ordering,
) -> Vec<&PlanResult> {
    v.sort_by(|a, b| {
        x(a).total_cmp(&x(b))
            .then_with(|| y_order(a, b))
            .then_with(|| a.params.cmp(&b.params))
    });
    let mut out: Vec<&PlanResult> = Vec::new();
    for r in v {
        if out.last().is_none_or(|best| y_order(r, best) == Ordering::Less) {
            out.push(r);
        }
    }
    out
}

/// Cost ($/h, lower better) vs capacity (higher better), cheapest first.
pub fn pareto_cost_capacity(results: &[PlanResult]) -> Vec<&PlanResult> {
    let v = results.iter().filter(|r| r.capacity_rps > 0.0).collect();
    frontier(
        v,
        |r| r.cost_per_hour,
        |a, b| b.capacity_rps.total_cmp(&a.capacity_rps),
    )
}

/// TTFT vs TPOT at the lowest probed rate (both lower better), lowest TTFT first.
pub fn pareto_latency(results: &[PlanResult]) -> Vec<&PlanResult> {
    let v = results.iter().filter(|r| r.met_at_low).collect();
    frontier(
        v,
        |r| r.ttft_ms_at_low,
        |a, b| a.tpot_ms_at_low.total_cmp(&b.tpot_ms_at_low),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::capacity::Probe;

    fn result(replicas: u32, cap: f64, ttft: f64, tpot: f64) -> PlanResult {
        let params = PlanParams {
            device: "H100-SXM".into(),
            tp: 1,
            pp: 1,
            replicas,
            scheduler: "vllm".into(),
            max_num_seqs: Some(256),
            max_num_batched_tokens: None,
            chunk_size: 512,
            prefill_replicas: 0,
        };
        let probe = Probe {
            rate: cap.max(0.1),
            met: cap > 0.0,
            ttft_ms: ttft,
            tpot_ms: tpot,
            attainment: 1.0,
            slo_ok: cap > 0.0,
            steady: true,
        };
        let capacity = Capacity {
            status: if cap > 0.0 { Status::Ok } else { Status::FailsAtLow },
            capacity: cap,
            first_fail: Some(cap * 1.01),
            probes: vec![probe],
        };
        PlanResult::new(params, "x".into(), 2.0, 700.0, capacity)
    }

    #[test]
    fn derived_figures() {
        let r = result(2, 4.0, 100.0, 10.0);
        assert_eq!(r.gpus, 2);
        assert_eq!(r.cost_per_hour, 4.0);
        assert_eq!(r.capacity_per_gpu, 2.0);
        assert_eq!(r.requests_per_dollar, 3600.0);
        assert!((r.requests_per_kwh - 4.0 * 3600.0 / 1.4).abs() < 1e-9);
        // Each objective scores its own figure.
        assert_eq!(r.score(Objective::PerGpu), 2.0);
        assert_eq!(r.score(Objective::PerWatt), r.requests_per_kwh);
        assert_eq!(r.score(Objective::Capacity), 4.0);
        assert_eq!(r.score(Objective::PerDollar), 3600.0);
    }

    /// A cheaper plan with no capacity is on no frontier.
    #[test]
    fn a_plan_without_capacity_is_not_on_the_cost_frontier() {
        let rs = vec![result(1, 0.0, 50.0, 5.0), result(2, 5.0, 80.0, 30.0)];
        let keys: Vec<u32> = pareto_cost_capacity(&rs)
            .iter()
            .map(|r| r.params.replicas)
            .collect();
        assert_eq!(keys, vec![2]);
    }

    #[test]
    fn ranking_and_frontiers() {
        let rs = vec![
            result(1, 3.0, 100.0, 20.0), // 3 per GPU
            result(2, 5.0, 80.0, 30.0),  // 2.5 per GPU
            result(3, 5.0, 90.0, 10.0),  // dominated in cost/capacity by dp=2
            result(4, 12.0, 200.0, 5.0), // 3 per GPU, more capacity
            result(5, 0.0, 0.0, 0.0),    // fails
        ];
        let keys = |v: Vec<&PlanResult>| v.iter().map(|r| r.params.replicas).collect::<Vec<_>>();
        assert_eq!(keys(rank(&rs, Objective::PerGpu, 0.0)), vec![4, 1, 2, 3]);
        assert_eq!(keys(rank(&rs, Objective::Capacity, 0.0)), vec![4, 2, 3, 1]);
        // Cheapest reaching 5 req/s.
        assert_eq!(keys(rank(&rs, Objective::PerGpu, 5.0)), vec![2, 3, 4]);
        assert_eq!(keys(pareto_cost_capacity(&rs)), vec![1, 2, 4]);
        assert_eq!(keys(pareto_latency(&rs)), vec![2, 3, 4]);
    }
}
