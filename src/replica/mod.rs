//! A replica: one model instance on `tp × pp` devices, with its request
//! queues, its KV-cache pool and a pluggable [`scheduler::Scheduler`] that
//! forms each iteration's batch.
//!
//! The replica runs one iteration at a time. `Replica::start_iteration`
//! asks the scheduler for a batch and prices it with the time model;
//! `Replica::finish_iteration` applies its effects (prefill progress,
//! emitted tokens, finished requests) when the engine reaches its end time.
//!
//! Cost per iteration is independent of the batch size (see [`state`]):
//! decoding sequences advance together, so the replica keeps a decode step
//! counter and running sums instead of touching every sequence each step.

pub(crate) mod handoff;
pub mod memory;
pub(crate) mod prefix_cache;
pub(crate) mod queue;
pub mod scheduler;
pub mod state;
pub mod swap;

use crate::metrics::{Metrics, ReplicaSample};
use crate::timing::{IterationCost, TimeModel};
use crate::units::{Nanos, secs_to_nanos};
use crate::workload::RequestSpec;
use scheduler::Scheduler;
pub use state::ReplicaState;

/// A replica and its scheduling policy.
pub(crate) struct Replica {
    pub state: ReplicaState,
    scheduler: Box<dyn Scheduler>,
    /// Cost of the iteration in flight (valid while `state.busy()`).
    cost: IterationCost,
    started: Nanos,
}

impl Replica {
    pub fn new(mut state: ReplicaState, scheduler: Box<dyn Scheduler>) -> Self {
        state.set_waiting_indexes(scheduler.waiting_indexes());
        Replica {
            state,
            scheduler,
            cost: IterationCost::default(),
            started: 0,
        }
    }

    /// Accepts a routed request (or rejects it, recording why, if it can never be served).
    pub fn enqueue(&mut self, spec: RequestSpec, now: Nanos, metrics: &mut Metrics) {
        self.state.enqueue(spec, now, metrics);
    }

    /// Forms and prices the next batch. Returns the iteration's end time, or
    /// `None` when there is nothing to run (the replica goes idle and makes
    /// any outputs still pending visible).
    pub fn start_iteration(
        &mut self,
        now: Nanos,
        model: &dyn TimeModel,
        metrics: &mut Metrics,
    ) -> Option<Nanos> {
        debug_assert!(!self.state.busy());
        self.state.begin_batch();
        if self.state.has_work() {
            self.scheduler.schedule(&mut self.state, now);
        }
        let shape = self.state.batch_shape();
        if shape.is_empty() {
            // Idle: nothing overlaps the previous iteration's output processing.
            self.state.flush_outputs(now, metrics);
            if let Some(t) = self.state.wake_time().filter(|&t| t > now) {
                // The scheduler holds its queue back until `t`: an empty iteration.
                self.cost = IterationCost::default();
                self.started = now;
                self.state.set_busy(true);
                return Some(t);
            }
            if let Some(t) = metrics.tracer() {
                let (pre, res) = self.state.batch_preemptions();
                t.idle(self.state.id, now, pre, res, &self.state.sample());
            }
            return None;
        }
        self.cost = model.iteration(&shape);
        let swap = self.state.batch_swap_secs();
        if swap > 0.0 {
            // Swap I/O: before the step (vLLM), or overlapped with it (FastSwitch).
            let io = secs_to_nanos(swap);
            let overlap = self.state.options().swap.is_some_and(|m| m.overlap);
            let gpu = self.cost.duration - self.cost.host;
            self.cost.duration += if overlap { io.saturating_sub(gpu) } else { io };
        }
        if let Some(t) = metrics.tracer() {
            let (pre, res) = self.state.batch_preemptions();
            t.iteration(
                self.state.id,
                now,
                &shape,
                &self.cost,
                model,
                pre,
                res,
                &self.state.sample(),
            );
        }
        // The previous iteration's outputs are processed once this one is
        // scheduled and launched (vLLM ≥ 0.6 async output processing).
        self.state
            .flush_outputs(now.saturating_add(self.cost.host), metrics);
        self.started = now;
        self.state.set_busy(true);
        Some(now.saturating_add(self.cost.duration.max(1)))
    }

    /// Applies the effects of the iteration in flight, which ends at `now`.
    pub fn finish_iteration(&mut self, now: Nanos, metrics: &mut Metrics) {
        let shape = self.state.batch_shape();
        if !shape.is_empty() {
            metrics.record_iteration(self.state.id, self.started, &shape, &self.cost);
        }
        self.state.complete_batch(now, metrics);
        self.state.set_busy(false);
    }

    /// When the outputs of the iteration that ended at `now` become
    /// visible, once [`Replica::start_iteration`] has been called at `now`:
    /// after the host part (scheduling and launch) of the iteration it
    /// started, or `now` if it started none (it idled and flushed).
    pub fn outputs_visible(&self, now: Nanos) -> Nanos {
        if self.state.busy() && self.started == now {
            now.saturating_add(self.cost.host)
        } else {
            now
        }
    }

    pub fn sample(&self) -> ReplicaSample {
        self.state.sample()
    }
}
