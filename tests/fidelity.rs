//! Fidelity bounds: the aggregate errors against the real vLLM H100
//! measurements stay within the figures docs/fidelity.md (and the README)
//! state, plus a stated tolerance — a bound, not a golden value.
//! Skips (with a message) when ../shared is not present.

mod common;

use fleetsim::fidelity::{self, Options};

/// The `<!-- {tag}: key=value ... -->` figures of docs/fidelity.md.
fn recorded(tag: &str) -> Vec<(String, f64)> {
    let doc = include_str!("../docs/fidelity.md");
    let prefix = format!("<!-- {tag}:");
    let line = doc
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .expect("docs/fidelity.md records the stated bounds");
    line.trim_end_matches("-->")
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_string(), v.parse().expect("a number"))
        })
        .collect()
}

#[test]
fn aggregate_errors_never_get_worse() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let report = fidelity::run(&shared.join("ground-truth/vllm-h100"), &Options::default()).unwrap();
    assert!(report.skipped.is_empty(), "cases skipped: {:?}", report.skipped);
    check(&report.aggregate, &recorded("bounds"));
}

/// The harness with the profile-table time model: the Llama cases run, the
/// FP8 Mistral cases are skipped with the reason, and the errors stay within
/// their stated bounds.
#[test]
fn profile_model_errors_never_get_worse() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let profiles = shared.join("profiles");
    let opts = Options {
        device: None,
        overrides: vec![
            "hardware.time_model=profile".into(),
            format!("hardware.profile_dir={}", profiles.display()),
        ],
    };
    let report = fidelity::run(&shared.join("ground-truth/vllm-h100"), &opts).unwrap();
    assert_eq!(report.time_model, "profile");
    assert!(report.cases.iter().all(|c| c.labels.model.starts_with("Llama")));
    assert_eq!(report.cases.len(), 32);
    assert!(
        report.skipped.iter().all(|s| s.reason.contains("FP16")),
        "{:?}",
        report.skipped
    );
    check(&report.aggregate, &recorded("bounds-profile"));
}

/// The fixed-concurrency vLLM V1 points (InferenceX, `points.csv`): every
/// point runs with closed-loop clients, and the errors stay within the
/// figures docs/fidelity.md states (today's, far from the Engine-fidelity
/// issue's targets: a bound that stops them getting worse).
#[test]
fn closed_loop_v1_points_errors_never_get_worse() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let report = fidelity::run(&shared.join("ground-truth/inferencex-h100"), &Options::default()).unwrap();
    assert!(report.skipped.is_empty(), "points skipped: {:?}", report.skipped);
    assert_eq!(report.cases.len(), 45);
    for c in &report.cases {
        let clients = c.labels.concurrency.expect("a closed-loop point");
        assert_eq!(
            c.requests,
            10 * clients as u64,
            "{}: num_prompts = 10 x concurrency",
            c.case
        );
        assert_eq!(c.scheduler, "vllm-v1");
        assert!(c.tpot_ape.is_some() && c.itl_ape.is_none() && c.e2e_ape.is_none());
    }
    check(&report.aggregate, &recorded("bounds-inferencex"));
    let resident = report
        .aggregate_not_kv_bound
        .as_ref()
        .expect("some points are KV-bound");
    check(resident, &recorded("bounds-inferencex-resident"));
}

/// Each stated figure plus its tolerance bounds the measured aggregate.
fn check(a: &fidelity::GroupStats, recorded: &[(String, f64)]) {
    let get = |k: &str| recorded.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
    let tolerance = get("tolerance").expect("bounds state a tolerance");
    let max_tolerance = get("max_tolerance").unwrap_or(tolerance);
    let mut checked = 0;
    for (key, stated) in recorded.iter().cloned() {
        let (now, slack) = match key.as_str() {
            "ttft_mape" => (a.ttft_mape, tolerance),
            "itl_mape" => (measured(a.itl_mape), tolerance),
            "tpot_mape" => (measured(a.tpot_mape), tolerance),
            "e2e_mape" => (measured(a.e2e_mape), tolerance),
            "ttft_max" => (a.ttft_max_ape, max_tolerance),
            "itl_max" => (measured(a.itl_max_ape), max_tolerance),
            "tpot_max" => (measured(a.tpot_max_ape), max_tolerance),
            "e2e_max" => (measured(a.e2e_max_ape), max_tolerance),
            "tolerance" | "max_tolerance" => continue,
            other => panic!("unknown bound key {other}"),
        };
        checked += 1;
        assert!(
            now <= stated + slack,
            "{key} is {now:.3}%, above the stated {stated}% + {slack} points"
        );
    }
    assert!(checked >= 2, "bounds name the mean errors");
}

/// A stated bound on a metric the folder must have measured.
fn measured(v: Option<f64>) -> f64 {
    v.expect("the bound names a metric the folder measures")
}

#[test]
fn harness_reads_a_case_folder_it_did_not_see_before() {
    // A folder of the same format with one case: the harness must work unchanged.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("vllm-h100-mini");
    std::fs::create_dir_all(dir.join("served")).unwrap();
    std::fs::write(
        dir.join("served/t.jsonl"),
        "{\"StartTimeOffset\": 0, \"ContextTokens\": 100, \"GeneratedTokens\": 20}\n\
         {\"StartTimeOffset\": 2000000000, \"ContextTokens\": 300, \"GeneratedTokens\": 40}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("cases.csv"),
        "case,engine,model,weight_dtype,kv_dtype,trace,arrival_rate,parallel_config,tp,shard,gpus_per_instance,\
gpu_memory_utilization,max_model_len,n_requests,ttft_mean_s,tpot_s,itl_mean_s,e2e_mean_s,served_prompt_tokens,\
served_output_tokens,served_trace\n\
c1,vllm-0.6.0,Llama-3.1-70B,bf16,bf16,x,0.5,4TP,4,,4,0.9,default(131072),2,0.05,0.02,0.02,0.7,400,60,served/t.jsonl\n\
c2,other-engine,Llama-3.1-70B,bf16,bf16,x,0.5,4TP,4,,4,0.9,8192,2,0.05,0.02,0.02,0.7,400,60,served/t.jsonl\n",
    )
    .unwrap();
    let r = fidelity::run(&dir, &Options::default()).unwrap();
    assert_eq!(r.device, "H100-SXM");
    assert_eq!(r.cases.len(), 1);
    assert_eq!(
        r.cases[0].scheduler, "sarathi",
        "131072 context: vLLM 0.6 chunks prefills"
    );
    assert_eq!(r.cases[0].requests, 2);
    assert_eq!(r.skipped.len(), 1, "the unknown engine is skipped with a reason");
    assert!(r.skipped[0].reason.contains("other-engine"));
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    for k in ["itl_mape", "e2e_mape", "ttft_mape"] {
        assert!(json["aggregate"][k].is_number(), "aggregate.{k}");
    }
}

/// One fixed-concurrency point: `--max-concurrency` clients
/// replayed through the closed-loop workload.
const POINTS_HEADER: &str = "case,engine,model,weight_dtype,kv_dtype,device,tp,isl,osl,random_range_ratio,\
concurrency,num_prompts,max_num_seqs,max_num_batched_tokens,prefix_caching,mean_ttft_s,mean_tpot_s\n";

fn points_folder(rows: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bench-points");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("points.csv"), format!("{POINTS_HEADER}{rows}")).unwrap();
    (d, dir)
}

#[test]
fn harness_replays_fixed_concurrency_points() {
    let (_d, dir) = points_folder(
        "p1,vllm-0.10.2 (V1),Llama-3.1-8B,bf16,bf16,H100-SXM,1,200,50,0.8,4,12,4,8192,false,0.03,0.008\n\
p2,vllm-0.10.2 (V1),Llama-3.1-8B,bf16,bf16,H100-SXM,1,200,50,0.8,1,3,1,8192,false,0.03,0.008\n\
p3,tensorrt-llm,Llama-3.1-8B,bf16,bf16,H100-SXM,1,200,50,0.8,4,12,4,8192,false,0.03,0.008\n",
    );
    let r = fidelity::run(&dir, &Options::default()).unwrap();
    assert_eq!(
        r.device, "H100-SXM",
        "the points' own device column (the folder name says none)"
    );
    assert_eq!(r.cases.len(), 2);
    let (c4, c1) = (&r.cases[0], &r.cases[1]);
    assert_eq!((c4.requests, c1.requests), (12, 3), "num_prompts requests each");
    assert_eq!(c4.labels.concurrency, Some(4));
    assert_eq!(c4.labels.load(), "c=4");
    assert_eq!(c4.labels.trace, "200/50");
    assert_eq!(c4.scheduler, "vllm-v1");
    // One client never queues behind another: its TTFT is one prefill,
    // shorter than with four clients whose prefills share steps.
    assert!(c1.predicted_ttft_s < c4.predicted_ttft_s, "{c1:?} {c4:?}");
    assert!(c4.predicted_tpot_s > 0.0 && c4.predicted_itl_s > 0.0);
    assert_eq!(c4.measured_itl_s, None, "points measure TTFT and TPOT only");
    assert!(!c4.kv_bound);
    assert_eq!(c4.peak_kv_tokens, Some(4 * 250));
    assert_eq!(r.skipped.len(), 1);
    assert!(r.skipped[0].reason.contains("tensorrt-llm"), "{:?}", r.skipped);
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert!(json["aggregate"]["tpot_mape"].is_number());
    assert!(json["aggregate"]["itl_mape"].is_null(), "no point measured ITL");
    assert!(json["aggregate_not_kv_bound"].is_null(), "no point is KV-bound");
    let table = r.to_table();
    assert!(table.contains("TPOT ms") && !table.contains("ITL ms"), "{table}");
    let loads: Vec<&str> = r
        .groups
        .iter()
        .filter(|g| g.by == "load")
        .map(|g| g.value.as_str())
        .collect();
    assert_eq!(loads, ["c=1", "c=4"]);
    // Each group holds exactly its own rows.
    for g in r.groups.iter().filter(|g| g.by == "load") {
        let own = r.cases.iter().find(|c| c.labels.load() == g.value).unwrap();
        assert_eq!(
            (g.cases, g.ttft_mape, g.tpot_mape),
            (1, own.ttft_ape, own.tpot_ape),
            "{g:?}"
        );
    }
    assert_ne!(c1.ttft_ape, c4.ttft_ape, "the two rows tell their groups apart");
}

#[test]
fn a_point_whose_clients_outgrow_the_kv_pool_is_flagged_and_summarised_apart() {
    // Llama-3.1-8B on one H100 allowed 30% of its memory leaves a few
    // tens of thousands of KV tokens: 64 clients of 4,096 + 4,096 tokens
    // cannot all be resident. (`gpu_memory_utilization` is an optional column.)
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bench-points");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("points.csv"),
        format!(
            "{},gpu_memory_utilization\n\
big,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,1,4096,4096,1.0,64,64,64,8192,false,1.0,0.05,0.3\n\
small,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,1,128,16,1.0,2,2,2,8192,false,0.1,0.02,0.3\n",
            POINTS_HEADER.trim_end()
        ),
    )
    .unwrap();
    let r = fidelity::run(&dir, &Options::default()).unwrap();
    let big = r.cases.iter().find(|c| c.case == "big").unwrap();
    let small = r.cases.iter().find(|c| c.case == "small").unwrap();
    assert!(big.kv_bound, "{big:?}");
    assert!(big.peak_kv_tokens.unwrap() > big.kv_capacity_tokens);
    assert!(!small.kv_bound);
    let resident = r.aggregate_not_kv_bound.as_ref().unwrap();
    assert_eq!((resident.cases, r.aggregate.cases), (1, 2));
    assert!((resident.ttft_mape - small.ttft_ape).abs() < 1e-9);
}

#[test]
fn a_folder_with_nothing_to_simulate_is_an_error() {
    let (_d, dir) = points_folder(
        "p,tensorrt-llm,Llama-3.1-8B,bf16,bf16,H100-SXM,1,200,50,0.8,4,12,4,8192,false,0.03,0.008\n",
    );
    let e = fidelity::run(&dir, &Options::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no row") && e.contains("tensorrt-llm"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = fidelity::run(
        empty.path(),
        &Options {
            device: Some("H100-SXM".into()),
            overrides: vec![],
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("neither cases.csv") && e.contains("points.csv"), "{e}");
}

#[test]
fn a_bad_point_names_its_file_line_and_column() {
    let (_d, dir) = points_folder(
        "p,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,1,200,50,0.8,four,12,4,8192,false,0.03,0.008\n",
    );
    let e = fidelity::run(&dir, &Options::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("points.csv")
            && e.contains("line 2")
            && e.contains("`concurrency`")
            && e.contains("`four`"),
        "{e}"
    );
    // A measured 0 would make every error 0% (or undefined): refused.
    let (_d0, dir0) = points_folder(
        "p,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,1,200,50,0.8,4,12,4,8192,false,0,0.008\n",
    );
    let e = fidelity::run(&dir0, &Options::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`mean_ttft_s`") && e.contains("above 0"), "{e}");
}

/// A points folder whose "measurements" are fleetsim's own predictions
/// with a known `cpu_overhead_base`: the fit must find that value again.
fn synthetic_points(true_cpu: f64) -> (tempfile::TempDir, std::path::PathBuf) {
    synthetic_points_where(&format!("hardware.calibration.cpu_overhead_base={true_cpu}"))
}

/// Three points "measured" by fleetsim itself with `truth` set.
fn synthetic_points_where(truth: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    synthetic_points_by_tp(truth, truth)
}

/// The same three points, the TP 1 ones measured with `tp1` set and the TP 2
/// one with `tp2`.
fn synthetic_points_by_tp(tp1: &str, tp2: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let rows = "a,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,1,300,40,0.8,2,6,2,8192,false,1,1\n\
b,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,2,300,40,0.8,4,12,4,8192,false,1,1\n\
c,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,1,600,20,0.8,3,9,3,8192,false,1,1\n";
    let (d, dir) = points_folder(rows);
    let measure = |truth: &str| {
        let opts = Options {
            device: None,
            overrides: vec![truth.to_string()],
        };
        fidelity::run(&dir, &opts).unwrap()
    };
    let (one, two) = (measure(tp1), measure(tp2));
    let measured: String = one
        .cases
        .iter()
        .zip(&two.cases)
        .zip(rows.lines())
        .map(|((c1, c2), row)| {
            let c = if row.split(',').nth(6) == Some("2") {
                c2
            } else {
                c1
            };
            let cells: Vec<&str> = row.split(',').collect();
            format!(
                "{},{},{}\n",
                cells[..cells.len() - 2].join(","),
                c.predicted_ttft_s,
                c.predicted_tpot_s
            )
        })
        .collect();
    std::fs::write(dir.join("points.csv"), format!("{POINTS_HEADER}{measured}")).unwrap();
    (d, dir)
}

#[test]
fn the_end_to_end_fit_recovers_a_known_constant_and_holds_out_groups() {
    use fidelity::fit::{FitOptions, fit};
    let (_d, dir) = synthetic_points(2e-3);
    let prepared = vec![fidelity::prepare(&dir, &Options::default()).unwrap()];
    let opts = FitOptions {
        params: vec!["cpu_overhead_base=1e-3".into()],
        overrides: vec![],
        holdout: Some("tp".into()),
    };
    let r = fit(&prepared, &opts).unwrap();
    let p = &r.params[0];
    assert_eq!((p.name.as_str(), p.start), ("cpu_overhead_base", 1e-3));
    assert!((p.value / 2e-3 - 1.0).abs() < 0.02, "fitted {}", p.value);
    assert!(
        r.after.objective < 0.5 && r.before.objective > 5.0,
        "{:?} {:?}",
        r.before,
        r.after
    );
    // Held out by TP: each fold (TP 1 rows, TP 2 row) recovers it too.
    assert_eq!(r.holdout.len(), 2);
    assert_eq!(
        r.holdout
            .iter()
            .map(|h| (h.value.as_str(), h.fitted_rows))
            .collect::<Vec<_>>(),
        [("1", 1), ("2", 2)]
    );
    for h in &r.holdout {
        assert!((h.params[0].value / 2e-3 - 1.0).abs() < 0.03, "{h:?}");
        assert!(h.held_out.stats.tpot_mape.unwrap() < 1.0, "{h:?}");
    }
    let table = r.to_table();
    assert!(
        table.contains("[hardware.calibration]\ncpu_overhead_base = 2.0"),
        "{table}"
    );
    assert!(table.contains("leave-one-tp-out"), "{table}");
    // Deterministic: the same fit twice gives the same report.
    assert_eq!(fit(&prepared, &opts).unwrap().to_json(), r.to_json());
}

/// Fits the one parameter `param` (`name=start`) to the points in `dir`.
fn fit_one(dir: &std::path::Path, param: &str, holdout: Option<&str>) -> fidelity::fit::FitReport {
    let prepared = vec![fidelity::prepare(dir, &Options::default()).unwrap()];
    let opts = fidelity::fit::FitOptions {
        params: vec![param.to_string()],
        overrides: vec![],
        holdout: holdout.map(str::to_string),
    };
    fidelity::fit::fit(&prepared, &opts).unwrap()
}

/// The search goes down as well as up: from twice the truth it finds the
/// truth again.
#[test]
fn the_end_to_end_fit_also_lowers_a_constant() {
    let (_d, dir) = synthetic_points(2e-3);
    let r = fit_one(&dir, "cpu_overhead_base=4e-3", None);
    assert!((r.params[0].value / 2e-3 - 1.0).abs() < 0.02, "{:?}", r.params);
}

/// Each parameter stays within [start / 1000, 1000 · start] (and its
/// largest value): from thousands of times too low or too high the fit
/// stops at the edge of that range. A start near the 1 s limit of a time
/// used to end the fit with an error when its first trial (×1.4) passed it.
#[test]
fn a_fitted_constant_stays_within_a_thousandfold_of_its_start() {
    // Measured with 2 ms and 0.2 ms; started 2,000 and 4,500 times away.
    for (truth, start, edge) in [(2e-3, 1e-6, 1e-6 * 1e3), (2e-4, 0.9, 0.9 / 1e3)] {
        let (_d, dir) = synthetic_points(truth);
        let r = fit_one(&dir, &format!("cpu_overhead_base={start}"), None);
        assert_eq!(r.params[0].value, edge, "from {start}");
    }
}

/// A constant the rows do not depend on (the quantised GEMM rate, for BF16
/// weights) leaves the objective flat: the fit tries both directions at
/// each step, 0.4, 0.2, … 0.0125 (six rounds: 12 evaluations), keeps
/// nothing, and ends at its start.
#[test]
fn a_constant_the_rows_ignore_ends_the_fit_at_its_start() {
    let (_d, dir) = synthetic_points(2e-3);
    let r = fit_one(&dir, "quantized_gemm_efficiency=0.7", None);
    assert_eq!(r.params[0].value, 0.7);
    assert_eq!(r.evaluations, 12);
    assert_eq!(r.after.objective, r.before.objective);
    assert!(r.to_table().contains("; 12 evaluations\n"), "{}", r.to_table());
}

/// Leave-one-out fits each fold on the other groups' rows only and scores
/// the held-out group with it: TP 1 rows measured with 2 ms of host time
/// per step and the TP 2 row with 3 ms give 3 ms without TP 1 and 2 ms
/// without TP 2.
#[test]
fn each_fold_is_fitted_without_its_group_and_scored_on_it() {
    let (_d, dir) = synthetic_points_by_tp(
        "hardware.calibration.cpu_overhead_base=2e-3",
        "hardware.calibration.cpu_overhead_base=3e-3",
    );
    let r = fit_one(&dir, "cpu_overhead_base=1e-3", Some("tp"));
    let folds: Vec<(&str, f64, usize)> = r
        .holdout
        .iter()
        .map(|h| (h.value.as_str(), h.params[0].value, h.held_out.stats.cases))
        .collect();
    assert_eq!(folds.len(), 2);
    for ((value, fitted, scored), (want_value, want_fit, want_scored)) in
        folds.iter().zip([("1", 3e-3, 2), ("2", 2e-3, 1)])
    {
        assert_eq!((*value, *scored), (want_value, want_scored), "{folds:?}");
        assert!((fitted / want_fit - 1.0).abs() < 0.03, "{folds:?}");
    }
}

/// A row that cannot run with the start values (a 70B model in one H100's
/// memory) is left out of the fit and listed with its reason; the other
/// rows are fitted as before. The table shows each error line and the JSON
/// the same report.
#[test]
fn a_row_that_cannot_run_is_left_out_and_listed() {
    let (_d, dir) = synthetic_points(2e-3);
    let csv = dir.join("points.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("z,vllm-0.10.2,Llama-3.1-70B,bf16,bf16,H100-SXM,1,300,40,0.8,2,6,2,8192,false,0.5,0.05\n");
    std::fs::write(&csv, text).unwrap();
    let r = fit_one(&dir, "cpu_overhead_base=1e-3", None);
    assert_eq!(r.rows, 3);
    assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
    assert!(r.skipped[0].case.contains('z'), "{:?}", r.skipped);
    assert!((r.params[0].value / 2e-3 - 1.0).abs() < 0.02, "{:?}", r.params);
    let table = r.to_table();
    assert!(
        table.contains("\n1 rows left out (they cannot run):\n- "),
        "{table}"
    );
    let before = table
        .lines()
        .find(|l| l.starts_with("before (start values)"))
        .expect("a before line");
    let b = &r.before;
    for figure in [
        format!(" 3 {:>9.2} |", b.objective),
        format!(" {:>7.2} ", b.stats.ttft_mape),
    ] {
        assert!(before.contains(&figure), "`{figure}` in `{before}`");
    }
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["rows"], 3);
    assert_eq!(json["params"][0]["name"], "cpu_overhead_base");
    assert_eq!(json["skipped"].as_array().map(Vec::len), Some(1));
    let (_d2, clean) = synthetic_points(2e-3);
    let table = fit_one(&clean, "cpu_overhead_base=1e-3", None).to_table();
    assert!(!table.contains("left out"), "{table}");
}

/// A fraction is fitted within (0, 1]: measured with the memory
/// efficiency at 1, a fit from 0.9 stops at 1 instead of trying an
/// impossible 1.26 (which the scenario would refuse, ending the fit).
#[test]
fn a_fitted_fraction_stays_at_or_below_one() {
    use fidelity::fit::{FitOptions, fit};
    let (_d, dir) = synthetic_points_where("hardware.calibration.memory_efficiency=1");
    let prepared = vec![fidelity::prepare(&dir, &Options::default()).unwrap()];
    let opts = FitOptions {
        params: vec!["memory_efficiency=0.9".into()],
        overrides: vec![],
        holdout: None,
    };
    let r = fit(&prepared, &opts).unwrap();
    assert_eq!(r.params[0].value, 1.0, "{:?}", r.params);
    assert!(r.after.objective < 0.01, "{:?}", r.after);
    // A start at the largest value is allowed.
    let at_top = FitOptions {
        params: vec!["memory_efficiency=1".into()],
        ..opts.clone()
    };
    assert_eq!(fit(&prepared, &at_top).unwrap().params[0].value, 1.0);
    let too_big = FitOptions {
        params: vec!["eager_launch_overlap=1.5".into()],
        ..opts
    };
    let e = fit(&prepared, &too_big).unwrap_err().to_string();
    assert!(e.contains("above its largest value 1"), "{e}");
}

#[test]
fn a_fit_refuses_what_it_cannot_do_with_a_clear_message() {
    use fidelity::fit::{FitOptions, fit};
    let (_d, dir) = synthetic_points(2e-3);
    let prepared = vec![fidelity::prepare(&dir, &Options::default()).unwrap()];
    let attempt = |params: &[&str], holdout: Option<&str>| {
        fit(
            &prepared,
            &FitOptions {
                params: params.iter().map(|p| p.to_string()).collect(),
                overrides: vec![],
                holdout: holdout.map(str::to_string),
            },
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
    };
    let e = attempt(&["cpu_overhead_bse"], None);
    assert!(
        e.contains("cpu_overhead_bse") && e.contains("cpu_overhead_base"),
        "{e}"
    );
    let e = attempt(&["layer_overhead=0"], None);
    assert!(
        e.contains("starts at 0") && e.contains("--param layer_overhead=VALUE"),
        "{e}"
    );
    let e = attempt(&["cpu_overhead_base=x"], None);
    assert!(e.contains("expected a number"), "{e}");
    let e = attempt(&["cpu_overhead_base", "cpu_overhead_base"], None);
    assert!(e.contains("twice"), "{e}");
    let e = attempt(&["cpu_overhead_base"], Some("gpu"));
    assert!(e.contains("--holdout") && e.contains("tp"), "{e}");
    let e = attempt(&["cpu_overhead_base"], Some("model"));
    assert!(e.contains("nothing to hold out"), "{e}");
    assert!(attempt(&[], None).contains("at least one"));
}

/// The H100 `[device.engines.vllm-v1]` constants are what the command in
/// `catalog/devices.toml` fits (to the 5 significant digits written there):
/// anyone can regenerate them.
#[test]
fn the_shipped_vllm_v1_constants_are_regenerated_by_their_command() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    use fidelity::fit::{FitOptions, fit};
    let prepared =
        vec![fidelity::prepare(&shared.join("ground-truth/inferencex-h100"), &Options::default()).unwrap()];
    let opts = FitOptions {
        params: vec![
            "cpu_overhead_base=2.775e-3".into(),
            "cpu_overhead_per_seq=2.5e-5".into(),
            "layer_overhead=3.44e-5".into(),
        ],
        overrides: vec!["hardware.calibration.quantized_layer_overhead=0".into()],
        holdout: None,
    };
    let r = fit(&prepared, &opts).unwrap();
    let h100 = fleetsim::catalog::Catalog::builtin()
        .device("H100-SXM")
        .unwrap()
        .clone();
    let shipped = &h100.engines["vllm-v1"];
    for p in &r.params {
        let value = shipped[&p.name].as_float().unwrap();
        assert_eq!(format!("{:.4e}", p.value), format!("{value:.4e}"), "{}", p.name);
    }
    assert_eq!(shipped["quantized_layer_overhead"].as_float(), Some(0.0));
}

#[test]
fn a_case_may_state_the_engine_settings_it_ran_with() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("vllm-h100-settings");
    std::fs::create_dir_all(dir.join("served")).unwrap();
    // Two requests at once: one sequence at a time makes the second wait.
    std::fs::write(
        dir.join("served/t.jsonl"),
        "{\"StartTimeOffset\": 0, \"ContextTokens\": 100, \"GeneratedTokens\": 50}\n\
         {\"StartTimeOffset\": 0, \"ContextTokens\": 100, \"GeneratedTokens\": 50}\n",
    )
    .unwrap();
    let header = "case,engine,model,weight_dtype,kv_dtype,trace,arrival_rate,tp,gpu_memory_utilization,\
max_model_len,n_requests,ttft_mean_s,itl_mean_s,e2e_mean_s,served_trace,max_num_seqs,prefix_caching\n";
    let row = |name: &str, seqs: &str, caching: &str| {
        format!(
            "{name},vllm-0.6.0,Llama-3.1-8B,bf16,bf16,x,1,1,0.9,8192,2,0.05,0.02,0.7,served/t.jsonl,{seqs},{caching}\n"
        )
    };
    std::fs::write(
        dir.join("cases.csv"),
        format!(
            "{header}{}{}",
            row("default", "", ""),
            row("one-seq", "1", "true")
        ),
    )
    .unwrap();
    let r = fidelity::run(&dir, &Options::default()).unwrap();
    let (default, one) = (&r.cases[0], &r.cases[1]);
    assert!(
        one.predicted_ttft_s > 1.5 * default.predicted_ttft_s,
        "max_num_seqs = 1: {} vs {} s",
        one.predicted_ttft_s,
        default.predicted_ttft_s
    );
    let cases = fidelity::load_cases(&dir).unwrap();
    assert_eq!((cases[0].max_num_seqs, cases[0].prefix_caching), (None, None));
    assert_eq!(
        (cases[1].max_num_seqs, cases[1].prefix_caching),
        (Some(1), Some(true))
    );
    assert!(
        fidelity::case_overrides(&cases[1], "H100-SXM")
            .contains(&"scheduler.prefix_caching=true".to_string())
    );
    std::fs::write(
        dir.join("cases.csv"),
        format!("{header}{}", row("bad", "many", "")),
    )
    .unwrap();
    let e = fidelity::run(&dir, &Options::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("`max_num_seqs`") && e.contains("`many`") && e.contains("line 2"),
        "{e}"
    );
}

#[test]
fn a_row_naming_an_unknown_model_is_skipped_with_the_reason_and_the_rest_run() {
    let (_d, dir) = points_folder(
        "good,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,1,200,50,0.8,2,4,2,8192,false,0.03,0.008\n\
bad,vllm-0.10.2,No-Such-Model-9B,bf16,bf16,H100-SXM,1,200,50,0.8,2,4,2,8192,false,0.03,0.008\n",
    );
    let r = fidelity::run(&dir, &Options::default()).unwrap();
    assert_eq!(r.cases.len(), 1);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].case, "bad");
    assert!(
        r.skipped[0].reason.contains("No-Such-Model-9B"),
        "{:?}",
        r.skipped
    );
}

#[test]
fn a_point_is_kv_bound_only_when_its_peak_exceeds_the_pool() {
    // Two clients whose sequences together end exactly at the simulated
    // pool's capacity (a multiple of the 16-token block) fit; one token
    // more each does not.
    let row = |isl: u64| {
        format!(
            "p,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,1,{isl},16,1.0,2,2,2,8192,false,1.0,0.01,0.3\n"
        )
    };
    let header = format!("{},gpu_memory_utilization\n", POINTS_HEADER.trim_end());
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bench-points");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |isl: u64| {
        std::fs::write(dir.join("points.csv"), format!("{header}{}", row(isl))).unwrap();
        fidelity::run(&dir, &Options::default()).unwrap().cases.remove(0)
    };
    let capacity = run(100).kv_capacity_tokens;
    assert!(capacity > 1_000 && capacity % 2 == 0, "{capacity}");
    let exact = run(capacity / 2 - 16);
    assert_eq!(exact.peak_kv_tokens, Some(capacity));
    assert!(!exact.kv_bound, "a peak equal to the pool fits");
    assert!(run(capacity / 2 - 15).kv_bound, "one token more each does not");
}

#[test]
fn a_bad_override_stops_the_harness_for_every_row() {
    let (_d, dir) = points_folder(
        "p,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,1,200,50,0.8,2,4,2,8192,false,0.03,0.008\n",
    );
    let opts = Options {
        device: None,
        overrides: vec!["hardware.calibration.no_such_constant=1".into()],
    };
    let e = fidelity::run(&dir, &opts).err().unwrap().to_string();
    assert!(e.contains("no_such_constant") && !e.contains("no row"), "{e}");
}
