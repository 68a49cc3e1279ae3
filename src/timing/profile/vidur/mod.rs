//! Readers for Vidur's profiling tables (microsoft/vidur `data/profiling`, MIT).
//!
//! All times are converted to **seconds** on reading; Vidur writes
//! milliseconds. Of each timed operator's `{min,max,mean,median,std}` columns
//! only the **median** is used, as Vidur's own predictor does
//! (`sklearn_execution_time_predictor.py` trains on `time_stats.<op>.median`).
//!
//! # `compute/<gpu>/<org>/<model>/mlp.csv`
//!
//! One row per `(num_tensor_parallel_workers, num_tokens)`; times of the
//! operators of **one decoder layer** (plus the embedding) on **one device**
//! at that TP degree, in ms, measured with CUDA timers around each operator
//! of Vidur's GPT block (`vidur/profiling/mlp/mlp_impl.py`):
//!
//! | column | operator |
//! |---|---|
//! | `time_stats.emb.*` | vocab-parallel embedding lookup |
//! | `time_stats.input_layernorm.*` | RMSNorm before attention |
//! | `time_stats.attn_pre_proj.*` | QKV projection GEMM (column-parallel) |
//! | `time_stats.attn_rope.*` | rotary embedding of q and k |
//! | `time_stats.attn_post_proj.*` | attention output projection GEMM (row-parallel, without its all-reduce) |
//! | `time_stats.post_attention_layernorm.*` | RMSNorm before the MLP (absent for phi-2, which has none) |
//! | `time_stats.mlp_up_proj.*` | gate+up GEMM (`2·n_expanded_embd/tp` outputs when gated) |
//! | `time_stats.mlp_act.*` | SiLU·mul (gated) or GELU |
//! | `time_stats.mlp_down_proj.*` | down GEMM (row-parallel, without its all-reduce) |
//! | `time_stats.add.*` | the second residual add (the first one is not timed) |
//!
//! then the architecture `n_head, n_kv_head, n_embd, n_expanded_embd,
//! vocab_size, use_gated_mlp` (`True`/`False`; vocab sizes are padded, e.g.
//! 32768 for Llama-2's 32000) and the sweep `num_tokens` (1, 2, 4, 8, then
//! steps of 8 to 1024, 16 to 2048, 32 to 4096 — to 32768 for the Llama-3
//! tables on A100), `num_tensor_parallel_workers` (1, 2, 4, 8; only 1 for
//! phi-2). Some rows are measured twice (2048 and 4096 tokens); the readers
//! keep both and the interpolators average them. Missing optional operator
//! columns or empty cells count as 0 ms, as in Vidur.
//!
//! # `compute/<gpu>/<org>/<model>/attention.csv`
//!
//! Per-layer, per-device attention kernel times (FlashInfer backend) in ms:
//! `time_stats.attn_{input_reshape,kv_cache_save,prefill,decode,output_reshape}.*`
//! (the reshapes are 0 with FlashInfer), then `n_embd, n_q_head, n_kv_head,
//! block_size, num_tensor_parallel_workers, max_model_len, batch_size,
//! prefill_chunk_size, kv_cache_size, is_prefill, attention_backend`.
//! Heads are the model's totals (per device: divided by the TP degree).
//! - **Prefill rows** (`is_prefill = True`, `batch_size = 1`): one sequence
//!   with a chunk of `prefill_chunk_size` new tokens after `kv_cache_size`
//!   cached ones; a triangular sweep: chunk sizes 32…`max_model_len`,
//!   contexts `0, c, 2c, …` while `kv + c ≤ max_model_len`.
//! - **Decode rows** (`is_prefill = False`, `prefill_chunk_size = 0`):
//!   `batch_size` sequences (1…128 on H100, 1…256 on A100) each with
//!   `kv_cache_size` cached tokens (32…`max_model_len`): a full grid.
//! - `attn_kv_cache_save` is the KV-cache write of the row's new tokens
//!   (`max(prefill_chunk_size, batch_size)` tokens, as Vidur keys it).
//!
//! # `network/<node>/all_reduce.csv`, `send_recv.csv`
//!
//! An unnamed index column, `time_stats.<collective>.{min,max,mean,median,std}`
//! (ms), `rank, num_workers, size, collective, devices_per_node,
//! max_devices_per_node`. **`size` is in bytes**: Vidur's profiler allocates
//! a buffer of `n` FP16 elements and records `"size": n * 2  # bytes`
//! (`vidur/profiling/collectives/collectives_wrapper.py`), and its predictor
//! converts back with `num_tokens = size / embedding_dim / 2`. Sizes run from
//! 2 KiB to 64 MiB (to 512 MiB for `a100_pairwise_nvlink`) in 8 KiB…128 KiB
//! steps. `num_workers` GPUs spread over nodes of `devices_per_node` GPUs
//! each: `devices_per_node == num_workers` is a single-node collective; for
//! `send_recv` (always 2 workers) `devices_per_node = 2` is an intra-node hop
//! and `1` a hop between nodes.

use crate::error::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The per-layer operators of `mlp.csv`, in [`MlpRow::ops`] order.
pub const MLP_OPS: [&str; 10] = [
    "emb",
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
];

/// Indices into [`MLP_OPS`].
pub mod op {
    pub const EMB: usize = 0;
    pub const INPUT_NORM: usize = 1;
    pub const QKV: usize = 2;
    pub const ROPE: usize = 3;
    pub const O_PROJ: usize = 4;
    pub const POST_NORM: usize = 5;
    pub const UP: usize = 6;
    pub const ACT: usize = 7;
    pub const DOWN: usize = 8;
    pub const ADD: usize = 9;
}

/// Operators whose columns must be present (the others default to 0, as in Vidur).
const REQUIRED_OPS: [usize; 4] = [op::QKV, op::O_PROJ, op::UP, op::DOWN];

/// The architecture columns of an `mlp.csv` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MlpArch {
    pub n_head: u32,
    pub n_kv_head: u32,
    pub n_embd: u32,
    pub n_expanded_embd: u32,
    pub vocab_size: u32,
    pub gated: bool,
}

/// One `mlp.csv` row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlpRow {
    pub arch: MlpArch,
    pub tp: u32,
    pub tokens: u32,
    /// Median time of each operator of [`MLP_OPS`], seconds.
    pub ops: [f64; 10],
    /// 1-based line in the file.
    pub line: u64,
}

/// A parsed `mlp.csv`.
#[derive(Debug, Clone)]
pub struct MlpProfile {
    pub path: PathBuf,
    pub rows: Vec<MlpRow>,
}

/// One `attention.csv` row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionRow {
    pub n_embd: u32,
    pub n_q_head: u32,
    pub n_kv_head: u32,
    pub block_size: u32,
    pub tp: u32,
    pub max_model_len: u32,
    pub batch_size: u32,
    pub chunk: u32,
    pub kv: u32,
    pub is_prefill: bool,
    /// Median attention kernel time (prefill or decode, plus the reshapes), seconds.
    pub attn: f64,
    /// Median KV-cache write time, seconds.
    pub kv_save: f64,
    pub line: u64,
}

/// A parsed `attention.csv`.
#[derive(Debug, Clone)]
pub struct AttentionProfile {
    pub path: PathBuf,
    pub rows: Vec<AttentionRow>,
}

/// One row of a Vidur network table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollectiveRow {
    pub num_workers: u32,
    pub devices_per_node: u32,
    /// Message size, bytes.
    pub bytes: f64,
    /// Median time, seconds.
    pub secs: f64,
    pub line: u64,
}

/// A parsed `all_reduce.csv` or `send_recv.csv`.
#[derive(Debug, Clone)]
pub struct CollectiveProfile {
    pub path: PathBuf,
    /// `all_reduce` or `send_recv` (from the `time_stats.<collective>.median` column).
    pub collective: String,
    pub rows: Vec<CollectiveRow>,
}

// ---------------------------------------------------------------- CSV helpers

/// A CSV file open for reading, with its header names.
pub(super) struct Csv {
    pub path: PathBuf,
    pub reader: csv::Reader<File>,
    pub headers: Vec<String>,
}

impl Csv {
    pub fn open(path: &Path) -> Result<Csv> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
        let headers = reader
            .headers()
            .map_err(|e| trace(path, Some(1), format!("cannot read the header: {e}")))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        Ok(Csv {
            path: path.to_path_buf(),
            reader,
            headers,
        })
    }

    pub fn col(&self, name: &str) -> Result<usize> {
        self.opt_col(name).ok_or_else(|| {
            trace(
                &self.path,
                Some(1),
                format!(
                    "missing column `{name}` (the header has: {})",
                    self.headers.join(", ")
                ),
            )
        })
    }

    pub fn opt_col(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// Calls `f(record, line)` for each data row; stops at the first error.
    pub fn for_each(&mut self, mut f: impl FnMut(&csv::StringRecord, u64) -> Result<bool>) -> Result<()> {
        let mut rec = csv::StringRecord::new();
        loop {
            let line = self.reader.position().line();
            match self.reader.read_record(&mut rec) {
                Ok(false) => return Ok(()),
                Ok(true) => {
                    let line = rec.position().map_or(line, |p| p.line());
                    if !f(&rec, line)? {
                        return Ok(());
                    }
                }
                Err(e) => {
                    let line = e.position().map(|p| p.line()).or(Some(line));
                    return Err(trace(&self.path, line, e.to_string()));
                }
            }
        }
    }
}

pub(super) fn trace(path: &Path, line: Option<u64>, message: impl Into<String>) -> Error {
    Error::Trace {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Parses field `idx` (named `name`) of a row as a finite number.
pub(super) fn num(rec: &csv::StringRecord, idx: usize, name: &str, path: &Path, line: u64) -> Result<f64> {
    let s = rec.get(idx).unwrap_or("").trim();
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(trace(
            path,
            Some(line),
            format!("column `{name}`: expected a finite number, found `{s}`"),
        )),
    }
}

/// Like [`num`] but an empty cell (pandas NaN) is `None`.
fn opt_num(rec: &csv::StringRecord, idx: usize, name: &str, path: &Path, line: u64) -> Result<Option<f64>> {
    if rec.get(idx).unwrap_or("").trim().is_empty() {
        return Ok(None);
    }
    num(rec, idx, name, path, line).map(Some)
}

/// Parses a non-negative integer column.
pub(super) fn int(rec: &csv::StringRecord, idx: usize, name: &str, path: &Path, line: u64) -> Result<u32> {
    let v = num(rec, idx, name, path, line)?;
    if v < 0.0 || v.fract() != 0.0 || v > u32::MAX as f64 {
        return Err(trace(
            path,
            Some(line),
            format!("column `{name}`: expected a non-negative integer, found {v}"),
        ));
    }
    Ok(v as u32)
}

fn boolean(rec: &csv::StringRecord, idx: usize, name: &str, path: &Path, line: u64) -> Result<bool> {
    match rec.get(idx).unwrap_or("").trim() {
        "True" | "true" | "1" => Ok(true),
        "False" | "false" | "0" => Ok(false),
        s => Err(trace(
            path,
            Some(line),
            format!("column `{name}`: expected True or False, found `{s}`"),
        )),
    }
}

/// A time in ms that must be ≥ 0, converted to seconds.
fn ms(v: f64, name: &str, path: &Path, line: u64) -> Result<f64> {
    if v < 0.0 {
        return Err(trace(
            path,
            Some(line),
            format!("column `{name}`: negative time {v} ms"),
        ));
    }
    Ok(v * 1e-3)
}

// ---------------------------------------------------------------- mlp.csv

/// Reads an `mlp.csv`.
pub fn read_mlp(path: &Path) -> Result<MlpProfile> {
    read_mlp_rows(path, usize::MAX)
}

/// Reads only the first data row of an `mlp.csv` (its architecture), if any.
pub fn peek_mlp(path: &Path) -> Result<Option<MlpRow>> {
    Ok(read_mlp_rows(path, 1)?.rows.first().copied())
}

fn read_mlp_rows(path: &Path, limit: usize) -> Result<MlpProfile> {
    let mut csv = Csv::open(path)?;
    let mut op_cols: [Option<usize>; 10] = [None; 10];
    for (i, name) in MLP_OPS.iter().enumerate() {
        let col = format!("time_stats.{name}.median");
        op_cols[i] = csv.opt_col(&col);
        if op_cols[i].is_none() && REQUIRED_OPS.contains(&i) {
            csv.col(&col)?;
        }
    }
    let c_head = csv.col("n_head")?;
    let c_kv = csv.col("n_kv_head")?;
    let c_embd = csv.col("n_embd")?;
    let c_exp = csv.col("n_expanded_embd")?;
    let c_vocab = csv.col("vocab_size")?;
    let c_gated = csv.col("use_gated_mlp")?;
    let c_tokens = csv.col("num_tokens")?;
    let c_tp = csv.col("num_tensor_parallel_workers")?;
    let path_buf = csv.path.clone();
    let p = path_buf.as_path();
    let mut rows = Vec::new();
    csv.for_each(|rec, line| {
        let arch = MlpArch {
            n_head: int(rec, c_head, "n_head", p, line)?,
            n_kv_head: int(rec, c_kv, "n_kv_head", p, line)?,
            n_embd: int(rec, c_embd, "n_embd", p, line)?,
            n_expanded_embd: int(rec, c_exp, "n_expanded_embd", p, line)?,
            vocab_size: int(rec, c_vocab, "vocab_size", p, line)?,
            gated: boolean(rec, c_gated, "use_gated_mlp", p, line)?,
        };
        let mut ops = [0.0; 10];
        for (i, c) in op_cols.iter().enumerate() {
            if let Some(c) = *c {
                let name = MLP_OPS[i];
                let v = if REQUIRED_OPS.contains(&i) {
                    Some(num(rec, c, name, p, line)?)
                } else {
                    opt_num(rec, c, name, p, line)?
                };
                ops[i] = ms(v.unwrap_or(0.0), name, p, line)?;
            }
        }
        let tokens = int(rec, c_tokens, "num_tokens", p, line)?;
        let tp = int(rec, c_tp, "num_tensor_parallel_workers", p, line)?;
        if tokens == 0 || tp == 0 {
            return Err(trace(
                p,
                Some(line),
                "num_tokens and num_tensor_parallel_workers must be ≥ 1",
            ));
        }
        rows.push(MlpRow {
            arch,
            tp,
            tokens,
            ops,
            line,
        });
        Ok(rows.len() < limit)
    })?;
    Ok(MlpProfile { path: path_buf, rows })
}

// ---------------------------------------------------------------- attention.csv

/// Reads an `attention.csv`.
pub fn read_attention(path: &Path) -> Result<AttentionProfile> {
    read_attention_rows(path, usize::MAX)
}

/// Reads only the first data row of an `attention.csv`, if any.
pub fn peek_attention(path: &Path) -> Result<Option<AttentionRow>> {
    Ok(read_attention_rows(path, 1)?.rows.first().copied())
}

fn read_attention_rows(path: &Path, limit: usize) -> Result<AttentionProfile> {
    let mut csv = Csv::open(path)?;
    let t_prefill = csv.col("time_stats.attn_prefill.median")?;
    let t_decode = csv.col("time_stats.attn_decode.median")?;
    let t_save = csv.opt_col("time_stats.attn_kv_cache_save.median");
    let t_in = csv.opt_col("time_stats.attn_input_reshape.median");
    let t_out = csv.opt_col("time_stats.attn_output_reshape.median");
    let c_embd = csv.col("n_embd")?;
    let c_q = csv.col("n_q_head")?;
    let c_kv = csv.col("n_kv_head")?;
    let c_block = csv.col("block_size")?;
    let c_tp = csv.col("num_tensor_parallel_workers")?;
    let c_len = csv.col("max_model_len")?;
    let c_batch = csv.col("batch_size")?;
    let c_chunk = csv.col("prefill_chunk_size")?;
    let c_kvsize = csv.col("kv_cache_size")?;
    let c_is_prefill = csv.col("is_prefill")?;
    let path_buf = csv.path.clone();
    let p = path_buf.as_path();
    let mut rows = Vec::new();
    csv.for_each(|rec, line| {
        let opt_ms = |c: Option<usize>, name: &str| -> Result<f64> {
            match c {
                Some(c) => ms(opt_num(rec, c, name, p, line)?.unwrap_or(0.0), name, p, line),
                None => Ok(0.0),
            }
        };
        let is_prefill = boolean(rec, c_is_prefill, "is_prefill", p, line)?;
        let reshape = opt_ms(t_in, "attn_input_reshape")? + opt_ms(t_out, "attn_output_reshape")?;
        let attn = if is_prefill {
            ms(num(rec, t_prefill, "attn_prefill", p, line)?, "attn_prefill", p, line)?
        } else {
            ms(num(rec, t_decode, "attn_decode", p, line)?, "attn_decode", p, line)?
        } + reshape;
        let row = AttentionRow {
            n_embd: int(rec, c_embd, "n_embd", p, line)?,
            n_q_head: int(rec, c_q, "n_q_head", p, line)?,
            n_kv_head: int(rec, c_kv, "n_kv_head", p, line)?,
            block_size: int(rec, c_block, "block_size", p, line)?,
            tp: int(rec, c_tp, "num_tensor_parallel_workers", p, line)?,
            max_model_len: int(rec, c_len, "max_model_len", p, line)?,
            batch_size: int(rec, c_batch, "batch_size", p, line)?,
            chunk: int(rec, c_chunk, "prefill_chunk_size", p, line)?,
            kv: int(rec, c_kvsize, "kv_cache_size", p, line)?,
            is_prefill,
            attn,
            kv_save: opt_ms(t_save, "attn_kv_cache_save")?,
            line,
        };
        if row.tp == 0 || row.batch_size == 0 || (row.is_prefill && row.chunk == 0) {
            return Err(trace(
                p,
                Some(line),
                "num_tensor_parallel_workers, batch_size and (for prefill rows) prefill_chunk_size must be ≥ 1",
            ));
        }
        rows.push(row);
        Ok(rows.len() < limit)
    })?;
    Ok(AttentionProfile { path: path_buf, rows })
}

// ---------------------------------------------------------------- network

/// Reads a Vidur `all_reduce.csv` or `send_recv.csv`.
pub fn read_collective(path: &Path) -> Result<CollectiveProfile> {
    let mut csv = Csv::open(path)?;
    let medians: Vec<&String> = csv
        .headers
        .iter()
        .filter(|h| h.starts_with("time_stats.") && h.ends_with(".median"))
        .collect();
    if medians.len() != 1 {
        return Err(trace(
            path,
            Some(1),
            format!(
                "expected exactly one `time_stats.<collective>.median` column, found {}",
                medians.len()
            ),
        ));
    }
    let time_name = medians[0].clone();
    let collective = time_name["time_stats.".len()..time_name.len() - ".median".len()].to_string();
    let c_time = csv.col(&time_name)?;
    let c_workers = csv.col("num_workers")?;
    let c_size = csv.col("size")?;
    let c_dpn = csv.col("devices_per_node")?;
    let path_buf = csv.path.clone();
    let p = path_buf.as_path();
    let mut rows = Vec::new();
    csv.for_each(|rec, line| {
        let bytes = num(rec, c_size, "size", p, line)?;
        if bytes <= 0.0 {
            return Err(trace(
                p,
                Some(line),
                format!("column `size`: must be > 0, found {bytes}"),
            ));
        }
        rows.push(CollectiveRow {
            num_workers: int(rec, c_workers, "num_workers", p, line)?,
            devices_per_node: int(rec, c_dpn, "devices_per_node", p, line)?,
            bytes,
            secs: ms(num(rec, c_time, &time_name, p, line)?, &time_name, p, line)?,
            line,
        });
        Ok(true)
    })?;
    Ok(CollectiveProfile {
        path: path_buf,
        collective,
        rows,
    })
}

#[cfg(test)]
mod tests;
