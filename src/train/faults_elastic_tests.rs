//! Tests of elastic continuation ([`Elastic`]) in the failure/checkpoint
//! model. As in `faults_tests.rs`, wall times are hand-computed from the
//! timelines next to them, every time an exact binary fraction.

use super::*;

/// 12 iterations of 0.75 s, a 1 s write every 4, recovery 1 + 2 s; 4
/// replicas on 8 GPUs, re-forming takes 0.5 s, the state survives, at
/// least 2 replicas run. Fault-free: 1–4 end at 3, write to 4 (durable:
/// 4), 5–8 end at 7, write to 8, 9–12 end at 11. With 3 replicas an
/// iteration takes 0.75·4/3 = 1 s, with 2 0.75·4/2 = 1.5 s.
fn elastic_12(repair_s: f64) -> FaultParams {
    FaultParams {
        iteration_s: 0.75,
        iterations: 12,
        gpus: 8,
        mtbf_gpu_hours: f64::INFINITY,
        detect_s: 1.0,
        restart_s: 2.0,
        checkpoint: CheckpointPolicy::Sync {
            interval_iters: 4,
            write_s: 1.0,
        },
        elastic: Some(Elastic {
            dp: 4,
            reconfigure_s: 0.5,
            repair_s,
            state_survives: true,
            min_dp: 2,
        }),
    }
}

/// `p` with its elastic settings changed by `change`.
fn changed(p: FaultParams, change: impl FnOnce(&mut Elastic)) -> FaultParams {
    let mut elastic = p.elastic.expect("elastic parameters");
    change(&mut elastic);
    FaultParams {
        elastic: Some(elastic),
        ..p
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

/// Asserts (wall, lost, stall, down, degraded, failures) exactly, and that
/// they add up.
fn assert_outcome(p: &FaultParams, o: &FaultOutcome, expected: (f64, f64, f64, f64, f64, f64)) {
    assert_eq!(
        (
            o.wall_s,
            o.lost_work_s,
            o.checkpoint_stall_s,
            o.downtime_s,
            o.degraded_s,
            o.failures
        ),
        expected,
        "(wall, lost, stall, down, degraded, failures) of {o:?}"
    );
    assert_accounted(p, o);
}

#[test]
fn one_replica_out_slows_iterations_until_its_replacement_rejoins() {
    let p = elastic_12(3.0);
    assert_eq!(simulate_with_failures(&p, &[]).unwrap().wall_s, 11.0);
    // Failure at 5.25, half-way through iteration 6 (4.75–5.5): 0.5 s lost,
    // nothing rolls back; down 1 + 0.5 s to 6.75. 3 replicas: 6 ends at
    // 7.75, 7 at 8.75. The replacement is back at 5.25 + 3 = 8.25, during
    // 7, so the job takes it back after 7: pause to 9.25. 8 at full speed
    // ends at 10, write to 11, 9–12 end at 14. Downtime 1.5 + 0.5, degraded
    // 2 × (1 − 0.75) s.
    let o = simulate_with_failures(&p, &[5.25]).unwrap();
    assert_outcome(&p, &o, (14.0, 0.5, 2.0, 2.0, 0.5, 1.0));
    assert_eq!(o.goodput, 9.0 / 14.0);
    assert_eq!(o.lost_gpu_hours, 8.0 * 5.0 / 3600.0);

    // Back at 9.25, during 8 (8.75–9.75): 8 ends degraded, the write after
    // it runs (to 10.75), then the pause to 11.25; 9–12 end at 14.25.
    let p = elastic_12(4.0);
    let o = simulate_with_failures(&p, &[5.25]).unwrap();
    assert_outcome(&p, &o, (14.25, 0.5, 2.0, 2.0, 0.75, 1.0));

    // Without elastic continuation the same failure rolls back to 4 (5 and
    // half of 6 lost: 1.25 s), down 3 s to 8.25; 5–8 end at 11.25, write to
    // 12.25, 9–12 end at 15.25.
    let plain = FaultParams { elastic: None, ..p };
    let o = simulate_with_failures(&plain, &[5.25]).unwrap();
    assert_outcome(&plain, &o, (15.25, 1.25, 2.0, 3.0, 0.0, 1.0));
}

#[test]
fn a_replacement_back_before_the_job_re_forms_joins_without_a_pause() {
    // Back at 5.25 + 1 = 6.25, before the re-formation ends at 6.75: the
    // job resumes with 4 replicas. 6–8 end at 9, write to 10, 9–12 end at
    // 13.
    let p = elastic_12(1.0);
    let o = simulate_with_failures(&p, &[5.25]).unwrap();
    assert_outcome(&p, &o, (13.0, 0.5, 2.0, 1.5, 0.0, 1.0));
}

#[test]
fn without_surviving_state_an_elastic_failure_also_rolls_back() {
    // Failure at 5.25: back to 4, 5 and half of 6 lost (1.25 s); down to
    // 6.75. 3 replicas: 5 ends at 7.75, 6 at 8.75; the replacement (back at
    // 8.25) rejoins: pause to 9.25. 7–8 end at 10.75, write to 11.75, 9–12
    // end at 14.75.
    let p = changed(elastic_12(3.0), |e| e.state_survives = false);
    let o = simulate_with_failures(&p, &[5.25]).unwrap();
    assert_outcome(&p, &o, (14.75, 1.25, 2.0, 2.0, 0.5, 1.0));
}

#[test]
fn two_overlapping_failures_leave_two_replicas_out() {
    // Repairs take 6 s. Failure at 5.25 (0.5 s of 6 lost): down to 6.75,
    // back at 11.25; 6 starts at 1 s per iteration. Failure at 7.25, half
    // of 6 again: down to 8.75, back at 13.25. 2 replicas: 6 ends at
    // 10.25, 7 at 11.75; the first replacement (back at 11.25) rejoins:
    // pause to 12.25. 3 replicas: 8 ends at 13.25, write to 14.25; the
    // second (back at 13.25) rejoins: pause to 14.75; 9–12 end at 17.75.
    // Degraded: 2 × 0.75 + 0.25 s; downtime 1.5 + 1.5 + 0.5 + 0.5 s.
    let p = elastic_12(6.0);
    let o = simulate_with_failures(&p, &[5.25, 7.25]).unwrap();
    assert_outcome(&p, &o, (17.75, 1.0, 2.0, 4.0, 1.75, 2.0));
}

#[test]
fn a_failure_while_taking_a_replica_back_re_forms_again() {
    // As in the first test the job pauses from 8.75 to take the replica
    // back; a failure at 9 (during the pause, nothing in progress) removes
    // another: down to 9 + 1.5 = 10.5 (1.75 s since 8.75), back at 12. 3
    // replicas: 8 ends at 11.5, write to 12.5, pause to 13, 9–12 end at 16.
    let p = elastic_12(3.0);
    let o = simulate_with_failures(&p, &[5.25, 9.0]).unwrap();
    assert_outcome(&p, &o, (16.0, 0.5, 2.0, 1.5 + 1.75 + 0.5, 0.75, 2.0));
}

#[test]
fn a_failure_at_min_dp_restarts_the_whole_job() {
    // The two failures above leave 2 replicas = min_dp. A third at 9.5,
    // half-way through 6 (8.75–10.25), stops the job: back to 4 (5 and
    // 0.75 s of 6 lost), down 1 + 2 s to 12.5 with all 4 replicas; 5–8 end
    // at 15.5, write to 16.5, 9–12 end at 19.5.
    let p = elastic_12(6.0);
    let o = simulate_with_failures(&p, &[5.25, 7.25, 9.5]).unwrap();
    assert_outcome(&p, &o, (19.5, 0.5 + 0.5 + 1.5, 2.0, 1.5 + 1.5 + 3.0, 0.0, 3.0));

    // With min_dp = dp every failure is a full restart: the run without
    // elastic continuation, field for field.
    let rigid = changed(p, |e| e.min_dp = 4);
    let plain = FaultParams { elastic: None, ..p };
    for failures in [&[5.25][..], &[5.25, 7.25, 9.5]] {
        assert_eq!(
            simulate_with_failures(&rigid, failures).unwrap(),
            simulate_with_failures(&plain, failures).unwrap()
        );
    }
}

#[test]
fn elastic_wins_when_restarts_are_slow_and_loses_when_re_forming_is() {
    // The replacement never comes back within the run (repair 1000 s); a
    // failure at 5.25. Elastic: down 1 + reconfigure, then 6–8 (3 s),
    // write (1 s), 9–12 (4 s) at 1 s per iteration. Restart: 5 and half
    // of 6 lost, down 1 + restart, then 5–8 (3 s), write, 9–12 (3 s).
    let run = |restart_s: f64, reconfigure_s: f64| {
        let elastic = changed(
            FaultParams {
                restart_s,
                ..elastic_12(1000.0)
            },
            |e| e.reconfigure_s = reconfigure_s,
        );
        let plain = FaultParams {
            elastic: None,
            ..elastic
        };
        let e = simulate_with_failures(&elastic, &[5.25]).unwrap();
        let r = simulate_with_failures(&plain, &[5.25]).unwrap();
        assert_accounted(&elastic, &e);
        (e.wall_s, r.wall_s)
    };
    // Restart 20 s: elastic 5.25 + 1.5 + 8 = 14.75, restart 5.25 + 21 + 7
    // = 33.25.
    assert_eq!(run(20.0, 0.5), (14.75, 33.25));
    // Re-forming 10 s: elastic 5.25 + 11 + 8 = 24.25, restart 5.25 + 3 + 7
    // = 15.25.
    assert_eq!(run(2.0, 10.0), (24.25, 15.25));
    // Even at equal pauses (2 s) the 7 degraded iterations (1.75 s) cost
    // more than the 0.75 s of rollback elastic saves: 16.25 vs 15.25.
    assert_eq!(run(2.0, 2.0), (16.25, 15.25));
}

/// 100,000 iterations of 1 s on 512 GPUs failing every hour, a 20 s write
/// every 300, 8 replicas of which at least 6 run, back after 30 min.
fn hourly(state_survives: bool) -> FaultParams {
    FaultParams {
        iteration_s: 1.0,
        iterations: 100_000,
        gpus: 512,
        mtbf_gpu_hours: 512.0,
        detect_s: 30.0,
        restart_s: 600.0,
        checkpoint: CheckpointPolicy::Sync {
            interval_iters: 300,
            write_s: 20.0,
        },
        elastic: Some(Elastic {
            dp: 8,
            reconfigure_s: 60.0,
            repair_s: 1800.0,
            state_survives,
            min_dp: 6,
        }),
    }
}

#[test]
fn the_wall_time_adds_up_with_degraded_time() {
    for state_survives in [true, false] {
        let p = hourly(state_survives);
        let o = simulate(&p, 11).unwrap();
        assert!(o.failures > 10.0 && o.degraded_s > 0.0, "{o:?}");
        assert_accounted(&p, &o);
        assert_eq!(o.lost_gpu_hours, 512.0 * (o.wall_s - 100_000.0) / 3600.0);
        // Slow restarts: continuing elastically beats restarting.
        let plain = FaultParams { elastic: None, ..p };
        let r = simulate(&plain, 11).unwrap();
        assert!(o.goodput > r.goodput, "elastic {o:?} vs restart {r:?}");
        if state_survives {
            // Only the iterations cut by failures are lost, and the work
            // since the checkpoint at the rare full restarts (a third
            // failure within 30 min of two others).
            assert!(o.lost_work_s < r.lost_work_s / 5.0, "{o:?} vs {r:?}");
        }
    }
}

#[test]
fn an_elastic_run_is_determined_by_its_seed() {
    let p = hourly(true);
    let a = simulate(&p, 42).unwrap();
    assert_eq!(simulate(&p, 42).unwrap(), a);
    assert_ne!(simulate(&p, 43).unwrap(), a);
    // The mean of two replications averages degraded_s too.
    let first = simulate_rng(&p, stream(9, 0)).unwrap();
    let second = simulate_rng(&p, stream(9, 1)).unwrap();
    assert_ne!(first.degraded_s, second.degraded_s);
    assert_eq!(
        expected(&p, 2, 9).unwrap().degraded_s,
        (first.degraded_s + second.degraded_s) / 2.0
    );
}

#[test]
fn elastic_validation_names_the_key() {
    let good = elastic_12(3.0);
    assert!(good.validate().is_ok());
    let cases = [
        ("elastic_dp", changed(good, |e| e.dp = 0)),
        // 16 replicas of 8 GPUs.
        (
            "elastic_dp",
            changed(good, |e| {
                e.dp = 16;
                e.min_dp = 1;
            }),
        ),
        ("min_dp", changed(good, |e| e.min_dp = 0)),
        ("min_dp", changed(good, |e| e.min_dp = 5)),
        ("reconfigure_s", changed(good, |e| e.reconfigure_s = -1.0)),
        ("reconfigure_s", changed(good, |e| e.reconfigure_s = f64::NAN)),
        ("repair_s", changed(good, |e| e.repair_s = f64::INFINITY)),
    ];
    for (key, params) in cases {
        super::tests::assert_rejected_naming(key, &params);
        assert!(expected(&params, 1, 0).is_err(), "{key}");
    }
    // min_dp = dp and a single replica are valid.
    assert!(changed(good, |e| e.min_dp = 4).validate().is_ok());
    assert!(
        changed(good, |e| {
            e.dp = 1;
            e.min_dp = 1;
        })
        .validate()
        .is_ok()
    );
}
