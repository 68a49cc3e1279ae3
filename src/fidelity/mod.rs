//! The fidelity harness: replays real measured serving runs and compares
//! fleetsim's predictions with what the real engine reported.
//!
//! A case folder holds `cases.csv` (one row per engine instance: model,
//! dtypes, TP, `gpu_memory_utilization`, `max_model_len`, the measured mean
//! TTFT / inter-token latency / E2E, and the path of the exact requests it
//! served) and the served traces (APEX+ JSONL). Each case is simulated as a
//! single replica with that TP, configured as the engine configured itself
//! ([`vllm_defaults`]), replaying its served requests at their arrival times.
//! The harness reports, per case and aggregated by model, trace and TP, the
//! absolute percentage error of each metric, and says which cases it skipped
//! and what it does not model.

pub mod vllm_defaults;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::scenario;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One measured case (a row of `cases.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub case: String,
    pub engine: String,
    pub model: String,
    pub weight_dtype: String,
    pub kv_dtype: String,
    pub trace: String,
    pub arrival_rate: f64,
    pub tp: u32,
    pub gpu_memory_utilization: f64,
    /// `max_model_len` as the engine ran (the default resolved to a number).
    pub max_model_len: u32,
    pub n_requests: u64,
    pub ttft_mean_s: f64,
    pub itl_mean_s: f64,
    pub e2e_mean_s: f64,
    pub served_trace: PathBuf,
}

/// Predicted vs measured for one case. Errors are absolute percentages.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub case: String,
    pub model: String,
    pub trace: String,
    pub arrival_rate: f64,
    pub tp: u32,
    pub scheduler: String,
    pub requests: u64,
    pub measured_ttft_s: f64,
    pub predicted_ttft_s: f64,
    pub ttft_ape: f64,
    pub measured_itl_s: f64,
    pub predicted_itl_s: f64,
    pub itl_ape: f64,
    pub measured_e2e_s: f64,
    pub predicted_e2e_s: f64,
    pub e2e_ape: f64,
    pub preemptions: u64,
    pub rejected: u64,
}

/// Mean and max absolute percentage error of a group of cases.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStats {
    /// "model", "trace", "tp" or "all".
    pub by: String,
    pub value: String,
    pub cases: usize,
    pub ttft_mape: f64,
    pub ttft_max_ape: f64,
    pub itl_mape: f64,
    pub itl_max_ape: f64,
    pub e2e_mape: f64,
    pub e2e_max_ape: f64,
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
    /// Over all simulated cases: `itl_mape`, `e2e_mape`, `ttft_mape` (percent) and maxima.
    pub aggregate: GroupStats,
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
    "requests stop at end-of-sequence: the replay uses the tokens actually generated, so output lengths are exact rather than predicted",
];

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

/// Reads `cases.csv` of a case folder.
pub fn load_cases(folder: &Path) -> Result<Vec<Case>> {
    let path = folder.join("cases.csv");
    let mut rdr = csv::Reader::from_path(&path).map_err(|e| Error::Trace {
        path: path.clone(),
        line: None,
        message: e.to_string(),
    })?;
    let headers = rdr
        .headers()
        .map_err(|e| Error::Trace {
            path: path.clone(),
            line: Some(1),
            message: e.to_string(),
        })?
        .clone();
    let col = |name: &str| -> Result<usize> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::Trace {
                path: path.clone(),
                line: Some(1),
                message: format!(
                    "missing column `{name}` (found: {})",
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            })
    };
    let names = [
        "case",
        "engine",
        "model",
        "weight_dtype",
        "kv_dtype",
        "trace",
        "arrival_rate",
        "tp",
        "gpu_memory_utilization",
        "max_model_len",
        "n_requests",
        "ttft_mean_s",
        "itl_mean_s",
        "e2e_mean_s",
        "served_trace",
    ];
    let idx: Vec<usize> = names.iter().map(|n| col(n)).collect::<Result<_>>()?;
    let mut cases = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| Error::Trace {
            path: path.clone(),
            line: Some(line),
            message: e.to_string(),
        })?;
        let field = |k: usize| rec.get(idx[k]).unwrap_or("").trim().to_string();
        let bad = |k: usize, what: &str| Error::Trace {
            path: path.clone(),
            line: Some(line),
            message: format!("column `{}`: expected {what}, found `{}`", names[k], field(k)),
        };
        let num = |k: usize| field(k).parse::<f64>().map_err(|_| bad(k, "a number"));
        let max_model_len = {
            let raw = field(9);
            let digits = raw
                .strip_prefix("default(")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or(&raw);
            digits
                .parse::<u32>()
                .map_err(|_| bad(9, "a token count or default(N)"))?
        };
        cases.push(Case {
            case: field(0),
            engine: field(1),
            model: field(2),
            weight_dtype: field(3),
            kv_dtype: field(4),
            trace: field(5),
            arrival_rate: num(6)?,
            tp: field(7).parse().map_err(|_| bad(7, "a whole number"))?,
            gpu_memory_utilization: num(8)?,
            max_model_len,
            n_requests: field(10).parse().map_err(|_| bad(10, "a whole number"))?,
            ttft_mean_s: num(11)?,
            itl_mean_s: num(12)?,
            e2e_mean_s: num(13)?,
            served_trace: folder.join(field(14)),
        });
    }
    if cases.is_empty() {
        return Err(Error::Trace {
            path,
            line: None,
            message: "no cases".into(),
        });
    }
    Ok(cases)
}

/// The catalog model a case names ("Mistral-Large-Instruct-2407 (123B dense)" → its catalog entry).
fn model_name(case: &Case) -> &str {
    case.model.split(" (").next().unwrap_or(&case.model).trim()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `--set` assignments that configure a case's scenario.
pub fn case_overrides(case: &Case, device: &str) -> Vec<String> {
    let d = vllm_defaults::vllm_060(case.max_model_len);
    vec![
        format!("name={}", quote(&case.case)),
        format!("model.name={}", quote(model_name(case))),
        format!("model.dtype={}", quote(&case.weight_dtype.to_ascii_lowercase())),
        format!("model.kv_dtype={}", quote(&case.kv_dtype.to_ascii_lowercase())),
        format!("model.max_model_len={}", case.max_model_len),
        format!("hardware.device={}", quote(device)),
        "cluster.replicas=1".into(),
        format!("cluster.tp={}", case.tp),
        format!("scheduler.kind={}", quote(d.scheduler)),
        format!("scheduler.max_num_batched_tokens={}", d.max_num_batched_tokens),
        format!("scheduler.chunk_size={}", d.max_num_batched_tokens),
        format!("scheduler.max_num_seqs={}", d.max_num_seqs),
        format!("scheduler.block_size={}", d.block_size),
        format!("scheduler.gpu_memory_utilization={}", case.gpu_memory_utilization),
        format!(
            "workload.trace={}",
            quote(&case.served_trace.display().to_string())
        ),
        "workload.count=0".into(),
    ]
}

fn ape(pred: f64, meas: f64) -> f64 {
    if meas == 0.0 {
        0.0
    } else {
        100.0 * (pred - meas).abs() / meas
    }
}

fn simulate(case: &Case, device: &str, opts: &Options) -> Result<CaseResult> {
    if !case.engine.starts_with("vllm-0.6") {
        return Err(Error::Infeasible(format!(
            "engine `{}` is not modelled (only vLLM 0.6.x defaults are)",
            case.engine
        )));
    }
    let mut sets = case_overrides(case, device);
    sets.extend(opts.overrides.iter().cloned());
    let s = scenario::load(None, &sets)?;
    let plan = scenario::validate::plan(&s)?;
    let report = crate::run_plan(&plan, &mut |_| {})?;
    let sm = &report.summary;
    let (ttft, itl, e2e) = (sm.ttft.mean / 1e3, sm.itl.mean / 1e3, sm.e2el.mean / 1e3);
    Ok(CaseResult {
        case: case.case.clone(),
        model: model_name(case).to_string(),
        trace: case.trace.clone(),
        arrival_rate: case.arrival_rate,
        tp: case.tp,
        scheduler: plan.scenario.scheduler.kind.clone(),
        requests: sm.completed,
        measured_ttft_s: case.ttft_mean_s,
        predicted_ttft_s: ttft,
        ttft_ape: ape(ttft, case.ttft_mean_s),
        measured_itl_s: case.itl_mean_s,
        predicted_itl_s: itl,
        itl_ape: ape(itl, case.itl_mean_s),
        measured_e2e_s: case.e2e_mean_s,
        predicted_e2e_s: e2e,
        e2e_ape: ape(e2e, case.e2e_mean_s),
        preemptions: sm.preemptions,
        rejected: sm.rejected,
    })
}

fn group(by: &str, value: &str, rs: &[&CaseResult]) -> GroupStats {
    let n = rs.len().max(1) as f64;
    let mean = |f: fn(&CaseResult) -> f64| rs.iter().map(|r| f(r)).sum::<f64>() / n;
    let max = |f: fn(&CaseResult) -> f64| rs.iter().map(|r| f(r)).fold(0.0, f64::max);
    GroupStats {
        by: by.into(),
        value: value.into(),
        cases: rs.len(),
        ttft_mape: mean(|r| r.ttft_ape),
        ttft_max_ape: max(|r| r.ttft_ape),
        itl_mape: mean(|r| r.itl_ape),
        itl_max_ape: max(|r| r.itl_ape),
        e2e_mape: mean(|r| r.e2e_ape),
        e2e_max_ape: max(|r| r.e2e_ape),
    }
}

/// Replays every case of `folder` and compares.
pub fn run(folder: &Path, opts: &Options) -> Result<FidelityReport> {
    let catalog = Catalog::builtin();
    let device = match &opts.device {
        Some(d) => catalog.device(d)?.name.clone(),
        None => infer_device(folder, &catalog)?,
    };
    let cases = load_cases(folder)?;
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for case in &cases {
        match simulate(case, &device, opts) {
            Ok(r) => results.push(r),
            // A bad override is the user's error for every case: stop.
            Err(e @ Error::Config { .. }) if !opts.overrides.is_empty() => return Err(e),
            Err(e) => skipped.push(Skipped {
                case: case.case.clone(),
                reason: e.to_string(),
            }),
        }
    }
    let mut groups = Vec::new();
    type Key = fn(&CaseResult) -> String;
    let keys: [(&str, Key); 3] = [
        ("model", |r| r.model.clone()),
        ("trace", |r| r.trace.clone()),
        ("tp", |r| r.tp.to_string()),
    ];
    for (by, key) in keys {
        let mut values: Vec<String> = results.iter().map(key).collect();
        values.sort();
        values.dedup();
        for v in values {
            let members: Vec<&CaseResult> = results.iter().filter(|r| key(r) == v).collect();
            groups.push(group(by, &v, &members));
        }
    }
    let all: Vec<&CaseResult> = results.iter().collect();
    let time_model = opts
        .overrides
        .iter()
        .rev()
        .find_map(|o| o.strip_prefix("hardware.time_model="))
        .unwrap_or("analytical")
        .trim_matches('"')
        .to_string();
    Ok(FidelityReport {
        folder: folder.display().to_string(),
        device,
        time_model,
        aggregate: group("all", "all", &all),
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
        s.push_str(&format!(
            "{:<46} {:>4} {:>8} | {:>8} {:>8} {:>6} | {:>7} {:>7} {:>6} | {:>7} {:>7} {:>6}\n",
            "case",
            "TP",
            "sched",
            "TTFT ms",
            "pred",
            "err%",
            "ITL ms",
            "pred",
            "err%",
            "E2E s",
            "pred",
            "err%"
        ));
        for r in &self.cases {
            s.push_str(&format!(
                "{:<46} {:>4} {:>8} | {:>8.1} {:>8.1} {:>6.1} | {:>7.2} {:>7.2} {:>6.1} | {:>7.3} {:>7.3} {:>6.1}\n",
                r.case,
                r.tp,
                r.scheduler,
                r.measured_ttft_s * 1e3,
                r.predicted_ttft_s * 1e3,
                r.ttft_ape,
                r.measured_itl_s * 1e3,
                r.predicted_itl_s * 1e3,
                r.itl_ape,
                r.measured_e2e_s,
                r.predicted_e2e_s,
                r.e2e_ape
            ));
        }
        s.push_str(&format!(
            "\n{:<34} {:>5} | {:>9} {:>8} | {:>9} {:>8} | {:>9} {:>8}\n",
            "group (absolute % error)", "cases", "TTFT mean", "max", "ITL mean", "max", "E2E mean", "max"
        ));
        for g in self.groups.iter().chain(std::iter::once(&self.aggregate)) {
            s.push_str(&format!(
                "{:<34} {:>5} | {:>9.2} {:>8.2} | {:>9.2} {:>8.2} | {:>9.2} {:>8.2}\n",
                format!("{}={}", g.by, g.value),
                g.cases,
                g.ttft_mape,
                g.ttft_max_ape,
                g.itl_mape,
                g.itl_max_ape,
                g.e2e_mape,
                g.e2e_max_ape
            ));
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
