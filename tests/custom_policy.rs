//! Policies registered from outside the crate run from a scenario file:
//! a scheduler and a router written here, with only fleetsim's public API.

use fleetsim::cluster::{Router, View};
use fleetsim::prelude::*;
use fleetsim::registry::{Batching, Registry, RouterSpec, SchedulerSpec, TimeModelSpec};
use fleetsim::replica::ReplicaState;
use fleetsim::replica::scheduler::Scheduler;

/// Serves one request at a time: admits the head of the queue (whole
/// prompt) only when nothing runs, else decodes.
struct OneAtATime;

impl Scheduler for OneAtATime {
    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        if st.num_running() == 0 && st.peek_waiting().is_some() {
            st.admit_head(u32::MAX, now);
            return;
        }
        st.make_room_for_decode();
        st.add_decode_step();
    }
}

/// Every request to the replica with the highest index.
struct Last;

impl Router for Last {
    fn route(&mut self, _req: &RequestSpec, view: &View) -> usize {
        view.loads.len() - 1
    }
}

/// Every iteration takes 10 ms.
struct TenMs;

impl TimeModel for TenMs {
    fn iteration(&self, _b: &BatchShape) -> IterationCost {
        IterationCost {
            duration: 10_000_000,
            stage: 10_000_000,
            ..Default::default()
        }
    }
    fn peak_rates(&self) -> (f64, f64) {
        (1.0, 1.0)
    }
}

fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register_scheduler(
        SchedulerSpec::new("one-at-a-time", "one request at a time", |_| Box::new(OneAtATime))
            .batching(Batching::WholePrompt),
    )
    .unwrap();
    r.register_router(RouterSpec::new("last", "the last replica", |_| Box::new(Last)))
        .unwrap();
    r.register_time_model(TimeModelSpec::new("ten-ms", "10 ms per iteration", |_, _| {
        Ok(Box::new(TenMs))
    }))
    .unwrap();
    r
}

#[test]
fn a_scheduler_and_a_router_registered_outside_the_crate_run_from_a_scenario_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    std::fs::write(
        &file,
        r#"
name = "custom"
[model]
name = "Llama-3-8B"
[hardware]
time_model = "ten-ms"
[cluster]
replicas = 3
router = "last"
[scheduler]
kind = "one-at-a-time"
async_output = false           # finishes visible at iteration ends
[workload]
count = 40
"#,
    )
    .unwrap();
    let scenario = load(Some(&file), &[]).unwrap();
    let plan = fleetsim::scenario::validate::plan_with(&scenario, &registry()).unwrap();
    let report = run_plan(&plan, &mut |_| {}).unwrap();
    assert_eq!(report.summary.run.scheduler, "one-at-a-time");
    assert_eq!(report.summary.completed, 40);
    let mut recs: Vec<&RequestRecord> = report.requests.iter().collect();
    assert!(
        recs.iter().all(|r| r.replica == 2),
        "every request on the last replica"
    );
    // One at a time: each request starts after the previous one ended.
    recs.sort_by_key(|r| r.scheduled);
    for w in recs.windows(2) {
        assert!(w[1].scheduled >= w[0].finish, "{} overlaps {}", w[1].id, w[0].id);
    }
    // Alone on its replica, 10 ms per iteration: a prefill and one decode
    // per further token.
    for r in &recs {
        assert_eq!(r.ttft_ns().unwrap() - r.queue_delay_ns().unwrap(), 10_000_000);
        assert_eq!(
            r.finish - r.scheduled,
            10_000_000 * r.output_tokens as u64,
            "request {}",
            r.id
        );
    }
}

#[test]
fn an_unregistered_name_is_an_error_naming_the_key() {
    let sets = ["scheduler.kind=one-at-a-time".to_string()];
    let s = load(None, &sets).unwrap();
    let e = fleetsim::scenario::validate::plan(&s).unwrap_err().to_string();
    assert!(e.contains("scheduler.kind") && e.contains("one-at-a-time"), "{e}");
}
