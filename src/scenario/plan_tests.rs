//! Tests of what `validate::plan` decides outside `[scheduler]`: each
//! `[hardware]`, `[cluster]`, `[model]`, `[slo]` and `[metrics]` value out of
//! range refused by the key the user wrote (its valid edge values accepted),
//! the dtypes and links a scenario resolves to, and the cluster's shape.

use super::load;
use super::test_support::{accepts_only, plans, refused};
use super::validate::{MAX_REPLICAS, plan};
use crate::catalog::Dtype;

#[test]
fn cluster_shapes_out_of_range_are_refused_by_key() {
    for key in [
        "cluster.replicas",
        "cluster.tp",
        "cluster.pp",
        "hardware.devices_per_node",
    ] {
        refused(&[format!("{key}=0")], key, "must be at least 1, found 0");
    }
    refused(
        &[format!("cluster.replicas={}", MAX_REPLICAS + 1)],
        "cluster.replicas",
        "more than the 16384 replicas",
    );
    assert_eq!(
        plans(&[format!("cluster.replicas={MAX_REPLICAS}")]).pools[0].replicas,
        MAX_REPLICAS
    );
    assert_eq!(plans(&["hardware.devices_per_node=1"]).devices_per_node, 1);
    // Llama-3-8B: 32 heads, 8 KV heads, 32 layers.
    refused(
        &["cluster.tp=3"],
        "cluster.tp",
        "does not divide the 32 attention heads",
    );
    refused(&["cluster.pp=33"], "cluster.pp", "exceeds the 32 layers");
    assert_eq!(plans(&["cluster.pp=32"]).pools[0].pp, 32);
    // 16 divides the 32 heads and is a multiple of the 8 KV heads (replicated).
    assert_eq!(plans(&["cluster.tp=16"]).pools[0].tp, 16);
    // Qwen2.5-32B: 40 heads, 8 KV heads; 5 divides 40 but neither divides 8 nor is a multiple of it.
    refused(
        &["model.name=\"Qwen2.5-32B\"", "cluster.tp=5"],
        "cluster.tp",
        "neither divides nor is a multiple of the 8 KV heads",
    );
    // In a disaggregated cluster the top-level shape is the prefill pool's.
    refused(
        &[
            "cluster.mode=\"disaggregated\"",
            "cluster.prefill.tp=3",
            "cluster.decode.tp=1",
        ],
        "cluster.prefill.tp",
        "does not divide",
    );
    refused(
        &[
            "cluster.mode=\"disaggregated\"",
            "cluster.prefill.device=\"H1000\"",
        ],
        "cluster.prefill.device",
        "H1000",
    );
}

#[test]
fn model_slo_and_metrics_values_out_of_range_are_refused_by_key() {
    refused(
        &["model.max_model_len=0"],
        "model.max_model_len",
        "must be at least 1",
    );
    refused(
        &["model.max_model_len=8193"],
        "model.max_model_len",
        "8193 exceeds the 8192 tokens Llama-3-8B supports",
    );
    assert_eq!(plans(&["model.max_model_len=8192"]).max_model_len, 8192);
    assert_eq!(plans(&["model.max_model_len=1"]).max_model_len, 1);
    accepts_only(
        "scheduler.gpu_memory_utilization",
        "must be in (0, 1]",
        &[
            ("0.0", false),
            ("1.0", true),
            ("1.01", false),
            ("nan", false),
            ("0.5", true),
        ],
    );
    accepts_only(
        "scheduler.watermark",
        "must be in [0, 1)",
        &[("0.0", true), ("0.99", true), ("1.0", false), ("-0.01", false)],
    );
    let v1 = "scheduler.kind=\"vllm-v1\"";
    refused(
        &[
            v1,
            "scheduler.max_num_seqs=16",
            "scheduler.max_num_batched_tokens=15",
        ],
        "scheduler.max_num_batched_tokens",
        "the token budget (15) must be at least max_num_seqs (16)",
    );
    plans(&[
        v1,
        "scheduler.max_num_seqs=16",
        "scheduler.max_num_batched_tokens=16",
    ]);
    for v in ["-1.0", "inf", "nan"] {
        refused(
            &[format!("scheduler.activation_reserve_gib={v}")],
            "scheduler.activation_reserve_gib",
            "must be ≥ 0",
        );
        for key in ["slo.ttft", "slo.tpot", "slo.e2e"] {
            refused(
                &[format!("{key}={v}")],
                key,
                "must be ≥ 0 seconds (0 = no threshold)",
            );
        }
    }
    plans(&[
        "scheduler.activation_reserve_gib=0.0",
        "slo.ttft=0.0",
        "slo.tpot=0.0",
        "slo.e2e=0.0",
    ]);
    accepts_only(
        "slo.percentile",
        "must be in (0, 100]",
        &[
            ("0.0", false),
            ("100.0", true),
            ("100.5", false),
            ("nan", false),
            ("0.1", true),
        ],
    );
    for v in ["0.0", "-1.0", "inf", "nan"] {
        refused(
            &[format!("metrics.sample_interval={v}")],
            "metrics.sample_interval",
            "must be > 0 seconds",
        );
    }
    plans(&["metrics.sample_interval=1e-6"]);
}

/// The profile time model needs an existing folder of profiles, checked
/// before anything reads it.
#[test]
fn the_profile_time_model_needs_its_folder() {
    refused(
        &["hardware.time_model=\"profile\""],
        "hardware.profile_dir",
        "needs the folder of operator profiles",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    refused(
        &[
            "hardware.time_model=\"profile\"".to_string(),
            format!("hardware.profile_dir=\"{}\"", file.display()),
        ],
        "hardware.profile_dir",
        "is not a folder",
    );
    let p = plans(&[
        "hardware.time_model=\"profile\"".to_string(),
        format!("hardware.profile_dir=\"{}\"", dir.path().display()),
    ]);
    assert_eq!(p.scenario.hardware.time_model, "profile");
}

/// The KV cache is stored like the weights when they are FP32 or FP16, as
/// BF16 otherwise (FP8 and INT weights do not quantise the cache); an
/// explicit `kv_dtype` wins.
#[test]
fn the_kv_dtype_follows_the_weights_unless_set() {
    for (name, weights, kv) in [
        ("fp32", Dtype::Fp32, Dtype::Fp32),
        ("fp16", Dtype::Fp16, Dtype::Fp16),
        ("bf16", Dtype::Bf16, Dtype::Bf16),
        ("fp8", Dtype::Fp8, Dtype::Bf16),
    ] {
        let p = plans(&[format!("model.dtype=\"{name}\"")]);
        assert_eq!((p.weight_dtype, p.kv_dtype), (weights, kv), "{name}");
    }
    let p = plans(&["model.dtype=\"fp16\"", "model.kv_dtype=\"fp8\""]);
    assert_eq!((p.weight_dtype, p.kv_dtype), (Dtype::Fp16, Dtype::Fp8));
    assert_eq!(plans::<&str>(&[]).weight_dtype, Dtype::Bf16);
}

/// `[hardware.interconnect]` replaces the device's link numbers, GB/s as
/// 1e9 bytes/s and µs as 1e-6 s (a latency may be 0, a bandwidth may not); each bad value is refused by
/// its key and leaves nothing half-applied.
#[test]
fn interconnect_overrides_replace_the_devices_links() {
    let base = plans::<&str>(&[]).device;
    let p = plans(&[
        "hardware.interconnect.intra_node_gbps=100.0",
        "hardware.interconnect.intra_node_latency_us=2.0",
        "hardware.interconnect.inter_node_gbps=0.5",
        "hardware.interconnect.inter_node_latency_us=4.0",
    ]);
    let d = &p.device;
    assert_eq!(
        (
            d.intra_node_bandwidth,
            d.intra_node_latency,
            d.inter_node_bandwidth,
            d.inter_node_latency
        ),
        (100e9, 2e-6, 0.5e9, 4e-6)
    );
    let zero = plans(&["hardware.interconnect.intra_node_latency_us=0.0"]).device;
    assert_eq!(zero.intra_node_latency, 0.0);
    let only = plans(&["hardware.interconnect.inter_node_gbps=50.0"]).device;
    assert_eq!(only.inter_node_bandwidth, 50e9);
    assert_eq!(
        (
            only.intra_node_bandwidth,
            only.intra_node_latency,
            only.inter_node_latency
        ),
        (
            base.intra_node_bandwidth,
            base.intra_node_latency,
            base.inter_node_latency
        )
    );
    for (key, expected, bad) in [
        (
            "intra_node_gbps",
            "a positive number of GB/s",
            &["0.0", "-1.0", "inf", "nan"][..],
        ),
        (
            "inter_node_gbps",
            "a positive number of GB/s",
            &["0.0", "-1.0", "inf", "nan"],
        ),
        (
            "intra_node_latency_us",
            "a number ≥ 0 µs",
            &["-1.0", "inf", "nan"],
        ),
        (
            "inter_node_latency_us",
            "a number ≥ 0 µs",
            &["-1.0", "inf", "nan"],
        ),
    ] {
        for v in bad {
            refused(
                &[format!("hardware.interconnect.{key}={v}")],
                &format!("hardware.interconnect.{key}"),
                &format!("must be {expected}, found"),
            );
        }
    }
}

/// The cluster in words, pool by pool, and its device count.
#[test]
fn the_shape_names_every_pool_and_counts_its_devices() {
    let p = plans(&["cluster.replicas=3", "cluster.tp=2", "cluster.pp=2"]);
    assert_eq!(p.shape(), "3 replica(s) x TP2 x PP2 on H100-SXM = 12 device(s)");
    assert_eq!(p.total_devices(), 12);
    let hetero =
        plan(&load(Some(std::path::Path::new("examples/hetero-disagg.toml")), &[]).unwrap()).unwrap();
    assert_eq!(
        hetero.shape(),
        "2 prefill x TP4 x PP1 on H100-SXM + 2 decode x TP8 x PP1 on A100-80GB = 24 device(s)"
    );
    let semi = plan(&load(Some(std::path::Path::new("examples/semi-pd-disagg.toml")), &[]).unwrap()).unwrap();
    assert_eq!(
        semi.shape(),
        "4 prefill x TP1 x PP1 on H100-SXM + 4 decode worker(s) sharing those devices = 4 device(s)"
    );
}

/// An unknown policy name is refused by its key with the closest name suggested.
#[test]
fn unknown_names_suggest_the_closest() {
    refused(
        &["cluster.router=\"round-robbin\""],
        "cluster.router",
        "unknown value `round-robbin` (did you mean `round-robin`?); expected one of:",
    );
    refused(
        &["hardware.time_model=\"analytic\""],
        "hardware.time_model",
        "did you mean `analytical`?",
    );
}

/// `scheduler.activation_reserve_gib` replaces the activation estimate, in
/// GiB (2³⁰ bytes), and leaves the KV cache what the others do not take.
#[test]
fn an_activation_reserve_is_set_in_gib() {
    let m = plans(&["scheduler.activation_reserve_gib=1.5"]).memory;
    assert_eq!(m.activations, 1.5 * 1024.0 * 1024.0 * 1024.0);
    assert_eq!(
        m.kv_bytes,
        m.budget - m.weights - m.activations - m.runtime_overhead
    );
    assert_eq!(
        plans(&["scheduler.activation_reserve_gib=0.0"])
            .memory
            .activations,
        0.0
    );
}

/// `[hardware.calibration]` overrides: numbers (integers read as floats)
/// replace the device's constants key by key; anything else, or a key the
/// calibration does not have, is refused by its key.
#[test]
fn calibration_overrides_are_numbers_for_known_keys() {
    let base = plans::<&str>(&[]).calibration;
    let p = plans(&[
        "hardware.calibration.cpu_overhead_base=0",
        "hardware.calibration.gemm_efficiency=0.5",
    ]);
    assert_eq!(
        (p.calibration.cpu_overhead_base, p.calibration.gemm_efficiency),
        (0.0, 0.5)
    );
    assert_eq!(p.calibration.memory_efficiency, base.memory_efficiency);
    refused(
        &["hardware.calibration.gemm_efficiency=\"fast\""],
        "hardware.calibration.gemm_efficiency",
        "expected a number, found `\"fast\"`",
    );
    refused(
        &["hardware.calibration.gemm_eficiency=0.5"],
        "hardware.calibration.gemm_eficiency",
        "unknown calibration constant (did you mean `gemm_efficiency`?)",
    );
    refused(
        &["hardware.calibration.gemm_efficiency=1.5"],
        "gemm_efficiency",
        "1.5",
    );
}

#[test]
fn each_builtin_scheduler_keeps_only_the_waiting_indexes_it_reads() {
    let names: Vec<String> = crate::registry::Registry::builtin()
        .scheduler_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 9, "{names:?}");
    for name in &names {
        for priority in [false, true] {
            let p = plans(&[
                format!("scheduler.kind={name}"),
                format!("scheduler.priority={priority}"),
            ]);
            let scheduler = p.scheduler.build(&p.policy);
            let got = scheduler.waiting_indexes();
            // Only VTC asks for a client's oldest request; the priority
            // index follows `scheduler.priority`.
            let want = crate::replica::scheduler::WaitIndexes {
                by_client: name == "vtc",
                by_priority: priority,
            };
            assert_eq!(got, want, "{name}, priority = {priority}");
            // A replica keeps what its scheduler asks for.
            let state = crate::replica::ReplicaState::new(0, 100, p.replica_options);
            let replica = crate::replica::Replica::new(state, scheduler);
            assert_eq!(replica.state.waiting_indexes(), want, "{name}");
        }
    }
}
