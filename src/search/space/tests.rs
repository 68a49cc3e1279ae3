//! Unit tests of the search-space loader: checks at their boundaries, the
//! space size and its limits, pricing, overrides.

use super::*;

fn space(text: &str) -> Result<Space> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("space.toml");
    std::fs::write(&p, text).unwrap();
    load(&p, &[])
}

/// Each `[search]` check at its boundary: the value just inside is
/// accepted, the value just outside names its key.
#[test]
fn search_checks_accept_their_boundary_and_reject_past_it() {
    let check = |extra: &str| space(&format!("[search]\ngpu_budget = 4\n{extra}"));
    let rejects = |extra: &str, key: &str| {
        let e = check(extra).expect_err(extra).to_string();
        assert!(e.contains(key), "{extra}: {e}");
    };
    let dev = |field: &str, v: &str| format!("[[search.devices]]\nname = \"H100-SXM\"\n{field} = {v}\n");
    check(&dev("price_per_hour", "0.01")).unwrap();
    rejects(&dev("price_per_hour", "0"), "devices[0].price_per_hour");
    rejects(&dev("power_watts", "-5"), "devices[0].power_watts");
    rejects(&dev("power_watts", "inf"), "devices[0].power_watts");
    check("target_rate = 0\n").unwrap();
    rejects("target_rate = -0.5\n", "target_rate");
    rejects("target_rate = inf\n", "target_rate");
    check("min_attainment = 1\n").unwrap();
    rejects("min_attainment = 1.01\n", "min_attainment");
    check("[search.rate]\nlow = 0\nhigh = 0\n").unwrap();
    rejects("[search.rate]\nlow = -1\n", "rate.low");
    rejects("[search.rate]\nhigh = nan\n", "rate.high");
    // high may equal low (a single rate), not fall below it; either
    // may be 0 (= its default) whatever the other is.
    check("[search.rate]\nlow = 2\nhigh = 2\n").unwrap();
    rejects("[search.rate]\nlow = 2\nhigh = 1.5\n", "rate.high");
    check("[search.rate]\nlow = 2\nhigh = 0\n").unwrap();
    check("[search.rate]\nlow = 0\nhigh = 1\n").unwrap();
    check("[search.rate]\ntolerance = 0.999\n").unwrap();
    rejects("[search.rate]\ntolerance = 1\n", "rate.tolerance");
    check("[search.rate]\nmin_window_latencies = 0\n").unwrap();
    rejects(
        "[search.rate]\nmin_window_latencies = -1\n",
        "rate.min_window_latencies",
    );
    rejects(
        "[search.rate]\nmin_window_latencies = nan\n",
        "rate.min_window_latencies",
    );
    check("[search.rate]\nmax_probes = 2\n").unwrap();
    rejects("[search.rate]\nmax_probes = 1\n", "rate.max_probes");
    let e = space("[workload]\nduration = 10\n[search]\ngpu_budget = 4\n").unwrap_err();
    assert!(e.to_string().contains("workload.duration"), "{e}");
}

/// The plans a space spans: Σ over (tp, pp) of ⌊gpu_budget / (tp·pp)⌋
/// replica counts (or the listed ones) × devices × scheduler settings ×
/// prefill splits; and the limits on it and on listed replica counts,
/// each at its boundary.
#[test]
fn the_space_size_and_its_limits() {
    let sp = space(
        "[search]\ngpu_budget = 8\ntp = [1, 2]\npp = [1, 2]\nprefill_replicas = [0, 1]\n\
         [[search.devices]]\nname = \"H100-SXM\"\n[[search.devices]]\nname = \"A100-80GB\"\n\
         [[search.devices]]\nname = \"L40S\"\n\
         [[search.schedulers]]\nkind = \"vllm\"\nmax_num_seqs = [64, 128]\n",
    )
    .unwrap();
    // (8 + 4 + 4 + 2) × 3 devices × 2 settings × 2 splits.
    assert_eq!(space_size(&sp.search, &sp.base), 18 * 3 * 2 * 2);
    let sp = space("[search]\ngpu_budget = 8\ntp = [1, 2]\nreplicas = [1, 3, 4]\n").unwrap();
    assert_eq!(space_size(&sp.search, &sp.base), 2 * 3);
    // 2 devices × 50,000 replica counts = 100,000 plans: the most allowed.
    let two = "[[search.devices]]\nname = \"H100-SXM\"\n[[search.devices]]\nname = \"A100-80GB\"\n";
    space(&format!(
        "[search]\ngpu_budget = 50000\ntp = [1]\npp = [1]\n{two}"
    ))
    .unwrap();
    // 54,546 + 27,273 + 18,182 = 100,001 with tp 1, 2 and 3: one too many.
    let e = space("[search]\ngpu_budget = 54546\ntp = [1, 2, 3]\npp = [1]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("100001 plans"), "{e}");
    // A listed replica count may be the per-pool limit, not above it.
    space("[search]\ngpu_budget = 65536\nreplicas = [16384]\n").unwrap();
    let e = space("[search]\ngpu_budget = 65536\nreplicas = [16385]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("search.replicas") && e.contains("16385"), "{e}");
}

/// A device without a price (a user catalog's may have none) cannot be
/// ranked per dollar: the space says so instead of dividing by zero.
#[test]
fn a_device_without_a_price_is_an_error_unless_the_space_prices_it() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("cat.toml"),
        "[[device]]\nname = \"Free-GPU\"\nmemory_bytes = 80e9\nmemory_bandwidth = 3e12\n\
         flops_bf16 = 1e15\nintra_node_bandwidth = 4e11\nintra_node_latency = 2e-6\n\
         inter_node_bandwidth = 5e10\ninter_node_latency = 5e-6\nhost_link_bandwidth = 6e10\n\
         devices_per_node = 8\npower_watts = 700\n",
    )
    .unwrap();
    let load_with = |device: &str| {
        let p = d.path().join("space.toml");
        std::fs::write(
            &p,
            format!("catalog = \"cat.toml\"\n[search]\ngpu_budget = 2\n[[search.devices]]\n{device}"),
        )
        .unwrap();
        load(&p, &[]).and_then(|sp| enumerate(&sp))
    };
    let e = load_with("name = \"Free-GPU\"\n").unwrap_err().to_string();
    assert!(e.contains("Free-GPU") && e.contains("price_per_hour"), "{e}");
    let e = load_with("name = \"Free-GPU\"\nprice_per_hour = 1.5\n").unwrap();
    assert!(e.candidates.iter().all(|c| c.price_per_hour == 1.5));
}

#[test]
fn a_plan_uses_tp_times_pp_devices_per_replica() {
    let sp = space("[search]\ngpu_budget = 16\ntp = [2]\npp = [2]\nreplicas = [3]\n").unwrap();
    let e = enumerate(&sp).unwrap();
    assert!(!e.candidates.is_empty());
    assert!(e.candidates.iter().all(|c| c.params.gpus() == 12));
}

#[test]
fn blanking_keeps_line_numbers_and_other_sections() {
    let t = "[model]\nname = \"x\"\n[search]\ntp = [1]\n[[search.devices]]\nname = \"a\"\n[slo]\nttft = 1\n";
    let b = blank_search_sections(t);
    assert_eq!(b.lines().count(), t.lines().count());
    assert!(b.contains("[model]") && b.contains("[slo]") && b.contains("ttft = 1"));
    assert!(!b.contains("search") && !b.contains("tp = [1]"));
    // A section merely starting with "search" in its name is not blanked.
    assert!(blank_search_sections("[searchy]\na = 1\n").contains("a = 1"));
}

#[test]
fn unknown_search_key_names_it_with_a_hint() {
    let e = space("[search]\ngpu_budgte = 8\n").unwrap_err().to_string();
    assert!(
        e.contains("gpu_budgte") && e.contains("did you mean `gpu_budget`") && e.contains("line 2"),
        "{e}"
    );
    let e = space("[search]\ngpu_budget = 8\n[search.rate]\ntolerence = 0.1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("did you mean `tolerance`"), "{e}");
    let e = space("[clustr]\nreplicas = 1\n[search]\ngpu_budget = 8\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("clustr") && e.contains("did you mean `cluster`"),
        "{e}"
    );
}

#[test]
fn prefill_decode_splits_become_disaggregated_plans() {
    let sp = space("[search]\ngpu_budget = 4\nreplicas = [2, 4]\nprefill_replicas = [0, 1, 3]\n").unwrap();
    let e = enumerate(&sp).unwrap();
    let keys: Vec<String> = e.candidates.iter().map(|c| c.params.key()).collect();
    assert!(
        keys.iter()
            .any(|k| k.ends_with("dp=4 vllm seqs=auto tokens=auto chunk=512 pd=1+3")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.ends_with("chunk=512")),
        "co-located plans keep their keys"
    );
    // 3 prefill of 2 replicas leaves no decode replica; its example
    // plan says so (it once wrapped around to pd=3+4294967295).
    let (_, (_, example, _)) = e
        .pruned
        .iter()
        .find(|(r, _)| r.contains("decode replica"))
        .unwrap_or_else(|| panic!("{:?}", e.pruned));
    assert!(example.ends_with("pd=3+0"), "{example}");
    let c = e
        .candidates
        .iter()
        .find(|c| c.params.prefill_replicas == 1)
        .unwrap();
    let s = c.params.scenario(&sp.base);
    assert_eq!(s.cluster.mode, ClusterMode::Disaggregated);
    assert_eq!(
        s.cluster.prefill.replicas + s.cluster.decode.replicas,
        c.params.replicas
    );
    assert_eq!(c.plan.total_devices(), c.params.gpus());
}

#[test]
fn enumeration_prunes_with_reasons() {
    let sp = space(
        "[model]\nname = \"Llama-2-70B\"\n[search]\ngpu_budget = 8\ntp = [1, 2, 3, 4, 8]\npp = [1, 3]\n\
         [[search.devices]]\nname = \"A100-40GB\"\n",
    )
    .unwrap();
    let e = enumerate(&sp).unwrap();
    assert_eq!(e.considered, e.candidates.len() + e.pruned_total());
    let reasons: Vec<&String> = e.pruned.keys().collect();
    assert!(
        reasons.iter().any(|r| r.contains("attention heads")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("layers")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("does not fit")), "{reasons:?}");
    // Every candidate fits the budget and has tp·pp ≥ 4 (70B bf16 on 40 GB devices).
    for c in &e.candidates {
        assert!(
            c.params.gpus() <= 8 && c.params.tp * c.params.pp >= 4,
            "{}",
            c.params.key()
        );
    }
}

#[test]
fn search_overrides_apply_to_the_search_section() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("space.toml");
    std::fs::write(&p, "[search]\ngpu_budget = 8\n").unwrap();
    let s = load(
        &p,
        &["search.gpu_budget=2".into(), "cluster.router=least-kv".into()],
    )
    .unwrap();
    assert_eq!(s.search.gpu_budget, 2);
    assert_eq!(s.base.cluster.router, "least-kv");
}
