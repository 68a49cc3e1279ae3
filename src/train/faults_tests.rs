//! Tests of the failure/checkpoint model. Wall times are hand-computed from
//! the timelines written next to them (all times are exact binary fractions,
//! so the arithmetic is exact); the statistical tests compare policies or
//! check Young's optimum, never a stored value.

use super::*;

/// 1-second iterations, no failures, no checkpoints.
fn base(iterations: u64) -> FaultParams {
    FaultParams {
        iteration_s: 1.0,
        iterations,
        gpus: 8,
        mtbf_gpu_hours: f64::INFINITY,
        detect_s: 1.0,
        restart_s: 2.0,
        checkpoint: CheckpointPolicy::None,
        elastic: None,
    }
}

fn with(checkpoint: CheckpointPolicy, iterations: u64) -> FaultParams {
    FaultParams {
        checkpoint,
        ..base(iterations)
    }
}

/// Every wall second is useful, lost, stalled, down or degraded.
fn assert_accounted(p: &FaultParams, o: &FaultOutcome) {
    let sum = p.ideal_s() + o.lost_work_s + o.checkpoint_stall_s + o.downtime_s + o.degraded_s;
    assert!(
        (o.wall_s - sum).abs() <= 1e-9 * o.wall_s,
        "{o:?}: parts sum to {sum}"
    );
}

/// Asserts the outcome's wall, lost, stall and downtime exactly.
fn assert_outcome(o: &FaultOutcome, wall: f64, lost: f64, stall: f64, down: f64, failures: f64) {
    assert_eq!(
        (
            o.wall_s,
            o.lost_work_s,
            o.checkpoint_stall_s,
            o.downtime_s,
            o.failures
        ),
        (wall, lost, stall, down, failures),
        "(wall, lost, stall, down, failures) of {o:?}"
    );
}

#[test]
fn without_failures_goodput_is_ideal_over_ideal_plus_stalls() {
    // 100 iterations of 1 s, a 2 s write every 10: checkpoints after
    // iterations 10, 20, ..., 90 — 9, none after the last — so 18 s stalled.
    let sync = with(
        CheckpointPolicy::Sync {
            interval_iters: 10,
            write_s: 2.0,
        },
        100,
    );
    let o = simulate_with_failures(&sync, &[]).unwrap();
    assert_outcome(&o, 118.0, 0.0, 18.0, 0.0, 0.0);
    assert_eq!(o.goodput, 100.0 / 118.0);
    // The random source draws no failure at an infinite MTBF.
    assert_eq!(simulate(&sync, 3).unwrap(), o);

    // In memory: 9 stalls of 0.5 s.
    let memory = with(
        CheckpointPolicy::InMemory {
            interval_iters: 10,
            snapshot_s: 0.5,
        },
        100,
    );
    assert_eq!(simulate_with_failures(&memory, &[]).unwrap().wall_s, 104.5);

    // No checkpoints, no failures: the ideal time.
    let none = simulate_with_failures(&base(100), &[]).unwrap();
    assert_eq!(
        (none.wall_s, none.goodput, none.lost_gpu_hours),
        (100.0, 1.0, 0.0)
    );
}

#[test]
fn an_async_snapshot_waits_for_the_previous_flush() {
    // Snapshot 1 s, flush 15 s, a checkpoint every 10 iterations of 1 s.
    // Iteration 10 ends at 10: snapshot to 11, flush to 26. Iteration 20
    // ends at 21: wait to 26 (5 s), snapshot to 27, flush to 42; every later
    // checkpoint likewise stalls 5 + 1 s. 9 checkpoints: 1 + 8·6 = 49 s.
    let p = with(
        CheckpointPolicy::Async {
            interval_iters: 10,
            snapshot_s: 1.0,
            flush_s: 15.0,
        },
        100,
    );
    let o = simulate_with_failures(&p, &[]).unwrap();
    assert_outcome(&o, 149.0, 0.0, 49.0, 0.0, 0.0);

    // A flush shorter than the interval never makes training wait.
    let quick = FaultParams {
        checkpoint: p.checkpoint.with_interval(20),
        ..p
    };
    assert_eq!(
        simulate_with_failures(&quick, &[]).unwrap().checkpoint_stall_s,
        4.0
    );
}

#[test]
fn without_checkpoints_a_failure_restarts_the_run() {
    // 10 iterations; recovery 1 + 2 s. Failure at 4.5: 4.5 s lost, down to
    // 7.5. Failure at 10: 2.5 s into the second attempt, down to 13, and
    // the third attempt ends at 23.
    let p = base(10);
    let o = simulate_with_failures(&p, &[4.5, 10.0]).unwrap();
    assert_outcome(&o, 23.0, 7.0, 0.0, 6.0, 2.0);
    assert_eq!(o.goodput, 10.0 / 23.0);
    // A failure after the run ended costs nothing.
    assert_eq!(simulate_with_failures(&p, &[10.0]).unwrap().wall_s, 10.0);
}

/// 10 iterations, a 1 s write every 4: fault-free, iterations 1–4 end at
/// 4, the write at 5 (durable: 4), 5–8 end at 9, the write at 10, 9–10 end
/// at 12. Recovery takes 1 + 2 s.
fn sync_10() -> FaultParams {
    with(
        CheckpointPolicy::Sync {
            interval_iters: 4,
            write_s: 1.0,
        },
        10,
    )
}

#[test]
fn a_sync_failure_rolls_back_to_the_last_write() {
    let p = sync_10();
    assert_eq!(simulate_with_failures(&p, &[]).unwrap().wall_s, 12.0);

    // Failure at 7.5: iterations 5–6 done and half of 7 lost (2.5 s), down
    // to 10.5; redo 5–8 to 14.5, write to 15.5, 9–10 end at 17.5.
    let o = simulate_with_failures(&p, &[7.5]).unwrap();
    assert_outcome(&o, 17.5, 2.5, 2.0, 3.0, 1.0);

    // A second failure at 15, halfway through the second write of
    // checkpoint 8: back to 4 again (5–8 lost: 4 s), 0.5 s of write wasted;
    // down to 18, 5–8 end at 22, write to 23, 9–10 end at 25.
    let o = simulate_with_failures(&p, &[7.5, 15.0]).unwrap();
    assert_outcome(&o, 25.0, 6.5, 2.5, 6.0, 2.0);
    assert_accounted(&p, &o);
}

#[test]
fn a_failure_during_a_write_loses_it_and_one_at_its_end_does_not() {
    let p = sync_10();
    // At 4.5, halfway through the first write: back to the start (4 s lost),
    // down to 7.5; 1–4 end at 11.5, write to 12.5, 5–8 end at 16.5, write to
    // 17.5, 9–10 end at 19.5.
    let o = simulate_with_failures(&p, &[4.5]).unwrap();
    assert_outcome(&o, 19.5, 4.0, 2.5, 3.0, 1.0);
    // At 5, the instant the write ends: checkpoint 4 holds, nothing is lost;
    // down to 8, 5–8 end at 12, write to 13, 9–10 end at 15.
    let o = simulate_with_failures(&p, &[5.0]).unwrap();
    assert_outcome(&o, 15.0, 0.0, 2.0, 3.0, 1.0);
}

#[test]
fn a_failure_during_recovery_starts_it_over() {
    // After the failure at 7.5 recovery would end at 10.5; a failure at 8
    // moves it to 11 (downtime 3.5), and the run ends 0.5 s later than with
    // one failure.
    let p = sync_10();
    let o = simulate_with_failures(&p, &[7.5, 8.0]).unwrap();
    assert_outcome(&o, 18.0, 2.5, 2.0, 3.5, 2.0);
}

/// 20 iterations, snapshot 1 s, flush 4 s every 5, recovery 1 + 1 s.
/// Fault-free: 1–5 end at 5, snapshot to 6, flush to 10 (durable: 5); 6–10
/// end at 11, snapshot to 12, flush to 16 (durable: 10); 11–15 end at 17,
/// snapshot to 18; 16–20 end at 23.
fn async_20() -> FaultParams {
    FaultParams {
        restart_s: 1.0,
        ..with(
            CheckpointPolicy::Async {
                interval_iters: 5,
                snapshot_s: 1.0,
                flush_s: 4.0,
            },
            20,
        )
    }
}

#[test]
fn a_failure_during_a_flush_rolls_back_to_the_previous_durable_checkpoint() {
    let p = async_20();
    assert_eq!(simulate_with_failures(&p, &[]).unwrap().wall_s, 23.0);

    // At 14, while checkpoint 10 flushes (12–16): back to 5; 6–10 and
    // 11–12 are lost (7 s); down to 16; 6–10 end at 21, snapshot to 22,
    // 11–15 end at 27 (flush done at 26), snapshot to 28, 16–20 end at 33.
    let o = simulate_with_failures(&p, &[14.0]).unwrap();
    assert_outcome(&o, 33.0, 7.0, 4.0, 2.0, 1.0);
    assert_accounted(&p, &o);

    // At 16, the instant that flush ends, checkpoint 10 holds: only 11–14
    // are lost (4 s); down to 18, 11–15 end at 23, snapshot to 24, 16–20
    // end at 29.
    let o = simulate_with_failures(&p, &[16.0]).unwrap();
    assert_outcome(&o, 29.0, 4.0, 3.0, 2.0, 1.0);

    // At 16.5: 11–14 and half of 15 lost, everything else as at 16.
    let o = simulate_with_failures(&p, &[16.5]).unwrap();
    assert_outcome(&o, 29.5, 4.5, 3.0, 2.0, 1.0);
}

#[test]
fn a_failure_while_waiting_for_a_flush_loses_the_unflushed_checkpoint() {
    // 30 iterations, snapshot 1 s, flush 15 s every 10, recovery 1 + 1 s.
    // 1–10 end at 10, snapshot to 11, flush to 26.
    let p = FaultParams {
        restart_s: 1.0,
        ..with(
            CheckpointPolicy::Async {
                interval_iters: 10,
                snapshot_s: 1.0,
                flush_s: 15.0,
            },
            30,
        )
    };
    // 11–20 end at 21, then training waits for the flush to 26. A failure
    // at 23, 2 s into the wait, finds nothing durable: 20 iterations lost,
    // down to 25; 1–10 end at 35, snapshot to 36 (flush to 51), 11–20 end
    // at 46, wait to 51, snapshot to 52, 21–30 end at 62.
    let o = simulate_with_failures(&p, &[23.0]).unwrap();
    assert_outcome(&o, 62.0, 20.0, 1.0 + 2.0 + 1.0 + 5.0 + 1.0, 2.0, 1.0);
}

#[test]
fn an_in_memory_checkpoint_is_durable_when_its_stall_ends() {
    // 20 iterations, 1 s snapshot every 5, recovery 1 + 1 s. Snapshot of 5
    // at 5–6; a failure at 7 loses only iteration 6 (1 s), down to 9; 6–10
    // end at 14, snapshot to 15, 11–15 end at 20, snapshot to 21, 16–20 end
    // at 26. The async flush of the same snapshot would still be running at
    // 7, and everything since the start would be lost.
    let memory = FaultParams {
        checkpoint: CheckpointPolicy::InMemory {
            interval_iters: 5,
            snapshot_s: 1.0,
        },
        ..async_20()
    };
    let o = simulate_with_failures(&memory, &[7.0]).unwrap();
    assert_outcome(&o, 26.0, 1.0, 3.0, 2.0, 1.0);
    let flushed = simulate_with_failures(&async_20(), &[7.0]).unwrap();
    assert_eq!(flushed.lost_work_s, 6.0);
}

#[test]
fn lost_gpu_hours_are_gpus_times_wall_minus_ideal() {
    // 8 GPUs, wall 23 s against an ideal 10 s (the restart case above).
    let o = simulate_with_failures(&base(10), &[4.5, 10.0]).unwrap();
    assert_eq!(o.lost_gpu_hours, 8.0 * 13.0 / 3600.0);
    // And for a random run, with the wall time split into its parts.
    let p = FaultParams {
        gpus: 512,
        mtbf_gpu_hours: 512.0,
        ..with(
            CheckpointPolicy::Sync {
                interval_iters: 300,
                write_s: 20.0,
            },
            100_000,
        )
    };
    let o = simulate(&p, 11).unwrap();
    assert!(o.failures > 10.0, "{o:?}");
    assert_eq!(o.lost_gpu_hours, 512.0 * (o.wall_s - 100_000.0) / 3600.0);
    assert_accounted(&p, &o);
}

/// 1024 GPUs of 6144 h MTBF: the job fails every 6 h (21,600 s) on average.
fn six_hour_job(checkpoint: CheckpointPolicy, iterations: u64) -> FaultParams {
    FaultParams {
        gpus: 1024,
        mtbf_gpu_hours: 6144.0,
        detect_s: 30.0,
        restart_s: 90.0,
        ..with(checkpoint, iterations)
    }
}

#[test]
fn a_seed_determines_the_run() {
    let p = six_hour_job(
        CheckpointPolicy::Sync {
            interval_iters: 1000,
            write_s: 60.0,
        },
        500_000,
    );
    assert_eq!(p.job_mtbf_s(), 21_600.0);
    let a = simulate(&p, 42).unwrap();
    assert!(a.failures > 5.0, "{a:?}");
    assert_eq!(simulate(&p, 42).unwrap(), a);
    assert_ne!(simulate(&p, 43).unwrap(), a);
    assert_eq!(expected(&p, 5, 1).unwrap(), expected(&p, 5, 1).unwrap());
    assert_ne!(expected(&p, 5, 1).unwrap(), expected(&p, 5, 2).unwrap());
    // The mean of one replication is that replication, of two their mean.
    let first = simulate_rng(&p, stream(9, 0)).unwrap();
    let second = simulate_rng(&p, stream(9, 1)).unwrap();
    assert_ne!(first, second);
    assert_eq!(expected(&p, 1, 9).unwrap(), first);
    let mean = |a: f64, b: f64| (a + b) / 2.0;
    let two = FaultOutcome {
        wall_s: mean(first.wall_s, second.wall_s),
        goodput: mean(first.goodput, second.goodput),
        failures: mean(first.failures, second.failures),
        lost_work_s: mean(first.lost_work_s, second.lost_work_s),
        checkpoint_stall_s: mean(first.checkpoint_stall_s, second.checkpoint_stall_s),
        downtime_s: mean(first.downtime_s, second.downtime_s),
        degraded_s: mean(first.degraded_s, second.degraded_s),
        lost_gpu_hours: mean(first.lost_gpu_hours, second.lost_gpu_hours),
    };
    assert_eq!(expected(&p, 2, 9).unwrap(), two);
}

#[test]
fn the_swept_optimum_is_youngs_interval() {
    // C = 60 s, M = 6 h, 1 s iterations: Young's √(2CM) = 1610 s. Daly's
    // higher-order estimate, √(2CM)·(1 + ⅓√(C/2M) + C/18M) − C ≈ 1570 s,
    // predicts a ratio near 0.975. Near the optimum goodput changes by only
    // ~4e-4 at ±10 %, so the means use 120 runs of 1000·M each (the noise
    // of a difference, with common random numbers, is ~1e-4).
    let p = six_hour_job(
        CheckpointPolicy::Sync {
            interval_iters: 1,
            write_s: 60.0,
        },
        21_600_000,
    );
    let young = young_interval_s(&p).unwrap();
    assert!((young - 1609.97).abs() < 0.01, "{young}");
    // ±40 % in steps of ~2 %.
    let candidates = candidate_intervals(&p, 35, 1.4).unwrap();
    assert_eq!(candidates.len(), 35);
    let (best, outcome) = optimal_interval(&p, &candidates, 120, 5).unwrap();
    let ratio = best as f64 / young;
    assert!(
        (0.9..=1.1).contains(&ratio),
        "optimum {best} iterations, {ratio} × Young's"
    );
    // The first-order goodput there: 1 − C/τ − τ/2M − (detect + restart)/M.
    assert!(
        (outcome.goodput - (1.0 - 2.0 * 60.0 / young - 120.0 / 21_600.0)).abs() < 0.01,
        "{outcome:?}"
    );
}

#[test]
fn async_snapshots_beat_sync_writes_of_the_same_total_time() {
    // Both take 60 s per checkpoint every 600 s, but async stalls only the
    // 5 s snapshot; its durable point lags by the 55 s flush.
    let sync = six_hour_job(
        CheckpointPolicy::Sync {
            interval_iters: 600,
            write_s: 60.0,
        },
        1_000_000,
    );
    let asynchronous = FaultParams {
        checkpoint: CheckpointPolicy::Async {
            interval_iters: 600,
            snapshot_s: 5.0,
            flush_s: 55.0,
        },
        ..sync
    };
    let s = expected(&sync, 20, 3).unwrap();
    let a = expected(&asynchronous, 20, 3).unwrap();
    assert!(a.goodput > s.goodput + 0.05, "async {a:?} vs sync {s:?}");
    assert!(a.checkpoint_stall_s < s.checkpoint_stall_s / 5.0);
}

#[test]
fn in_memory_checkpoints_beat_async_ones_when_failures_are_frequent() {
    // The job fails every 30 min; both stall 5 s every 300 s, but async is
    // durable only after a 300 s flush (which never makes training wait:
    // 300 s of compute + 5 s of snapshot outlast it).
    let memory = FaultParams {
        gpus: 1024,
        mtbf_gpu_hours: 512.0,
        ..with(
            CheckpointPolicy::InMemory {
                interval_iters: 300,
                snapshot_s: 5.0,
            },
            200_000,
        )
    };
    let flushed = FaultParams {
        checkpoint: CheckpointPolicy::Async {
            interval_iters: 300,
            snapshot_s: 5.0,
            flush_s: 300.0,
        },
        ..memory
    };
    assert_eq!(memory.job_mtbf_s(), 1800.0);
    let m = expected(&memory, 20, 8).unwrap();
    let a = expected(&flushed, 20, 8).unwrap();
    assert!(m.goodput > a.goodput + 0.05, "in memory {m:?} vs async {a:?}");
    assert!(m.lost_work_s < a.lost_work_s);
}

#[test]
fn a_run_that_cannot_finish_ends_with_an_error() {
    // The job fails every second, against 100 s between checkpoints.
    let p = FaultParams {
        detect_s: 0.0,
        restart_s: 0.1,
        gpus: 3600,
        mtbf_gpu_hours: 1.0,
        ..with(
            CheckpointPolicy::Sync {
                interval_iters: 100,
                write_s: 1.0,
            },
            1000,
        )
    };
    let e = simulate(&p, 1).unwrap_err();
    assert!(matches!(e, Error::Infeasible(_)), "{e}");
    assert!(e.to_string().contains("does not finish"), "{e}");
    // Recovery slower than the MTBF: failures during recovery pile up.
    let slow = FaultParams {
        restart_s: 100.0,
        checkpoint: CheckpointPolicy::None,
        ..p
    };
    assert!(matches!(simulate(&slow, 1), Err(Error::Infeasible(_))));
    // The sweep skips the intervals that do not finish and keeps the rest.
    let (best, _) = optimal_interval(&p, &[100, 1], 2, 1).unwrap();
    assert_eq!(best, 1);
    assert!(matches!(
        optimal_interval(&p, &[100], 2, 1),
        Err(Error::Infeasible(_))
    ));
}

#[test]
fn candidates_surround_youngs_interval() {
    // √(2·60·21600) = 1610 iterations of 1 s; span 2 halves and doubles it.
    let p = six_hour_job(
        CheckpointPolicy::Sync {
            interval_iters: 1,
            write_s: 60.0,
        },
        1_000_000,
    );
    assert_eq!(candidate_intervals(&p, 3, 2.0).unwrap(), vec![805, 1610, 3220]);
    // Half-second iterations double the counts; a short run caps them.
    let half = FaultParams {
        iteration_s: 0.5,
        iterations: 4000,
        ..p
    };
    assert_eq!(
        candidate_intervals(&half, 3, 2.0).unwrap(),
        vec![1610, 3220, 4000]
    );
    // Without failures, one candidate: never checkpoint.
    let safe = FaultParams {
        mtbf_gpu_hours: f64::INFINITY,
        ..p
    };
    assert_eq!(candidate_intervals(&safe, 3, 2.0).unwrap(), vec![1_000_000]);
}

#[test]
fn validation_names_the_key() {
    let good = six_hour_job(
        CheckpointPolicy::Async {
            interval_iters: 10,
            snapshot_s: 1.0,
            flush_s: 2.0,
        },
        100,
    );
    assert!(good.validate().is_ok());
    let async_with = |snapshot_s, flush_s| FaultParams {
        checkpoint: CheckpointPolicy::Async {
            interval_iters: 10,
            snapshot_s,
            flush_s,
        },
        ..good
    };
    let cases = [
        (
            "iteration_s",
            FaultParams {
                iteration_s: 0.0,
                ..good
            },
        ),
        (
            "iteration_s",
            FaultParams {
                iteration_s: f64::NAN,
                ..good
            },
        ),
        (
            "iterations",
            FaultParams {
                iterations: 0,
                ..good
            },
        ),
        ("gpus", FaultParams { gpus: 0, ..good }),
        (
            "mtbf_hours",
            FaultParams {
                mtbf_gpu_hours: 0.0,
                ..good
            },
        ),
        (
            "mtbf_hours",
            FaultParams {
                mtbf_gpu_hours: -5.0,
                ..good
            },
        ),
        (
            "mtbf_hours",
            FaultParams {
                mtbf_gpu_hours: f64::NAN,
                ..good
            },
        ),
        (
            "detect_s",
            FaultParams {
                detect_s: -1.0,
                ..good
            },
        ),
        (
            "restart_s",
            FaultParams {
                restart_s: f64::INFINITY,
                ..good
            },
        ),
        (
            "checkpoint_interval",
            FaultParams {
                checkpoint: good.checkpoint.with_interval(0),
                ..good
            },
        ),
        ("snapshot_s", async_with(-0.1, 2.0)),
        ("flush_s", async_with(1.0, f64::NAN)),
        (
            "write_s",
            FaultParams {
                checkpoint: CheckpointPolicy::Sync {
                    interval_iters: 10,
                    write_s: -1.0,
                },
                ..good
            },
        ),
        (
            "snapshot_s",
            FaultParams {
                checkpoint: CheckpointPolicy::InMemory {
                    interval_iters: 10,
                    snapshot_s: f64::INFINITY,
                },
                ..good
            },
        ),
    ];
    for (key, params) in cases {
        assert_rejected_naming(key, &params);
    }
    // No failures at all is a valid MTBF.
    assert!(
        FaultParams {
            mtbf_gpu_hours: f64::INFINITY,
            ..good
        }
        .validate()
        .is_ok()
    );

    let none = FaultParams {
        checkpoint: CheckpointPolicy::None,
        ..good
    };
    for message in [
        candidate_intervals(&none, 5, 2.0).unwrap_err().to_string(),
        optimal_interval(&none, &[10], 1, 0).unwrap_err().to_string(),
    ] {
        assert!(message.contains("key `faults.checkpoint`"), "{message}");
    }
    assert!(
        expected(&good, 0, 0)
            .unwrap_err()
            .to_string()
            .contains("replications")
    );
    let unsorted = simulate_with_failures(&good, &[5.0, 2.0])
        .unwrap_err()
        .to_string();
    assert!(unsorted.contains("ascending"), "{unsorted}");
}

#[test]
fn the_wall_cap_is_a_thousand_fault_free_runs() {
    // Failures every 2 s keep a 3 s recovery from ever ending; once they
    // stop, the run ends. The cap is 1000 × the fault-free bound: 12 s of
    // iterations + 2 writes of 1 s for sync (14,000 s), 20 s + 3 × (1 s
    // snapshot + 4 s flush) for async (35,000 s).
    let every_2s_until = |end: f64| -> Vec<f64> {
        (0..)
            .map(|k| 1.0 + 2.0 * f64::from(k))
            .take_while(|&t| t <= end)
            .collect()
    };
    let sync = FaultParams {
        iterations: 12,
        ..sync_10()
    };
    let async_run = FaultParams {
        detect_s: 1.0,
        restart_s: 2.0,
        ..async_20()
    };
    for (p, cap) in [(sync, 14_000.0), (async_run, 35_000.0)] {
        let o = simulate_with_failures(&p, &every_2s_until(cap - 200.0)).unwrap();
        assert!(o.wall_s > cap - 200.0 && o.wall_s < cap, "{o:?}");
        let e = simulate_with_failures(&p, &every_2s_until(cap + 200.0)).unwrap_err();
        assert!(matches!(e, Error::Infeasible(_)), "{e}");
    }
}

#[test]
fn the_sweep_keeps_the_first_of_equal_candidates() {
    // Without failures, intervals of 10 and 20 both take no checkpoint in
    // a 10-iteration run: equal goodput, the first is kept.
    let p = with(
        CheckpointPolicy::Sync {
            interval_iters: 1,
            write_s: 1.0,
        },
        10,
    );
    let (best, outcome) = optimal_interval(&p, &[10, 20], 3, 0).unwrap();
    assert_eq!((best, outcome.goodput), (10, 1.0));
    // And a better later candidate wins over an earlier one.
    let (best, _) = optimal_interval(&p, &[3, 10], 3, 0).unwrap();
    assert_eq!(best, 10);
}

/// `params` is refused by validation, with an error naming `faults.KEY`,
/// and by every entry point.
pub(super) fn assert_rejected_naming(key: &str, params: &FaultParams) {
    let message = params.validate().unwrap_err().to_string();
    assert!(
        message.contains(&format!("key `faults.{key}`")),
        "{key}: {message}"
    );
    assert!(simulate(params, 0).is_err(), "{key}");
    assert!(simulate_with_failures(params, &[]).is_err(), "{key}");
}
