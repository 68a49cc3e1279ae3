//! Closed-loop points (`points.csv`, the InferenceX form): a benchmark
//! client keeping a fixed number of requests in flight against one engine
//! instance, each point reporting mean TTFT and mean TPOT.
//!
//! A point is replayed as its client ran (vLLM's `benchmark_serving.py`
//! random dataset, as the InferenceX fork draws it): `concurrency` clients
//! start at 0, each sending its next request the moment its previous one
//! completes (`--max-concurrency`, `--request-rate inf`), `num_prompts`
//! requests in all; input lengths uniform on `[⌊r·isl⌋, isl]` and output
//! lengths on `[⌊r·osl⌋, osl]` with `r = random_range_ratio`, every request
//! generating exactly its output length (`--ignore-eos`).
//!
//! Columns read: `case, engine, model, weight_dtype, kv_dtype, tp, isl, osl,
//! random_range_ratio, concurrency, num_prompts, max_num_seqs,
//! max_num_batched_tokens, prefix_caching, mean_ttft_s, mean_tpot_s`;
//! optional `device`, `gpu_memory_utilization` and `max_model_len` (absent:
//! the harness's device, and the engine's own defaults — vLLM's 0.9 and the
//! model's context length).

use super::table::{Row, Table};
use super::{Labels, Measured, Replay, model_name, quote};
use crate::error::Result;
use std::path::Path;

/// One measured closed-loop point (a row of `points.csv`).
#[derive(Debug, Clone)]
pub struct Point {
    pub case: String,
    pub engine: String,
    pub model: String,
    pub weight_dtype: String,
    pub kv_dtype: String,
    /// The catalog device the point ran on, when the file says (the
    /// harness's `--device` overrides it).
    pub device: Option<String>,
    pub tp: u32,
    pub isl: u32,
    pub osl: u32,
    pub random_range_ratio: f64,
    pub concurrency: u32,
    pub num_prompts: u64,
    pub max_num_seqs: u32,
    pub max_num_batched_tokens: u32,
    pub prefix_caching: bool,
    pub gpu_memory_utilization: Option<f64>,
    pub max_model_len: Option<u32>,
    pub mean_ttft_s: f64,
    pub mean_tpot_s: f64,
}

const COLUMNS: &[&str] = &[
    "case",
    "engine",
    "model",
    "weight_dtype",
    "kv_dtype",
    "tp",
    "isl",
    "osl",
    "random_range_ratio",
    "concurrency",
    "num_prompts",
    "max_num_seqs",
    "max_num_batched_tokens",
    "prefix_caching",
    "mean_ttft_s",
    "mean_tpot_s",
];

/// Reads `points.csv` of a folder.
pub fn load_points(folder: &Path) -> Result<Vec<Point>> {
    let table = Table::read(&folder.join("points.csv"), COLUMNS)?;
    table.rows().map(|row| point_of(&row)).collect()
}

fn point_of(row: &Row) -> Result<Point> {
    let whole = |c: &str| row.parse::<u32>(c, "a whole number");
    let positive = |c: &str| match whole(c)? {
        0 => Err(row.bad(c, "a whole number ≥ 1")),
        n => Ok(n),
    };
    let ratio = row.non_negative("random_range_ratio")?;
    if ratio > 1.0 {
        return Err(row.bad("random_range_ratio", "a number in [0, 1]"));
    }
    Ok(Point {
        case: row.text("case"),
        engine: row.text("engine"),
        model: row.text("model"),
        weight_dtype: row.text("weight_dtype"),
        kv_dtype: row.text("kv_dtype"),
        device: row.get("device").filter(|d| !d.is_empty()).map(str::to_string),
        tp: positive("tp")?,
        isl: positive("isl")?,
        osl: positive("osl")?,
        random_range_ratio: ratio,
        concurrency: positive("concurrency")?,
        num_prompts: row.parse("num_prompts", "a whole number")?,
        max_num_seqs: positive("max_num_seqs")?,
        max_num_batched_tokens: positive("max_num_batched_tokens")?,
        prefix_caching: row.flag("prefix_caching")?,
        gpu_memory_utilization: row.optional("gpu_memory_utilization", "a number")?,
        max_model_len: row.optional("max_model_len", "a token count")?,
        mean_ttft_s: row.measured_time("mean_ttft_s")?,
        mean_tpot_s: row.measured_time("mean_tpot_s")?,
    })
}

/// The `[engine]` (kind, version) of an engine named like
/// `vllm-0.10.2 (V1, ...)` or `sglang-0.4.6`: the engine profile then picks
/// V0 or V1 for vLLM (V1 by default from 0.8: vLLM v0.8.0 release notes,
/// March 2025) and the scheduler and host costs that go with it.
fn engine_of(engine: &str) -> Option<(&'static str, String)> {
    let name = engine
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let (kind, version) = if let Some(v) = name.strip_prefix("sglang-") {
        ("sglang", v)
    } else {
        ("vllm", name.strip_prefix("vllm-")?)
    };
    let numeric = version
        .split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric.then(|| (kind, version.to_string()))
}

/// The lower end of a random-dataset length draw (`⌊r·len⌋`, at least 1):
/// the InferenceX fork of `benchmark_serving.py` draws lengths uniformly on
/// `[r·len, len]` (`../shared/ground-truth/inferencex-h100/README.md`), where
/// upstream vLLM draws on `[(1−r)·len, (1+r)·len]`.
fn low_end(len: u32, ratio: f64) -> u32 {
    ((ratio * len as f64).floor() as u32).clamp(1, len)
}

/// The `--set` assignments that configure a point's scenario.
fn point_overrides(p: &Point, device: &str, (engine, version): (&str, String)) -> Vec<String> {
    let mut sets = vec![
        format!("name={}", quote(&p.case)),
        format!("model.name={}", quote(model_name(&p.model))),
        format!("model.dtype={}", quote(&p.weight_dtype.to_ascii_lowercase())),
        format!("model.kv_dtype={}", quote(&p.kv_dtype.to_ascii_lowercase())),
        format!("hardware.device={}", quote(device)),
        "cluster.replicas=1".into(),
        format!("cluster.tp={}", p.tp),
        format!("engine.kind={}", quote(engine)),
        format!("engine.version={}", quote(&version)),
        format!("scheduler.max_num_batched_tokens={}", p.max_num_batched_tokens),
        format!("scheduler.chunk_size={}", p.max_num_batched_tokens),
        format!("scheduler.max_num_seqs={}", p.max_num_seqs),
        format!("scheduler.prefix_caching={}", p.prefix_caching),
        format!("workload.concurrency={}", p.concurrency),
        format!("workload.count={}", p.num_prompts),
        "workload.prompt.kind=\"uniform\"".into(),
        format!("workload.prompt.min={}", low_end(p.isl, p.random_range_ratio)),
        format!("workload.prompt.max={}", p.isl),
        "workload.output.kind=\"uniform\"".into(),
        format!("workload.output.min={}", low_end(p.osl, p.random_range_ratio)),
        format!("workload.output.max={}", p.osl),
    ];
    if let Some(m) = p.max_model_len {
        sets.push(format!("model.max_model_len={m}"));
    }
    if let Some(g) = p.gpu_memory_utilization {
        sets.push(format!("scheduler.gpu_memory_utilization={g}"));
    }
    sets
}

/// The replay of a point on `device`, or why it cannot be replayed.
pub(super) fn replay(p: &Point, device: &str) -> std::result::Result<Replay, String> {
    let Some(engine) = engine_of(&p.engine) else {
        return Err(format!(
            "engine `{}` is not modelled (vllm-X.Y and sglang-X.Y are)",
            p.engine
        ));
    };
    Ok(Replay {
        case: p.case.clone(),
        labels: Labels {
            model: model_name(&p.model).to_string(),
            trace: format!("{}/{}", p.isl, p.osl),
            tp: p.tp,
            arrival_rate: None,
            concurrency: Some(p.concurrency),
        },
        sets: point_overrides(p, device, engine),
        measured: Measured {
            ttft_s: p.mean_ttft_s,
            itl_s: None,
            tpot_s: Some(p.mean_tpot_s),
            e2e_s: None,
        },
        peak_tokens: Some(p.concurrency as u64 * (p.isl as u64 + p.osl as u64)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_map_to_an_engine_section() {
        let e = |name: &str| engine_of(name).map(|(k, v)| format!("{k} {v}"));
        assert_eq!(
            e("vllm-0.10.2 (V1, async scheduling)").as_deref(),
            Some("vllm 0.10.2")
        );
        assert_eq!(e("vllm-0.7.3").as_deref(), Some("vllm 0.7.3"));
        assert_eq!(e("SGLang-0.4.6").as_deref(), Some("sglang 0.4.6"));
        assert_eq!(e("tensorrt-llm"), None);
        assert_eq!(e("vllm-x"), None);
        assert_eq!(e("vllm-0..1"), None);
    }

    #[test]
    fn the_random_dataset_draws_from_ratio_times_length_up_to_length() {
        assert_eq!(low_end(1024, 0.8), 819);
        assert_eq!(low_end(8192, 0.8), 6553);
        assert_eq!(low_end(100, 0.0), 1);
        assert_eq!(low_end(100, 1.0), 100);
    }

    const HEADER: &str = "case,engine,model,weight_dtype,kv_dtype,tp,isl,osl,random_range_ratio,concurrency,num_prompts,max_num_seqs,max_num_batched_tokens,prefix_caching,mean_ttft_s,mean_tpot_s,device,gpu_memory_utilization,max_model_len";

    fn load(rows: &[&str]) -> Result<Vec<Point>> {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("points.csv"),
            format!("{HEADER}\n{}\n", rows.join("\n")),
        )
        .unwrap();
        load_points(d.path())
    }

    const ROW: &str =
        "c4,vllm-0.10.2,Llama-3.3-70B (dense),FP8,FP8,4,1024,128,0.8,4,40,256,8192,false,0.25,0.02,,0.85,";

    /// A row reaches its point field by field, and its replay sets exactly
    /// what the benchmark client ran; its peak KV need is C · (isl + osl).
    #[test]
    fn a_row_replays_as_its_client_ran() {
        let p = &load(&[ROW]).unwrap()[0];
        assert_eq!(
            (p.tp, p.isl, p.osl, p.concurrency, p.num_prompts),
            (4, 1024, 128, 4, 40)
        );
        assert_eq!(
            (p.max_num_seqs, p.max_num_batched_tokens, p.prefix_caching),
            (256, 8192, false)
        );
        assert_eq!(
            (p.device.as_deref(), p.gpu_memory_utilization, p.max_model_len),
            (None, Some(0.85), None)
        );
        assert_eq!(
            (p.mean_ttft_s, p.mean_tpot_s, p.random_range_ratio),
            (0.25, 0.02, 0.8)
        );
        let r = replay(p, "H100-SXM").unwrap();
        assert_eq!(r.peak_tokens, Some(4 * (1024 + 128)));
        assert_eq!(
            (r.measured.ttft_s, r.measured.tpot_s, r.measured.itl_s),
            (0.25, Some(0.02), None)
        );
        assert_eq!(
            (r.labels.tp, r.labels.concurrency, r.labels.trace.as_str()),
            (4, Some(4), "1024/128")
        );
        assert_eq!(r.labels.model, "Llama-3.3-70B");
        for set in [
            "model.name=\"Llama-3.3-70B\"",
            "model.dtype=\"fp8\"",
            "hardware.device=\"H100-SXM\"",
            "cluster.tp=4",
            "engine.kind=\"vllm\"",
            "engine.version=\"0.10.2\"",
            "workload.concurrency=4",
            "workload.count=40",
            "workload.prompt.min=819",
            "workload.prompt.max=1024",
            "workload.output.min=102",
            "workload.output.max=128",
            "scheduler.max_num_seqs=256",
            "scheduler.max_num_batched_tokens=8192",
            "scheduler.prefix_caching=false",
            "scheduler.gpu_memory_utilization=0.85",
        ] {
            assert!(r.sets.iter().any(|s| s == set), "{set} in {:?}", r.sets);
        }
        assert!(!r.sets.iter().any(|s| s.starts_with("model.max_model_len")));
        let with_len = load(&[&ROW.replace(",,0.85,", ",H200,,4096")]).unwrap();
        assert_eq!(
            (with_len[0].device.as_deref(), with_len[0].max_model_len),
            (Some("H200"), Some(4096))
        );
        let r = replay(&with_len[0], "H200").unwrap();
        assert!(r.sets.iter().any(|s| s == "model.max_model_len=4096"));
        assert!(
            !r.sets
                .iter()
                .any(|s| s.starts_with("scheduler.gpu_memory_utilization"))
        );
    }

    /// Sizes must be ≥ 1 and the range ratio in [0, 1] (1 itself allowed);
    /// an engine that is not modelled is refused by name.
    #[test]
    fn bad_rows_are_refused_by_column() {
        for (from, to, column) in [
            (",4,1024,", ",0,1024,", "tp"),
            (",1024,128,", ",0,128,", "isl"),
            (",128,0.8,", ",0,0.8,", "osl"),
            (",0.8,4,", ",1.5,4,", "random_range_ratio"),
            (",4,40,", ",0,40,", "concurrency"),
            (",256,8192,", ",0,8192,", "max_num_seqs"),
            (",8192,false,", ",0,false,", "max_num_batched_tokens"),
        ] {
            let e = load(&[&ROW.replacen(from, to, 1)]).unwrap_err().to_string();
            assert!(
                e.contains("line 2") && e.contains(&format!("`{column}`")),
                "{column}: {e}"
            );
        }
        assert_eq!(
            load(&[&ROW.replace(",0.8,4,", ",1,4,")]).unwrap()[0].random_range_ratio,
            1.0
        );
        let p = &load(&[&ROW.replace("vllm-0.10.2", "trt-llm")]).unwrap()[0];
        let e = replay(p, "H100-SXM").err().unwrap();
        assert!(e.contains("`trt-llm` is not modelled"), "{e}");
    }
}
