//! The event loop: a deterministic discrete-event simulation of a cluster.
//!
//! Time is integer nanoseconds. There are two kinds of events: the next
//! arrival (one pending at a time, pulled lazily from the workload) and the
//! end of a replica's iteration (at most one per replica, in a min-heap
//! ordered by `(time, replica index)`). All events at the same instant are
//! applied before any idle replica forms its next batch, so a request that
//! arrives exactly when an iteration ends is seen by the next one. Nothing
//! here depends on wall-clock time, hash order or threads: the same plan and
//! seed give the same event sequence.
//!
//! Per event the loop does O(log replicas) work and allocates nothing once
//! its vectors have grown to the run's peak concurrency.

use crate::cluster::{self, Router};
use crate::error::Result;
use crate::metrics::{Metrics, RejectReason, Report, RunInfo};
use crate::output::trace::{TraceOptions, TraceRecorder};
use crate::replica::scheduler;
use crate::replica::{Replica, ReplicaState};
use crate::scenario::validate::Plan;
use crate::timing::TimeModel;
use crate::timing::analytical::{AnalyticalModel, ParallelConfig};
use crate::timing::profile::ProfileModel;
use crate::units::{Nanos, secs_to_nanos};
use crate::workload::{self, RequestSource, RequestSpec};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A ready-to-run simulation of one plan.
pub struct Simulation {
    replicas: Vec<Replica>,
    router: Box<dyn Router>,
    model: Box<dyn TimeModel>,
    source: Box<dyn RequestSource>,
    metrics: Metrics,
    max_model_len: u32,
    sample_interval: Nanos,
    info: RunInfo,
    paranoid: bool,
    /// One KV block's bytes summed over a replica's devices.
    replica_block_bytes: f64,
}

/// Builds the iteration time model a plan asks for.
pub fn time_model(plan: &Plan) -> Result<Box<dyn TimeModel>> {
    let c = &plan.scenario.cluster;
    let analytical = AnalyticalModel::new(
        &plan.model,
        &plan.device,
        plan.weight_dtype,
        plan.kv_dtype,
        ParallelConfig {
            tp: c.tp,
            pp: c.pp,
            devices_per_node: plan.devices_per_node,
        },
        plan.calibration,
    )?;
    match (
        plan.scenario.hardware.time_model.as_str(),
        &plan.scenario.hardware.profile_dir,
    ) {
        ("profile", Some(dir)) => Ok(Box::new(ProfileModel::new(
            dir,
            &plan.model,
            &plan.device,
            plan.weight_dtype,
            analytical,
        )?)),
        _ => Ok(Box::new(analytical)),
    }
}

impl Simulation {
    /// Prepares a simulation: time model, replicas, router, workload source.
    pub fn new(plan: &Plan) -> Result<Simulation> {
        let s = &plan.scenario;
        let model = time_model(plan)?;
        let source = workload::build_source(&s.workload)?;
        Ok(Self::with_source(plan, model, source))
    }

    /// Like [`Simulation::new`] with an explicit time model and request source
    /// (tests use this to drive the engine with hand-made workloads).
    pub fn with_source(plan: &Plan, model: Box<dyn TimeModel>, source: Box<dyn RequestSource>) -> Simulation {
        let s = &plan.scenario;
        let c = &s.cluster;
        let replicas = (0..c.replicas)
            .map(|i| {
                Replica::new(
                    ReplicaState::new(i, plan.memory.num_blocks, plan.replica_options),
                    scheduler::build(&plan.policy),
                )
            })
            .collect();
        let (flops, bw) = model.peak_rates();
        let info = RunInfo {
            scenario: s.name.clone(),
            model: plan.model.name.clone(),
            device: plan.device.name.clone(),
            replicas: c.replicas,
            tp: c.tp,
            pp: c.pp,
            devices: plan.total_devices(),
            scheduler: s.scheduler.kind.clone(),
            router: c.router.clone(),
            seed: s.workload.seed,
            peak_flops: flops * c.replicas as f64,
            peak_hbm_bandwidth: bw * c.replicas as f64,
            kv_blocks_per_replica: plan.memory.num_blocks,
            block_size: s.scheduler.block_size,
        };
        Simulation {
            replicas,
            router: cluster::build(&c.router),
            model,
            source,
            metrics: Metrics::new(c.replicas, &s.metrics, &s.slo),
            max_model_len: plan.max_model_len,
            sample_interval: secs_to_nanos(s.metrics.sample_interval).max(1),
            info,
            paranoid: false,
            replica_block_bytes: plan.memory.block_bytes * plan.total_devices() as f64 / c.replicas as f64,
        }
    }

    /// Records a trace of the run (see [`crate::output::trace`]); off by default.
    pub fn enable_trace(&mut self, opts: &TraceOptions) {
        let rec = TraceRecorder::new(opts, self.info.replicas, self.info.pp);
        self.metrics.set_trace(rec);
    }

    /// Checks every replica's invariants (block accounting, running sums)
    /// after every iteration and that all KV blocks are free at the end;
    /// panics on a violation. O(batch) per iteration: for tests.
    pub fn set_paranoid(&mut self, on: bool) {
        self.paranoid = on;
    }

    /// Runs to completion: every request finishes or is rejected.
    /// `progress` is called with the number of arrivals so far, now and then.
    pub fn run(mut self, progress: &mut dyn FnMut(u64)) -> Report {
        let n = self.replicas.len();
        let mut ends: BinaryHeap<Reverse<(Nanos, u32)>> = BinaryHeap::with_capacity(n);
        let mut dirty: Vec<u32> = Vec::with_capacity(n);
        let mut is_dirty = vec![false; n];
        let mut next_arrival = self.source.next_request();
        let mut arrived = 0u64;
        let mut next_sample: Nanos = 0;
        let mut now: Nanos = 0;
        loop {
            let t_end = ends.peek().map(|r| r.0.0);
            let t_arr = next_arrival.as_ref().map(|r| r.arrival);
            let t = match (t_end, t_arr) {
                (None, None) => break,
                (Some(a), None) | (None, Some(a)) => a,
                (Some(a), Some(b)) => a.min(b),
            };
            debug_assert!(t >= now, "time went backwards");
            while next_sample <= t {
                for r in &self.replicas {
                    self.metrics.record_sample(next_sample, r.state.id, &r.sample());
                }
                next_sample += self.sample_interval;
            }
            now = t;
            while let Some(&Reverse((te, i))) = ends.peek() {
                if te != now {
                    break;
                }
                ends.pop();
                self.replicas[i as usize].finish_iteration(now, &mut self.metrics);
                if self.paranoid {
                    self.check(i);
                }
                mark(&mut dirty, &mut is_dirty, i);
            }
            while next_arrival.as_ref().is_some_and(|r| r.arrival == now) {
                let req = next_arrival.take().expect("checked above");
                let i = self.admit(req, now);
                mark(&mut dirty, &mut is_dirty, i);
                next_arrival = self.source.next_request();
                arrived += 1;
                if arrived.is_multiple_of(4096) {
                    progress(arrived);
                }
            }
            for i in dirty.drain(..) {
                is_dirty[i as usize] = false;
                let r = &mut self.replicas[i as usize];
                if !r.state.busy()
                    && (r.state.has_work() || r.state.has_pending_outputs())
                    && let Some(end) = r.start_iteration(now, self.model.as_ref(), &mut self.metrics)
                {
                    ends.push(Reverse((end, i)));
                }
                if self.paranoid {
                    self.check(i);
                }
            }
        }
        progress(arrived);
        for r in &self.replicas {
            assert!(
                !r.state.has_work() && !r.state.has_pending_outputs(),
                "replica {} ended with requests",
                r.state.id
            );
            if self.paranoid {
                assert_eq!(
                    r.state.leaked_blocks(),
                    0,
                    "replica {} ended holding KV blocks outside its prefix cache",
                    r.state.id
                );
            }
            self.metrics
                .record_memory(&r.state.counters(), self.replica_block_bytes);
        }
        self.metrics.finish(self.info, now)
    }

    fn check(&self, i: u32) {
        if let Err(e) = self.replicas[i as usize].state.check_invariants() {
            panic!("replica {i}: invariant violated: {e}");
        }
    }

    /// Routes an arrival and hands it to its replica; returns the replica index.
    fn admit(&mut self, req: RequestSpec, now: Nanos) -> u32 {
        let i = self.router.route(&req, &self.replicas);
        let r = &mut self.replicas[i];
        if req.prompt_tokens as u64 + req.output_tokens as u64 > self.max_model_len as u64 {
            r.state
                .reject(req, now, RejectReason::ExceedsMaxModelLen, &mut self.metrics);
        } else {
            r.enqueue(req, now, &mut self.metrics);
        }
        i as u32
    }

    /// Replica states (for tests of invariants).
    pub fn replicas(&self) -> impl Iterator<Item = &ReplicaState> {
        self.replicas.iter().map(|r| &r.state)
    }
}

fn mark(dirty: &mut Vec<u32>, is_dirty: &mut [bool], i: u32) {
    if !is_dirty[i as usize] {
        is_dirty[i as usize] = true;
        dirty.push(i);
    }
}
