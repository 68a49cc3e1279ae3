//! Reliability on hostile input (issue 14's reproducers): inputs that once
//! aborted on allocation failure now run in bounded memory or exit 2 with
//! the key, the value and the limit; empty results are `null` / "n/a" and
//! say why; a trace cut short by `workload.count` is a warning; the
//! cluster header counts every pool's devices.

mod common;

use serde_json::Value;
use std::path::Path;

const EXE: &str = env!("CARGO_BIN_EXE_fleetsim");

fn fleetsim(args: &[&str]) -> std::process::Output {
    common::fleetsim(EXE, args)
}

fn expect_error(args: &[&str], needles: &[&str]) {
    common::expect_error(EXE, args, needles)
}

/// Runs, expects success, returns (stdout, stderr).
fn ok(args: &[&str]) -> (String, String) {
    let out = fleetsim(args);
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "args {args:?}: {e}");
    (o, e)
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// A two-row trace with a 10⁹ s gap once allocated a sample per second
/// per replica (abort). Now the idle span costs one step: `timeseries.csv`
/// keeps at most 2^18 rows, evenly spaced at a power-of-two multiple of the
/// requested interval, and the summary states that interval and warns.
#[test]
fn a_billion_second_gap_runs_with_a_bounded_time_series() {
    let d = tempfile::tempdir().unwrap();
    let trace = d.path().join("gap.csv");
    std::fs::write(
        &trace,
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0,100,10\n1e9,100,10\n",
    )
    .unwrap();
    let out = d.path().join("out");
    let (_, err) = ok(&[
        "run",
        "--quiet",
        "--set",
        &format!("workload.trace=\"{}\"", trace.display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    let s = summary(&out);
    assert_eq!(s["completed"], 2);
    // 10⁹ instants at 1 s: the multiples of 2^12 s in [0, 1e9 + ε] are
    // 244,141 ≤ 2^18 = 262,144 instants for the one replica; of 2^11 s,
    // 488,282 > 2^18. So the kept interval is 4096 s.
    assert_eq!(s["sample_interval_s"], 4096.0);
    let rows = std::fs::read_to_string(out.join("timeseries.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    let end = s["duration_s"].as_f64().unwrap();
    assert_eq!(rows as u64, (end / 4096.0).floor() as u64 + 1, "end {end}");
    let warnings = s["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("every 4096 s, not every 1 s")),
        "{warnings:?}"
    );
    assert!(
        err.contains("warning: timeseries.csv keeps one sample every 4096 s"),
        "{err}"
    );
}

/// Settings that once made the time series explode run, in bounded rows.
#[test]
fn tiny_rates_and_sample_intervals_run() {
    for sets in [
        &["workload.arrivals.rate=1e-6", "workload.count=3"][..],
        &["metrics.sample_interval=1e-6", "workload.count=50"][..],
    ] {
        let d = tempfile::tempdir().unwrap();
        let mut args = vec!["run", "--quiet", "--out", d.path().to_str().unwrap()];
        for s in sets {
            args.extend(["--set", s]);
        }
        ok(&args);
        let rows = std::fs::read_to_string(d.path().join("timeseries.csv"))
            .unwrap()
            .lines()
            .count()
            - 1;
        assert!(rows <= 1 << 18, "{sets:?}: {rows} rows");
        assert!(
            rows > 1 << 16,
            "{sets:?}: {rows} rows: the cap should be used, not a tiny series"
        );
    }
}

/// Limits that protect memory name the key, the value and the limit.
#[test]
fn replica_limits_name_the_key_the_value_and_the_limit() {
    ok(&[
        "validate",
        "examples/default.toml",
        "--set",
        "cluster.replicas=16384",
    ]);
    expect_error(
        &[
            "validate",
            "examples/default.toml",
            "--set",
            "cluster.replicas=16385",
        ],
        &["cluster.replicas", "16385", "16384"],
    );
    expect_error(
        &["run", "--set", "cluster.replicas=100000"],
        &["cluster.replicas", "100000", "16384"],
    );
    for pool in ["prefill", "decode"] {
        let key = format!("cluster.{pool}.replicas=20000");
        expect_error(
            &["validate", "examples/distserve-disagg.toml", "--set", &key],
            &[&format!("cluster.{pool}.replicas"), "20000", "16384"],
        );
    }
}

/// When nothing completes, every latency is null in JSON and "n/a" in the
/// table, and the run says why (on stderr and in the summary).
#[test]
fn a_run_where_nothing_completes_says_so() {
    let sets = [
        "--set",
        "workload.prompt.kind=fixed",
        "--set",
        "workload.prompt.value=200000",
        "--set",
        "workload.count=3",
    ];
    let mut args = vec!["run", "--quiet", "--format", "json"];
    args.extend(sets);
    let (json, err) = ok(&args);
    let s: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(s["completed"], 0);
    for key in [
        "mean_ttft_ms",
        "p99_ttft_ms",
        "median_tpot_ms",
        "max_itl_ms",
        "mean_e2el_ms",
    ] {
        assert_eq!(s[key], Value::Null, "{key}");
    }
    assert!(
        err.contains("warning: no request completed: all 3 were rejected"),
        "{err}"
    );
    let mut args = vec!["run", "--quiet"];
    args.extend(sets);
    let (table, _) = ok(&args);
    let ttft = table.lines().find(|l| l.starts_with("TTFT")).unwrap();
    assert_eq!(ttft.matches("n/a").count(), 7, "{ttft}");
    assert!(
        table.contains("Warning                 no request completed"),
        "{table}"
    );
    // A run where requests complete has numbers, and no such warning.
    let (json, err) = ok(&["run", "--quiet", "--format", "json", "--set", "workload.count=20"]);
    let s: Value = serde_json::from_str(&json).unwrap();
    assert!(s["mean_ttft_ms"].as_f64().unwrap() > 0.0);
    assert!(s.get("warnings").is_none() && !err.contains("warning"), "{err}");
}

/// `workload.count` cutting a trace short warns on stderr and in the
/// summary; `workload.count = 0` replays it all without a warning.
#[test]
fn a_trace_cut_short_by_the_count_warns() {
    let d = tempfile::tempdir().unwrap();
    let trace = d.path().join("t.csv");
    let rows: String = (0..10).map(|i| format!("{i},50,5\n")).collect();
    std::fs::write(
        &trace,
        format!("arrived_at,num_prefill_tokens,num_decode_tokens\n{rows}"),
    )
    .unwrap();
    let set_trace = format!("workload.trace=\"{}\"", trace.display());
    let run = |count: &str| {
        let count = format!("workload.count={count}");
        ok(&[
            "run", "--quiet", "--format", "json", "--set", &set_trace, "--set", &count,
        ])
    };
    let (json, err) = run("4");
    let s: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(s["completed"], 4);
    let w = s["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("first 4 of the trace's 10 requests") && w.contains("workload.count = 0"),
        "{w}"
    );
    assert!(err.contains(w), "{err}");
    let (json, err) = run("0");
    let s: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(s["completed"], 10);
    assert!(s.get("warnings").is_none() && !err.contains("warning"), "{err}");
}

/// Calendar-invalid or negative Azure timestamps, a device that never
/// ends and a JSONL row of the wrong type are errors with file and line.
#[test]
fn bad_trace_input_exits_2_with_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let azure = |name: &str, stamp: &str| {
        let p = d.path().join(name);
        std::fs::write(
            &p,
            format!("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-02-28 00:00:00.0,10,10\n{stamp},10,10\n"),
        )
        .unwrap();
        format!("workload.trace=\"{}\"", p.display())
    };
    for (name, stamp) in [
        ("feb31.csv", "2023-02-31 00:00:00.0"),
        ("neg.csv", "2023-03-01 -1:-1:-1"),
    ] {
        expect_error(&["run", "--set", &azure(name, stamp)], &[name, "line 3", stamp]);
    }
    #[cfg(unix)]
    expect_error(
        &["run", "--set", "workload.trace=\"/dev/zero\""],
        &["/dev/zero", "line 1", "longer than 1 MiB"],
    );
    let p = d.path().join("apex.jsonl");
    std::fs::write(
        &p,
        "{\"StartTimeOffset\": [1], \"ContextTokens\": 1, \"GeneratedTokens\": 1}\n",
    )
    .unwrap();
    let out = fleetsim(&[
        "run",
        "--set",
        &format!("workload.trace=\"{}\"", p.display()),
        "--set",
        "workload.trace_format=apex",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("apex.jsonl, line 1") && err.contains("`StartTimeOffset`"),
        "{err}"
    );
    assert!(
        !err.contains("u64") && !err.contains("struct"),
        "Rust words in {err}"
    );
}

/// The header and `validate` count each pool's devices (2 × TP4 + 2 × TP8).
#[test]
fn the_cluster_line_counts_every_pools_devices() {
    let shape = "2 prefill x TP4 x PP1 on H100-SXM + 2 decode x TP8 x PP1 on A100-80GB = 24 device(s)";
    let (v, _) = ok(&["validate", "examples/hetero-disagg.toml"]);
    assert!(v.contains(shape), "{v}");
    let (t, _) = ok(&[
        "run",
        "examples/hetero-disagg.toml",
        "--quiet",
        "--set",
        "workload.count=20",
    ]);
    assert!(t.contains(&format!("Cluster                 {shape}")), "{t}");
    let (v, _) = ok(&["validate", "examples/semi-pd-disagg.toml"]);
    assert!(
        v.contains(
            "4 prefill x TP1 x PP1 on H100-SXM + 4 decode worker(s) sharing those devices = 4 device(s)"
        ),
        "{v}"
    );
    let (v, _) = ok(&["validate", "examples/llama70b-cluster.toml"]);
    assert!(
        v.contains("4 replica(s) x TP4 x PP1 on H100-SXM = 16 device(s)"),
        "{v}"
    );
}

/// `run --out` writes its set through temporary names: afterwards only the
/// three files exist (no `.partial` left behind), and a rerun replaces them.
#[test]
fn run_outputs_leave_no_partial_files() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    for _ in 0..2 {
        ok(&[
            "run",
            "--quiet",
            "--set",
            "workload.count=20",
            "--out",
            out.to_str().unwrap(),
        ]);
    }
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["requests.csv", "summary.json", "timeseries.csv"]);
}

/// The progress callback counts requests that ended, not arrivals: with
/// every request arriving at once, the calls made along the way still
/// climb from below the total to exactly the total at the end.
#[test]
fn progress_counts_ended_requests() {
    let plan = common::plan(&["workload.count=20000", "workload.arrivals.rate=1e6"]);
    let mut calls = Vec::new();
    fleetsim::run_plan(&plan, &mut |n| calls.push(n)).unwrap();
    assert!(calls.len() > 2, "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0] <= w[1]), "{calls:?}");
    assert!(calls[0] < 20000, "{calls:?}");
    assert_eq!(*calls.last().unwrap(), 20000);
}

/// `run --out` alone streams `requests.csv` (records not kept); with
/// `--report` the records are kept and written at the end. Both give the
/// same bytes, for a colocated run and for a disaggregated one (whose rows
/// carry each request's KV transfer time).
#[test]
fn streamed_and_kept_requests_csv_are_identical() {
    let d = tempfile::tempdir().unwrap();
    for (name, sets) in [
        (
            "colocated",
            &["--set", "workload.count=3000", "--set", "cluster.replicas=3"][..],
        ),
        (
            "disagg",
            &["examples/distserve-disagg.toml", "--set", "workload.count=800"][..],
        ),
    ] {
        let (streamed, kept) = (
            d.path().join(format!("{name}-s")),
            d.path().join(format!("{name}-k")),
        );
        let report = d.path().join(format!("{name}.html"));
        let mut a = vec!["run", "--quiet", "--out", streamed.to_str().unwrap()];
        a.extend(sets);
        ok(&a);
        let mut b = vec![
            "run",
            "--quiet",
            "--out",
            kept.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ];
        b.extend(sets);
        ok(&b);
        for f in ["requests.csv", "summary.json", "timeseries.csv"] {
            let (x, y) = (
                std::fs::read(streamed.join(f)).unwrap(),
                std::fs::read(kept.join(f)).unwrap(),
            );
            assert!(x == y, "{name}: {f} differs between streamed and kept records");
        }
        let csv = std::fs::read_to_string(streamed.join("requests.csv")).unwrap();
        assert!(csv.lines().count() > 100, "{name}");
        if name == "disagg" {
            assert!(
                csv.lines().skip(1).all(|l| !l.ends_with(',')),
                "every disaggregated row has a transfer time"
            );
        }
    }
}

/// Bad values get errors in the scenario file's words: the key as written,
/// what it takes and what was found, never Rust's type names.
#[test]
fn errors_speak_the_files_words_not_rusts() {
    let d = tempfile::tempdir().unwrap();
    let catalog = d.path().join("cat.toml");
    std::fs::write(&catalog, "[[model]]\nname = \"X\"\nlayers = 3\n").unwrap();
    let space = d.path().join("space.toml");
    std::fs::write(&space, "[search]\ngpu_budget = \"eight\"\n").unwrap();
    let cases: [(&[&str], &[&str]); 7] = [
        (
            &["run", "--set", "cluster.replicas=abc"],
            &["cluster.replicas", "a whole number", "the text \"abc\""],
        ),
        (
            &["run", "--set", "workload.seed=-3"],
            &["workload.seed", "found the number -3"],
        ),
        (
            &["run", "--set", "workload.prompt=5"],
            &["workload.prompt", "a table of keys"],
        ),
        (
            &["run", "--set", "slo.ttft=[1]"],
            &["slo.ttft", "expected a number, found a list"],
        ),
        (
            &["run", "--set", "hardware.calibration.min_kernel_time=abc"],
            &["hardware.calibration.min_kernel_time", "expected a number"],
        ),
        (
            &["catalog", "--file", catalog.to_str().unwrap()],
            &[
                "cat.toml",
                "line 3",
                "unknown key `layers`",
                "did you mean `num_layers`",
            ],
        ),
        (
            &["search", space.to_str().unwrap()],
            &["line 2", "search.gpu_budget", "the text \"eight\""],
        ),
    ];
    expect_error(
        &["run", "--set", "hardware.calibration.min_kernel_time=1e9"],
        &["min_kernel_time", "1000000000 s", "1 s"],
    );
    for (args, needles) in cases {
        expect_error(args, needles);
        let err = String::from_utf8_lossy(&fleetsim(args).stderr).into_owned();
        for rust in [
            "u32",
            "u64",
            "f64",
            "struct ",
            "invalid type",
            "invalid value",
            "sequence",
            "unknown field",
        ] {
            assert!(!err.contains(rust), "`{rust}` in {err}");
        }
    }
}

/// A workload that would not fit the u64-nanosecond clock (584 years)
/// with room to serve it is an error naming the key (the checked-profile
/// fuzz found `arrivals.rate = 1e-300` overflowing an iteration's end time).
#[test]
fn a_workload_longer_than_the_clock_is_an_error() {
    expect_error(
        &["run", "--set", "workload.arrivals.rate=1e-300"],
        &["workload.arrivals.rate", "317 years"],
    );
    // 2,000 requests at 2e-7 req/s span 1e10 s: the most allowed.
    ok(&[
        "validate",
        "examples/default.toml",
        "--set",
        "workload.arrivals.rate=2e-7",
    ]);
    expect_error(
        &[
            "validate",
            "examples/default.toml",
            "--set",
            "workload.arrivals.rate=1.9e-7",
        ],
        &["workload.arrivals.rate", "1.053e10 s"],
    );
    expect_error(
        &[
            "run",
            "--set",
            "workload.duration=2e10",
            "--set",
            "workload.count=0",
        ],
        &["workload.duration", "2.000e10 s"],
    );
    // Without a count only the duration ends them, however high the rate.
    expect_error(
        &[
            "validate",
            "examples/default.toml",
            "--set",
            "workload.duration=2e10",
            "--set",
            "workload.count=0",
            "--set",
            "workload.arrivals.rate=1e10",
        ],
        &["workload.duration", "2.000e10 s"],
    );
    // The count ends these arrivals long before the duration: no error.
    ok(&[
        "validate",
        "examples/default.toml",
        "--set",
        "workload.duration=2e10",
        "--set",
        "workload.count=10",
    ]);
    let d = tempfile::tempdir().unwrap();
    let trace = d.path().join("t.csv");
    std::fs::write(
        &trace,
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0,10,1\n1,10,1\n",
    )
    .unwrap();
    expect_error(
        &[
            "run",
            "--set",
            &format!("workload.trace=\"{}\"", trace.display()),
            "--set",
            "workload.rate_scale=1e-12",
        ],
        &["workload.rate_scale", "1.000e12 s"],
    );
    // A trace's span is its last arrival less its first, wherever it starts.
    std::fs::write(
        &trace,
        "arrived_at,num_prefill_tokens,num_decode_tokens\n6e9,10,1\n6000000001,10,1\n",
    )
    .unwrap();
    ok(&[
        "validate",
        "examples/default.toml",
        "--set",
        &format!("workload.trace=\"{}\"", trace.display()),
    ]);
}

/// `Records::Drop` and `Records::Stream` keep no record in the report
/// (memory does not grow with requests), `Keep` keeps every one; the
/// summary is the same in all three.
#[test]
fn records_are_kept_only_when_asked() {
    use fleetsim::metrics::Records;
    let d = tempfile::tempdir().unwrap();
    let run = |records: Records| {
        let plan = common::plan(&["workload.count=300"]);
        let mut sim = fleetsim::engine::Simulation::new(&plan).unwrap();
        sim.set_records(&records).unwrap();
        sim.run(&mut |_| {})
    };
    let kept = run(Records::Keep);
    let dropped = run(Records::Drop);
    let streamed = run(Records::Stream(d.path().join("requests.csv")));
    assert_eq!(kept.requests.len(), 300);
    assert!(dropped.requests.is_empty() && streamed.requests.is_empty());
    assert_eq!(kept.summary_json(), dropped.summary_json());
    assert_eq!(kept.summary_json(), streamed.summary_json());
    streamed.write_dir(d.path()).unwrap();
    let rows = std::fs::read_to_string(d.path().join("requests.csv"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(rows, 301);
}

/// A library's own request source says nothing unless it has something to
/// say: a run fed by one has no warnings.
#[test]
fn a_library_source_adds_no_warning() {
    use fleetsim::workload::RequestSpec;
    let plan = common::plan(&[]);
    let model = fleetsim::engine::time_model(&plan).unwrap();
    let source = common::ListSource::boxed(vec![
        RequestSpec::new(0, 0, 100, 5),
        RequestSpec::new(1, 1000, 100, 5),
    ]);
    let report = fleetsim::engine::Simulation::with_source(&plan, model, source).run(&mut |_| {});
    assert_eq!(report.summary.completed, 2);
    assert!(
        report.summary.warnings.is_empty(),
        "{:?}",
        report.summary.warnings
    );
}
