//! Output files: `summary.json` (pretty JSON, keys in [`Summary`] field
//! order), `requests.csv` (one row per request, by id) and
//! `timeseries.csv` (one row per replica per sample instant).
//!
//! CSV number formats are fixed so files are byte-identical across runs and
//! machines: times in seconds with 9 decimals and latencies in milliseconds
//! with 6 decimals (both exact, from integer nanoseconds), TPOT in ms with 6
//! decimals (rounded), KV utilisation with 6 decimals. A cell that does not
//! apply (e.g. TTFT of a rejected request, TPOT of a single-token request)
//! is empty.
//!
//! [`Summary`]: super::Summary

use super::{Report, RequestRecord, Sample};
use crate::error::{Error, Result};
use crate::units::Nanos;
use std::io::Write;
use std::path::Path;

/// Header of `requests.csv`.
pub const REQUESTS_HEADER: [&str; 19] = [
    "id",
    "client",
    "session",
    "program",
    "replica",
    "status",
    "arrival_s",
    "scheduled_s",
    "first_token_s",
    "finish_s",
    "prompt_tokens",
    "output_tokens",
    "ttft_ms",
    "tpot_ms",
    "e2el_ms",
    "queue_delay_ms",
    "preemptions",
    "cached_tokens",
    "transfer_ms",
];

/// Header of `timeseries.csv`.
pub const TIMESERIES_HEADER: [&str; 9] = [
    "time_s",
    "replica",
    "queued",
    "running",
    "kv_blocks_used",
    "kv_utilization",
    "batch_seqs",
    "batch_tokens",
    "cache_blocks",
];

/// Nanoseconds as seconds with 9 decimals (exact).
fn secs(n: Nanos) -> String {
    format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000)
}

/// Nanoseconds as milliseconds with 6 decimals (exact).
fn ms(n: Nanos) -> String {
    format!("{}.{:06}", n / 1_000_000, n % 1_000_000)
}

/// One `requests.csv` row; `transfer` is the KV transfer time of a
/// disaggregated request (prefill done → KV arrived), empty otherwise.
pub(super) fn request_row(r: &RequestRecord, transfer: Option<Nanos>) -> [String; 19] {
    let done = r.is_finished();
    let opt = |o: Option<Nanos>, f: fn(Nanos) -> String| o.map(f).unwrap_or_default();
    [
        r.id.to_string(),
        r.client.to_string(),
        r.session.map(|s| s.to_string()).unwrap_or_default(),
        r.program.map(|s| s.to_string()).unwrap_or_default(),
        r.replica.to_string(),
        r.outcome.status().to_string(),
        secs(r.arrival),
        opt(done.then_some(r.scheduled), secs),
        opt(done.then_some(r.first_token), secs),
        secs(r.finish),
        r.prompt_tokens.to_string(),
        r.output_tokens.to_string(),
        opt(r.ttft_ns(), ms),
        r.tpot_ns().map(|t| format!("{:.6}", t / 1e6)).unwrap_or_default(),
        opt(r.e2el_ns(), ms),
        opt(r.queue_delay_ns(), ms),
        r.preemptions.to_string(),
        r.cached_tokens.to_string(),
        opt(transfer, ms),
    ]
}

fn sample_row(s: &Sample) -> [String; 9] {
    let st = &s.state;
    let util = if st.kv_blocks_total > 0 {
        format!("{:.6}", st.kv_blocks_used as f64 / st.kv_blocks_total as f64)
    } else {
        String::new()
    };
    [
        secs(s.time),
        s.replica.to_string(),
        st.queued.to_string(),
        st.running.to_string(),
        st.kv_blocks_used.to_string(),
        util,
        st.batch_seqs.to_string(),
        st.batch_tokens.to_string(),
        st.cache_blocks.to_string(),
    ]
}

/// Writes a CSV file from a header and rows.
fn write_csv<const N: usize, T>(
    path: &Path,
    header: [&str; N],
    rows: &[T],
    row: impl Fn(&T) -> [String; N],
) -> Result<()> {
    crate::output::atomic::write_with(path, |file| {
        let mut w = csv::Writer::from_writer(file);
        w.write_record(header)?;
        for r in rows {
            w.write_record(row(r))?;
        }
        w.into_inner().map_err(|e| e.into_error())?.flush()
    })
}

impl Report {
    /// `summary.json` contents: pretty-printed, keys in a fixed order (the
    /// [`super::Summary`] field order), no trailing newline.
    pub fn summary_json(&self) -> String {
        serde_json::to_string_pretty(&self.summary).expect("summary serialises to JSON")
    }

    /// Writes `summary.json`, `requests.csv` and `timeseries.csv` into `dir`
    /// (created with its parents if missing; existing files are replaced).
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut json = self.summary_json();
        json.push('\n');
        // summary.json last: present means the set is whole (see `atomic`).
        crate::output::atomic::write_set(&dir.join("summary.json"), json.as_bytes(), || {
            let requests = dir.join("requests.csv");
            match &self.requests_file {
                // Streamed during the run: complete under its temporary name.
                Some(Ok(partial)) => {
                    std::fs::rename(partial, &requests).map_err(|e| Error::io(&requests, e))?
                }
                Some(Err(message)) => {
                    return Err(Error::config(requests.display().to_string(), message.clone()));
                }
                None => write_csv(&requests, REQUESTS_HEADER, &self.requests, |r| {
                    let t = self.transfers.binary_search_by_key(&r.id, |t| t.id).ok();
                    request_row(r, t.map(|i| self.transfers[i].transfer_ns()))
                })?,
            }
            write_csv(
                &dir.join("timeseries.csv"),
                TIMESERIES_HEADER,
                &self.samples,
                sample_row,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::test_util::small_report;

    /// A write that fails after the first file leaves no `summary.json`
    /// (the earlier run's is removed first), so the folder never looks
    /// complete; nothing is left under a partial name either.
    #[test]
    fn a_failed_write_dir_leaves_no_summary() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        small_report().write_dir(dir).unwrap();
        // timeseries.csv cannot be replaced: a folder stands in its place.
        std::fs::remove_file(dir.join("timeseries.csv")).unwrap();
        std::fs::create_dir(dir.join("timeseries.csv")).unwrap();
        let e = small_report().write_dir(dir).unwrap_err().to_string();
        assert!(e.contains("timeseries.csv"), "{e}");
        assert!(!dir.join("summary.json").exists());
        let partial = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".partial")
            })
            .count();
        assert_eq!(partial, 0);
    }

    #[test]
    fn write_dir_files_headers_and_determinism() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a/nested"), tmp.path().join("b"));
        small_report().write_dir(&a).unwrap();
        small_report().write_dir(&b).unwrap();
        for f in ["summary.json", "requests.csv", "timeseries.csv"] {
            let (x, y) = (
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(b.join(f)).unwrap(),
            );
            assert!(!x.is_empty(), "{f} empty");
            assert_eq!(x, y, "{f} differs between two writes");
        }
        // Writing again over existing files gives the same bytes.
        let before = std::fs::read(a.join("requests.csv")).unwrap();
        small_report().write_dir(&a).unwrap();
        assert_eq!(before, std::fs::read(a.join("requests.csv")).unwrap());

        let req = std::fs::read_to_string(a.join("requests.csv")).unwrap();
        let lines: Vec<&str> = req.lines().collect();
        assert_eq!(lines[0], REQUESTS_HEADER.join(","));
        assert_eq!(lines.len(), 6);
        // Sorted by id; exact fixed-point times and latencies.
        assert_eq!(
            lines[1],
            "0,0,,,0,finished,0.000000000,0.005000000,0.100000000,1.100000000,100,21,\
             100.000000,50.000000,1100.000000,5.000000,0,0,"
        );
        // Single-token request: no TPOT; a turn of session 7 in program 3.
        assert_eq!(
            lines[2],
            "1,0,7,3,1,finished,0.000000000,0.000000000,0.200000000,0.200000000,50,1,\
             200.000000,,200.000000,0.000000,0,0,"
        );
        // Rejected: only arrival and finish.
        assert_eq!(
            lines[5],
            "4,1,,,0,rejected_exceeds_max_model_len,3.000000000,,,3.000000000,9000,0,,,,,0,0,"
        );

        let ts = std::fs::read_to_string(a.join("timeseries.csv")).unwrap();
        let lines: Vec<&str> = ts.lines().collect();
        assert_eq!(lines[0], TIMESERIES_HEADER.join(","));
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[1], "0.000000000,0,0,2,100,0.100000,4,103,0");
        assert_eq!(lines[2], "0.000000000,1,0,2,200,0.200000,4,103,0");
        assert_eq!(lines[6], "2.000000000,1,2,2,600,0.600000,4,103,0");
    }

    /// A replica without a KV pool (total 0) has no utilisation: the field
    /// is left empty rather than 0/0.
    #[test]
    fn a_sample_without_a_kv_pool_leaves_its_utilisation_empty() {
        let state = crate::metrics::ReplicaSample {
            queued: 1,
            running: 2,
            kv_blocks_used: 0,
            kv_blocks_total: 0,
            batch_seqs: 2,
            batch_tokens: 9,
            cache_blocks: 0,
        };
        let row = sample_row(&Sample {
            time: 1_500_000_000,
            replica: 3,
            state,
        });
        assert_eq!(row.join(","), "1.500000000,3,1,2,0,,2,9,0");
    }

    #[test]
    fn summary_json_round_trips_with_vllm_names() {
        let r = small_report();
        let json = r.summary_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        for key in [
            "scenario",
            "model",
            "peak_flops",
            "duration_s",
            "completed",
            "rejected",
            "total_input_tokens",
            "total_output_tokens",
            "request_throughput",
            "request_goodput",
            "output_throughput",
            "input_throughput",
            "total_token_throughput",
            "mean_ttft_ms",
            "median_ttft_ms",
            "p90_ttft_ms",
            "p95_ttft_ms",
            "p99_ttft_ms",
            "max_ttft_ms",
            "std_ttft_ms",
            "mean_tpot_ms",
            "median_tpot_ms",
            "p99_tpot_ms",
            "std_tpot_ms",
            "mean_itl_ms",
            "median_itl_ms",
            "p99_itl_ms",
            "std_itl_ms",
            "mean_e2el_ms",
            "median_e2el_ms",
            "p99_e2el_ms",
            "mean_queue_delay_ms",
            "p99_queue_delay_ms",
            "preemptions",
            "slo_attainment",
            "slo_met",
            "slo_ttft_ms",
            "slo_percentile",
            "mfu",
            "mbu",
            "busy_fraction",
            "mean_batch_seqs",
            "mean_batch_tokens",
            "mean_kv_utilization",
            "max_kv_utilization",
            "iterations",
            "per_replica",
        ] {
            assert!(v.get(key).is_some(), "missing key {key}");
        }
        assert_eq!(v["completed"], 4);
        // The hand example's TTFT (100, 200, 300, 900 ms) as numbers.
        assert_eq!(v["mean_ttft_ms"], 375.0);
        assert_eq!(v["max_ttft_ms"], 900.0);
        assert_eq!(v["rejected_by_reason"]["exceeds_max_model_len"], 1);
        assert_eq!(v["slo_e2el_ms"], serde_json::Value::Null);
        assert_eq!(v["per_replica"].as_array().unwrap().len(), 2);
        // Stable key order: run info first, then the run's totals.
        let pos = |k: &str| json.find(&format!("\"{k}\"")).unwrap();
        assert!(pos("scenario") < pos("duration_s"));
        assert!(pos("duration_s") < pos("mean_ttft_ms"));
        assert!(pos("mean_ttft_ms") < pos("median_ttft_ms"));
        assert!(pos("mean_ttft_ms") < pos("mean_tpot_ms"));
        assert_eq!(json, small_report().summary_json());
    }
}
