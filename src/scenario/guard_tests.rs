//! Tests of what `validate::plan` decides for the `[scheduler]` section:
//! each value out of range refused by the key the user wrote (and its edge
//! values accepted), the token budget each batching kind takes, and the
//! memory options and swap model a scenario turns into.

use super::test_support::{refused, try_plan};
use crate::replica::state::{KvMode, Victim};

#[test]
fn scheduler_values_out_of_range_are_refused_by_key() {
    refused(&["scheduler.window=0"], "scheduler.window", "");
    refused(&["scheduler.laps_threshold=0"], "scheduler.laps_threshold", "");
    for v in ["-1.0", "inf", "nan"] {
        let set = format!("scheduler.laps_window={v}");
        refused(&[&set], "scheduler.laps_window", "must be ≥ 0 seconds");
        for key in ["scheduler.vtc_input_weight", "scheduler.vtc_output_weight"] {
            refused(&[&format!("{key}={v}")], key, "must be ≥ 0");
        }
    }
    refused(&["scheduler.max_num_seqs=0"], "scheduler.max_num_seqs", "");
    refused(
        &["scheduler.fastswitch=true"],
        "scheduler.fastswitch",
        "needs scheduler.preemption = \"swap\"",
    );
    refused(
        &["scheduler.kind=\"vllm-v1\"", "scheduler.preemption=\"swap\""],
        "scheduler.preemption",
        "recompute only",
    );
    refused(
        &["scheduler.kind=\"sglang\"", "scheduler.prefix_caching=false"],
        "scheduler.prefix_caching",
        "needs prefix_caching = true",
    );
    refused(
        &["scheduler.kind=\"orca\"", "scheduler.prefix_caching=true"],
        "scheduler.prefix_caching",
        "cannot share prefix blocks",
    );
    let swap = "scheduler.preemption=\"swap\"";
    for v in ["0.0", "-1.0", "inf"] {
        refused(
            &[swap, &format!("scheduler.swap_space_gib={v}")],
            "scheduler.swap_space_gib",
            "> 0 GiB",
        );
    }
    for v in ["-1.0", "nan"] {
        refused(
            &[swap, &format!("scheduler.swap_call_overhead={v}")],
            "scheduler.swap_call_overhead",
            "must be ≥ 0 seconds",
        );
    }
    refused(
        &[swap, "scheduler.fastswitch_group_blocks=0"],
        "scheduler.fastswitch_group_blocks",
        "",
    );
    refused(
        &["scheduler.kind=\"vtc\"", "scheduler.max_num_batched_tokens=0"],
        "scheduler.max_num_batched_tokens",
        "",
    );
    refused(
        &["scheduler.kind=\"sarathi\"", "scheduler.max_num_batched_tokens=0"],
        "scheduler.max_num_batched_tokens",
        "",
    );
    refused(
        &["scheduler.kind=\"sarathi\"", "scheduler.chunk_size=0"],
        "scheduler.chunk_size",
        "must be at least 1",
    );
    // Each edge that is a valid value plans.
    for sets in [
        &["scheduler.laps_window=0.0"][..],
        &[
            "scheduler.vtc_input_weight=0.0",
            "scheduler.vtc_output_weight=0.0",
        ],
        &[
            swap,
            "scheduler.swap_call_overhead=0.0",
            "scheduler.swap_space_gib=0.5",
        ],
        &[
            "scheduler.max_num_seqs=1",
            "scheduler.window=1",
            "scheduler.laps_threshold=1",
        ],
    ] {
        assert!(try_plan(sets).is_ok(), "{sets:?}");
    }
}

/// Whole-prompt schedulers need the longest prompt to fit in one batch and
/// default to `max(max_model_len, 2048)`; Sarathi's budget is the smaller of
/// its chunk and `max_num_batched_tokens`; V1-style budgets take the set
/// value, else their engine's default for the device.
#[test]
fn the_token_budget_follows_the_batching_kind() {
    let vllm = try_plan(&["scheduler.kind=\"vllm\"", "model.max_model_len=1024"]).unwrap();
    assert_eq!(vllm.policy.limits.token_budget, 2048);
    let long = try_plan(&["scheduler.kind=\"vllm\"", "model.max_model_len=4096"]).unwrap();
    assert_eq!(long.policy.limits.token_budget, 4096);
    let exact = [
        "scheduler.kind=\"vllm\"",
        "model.max_model_len=4096",
        "scheduler.max_num_batched_tokens=4096",
    ];
    assert_eq!(try_plan(&exact).unwrap().policy.limits.token_budget, 4096);
    refused(
        &[
            "scheduler.kind=\"vllm\"",
            "model.max_model_len=4096",
            "scheduler.max_num_batched_tokens=4095",
        ],
        "scheduler.max_num_batched_tokens",
        "smaller than max_model_len (4096)",
    );
    let sarathi = |sets: &[&str]| {
        let mut all = vec!["scheduler.kind=\"sarathi\"", "scheduler.chunk_size=512"];
        all.extend_from_slice(sets);
        try_plan(&all).unwrap().policy.limits.token_budget
    };
    assert_eq!(sarathi(&[]), 512);
    assert_eq!(sarathi(&["scheduler.max_num_batched_tokens=256"]), 256);
    assert_eq!(sarathi(&["scheduler.max_num_batched_tokens=1024"]), 512);
    let vtc = try_plan(&["scheduler.kind=\"vtc\"", "scheduler.max_num_batched_tokens=300"]).unwrap();
    assert_eq!(vtc.policy.limits.token_budget, 300);
    assert_eq!(
        try_plan(&["scheduler.kind=\"vtc\""])
            .unwrap()
            .policy
            .limits
            .token_budget,
        8192
    );
}

/// The replica's memory options: swap priced by the scenario's host space
/// (in whole blocks), FastSwitch's grouping, overlap and reuse only with
/// FastSwitch; reserved memory for Orca; blocks per chunk for V1; the
/// victim by priority; the policy's LAPS window in nanoseconds.
#[test]
fn memory_options_follow_the_scenario() {
    let p = try_plan(&[
        "scheduler.preemption=\"swap\"",
        "scheduler.swap_space_gib=1.0",
        "scheduler.swap_call_overhead=0.002",
        "scheduler.fastswitch=true",
        "scheduler.fastswitch_group_blocks=4",
        "scheduler.laps_window=0.25",
        "scheduler.vtc_input_weight=0.5",
        "scheduler.vtc_output_weight=3.0",
        "scheduler.window=7",
    ])
    .unwrap();
    let swap = p.replica_options.swap.expect("swap model");
    assert_eq!(swap.block_bytes, p.memory.block_bytes);
    assert_eq!(
        swap.host_blocks,
        (1024.0 * 1024.0 * 1024.0 / p.memory.block_bytes) as u64
    );
    assert!(swap.host_blocks > 0);
    assert_eq!(
        (swap.group_blocks, swap.overlap, swap.reuse, swap.call_overhead),
        (4, true, true, 0.002)
    );
    assert_eq!(swap.host_bandwidth, p.device.host_link_bandwidth);
    assert_eq!(swap.layers, p.model.num_layers);
    assert_eq!(p.policy.laps_window, 250_000_000);
    assert_eq!((p.policy.vtc_weights, p.policy.window), ((0.5, 3.0), 7));
    assert_eq!(p.replica_options.victim, Victim::Newest);
    let plain = try_plan(&[
        "scheduler.preemption=\"swap\"",
        "scheduler.fastswitch_group_blocks=4",
    ])
    .unwrap();
    let swap = plain.replica_options.swap.unwrap();
    assert_eq!((swap.group_blocks, swap.overlap, swap.reuse), (1, false, false));
    assert!(try_plan::<&str>(&[]).unwrap().replica_options.swap.is_none());
    let prio = try_plan(&["scheduler.priority=true"]).unwrap();
    assert_eq!(prio.replica_options.victim, Victim::LowestPriority);
    let orca = try_plan(&["scheduler.kind=\"orca\"", "model.max_model_len=2048"]).unwrap();
    assert_eq!(orca.replica_options.kv_mode, KvMode::Reserve { tokens: 2048 });
    assert!(!orca.replica_options.prefix_caching && !orca.replica_options.blocks_per_chunk);
    let v1 = try_plan(&["scheduler.kind=\"vllm-v1\""]).unwrap();
    assert_eq!(v1.replica_options.kv_mode, KvMode::Paged);
    assert!(v1.replica_options.blocks_per_chunk && v1.replica_options.prefix_caching);
    let ft = try_plan(&["scheduler.kind=\"fastertransformer\""]).unwrap();
    assert!(ft.replica_options.static_batch && !v1.replica_options.static_batch);
}

/// A trace's prefix blocks must be whole KV blocks to be shared: 24-token
/// units on 16-token blocks are refused by `workload.prefix.unit_tokens`
/// when prefix caching would use them (a trace with `hash_ids`, prefix kind
/// `auto` or `trace`), and not when caching is off or prefixes are ignored.
#[test]
fn trace_prefix_units_must_be_whole_blocks_when_cached() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("mooncake.jsonl");
    std::fs::write(
        &trace,
        "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 10, \"hash_ids\": [0, 1]}\n",
    )
    .unwrap();
    let with = |extra: &[&str]| {
        let mut sets = vec![
            format!("workload.trace=\"{}\"", trace.display()),
            "scheduler.block_size=16".to_string(),
            "workload.count=0".to_string(),
        ];
        sets.extend(extra.iter().map(|s| s.to_string()));
        sets
    };
    for kind in ["auto", "trace"] {
        let kind = format!("workload.prefix.kind=\"{kind}\"");
        refused(
            &with(&[
                "scheduler.prefix_caching=true",
                "workload.prefix.unit_tokens=24",
                &kind,
            ]),
            "workload.prefix.unit_tokens",
            "not a whole number of KV blocks of 16 tokens",
        );
    }
    for extra in [
        &["scheduler.prefix_caching=true", "workload.prefix.unit_tokens=32"][..],
        &["scheduler.prefix_caching=false", "workload.prefix.unit_tokens=24"],
        &[
            "scheduler.prefix_caching=true",
            "workload.prefix.unit_tokens=24",
            "workload.prefix.kind=\"none\"",
        ],
    ] {
        assert!(try_plan(&with(extra)).is_ok(), "{extra:?}");
    }
}
