//! The command line as users meet it: bad input gives a clear one-paragraph
//! error and exit code 2 (never a panic), runs are byte-for-byte
//! reproducible, and every example scenario runs.

mod common;

use std::path::Path;
use std::process::Output;

fn fleetsim(args: &[&str]) -> Output {
    common::fleetsim(env!("CARGO_BIN_EXE_fleetsim"), args)
}

fn expect_error(args: &[&str], needles: &[&str]) {
    common::expect_error(env!("CARGO_BIN_EXE_fleetsim"), args, needles)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn malformed_toml_names_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let f = write(
        d.path(),
        "bad.toml",
        "[model]\nname = \"Llama-3-8B\"\n[cluster\nreplicas = 2\n",
    );
    expect_error(&["validate", &f], &["bad.toml", "line 3"]);
}

#[test]
fn unknown_key_suggests_the_closest() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "typo.toml", "[cluster]\nreplica = 2\n");
    expect_error(
        &["validate", &f],
        &[
            "typo.toml",
            "line 2",
            "cluster.replica",
            "did you mean `replicas`",
        ],
    );
    expect_error(
        &["run", "--set", "scheduler.knd=sarathi"],
        &["scheduler.knd", "did you mean `kind`"],
    );
}

#[test]
fn unknown_names_suggest_the_closest() {
    expect_error(
        &["run", "--set", "model.name=Llama-3-8b-typo"],
        &["model.name", "Llama-3-8B"],
    );
    expect_error(
        &["run", "--set", "scheduler.kind=sarath"],
        &["scheduler.kind", "did you mean `sarathi`"],
    );
    expect_error(
        &["run", "--set", "cluster.router=round-robbin"],
        &["cluster.router", "round-robin"],
    );
}

/// A value outside a key's fixed list of names fails at load (`validate`
/// reads no further), exit code 2, with the file, line and key or the
/// override, the intended name and every name.
#[test]
fn misspelled_names_fail_at_load_naming_the_key() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "mode.toml", "[cluster]\nmode = \"disagregated\"\n");
    expect_error(
        &["validate", &f],
        &[&format!(
            "error: {f}: line 2: key `cluster.mode`: unknown value `disagregated` (did you mean \
             `disaggregated`?); expected one of: colocated, disaggregated, semi-pd"
        )],
    );
    expect_error(
        &["run", "--quiet", "--set", "scheduler.preemption=swapp"],
        &[
            "error: --set scheduler.preemption=swapp: key `scheduler.preemption`: unknown value \
           `swapp` (did you mean `swap`?); expected one of: recompute, swap",
        ],
    );
}

#[test]
fn impossible_values_are_explained() {
    expect_error(
        &["run", "--set", "cluster.replicas=0"],
        &["cluster.replicas", "at least 1"],
    );
    expect_error(
        &["run", "--set", "cluster.tp=3"],
        &["cluster.tp", "32 attention heads"],
    );
    expect_error(
        &["run", "--set", "scheduler.gpu_memory_utilization=1.5"],
        &["gpu_memory_utilization"],
    );
    expect_error(
        &["run", "--set", "workload.arrivals.rate=-1"],
        &["workload.arrivals.rate"],
    );
    expect_error(&["run", "--set", "cluster.replicas=\"two\""], &["replicas"]);
}

#[test]
fn a_model_that_does_not_fit_says_why_with_numbers() {
    expect_error(
        &[
            "run",
            "--set",
            "model.name=Llama-2-70B",
            "--set",
            "hardware.device=A100-40GB",
        ],
        &["does not fit", "GiB", "Llama-2-70B"],
    );
}

#[test]
fn bad_traces_name_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let trace = write(
        d.path(),
        "t.csv",
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10,5\n0.5,abc,5\n",
    );
    let set = format!("workload.trace={trace}");
    expect_error(&["run", "--set", &set], &["t.csv", "line 3"]);
    let missing = format!("workload.trace={}", d.path().join("nope.csv").display());
    expect_error(&["run", "--set", &missing], &["nope.csv"]);
}

#[test]
fn missing_scenario_file_is_an_error() {
    expect_error(
        &["run", "/nonexistent/scenario.toml"],
        &["/nonexistent/scenario.toml"],
    );
}

#[test]
fn same_scenario_and_seed_give_byte_identical_files() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let b = d.path().join("b");
    for dir in [&a, &b] {
        let out = fleetsim(&[
            "run",
            "--quiet",
            "--set",
            "workload.count=800",
            "--set",
            "cluster.replicas=2",
            "--set",
            "cluster.router=least-kv",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for f in ["summary.json", "requests.csv", "timeseries.csv"] {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(!x.is_empty(), "{f} is empty");
        assert!(x == y, "{f} differs between two identical runs");
    }
}

#[test]
fn default_run_prints_a_summary() {
    let out = fleetsim(&["run", "--quiet", "--set", "workload.count=300"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.to_lowercase().contains("ttft"), "{text}");
    let out = fleetsim(&[
        "run",
        "--quiet",
        "--format",
        "json",
        "--set",
        "workload.count=300",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--format json prints JSON");
    assert_eq!(v["completed"], 300);
}

#[test]
fn every_example_validates_and_runs() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        // Training scenarios live in examples/train (see below).
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Search spaces (names containing "search") are run by tests/search.rs.
        if f.file_name()
            .is_some_and(|n| n.to_string_lossy().contains("search"))
        {
            continue;
        }
        if text.contains("shared/") && common::shared_dir().is_none() {
            continue;
        }
        let f = f.to_str().unwrap();
        let v = fleetsim(&["validate", f]);
        assert!(
            v.status.success(),
            "validate {f}: {}",
            String::from_utf8_lossy(&v.stderr)
        );
        let r = fleetsim(&["run", "--quiet", f, "--set", "workload.count=300"]);
        assert!(
            r.status.success(),
            "run {f}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
}

#[test]
fn catalog_lists_models_and_devices() {
    let out = fleetsim(&["catalog", "models"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for m in [
        "Llama-3-8B",
        "Llama-2-70B",
        "Mixtral-8x7B",
        "Qwen2.5-72B",
        "phi-2",
    ] {
        assert!(text.contains(m), "catalog models lacks {m}");
    }
    let out = fleetsim(&["catalog", "devices"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for d in ["H100-SXM", "A100-80GB", "MI300X", "B200", "L40S"] {
        assert!(text.contains(d), "catalog devices lacks {d}");
    }
}

#[test]
fn profile_time_model_errors_are_clear() {
    expect_error(
        &["run", "--quiet", "--set", "hardware.time_model=profile"],
        &["hardware.profile_dir", "needs the folder"],
    );
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    expect_error(
        &[
            "run",
            "--quiet",
            "--set",
            "hardware.time_model=profile",
            "--set",
            &format!("hardware.profile_dir={dir}"),
        ],
        &["profile time model", "compute profiles of H100-SXM"],
    );
    expect_error(
        &["calibrate", "/nonexistent/profiles"],
        &["/nonexistent/profiles", "not a folder"],
    );
    expect_error(&["calibrate", &dir], &["no catalog device has compute profiles"]);
}

#[test]
fn calibrate_prints_a_catalog_snippet() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let profiles = shared.join("profiles").display().to_string();
    // The snippets are what the catalog embeds for the A40 and the A100
    // (same command, same numbers).
    let catalog = include_str!("../catalog/devices.toml");
    for device in ["A40", "A100-80GB"] {
        let out = fleetsim(&["calibrate", &profiles, "--device", device]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("[device.calibration]") && text.contains("gemm_efficiency = "),
            "{text}"
        );
        let block = &catalog[catalog
            .find(&format!("# {device}: analytical"))
            .expect("a fitted block")..];
        for line in text.lines().filter(|l| !l.starts_with('#') && l.contains(" = ")) {
            assert!(
                block[..block.find("[[device]]").unwrap_or(block.len())].contains(line),
                "catalog/devices.toml's {device} block lacks `{line}` from calibrate"
            );
        }
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fleetsim"))
        .args(["run", "--quiet"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the simulation prints anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn closed_loop_workload_errors_name_the_key() {
    let example = |f: &str| format!("{}/examples/{f}", env!("CARGO_MANIFEST_DIR"));
    expect_error(
        &[
            "run",
            "--quiet",
            "--set",
            "workload.sessions.think_time.kind=expo",
        ],
        &["workload.sessions.think_time.kind", "exponential"],
    );
    expect_error(
        &["run", "--quiet", "--set", "workload.sessions.think_time.mean=-1"],
        &["workload.sessions.think_time.mean", "-1"],
    );
    expect_error(
        &[
            "run",
            "--quiet",
            "--set",
            "workload.sessions.users=2",
            "--set",
            "workload.concurrency=3",
        ],
        &["workload.concurrency", "workload.sessions.users"],
    );
    expect_error(
        &[
            "run",
            "--quiet",
            "--set",
            "workload.sessions.turns.kind=fixed",
            "--set",
            "workload.sessions.turns.value=0",
        ],
        &["workload.sessions.turns.value"],
    );
    expect_error(
        &[
            "run",
            "--quiet",
            "--set",
            "workload.concurrency=2",
            "--set",
            "workload.count=0",
        ],
        &["workload.count", "fixed-concurrency"],
    );
    // With a duration, a count of 0 is fine: the error is the real one.
    expect_error(
        &[
            "run",
            "--quiet",
            "--set",
            "workload.concurrency=2",
            "--set",
            "workload.count=0",
            "--set",
            "workload.duration=5",
            "--set",
            "workload.prompt.kind=lognormall",
        ],
        &["workload.prompt.kind", "lognormal"],
    );
    expect_error(
        &[
            "search",
            "--quiet",
            &example("llama8b-search.toml"),
            "--set",
            "workload.concurrency=2",
        ],
        &["workload.concurrency", "capacity search"],
    );
}

#[test]
fn fit_errors_name_the_folder_or_the_parameter() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().display().to_string();
    expect_error(
        &[
            "fit",
            &empty,
            "--param",
            "cpu_overhead_base",
            "--device",
            "H100-SXM",
        ],
        &["neither cases.csv", "points.csv"],
    );
    let dir = d.path().join("pts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("points.csv"),
        "case,engine,model,weight_dtype,kv_dtype,device,tp,isl,osl,random_range_ratio,concurrency,\
num_prompts,max_num_seqs,max_num_batched_tokens,prefix_caching,mean_ttft_s,mean_tpot_s\n\
p,vllm-0.10.2,Llama-3.1-8B,bf16,bf16,H100-SXM,1,100,10,0.8,1,2,1,8192,false,0.02,0.007\n",
    )
    .unwrap();
    let dir = dir.display().to_string();
    expect_error(
        &["fit", &dir, "--param", "gemm_eficiency"],
        &["--param", "gemm_efficiency"],
    );
    expect_error(
        &["fit", &dir, "--param", "cpu_overhead_base", "--holdout", "tp"],
        &["--holdout", "nothing to hold out"],
    );
}

#[test]
fn every_training_example_runs_and_prints_the_named_fields() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/train"));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        // gpt3-catalog.toml is a catalog file the GPT-3 example loads;
        // search spaces are run by the search test below.
        .filter(|p| {
            let name = p.to_string_lossy();
            !name.ends_with("catalog.toml") && !name.contains("search")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4);
    for f in files {
        let f = f.to_str().unwrap();
        let out = fleetsim(&["train", f, "--format", "json", "--set", "training.steps=200"]);
        assert!(
            out.status.success(),
            "train {f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--format json prints JSON");
        for key in [
            "iteration_s",
            "tokens_per_s",
            "tflops_per_gpu",
            "mfu",
            "bubble_fraction",
            "exposed_comm_s",
            "peak_memory_gib",
            "goodput",
        ] {
            assert!(v[key].is_number(), "{f}: `{key}` missing in {v}");
        }
        assert!(
            v["devices"][0]["peak_memory_gib"].is_number(),
            "{f}: per-device memory"
        );
    }
}

#[test]
fn train_writes_its_files_and_refuses_bad_input_with_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let trace = d.path().join("step.json");
    let html = d.path().join("step.html");
    let out_dir = d.path().join("out");
    let out = fleetsim(&[
        "train",
        "--set",
        "parallel.pp=2",
        "--set",
        "parallel.dp=4",
        "--out",
        out_dir.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("train.json")).unwrap()).unwrap();
    assert!(json["iteration_s"].as_f64().unwrap() > 0.0);
    let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    assert!(t["traceEvents"].as_array().unwrap().len() > 2 * 8 * 2);
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));

    let bad = write(d.path(), "bad.toml", "[training]\nglobal_batch = 10\n");
    expect_error(&["train", &bad], &["training.global_batch", "micro_batch × dp"]);
    let typo = write(d.path(), "typo.toml", "[parallel]\ntp = 1\npp = 1\nd = 2\n");
    expect_error(&["train", &typo], &["typo.toml", "line 4", "parallel.d"]);
    expect_error(
        &["train", "--set", "model.name=Llama-3-70B"],
        &["GiB", "weights", "H100-SXM"],
    );
    expect_error(
        &["train", "/nonexistent/train.toml"],
        &["/nonexistent/train.toml"],
    );
}

#[test]
fn a_training_search_ranks_plans_and_its_best_plan_runs() {
    let d = tempfile::tempdir().unwrap();
    let space = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/train/llama3-70b-plan-search.toml"
    );
    let out = d.path().join("s");
    let r = fleetsim(&[
        "search",
        space,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
        "--set",
        "search.pp=[4]",
        "--set",
        "search.zero_stage=[1]",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(v["plans"].as_array().unwrap().len() > 1);
    assert!(v["pruned"].as_array().is_some());
    let lines = std::fs::read_to_string(out.join("plans.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), v["plans"].as_array().unwrap().len());
    let best = fleetsim(&[
        "train",
        out.join("best.toml").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(best.status.success(), "{}", String::from_utf8_lossy(&best.stderr));
    let b: serde_json::Value = serde_json::from_slice(&best.stdout).unwrap();
    assert_eq!(b["tokens_per_s"], v["plans"][0]["tokens_per_s"]);
    expect_error(&["search", space, "--set", "search.gpus=0"], &["search.gpus"]);
}
