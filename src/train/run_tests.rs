//! Whole-plan tests of `fleetsim train`'s simulation: the schedules'
//! ordering on a real model, memory rejection with the numbers, the keys
//! errors name, data-parallel sync against the link, the MFU definition
//! against hand-counted FLOPs, checkpoints against hand-counted state
//! bytes, determinism, and the trace's shape.

use super::super::output;
use super::*;
use crate::scenario::load::load_training;
use crate::train::config::TrainScenario;

fn scenario(sets: &[&str]) -> TrainScenario {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    load_training(None, &sets).unwrap()
}

fn run(sets: &[&str]) -> TrainRun {
    simulate(&plan(&scenario(sets)).unwrap()).unwrap()
}

fn error(sets: &[&str]) -> String {
    match plan(&scenario(sets)).and_then(|p| simulate(&p)) {
        Ok(_) => panic!("{sets:?} should fail"),
        Err(e) => e.to_string(),
    }
}

/// Llama-3-8B on one 4-stage pipeline, 16 micro-batches of 2k tokens.
const PIPE: &[&str] = &[
    "parallel.dp=1",
    "parallel.pp=4",
    "training.global_batch=16",
    "training.seq_len=2048",
    "training.zero_stage=0",
];

fn with<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

#[test]
fn zero_bubble_schedules_beat_interleaving_which_beats_1f1b() {
    let it = |schedule: &str, vpp: &str| {
        let s = format!("training.schedule={schedule}");
        let v = format!("parallel.vpp={vpp}");
        run(&with(PIPE, &[&s, &v])).report
    };
    let (gpipe, ofob, inter, h1, h2, zbv) = (
        it("gpipe", "1"),
        it("1f1b", "1"),
        it("interleaved", "2"),
        it("zb-h1", "1"),
        it("zb-h2", "1"),
        it("zbv", "1"),
    );
    let t = |r: &TrainReport| r.iteration_s;
    assert!(t(&h2) < t(&h1), "{} vs {}", t(&h2), t(&h1));
    // ZBV's greedy order at 1F1B's memory trails ZB-H1 slightly when B is
    // longer than F and W (here B ≈ 1.3 F, W ≈ 0.8 F); with equal times it
    // leads (schedule_tests). It must still beat interleaving.
    assert!(t(&zbv) < t(&inter), "{} vs {}", t(&zbv), t(&inter));
    assert!(
        t(&h1) < t(&inter) && t(&inter) < t(&ofob),
        "{} {} {}",
        t(&h1),
        t(&inter),
        t(&ofob)
    );
    // GPipe and 1F1B idle the same; GPipe holds all 16 micro-batches.
    assert!((t(&gpipe) - t(&ofob)).abs() < 1e-9 * t(&ofob));
    assert_eq!(gpipe.devices[0].peak_in_flight, 16.0);
    assert_eq!(ofob.devices[0].peak_in_flight, 4.0);
    assert!(gpipe.peak_memory_gib > ofob.peak_memory_gib);
    // ZB-H1 keeps 1F1B's peak; ZB-H2 buys its bubble with memory.
    assert!((h1.peak_memory_gib - ofob.peak_memory_gib).abs() < 0.05 * ofob.peak_memory_gib);
    assert!(h2.devices[0].activations_gib > 1.5 * ofob.devices[0].activations_gib);
    assert!(h2.peak_memory_gib > ofob.peak_memory_gib);
    assert!(h2.bubble_fraction < h1.bubble_fraction && h1.bubble_fraction < ofob.bubble_fraction);
}

#[test]
fn the_v_placement_balances_an_uneven_layer_count_over_devices() {
    // Llama-2-13B's 40 layers on 8 devices: 5 each, even though 16 chunks
    // cannot all have the same count.
    let r = run(&[
        "model.name=Llama-2-13B",
        "parallel.dp=1",
        "parallel.pp=8",
        "training.global_batch=16",
        "training.seq_len=1024",
        "training.schedule=zbv",
    ])
    .report;
    assert!(r.devices.iter().all(|d| d.layers == 5), "{:?}", r.devices);
}

#[test]
fn a_plan_over_device_memory_is_rejected_with_the_numbers() {
    // Llama-3-70B whole on every device: 70.6e9 × (2 + 2) bytes of weights
    // and gradients alone are 263 GiB.
    let e = error(&["model.name=Llama-3-70B", "training.zero_stage=0"]);
    for needle in [
        "pipeline device 0",
        "GiB",
        "weights 131.",
        "gradients 131.",
        "H100-SXM",
    ] {
        assert!(e.contains(needle), "{needle} not in: {e}");
    }
}

#[test]
fn errors_name_the_key_the_user_wrote() {
    for (sets, key) in [
        (vec!["training.global_batch=12"], "training.global_batch"),
        (vec!["parallel.pp=64"], "parallel.pp"),
        (vec!["parallel.tp=3"], "parallel.tp"),
        (vec!["sync.method=diloco"], "training.zero_stage"),
        (vec!["hardware.time_model=profile"], "hardware.time_model"),
        (vec!["faults.storage_gbps=0"], "faults.storage_gbps"),
        (vec!["faults.mtbf_gpu_hours=-1"], "faults.mtbf_gpu_hours"),
        (vec!["training.steps=0"], "training.steps"),
        (vec!["training.tokens=-5"], "training.tokens"),
        (vec!["training.micro_batch=0"], "training.micro_batch"),
        (vec!["sync.bucket_mb=0"], "sync.bucket_mb"),
        (
            vec![
                "parallel.pp=4",
                "parallel.dp=1",
                "training.global_batch=6",
                "training.schedule=interleaved",
                "parallel.vpp=2",
            ],
            "training.schedule",
        ),
        (vec!["parallel.vpp=2"], "training.schedule"),
    ] {
        let e = error(&sets);
        assert!(e.contains(key), "{sets:?}: {e}");
    }
    // Unknown keys and names come from the shared loader.
    let sets = vec!["training.shedule=1f1b".to_string()];
    let e = load_training(None, &sets).unwrap_err().to_string();
    assert!(e.contains("did you mean") && e.contains("schedule"), "{e}");
    let sets = vec!["training.schedule=zb".to_string()];
    let e = load_training(None, &sets).unwrap_err().to_string();
    assert!(e.contains("zb-h1"), "{e}");
}

#[test]
fn mfu_is_palm_model_flops_over_peak() {
    let r = run(&[]).report;
    // Llama-3-8B: 8,030,261,248 parameters, of which the input embedding
    // 128,256 × 4,096 = 525,336,576 is a lookup: N = 7,504,924,672.
    // Per token 6·N + 12·L·H·Q·S = 45,029,548,032 + 12·32·4096·4096
    // (6,442,450,944) = 51,471,998,976 FLOPs; 64 × 4,096 tokens per step
    // on 8 × 989.5 TFLOP/s.
    let per_token = 51_471_998_976.0;
    let tokens = 64.0 * 4096.0;
    let peak = 8.0 * 989.5e12;
    let measured = r.mfu * peak * r.iteration_s / tokens;
    assert!(
        (measured / per_token - 1.0).abs() < 1e-3,
        "{measured} vs {per_token}"
    );
    // Without recomputation the devices execute exactly the model FLOPs;
    // full recomputation runs the forward again: 8N + 16·L·H·Q·S per
    // token, 4/3 of the model's.
    assert!((r.tflops_per_gpu * 1e12 * 8.0 / peak - r.mfu).abs() < 1e-9);
    let full = run(&["training.recompute=full"]).report;
    let ratio = full.tflops_per_gpu * 1e12 * 8.0 / peak / full.mfu;
    assert!((ratio - 4.0 / 3.0).abs() < 1e-9, "{ratio}");
    assert!(full.iteration_s > r.iteration_s);
}

#[test]
fn slow_links_expose_ddp_and_local_sgd_hides_most_of_it() {
    // One TP-8 node per replica, two replicas across nodes.
    let base = [
        "parallel.tp=8",
        "parallel.dp=2",
        "training.global_batch=16",
        "training.zero_stage=0",
    ];
    let fast = run(&base).report;
    let slow_sets = with(&base, &["hardware.interconnect.inter_node_gbps=1"]);
    let slow = run(&slow_sets).report;
    // 8.03e9 / 8 bf16 gradients = 2 GB per device: a 2-way ring sends
    // 2 GB each way; at 1 GB/s × the link efficiency that is seconds, far
    // beyond the last micro-batch's backward.
    assert!(slow.dp_sync.exposed_s > 1.0, "{:?}", slow.dp_sync);
    assert!(slow.iteration_s > fast.iteration_s + 1.0);
    assert!(
        (slow.dp_sync.bytes_per_step - 2.0 * 1_003_782_656.0 * 2.0 / 2.0).abs()
            < 0.02 * slow.dp_sync.bytes_per_step
    );
    let local = run(&with(
        &slow_sets,
        &["sync.method=local-sgd", "sync.inner_steps=16"],
    ))
    .report;
    assert!((local.dp_sync.bytes_per_step * 16.0 / slow.dp_sync.bytes_per_step - 1.0).abs() < 1e-9);
    assert!(local.iteration_s < slow.iteration_s);
    let co2 = run(&with(&slow_sets, &["sync.method=co2"])).report;
    assert!(co2.dp_sync.exposed_s < slow.dp_sync.exposed_s);
}

#[test]
fn checkpoint_stalls_are_the_state_over_the_storage_bandwidth() {
    // Nothing fails; a sync checkpoint every 10 of 100 steps: 9 stalls.
    // Llama-3-8B, dp 8, ZeRO-1: each device saves its bf16 weights
    // (8,030,261,248 × 2 = 16.06 GB) and an eighth of the Adam state
    // (× 12 / 8 = 12.05 GB): 28.11 GB; 8 devices per node write 224.8 GB
    // at 2.5 GB/s: 89.9 s per checkpoint.
    let r = run(&["faults.interval_steps=10", "training.steps=100"]).report;
    let per_checkpoint = 8.0 * 8_030_261_248.0 * (2.0 + 12.0 / 8.0) / 2.5e9;
    assert!(
        (r.faults.checkpoint_stall_s / 9.0 / per_checkpoint - 1.0).abs() < 1e-6,
        "{} vs {}",
        r.faults.checkpoint_stall_s / 9.0,
        per_checkpoint
    );
    let ideal = 100.0 * r.iteration_s;
    assert!((r.goodput - ideal / (ideal + r.faults.checkpoint_stall_s)).abs() < 1e-12);
    // Failing GPUs: goodput falls; an asynchronous snapshot over the host
    // link stalls less than the write to storage and keeps more of it.
    let failing = [
        "faults.mtbf_gpu_hours=50",
        "training.steps=2000",
        "faults.replications=8",
    ];
    let sync = run(&failing).report;
    let async_ = run(&with(&failing, &["faults.checkpoint=async"])).report;
    assert!(
        sync.goodput < 0.99 && sync.faults.failures > 0.0,
        "{:?}",
        sync.faults
    );
    assert!(
        async_.goodput > sync.goodput,
        "{} vs {}",
        async_.goodput,
        sync.goodput
    );
    assert!(sync.faults.interval_steps.is_some());
    assert!(r.time_to_train_s > 100.0 * r.iteration_s);
}

#[test]
fn zero_and_offload_trade_memory_as_they_should() {
    // TP 2 × DP 4 with 1k sequences, so that even ZeRO-0 fits.
    let sets = |zero: &str| {
        vec![
            "parallel.tp=2".to_string(),
            "parallel.dp=4".to_string(),
            "training.seq_len=1024".to_string(),
            format!("training.zero_stage={zero}"),
        ]
    };
    let mem = |zero| {
        let s = load_training(None, &sets(zero)).unwrap();
        simulate(&plan(&s).unwrap()).unwrap().report.devices[0].clone()
    };
    let (z0, z1, z2, z3) = (mem("0"), mem("1"), mem("2"), mem("3"));
    // Adam's 12 bytes per parameter shard over 4 replicas, then the
    // gradients' 2, then the weights' 2.
    assert!((z1.optimizer_gib * 4.0 - z0.optimizer_gib).abs() < 1e-9);
    assert!((z2.gradients_gib * 4.0 - z1.gradients_gib).abs() < 1e-9);
    assert!((z3.weights_gib * 4.0 - z2.weights_gib).abs() < 1e-9);
    let pipe = with(PIPE, &["training.offload=true"]);
    let (kept, offloaded) = (run(PIPE).report, run(&pipe).report);
    assert!(offloaded.devices[0].activations_gib < kept.devices[0].activations_gib);
    assert!(offloaded.devices[0].host_offloaded_gib > 0.0);
}

#[test]
fn the_same_plan_gives_the_same_bytes() {
    let sets = with(PIPE, &["training.schedule=zbv", "faults.mtbf_gpu_hours=100"]);
    let (a, b) = (run(&sets), run(&sets));
    assert_eq!(output::to_json(&a.report), output::to_json(&b.report));
    assert_eq!(output::trace_json(&a), output::trace_json(&b));
    assert_eq!(output::report_html(&a), output::report_html(&b));
}

#[test]
fn the_trace_draws_every_pass_on_its_device() {
    let r = run(&with(PIPE, &["training.schedule=zb-h1"]));
    let v: serde_json::Value = serde_json::from_str(&output::trace_json(&r)).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    for d in 0..4 {
        let passes = events
            .iter()
            .filter(|e| e["tid"] == d && ["F", "B", "W"].contains(&e["cat"].as_str().unwrap_or("")))
            .count();
        // 16 micro-batches × F, B and W on one stage each.
        assert_eq!(passes, 48, "device {d}");
    }
    let names = events.iter().filter(|e| e["ph"] == "M").count();
    assert_eq!(names, 4);
}

#[test]
fn elastic_continuation_beats_slow_restarts_when_the_state_survives() {
    // 64 replicas of one GPU, failing often, restarting slowly: carrying on
    // without the failed replica until its replacement returns keeps more
    // of the run than stopping everything for every failure.
    let base = [
        "parallel.dp=64",
        "training.global_batch=64",
        "training.seq_len=1024",
        "training.zero_stage=0",
        "model.name=Llama-2-7B",
        "hardware.device=H200",
        "training.steps=6000",
        "faults.mtbf_gpu_hours=20",
        "faults.restart_s=1800",
        "faults.checkpoint=async",
        "faults.replications=8",
    ];
    let restart = run(&base).report;
    let elastic = run(&with(&base, &["faults.elastic=true", "faults.repair_s=600"])).report;
    assert!(restart.faults.failures > 1.0, "{:?}", restart.faults);
    assert!(
        elastic.goodput > restart.goodput,
        "{} vs {}",
        elastic.goodput,
        restart.goodput
    );
    assert!(elastic.faults.degraded_s > 0.0 && restart.faults.degraded_s == 0.0);
    // A re-formation that costs more than a restart loses.
    let slow = run(&with(
        &base,
        &[
            "faults.elastic=true",
            "faults.repair_s=600",
            "faults.reconfigure_s=3600",
        ],
    ))
    .report;
    assert!(
        slow.goodput < restart.goodput,
        "{} vs {}",
        slow.goodput,
        restart.goodput
    );
    let e = error(&with(&base, &["faults.elastic=true", "faults.min_dp=65"]));
    assert!(e.contains("faults.min_dp"), "{e}");
}
