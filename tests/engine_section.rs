//! The `[engine]` section (`scenario::engine_profile`): the engine it names
//! picks the scheduler, the host costs, and the batch-limit and caching
//! defaults vLLM and SGLang choose for themselves; a key the user set wins;
//! an engine's own scheduler cannot run on another engine.

mod common;

use fleetsim::scenario::{self, validate};

fn try_plan(sets: &[&str]) -> fleetsim::Result<validate::Plan> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    validate::plan(&scenario::load(None, &sets)?)
}

fn error(sets: &[&str]) -> String {
    try_plan(sets).expect_err("the scenario is refused").to_string()
}

#[test]
fn the_version_picks_vllms_engine_its_scheduler_and_host_costs() {
    let v1 = common::plan(&["engine.kind=\"vllm\"", "engine.version=\"0.10.2\""]);
    assert_eq!(v1.scheduler.name, "vllm-v1");
    assert_eq!(v1.scheduler.engine, "vllm-v1");
    assert_eq!(
        v1.calibration,
        common::plan(&["scheduler.kind=\"vllm-v1\""]).calibration
    );
    // No version: the current engine, V1.
    let latest = common::plan(&["engine.kind=\"vllm\""]);
    assert_eq!(latest.scheduler.name, "vllm-v1");

    let v0 = common::plan(&["engine.kind=\"vllm\"", "engine.version=\"0.6.3\""]);
    assert_eq!(v0.scheduler.name, "vllm");
    assert_eq!(v0.scheduler.engine, "vllm-v0");
    let default = common::plan(&[]);
    assert_eq!(v0.calibration, default.calibration);
    assert_ne!(
        v0.calibration, v1.calibration,
        "H100 states V1 host costs apart from V0's"
    );
    // V0 as it configures itself: 256 sequences, the budget of a whole prompt.
    assert_eq!(v0.limits, default.limits);

    let sglang = common::plan(&["engine.kind=\"sglang\""]);
    assert_eq!(sglang.scheduler.name, "sglang");
    assert_eq!(sglang.scheduler.engine, "sglang");
    assert!(sglang.replica_options.prefix_caching);
}

#[test]
fn vllm_v1_sizes_its_batches_by_the_device_as_vllm_does() {
    // vLLM EngineArgs: ≥ 70 GiB and not an A100 → 1,024 sequences and
    // 8,192 tokens; otherwise 256 and 2,048.
    for (device, seqs, tokens) in [
        ("H100-SXM", 1024, 8192),
        ("H200", 1024, 8192),
        ("MI300X", 1024, 8192),
        ("A100-80GB", 256, 2048),
        ("A100-40GB", 256, 2048),
        ("L40S", 256, 2048),
    ] {
        let d = format!("hardware.device=\"{device}\"");
        let p = common::plan(&["engine.kind=\"vllm\"", &d]);
        assert_eq!(
            (p.limits.max_num_seqs, p.limits.token_budget),
            (seqs, tokens),
            "{device}"
        );
        // scheduler.kind = "vllm-v1" alone names the same engine.
        let q = common::plan(&["scheduler.kind=\"vllm-v1\"", &d]);
        assert_eq!(q.limits, p.limits, "{device}");
    }
    // A key the user set wins over the engine's default.
    let p = common::plan(&[
        "engine.kind=\"vllm\"",
        "scheduler.max_num_seqs=64",
        "scheduler.max_num_batched_tokens=4096",
    ]);
    assert_eq!((p.limits.max_num_seqs, p.limits.token_budget), (64, 4096));
    // The default max_num_seqs never exceeds the budget the user set.
    let p = common::plan(&["engine.kind=\"vllm\"", "scheduler.max_num_batched_tokens=512"]);
    assert_eq!((p.limits.max_num_seqs, p.limits.token_budget), (512, 512));
}

#[test]
fn the_larger_v1_default_reserves_logits_for_more_sequences() {
    // vLLM V1 profiles its sampler with max_num_seqs rows of FP32 logits,
    // so the 1,024-sequence default leaves 768 rows × 128,256 (Llama-3's
    // vocabulary) × 4 bytes less for KV than 256 would, at TP 1.
    let default = common::plan(&["engine.kind=\"vllm\""]);
    let capped = common::plan(&["engine.kind=\"vllm\"", "scheduler.max_num_seqs=256"]);
    assert_eq!(
        capped.memory.kv_bytes - default.memory.kv_bytes,
        768.0 * 128_256.0 * 4.0,
        "{:?} vs {:?}",
        default.memory,
        capped.memory
    );
}

#[test]
fn sglang_sizes_its_prefill_chunks_by_gpu_memory() {
    // SGLang ServerArgs: below 35 GiB 2,048, below 160 GiB 8,192, else 16,384.
    for (device, tokens) in [
        ("A100-40GB", 8192),
        ("H200", 8192),
        ("B200", 16384),
        ("MI300X", 16384),
    ] {
        let d = format!("hardware.device=\"{device}\"");
        let p = common::plan(&["engine.kind=\"sglang\"", &d]);
        assert_eq!(p.limits.token_budget, tokens, "{device}");
    }
}

#[test]
fn a_research_policy_runs_on_the_named_engines_host_costs_and_caching() {
    let v1 = common::plan(&["scheduler.kind=\"vllm-v1\""]);
    let vtc = common::plan(&["engine.kind=\"vllm\"", "scheduler.kind=\"vtc\""]);
    assert_eq!(vtc.scheduler.name, "vtc");
    assert_eq!(vtc.calibration, v1.calibration);
    assert_eq!(vtc.limits, v1.limits);
    assert!(
        vtc.replica_options.prefix_caching,
        "V1 caches prefixes by default"
    );
    let plain_vtc = common::plan(&["scheduler.kind=\"vtc\""]);
    assert!(!plain_vtc.replica_options.prefix_caching);
    assert_eq!(plain_vtc.calibration, common::plan(&[]).calibration);
    // Orca reserves contiguous memory per request: no caching on any engine.
    let orca = common::plan(&["engine.kind=\"vllm\"", "scheduler.kind=\"orca\""]);
    assert!(!orca.replica_options.prefix_caching);
    // An explicit choice wins.
    let off = common::plan(&[
        "engine.kind=\"vllm\"",
        "scheduler.kind=\"vtc\"",
        "scheduler.prefix_caching=false",
    ]);
    assert!(!off.replica_options.prefix_caching);
}

#[test]
fn an_engines_own_scheduler_or_swap_on_another_engine_is_a_clear_error() {
    let e = error(&["engine.kind=\"sglang\"", "scheduler.kind=\"vllm-v1\""]);
    assert!(
        e.contains("scheduler.kind") && e.contains("vllm-v1") && e.contains("sglang"),
        "{e}"
    );
    let e = error(&[
        "engine.kind=\"vllm\"",
        "engine.version=\"0.10\"",
        "scheduler.kind=\"sarathi\"",
    ]);
    assert!(e.contains("scheduler.kind") && e.contains("vllm-v0"), "{e}");
    let e = error(&[
        "engine.kind=\"vllm\"",
        "scheduler.kind=\"lightllm\"",
        "scheduler.preemption=\"swap\"",
    ]);
    assert!(
        e.contains("scheduler.preemption") && e.contains("recompute"),
        "{e}"
    );
    // V0 swaps.
    try_plan(&[
        "engine.kind=\"vllm\"",
        "engine.version=\"0.6\"",
        "scheduler.preemption=\"swap\"",
    ])
    .expect("vLLM V0 swaps");
    let e = error(&["engine.kind=\"vllm\"", "engine.version=\"latest\""]);
    assert!(e.contains("engine.version") && e.contains("latest"), "{e}");
    let e = error(&["engine.kind=\"tensorrt\""]);
    assert!(e.contains("engine.kind") && e.contains("vllm, sglang"), "{e}");
    let e = error(&["engine.kind=\"vllm\"", "engine.flavour=\"v1\""]);
    assert!(e.contains("flavour"), "{e}");
}

#[test]
fn a_scenario_without_the_section_reads_as_before() {
    let s = common::scenario(&[]);
    let text = toml::to_string(&s).unwrap();
    assert!(!text.contains("[engine]"), "{text}");
    let p = common::plan(&[]);
    assert_eq!(p.scheduler.name, "vllm");
    assert_eq!(p.scheduler.engine, "vllm-v0");
    assert_eq!((p.limits.max_num_seqs, p.limits.token_budget), (256, 8192));
    // The plan's scenario states what the engine chose.
    assert_eq!(p.scenario.scheduler.kind.as_deref(), Some("vllm"));
    assert_eq!(p.scenario.scheduler.max_num_seqs, Some(256));
}

#[test]
fn a_scenario_with_the_section_keeps_it_when_written_out() {
    // best.toml and the search fingerprint write scenarios back out: a
    // named engine, with or without a version, must survive the round trip.
    for sets in [
        vec!["engine.kind=\"vllm\""],
        vec!["engine.kind=\"vllm\"", "engine.version=\"0.6.3\""],
        vec!["engine.kind=\"sglang\""],
    ] {
        let s = common::scenario(&sets);
        let text = toml::to_string(&s).unwrap();
        assert!(text.contains("[engine]"), "{text}");
        let back: fleetsim::scenario::Scenario = toml::from_str(&text).unwrap();
        assert_eq!(back.engine, s.engine, "{text}");
    }
}
