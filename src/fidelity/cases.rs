//! Open-loop cases (`cases.csv`): one engine instance per row, replaying
//! the exact requests it served at their arrival times, configured as vLLM
//! 0.6 configured itself ([`super::vllm_defaults`]).
//!
//! Columns read: `case, engine, model, weight_dtype, kv_dtype, trace,
//! arrival_rate, tp, gpu_memory_utilization, max_model_len` (a number or
//! `default(N)`), `n_requests, ttft_mean_s, itl_mean_s, e2e_mean_s,
//! served_trace` (a path relative to the folder); optional engine settings
//! `max_num_seqs`, `max_num_batched_tokens` and `prefix_caching` (empty or
//! absent: what vLLM 0.6 picks by itself). Other columns are ignored.

use super::table::{Row, Table};
use super::vllm_defaults;
use super::{Labels, Measured, Replay, model_name, quote};
use crate::error::Result;
use std::path::{Path, PathBuf};

/// One measured case (a row of `cases.csv`).
#[derive(Debug, Clone)]
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
    /// Engine settings the run set (`None`: the engine's default).
    pub max_num_seqs: Option<u32>,
    pub max_num_batched_tokens: Option<u32>,
    pub prefix_caching: Option<bool>,
}

const COLUMNS: &[&str] = &[
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

/// Reads `cases.csv` of a case folder.
pub fn load_cases(folder: &Path) -> Result<Vec<Case>> {
    let table = Table::read(&folder.join("cases.csv"), COLUMNS)?;
    table.rows().map(|row| case_of(&row, folder)).collect()
}

fn case_of(row: &Row, folder: &Path) -> Result<Case> {
    let max_model_len = {
        let raw = row.text("max_model_len");
        let digits = raw
            .strip_prefix("default(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or(&raw);
        digits
            .parse::<u32>()
            .map_err(|_| row.bad("max_model_len", "a token count or default(N)"))?
    };
    Ok(Case {
        case: row.text("case"),
        engine: row.text("engine"),
        model: row.text("model"),
        weight_dtype: row.text("weight_dtype"),
        kv_dtype: row.text("kv_dtype"),
        trace: row.text("trace"),
        arrival_rate: row.non_negative("arrival_rate")?,
        tp: row.parse("tp", "a whole number")?,
        gpu_memory_utilization: row.non_negative("gpu_memory_utilization")?,
        max_model_len,
        n_requests: row.parse("n_requests", "a whole number")?,
        ttft_mean_s: row.measured_time("ttft_mean_s")?,
        itl_mean_s: row.measured_time("itl_mean_s")?,
        e2e_mean_s: row.measured_time("e2e_mean_s")?,
        served_trace: folder.join(row.text("served_trace")),
        max_num_seqs: row.optional("max_num_seqs", "a whole number")?,
        max_num_batched_tokens: row.optional("max_num_batched_tokens", "a whole number")?,
        prefix_caching: match row.get("prefix_caching") {
            None | Some("") => None,
            Some(_) => Some(row.flag("prefix_caching")?),
        },
    })
}

/// The `--set` assignments that configure a case's scenario.
pub fn case_overrides(case: &Case, device: &str) -> Vec<String> {
    let d = vllm_defaults::vllm_060(case.max_model_len);
    let budget = case.max_num_batched_tokens.unwrap_or(d.max_num_batched_tokens);
    let mut sets = vec![
        format!("name={}", quote(&case.case)),
        format!("model.name={}", quote(model_name(&case.model))),
        format!("model.dtype={}", quote(&case.weight_dtype.to_ascii_lowercase())),
        format!("model.kv_dtype={}", quote(&case.kv_dtype.to_ascii_lowercase())),
        format!("model.max_model_len={}", case.max_model_len),
        format!("hardware.device={}", quote(device)),
        "cluster.replicas=1".into(),
        format!("cluster.tp={}", case.tp),
        "engine.kind=\"vllm\"".into(),
        "engine.version=\"0.6\"".into(),
        format!("scheduler.kind={}", quote(d.scheduler)),
        format!("scheduler.max_num_batched_tokens={budget}"),
        format!("scheduler.chunk_size={budget}"),
        format!(
            "scheduler.max_num_seqs={}",
            case.max_num_seqs.unwrap_or(d.max_num_seqs)
        ),
        format!("scheduler.block_size={}", d.block_size),
        format!("scheduler.gpu_memory_utilization={}", case.gpu_memory_utilization),
        format!(
            "workload.trace={}",
            quote(&case.served_trace.display().to_string())
        ),
        "workload.count=0".into(),
    ];
    if let Some(on) = case.prefix_caching {
        sets.push(format!("scheduler.prefix_caching={on}"));
    }
    sets
}

/// The replay of a case, or why it cannot be replayed.
pub(super) fn replay(case: &Case, device: &str) -> std::result::Result<Replay, String> {
    if !case.engine.starts_with("vllm-0.6") {
        return Err(format!(
            "engine `{}` is not modelled for open-loop cases (only vLLM 0.6.x defaults are)",
            case.engine
        ));
    }
    Ok(Replay {
        case: case.case.clone(),
        labels: Labels {
            model: model_name(&case.model).to_string(),
            trace: case.trace.clone(),
            tp: case.tp,
            arrival_rate: Some(case.arrival_rate),
            concurrency: None,
        },
        sets: case_overrides(case, device),
        measured: Measured {
            ttft_s: case.ttft_mean_s,
            itl_s: Some(case.itl_mean_s),
            tpot_s: None,
            e2e_s: Some(case.e2e_mean_s),
        },
        peak_tokens: None,
    })
}
