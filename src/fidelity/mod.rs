//! The fidelity harness: replays real measured serving runs and compares
//! fleetsim's predictions with what the real engine reported.
//!
//! A folder holds one or both of:
//! - `cases.csv` ([`cases`]): open-loop runs, one engine instance per row,
//!   with the exact requests it served (APEX+ JSONL), replayed at their
//!   arrival times and compared on mean TTFT, inter-token latency and E2E;
//! - `points.csv` ([`points`], the InferenceX form): fixed-concurrency
//!   benchmark points, replayed with closed-loop clients and compared on
//!   mean TTFT and mean TPOT (per request, then averaged: the benchmark's
//!   definition).
//!
//! Each row is simulated as a single replica with its TP, configured as its
//! engine configured itself. The harness reports, per row and grouped by
//! model, length mix (trace), TP and load, the absolute percentage error of
//! each metric the row measured; it says which rows it skipped and why, and
//! what it does not model. Rows whose clients' sequences cannot all be
//! resident in the simulated KV pool at once are flagged `kv_bound` and
//! summarised apart as well (they test the memory model as much as the time
//! model). It is an error when no row could be simulated.

pub mod cases;
pub mod fit;
pub mod points;
mod table;
pub mod vllm_defaults;

pub use cases::{Case, case_overrides, load_cases};
pub use points::{Point, load_points};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::scenario;
use serde::Serialize;
use std::path::Path;

/// What a row is grouped (and held out) by: the model, the lengths, the
/// TP and the load it ran at.
#[derive(Debug, Clone, Serialize)]
pub struct Labels {
    pub model: String,
    /// The trace's name (open-loop cases) or the `isl/osl` mix (points).
    pub trace: String,
    pub tp: u32,
    /// Open-loop cases: their arrival rate, req/s.
    pub arrival_rate: Option<f64>,
    /// Closed-loop points: their client concurrency.
    pub concurrency: Option<u32>,
}

/// What rows are grouped by, in report order ([`Labels::key`]).
const GROUP_BY: [&str; 4] = ["model", "trace", "tp", "load"];

impl Labels {
    /// `"c=16"` for a point, `"0.25 req/s"` for a case.
    pub fn load(&self) -> String {
        match (self.concurrency, self.arrival_rate) {
            (Some(c), _) => format!("c={c}"),
            (None, Some(rate)) => format!("{rate} req/s"),
            (None, None) => String::new(),
        }
    }

    /// The value of one of [`GROUP_BY`]'s keys.
    fn key(&self, by: &str) -> String {
        match by {
            "model" => self.model.clone(),
            "trace" => self.trace.clone(),
            "tp" => self.tp.to_string(),
            "load" => self.load(),
            other => unreachable!("not a group key: {other}"),
        }
    }
}

/// Predicted vs measured for one row. Errors are absolute percentages; a
/// metric the row did not measure has no measured value and no error.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub case: String,
    #[serde(flatten)]
    pub labels: Labels,
    pub scheduler: String,
    pub requests: u64,
    pub measured_ttft_s: f64,
    pub predicted_ttft_s: f64,
    pub ttft_ape: f64,
    pub measured_itl_s: Option<f64>,
    pub predicted_itl_s: f64,
    pub itl_ape: Option<f64>,
    pub measured_tpot_s: Option<f64>,
    pub predicted_tpot_s: f64,
    pub tpot_ape: Option<f64>,
    pub measured_e2e_s: Option<f64>,
    pub predicted_e2e_s: f64,
    pub e2e_ape: Option<f64>,
    /// Every client's longest sequence at once needs more KV tokens than
    /// the simulated pool holds (`peak_kv_tokens > kv_capacity_tokens`).
    pub kv_bound: bool,
    pub peak_kv_tokens: Option<u64>,
    pub kv_capacity_tokens: u64,
    pub preemptions: u64,
    pub rejected: u64,
}

/// Mean and max absolute percentage error of a group of rows, per metric
/// (`None` when no row of the group measured it).
#[derive(Debug, Clone, Serialize)]
pub struct GroupStats {
    /// "model", "trace", "tp", "load", "all" or "not-kv-bound".
    pub by: String,
    pub value: String,
    pub cases: usize,
    pub ttft_mape: f64,
    pub ttft_max_ape: f64,
    pub itl_mape: Option<f64>,
    pub itl_max_ape: Option<f64>,
    pub tpot_mape: Option<f64>,
    pub tpot_max_ape: Option<f64>,
    pub e2e_mape: Option<f64>,
    pub e2e_max_ape: Option<f64>,
}

/// A case the harness could not simulate, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub case: String,
    pub reason: String,
}

/// Everything the harness found.
#[derive(Debug, Clone, Serialize)]
pub struct FidelityReport {
    pub folder: String,
    pub device: String,
    pub time_model: String,
    pub cases: Vec<CaseResult>,
    pub groups: Vec<GroupStats>,
    /// Over all simulated rows.
    pub aggregate: GroupStats,
    /// Over the rows not flagged `kv_bound` (`None` when none is flagged).
    pub aggregate_not_kv_bound: Option<GroupStats>,
    pub skipped: Vec<Skipped>,
    /// What the simulation leaves out, so the remaining error can be read.
    pub not_modelled: Vec<String>,
}

/// Options of a harness run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Catalog device name; inferred from the folder name when `None`.
    pub device: Option<String>,
    /// `--set` overrides applied to every case's scenario (e.g. a time model or calibration).
    pub overrides: Vec<String>,
}

const NOT_MODELLED: &[&str] = &[
    "tokenisation, detokenisation and HTTP/API-server time outside the engine loop (TTFT is measured inside the engine)",
    "CUDA-graph capture limits are folded into the calibrated per-step CPU overhead, not modelled separately (asynchronous output processing is modelled: `scheduler.async_output`)",
    "run-to-run variation of the real system (kernel autotuning, clock boost, NCCL timing noise)",
    "open-loop cases stop at end-of-sequence: the replay uses the tokens actually generated, so output lengths are exact rather than predicted",
    "closed-loop points draw their request lengths afresh from the benchmark's distribution: the same distribution, not the same draws",
];

/// What a row measured (seconds, each > 0; `None` = not measured).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub ttft_s: f64,
    pub itl_s: Option<f64>,
    pub tpot_s: Option<f64>,
    pub e2e_s: Option<f64>,
}

/// A row made ready to simulate: its scenario and what to compare.
pub(crate) struct Replay {
    pub case: String,
    pub labels: Labels,
    pub sets: Vec<String>,
    pub measured: Measured,
    /// KV tokens the row's clients need when every sequence is at its longest.
    pub peak_tokens: Option<u64>,
}

/// The catalog model a row names ("Mistral-Large-Instruct-2407 (123B dense)" → its catalog entry).
fn model_name(model: &str) -> &str {
    model.split(" (").next().unwrap_or(model).trim()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn infer_device(folder: &Path, catalog: &Catalog) -> Result<String> {
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let guesses = [
        ("h100", "H100-SXM"),
        ("h200", "H200"),
        ("a100", "A100-80GB"),
        ("b200", "B200"),
        ("mi300x", "MI300X"),
        ("l40s", "L40S"),
        ("a40", "A40"),
    ];
    for (token, device) in guesses {
        if name.contains(token) {
            return Ok(catalog.device(device)?.name.clone());
        }
    }
    Err(Error::config(
        folder.display().to_string(),
        "cannot tell the device from the folder name; pass --device NAME (see `fleetsim catalog devices`)",
    ))
}

/// Absolute percentage error; `meas` > 0 (the tables refuse anything else).
fn ape(pred: f64, meas: f64) -> f64 {
    100.0 * (pred - meas).abs() / meas
}

fn simulate(r: &Replay, overrides: &[String]) -> Result<CaseResult> {
    let mut sets = r.sets.clone();
    sets.extend(overrides.iter().cloned());
    let s = scenario::load(None, &sets)?;
    let plan = scenario::validate::plan(&s)?;
    let report = crate::run_plan(&plan, &mut |_| {})?;
    let sm = &report.summary;
    if sm.completed == 0 {
        return Err(Error::Infeasible(format!(
            "no request completed ({} rejected)",
            sm.rejected
        )));
    }
    let (ttft, itl, tpot, e2e) = (
        sm.ttft.mean / 1e3,
        sm.itl.mean / 1e3,
        sm.tpot.mean / 1e3,
        sm.e2el.mean / 1e3,
    );
    let m = r.measured;
    let capacity = plan.memory.num_blocks * plan.replica_options.block_size as u64;
    Ok(CaseResult {
        case: r.case.clone(),
        labels: r.labels.clone(),
        scheduler: plan.scheduler.name.clone(),
        requests: sm.completed,
        measured_ttft_s: m.ttft_s,
        predicted_ttft_s: ttft,
        ttft_ape: ape(ttft, m.ttft_s),
        measured_itl_s: m.itl_s,
        predicted_itl_s: itl,
        itl_ape: m.itl_s.map(|v| ape(itl, v)),
        measured_tpot_s: m.tpot_s,
        predicted_tpot_s: tpot,
        tpot_ape: m.tpot_s.map(|v| ape(tpot, v)),
        measured_e2e_s: m.e2e_s,
        predicted_e2e_s: e2e,
        e2e_ape: m.e2e_s.map(|v| ape(e2e, v)),
        kv_bound: r.peak_tokens.is_some_and(|p| p > capacity),
        peak_kv_tokens: r.peak_tokens,
        kv_capacity_tokens: capacity,
        preemptions: sm.preemptions,
        rejected: sm.rejected,
    })
}

/// Mean and maximum of the errors the rows have (`None` when none has one).
fn mean_max(errors: impl Iterator<Item = Option<f64>>) -> (Option<f64>, Option<f64>) {
    let v: Vec<f64> = errors.flatten().collect();
    if v.is_empty() {
        return (None, None);
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (Some(mean), Some(v.iter().copied().fold(0.0, f64::max)))
}

fn group(by: &str, value: &str, rs: &[&CaseResult]) -> GroupStats {
    let (ttft, ttft_max) = mean_max(rs.iter().map(|r| Some(r.ttft_ape)));
    let (itl, itl_max) = mean_max(rs.iter().map(|r| r.itl_ape));
    let (tpot, tpot_max) = mean_max(rs.iter().map(|r| r.tpot_ape));
    let (e2e, e2e_max) = mean_max(rs.iter().map(|r| r.e2e_ape));
    GroupStats {
        by: by.into(),
        value: value.into(),
        cases: rs.len(),
        ttft_mape: ttft.unwrap_or(0.0),
        ttft_max_ape: ttft_max.unwrap_or(0.0),
        itl_mape: itl,
        itl_max_ape: itl_max,
        tpot_mape: tpot,
        tpot_max_ape: tpot_max,
        e2e_mape: e2e,
        e2e_max_ape: e2e_max,
    }
}

/// Orders group values by their first number when both have one ("c=4"
/// before "c=16", "0.25 req/s" before "0.5 req/s"), else as text.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn leading_number(s: &str) -> Option<f64> {
        let start = s.find(|c: char| c.is_ascii_digit())?;
        let digits: String = s[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        digits.parse().ok()
    }
    match (leading_number(a), leading_number(b)) {
        (Some(x), Some(y)) if x != y => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}

/// The rows of a folder made ready to simulate, and those that cannot be.
pub struct Prepared {
    pub folder: String,
    /// The devices the rows run on, in first-seen order, joined by ", ".
    pub device: String,
    pub(crate) replays: Vec<Replay>,
    pub skipped: Vec<Skipped>,
}

/// Reads `folder` (`cases.csv` and/or `points.csv`) into replays.
pub fn prepare(folder: &Path, opts: &Options) -> Result<Prepared> {
    let catalog = Catalog::builtin();
    // --device wins; else a point's own `device`; else the folder's name.
    let forced = match &opts.device {
        Some(d) => Some(catalog.device(d)?.name.clone()),
        None => None,
    };
    let (has_cases, has_points) = (
        folder.join("cases.csv").is_file(),
        folder.join("points.csv").is_file(),
    );
    if !has_cases && !has_points {
        return Err(Error::config(
            folder.display().to_string(),
            "holds neither cases.csv (open-loop cases) nor points.csv (fixed-concurrency points)",
        ));
    }
    let mut devices: Vec<String> = Vec::new();
    let mut device_for = |own: Option<&str>| -> Result<String> {
        let d = match (&forced, own) {
            (Some(d), _) => d.clone(),
            (None, Some(own)) => catalog.device(own)?.name.clone(),
            (None, None) => infer_device(folder, &catalog)?,
        };
        if !devices.contains(&d) {
            devices.push(d.clone());
        }
        Ok(d)
    };
    let mut replays = Vec::new();
    let mut skipped = Vec::new();
    let mut push = |r: std::result::Result<Replay, String>, case: &str| match r {
        Ok(r) => replays.push(r),
        Err(reason) => skipped.push(Skipped {
            case: case.to_string(),
            reason,
        }),
    };
    if has_cases {
        for c in load_cases(folder)? {
            let device = device_for(None)?;
            push(cases::replay(&c, &device), &c.case);
        }
    }
    if has_points {
        for p in load_points(folder)? {
            let device = device_for(p.device.as_deref())?;
            push(points::replay(&p, &device), &p.case);
        }
    }
    Ok(Prepared {
        folder: folder.display().to_string(),
        device: devices.join(", "),
        replays,
        skipped,
    })
}

/// What [`evaluate`] found: the rows that ran, and those that could not
/// (by their index in [`Prepared`], with why), both in row order.
pub struct Evaluated {
    pub results: Vec<CaseResult>,
    pub failed: Vec<(usize, Skipped)>,
}

/// Simulates the rows of `prepared` that `keep` selects (in parallel; the
/// results keep the rows' order), each with `overrides` after its own
/// settings. A bad override (a configuration error while `overrides` is
/// not empty) is the caller's error for every row, and stops.
pub fn evaluate(
    prepared: &Prepared,
    overrides: &[String],
    keep: &(dyn Fn(usize) -> bool + Sync),
) -> Result<Evaluated> {
    use rayon::prelude::*;
    let outcomes: Vec<(usize, Result<CaseResult>)> = prepared
        .replays
        .par_iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, r)| (i, simulate(r, overrides)))
        .collect();
    let mut done = Evaluated {
        results: Vec::new(),
        failed: Vec::new(),
    };
    for (i, outcome) in outcomes {
        match outcome {
            Ok(res) => done.results.push(res),
            Err(e @ Error::Config { .. }) if !overrides.is_empty() => return Err(e),
            Err(e) => done.failed.push((
                i,
                Skipped {
                    case: prepared.replays[i].case.clone(),
                    reason: e.to_string(),
                },
            )),
        }
    }
    Ok(done)
}

/// The groups of `results` by each of [`GROUP_BY`], each in natural order.
fn groups_of(results: &[CaseResult]) -> Vec<GroupStats> {
    let mut groups = Vec::new();
    for by in GROUP_BY {
        let mut values: Vec<String> = results.iter().map(|r| r.labels.key(by)).collect();
        values.sort_by(|a, b| natural_order(a, b));
        values.dedup();
        for v in values {
            let members: Vec<&CaseResult> = results.iter().filter(|r| r.labels.key(by) == v).collect();
            groups.push(group(by, &v, &members));
        }
    }
    groups
}

/// Mean and max errors over `results` (`by`/`value` name the set).
pub fn summarise(by: &str, value: &str, results: &[CaseResult]) -> GroupStats {
    let all: Vec<&CaseResult> = results.iter().collect();
    group(by, value, &all)
}

/// Replays every row of `folder` (`cases.csv` and/or `points.csv`) and compares.
pub fn run(folder: &Path, opts: &Options) -> Result<FidelityReport> {
    let prepared = prepare(folder, opts)?;
    let Evaluated { results, failed } = evaluate(&prepared, &opts.overrides, &|_| true)?;
    let mut skipped = prepared.skipped.clone();
    skipped.extend(failed.into_iter().map(|(_, s)| s));
    if results.is_empty() {
        let reasons: Vec<String> = skipped
            .iter()
            .map(|s| format!("{}: {}", s.case, s.reason))
            .collect();
        return Err(Error::Infeasible(format!(
            "no row of {} could be simulated:\n  {}",
            folder.display(),
            reasons.join("\n  ")
        )));
    }
    let groups = groups_of(&results);
    let resident: Vec<CaseResult> = results.iter().filter(|r| !r.kv_bound).cloned().collect();
    let aggregate_not_kv_bound =
        (resident.len() < results.len()).then(|| summarise("not-kv-bound", "all", &resident));
    let time_model = opts
        .overrides
        .iter()
        .rev()
        .find_map(|o| o.strip_prefix("hardware.time_model="))
        .unwrap_or("analytical")
        .trim_matches('"')
        .to_string();
    Ok(FidelityReport {
        folder: prepared.folder,
        device: prepared.device,
        time_model,
        aggregate: summarise("all", "all", &results),
        aggregate_not_kv_bound,
        cases: results,
        groups,
        skipped,
        not_modelled: NOT_MODELLED.iter().map(|s| s.to_string()).collect(),
    })
}

impl FidelityReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("fidelity report serializes")
    }

    /// The human-readable report (also the body of `docs/fidelity.md`).
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "Fidelity: {} on {} ({} time model), {} cases simulated, {} skipped\n\n",
            self.folder,
            self.device,
            self.time_model,
            self.cases.len(),
            self.skipped.len()
        ));
        // One column per metric some row measured.
        let has = |f: fn(&CaseResult) -> bool| self.cases.iter().any(f);
        let (itl, tpot, e2e) = (
            has(|r| r.measured_itl_s.is_some()),
            has(|r| r.measured_tpot_s.is_some()),
            has(|r| r.measured_e2e_s.is_some()),
        );
        let cell = |m: Option<f64>, p: f64, e: Option<f64>, scale: f64, digits: usize| match (m, e) {
            (Some(m), Some(e)) => format!(
                " | {:>8.d$} {:>8.d$} {:>6.1}",
                m * scale,
                p * scale,
                e,
                d = digits
            ),
            _ => format!(" | {:>8} {:>8.d$} {:>6}", "-", p * scale, "-", d = digits),
        };
        let head = |name: &str| format!(" | {name:>8} {:>8} {:>6}", "pred", "err%");
        s.push_str(&format!("{:<46} {:>4} {:>8} {:>5}", "case", "TP", "sched", "KV"));
        s.push_str(&head("TTFT ms"));
        if itl {
            s.push_str(&head("ITL ms"));
        }
        if tpot {
            s.push_str(&head("TPOT ms"));
        }
        if e2e {
            s.push_str(&head("E2E s"));
        }
        s.push('\n');
        for r in &self.cases {
            s.push_str(&format!(
                "{:<46} {:>4} {:>8} {:>5}",
                r.case,
                r.labels.tp,
                r.scheduler,
                if r.kv_bound { "bound" } else { "" }
            ));
            s.push_str(&cell(
                Some(r.measured_ttft_s),
                r.predicted_ttft_s,
                Some(r.ttft_ape),
                1e3,
                1,
            ));
            if itl {
                s.push_str(&cell(r.measured_itl_s, r.predicted_itl_s, r.itl_ape, 1e3, 2));
            }
            if tpot {
                s.push_str(&cell(r.measured_tpot_s, r.predicted_tpot_s, r.tpot_ape, 1e3, 2));
            }
            if e2e {
                s.push_str(&cell(r.measured_e2e_s, r.predicted_e2e_s, r.e2e_ape, 1.0, 3));
            }
            s.push('\n');
        }
        let pair = |name: &str| format!(" | {:>9} {:>8}", format!("{name} mean"), "max");
        s.push_str(&format!("\n{:<34} {:>5}", "group (absolute % error)", "cases"));
        s.push_str(&pair("TTFT"));
        if itl {
            s.push_str(&pair("ITL"));
        }
        if tpot {
            s.push_str(&pair("TPOT"));
        }
        if e2e {
            s.push_str(&pair("E2E"));
        }
        s.push('\n');
        let stat = |m: Option<f64>, x: Option<f64>| match (m, x) {
            (Some(m), Some(x)) => format!(" | {m:>9.2} {x:>8.2}"),
            _ => format!(" | {:>9} {:>8}", "-", "-"),
        };
        let groups = self.groups.iter().chain(std::iter::once(&self.aggregate));
        for g in groups.chain(self.aggregate_not_kv_bound.iter()) {
            s.push_str(&format!("{:<34} {:>5}", format!("{}={}", g.by, g.value), g.cases));
            s.push_str(&stat(Some(g.ttft_mape), Some(g.ttft_max_ape)));
            if itl {
                s.push_str(&stat(g.itl_mape, g.itl_max_ape));
            }
            if tpot {
                s.push_str(&stat(g.tpot_mape, g.tpot_max_ape));
            }
            if e2e {
                s.push_str(&stat(g.e2e_mape, g.e2e_max_ape));
            }
            s.push('\n');
        }
        if !self.skipped.is_empty() {
            s.push_str("\nSkipped:\n");
            for k in &self.skipped {
                s.push_str(&format!("- {}: {}\n", k.case, k.reason));
            }
        }
        s.push_str("\nNot modelled:\n");
        for n in &self.not_modelled {
            s.push_str(&format!("- {n}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn group_values_sort_by_their_numbers() {
        assert_eq!(natural_order("c=4", "c=16"), Less);
        assert_eq!(natural_order("0.5 req/s", "0.25 req/s"), Greater);
        assert_eq!(natural_order("1024/1024", "8192/1024"), Less);
        assert_eq!(natural_order("lmsys", "summarization"), Less);
        assert_eq!(natural_order("c=8", "c=8"), Equal);
        assert_eq!(natural_order("a1", "b1"), Less, "equal numbers fall back to text");
        assert_eq!(
            natural_order("2.5 req/s", "10 req/s"),
            Less,
            "decimals read whole"
        );
    }

    #[test]
    fn a_group_has_no_error_for_a_metric_none_of_its_rows_measured() {
        assert_eq!(
            mean_max([Some(2.0), None, Some(4.0)].into_iter()),
            (Some(3.0), Some(4.0))
        );
        assert_eq!(mean_max([None, None].into_iter()), (None, None));
    }
}
