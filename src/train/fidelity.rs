//! `fleetsim fidelity DIR` on measured training runs: a folder with
//! `train_cases.csv` (one published or measured run per row), optionally
//! `catalog.toml` (models the rows name that the built-in catalog lacks)
//! and `base.toml` (a training scenario every row starts from: the
//! software of the era the runs were measured with, e.g. fp32 gradients
//! reduced after the backward). Each row is simulated and its predicted
//! TFLOP/s per GPU (executed FLOPs, recomputation included, as the papers
//! count them) compared with the measured one.
//!
//! Nothing here is fitted: the time model's constants come from the
//! device's serving calibration, so every row is out of sample.
//!
//! Columns: `source` (the group rows are summarised by), `model`, `device`,
//! `tp`, `pp`, `dp`, `vpp`, `schedule`, `micro_batch`, `global_batch`,
//! `seq_len`, `zero_stage`, `recompute`, `measured_tflops_per_gpu`.

use super::config::TrainScenario;
use super::memory::Recompute;
use super::run;
use super::schedule::ScheduleKind;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One measured run.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainCase {
    pub source: String,
    pub model: String,
    pub device: String,
    pub tp: u32,
    pub pp: u32,
    pub dp: u32,
    pub vpp: u32,
    pub schedule: ScheduleKind,
    pub micro_batch: u32,
    pub global_batch: u32,
    pub seq_len: u32,
    pub zero_stage: u8,
    pub recompute: Recompute,
    pub measured_tflops_per_gpu: f64,
}

/// A row's prediction.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrainCaseResult {
    pub case: TrainCase,
    pub gpus: u64,
    pub predicted_tflops_per_gpu: f64,
    /// (predicted − measured) / measured, percent.
    pub error_pct: f64,
    pub mfu: f64,
    pub bubble_fraction: f64,
    pub peak_memory_gib: f64,
}

/// Error statistics of a group of rows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrainGroup {
    pub source: String,
    pub cases: usize,
    pub mean_abs_error_pct: f64,
    pub mean_error_pct: f64,
    pub worst_error_pct: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrainFidelity {
    pub results: Vec<TrainCaseResult>,
    /// Per source, in name order, then `all`.
    pub groups: Vec<TrainGroup>,
}

/// Whether `folder` holds training cases.
pub fn is_training_folder(folder: &Path) -> bool {
    folder.join("train_cases.csv").is_file()
}

/// Reads the cases (errors name the file and row).
pub fn read_cases(path: &Path) -> Result<Vec<TrainCase>> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| Error::config(path.display().to_string(), e.to_string()))?;
    let mut cases = Vec::new();
    for (i, row) in reader.deserialize::<TrainCase>().enumerate() {
        let case = row.map_err(|e| {
            Error::config(
                format!("{} row {}", path.display(), i + 2),
                crate::error::in_user_words(&e.to_string()),
            )
        })?;
        cases.push(case);
    }
    if cases.is_empty() {
        return Err(Error::config(path.display().to_string(), "holds no cases"));
    }
    Ok(cases)
}

fn group(source: &str, rows: &[&TrainCaseResult]) -> TrainGroup {
    let n = rows.len().max(1) as f64;
    TrainGroup {
        source: source.to_string(),
        cases: rows.len(),
        mean_abs_error_pct: rows.iter().map(|r| r.error_pct.abs()).sum::<f64>() / n,
        mean_error_pct: rows.iter().map(|r| r.error_pct).sum::<f64>() / n,
        worst_error_pct: rows
            .iter()
            .map(|r| r.error_pct)
            .fold(0.0, |w, e| if e.abs() > w.abs() { e } else { w }),
    }
}

/// Simulates every row of `folder/train_cases.csv` and compares.
pub fn run(folder: &Path, overrides: &[String]) -> Result<TrainFidelity> {
    let cases = read_cases(&folder.join("train_cases.csv"))?;
    let base_path = folder.join("base.toml");
    let base: TrainScenario =
        crate::scenario::load::load_training(base_path.is_file().then_some(base_path.as_path()), overrides)?;
    let catalog = folder.join("catalog.toml");
    let mut results = Vec::with_capacity(cases.len());
    for (i, c) in cases.into_iter().enumerate() {
        let mut s = base.clone();
        if catalog.is_file() {
            s.catalog = Some(catalog.clone());
        }
        s.name = format!("{} row {}", c.source, i + 2);
        s.model.name = c.model.clone();
        s.hardware.device = c.device.clone();
        let p = &mut s.parallel;
        (p.tp, p.pp, p.dp, p.vpp) = (c.tp, c.pp, c.dp, c.vpp);
        let t = &mut s.training;
        t.schedule = c.schedule;
        t.micro_batch = c.micro_batch;
        t.global_batch = c.global_batch;
        t.seq_len = c.seq_len;
        t.zero_stage = c.zero_stage;
        t.recompute = c.recompute;
        let report = run::plan(&s)
            .and_then(|plan| run::simulate(&plan))
            .map_err(|e| Error::config(format!("train_cases.csv row {}", i + 2), e.to_string()))?
            .report;
        results.push(TrainCaseResult {
            gpus: report.gpus,
            predicted_tflops_per_gpu: report.tflops_per_gpu,
            error_pct: 100.0 * (report.tflops_per_gpu - c.measured_tflops_per_gpu)
                / c.measured_tflops_per_gpu,
            mfu: report.mfu,
            bubble_fraction: report.bubble_fraction,
            peak_memory_gib: report.peak_memory_gib,
            case: c,
        });
    }
    let mut by: BTreeMap<&str, Vec<&TrainCaseResult>> = BTreeMap::new();
    for r in &results {
        by.entry(r.case.source.as_str()).or_default().push(r);
    }
    let mut groups: Vec<TrainGroup> = by.iter().map(|(s, rows)| group(s, rows)).collect();
    let all: Vec<&TrainCaseResult> = results.iter().collect();
    groups.push(group("all", &all));
    Ok(TrainFidelity { results, groups })
}

impl TrainFidelity {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("fidelity results serialize")
    }

    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<22} {:<12} {:>5} {:>3} {:>3} {:>4} {:>3} {:>5} {:>9} {:>9} {:>7}",
            "source", "model", "gpus", "tp", "pp", "dp", "mb", "zero", "measured", "predicted", "error"
        );
        for r in &self.results {
            let c = &r.case;
            let _ = writeln!(
                s,
                "{:<22} {:<12} {:>5} {:>3} {:>3} {:>4} {:>3} {:>5} {:>9.1} {:>9.1} {:>+6.1}%",
                c.source,
                c.model,
                r.gpus,
                c.tp,
                c.pp,
                c.dp,
                c.micro_batch,
                c.zero_stage,
                c.measured_tflops_per_gpu,
                r.predicted_tflops_per_gpu,
                r.error_pct
            );
        }
        let _ = writeln!(
            s,
            "TFLOP/s per GPU error by source (no constant fitted to these runs):"
        );
        for g in &self.groups {
            let _ = writeln!(
                s,
                "  {:<22} {:>3} cases  mean |error| {:>5.1}%  mean {:>+5.1}%  worst {:>+6.1}%",
                g.source, g.cases, g.mean_abs_error_pct, g.mean_error_pct, g.worst_error_pct
            );
        }
        s
    }
}
