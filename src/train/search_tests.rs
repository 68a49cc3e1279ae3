//! Tests of the training-plan search: enumeration and pruning by reason,
//! ranking by each objective, determinism across thread counts, and the
//! best plan written back as a runnable scenario.

use super::*;

fn space(sets: &[&str], search: TrainSearch) -> TrainSpace {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    TrainSpace {
        base: crate::scenario::load::load_training(None, &sets).unwrap(),
        search,
    }
}

fn search(gpus: u32) -> TrainSearch {
    TrainSearch {
        gpus,
        tp: vec![],
        pp: vec![],
        vpp: vec![],
        ep: vec![],
        cp: vec![],
        micro_batch: vec![],
        schedule: vec![],
        zero_stage: vec![],
        recompute: vec![],
        objective: TrainObjective::TokensPerS,
        top: 10,
    }
}

/// Llama-3-70B on 64 GPUs: 3 TP × 3 PP × 2 recompute = 18 plans.
fn llama70b() -> TrainSpace {
    space(
        &[
            "model.name=Llama-3-70B",
            "training.global_batch=128",
            "training.seq_len=4096",
        ],
        TrainSearch {
            tp: vec![2, 4, 8],
            pp: vec![1, 4, 8],
            recompute: vec![Recompute::None, Recompute::Full],
            ..search(64)
        },
    )
}

#[test]
fn every_combination_is_simulated_or_pruned_with_its_reason() {
    let s = llama70b();
    let o = run(&s).unwrap();
    assert_eq!(o.candidates, 18);
    let pruned: usize = o.pruned.iter().map(|p| p.count).sum();
    assert_eq!(o.plans.len() + pruned, 18);
    // TP 2 without a pipeline holds 35e9 parameters' weights, gradients
    // and optimizer shards on each device: far over 80 GB.
    assert!(
        o.pruned
            .iter()
            .any(|p| p.reason.contains("needs # GiB") && p.example.starts_with("tp2-pp1")),
        "{:?}",
        o.pruned
    );
    assert!(!o.plans.is_empty());
    // Best first by tokens/s.
    assert!(o.plans.windows(2).all(|w| w[0].tokens_per_s >= w[1].tokens_per_s));
    // Data parallelism fills the GPUs.
    assert!(o.plans.iter().all(|p| p.knobs.tp * p.knobs.pp * p.knobs.dp == 64));
}

#[test]
fn a_shape_that_does_not_divide_the_gpus_is_pruned_not_simulated() {
    let s = space(
        &[],
        TrainSearch {
            tp: vec![1, 3],
            ..search(8)
        },
    );
    let o = run(&s).unwrap();
    assert_eq!(o.plans.len(), 1);
    assert_eq!(o.pruned.len(), 1);
    assert_eq!(
        o.pruned[0].example_error,
        "tp·pp·cp = 3 does not divide the 8 GPUs"
    );
    assert_eq!(o.pruned[0].reason, "tp·pp·cp = # does not divide the # GPUs");
}

#[test]
fn objectives_rank_by_their_figure() {
    let mut s = llama70b();
    s.search.objective = TrainObjective::Cost;
    let cost = run(&s).unwrap();
    assert!(cost.plans.windows(2).all(|w| w[0].cost_usd <= w[1].cost_usd));
    s.search.objective = TrainObjective::TimeToTrain;
    let time = run(&s).unwrap();
    assert!(
        time.plans
            .windows(2)
            .all(|w| w[0].time_to_train_s <= w[1].time_to_train_s)
    );
    // On a fixed GPU count the price per GPU-hour is shared: the cheapest
    // run is the fastest one.
    assert_eq!(cost.plans[0].key, time.plans[0].key);
}

#[test]
fn the_outcome_does_not_depend_on_the_thread_count() {
    let s = llama70b();
    let on = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| serde_json::to_string(&run(&s).unwrap()).unwrap())
    };
    assert_eq!(on(1), on(2));
}

#[test]
fn the_best_plan_is_written_as_a_scenario_that_runs_to_the_same_figures() {
    let s = llama70b();
    let o = run(&s).unwrap();
    let text = best_toml(&s, &o).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("best.toml");
    std::fs::write(&path, &text).unwrap();
    let back = crate::scenario::load::load_training(Some(&path), &[]).unwrap();
    let r = super::run::simulate(&super::run::plan(&back).unwrap())
        .unwrap()
        .report;
    assert_eq!(r.tokens_per_s, o.plans[0].tokens_per_s);
}

#[test]
fn is_training_space_looks_for_training_sections() {
    assert!(is_training_space("[parallel]\ntp = 2\n[search]\ngpus = 8\n"));
    assert!(is_training_space("[training]\nseq_len = 2\n"));
    assert!(!is_training_space("[cluster]\ntp = 2\n[search]\ntp = [1]\n"));
}

#[test]
fn only_interleaving_varies_the_virtual_stages() {
    // vpp [1, 2] × {1f1b, interleaved}: 1F1B once (vpp 1), interleaved twice.
    let s = space(
        &[
            "parallel.dp=1",
            "parallel.pp=2",
            "training.global_batch=8",
            "training.seq_len=1024",
        ],
        TrainSearch {
            vpp: vec![1, 2],
            schedule: vec![ScheduleKind::OneFOneB, ScheduleKind::Interleaved],
            ..search(2)
        },
    );
    let keys: Vec<String> = enumerate(&s).into_iter().map(|c| c.unwrap().key()).collect();
    assert_eq!(
        keys,
        [
            "tp1-pp2-v1-dp1-ep1-cp1-mb1-1f1b-z1-none",
            "tp1-pp2-v1-dp1-ep1-cp1-mb1-interleaved-z1-none",
            "tp1-pp2-v2-dp1-ep1-cp1-mb1-interleaved-z1-none",
        ]
    );
}

#[test]
fn a_space_file_reads_its_search_section_and_names_bad_keys() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("space.toml");
    std::fs::write(
        &path,
        "[parallel]\ntp = 1\n[training]\nglobal_batch = 16\nseq_len = 1024\n[search]\ngpus = 8\npp = [1, 2]\n",
    )
    .unwrap();
    let s = load(
        &path,
        &["search.tp=[1, 2]".to_string(), "training.seq_len=512".to_string()],
    )
    .unwrap();
    assert_eq!(
        (s.search.gpus, s.search.tp.clone(), s.search.pp.clone()),
        (8, vec![1, 2], vec![1, 2])
    );
    assert_eq!(s.base.training.seq_len, 512);
    assert_eq!(
        (s.search.top, s.search.objective),
        (10, TrainObjective::TokensPerS)
    );
    let e = load(&path, &["search.gpus=0".to_string()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("search.gpus"), "{e}");
    std::fs::write(&path, "[parallel]\ntp = 1\n").unwrap();
    let e = load(&path, &[]).unwrap_err().to_string();
    assert!(e.contains("[search]"), "{e}");
    std::fs::write(&path, "[parallel]\ntp = 1\n[search]\ngpus = 8\ntpp = [2]\n").unwrap();
    let e = load(&path, &[]).unwrap_err().to_string();
    assert!(e.contains("tpp"), "{e}");
}

#[test]
fn the_table_shows_the_top_plans_and_the_reasons() {
    let s = space(
        &[],
        TrainSearch {
            tp: vec![1, 2, 3],
            ..search(8)
        },
    );
    let o = run(&s).unwrap();
    let table = to_table(&o, 1);
    assert!(
        table.starts_with("3 candidate plans on 8 GPUs: 2 feasible, ranked by tokens_per_s"),
        "{table}"
    );
    assert!(
        table.contains(&o.plans[0].key) && !table.contains(&o.plans[1].key),
        "{table}"
    );
    assert!(
        table.contains("1 × tp·pp·cp = 3 does not divide the 8 GPUs"),
        "{table}"
    );
}

#[test]
fn context_parallelism_takes_its_share_of_the_gpus_and_cost_is_gpu_hours() {
    // 8 GPUs, pp 2 × cp 2: dp 2; tp·pp·cp = 8 leaves dp 1.
    let s = space(
        &["training.global_batch=16", "training.seq_len=2048"],
        TrainSearch {
            tp: vec![1, 2],
            pp: vec![2],
            cp: vec![2],
            ..search(8)
        },
    );
    let dps: Vec<u32> = enumerate(&s).into_iter().map(|c| c.unwrap().dp).collect();
    assert_eq!(dps, [2, 1]);
    // A plan's cost is its GPUs × the device's price per GPU-hour × the
    // hours to train: 8 H100s at the catalog's price.
    let o = run(&s).unwrap();
    let price = crate::catalog::Catalog::builtin()
        .device("H100-SXM")
        .unwrap()
        .price_per_hour;
    for p in &o.plans {
        let expected = 8.0 * price * p.time_to_train_s / 3600.0;
        assert!(
            (p.cost_usd / expected - 1.0).abs() < 1e-12,
            "{} vs {expected}",
            p.cost_usd
        );
    }
    assert!(!o.plans.is_empty());
}
