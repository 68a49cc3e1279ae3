//! `fleetsim search`: capacity planning over a space of deployment plans.
//!
//! Given a search-space file ([`space`]: a base scenario plus a `[search]`
//! section), the search
//! 1. enumerates the candidate plans (devices × TP × PP × replicas ×
//!    scheduler settings) and prunes those that cannot run, counting why
//!    ([`space::enumerate`]);
//! 2. finds each remaining plan's capacity — the highest arrival rate it
//!    serves within the SLO — by bracketing and bisection over the rate
//!    ([`capacity`]), plans in parallel on rayon's thread pool;
//! 3. ranks plans per GPU, per dollar and per watt and computes the Pareto
//!    frontiers ([`rank`]);
//! 4. writes `plans.jsonl`, `pareto.csv` and `best.toml` ([`output`]).
//!
//! Results stream to `plans.jsonl` as plans finish; a rerun with the same
//! output folder reuses every line whose key and space fingerprint
//! ([`fingerprint`]: scenario, files read, build identity) match, so an
//! interrupted search resumes. Each plan's result depends only on the
//! plan and the space (no shared state between plans, no wall clock), and
//! every output is sorted by plan, so the files are byte-identical whatever
//! the thread count or completion order.

pub mod capacity;
pub mod fingerprint;
pub mod output;
pub mod rank;
pub mod space;

use crate::error::{Error, Result};
use crate::scenario::Scenario;
use capacity::{Bracket, RateWorkload};
use rank::PlanResult;
use rayon::prelude::*;
use serde::Serialize;
use space::{Candidate, Space};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use space::load;

/// What the progress callback is told after each plan.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Plans finished (reused ones included) and plans in all.
    pub done: usize,
    pub total: usize,
    /// Best plan so far by the objective: key and a short figure.
    pub best: Option<String>,
}

/// A pruning reason with its count and one example plan.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    /// The check that failed, with its numbers as `#` (one line per check).
    pub reason: String,
    pub count: usize,
    pub example: String,
    /// The example plan's reason in full, numbers and all.
    pub example_reason: String,
}

/// The result of a search.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub space: String,
    /// Candidate plans before pruning.
    pub considered: usize,
    pub pruned: Vec<Pruned>,
    /// Plans simulated now, and plans taken from an earlier `plans.jsonl`.
    pub simulated: usize,
    pub reused: usize,
    /// Lines of an existing `plans.jsonl` that were not reused (other space
    /// fingerprint, or unreadable, e.g. cut short by an interruption).
    pub discarded_lines: usize,
    /// Requests per probe and the rate bracket used.
    pub requests_per_probe: usize,
    pub rate_low: f64,
    pub rate_high: f64,
    pub tolerance: f64,
    pub objective: rank::Objective,
    pub target_rate: f64,
    /// Every searched plan, in plan order.
    pub results: Vec<PlanResult>,
    /// Keys of the plans ranked best first (capacity > 0).
    pub ranking: Vec<String>,
    /// Keys on the cost-vs-capacity and TTFT-vs-TPOT frontiers.
    pub pareto_cost_capacity: Vec<String>,
    pub pareto_latency: Vec<String>,
    /// The best plan's scenario with its arrival rate set to its capacity.
    #[serde(skip)]
    pub best_scenario: Option<Scenario>,
    /// Rows of the printed table.
    pub top: usize,
}

impl Outcome {
    /// The best plan, if any plan has capacity > 0 (and reaches the target).
    pub fn best(&self) -> Option<&PlanResult> {
        let key = self.ranking.first()?;
        self.results.iter().find(|r| &r.key == key)
    }
}

/// Runs the search. With `out`, writes `plans.jsonl` as plans finish and
/// `pareto.csv` and `best.toml` at the end, reusing finished plans from an
/// earlier run into the same folder. `progress` is called after each plan
/// (from worker threads). Uses the current rayon thread pool.
pub fn run(space: &Space, out: Option<&Path>, progress: &(dyn Fn(Progress) + Sync)) -> Result<Outcome> {
    let en = space::enumerate(space)?;
    if en.candidates.is_empty() {
        // Nothing to search: a space-wide error (e.g. `slo.ttft = -1`),
        // reported as the error it is rather than as "no plan meets the SLO".
        let (key, reason) = en
            .first_pruned
            .clone()
            .unwrap_or_else(|| ("(none)".into(), "the space has no plans".into()));
        return Err(Error::config(
            space.origin.clone(),
            format!(
                "all {} candidate plans were pruned, so there is nothing to search; the first, {key}, because {reason}",
                en.considered
            ),
        ));
    }
    let workload = RateWorkload::prepare(&space.base)?;
    let bracket = Bracket::resolve(&space.search.rate, workload.scenario_rate(&space.base));
    let criteria = capacity::Criteria {
        min_attainment: space.search.min_attainment,
        min_window_latencies: space.search.rate.min_window_latencies,
    };
    let fp = fingerprint::fingerprint(space, &bracket, &criteria)?;
    let s = &space.search;

    let jsonl_path = out.map(|d| d.join("plans.jsonl"));
    let (mut previous, discarded) = match &jsonl_path {
        Some(p) => output::read_jsonl(p, &fp)?,
        None => (BTreeMap::new(), 0),
    };
    // Keep only lines of plans still in the space; start the file with them.
    let live: std::collections::BTreeSet<String> = en.candidates.iter().map(|c| c.params.key()).collect();
    previous.retain(|k, _| live.contains(k));
    let writer = match (out, &jsonl_path) {
        (Some(dir), Some(p)) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let kept: Vec<PlanResult> = previous.values().cloned().collect();
            output::write_jsonl(p, &kept)?;
            let f = std::fs::OpenOptions::new()
                .append(true)
                .open(p)
                .map_err(|e| Error::io(p, e))?;
            Some(Mutex::new(f))
        }
        _ => None,
    };

    let total = en.candidates.len();
    let state = Mutex::new((0usize, None::<(f64, String)>));
    let io_error: Mutex<Option<Error>> = Mutex::new(None);
    let finish_one = |r: &PlanResult, fresh: bool| {
        if fresh && let (Some(w), Some(p)) = (&writer, &jsonl_path) {
            let line = output::jsonl_line(r);
            let mut f = w.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = f.write_all(line.as_bytes()).and_then(|_| f.flush()) {
                io_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(Error::io(p, e));
            }
        }
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 += 1;
        if r.capacity_rps > 0.0 && r.capacity_rps >= s.target_rate {
            let score = if s.target_rate > 0.0 {
                -r.cost_per_hour
            } else {
                r.score(s.objective)
            };
            if st.1.as_ref().is_none_or(|(b, _)| score > *b) {
                st.1 = Some((score, format!("{} ({:.3} req/s)", r.key, r.capacity_rps)));
            }
        }
        progress(Progress {
            done: st.0,
            total,
            best: st.1.as_ref().map(|(_, k)| k.clone()),
        });
    };

    let results: Vec<Result<(PlanResult, bool)>> = en
        .candidates
        .par_iter()
        .map(|c: &Candidate| {
            let key = c.params.key();
            let (search, fresh) = match previous.get(&key) {
                Some(prev) => (prev.search.clone(), false),
                None => {
                    let cap = capacity::search(&bracket, |rate| {
                        capacity::probe(&c.plan, &workload, rate, &criteria)
                    })?;
                    (cap, true)
                }
            };
            let r = PlanResult::new(
                c.params.clone(),
                fp.clone(),
                c.price_per_hour,
                c.power_watts,
                search,
            );
            finish_one(&r, fresh);
            Ok((r, fresh))
        })
        .collect();
    drop(writer);
    if let Some(e) = io_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut all = Vec::with_capacity(results.len());
    let mut simulated = 0;
    for r in results {
        let (r, fresh) = r?;
        simulated += fresh as usize;
        all.push(r);
    }
    all.sort_by(|a, b| a.params.cmp(&b.params));

    let keys = |v: Vec<&PlanResult>| v.into_iter().map(|r| r.key.clone()).collect::<Vec<_>>();
    let ranking = keys(rank::rank(&all, s.objective, s.target_rate));
    let pareto_cost_capacity = keys(rank::pareto_cost_capacity(&all));
    let pareto_latency = keys(rank::pareto_latency(&all));
    let best_scenario = ranking.first().and_then(|k| {
        let r = all.iter().find(|r| &r.key == k)?;
        let mut sc = r.params.scenario(&space.base);
        // State the engine's max_num_seqs the plan ran with, so best.toml
        // reads the same on a build whose engine defaults differ.
        if sc.scheduler.max_num_seqs.is_none()
            && let Ok(plan) = crate::scenario::validate::plan(&sc)
        {
            sc.scheduler.max_num_seqs = plan.scenario.scheduler.max_num_seqs;
        }
        workload.set_rate(&mut sc, r.capacity_rps);
        let name = if space.base.name.is_empty() {
            "search"
        } else {
            &space.base.name
        };
        sc.name = format!("{name} best: {}", r.key);
        Some(sc)
    });
    let mut pruned: Vec<Pruned> = en
        .pruned
        .iter()
        .map(|(reason, (count, example, example_reason))| Pruned {
            reason: reason.clone(),
            count: *count,
            example: example.clone(),
            example_reason: example_reason.clone(),
        })
        .collect();
    pruned.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    let outcome = Outcome {
        space: space.origin.clone(),
        considered: en.considered,
        pruned,
        simulated,
        reused: total - simulated,
        discarded_lines: discarded,
        requests_per_probe: workload.len(),
        rate_low: bracket.low,
        rate_high: bracket.high,
        tolerance: bracket.tolerance,
        objective: s.objective,
        target_rate: s.target_rate,
        results: all,
        ranking,
        pareto_cost_capacity,
        pareto_latency,
        best_scenario,
        top: s.top,
    };
    if let Some(dir) = out {
        output::write_all(dir, &outcome)?;
    }
    Ok(outcome)
}

/// The files a search writes into its output folder.
pub fn output_files(dir: &Path) -> [PathBuf; 3] {
    [
        dir.join("plans.jsonl"),
        dir.join("pareto.csv"),
        dir.join("best.toml"),
    ]
}
