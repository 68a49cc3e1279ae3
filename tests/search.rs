//! `fleetsim search`: the capacity it finds agrees with a hand calculation,
//! grows with GPUs, is confirmed by rerunning the best plan, and the search
//! resumes, is deterministic across thread counts and rejects bad spaces
//! with exit code 2.

mod common;

use fleetsim::scenario::{self, validate};
use fleetsim::search::{self, Outcome};
use fleetsim::timing::BatchShape;
use std::path::{Path, PathBuf};
use std::process::Output;

fn fleetsim(args: &[&str]) -> Output {
    common::fleetsim(env!("CARGO_BIN_EXE_fleetsim"), args)
}

fn write_space(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("space.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run_space(path: &Path, sets: &[&str], out: Option<&Path>) -> Outcome {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let space = search::load(path, &sets).expect("space loads");
    search::run(&space, out, &|_| {}).expect("search runs")
}

fn capacity_of(o: &Outcome, replicas: u32) -> f64 {
    o.results
        .iter()
        .find(|r| r.params.replicas == replicas)
        .unwrap_or_else(|| panic!("no plan with {replicas} replicas"))
        .capacity_rps
}

/// Hand calculation. One request at a time per replica (max_num_seqs = 1),
/// fixed lengths (16-token prompts, 64 output tokens) and constant arrivals:
/// each replica is a D/D/1 queue whose service time is
/// `S = t_prefill + 63 · t_decode`, where a decode step of Llama-3-8B at
/// batch 1 streams all 16 GB of weights (memory-bound). Below `R/S` req/s
/// (R replicas, round-robin) no request waits and TTFT = t_prefill; above
/// it request k (the (k/R)-th of its replica) waits about `(k/R)·(S − R/r)`.
/// With TTFT ≤ t_prefill + S/2 at p90 over n = 800 requests, the SLO breaks
/// at most `R/(1.8·n)` ≤ 0.3 % above `R/S`, so the capacity is `R/S` within
/// that plus the bisection tolerance (0.5 %).
#[test]
fn hand_computable_space_returns_the_hand_answer() {
    let sets = [
        "model.name=Llama-3-8B",
        "hardware.device=H100-SXM",
        "scheduler.max_num_seqs=1",
        "scheduler.async_output=false",
    ];
    let plan = common::plan(&sets);
    let model = fleetsim::engine::time_model(&plan).unwrap();
    let mut prefill = BatchShape::default();
    prefill.add_prefill_chunk(0, 16);
    let t_prefill = model.iteration(&prefill).duration as f64 * 1e-9;
    let decode = BatchShape {
        decode_seqs: 1,
        decode_kv_tokens: 16 + 32,
        ..BatchShape::default()
    };
    let t_decode = model.iteration(&decode).duration as f64 * 1e-9;
    // Memory-bound: a decode step is at least the weight-streaming time and
    // not far above it.
    let weights = plan.model.total_params() * 2.0;
    let stream = weights / plan.device.memory_bandwidth;
    assert!(
        t_decode >= stream && t_decode < 2.0 * stream,
        "decode {t_decode} s vs streaming {stream} s"
    );
    let s = t_prefill + 63.0 * t_decode;

    let d = tempfile::tempdir().unwrap();
    let space = write_space(
        d.path(),
        &format!(
            "[model]\nname = \"Llama-3-8B\"\n[hardware]\ndevice = \"H100-SXM\"\n\
             [scheduler]\nmax_num_seqs = 1\nasync_output = false\n\
             [workload]\ncount = 800\n[workload.arrivals]\nkind = \"constant\"\nrate = 1.0\n\
             [workload.prompt]\nkind = \"fixed\"\nvalue = 16\n[workload.output]\nkind = \"fixed\"\nvalue = 64\n\
             [slo]\nttft = {}\ntpot = 0\npercentile = 90\n\
             [search]\nreplicas = [1, 2, 4]\n[search.rate]\nlow = 0.5\ntolerance = 0.005\n",
            t_prefill + s / 2.0
        ),
    );
    let o = run_space(&space, &[], None);
    assert_eq!(o.results.len(), 3);
    for r in [1u32, 2, 4] {
        let cap = capacity_of(&o, r);
        let ratio = cap * s / r as f64;
        assert!(
            (0.995..=1.01).contains(&ratio),
            "{r} replicas: capacity {cap} req/s, hand answer {} req/s (ratio {ratio})",
            r as f64 / s
        );
    }
}

/// A small realistic space (conversation lengths, Poisson arrivals).
const SMALL: &str = r#"
name = "small"
[model]
name = "Llama-3-8B"
[workload]
count = 2000
seed = 3
[workload.arrivals]
rate = 2.0
[workload.prompt]
median = 512
[workload.output]
median = 64
max = 512
[slo]
ttft = 1.0
tpot = 0.05
percentile = 90
[search]
replicas = [1, 2, 3, 4]
tp = [1, 2]
objective = "per_gpu"
[[search.schedulers]]
kind = "vllm"
[[search.schedulers]]
kind = "sarathi"
chunk_size = [1024]
[search.rate]
tolerance = 0.02
"#;

#[test]
fn more_gpus_never_lower_capacity_beyond_the_tolerance() {
    let d = tempfile::tempdir().unwrap();
    let o = run_space(&write_space(d.path(), SMALL), &[], None);
    assert_eq!(o.results.len(), 16);
    for a in &o.results {
        for b in &o.results {
            let (pa, pb) = (&a.params, &b.params);
            let same = pa.tp == pb.tp && pa.scheduler == pb.scheduler && pa.chunk_size == pb.chunk_size;
            if same && pb.replicas > pa.replicas {
                assert!(
                    b.capacity_rps >= a.capacity_rps * (1.0 - o.tolerance),
                    "{} ({} req/s) has more GPUs than {} ({} req/s) but less capacity",
                    b.key,
                    b.capacity_rps,
                    a.key,
                    a.capacity_rps
                );
            }
        }
    }
}

#[test]
fn best_plan_meets_the_slo_at_its_capacity_and_not_at_1_1x() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let o = run_space(
        &write_space(d.path(), SMALL),
        &["search.replicas=[1, 2, 3]"],
        Some(&out),
    );
    let best = o.best().expect("some plan meets the SLO");
    assert!(
        !best.count_limited,
        "the test space should have enough requests per probe"
    );
    let best_toml = out.join("best.toml");
    let s = scenario::load(Some(&best_toml), &[]).expect("best.toml loads");
    assert_eq!(s.workload.arrivals.rate, best.capacity_rps);
    assert_eq!(s.cluster.replicas, best.params.replicas);
    let report = fleetsim::run_plan(&validate::plan(&s).unwrap(), &mut |_| {}).unwrap();
    assert!(report.summary.slo_met, "best plan misses the SLO at its capacity");
    let faster = format!("workload.arrivals.rate={}", 1.1 * best.capacity_rps);
    let s = scenario::load(Some(&best_toml), &[faster]).unwrap();
    let report = fleetsim::run_plan(&validate::plan(&s).unwrap(), &mut |_| {}).unwrap();
    assert!(
        !report.summary.slo_met,
        "best plan still meets the SLO at 1.1× its capacity"
    );
    // And the command line runs it.
    let r = fleetsim(&["run", "--quiet", best_toml.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_rerun_skips_finished_plans_and_resumes_a_cut_file() {
    let d = tempfile::tempdir().unwrap();
    let space = write_space(d.path(), SMALL);
    let out = d.path().join("out");
    let sets = ["search.replicas=[1, 2]"];
    let first = run_space(&space, &sets, Some(&out));
    assert_eq!((first.simulated, first.reused), (8, 0));
    let files: Vec<String> = search::output_files(&out).iter().map(|p| read(p)).collect();

    let second = run_space(&space, &sets, Some(&out));
    assert_eq!((second.simulated, second.reused), (0, 8));
    let again: Vec<String> = search::output_files(&out).iter().map(|p| read(p)).collect();
    assert_eq!(files, again);

    // An interrupted run: drop two lines and cut the last one short.
    let jsonl = out.join("plans.jsonl");
    let lines: Vec<&str> = files[0].lines().collect();
    let cut = format!("{}\n{}\n{}", lines[..5].join("\n"), lines[6], &lines[7][..40]);
    std::fs::write(&jsonl, cut).unwrap();
    let third = run_space(&space, &sets, Some(&out));
    assert_eq!((third.simulated, third.reused, third.discarded_lines), (2, 6, 1));
    let resumed: Vec<String> = search::output_files(&out).iter().map(|p| read(p)).collect();
    assert_eq!(files, resumed);

    // A different SLO is a different space: nothing is reused.
    let fourth = run_space(&space, &["search.replicas=[1, 2]", "slo.ttft=2.0"], Some(&out));
    assert_eq!((fourth.simulated, fourth.reused), (8, 0));
}

/// The resume fingerprint covers the contents of the files a space reads:
/// after the trace changes (same name, one length different), no earlier
/// line is reused; with the same contents everything is.
#[test]
fn a_changed_trace_file_invalidates_every_finished_plan() {
    let d = tempfile::tempdir().unwrap();
    let trace = d.path().join("t.csv");
    let rows = |last_output: u32| {
        let mut t = String::from("arrived_at,num_prefill_tokens,num_decode_tokens\n");
        for i in 0..199 {
            t.push_str(&format!("{},{},{}\n", i as f64 * 0.5, 200 + i, 40));
        }
        t.push_str(&format!("100,300,{last_output}\n"));
        t
    };
    std::fs::write(&trace, rows(40)).unwrap();
    let text = SMALL
        .replace("count = 2000", "count = 200\ntrace = \"t.csv\"")
        .replace("replicas = [1, 2, 3, 4]", "replicas = [1]");
    let space = write_space(d.path(), &text);
    let out = d.path().join("out");
    let first = run_space(&space, &[], Some(&out));
    assert_eq!((first.simulated, first.reused), (4, 0));
    let same = run_space(&space, &[], Some(&out));
    assert_eq!((same.simulated, same.reused), (0, 4));
    std::fs::write(&trace, rows(41)).unwrap();
    let changed = run_space(&space, &[], Some(&out));
    assert_eq!(
        (changed.simulated, changed.reused, changed.discarded_lines),
        (4, 0, 4)
    );

    // Trace arrivals keep their shape and are scaled: 200 requests over
    // 100 s is 199/100 = 1.99 req/s, the bracket's default low end, and
    // best.toml reaches its capacity through the rate scale.
    assert!((changed.rate_low - 1.99).abs() < 1e-12, "{}", changed.rate_low);
    let best = changed.best().expect("a plan meets the SLO");
    let s = scenario::load(Some(&out.join("best.toml")), &[]).unwrap();
    let scaled = s.workload.rate_scale * 1.99;
    assert!(
        (scaled / best.capacity_rps - 1.0).abs() < 1e-9,
        "{scaled} vs {}",
        best.capacity_rps
    );
    assert_eq!(s.workload.arrivals.rate, 2.0, "the space's own rate is untouched");
}

/// A probe replays the same requests at any rate: the workload must have at
/// least two, and a trace's timestamps must span some time.
#[test]
fn a_rate_workload_needs_two_requests_spanning_time() {
    let d = tempfile::tempdir().unwrap();
    let trace = d.path().join("t.csv");
    let prepare = |rows: &str| {
        std::fs::write(
            &trace,
            format!("arrived_at,num_prefill_tokens,num_decode_tokens\n{rows}"),
        )
        .unwrap();
        let t = format!("workload.trace={}", trace.display());
        search::capacity::RateWorkload::prepare(&common::scenario(&[&t, "workload.count=10"]))
    };
    let e = prepare("0,100,10\n").unwrap_err().to_string();
    assert!(e.contains("at least 2 requests"), "{e}");
    let e = prepare("5,100,10\n5,100,10\n").unwrap_err().to_string();
    assert!(e.contains("span no time"), "{e}");
    let w = prepare("1,100,10\n5,100,10\n").unwrap();
    assert_eq!(w.len(), 2);
    // One gap of 4 s: 0.25 req/s; replayed at 1 req/s the gap is 1 s.
    assert_eq!(w.base_rate, 0.25);
    use fleetsim::workload::RequestSource;
    let mut src = w.source(1.0);
    let (a, b) = (src.next_request().unwrap(), src.next_request().unwrap());
    assert_eq!(b.arrival - a.arrival, 1_000_000_000);
}

/// The progress callback sees every plan finish, and its running "best"
/// ends at the plan the ranking puts first.
#[test]
fn progress_reports_every_plan_and_ends_on_the_best() {
    let d = tempfile::tempdir().unwrap();
    let space = search::load(
        &write_space(d.path(), SMALL),
        &["search.replicas=[1, 2]".to_string()],
    )
    .unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let o = search::run(&space, None, &|p| seen.lock().unwrap().push(p)).unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 8);
    let mut done: Vec<usize> = seen.iter().map(|p| p.done).collect();
    done.sort();
    assert_eq!(done, (1..=8).collect::<Vec<_>>());
    assert!(seen.iter().all(|p| p.total == 8));
    let last = seen.iter().max_by_key(|p| p.done).unwrap();
    let best = o.best().unwrap();
    assert_eq!(
        last.best.as_deref(),
        Some(format!("{} ({:.3} req/s)", best.key, best.capacity_rps).as_str())
    );
}

#[test]
fn files_are_identical_whatever_the_thread_count() {
    let d = tempfile::tempdir().unwrap();
    let space = write_space(d.path(), SMALL);
    let mut outputs = Vec::new();
    for threads in [1, 2] {
        let out = d.path().join(format!("t{threads}"));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| run_space(&space, &["search.replicas=[1, 3]"], Some(&out)));
        outputs.push(
            search::output_files(&out)
                .iter()
                .map(|p| read(p))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(outputs[0], outputs[1]);
}

fn expect_error(args: &[&str], needles: &[&str]) {
    common::expect_error(env!("CARGO_BIN_EXE_fleetsim"), args, needles)
}

#[test]
fn bad_spaces_exit_2_with_a_clear_message() {
    let d = tempfile::tempdir().unwrap();
    let f = |name: &str, text: &str| {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let typo = f("typo.toml", "[search]\ngpu_budget = 4\nschedulrs = []\n");
    expect_error(
        &["search", &typo],
        &["typo.toml", "line 3", "schedulrs", "did you mean `schedulers`"],
    );
    let rate = f(
        "rate.toml",
        "[search]\ngpu_budget = 4\n[search.rate]\ntolerance = 0\n",
    );
    expect_error(&["search", &rate], &["search.rate.tolerance", "(0, 1)"]);
    let dev = f(
        "dev.toml",
        "[search]\ngpu_budget = 4\n[[search.devices]]\nname = \"H100-SMX\"\n",
    );
    expect_error(&["search", &dev], &["H100-SMX"]);
    let pd = f("pd.toml", "[search]\ngpu_budget = 4\nprefill_replica = [1]\n");
    expect_error(
        &["search", &pd],
        &["prefill_replica", "did you mean `prefill_replicas`"],
    );
    let base = f("base.toml", "[cluster]\nreplica = 2\n[search]\ngpu_budget = 4\n");
    expect_error(
        &["search", &base],
        &["base.toml", "line 2", "did you mean `replicas`"],
    );
    let none = f("none.toml", "[search]\ntp = [1]\n");
    expect_error(&["search", &none], &["search.replicas", "gpu_budget"]);
    let ok = f("ok.toml", "[search]\ngpu_budget = 1\n");
    expect_error(
        &["search", &ok, "--set", "search.objectve=per_gpu"],
        &["objectve", "did you mean `objective`"],
    );
    expect_error(
        &["search", &ok, "--set", "search.objective=cheap"],
        &["search.objective", "per_dollar"],
    );
    // An error every plan shares fails the search, its reason in full
    // (digits and all), instead of "no plan meets the SLO" and exit 0.
    expect_error(
        &["search", &ok, "--set", "slo.ttft=-1"],
        &["all 1 candidate plans were pruned", "slo.ttft", "found -1"],
    );
    // Every plan over the budget: the structural reason, with its number.
    expect_error(
        &["search", &ok, "--set", "search.replicas=[2]"],
        &["all 1 candidate plans were pruned", "gpu_budget of 1 devices"],
    );
    // A budget whose space could not be held is refused before enumeration.
    expect_error(
        &["search", &ok, "--set", "search.gpu_budget=4294967295"],
        &["search.gpu_budget", "4294967295", "65536"],
    );
}

#[test]
fn example_spaces_run() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains("search"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        if read(&f).contains("shared/") && common::shared_dir().is_none() {
            common::skip(&format!("{} needs ../shared, which is absent", f.display()));
            continue;
        }
        let out = tempfile::tempdir().unwrap();
        let r = fleetsim(&[
            "search",
            "--quiet",
            f.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--set",
            "workload.count=200",
            "--set",
            "search.rate.tolerance=0.1",
        ]);
        assert!(
            r.status.success(),
            "search {}: {}",
            f.display(),
            String::from_utf8_lossy(&r.stderr)
        );
        let best = out.path().join("best.toml");
        let r = fleetsim(&["run", "--quiet", best.to_str().unwrap()]);
        assert!(
            r.status.success(),
            "run best of {}: {}",
            f.display(),
            String::from_utf8_lossy(&r.stderr)
        );
    }
}

/// A probe reports the SLO percentile (p90 here) of TTFT and TPOT of the run
/// it simulated, and calls it steady when the arrival window spans at least
/// `min_window_latencies` mean E2E latencies: the same run, simulated on its
/// own, gives both.
#[test]
fn a_probe_reports_its_runs_percentiles_and_judges_the_window() {
    use search::capacity::{Criteria, RateWorkload, probe};
    let plan = common::plan(&[
        "workload.count=300",
        "workload.arrivals.rate=2",
        "slo.ttft=1.0",
        "slo.tpot=0.05",
        "slo.percentile=90",
    ]);
    let w = RateWorkload::prepare(&plan.scenario).unwrap();
    let report = fleetsim::run_plan(&plan, &mut |_| {}).unwrap();
    let s = &report.summary;
    let window_s = (report.requests.last().unwrap().arrival - report.requests[0].arrival) as f64 * 1e-9;
    let threshold = window_s / (s.e2el.mean / 1e3);
    let at = |k: f64| {
        let crit = Criteria {
            min_attainment: 0.0,
            min_window_latencies: k,
        };
        probe(&plan, &w, 2.0, &crit).unwrap()
    };
    let p = at(0.99 * threshold);
    assert!(p.steady && p.slo_ok && p.met, "{p:?}");
    assert!(
        (p.ttft_ms / s.ttft.p90 - 1.0).abs() < 1e-9,
        "{} vs {}",
        p.ttft_ms,
        s.ttft.p90
    );
    assert!(
        (p.tpot_ms / s.tpot.p90 - 1.0).abs() < 1e-9,
        "{} vs {}",
        p.tpot_ms,
        s.tpot.p90
    );
    assert_eq!(p.attainment, s.slo_attainment);
    let q = at(1.01 * threshold);
    assert!(!q.steady && q.slo_ok && !q.met, "{q:?}");
}

/// The status names the table prints are the ones `plans.jsonl` stores.
#[test]
fn status_names_match_their_serialised_form() {
    use search::capacity::Status;
    for s in [
        Status::Ok,
        Status::FailsAtLow,
        Status::AboveHigh,
        Status::ProbeLimit,
    ] {
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
    }
}

/// What a search writes and prints agrees with its outcome: `pareto.csv`
/// has one row per frontier member in frontier order, the table names the
/// best plan, the failing and count-limited plans and the ranking order,
/// `--format json` round-trips, the report lists ranked plans first, and a
/// search whose plans all fail removes a stale `best.toml`.
#[test]
fn outputs_agree_with_the_outcome() {
    use search::output;
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let mut o = run_space(
        &write_space(d.path(), SMALL),
        &["search.replicas=[1, 2]"],
        Some(&out),
    );

    let csv = read(&out.join("pareto.csv"));
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let expected: Vec<(&str, &str)> = o
        .pareto_cost_capacity
        .iter()
        .map(|k| ("cost_capacity", k.as_str()))
        .chain(o.pareto_latency.iter().map(|k| ("ttft_tpot", k.as_str())))
        .collect();
    assert!(!o.pareto_cost_capacity.is_empty() && !o.pareto_latency.is_empty());
    assert_eq!(rows.iter().map(|r| (r[0], r[1])).collect::<Vec<_>>(), expected);
    for r in &rows {
        let plan = o.results.iter().find(|p| p.key == r[1]).unwrap();
        assert_eq!(r[9], format!("{:.6}", plan.capacity_rps));
        assert_eq!(r[6].parse::<u32>().unwrap(), plan.gpus);
    }

    let best = o.best().unwrap().clone();
    let t = output::table(&o);
    assert!(
        t.contains(&format!("best: {} — {:.3} req/s", best.key, best.capacity_rps)),
        "{t}"
    );
    assert!(t.contains("top plans (by per_gpu)"), "{t}");
    assert!(
        !t.contains("miss the SLO") && !t.contains("count_limited:") && !t.contains("(count_limited"),
        "{t}"
    );
    let json: serde_json::Value = serde_json::from_str(&output::to_json(&o)).unwrap();
    assert_eq!(json["results"].as_array().unwrap().len(), o.results.len());
    assert_eq!(json["ranking"][0], best.key.as_str());

    let report = output::report_input(&o);
    let names: Vec<&str> = report.plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        &names[..o.ranking.len()],
        o.ranking.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(names.len(), o.results.len());
    for p in &report.plans {
        assert_eq!(p.pareto, o.pareto_cost_capacity.contains(&p.name), "{}", p.name);
    }

    // One plan failing, one count-limited, a target rate: the table says so.
    o.results[0].capacity_rps = 0.0;
    o.results[1].count_limited = true;
    o.target_rate = 1.5;
    let t = output::table(&o);
    assert!(t.contains("1 plans miss the SLO even at"), "{t}");
    assert!(t.contains("1 plans are count_limited"), "{t}");
    assert!(t.contains("cheapest with capacity ≥ 1.5 req/s"), "{t}");
    // The best plan itself count-limited: its line says its capacity is a bound.
    let bi = o.results.iter().position(|r| r.key == best.key).unwrap();
    o.results[bi].count_limited = true;
    let t = output::table(&o);
    assert!(
        t.contains(&format!(
            "best: {} — {:.3} req/s (count_limited: a lower bound",
            best.key, best.capacity_rps
        )),
        "{t}"
    );

    // Nothing meets the SLO: best.toml goes, and a second write is fine.
    o.ranking.clear();
    output::write_all(&out, &o).unwrap();
    assert!(!out.join("best.toml").exists());
    output::write_all(&out, &o).unwrap();
    assert!(output::table(&o).contains("(no plan meets the SLO)"));
}

/// `best.toml` is written beside the outputs but the trace it names was
/// relative to the space file: the path is made absolute, so it runs from
/// anywhere.
#[test]
fn best_toml_names_the_trace_by_an_absolute_path() {
    let d = tempfile::tempdir().unwrap();
    let mut t = String::from("arrived_at,num_prefill_tokens,num_decode_tokens\n");
    for i in 0..200 {
        t.push_str(&format!("{},{},40\n", i as f64 * 0.5, 200 + i));
    }
    std::fs::write(d.path().join("t.csv"), t).unwrap();
    let text = SMALL
        .replace("count = 2000", "count = 200\ntrace = \"t.csv\"")
        .replace("replicas = [1, 2, 3, 4]", "replicas = [1]\ntp = [1]");
    let text = text.replacen("tp = [1, 2]\n", "", 1);
    let out = d.path().join("out");
    run_space(&write_space(d.path(), &text), &[], Some(&out));
    let s = scenario::load(Some(&out.join("best.toml")), &[]).unwrap();
    let trace = s.workload.trace.expect("best.toml keeps the trace");
    assert!(trace.is_absolute(), "{}", trace.display());
    assert_eq!(trace, d.path().join("t.csv"));
}

/// An unreadable `plans.jsonl` or an unremovable stale `best.toml` is an
/// error naming the file, not silently a fresh start.
#[test]
fn unreadable_outputs_are_errors_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    std::fs::create_dir_all(out.join("plans.jsonl")).unwrap();
    let space = search::load(
        &write_space(d.path(), SMALL),
        &["search.replicas=[1]".to_string()],
    )
    .unwrap();
    let e = search::run(&space, Some(&out), &|_| {}).unwrap_err().to_string();
    assert!(e.contains("plans.jsonl"), "{e}");

    let mut o = run_space(&write_space(d.path(), SMALL), &["search.replicas=[1]"], None);
    o.ranking.clear();
    let out2 = d.path().join("out2");
    std::fs::create_dir_all(out2.join("best.toml")).unwrap();
    let e = search::output::write_all(&out2, &o).unwrap_err().to_string();
    assert!(e.contains("best.toml"), "{e}");
}
