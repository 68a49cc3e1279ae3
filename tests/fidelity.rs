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
    assert!(report.cases.iter().all(|c| c.model.starts_with("Llama")));
    assert_eq!(report.cases.len(), 32);
    assert!(
        report.skipped.iter().all(|s| s.reason.contains("FP16")),
        "{:?}",
        report.skipped
    );
    check(&report.aggregate, &recorded("bounds-profile"));
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
            "itl_mape" => (a.itl_mape, tolerance),
            "e2e_mape" => (a.e2e_mape, tolerance),
            "ttft_max" => (a.ttft_max_ape, max_tolerance),
            "itl_max" => (a.itl_max_ape, max_tolerance),
            "e2e_max" => (a.e2e_max_ape, max_tolerance),
            "tolerance" | "max_tolerance" => continue,
            other => panic!("unknown bound key {other}"),
        };
        checked += 1;
        assert!(
            now <= stated + slack,
            "{key} is {now:.3}%, above the stated {stated}% + {slack} points"
        );
    }
    assert!(checked >= 3, "bounds name the three mean errors");
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
