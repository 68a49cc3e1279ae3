//! `fleetsim fit`: an end-to-end fit of time-model constants to measured
//! serving runs, reproducible by one command, with leave-one-group-out
//! errors so that over-fitting shows.
//!
//! The parameters are keys of `[hardware.calibration]`
//! ([`crate::timing::Calibration`]); each starts from the value the
//! scenario resolves (the device's catalog calibration, then `--set`
//! overrides, then `--param NAME=START`). The objective is the mean over
//! rows of ½·TTFT error + the ITL, TPOT and E2E errors each row measured
//! (absolute percentages), over the rows the simulated KV pool can hold
//! (`kv_bound` rows test the memory model, not these constants; they are
//! reported, not fitted). The search is multiplicative coordinate descent:
//! each parameter in turn is scaled by `1 + step` and `1 / (1 + step)`,
//! a change kept when it lowers the objective, the step halved from 0.4
//! when a round changes nothing, until it is below 1%. Each parameter stays
//! within `[start / 1000, min(1000 · start, its largest value)]` (fractions
//! at most 1). Every evaluation replays every selected row, so the fit is
//! deterministic.
//!
//! With `--holdout KEY` (model, trace, tp, load or folder) the fit is
//! repeated once per value of KEY on the rows without that value, and the
//! held-out rows are scored with the constants fitted without them.

use super::{CaseResult, Evaluated, GroupStats, Prepared, evaluate, summarise};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// What to fit.
#[derive(Debug, Clone, Default)]
pub struct FitOptions {
    /// `[hardware.calibration]` keys, each optionally with a start (`name=value`).
    pub params: Vec<String>,
    /// `--set` overrides of every row's scenario (before the parameters).
    pub overrides: Vec<String>,
    /// Leave-one-group-out key: "model", "trace", "tp", "load" or "folder".
    pub holdout: Option<String>,
}

/// One fitted parameter.
#[derive(Debug, Clone, Serialize)]
pub struct Fitted {
    pub name: String,
    pub start: f64,
    pub value: f64,
}

/// The errors of one set of rows with one set of constants.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub objective: f64,
    pub stats: GroupStats,
}

/// One held-out group.
#[derive(Debug, Clone, Serialize)]
pub struct HeldOut {
    pub value: String,
    /// Rows the fit without this group used.
    pub fitted_rows: usize,
    pub params: Vec<Fitted>,
    /// The held-out rows, scored with the constants fitted without them.
    pub held_out: Scored,
}

/// Everything a fit found.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub folders: Vec<String>,
    pub rows: usize,
    /// Rows left out of the objective (KV-bound).
    pub kv_bound: usize,
    pub params: Vec<Fitted>,
    pub before: Scored,
    pub after: Scored,
    pub holdout_by: Option<String>,
    pub holdout: Vec<HeldOut>,
    /// Rows that could not run with the start values (left out of the fit).
    pub skipped: Vec<super::Skipped>,
    /// Objective evaluations of the main fit.
    pub evaluations: usize,
}

const HOLDOUT_KEYS: &[&str] = &["model", "trace", "tp", "load", "folder"];

/// A row, by folder and index within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RowId {
    folder: usize,
    row: usize,
}

/// Weighted mean error of rows (see the module doc).
fn objective_of(results: &[CaseResult]) -> f64 {
    let fitted: Vec<&CaseResult> = results.iter().filter(|r| !r.kv_bound).collect();
    if fitted.is_empty() {
        return f64::INFINITY;
    }
    let row = |r: &CaseResult| {
        0.5 * r.ttft_ape + r.itl_ape.unwrap_or(0.0) + r.tpot_ape.unwrap_or(0.0) + r.e2e_ape.unwrap_or(0.0)
    };
    fitted.iter().map(|r| row(r)).sum::<f64>() / fitted.len() as f64
}

fn assignment(name: &str, value: f64) -> String {
    format!("hardware.calibration.{name}={value:e}")
}

struct Problem<'a> {
    folders: &'a [Prepared],
    overrides: &'a [String],
    names: Vec<String>,
}

impl Problem<'_> {
    /// Simulates the rows `keep` selects with parameter values `values`;
    /// `None` when one of them cannot run with these values (the search
    /// treats that as an infinitely bad trial).
    fn results(
        &self,
        values: &[f64],
        keep: &(dyn Fn(RowId) -> bool + Sync),
    ) -> Result<Option<Vec<CaseResult>>> {
        let mut sets = self.overrides.to_vec();
        sets.extend(self.names.iter().zip(values).map(|(n, v)| assignment(n, *v)));
        let mut all = Vec::new();
        for (f, prepared) in self.folders.iter().enumerate() {
            let Evaluated { mut results, failed } =
                evaluate(prepared, &sets, &|row| keep(RowId { folder: f, row }))?;
            if !failed.is_empty() {
                return Ok(None);
            }
            all.append(&mut results);
        }
        Ok(Some(all))
    }

    fn score(&self, values: &[f64], keep: &(dyn Fn(RowId) -> bool + Sync)) -> Result<Scored> {
        Ok(scored(self.results(values, keep)?.as_deref()))
    }

    /// Coordinate descent (module doc) from `start`, whose score is
    /// `at_start`; returns the values, their score and the number of
    /// evaluations.
    fn descend(
        &self,
        start: &[f64],
        at_start: Scored,
        keep: &(dyn Fn(RowId) -> bool + Sync),
    ) -> Result<(Vec<f64>, Scored, usize)> {
        let mut values = start.to_vec();
        let mut best = at_start;
        let mut evaluations = 0;
        let mut step = 0.4;
        while step >= 0.01 {
            let mut improved = false;
            for i in 0..values.len() {
                for factor in [1.0 + step, 1.0 / (1.0 + step)] {
                    let mut trial = values.clone();
                    let top = (start[i] * 1e3).min(crate::timing::Calibration::upper_bound(&self.names[i]));
                    trial[i] = (trial[i] * factor).clamp(start[i] / 1e3, top);
                    if trial[i] == values[i] {
                        continue; // at its bound: nothing to try
                    }
                    let s = self.score(&trial, keep)?;
                    evaluations += 1;
                    if s.objective < best.objective - 1e-9 {
                        best = s;
                        values = trial;
                        improved = true;
                    }
                }
            }
            if !improved {
                step /= 2.0;
            }
        }
        Ok((values, best, evaluations))
    }
}

/// The score of simulated rows (`None`: a row could not run, an infinitely
/// bad trial).
fn scored(results: Option<&[CaseResult]>) -> Scored {
    match results {
        Some(results) => Scored {
            objective: objective_of(results),
            stats: summarise("fit", "rows", results),
        },
        None => Scored {
            objective: f64::INFINITY,
            stats: summarise("fit", "rows", &[]),
        },
    }
}

/// The start of each parameter: its resolved value in the first row's
/// scenario, or the start given with it.
fn starts(folders: &[Prepared], opts: &FitOptions) -> Result<(Vec<String>, Vec<f64>)> {
    let first = folders
        .iter()
        .find_map(|f| f.replays.first())
        .ok_or_else(|| Error::Infeasible("no row to fit: every row was skipped".into()))?;
    let mut sets = first.sets.clone();
    sets.extend(opts.overrides.iter().cloned());
    let plan = crate::scenario::validate::plan(&crate::scenario::load(None, &sets)?)?;
    let resolved = serde_json::to_value(plan.calibration).expect("a calibration serializes");
    let known: Vec<&str> = resolved
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let (mut names, mut values) = (Vec::new(), Vec::new());
    for p in &opts.params {
        let (name, given) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if !known.contains(&name) {
            return Err(crate::scenario::validate::unknown_name("--param", name, &known));
        }
        if names.iter().any(|n| n == name) {
            return Err(Error::config("--param", format!("`{name}` is given twice")));
        }
        let start = match given {
            Some(v) => v.parse::<f64>().map_err(|_| {
                Error::config("--param", format!("`{name}={v}`: expected a number after `=`"))
            })?,
            None => resolved[name].as_f64().unwrap_or(0.0),
        };
        if !(start.is_finite() && start > 0.0) {
            return Err(Error::config(
                "--param",
                format!(
                    "`{name}` starts at {start}; the fit scales parameters, so give a start above 0 \
                     (`--param {name}=VALUE`)"
                ),
            ));
        }
        let top = crate::timing::Calibration::upper_bound(name);
        if start > top {
            return Err(Error::config(
                "--param",
                format!("`{name}` starts at {start}, above its largest value {top}"),
            ));
        }
        names.push(name.to_string());
        values.push(start);
    }
    if names.is_empty() {
        return Err(Error::config("--param", "name at least one parameter to fit"));
    }
    Ok((names, values))
}

/// Fits `opts.params` to the rows of `folders`.
pub fn fit(folders: &[Prepared], opts: &FitOptions) -> Result<FitReport> {
    if let Some(h) = opts
        .holdout
        .as_ref()
        .filter(|h| !HOLDOUT_KEYS.contains(&h.as_str()))
    {
        return Err(crate::scenario::validate::unknown_name(
            "--holdout",
            h,
            HOLDOUT_KEYS,
        ));
    }
    let (names, start) = starts(folders, opts)?;
    let problem = Problem {
        folders,
        overrides: &opts.overrides,
        names: names.clone(),
    };
    // The rows that run with the start values are the rows of the fit;
    // their results are the score before it.
    let mut sets = opts.overrides.clone();
    sets.extend(names.iter().zip(&start).map(|(n, v)| assignment(n, *v)));
    let mut runnable: BTreeMap<RowId, &super::Labels> = BTreeMap::new();
    let mut at_start: Vec<CaseResult> = Vec::new();
    let mut skipped: Vec<super::Skipped> = Vec::new();
    for (f, prepared) in folders.iter().enumerate() {
        let Evaluated { mut results, failed } = evaluate(prepared, &sets, &|_| true)?;
        for (row, r) in prepared.replays.iter().enumerate() {
            if !failed.iter().any(|(i, _)| *i == row) {
                runnable.insert(RowId { folder: f, row }, &r.labels);
            }
        }
        at_start.append(&mut results);
        skipped.extend(prepared.skipped.iter().cloned());
        skipped.extend(failed.into_iter().map(|(_, s)| s));
    }
    if runnable.is_empty() {
        return Err(Error::Infeasible("no row to fit: every row was skipped".into()));
    }
    let everything = |id: RowId| runnable.contains_key(&id);
    let before = scored(Some(&at_start));
    let (values, after, evaluations) = problem.descend(&start, before.clone(), &everything)?;
    let named = |values: &[f64]| -> Vec<Fitted> {
        names
            .iter()
            .zip(start.iter().zip(values))
            .map(|(n, (s, v))| Fitted {
                name: n.clone(),
                start: *s,
                value: *v,
            })
            .collect()
    };
    let mut holdout = Vec::new();
    if let Some(by) = &opts.holdout {
        let keys: BTreeMap<RowId, String> = runnable
            .iter()
            .map(|(&id, labels)| {
                let key = match by.as_str() {
                    "folder" => folders[id.folder].folder.clone(),
                    by => labels.key(by),
                };
                (id, key)
            })
            .collect();
        let mut values_of_key: Vec<&String> = keys.values().collect();
        values_of_key.sort_by(|a, b| super::natural_order(a, b));
        values_of_key.dedup();
        if values_of_key.len() < 2 {
            return Err(Error::config(
                "--holdout",
                format!("every row has the same {by}: nothing to hold out"),
            ));
        }
        for v in values_of_key {
            let inside = |id: RowId| keys.get(&id).is_some_and(|key| key != v);
            let outside = |id: RowId| keys.get(&id) == Some(v);
            let fold_start = problem.score(&start, &inside)?;
            let (fold, _, _) = problem.descend(&start, fold_start, &inside)?;
            let fitted_rows = keys.values().filter(|key| *key != v).count();
            let mut held_out = problem.score(&fold, &outside)?;
            held_out.stats.by = by.clone();
            held_out.stats.value = v.clone();
            holdout.push(HeldOut {
                value: v.clone(),
                fitted_rows,
                params: named(&fold),
                held_out,
            });
        }
    }
    Ok(FitReport {
        folders: folders.iter().map(|f| f.folder.clone()).collect(),
        rows: at_start.len(),
        kv_bound: at_start.iter().filter(|r| r.kv_bound).count(),
        params: named(&values),
        before,
        after,
        holdout_by: opts.holdout.clone(),
        holdout,
        skipped,
        evaluations,
    })
}

/// Five significant digits, as the catalog writes fitted constants.
fn sig(v: f64) -> String {
    format!("{v:.4e}")
}

fn stats_line(label: &str, s: &GroupStats, objective: f64) -> String {
    let pair = |m: Option<f64>, x: Option<f64>| match (m, x) {
        (Some(m), Some(x)) => format!(" {m:>7.2} {x:>7.2}"),
        _ => format!(" {:>7} {:>7}", "-", "-"),
    };
    format!(
        "{label:<28} {:>5} {objective:>9.2} |{} |{} |{} |{}\n",
        s.cases,
        pair(Some(s.ttft_mape), Some(s.ttft_max_ape)),
        pair(s.itl_mape, s.itl_max_ape),
        pair(s.tpot_mape, s.tpot_max_ape),
        pair(s.e2e_mape, s.e2e_max_ape)
    )
}

impl FitReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a fit report serializes")
    }

    /// The fit, its errors, the held-out errors and the TOML snippet.
    pub fn to_table(&self) -> String {
        let mut s = format!(
            "fit of {} parameter(s) to {} rows of {} ({} KV-bound rows reported, not fitted); {} evaluations\n\n",
            self.params.len(),
            self.rows,
            self.folders.join(", "),
            self.kv_bound,
            self.evaluations
        );
        s.push_str(&format!("{:<34} {:>12} {:>12}\n", "parameter", "start", "fitted"));
        for p in &self.params {
            s.push_str(&format!(
                "{:<34} {:>12} {:>12}\n",
                p.name,
                sig(p.start),
                sig(p.value)
            ));
        }
        s.push_str(&format!(
            "\n{:<28} {:>5} {:>9} | {:>15} | {:>15} | {:>15} | {:>15}\n",
            "absolute % error",
            "rows",
            "objective",
            "TTFT mean max",
            "ITL mean max",
            "TPOT mean max",
            "E2E mean max"
        ));
        s.push_str(&stats_line(
            "before (start values)",
            &self.before.stats,
            self.before.objective,
        ));
        s.push_str(&stats_line(
            "after (in sample)",
            &self.after.stats,
            self.after.objective,
        ));
        if let Some(by) = &self.holdout_by {
            s.push_str(&format!(
                "\nleave-one-{by}-out (each group scored with constants fitted without it):\n"
            ));
            for h in &self.holdout {
                let label = format!("{by}={} (fit on {})", h.value, h.fitted_rows);
                s.push_str(&stats_line(&label, &h.held_out.stats, h.held_out.objective));
            }
            for h in &self.holdout {
                let values: Vec<String> = h
                    .params
                    .iter()
                    .map(|p| format!("{}={}", p.name, sig(p.value)))
                    .collect();
                s.push_str(&format!("  without {by}={}: {}\n", h.value, values.join(" ")));
            }
        }
        if !self.skipped.is_empty() {
            s.push_str(&format!(
                "\n{} rows left out (they cannot run):\n",
                self.skipped.len()
            ));
            for k in &self.skipped {
                s.push_str(&format!("- {}: {}\n", k.case, k.reason));
            }
        }
        s.push_str("\n[hardware.calibration]\n");
        for p in &self.params {
            s.push_str(&format!("{} = {}\n", p.name, sig(p.value)));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ttft_ape: f64, tpot_ape: Option<f64>, e2e_ape: Option<f64>, kv_bound: bool) -> CaseResult {
        CaseResult {
            case: "r".into(),
            labels: crate::fidelity::Labels {
                model: "m".into(),
                trace: "t".into(),
                tp: 1,
                arrival_rate: None,
                concurrency: Some(1),
            },
            scheduler: "vllm-v1".into(),
            requests: 1,
            measured_ttft_s: 1.0,
            predicted_ttft_s: 1.0,
            ttft_ape,
            measured_itl_s: None,
            predicted_itl_s: 0.0,
            itl_ape: None,
            measured_tpot_s: tpot_ape.map(|_| 1.0),
            predicted_tpot_s: 0.0,
            tpot_ape,
            measured_e2e_s: e2e_ape.map(|_| 1.0),
            predicted_e2e_s: 0.0,
            e2e_ape,
            kv_bound,
            peak_kv_tokens: None,
            kv_capacity_tokens: 0,
            preemptions: 0,
            rejected: 0,
        }
    }

    #[test]
    fn the_objective_is_half_the_ttft_error_plus_the_others_over_resident_rows() {
        let rows = [
            row(10.0, Some(4.0), None, false), // 5 + 4
            CaseResult {
                itl_ape: Some(6.0),
                ..row(2.0, None, Some(3.0), false) // 1 + 6 + 3
            },
            row(90.0, Some(50.0), None, true), // KV-bound: left out
        ];
        assert_eq!(objective_of(&rows), (9.0 + 10.0) / 2.0);
        assert_eq!(objective_of(&rows[2..]), f64::INFINITY, "nothing to fit");
    }

    #[test]
    fn parameters_are_set_as_calibration_overrides() {
        assert_eq!(
            assignment("cpu_overhead_base", 7.5e-4),
            "hardware.calibration.cpu_overhead_base=7.5e-4"
        );
        assert_eq!(sig(7.738_26e-4), "7.7383e-4");
    }
}
