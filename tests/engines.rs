//! Engine host costs: a scheduler runs on its engine's host-side constants
//! (`SchedulerSpec::engine`), which a catalog device states apart from its
//! GPU efficiencies (`[device.engines.<engine>]`, host keys only).

mod common;

use fleetsim::catalog::Catalog;
use fleetsim::registry::BASE_ENGINE;
use fleetsim::timing::Calibration;

fn value(c: &Calibration, key: &str) -> f64 {
    serde_json::to_value(c).unwrap()[key].as_f64().unwrap()
}

#[test]
fn vllm_v1_runs_on_the_devices_v1_host_costs_and_keeps_its_gpu_efficiencies() {
    let h100 = Catalog::builtin().device("H100-SXM").unwrap().clone();
    let base = h100.calibration.unwrap();
    let v1 = h100
        .engines
        .get("vllm-v1")
        .expect("H100 states vLLM V1's host costs");
    let sarathi = common::plan(&["scheduler.kind=sarathi"]).calibration;
    let vllm_v1 = common::plan(&["scheduler.kind=vllm-v1"]).calibration;
    assert_eq!(sarathi, base, "sarathi runs on the base engine ({BASE_ENGINE})");
    let json = serde_json::to_value(base).unwrap();
    for key in json.as_object().unwrap().keys() {
        let expected = match v1.get(key) {
            Some(v) => v.as_float().or(v.as_integer().map(|i| i as f64)).unwrap(),
            None => value(&base, key),
        };
        assert_eq!(value(&vllm_v1, key), expected, "{key}");
    }
    assert!(!v1.is_empty());
    assert!(
        v1.keys().all(|k| Calibration::HOST_KEYS.contains(&k.as_str())),
        "only host keys: {v1:?}"
    );
    // A scenario override still wins over the engine's table.
    let overridden = common::plan(&[
        "scheduler.kind=vllm-v1",
        "hardware.calibration.cpu_overhead_base=0.01",
    ]);
    assert_eq!(overridden.calibration.cpu_overhead_base, 0.01);
}

#[test]
fn one_decoding_request_pays_its_engines_host_cost_per_step() {
    // One request alone: every decode step is one sequence, so the two
    // engines' inter-token gaps differ by exactly the difference of their
    // per-step, per-sequence and per-layer host constants (32 layers, BF16).
    let sets = |kind: &str| {
        vec![
            format!("scheduler.kind={kind}"),
            "scheduler.max_num_batched_tokens=8192".to_string(),
            "scheduler.chunk_size=8192".to_string(),
            "scheduler.prefix_caching=false".to_string(),
            "workload.count=1".to_string(),
            "workload.prompt.kind=fixed".to_string(),
            "workload.prompt.value=64".to_string(),
            "workload.output.kind=fixed".to_string(),
            "workload.output.value=101".to_string(),
        ]
    };
    let run = |kind: &str| {
        let owned = sets(kind);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        let plan = common::plan(&refs);
        let report = fleetsim::run_plan(&plan, &mut |_| {}).unwrap();
        (plan.calibration, report.summary.itl.mean)
    };
    let (v0, itl_v0) = run("sarathi");
    let (v1, itl_v1) = run("vllm-v1");
    let host = |c: &Calibration| c.cpu_overhead_base + c.cpu_overhead_per_seq + 32.0 * c.layer_overhead;
    let expected_ms = (host(&v0) - host(&v1)) * 1e3;
    assert!(expected_ms.abs() > 0.1, "the engines differ: {expected_ms} ms");
    assert!(
        ((itl_v0 - itl_v1) - expected_ms).abs() < 1e-5,
        "ITL {itl_v0} vs {itl_v1} ms, expected a difference of {expected_ms} ms"
    );
}

/// A user catalog holding H100 as `My-H100` with `engines.vllm-v1` = `table`.
fn catalog_with_engine_table(dir: &std::path::Path, table: toml::Table) -> std::path::PathBuf {
    let mut dev = Catalog::builtin().device("H100-SXM").unwrap().clone();
    dev.name = "My-H100".into();
    dev.aliases.clear();
    dev.engines.insert("vllm-v1".into(), table);
    #[derive(serde::Serialize)]
    struct Doc {
        device: Vec<fleetsim::catalog::DeviceSpec>,
    }
    let path = dir.join("mine.toml");
    std::fs::write(&path, toml::to_string(&Doc { device: vec![dev] }).unwrap()).unwrap();
    path
}

#[test]
fn an_engine_table_that_sets_a_gpu_efficiency_or_a_bad_value_is_refused_at_load() {
    let d = tempfile::tempdir().unwrap();
    let mut gpu = toml::Table::new();
    gpu.insert("gemm_efficiency".into(), toml::Value::Float(0.5));
    let path = catalog_with_engine_table(d.path(), gpu);
    let e = Catalog::builtin().merge_file(&path).err().unwrap().to_string();
    assert!(
        e.contains("mine.toml") && e.contains("My-H100") && e.contains("engines.vllm-v1.gemm_efficiency"),
        "{e}"
    );
    assert!(e.contains("host-side"), "{e}");
    let mut negative = toml::Table::new();
    negative.insert("cpu_overhead_base".into(), toml::Value::Float(-1e-3));
    let path = catalog_with_engine_table(d.path(), negative);
    let e = Catalog::builtin().merge_file(&path).err().unwrap().to_string();
    assert!(
        e.contains("engines.vllm-v1.cpu_overhead_base") && e.contains("≥ 0"),
        "{e}"
    );
    // A valid table of a user's device is what its V1 scenarios run on.
    let mut host = toml::Table::new();
    host.insert("cpu_overhead_base".into(), toml::Value::Integer(0));
    let path = catalog_with_engine_table(d.path(), host);
    let s = fleetsim::scenario::load(
        None,
        &[
            format!("catalog=\"{}\"", path.display()),
            "hardware.device=My-H100".into(),
            "scheduler.kind=vllm-v1".into(),
        ],
    )
    .unwrap();
    let plan = fleetsim::scenario::validate::plan(&s).unwrap();
    assert_eq!(plan.calibration.cpu_overhead_base, 0.0);
}

#[test]
fn h200_runs_each_engine_on_the_h100_fit_it_inherits() {
    // H200 has no served measurements; it inherits the H100-SXM's
    // calibration and engine tables (`calibration_from`), not the generic
    // defaults.
    for kind in ["sarathi", "vllm-v1"] {
        let sched = format!("scheduler.kind={kind}");
        let h100 = common::plan(&[&sched, "hardware.device=H100-SXM"]).calibration;
        let h200 = common::plan(&[&sched, "hardware.device=H200"]).calibration;
        assert_eq!(h200, h100, "{kind}");
        assert_ne!(h200, Calibration::default(), "{kind}");
    }
}
