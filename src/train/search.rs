//! `fleetsim search` over training plans: a training scenario plus a
//! `[search]` section listing the values to try for each knob (TP, PP,
//! virtual stages, EP, CP, micro-batch, schedule, ZeRO stage,
//! recomputation) on a fixed GPU count. Data parallelism fills the rest
//! (`dp = gpus / (tp·pp·cp)`); the global batch stays the scenario's.
//!
//! Every combination is simulated ([`super::run::simulate`]); plans that
//! cannot run are pruned and counted by reason (the error with its numbers
//! replaced by `#`, one example kept), the rest ranked by the objective.
//! Plans are independent and evaluated on rayon's pool in an order-keeping
//! map, so the result is the same whatever the thread count.

use super::config::TrainScenario;
use super::memory::Recompute;
use super::run::{self, TrainReport};
use super::schedule::ScheduleKind;
use crate::error::{Error, Result};
use crate::scenario::kinds::{Kind, kinds};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

kinds! {
    /// `search.objective`: how training plans are ranked.
    pub enum TrainObjective {
        /// Highest tokens per second.
        TokensPerS = "tokens_per_s",
        /// Lowest cost of the run (GPUs × price per hour × time to train).
        Cost = "cost",
        /// Shortest time to train the token budget (goodput included).
        TimeToTrain = "time_to_train",
    }
}

/// `[search]` of a training space. Unset lists keep the scenario's value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainSearch {
    /// GPUs every plan uses.
    pub gpus: u32,
    #[serde(default)]
    pub tp: Vec<u32>,
    #[serde(default)]
    pub pp: Vec<u32>,
    #[serde(default)]
    pub vpp: Vec<u32>,
    #[serde(default)]
    pub ep: Vec<u32>,
    #[serde(default)]
    pub cp: Vec<u32>,
    #[serde(default)]
    pub micro_batch: Vec<u32>,
    #[serde(default)]
    pub schedule: Vec<ScheduleKind>,
    #[serde(default)]
    pub zero_stage: Vec<u8>,
    #[serde(default)]
    pub recompute: Vec<Recompute>,
    #[serde(default = "default_objective")]
    pub objective: TrainObjective,
    /// Plans printed (all are in the JSON and `plans.jsonl`).
    #[serde(default = "default_top")]
    pub top: usize,
}

fn default_objective() -> TrainObjective {
    TrainObjective::TokensPerS
}
fn default_top() -> usize {
    10
}

/// A loaded training space.
#[derive(Debug, Clone)]
pub struct TrainSpace {
    pub base: TrainScenario,
    pub search: TrainSearch,
}

/// Whether search-space text describes training plans: it has a
/// `[training]` or `[parallel]` section, which serving scenarios do not.
pub fn is_training_space(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .is_ok_and(|t| t.contains_key("training") || t.contains_key("parallel"))
}

/// Reads a training space: the scenario part through the training loader
/// (lines and keys in errors, `--set` overrides), `[search]` on its own.
pub fn load(path: &Path, overrides: &[String]) -> Result<TrainSpace> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let origin = path.display().to_string();
    let mut table: toml::Table = crate::scenario::load::parse_toml(&text, &origin)?;
    let (search_sets, base_sets): (Vec<String>, Vec<String>) = overrides
        .iter()
        .cloned()
        .partition(|o| o.trim_start().starts_with("search."));
    let Some(search) = table.remove("search") else {
        return Err(Error::config(
            &origin,
            "a training search space needs a [search] section",
        ));
    };
    let mut search_table = toml::Table::new();
    search_table.insert("search".into(), search);
    for o in &search_sets {
        crate::scenario::load::apply_override(&mut search_table, o)?;
    }
    let search: TrainSearch =
        toml::Value::Table(search_table["search"].as_table().cloned().unwrap_or_default())
            .try_into()
            .map_err(|e: toml::de::Error| {
                Error::config(
                    format!("{origin}: [search]"),
                    crate::error::in_user_words(e.message()),
                )
            })?;
    if search.gpus == 0 {
        return Err(Error::config("key `search.gpus`", "must be at least 1, found 0"));
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = crate::scenario::load::load_training_table(table, &origin, &dir, &base_sets)?;
    Ok(TrainSpace { base, search })
}

/// One candidate's knobs.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Knobs {
    pub tp: u32,
    pub pp: u32,
    pub vpp: u32,
    pub dp: u32,
    pub ep: u32,
    pub cp: u32,
    pub micro_batch: u32,
    pub schedule: ScheduleKind,
    pub zero_stage: u8,
    pub recompute: Recompute,
}

impl Knobs {
    /// A short key, e.g. `tp8-pp4-v2-dp16-ep1-cp1-mb1-interleaved-z1-selective`.
    pub fn key(&self) -> String {
        format!(
            "tp{}-pp{}-v{}-dp{}-ep{}-cp{}-mb{}-{}-z{}-{}",
            self.tp,
            self.pp,
            self.vpp,
            self.dp,
            self.ep,
            self.cp,
            self.micro_batch,
            self.schedule,
            self.zero_stage,
            self.recompute
        )
    }

    fn apply(&self, base: &TrainScenario) -> TrainScenario {
        let mut s = base.clone();
        let (p, t) = (&mut s.parallel, &mut s.training);
        (p.tp, p.pp, p.vpp, p.dp, p.ep, p.cp) = (self.tp, self.pp, self.vpp, self.dp, self.ep, self.cp);
        t.micro_batch = self.micro_batch;
        t.schedule = self.schedule;
        t.zero_stage = self.zero_stage;
        t.recompute = self.recompute;
        s
    }
}

/// A feasible plan and its figures.
#[derive(Debug, Clone, Serialize)]
pub struct RankedPlan {
    pub key: String,
    pub knobs: Knobs,
    pub iteration_s: f64,
    pub tokens_per_s: f64,
    pub mfu: f64,
    pub bubble_fraction: f64,
    pub peak_memory_gib: f64,
    pub goodput: f64,
    pub time_to_train_s: f64,
    /// GPUs × price per GPU-hour × time to train, USD.
    pub cost_usd: f64,
}

/// Plans pruned for one reason.
#[derive(Debug, Clone, Serialize)]
pub struct PrunedTrain {
    pub reason: String,
    pub count: usize,
    pub example: String,
    pub example_error: String,
}

/// The search's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSearchOutcome {
    pub objective: String,
    pub gpus: u32,
    pub candidates: usize,
    /// Feasible plans, best first.
    pub plans: Vec<RankedPlan>,
    pub pruned: Vec<PrunedTrain>,
}

fn or_base<T: Copy>(list: &[T], base: T) -> Vec<T> {
    if list.is_empty() {
        vec![base]
    } else {
        list.to_vec()
    }
}

/// Every combination, in a fixed order (TP, PP, v, EP, CP, micro-batch,
/// schedule, ZeRO, recompute, each in its list's order); combinations
/// whose `tp·pp·cp` does not divide the GPU count come back as errors.
/// `vpp` varies for the interleaved schedule only (the others run one
/// chunk per device, ZBV two): each other schedule runs with vpp = 1, once.
pub fn enumerate(space: &TrainSpace) -> Vec<std::result::Result<Knobs, (String, String)>> {
    let (b, s) = (&space.base, &space.search);
    let (bp, bt) = (&b.parallel, &b.training);
    let mut out = Vec::new();
    for &tp in &or_base(&s.tp, bp.tp) {
        for &pp in &or_base(&s.pp, bp.pp) {
            for (vi, &vpp) in or_base(&s.vpp, bp.vpp).iter().enumerate() {
                for &ep in &or_base(&s.ep, bp.ep) {
                    for &cp in &or_base(&s.cp, bp.cp) {
                        for &micro_batch in &or_base(&s.micro_batch, bt.micro_batch) {
                            for &schedule in &or_base(&s.schedule, bt.schedule) {
                                // Only interleaving reads `vpp` (ZBV always
                                // runs two chunks): other schedules try
                                // vpp = 1 once instead of repeating a plan.
                                if schedule != ScheduleKind::Interleaved && vi > 0 {
                                    continue;
                                }
                                let vpp = if schedule == ScheduleKind::Interleaved {
                                    vpp
                                } else {
                                    1
                                };
                                for &zero_stage in &or_base(&s.zero_stage, bt.zero_stage) {
                                    for &recompute in &or_base(&s.recompute, bt.recompute) {
                                        let inner = tp as u64 * pp as u64 * cp as u64;
                                        let knobs = Knobs {
                                            tp,
                                            pp,
                                            vpp,
                                            dp: (s.gpus as u64).checked_div(inner).unwrap_or(0) as u32,
                                            ep,
                                            cp,
                                            micro_batch,
                                            schedule,
                                            zero_stage,
                                            recompute,
                                        };
                                        if inner == 0 || !(s.gpus as u64).is_multiple_of(inner) {
                                            out.push(Err((
                                                knobs.key(),
                                                format!(
                                                    "tp·pp·cp = {inner} does not divide the {} GPUs",
                                                    s.gpus
                                                ),
                                            )));
                                        } else {
                                            out.push(Ok(knobs));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// A reason with its numbers as `#`, so that plans failing the same check group.
fn reason_of(error: &str) -> String {
    let mut out = String::with_capacity(error.len());
    let mut in_number = false;
    for c in error.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

fn ranked(key: String, knobs: Knobs, r: &TrainReport, price_per_hour: f64) -> RankedPlan {
    RankedPlan {
        key,
        knobs,
        iteration_s: r.iteration_s,
        tokens_per_s: r.tokens_per_s,
        mfu: r.mfu,
        bubble_fraction: r.bubble_fraction,
        peak_memory_gib: r.peak_memory_gib,
        goodput: r.goodput,
        time_to_train_s: r.time_to_train_s,
        cost_usd: r.gpus as f64 * price_per_hour * r.time_to_train_s / 3600.0,
    }
}

/// Simulates every candidate and ranks the feasible ones.
pub fn run(space: &TrainSpace) -> Result<TrainSearchOutcome> {
    let candidates = enumerate(space);
    let evaluated: Vec<std::result::Result<RankedPlan, (String, String)>> = candidates
        .par_iter()
        .map(|c| {
            let knobs = c.clone()?;
            let key = knobs.key();
            let s = knobs.apply(&space.base);
            match run::plan(&s).and_then(|p| Ok((run::simulate(&p)?, p.device.price_per_hour))) {
                Ok((r, price)) => Ok(ranked(key, knobs, &r.report, price)),
                Err(e) => Err((key, e.to_string())),
            }
        })
        .collect();
    let mut plans = Vec::new();
    let mut pruned: BTreeMap<String, PrunedTrain> = BTreeMap::new();
    for e in evaluated {
        match e {
            Ok(p) => plans.push(p),
            Err((key, error)) => {
                let reason = reason_of(&error);
                pruned
                    .entry(reason.clone())
                    .and_modify(|p| p.count += 1)
                    .or_insert(PrunedTrain {
                        reason,
                        count: 1,
                        example: key,
                        example_error: error,
                    });
            }
        }
    }
    let objective = space.search.objective;
    let score = |p: &RankedPlan| match objective {
        TrainObjective::TokensPerS => -p.tokens_per_s,
        TrainObjective::Cost => p.cost_usd,
        TrainObjective::TimeToTrain => p.time_to_train_s,
    };
    // Stable sort: ties keep the enumeration order.
    plans.sort_by(|a, b| score(a).total_cmp(&score(b)));
    let mut pruned: Vec<PrunedTrain> = pruned.into_values().collect();
    pruned.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
    Ok(TrainSearchOutcome {
        objective: objective.name().to_string(),
        gpus: space.search.gpus,
        candidates: candidates.len(),
        plans,
        pruned,
    })
}

/// The outcome as text: the best plans, then the pruning reasons.
pub fn to_table(o: &TrainSearchOutcome, top: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} candidate plans on {} GPUs: {} feasible, ranked by {}",
        o.candidates,
        o.gpus,
        o.plans.len(),
        o.objective
    );
    let _ = writeln!(
        s,
        "  {:<58} {:>10} {:>6} {:>7} {:>8} {:>10} {:>11}",
        "plan", "tokens/s", "MFU %", "bubble", "mem GiB", "train h", "cost $"
    );
    for p in o.plans.iter().take(top) {
        let _ = writeln!(
            s,
            "  {:<58} {:>10.0} {:>6.1} {:>6.1}% {:>8.1} {:>10.1} {:>11.0}",
            p.key,
            p.tokens_per_s,
            100.0 * p.mfu,
            100.0 * p.bubble_fraction,
            p.peak_memory_gib,
            p.time_to_train_s / 3600.0,
            p.cost_usd
        );
    }
    if !o.pruned.is_empty() {
        let _ = writeln!(s, "pruned:");
        for p in &o.pruned {
            let _ = writeln!(s, "  {:>6} × {}  (e.g. {})", p.count, p.example_error, p.example);
        }
    }
    s
}

/// The best plan as a training scenario file `fleetsim train` runs.
pub fn best_toml(space: &TrainSpace, o: &TrainSearchOutcome) -> Option<String> {
    let best = o.plans.first()?;
    let s = best.knobs.apply(&space.base);
    toml::to_string(&s).ok()
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
