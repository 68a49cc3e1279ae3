//! The `--report` HTML: self-contained (no external URLs, no fetches),
//! every chart present with the data behind it matching `summary.json` and
//! `timeseries.csv`, deterministic bytes, the search variant, and an
//! end-to-end render in headless Chromium (no console errors, the charts
//! in the DOM, a screenshot under target/ for a person to look at; skipped
//! with a message when Chromium is not installed).

mod common;

use fleetsim::output::report::{SearchInput, SearchPlan, search_report, write_search_report};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const RUN_CHARTS: [&str; 9] = [
    "ttft-cdf",
    "tpot-cdf",
    "e2el-cdf",
    "throughput",
    "request-throughput",
    "queue",
    "kv-util",
    "batch",
    "replica-load",
];

/// Runs the CLI with `--out dir --report dir/report.html`; returns the HTML.
fn run_report(dir: &Path, sets: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetsim"));
    cmd.args(["run", "--quiet"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let html = dir.join("report.html");
    let out = cmd
        .arg("--out")
        .arg(dir)
        .arg("--report")
        .arg(&html)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(html).unwrap()
}

/// The embedded chart data.
fn data_blob(html: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"fleetsim-data\">";
    let start = html.find(open).expect("data blob") + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).expect("data blob is JSON")
}

fn assert_self_contained(html: &str) {
    for bad in [
        "http://", "https://", "src=", "href=", "url(", "@import", "<link", "xmlns",
    ] {
        assert!(!html.contains(bad), "report contains `{bad}`");
    }
    // The only script is the (non-executed) JSON data.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("<script type=\"application/json\""));
}

#[test]
fn run_report_charts_match_summary_json_and_timeseries() {
    let dir = tempfile::tempdir().unwrap();
    let html = run_report(dir.path(), &["workload.count=300", "cluster.replicas=2"]);
    assert_self_contained(&html);
    for id in RUN_CHARTS {
        let tag = format!("<svg class=\"chart\" data-chart=\"{id}\"");
        assert_eq!(html.matches(&tag).count(), 1, "chart {id}");
    }
    // Every chart has a title and two axis labels.
    assert_eq!(html.matches("class=\"axis-label\"").count(), 2 * RUN_CHARTS.len());
    assert_eq!(
        html.matches("</title><rect class=\"bg\"").count(),
        RUN_CHARTS.len()
    );

    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
    let data = data_blob(&html);
    assert_eq!(data["kind"], "run");
    assert_eq!(
        data["summary"], summary,
        "embedded summary differs from summary.json"
    );
    let charts = &data["charts"];

    // CDFs: exact percentiles, equal to the summary's.
    for m in ["ttft", "tpot", "e2el"] {
        let c = &charts[format!("{m}-cdf")];
        let ps: Vec<f64> = serde_json::from_value(c["percentiles"].clone()).unwrap();
        let vs: Vec<f64> = serde_json::from_value(c["values_ms"].clone()).unwrap();
        assert_eq!(ps.len(), vs.len());
        assert!(vs.windows(2).all(|w| w[0] <= w[1]), "{m} CDF not monotone");
        let at = |p: f64| vs[ps.iter().position(|&x| x == p).unwrap()];
        for (p, key) in [
            (50.0, "median"),
            (90.0, "p90"),
            (95.0, "p95"),
            (99.0, "p99"),
            (100.0, "max"),
        ] {
            let want = summary[format!("{key}_{m}_ms")].as_f64().unwrap();
            assert_eq!(at(p), want, "{m} p{p}");
        }
    }
    assert_eq!(charts["ttft-cdf"]["count"], summary["completed"]);

    // Throughput: every finished request and output token is in some bin.
    let t = &charts["throughput"];
    let done: u64 = t["completed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(done, summary["completed"].as_u64().unwrap());
    let toks: f64 = t["output_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .sum();
    let want = summary["total_output_tokens"].as_f64().unwrap();
    assert!((toks - want).abs() <= 1e-6 * want, "{toks} vs {want}");
    let len: f64 = t["len_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!((len - summary["duration_s"].as_f64().unwrap()).abs() < 1e-6 + t["bin_s"].as_f64().unwrap());

    // KV utilisation: same mean / max as the summary.
    let kv = &charts["kv-util"];
    assert_eq!(kv["mean_all_samples"], summary["mean_kv_utilization"]);
    assert_eq!(kv["max_all_samples"], summary["max_kv_utilization"]);

    // Per-replica load: the summary's per-replica figures.
    let per = summary["per_replica"].as_array().unwrap();
    for key in ["completed", "output_tokens", "iterations", "busy_fraction"] {
        let got = charts["replica-load"][key].as_array().unwrap();
        let want: Vec<&Value> = per.iter().map(|r| &r[key]).collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "replica-load {key}");
    }

    // The metrics table shows the summary's figures (2 decimals) and counts.
    for (name, m) in [("TTFT", "ttft"), ("TPOT", "tpot"), ("E2E", "e2el")] {
        let v = |k: &str| format!("{:.2}", summary[format!("{k}_{m}_ms")].as_f64().unwrap());
        let cells =
            ["mean", "median", "p90", "p95", "p99", "max", "std"].map(|k| format!("<td>{}</td>", v(k)));
        let row = format!("</td>{}<td>{}</td></tr>", cells.concat(), summary["completed"]);
        assert!(html.contains(&row), "{name} row {row}");
    }

    // Queue: with 1 s bins (a short run) the series are timeseries.csv's values.
    let q = &charts["queue"];
    assert_eq!(t["bin_s"], 1.0);
    let mut rdr = csv::Reader::from_path(dir.path().join("timeseries.csv")).unwrap();
    let (mut kv_sum, mut kv_n, mut kv_max) = (0.0, 0u32, 0.0f64);
    for row in rdr.records() {
        let row = row.unwrap();
        // The summary's KV figures, recomputed from the rows (6 decimals;
        // a short run keeps every instant, so the rows are all of them).
        let u: f64 = row[5].parse().unwrap();
        (kv_sum, kv_n, kv_max) = (kv_sum + u, kv_n + 1, kv_max.max(u));
        let time: f64 = row[0].parse().unwrap();
        let replica: usize = row[1].parse().unwrap();
        let queued: f64 = row[2].parse().unwrap();
        let series = &q["series"][replica];
        assert_eq!(series["name"], format!("replica {replica}"));
        assert_eq!(
            series["values"][time.round() as usize].as_f64(),
            Some(queued),
            "t={time}"
        );
        // KV utilisation in percent, per replica and second.
        let pct = kv["series"][replica]["values"][time.round() as usize]
            .as_f64()
            .unwrap();
        assert!((pct - 100.0 * u).abs() < 1e-3, "t={time}: {pct}% for {u}");
    }
    let mean = summary["mean_kv_utilization"].as_f64().unwrap();
    assert!(
        kv_n > 10 && (kv_sum / kv_n as f64 - mean).abs() < 1e-6,
        "{kv_sum}/{kv_n} vs {mean}"
    );
    assert!((kv_max - summary["max_kv_utilization"].as_f64().unwrap()).abs() < 1e-6);
}

/// A run where nothing completes shows "n/a" for its latencies, not 0.00.
#[test]
fn a_run_without_completions_reports_no_latency_figures() {
    let dir = tempfile::tempdir().unwrap();
    let html = run_report(dir.path(), &["workload.count=20", "model.max_model_len=8"]);
    let row = "<tr><td class=\"l\">TTFT</td><td>n/a</td><td>n/a</td><td>n/a</td><td>n/a</td><td>n/a</td><td>n/a</td><td>n/a</td><td>0</td></tr>";
    assert!(html.contains(row), "no n/a TTFT row");
    let card = "<div class=\"v\">n/a</div><div class=\"k\">median TTFT (ms)</div>";
    assert!(html.contains(card), "no n/a TTFT card");
}

#[test]
fn same_scenario_gives_the_same_report_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sets = ["workload.count=100"];
    assert_eq!(run_report(a.path(), &sets), run_report(b.path(), &sets));
}

#[test]
fn report_to_a_bad_path_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fleetsim"))
        .args(["run", "--quiet", "--set", "workload.count=5", "--report"])
        .arg(file.join("r.html"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("plain") && !err.contains("panicked"), "{err}");
}

fn search_input() -> SearchInput {
    let plan = |name: &str, gpus: u32, cost: f64, cap: f64, pareto: bool| SearchPlan {
        name: name.into(),
        gpus,
        cost,
        capacity_rps: cap,
        ttft_ms: 120.0 + cap,
        tpot_ms: 20.0,
        pareto,
    };
    SearchInput {
        title: "Llama-3-8B at p90 TTFT ≤ 2 s <test>".into(),
        facts: vec![
            ("model".into(), "Llama-3-8B".into()),
            ("SLO".into(), "p90 TTFT ≤ 2000 ms".into()),
        ],
        cost_unit: "$/h".into(),
        plans: vec![
            plan("1× H100 TP1", 1, 4.0, 5.0, true),
            plan("2× H100 TP1", 2, 8.0, 10.5, true),
            plan("1× H100 TP2", 2, 8.0, 7.0, false),
            plan("4× H100 TP1", 4, 16.0, 20.0, true),
            plan("2× H100 TP2", 4, 16.0, 15.0, false),
        ],
        top: 4,
    }
}

#[test]
fn search_report_has_the_pareto_plot_and_top_plans() {
    let input = search_input();
    let html = search_report(&input);
    assert_self_contained(&html);
    assert_eq!(html, search_report(&input));
    assert!(html.contains("<svg class=\"chart\" data-chart=\"pareto\""));
    assert!(html.contains("&lt;test&gt;") && !html.contains("<test>"));
    assert_eq!(html.matches("<tr><td>").count(), 4, "top 4 plans");
    assert_eq!(html.matches("★").count(), 3);
    let data = data_blob(&html);
    assert_eq!(data["kind"], "search");
    assert_eq!(data["input"], serde_json::to_value(&input).unwrap());
    assert_eq!(
        data["charts"]["pareto"]["cost"],
        serde_json::json!([4.0, 8.0, 16.0])
    );
    assert_eq!(
        data["charts"]["pareto"]["capacity_rps"],
        serde_json::json!([5.0, 10.5, 20.0])
    );
}

/// `write_search_report` writes exactly the page, creating missing folders.
#[test]
fn search_report_is_written_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not/yet/there/search.html");
    let input = search_input();
    write_search_report(&input, &path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), search_report(&input));
}

/// Debian's `chromium` (or another Chromium-family browser) on PATH.
fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs headless Chromium on `page` with `action` flags; returns (stdout, stderr).
fn chromium(bin: &Path, page: &Path, action: &[&str]) -> (String, String) {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let out = Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
        ])
        .args(action)
        .arg(url)
        .output()
        .expect("run chromium");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Console messages Chromium logged (`...:CONSOLE...] "message", source: ...`).
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

#[test]
fn reports_render_in_headless_chromium_without_console_errors() {
    let Some(bin) = find_chromium() else {
        common::skip(
            "no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it when it can)",
        );
        return;
    };
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    let dir = tempfile::tempdir().unwrap();

    // The check is not vacuous: a page that logs an error is caught.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><p>x</p><script>console.error('fleetsim-control')</script>",
    )
    .unwrap();
    let (_, err) = chromium(&bin, &bad, &["--dump-dom"]);
    assert!(
        console_lines(&err).iter().any(|l| l.contains("fleetsim-control")),
        "chromium did not report a console error of the control page; stderr:\n{err}"
    );

    let run_html = dir.path().join("report.html");
    run_report(dir.path(), &["workload.count=300", "cluster.replicas=2"]);
    let search_html = dir.path().join("search.html");
    std::fs::write(&search_html, search_report(&search_input())).unwrap();
    for (page, charts, shot) in [
        (&run_html, &RUN_CHARTS[..], "report.png"),
        (&search_html, &["pareto"][..], "search-report.png"),
    ] {
        let (dom, err) = chromium(&bin, page, &["--dump-dom"]);
        assert!(
            console_lines(&err).is_empty(),
            "console messages: {:?}",
            console_lines(&err)
        );
        assert!(dom.contains("fleetsim-data"), "DOM not rendered; stderr:\n{err}");
        for id in charts {
            assert!(
                dom.contains(&format!("<svg class=\"chart\" data-chart=\"{id}\"")),
                "chart {id} missing from the DOM"
            );
        }
        let png = target.join(shot);
        let _ = std::fs::remove_file(&png);
        let arg = format!("--screenshot={}", png.display());
        let (_, err) = chromium(&bin, page, &[&arg]);
        assert!(
            console_lines(&err).is_empty(),
            "console messages: {:?}",
            console_lines(&err)
        );
        let bytes = std::fs::read(&png)
            .unwrap_or_else(|e| panic!("no screenshot {}: {e}; stderr:\n{err}", png.display()));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
            "screenshot too small"
        );
        eprintln!("screenshot: {}", png.display());
    }
}
