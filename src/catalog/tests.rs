//! Tests of the built-in catalog data: every required entry is present, the
//! architecture numbers reproduce the published parameter counts, and user
//! catalogs merge and report unknown names helpfully.

use super::*;

/// (canonical name, an alias that must also resolve)
const REQUIRED_MODELS: &[(&str, &str)] = &[
    ("Llama-2-7B", "meta-llama/Llama-2-7b-hf"),
    ("Llama-2-13B", "meta-llama/Llama-2-13b-hf"),
    ("Llama-2-70B", "meta-llama/Llama-2-70b-hf"),
    ("Llama-3-8B", "meta-llama/Meta-Llama-3-8B"),
    ("Llama-3-70B", "meta-llama/Meta-Llama-3-70B"),
    ("Llama-3.1-8B", "meta-llama/Llama-3.1-8B"),
    ("Llama-3.1-70B", "meta-llama/Llama-3.1-70B"),
    ("Llama-3.1-405B", "meta-llama/Llama-3.1-405B"),
    ("Mistral-7B", "mistralai/Mistral-7B-v0.1"),
    ("Mixtral-8x7B", "mistralai/Mixtral-8x7B-v0.1"),
    ("Mixtral-8x22B", "mistralai/Mixtral-8x22B-v0.1"),
    ("Qwen2.5-7B", "Qwen/Qwen2.5-7B-Instruct"),
    ("Qwen2.5-32B", "Qwen/Qwen2.5-32B-Instruct"),
    ("Qwen2.5-72B", "Qwen/Qwen2.5-72B-Instruct"),
    ("CodeLlama-34B", "codellama/CodeLlama-34b-hf"),
    ("phi-2", "microsoft/phi-2"),
    (
        "Mistral-Large-Instruct-2407",
        "mistralai/Mistral-Large-Instruct-2407",
    ),
];

const REQUIRED_DEVICES: &[(&str, &str)] = &[
    ("A100-40GB", "A100-SXM4-40GB"),
    ("A100-80GB", "A100-SXM4-80GB"),
    ("H100-SXM", "H100"),
    ("H100-PCIe", "H100-PCIe-80GB"),
    ("H200", "H200-SXM"),
    ("B200", "B200-SXM"),
    ("L40S", "L40S-48GB"),
    ("A40", "A40-48GB"),
    ("MI300X", "AMD-MI300X"),
];

fn builtin() -> Catalog {
    Catalog::builtin()
}

#[test]
fn builtin_catalog_parses() {
    let text_models = include_str!("../../catalog/models.toml");
    let text_devices = include_str!("../../catalog/devices.toml");
    let mut c = Catalog::default();
    c.merge_str(text_models, "models.toml").unwrap();
    c.merge_str(text_devices, "devices.toml").unwrap();
    assert_eq!(c.models.len(), builtin().models.len());
    assert_eq!(c.devices.len(), builtin().devices.len());
}

#[test]
fn default_model_is_first() {
    assert_eq!(builtin().models[0].name, "Llama-3-8B");
}

#[test]
fn every_required_model_is_present_by_name_and_alias() {
    let c = builtin();
    for &(name, alias) in REQUIRED_MODELS {
        let by_name = c.model(name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(by_name.name, name);
        let by_alias = c.model(alias).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(by_alias.name, name, "alias {alias}");
        // Case-insensitive.
        assert_eq!(c.model(&alias.to_uppercase()).unwrap().name, name);
    }
}

#[test]
fn every_required_device_is_present_by_name_and_alias() {
    let c = builtin();
    for &(name, alias) in REQUIRED_DEVICES {
        let by_name = c.device(name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(by_name.name, name);
        let by_alias = c.device(alias).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(by_alias.name, name, "alias {alias}");
        assert_eq!(c.device(&alias.to_lowercase()).unwrap().name, name);
    }
    for alias in ["H100", "H100-SXM-80GB", "H100-SXM5-80GB"] {
        assert_eq!(c.device(alias).unwrap().name, "H100-SXM");
    }
}

#[test]
fn names_and_aliases_are_unique() {
    let c = builtin();
    let mut seen = std::collections::HashSet::new();
    for m in &c.models {
        for n in std::iter::once(&m.name).chain(&m.aliases) {
            assert!(
                seen.insert(n.to_ascii_lowercase()),
                "model name/alias `{n}` repeated"
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    for d in &c.devices {
        for n in std::iter::once(&d.name).chain(&d.aliases) {
            assert!(
                seen.insert(n.to_ascii_lowercase()),
                "device name/alias `{n}` repeated"
            );
        }
    }
}

/// Published sizes (model cards / papers). Tolerance 2%; the observed errors
/// are far smaller (printed on failure).
#[test]
fn total_params_match_published_sizes() {
    let c = builtin();
    let cases: &[(&str, f64)] = &[
        ("Llama-3-8B", 8.03e9),
        ("Llama-2-7B", 6.74e9),
        ("Llama-2-13B", 13.0e9),
        ("Llama-2-70B", 68.98e9),
        ("Llama-3-70B", 70.6e9),
        ("Llama-3.1-8B", 8.03e9),
        ("Llama-3.1-70B", 70.6e9),
        ("Llama-3.1-405B", 405.9e9),
        ("Mistral-7B", 7.24e9),
        ("Mixtral-8x7B", 46.7e9),
        ("Mixtral-8x22B", 141e9),
        ("Qwen2.5-7B", 7.61e9),
        ("Qwen2.5-32B", 32.5e9),
        // Qwen's QKV biases (80 layers x (8192 + 2 x 1024) = 0.8M) are not
        // counted; they are 0.001% of the total.
        ("Qwen2.5-72B", 72.7e9),
        ("CodeLlama-34B", 33.7e9),
        // phi-2 has biases on every linear layer (~1M); not counted.
        ("phi-2", 2.78e9),
        ("Mistral-Large-Instruct-2407", 122.6e9),
    ];
    for &(name, published) in cases {
        let got = c.model(name).unwrap().total_params();
        let err = (got - published).abs() / published;
        assert!(
            err < 0.02,
            "{name}: computed {got:.4e} vs published {published:.4e} ({:.2}% off)",
            err * 100.0
        );
    }
}

#[test]
fn tight_param_counts() {
    // Exact counts of the released checkpoints (sum of tensor sizes), where the
    // formula has no bias to ignore: these must agree to 0.1%.
    let c = builtin();
    let cases: &[(&str, f64)] = &[
        ("Llama-3-8B", 8_030_261_248.0),
        ("Llama-2-7B", 6_738_415_616.0),
        ("Llama-2-70B", 68_976_648_192.0),
        ("Mistral-7B", 7_241_732_096.0),
        ("Mixtral-8x7B", 46_702_792_704.0),
    ];
    for &(name, exact) in cases {
        let got = c.model(name).unwrap().total_params();
        assert!(((got - exact) / exact).abs() < 1e-3, "{name}: {got} vs {exact}");
    }
}

#[test]
fn moe_active_params_match_published_sizes() {
    let c = builtin();
    for &(name, total, active) in &[("Mixtral-8x7B", 46.7e9, 12.9e9), ("Mixtral-8x22B", 141e9, 39e9)] {
        let m = c.model(name).unwrap();
        assert!(m.is_moe());
        let t = m.total_params();
        let a = m.active_params();
        assert!((t - total).abs() / total < 0.02, "{name} total {t:.4e}");
        assert!((a - active).abs() / active < 0.02, "{name} active {a:.4e}");
    }
    for m in builtin().models.iter().filter(|m| !m.is_moe()) {
        assert_eq!(m.total_params(), m.active_params(), "{}", m.name);
    }
}

#[test]
fn kv_bytes_per_token() {
    let c = builtin();
    assert_eq!(
        c.model("Llama-3-8B").unwrap().kv_bytes_per_token(Dtype::Bf16),
        131072.0
    );
    assert_eq!(
        c.model("Llama-2-7B").unwrap().kv_bytes_per_token(Dtype::Bf16),
        524288.0
    );
    assert_eq!(
        c.model("Llama-3-8B").unwrap().kv_bytes_per_token(Dtype::Fp8),
        65536.0
    );
}

#[test]
fn published_shapes_are_consistent() {
    for m in &builtin().models {
        // All built-in models have q width = hidden size.
        assert_eq!(m.num_heads * m.head_dim, m.hidden_size, "{}", m.name);
        assert!(m.num_heads.is_multiple_of(m.num_kv_heads), "{}", m.name);
    }
    let c = builtin();
    let phi = c.model("phi-2").unwrap();
    assert!(!phi.gated_mlp);
    assert_eq!((phi.head_dim, phi.max_context), (80, 2048));
    assert!(c.models.iter().filter(|m| m.name != "phi-2").all(|m| m.gated_mlp));
    assert!(c.models.iter().all(|m| !m.tied_embeddings));
    for (name, ctx) in [
        ("Llama-2-7B", 4096),
        ("Llama-2-70B", 4096),
        ("Llama-3-8B", 8192),
        ("Llama-3-70B", 8192),
        ("Llama-3.1-8B", 131072),
        ("Llama-3.1-405B", 131072),
        ("Qwen2.5-7B", 32768),
        ("Mistral-Large-Instruct-2407", 131072),
    ] {
        assert_eq!(c.model(name).unwrap().max_context, ctx, "{name}");
    }
}

#[test]
fn device_numbers_are_sane() {
    let c = builtin();
    for d in &c.devices {
        assert!(d.flops_fp8 == 0.0 || d.flops_fp8 >= d.flops_bf16, "{}", d.name);
        assert!(d.memory_bytes >= 40e9 && d.memory_bytes <= 200e9, "{}", d.name);
        assert!(
            d.intra_node_latency > 0.0 && d.intra_node_latency < 1e-4,
            "{}",
            d.name
        );
        assert!(
            d.inter_node_latency > 0.0 && d.inter_node_latency < 1e-4,
            "{}",
            d.name
        );
        assert!(d.price_per_hour > 0.0, "{}", d.name);
        assert!(d.power_watts > 0.0, "{}", d.name);
        assert_eq!(d.devices_per_node, 8, "{}", d.name);
    }
    for name in ["A100-40GB", "A100-80GB", "A40"] {
        assert_eq!(c.device(name).unwrap().flops_fp8, 0.0, "{name}");
    }
    let h100 = c.device("H100").unwrap();
    assert_eq!(h100.flops_bf16, 989.5e12);
    assert_eq!(h100.intra_node_bandwidth, 450e9);
    let h200 = c.device("H200").unwrap();
    assert_eq!((h200.memory_bytes, h200.memory_bandwidth), (141e9, 4.8e12));
}

#[test]
fn user_catalog_adds_models_and_overrides_devices() {
    let mut c = builtin();
    let n_models = c.models.len();
    let n_devices = c.devices.len();
    let user = r#"
        [[model]]
        name = "Tiny-1B"
        aliases = ["acme/tiny-1b"]
        num_layers = 16
        hidden_size = 2048
        num_heads = 16
        num_kv_heads = 4
        head_dim = 128
        intermediate_size = 8192
        vocab_size = 32000
        dtype = "bf16"
        max_context = 4096

        [[device]]
        name = "h100-sxm"
        aliases = ["H100", "my-h100"]
        memory_bytes = 80e9
        memory_bandwidth = 3.35e12
        flops_bf16 = 989.5e12
        flops_fp8 = 1979e12
        intra_node_bandwidth = 450e9
        intra_node_latency = 2e-6
        inter_node_bandwidth = 50e9
        inter_node_latency = 5e-6
        host_link_bandwidth = 64e9
        devices_per_node = 8
        power_watts = 700
        price_per_hour = 1.25
    "#;
    c.merge_str(user, "user.toml").unwrap();
    assert_eq!(c.models.len(), n_models + 1);
    assert_eq!(c.devices.len(), n_devices, "override must replace, not append");
    let tiny = c.model("ACME/tiny-1B").unwrap();
    assert_eq!(tiny.name, "Tiny-1B");
    assert!(tiny.gated_mlp && tiny.num_experts == 1 && tiny.experts_per_token == 1);
    assert_eq!(c.device("my-h100").unwrap().price_per_hour, 1.25);
    assert_eq!(c.device("H100-SXM").unwrap().price_per_hour, 1.25);
    // The replaced entry keeps its catalog position (listing order is stable).
    let pos = c.devices.iter().position(|d| d.price_per_hour == 1.25).unwrap();
    assert_eq!(
        pos,
        builtin()
            .devices
            .iter()
            .position(|d| d.name == "H100-SXM")
            .unwrap()
    );
}

#[test]
fn user_catalog_errors_name_the_file() {
    let mut c = builtin();
    let err = c
        .merge_str("[[model]]\nname = \"x\"\nbogus = 1\n", "user.toml")
        .unwrap_err();
    assert!(err.to_string().starts_with("user.toml"), "{err}");
}

#[test]
fn unknown_names_suggest_a_close_match() {
    let c = builtin();
    let err = c.model("Lama-3-8B").unwrap_err().to_string();
    assert!(err.contains("unknown model `Lama-3-8B`"), "{err}");
    assert!(err.contains("did you mean `Llama-3-8B`?"), "{err}");
    // The CLI test in tests/cli.rs relies on this suggestion.
    let err = c.model("Llama-3-8b-typo").unwrap_err().to_string();
    assert!(err.contains("did you mean `Llama-3-8B`?"), "{err}");
    let err = c.model("Mixtral-8x22").unwrap_err().to_string();
    assert!(err.contains("did you mean `Mixtral-8x22B`?"), "{err}");
    let err = c.device("H100-SMX").unwrap_err().to_string();
    assert!(err.contains("unknown device `H100-SMX`"), "{err}");
    assert!(err.contains("did you mean `H100-SXM`?"), "{err}");
    let err = c.device("MI300").unwrap_err().to_string();
    assert!(err.contains("did you mean `MI300X`?"), "{err}");
    // Nothing close: no suggestion, but still a clear message.
    let err = c.device("zzzzzz").unwrap_err().to_string();
    assert!(!err.contains("did you mean"), "{err}");
    assert!(err.contains("fleetsim catalog devices"), "{err}");
}

#[test]
fn h200_inherits_the_h100_fit_and_follows_a_refit() {
    let mut c = builtin();
    let h100 = c.device("H100-SXM").unwrap().clone();
    let h200 = c.device("H200").unwrap().clone();
    assert!(h100.calibration.is_some());
    assert_eq!(h200.calibration, h100.calibration);
    assert_eq!(h200.engines, h100.engines);
    // Its own datasheet numbers stay its own.
    assert_eq!(h200.memory_bandwidth, 4.8e12);
    // A user file refitting the H100 changes what the H200 inherits.
    let refit = user_device(
        "H100-SXM",
        "[device.calibration]\ngemm_efficiency = 0.5\n[device.engines.vllm-v1]\ncpu_overhead_base = 1e-3",
    );
    c.merge_str(&refit, "user.toml").unwrap();
    let h200 = c.device("H200").unwrap();
    assert_eq!(h200.calibration.unwrap().gemm_efficiency, 0.5);
    assert_eq!(
        h200.engines["vllm-v1"]["cpu_overhead_base"].as_float(),
        Some(1e-3)
    );
}

/// A user device: `extra` is appended to its table.
fn user_device(name: &str, extra: &str) -> String {
    format!(
        "[[device]]\nname = \"{name}\"\nmemory_bytes = 80e9\nmemory_bandwidth = 2e12\nflops_bf16 = 5e14\n\
         intra_node_bandwidth = 1e11\nintra_node_latency = 2e-6\ninter_node_bandwidth = 5e10\n\
         inter_node_latency = 5e-6\nhost_link_bandwidth = 3e10\ndevices_per_node = 8\npower_watts = 500\n{extra}\n"
    )
}

#[test]
fn inherited_engine_tables_keep_the_devices_own_keys() {
    let mut c = builtin();
    let text = user_device(
        "my-gpu",
        "calibration_from = \"H200\"\n[device.engines.vllm-v1]\ncpu_overhead_base = 2e-3\n",
    );
    c.merge_str(&text, "user.toml").unwrap();
    let mine = c.device("my-gpu").unwrap();
    let h100 = c.device("H100-SXM").unwrap();
    // Through H200 to H100-SXM: the chain is followed to the fit.
    assert_eq!(mine.calibration, h100.calibration);
    let v1 = &mine.engines["vllm-v1"];
    assert_eq!(v1["cpu_overhead_base"].as_float(), Some(2e-3), "own key wins");
    assert_eq!(
        v1["cpu_overhead_per_seq"],
        h100.engines["vllm-v1"]["cpu_overhead_per_seq"]
    );
}

#[test]
fn bad_calibration_from_is_an_error_naming_the_device() {
    let cases = [
        (
            user_device("a", "calibration_from = \"H100-SMX\""),
            "`a`: `calibration_from` names unknown device `H100-SMX` (did you mean `H100-SXM`?)",
        ),
        (
            user_device("a", "calibration_from = \"b\"") + &user_device("b", "calibration_from = \"A\""),
            "`calibration_from` goes round in a circle (a -> b -> a)",
        ),
        (user_device("a", "calibration_from = \"a\""), "circle (a -> a)"),
        (
            user_device(
                "a",
                "calibration_from = \"H100\"\n[device.calibration]\ngemm_efficiency = 0.6",
            ),
            "device `a`: `calibration_from = \"H100\"` and `[device.calibration]` are both given",
        ),
    ];
    for (text, expected) in cases {
        let err = builtin().merge_str(&text, "user.toml").unwrap_err().to_string();
        assert!(err.starts_with("user.toml"), "{err}");
        assert!(err.contains(expected), "{err}\nexpected: {expected}");
    }
}
