//! The `--trace` output: valid Chrome trace-event JSON (fields each phase
//! needs, complete events properly nested per track, async events
//! balanced), request spans that add up to each request's E2E latency,
//! window and sampling options that bound what is kept, PP stage tracks,
//! determinism, and clear CLI errors.

mod common;

use common::{TIGHT_MEMORY, plan};
use fleetsim::engine::Simulation;
use fleetsim::metrics::Report;
use fleetsim::output::trace::{TraceOptions, trace_json};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

fn traced(sets: &[&str], opts: TraceOptions) -> (Report, Value, String) {
    let p = plan(sets);
    let mut sim = Simulation::new(&p).unwrap();
    sim.enable_trace(&opts);
    let report = sim.run(&mut |_| {});
    let text = trace_json(&report);
    let v: Value = serde_json::from_str(&text).expect("trace is valid JSON");
    (report, v, text)
}

/// Integer nanoseconds from a microsecond field (exact: at most 3 decimals).
fn ns(v: &Value) -> i64 {
    (v.as_f64().expect("number") * 1000.0).round() as i64
}

/// Checks the trace-event format rules and returns the events.
fn validate(v: &Value) -> Vec<Value> {
    let events = v["traceEvents"].as_array().expect("traceEvents array").clone();
    assert!(!events.is_empty());
    // Complete events per (pid, tid), async begin/end per (pid, cat, id).
    let mut tracks: BTreeMap<(i64, i64), Vec<(i64, i64)>> = BTreeMap::new();
    let mut open_async: BTreeMap<(i64, String, String), i64> = BTreeMap::new();
    for e in &events {
        let ph = e["ph"].as_str().expect("ph");
        assert!(e["name"].is_string(), "name: {e}");
        let pid = e["pid"].as_i64().expect("pid");
        let tid = e["tid"].as_i64().expect("tid");
        if ph != "M" {
            assert!(e["ts"].is_number(), "ts: {e}");
            assert!(e["ts"].as_f64().unwrap() >= 0.0);
        }
        match ph {
            "X" => {
                let dur = ns(&e["dur"]);
                assert!(dur >= 0, "negative dur: {e}");
                tracks.entry((pid, tid)).or_default().push((ns(&e["ts"]), dur));
            }
            "B" | "E" => panic!("B/E not expected (complete events are used): {e}"),
            "b" | "e" => {
                let key = (pid, e["cat"].to_string(), e["id"].to_string());
                let n = open_async.entry(key).or_default();
                *n += if ph == "b" { 1 } else { -1 };
                assert!(*n >= 0, "async end before begin: {e}");
            }
            "C" => {
                let args = e["args"].as_object().expect("counter args");
                assert!(!args.is_empty() && args.values().all(|x| x.is_number()), "{e}");
            }
            "i" => assert!(matches!(e["s"].as_str(), Some("t" | "p" | "g")), "{e}"),
            "M" => assert!(e["args"].is_object()),
            other => panic!("unexpected phase {other}: {e}"),
        }
    }
    assert!(open_async.values().all(|&n| n == 0), "unbalanced async events");
    // Complete events on one track must nest: sorted by start (longer first),
    // each event lies inside the enclosing one or after it.
    for ((pid, tid), mut spans) in tracks {
        spans.sort_by_key(|&(ts, dur)| (ts, -dur));
        let mut stack: Vec<i64> = Vec::new();
        for (ts, dur) in spans {
            while stack
                .last()
                .is_some_and(|&end| end <= ts && !(end == ts && dur == 0))
            {
                stack.pop();
            }
            if let Some(&end) = stack.last() {
                assert!(
                    ts + dur <= end,
                    "pid {pid} tid {tid}: span [{ts}, {}] crosses its parent ending at {end}",
                    ts + dur
                );
            }
            stack.push(ts + dur);
        }
    }
    events
}

/// Σ durations of each request's phase spans, by id.
fn phase_sums(events: &[Value]) -> BTreeMap<u64, i64> {
    let mut sums = BTreeMap::new();
    for e in events {
        if e["cat"] == "request-phase" {
            *sums.entry(e["args"]["id"].as_u64().unwrap()).or_default() += ns(&e["dur"]);
        }
    }
    sums
}

#[test]
fn trace_is_valid_and_request_spans_add_up_to_e2e() {
    let mut sets = TIGHT_MEMORY.to_vec();
    sets.push("workload.count=300");
    let (report, v, _) = traced(&sets, TraceOptions::default());
    assert!(report.summary.preemptions > 0, "test needs preemptions");
    let events = validate(&v);
    let sums = phase_sums(&events);
    let finished: Vec<_> = report.requests.iter().filter(|r| r.is_finished()).collect();
    assert_eq!(sums.len(), finished.len());
    for r in &finished {
        let e2e = r.e2el_ns().unwrap() as i64;
        assert!(
            (sums[&r.id] - e2e).abs() <= 1000,
            "request {}: spans {} ns, E2E {e2e} ns",
            r.id,
            sums[&r.id]
        );
    }
    // Preempted requests show `preempted` spans; iterations carry batch
    // composition and every iteration is there.
    let count = |name: &str| events.iter().filter(|e| e["name"] == name).count();
    assert!(count("preempted") > 0);
    let iters: Vec<&Value> = events.iter().filter(|e| e["cat"] == "iteration").collect();
    assert_eq!(iters.len() as u64, report.summary.iterations);
    let preempted: u64 = iters
        .iter()
        .map(|e| e["args"]["preempted"].as_u64().unwrap())
        .sum();
    assert_eq!(preempted, report.summary.preemptions);
    for e in &iters {
        let a = &e["args"];
        assert_eq!(
            a["batch_tokens"].as_u64(),
            Some(a["prefill_tokens"].as_u64().unwrap() + a["decode_seqs"].as_u64().unwrap())
        );
    }
    assert!(count("KV blocks used") > 0 && count("queue") > 0);
    assert_eq!(v["otherData"]["fleetsim"]["requests_kept"], 300);
}

#[test]
fn spans_match_requests_csv_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t/trace.json");
    let out = Command::new(env!("CARGO_BIN_EXE_fleetsim"))
        .args([
            "run",
            "--quiet",
            "--set",
            "workload.count=200",
            "--set",
            "cluster.replicas=2",
        ])
        .arg("--out")
        .arg(dir.path())
        .arg("--trace")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let sums = phase_sums(&validate(&v));
    let mut rdr = csv::Reader::from_path(dir.path().join("requests.csv")).unwrap();
    let h = rdr.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (id, e2el) = (col("id"), col("e2el_ms"));
    let mut n = 0;
    for row in rdr.records() {
        let row = row.unwrap();
        let e2e_ns = (row[e2el].parse::<f64>().unwrap() * 1e6).round() as i64;
        let got = sums[&row[id].parse::<u64>().unwrap()];
        assert!(
            (got - e2e_ns).abs() <= 1000,
            "request {}: {got} vs {e2e_ns}",
            &row[id]
        );
        n += 1;
    }
    assert_eq!(n, 200);
    // Two processes (replicas), named.
    let names: Vec<&str> = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["replica 0", "replica 1"]);
}

#[test]
fn window_and_sampling_bound_what_is_kept() {
    let sets = ["workload.count=400"];
    let (full_report, full, _) = traced(&sets, TraceOptions::default());
    let opts = TraceOptions {
        window: Some((20.0, 40.0)),
        max_requests: Some(10),
    };
    let (report, v, text) = traced(&sets, opts);
    let events = validate(&v);
    let (w0, w1) = (20_000_000_000i64, 40_000_000_000i64);
    let iters: Vec<&Value> = events.iter().filter(|e| e["cat"] == "iteration").collect();
    assert!(!iters.is_empty());
    for e in &iters {
        let (ts, dur) = (ns(&e["ts"]), ns(&e["dur"]));
        assert!(ts < w1 && ts + dur > w0, "iteration outside the window: {e}");
    }
    for e in events.iter().filter(|e| e["ph"] == "C") {
        let ts = ns(&e["ts"]);
        assert!((w0..w1).contains(&ts), "counter outside the window: {e}");
    }
    let in_window: Vec<u64> = report
        .requests
        .iter()
        .filter(|r| (r.arrival as i64) < w1 && r.finish as i64 >= w0)
        .map(|r| r.id)
        .collect();
    let k = in_window.len().div_ceil(10);
    let expect: Vec<u64> = in_window.iter().copied().step_by(k).collect();
    let sums = phase_sums(&events);
    assert_eq!(sums.keys().copied().collect::<Vec<_>>(), expect);
    assert!(expect.len() <= 10);
    let meta = &v["otherData"]["fleetsim"];
    assert_eq!(meta["requests_in_window"], in_window.len());
    assert_eq!(meta["requests_kept"], expect.len());
    assert_eq!(meta["window_s"], serde_json::json!([20.0, 40.0]));
    // Whole lifecycles are kept even where they leave the window.
    for r in report.requests.iter().filter(|r| sums.contains_key(&r.id)) {
        assert_eq!(sums[&r.id], r.e2el_ns().unwrap() as i64);
    }
    let full_len = serde_json::to_string(&full).unwrap().len();
    assert!(
        text.len() * 4 < full_len,
        "window trace {} vs full {full_len}",
        text.len()
    );
    assert_eq!(full_report.summary.completed, 400);
}

#[test]
fn pipeline_stages_get_their_own_tracks() {
    let (_, v, _) = traced(&["cluster.pp=2", "workload.count=50"], TraceOptions::default());
    let events = validate(&v);
    let threads: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    assert!(threads.contains(&"PP stage 0") && threads.contains(&"PP stage 1"));
    // Stage spans tile each iteration's GPU part: start + host → end.
    let iters: Vec<&Value> = events.iter().filter(|e| e["cat"] == "iteration").collect();
    let stages: Vec<&Value> = events.iter().filter(|e| e["cat"] == "pp-stage").collect();
    assert_eq!(stages.len(), 2 * iters.len());
    for (it, pair) in iters.iter().zip(stages.chunks(2)) {
        let start = ns(&it["ts"]) + ns(&it["args"]["host_us"]);
        assert_eq!(ns(&pair[0]["ts"]), start);
        assert_eq!(ns(&pair[1]["ts"]), start + ns(&pair[0]["dur"]));
        assert_eq!(
            ns(&pair[1]["ts"]) + ns(&pair[1]["dur"]),
            ns(&it["ts"]) + ns(&it["dur"])
        );
        assert_eq!(
            (pair[0]["tid"].as_i64(), pair[1]["tid"].as_i64()),
            (Some(10), Some(11))
        );
    }
    // Llama-3-8B's 32 layers split 16 / 16; the last stage also reads the
    // LM head (128,256 × 4,096 bf16 = 1.05 GB) against 16 layers' 7.0 GB
    // of weights (218 M parameters each): a decode step's second stage is
    // about 15% longer than its first (launch floors and KV reads dilute
    // it; the hand-off and embedding lookup are tiny), not equal.
    let mut decodes = 0;
    for (it, pair) in iters.iter().zip(stages.chunks(2)) {
        if it["name"] == "decode" {
            let ratio = ns(&pair[1]["dur"]) as f64 / ns(&pair[0]["dur"]) as f64;
            assert!(ratio > 1.05 && ratio < 1.3, "stage 1 / stage 0 = {ratio}");
            decodes += 1;
        }
    }
    assert!(decodes > 10, "{decodes} decode steps");
}

#[test]
fn same_scenario_gives_the_same_trace_bytes() {
    let (_, _, a) = traced(&["workload.count=100"], TraceOptions::default());
    let (_, _, b) = traced(&["workload.count=100"], TraceOptions::default());
    assert_eq!(a, b);
}

#[test]
fn cli_rejects_bad_trace_options_with_exit_code_2() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_fleetsim"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[
        "run",
        "--quiet",
        "--trace",
        "/tmp/x.json",
        "--trace-window",
        "9:3",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--trace-window") && err.contains("9:3"), "{err}");
    let (code, err) = run(&["run", "--quiet", "--trace-window", "1:3"]);
    assert_eq!(code, Some(2), "window without --trace: {err}");
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let bad = file.join("trace.json");
    let (code, err) = run(&[
        "run",
        "--quiet",
        "--set",
        "workload.count=5",
        "--trace",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("plain") && !err.contains("panicked"), "{err}");
}

/// A disaggregated run: each request's lifecycle shows its KV transfer
/// between the prefill and the decode, and the spans still add up to E2E.
#[test]
fn disaggregated_requests_show_their_kv_transfer() {
    let (report, v, _) = traced(
        &[
            "cluster.mode=disaggregated",
            "cluster.prefill.replicas=1",
            "cluster.decode.replicas=1",
            "workload.count=200",
            "workload.arrivals.rate=4",
        ],
        TraceOptions::default(),
    );
    let events = validate(&v);
    let sums = phase_sums(&events);
    for r in report.requests.iter().filter(|r| r.is_finished()) {
        let e2e = r.e2el_ns().unwrap() as i64;
        assert!((sums[&r.id] - e2e).abs() <= 1000, "request {}", r.id);
    }
    // One `transfer` span per hand-off that took time, exactly as long as it.
    let mut spans: BTreeMap<i64, i64> = BTreeMap::new();
    for e in events.iter().filter(|e| e["name"] == "transfer") {
        assert_eq!(e["cat"], "request-phase");
        spans.insert(e["args"]["id"].as_i64().unwrap(), ns(&e["dur"]));
    }
    let moved: Vec<_> = report.transfers.iter().filter(|t| t.arrival > t.ready).collect();
    assert!(!moved.is_empty());
    assert_eq!(spans.len(), moved.len());
    for t in moved {
        let d = spans[&(t.id as i64)] - t.transfer_ns() as i64;
        assert!(d.abs() <= 1000, "request {}: span off by {d} ns", t.id);
    }
}

/// A time model whose first stage takes all of each 10 ms iteration's
/// GPU part (2 ms host) and whose second stage is priced at nothing; its
/// busiest stage (4 ms of GPU) lets pp = 2 virtual engines keep the
/// 10 ms period.
struct FrontLoaded;

impl fleetsim::timing::TimeModel for FrontLoaded {
    fn iteration(&self, _b: &fleetsim::timing::BatchShape) -> fleetsim::timing::IterationCost {
        fleetsim::timing::IterationCost {
            duration: 10_000_000,
            host: 2_000_000,
            stage: 6_000_000,
            ..Default::default()
        }
    }
    fn stage_times(&self, _b: &fleetsim::timing::BatchShape, out: &mut Vec<f64>) {
        out.clear();
        out.extend([8e-3, 0.0]);
    }
    fn peak_rates(&self) -> (f64, f64) {
        (1.0, 1.0)
    }
}

#[test]
fn stage_spans_follow_the_models_stage_times_and_skip_empty_stages() {
    let p = plan(&["cluster.pp=2", "workload.count=5"]);
    let models: Vec<Box<dyn fleetsim::timing::TimeModel>> = vec![Box::new(FrontLoaded)];
    let mut sim = Simulation::with_models(
        &p,
        models,
        fleetsim::workload::build_source(&p.scenario.workload).unwrap(),
    );
    sim.enable_trace(&TraceOptions::default());
    let report = sim.run(&mut |_| {});
    let v: Value = serde_json::from_str(&trace_json(&report)).unwrap();
    let events = validate(&v);
    let iters = events.iter().filter(|e| e["cat"] == "iteration").count();
    let stages: Vec<&Value> = events.iter().filter(|e| e["cat"] == "pp-stage").collect();
    // Stage 0 holds each iteration's whole 8 ms GPU part; stage 1, priced
    // at 0, has no span at all (no zero-length events).
    assert!(iters > 0);
    assert_eq!(stages.len(), iters);
    assert!(
        stages
            .iter()
            .all(|s| s["name"] == "stage 0" && ns(&s["dur"]) == 8_000_000)
    );
}

/// Each rejected request is an instant on the "rejected" thread naming its
/// reason as `requests.csv` does (without the `rejected_` prefix): one
/// prompt longer than max_model_len, one whose KV can never fit the pool.
#[test]
fn rejections_are_instants_naming_their_reason() {
    use common::{ConstantTime, ListSource};
    use fleetsim::workload::RequestSpec;
    let mut p = plan(&[
        "model.max_model_len=4096",
        "scheduler.watermark=0",
        "workload.count=3",
    ]);
    p.pools[0].kv_blocks = 100; // 1,600 KV entries
    let reqs = vec![
        RequestSpec::new(0, 0, 5_000, 10),
        RequestSpec::new(1, 1, 1_000, 602),
        RequestSpec::new(2, 2, 10, 10),
    ];
    let mut sim = Simulation::with_source(&p, Box::new(ConstantTime(1_000_000)), ListSource::boxed(reqs));
    sim.enable_trace(&TraceOptions::default());
    let report = sim.run(&mut |_| {});
    let v: Value = serde_json::from_str(&trace_json(&report)).unwrap();
    let reasons: Vec<(u64, String)> = validate(&v)
        .iter()
        .filter(|e| e["name"] == "rejected" && e["ph"] == "i")
        .map(|e| {
            let a = &e["args"];
            (
                a["id"].as_u64().unwrap(),
                a["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (0, "exceeds_max_model_len".to_string()),
            (1, "exceeds_kv_capacity".to_string())
        ]
    );
}
