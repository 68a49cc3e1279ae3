//! The event loop: a deterministic discrete-event simulation of a cluster.
//!
//! Time is integer nanoseconds. There are three kinds of events: the next
//! arrival (the workload announces it, [`Workload::next_arrival`]), the
//! end of a replica's iteration (at most one per replica, in a tournament tree
//! ordered by `(time, replica index)`), and, in disaggregated and semi-PD
//! runs, the arrival of a prefilled request's KV at its decode replica
//! (ordered by `(time, hand-off order)`; see `cluster::disagg`). At one
//! instant, iteration ends are applied first, then KV arrivals, then
//! request arrivals, and only then do idle replicas form their next batch,
//! so a request that arrives exactly when an iteration ends is seen by the
//! next one. Last, the requests that ended at that instant (finished or
//! rejected, in the order they were recorded) are delivered to the workload
//! if it listens ([`Workload::on_complete`]), after the first tokens that
//! became visible at that instant ([`Workload::on_first_token`], if it
//! listens to those): a closed-loop client's next
//! request, sent at that instant, is seen by the next batch. Nothing
//! here depends on wall-clock time, hash order or threads: the same plan and
//! seed give the same event sequence.
//!
//! Per event the loop does O(log replicas) work and allocates nothing once
//! its vectors have grown to the run's peak concurrency.

use crate::cluster::disagg::{Partitioned, PoolPlan, Role, Runtime};
use crate::cluster::index::{Board, MinTree};
use crate::cluster::{Load, Router, View};
use crate::error::Result;
use crate::metrics::{Metrics, RejectReason, Report, RunInfo};
use crate::output::trace::{TraceOptions, TraceRecorder};
use crate::registry::{RouterArgs, TimeModelSpec};
use crate::replica::scheduler::Limits;
use crate::replica::{Replica, ReplicaState};
use crate::scenario::validate::Plan;
use crate::timing::TimeModel;
use crate::timing::analytical::{AnalyticalModel, ParallelConfig};
use crate::timing::pipeline::Pipelined;
use crate::timing::profile::ProfileModel;
use crate::units::{Nanos, secs_to_nanos};
use crate::workload::feedback::{Completion, FirstToken, OpenLoop, Workload};
use crate::workload::{self, RequestSource, RequestSpec};

/// The end-time key of a replica with no iteration in flight.
const IDLE: Nanos = Nanos::MAX;

/// A pool of replicas at run time: its role, its replicas' index range and
/// its time model.
struct Pool {
    role: Role,
    first: u32,
    count: u32,
    model: Box<dyn TimeModel>,
}

/// A ready-to-run simulation of one plan.
pub struct Simulation {
    replicas: Vec<Replica>,
    /// Pool index of each replica.
    pool_of: Vec<u8>,
    pools: Vec<Pool>,
    router: Box<dyn Router>,
    /// What the router sees of each replica of the first pool (exact:
    /// refreshed before each routing decision; else every `staleness`),
    /// indexed for the router's least-loaded questions (changed only
    /// through the board, so the indexes match the reports).
    board: Board,
    /// Routed-to replicas whose state changed since their report was last
    /// taken (exact reports only): their reports are refreshed just before
    /// the next routing decision, so the router sees exactly the state an
    /// update after every change would show it, at one refresh per replica
    /// per arrival instead of one per change.
    changed: Vec<u32>,
    is_changed: Vec<bool>,
    staleness: Nanos,
    next_refresh: Nanos,
    pd: Option<Runtime>,
    workload: Box<dyn Workload>,
    /// Completions taken from the metrics, on their way to the workload
    /// (only when it listens).
    completions: Vec<Completion>,
    listening: bool,
    /// First tokens on their way to the workload (only when it listens to them).
    first_tokens: Vec<FirstToken>,
    listening_first_tokens: bool,
    metrics: Metrics,
    max_model_len: u32,
    limits: Limits,
    block_size: u32,
    slo_ttft: f64,
    info: RunInfo,
    paranoid: bool,
    /// Requests routed to each replica (conservation checks).
    routed: Vec<u64>,
    /// One KV block's bytes summed over a replica's devices, per pool.
    block_bytes: Vec<f64>,
}

/// Builds the iteration time model a plan asks for (its first pool's).
pub fn time_model(plan: &Plan) -> Result<Box<dyn TimeModel>> {
    pool_time_model(plan, &plan.pools[0])
}

/// Builds the iteration time model of one pool of a plan (the one
/// `hardware.time_model` names, from the plan's registry entry).
pub(crate) fn pool_time_model(plan: &Plan, pool: &PoolPlan) -> Result<Box<dyn TimeModel>> {
    plan.time_model.build(plan, pool)
}

/// The analytical (roofline) model of one pool: what `"analytical"` builds,
/// and a base a library user's own time model can wrap.
pub(crate) fn analytical_model(plan: &Plan, pool: &PoolPlan) -> Result<AnalyticalModel> {
    AnalyticalModel::new(
        &plan.model,
        &pool.device,
        plan.weight_dtype,
        plan.kv_dtype,
        ParallelConfig {
            tp: pool.tp,
            pp: pool.pp,
            devices_per_node: pool.devices_per_node,
        },
        pool.calibration,
    )
}

/// The built-in time models (see [`crate::registry`]).
pub(crate) fn builtin_time_models() -> Vec<TimeModelSpec> {
    vec![
        TimeModelSpec::new(
            "analytical",
            "roofline of the model's operators on the device, with fitted efficiencies",
            |plan, pool| Ok(Box::new(analytical_model(plan, pool)?)),
        ),
        TimeModelSpec::new(
            "profile",
            "measured operator profiles (hardware.profile_dir), the analytical model elsewhere",
            |plan, pool| {
                let analytical = analytical_model(plan, pool)?;
                match &plan.scenario.hardware.profile_dir {
                    Some(dir) => Ok(Box::new(ProfileModel::new(
                        dir,
                        &plan.model,
                        &pool.device,
                        plan.weight_dtype,
                        analytical,
                    )?)),
                    None => Ok(Box::new(analytical)),
                }
            },
        ),
    ]
}

impl Simulation {
    /// Prepares a simulation: time models, replicas, router, workload source.
    pub fn new(plan: &Plan) -> Result<Simulation> {
        let s = &plan.scenario;
        let models = plan
            .pools
            .iter()
            .map(|p| pool_time_model(plan, p))
            .collect::<Result<Vec<_>>>()?;
        let source = workload::build(&s.workload)?;
        Ok(Self::with_workload(plan, models, source))
    }

    /// Like [`Simulation::new`] with an explicit time model for the first
    /// pool (the others are built from the plan) and request source (tests
    /// use this to drive the engine with hand-made workloads).
    pub fn with_source(plan: &Plan, model: Box<dyn TimeModel>, source: Box<dyn RequestSource>) -> Simulation {
        let mut models = vec![model];
        for p in &plan.pools[1..] {
            models.push(pool_time_model(plan, p).expect("the plan's pools have valid time models"));
        }
        Self::with_models(plan, models, source)
    }

    /// Like [`Simulation::new`] with one explicit time model per pool and
    /// an open-loop request source.
    pub fn with_models(
        plan: &Plan,
        models: Vec<Box<dyn TimeModel>>,
        source: Box<dyn RequestSource>,
    ) -> Simulation {
        Self::with_workload(plan, models, Box::new(OpenLoop::new(source)))
    }

    /// Like [`Simulation::new`] with one explicit time model per pool and a
    /// workload, which may listen to how its requests end.
    pub fn with_workload(
        plan: &Plan,
        models: Vec<Box<dyn TimeModel>>,
        workload: Box<dyn Workload>,
    ) -> Simulation {
        assert_eq!(models.len(), plan.pools.len(), "one time model per pool");
        let s = &plan.scenario;
        let c = &s.cluster;
        let mut replicas = Vec::new();
        let mut pool_of = Vec::new();
        let mut pools = Vec::new();
        let (mut flops, mut bw) = (0.0, 0.0);
        let mut device_names: Vec<&str> = Vec::new();
        // Pipeline-parallel replicas run `pp` virtual engines (colocated mode).
        let engines = |p: &PoolPlan| {
            if p.pp > 1 && c.pp_virtual_engines && plan.pools.len() == 1 && p.role == Role::Colocated {
                p.pp
            } else {
                1
            }
        };
        for (k, (p, model)) in plan.pools.iter().zip(models).enumerate() {
            let first = replicas.len() as u32;
            let ves = engines(p);
            for _ in 0..p.replicas * ves {
                let id = replicas.len() as u32;
                replicas.push(Replica::new(
                    ReplicaState::new(id, (p.kv_blocks / ves as u64).max(1), plan.replica_options),
                    plan.scheduler.build(&plan.policy),
                ));
                pool_of.push(k as u8);
            }
            if !p.shares_devices {
                let (f, b) = model.peak_rates();
                flops += f * p.replicas as f64;
                bw += b * p.replicas as f64;
            }
            if !device_names.contains(&p.device.name.as_str()) {
                device_names.push(&p.device.name);
            }
            let model: Box<dyn TimeModel> = if ves > 1 {
                Box::new(Pipelined {
                    inner: model,
                    engines: ves,
                })
            } else {
                model
            };
            pools.push(Pool {
                role: p.role,
                first,
                count: p.replicas * ves,
                model,
            });
        }
        let n = replicas.len() as u32;
        let info = RunInfo {
            scenario: s.name.clone(),
            model: plan.model.name.clone(),
            device: device_names.join("+"),
            replicas: n,
            tp: plan.pools[0].tp,
            pp: plan.pools[0].pp,
            devices: plan.total_devices(),
            cluster: plan.shape(),
            scheduler: plan.scheduler.name.clone(),
            router: c.router.clone(),
            seed: s.workload.seed,
            peak_flops: flops,
            peak_hbm_bandwidth: bw,
            kv_blocks_per_replica: plan.pools[0].kv_blocks / engines(&plan.pools[0]) as u64,
            block_size: s.scheduler.block_size,
            virtual_engines: engines(&plan.pools[0]),
        };
        let entry = pools[0].count as usize;
        let router = plan.router.build(&RouterArgs {
            seed: s.workload.seed,
            replicas: entry,
        });
        let board = Board::new(
            replicas[..entry].iter().map(|r| Load::of(&r.state)).collect(),
            router.indexes(),
        );
        let pd = Runtime::new(plan);
        let mut metrics = Metrics::new(n, &s.metrics, &s.slo);
        for note in workload.notes() {
            metrics.warn(note);
        }
        if pd.is_some() {
            metrics.set_kv_bytes(0, 0);
        }
        let listening = workload.listens();
        if listening {
            metrics.collect_completions();
        }
        let listening_first_tokens = workload.listens_first_tokens();
        if listening_first_tokens {
            metrics.collect_first_tokens();
        }
        Simulation {
            routed: vec![0; n as usize],
            replicas,
            pool_of,
            pools,
            router,
            board,
            changed: Vec::with_capacity(entry),
            is_changed: vec![false; entry],
            staleness: secs_to_nanos(c.router_staleness),
            next_refresh: 0,
            pd,
            workload,
            completions: Vec::new(),
            listening,
            first_tokens: Vec::new(),
            listening_first_tokens,
            metrics,
            max_model_len: plan.max_model_len,
            limits: plan.limits,
            block_size: s.scheduler.block_size,
            slo_ttft: s.slo.ttft,
            info,
            paranoid: false,
            block_bytes: plan
                .pools
                .iter()
                .map(|p| p.memory.block_bytes * p.devices_per_replica() as f64)
                .collect(),
        }
    }

    /// Chooses what becomes of request records
    /// ([`Records`](crate::metrics::Records); default `Keep`): `Drop` and
    /// `Stream` keep the run's memory independent of its request count.
    /// `Stream` creates its temporary file now.
    pub fn set_records(&mut self, records: &crate::metrics::Records) -> Result<()> {
        self.metrics.set_records(records)
    }

    /// Records a trace of the run (see [`crate::output::trace`]); off by default.
    #[doc(hidden)]
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
    /// `progress` is called with the number of requests ended (finished or
    /// rejected) so far, every 8,192 events and once at the end.
    pub fn run(self, progress: &mut dyn FnMut(u64)) -> Report {
        self.run_with_routing(progress).0
    }

    /// Like [`Simulation::run`], also returning how many requests the router
    /// sent to each replica (indexed by replica id).
    pub fn run_with_routing(mut self, progress: &mut dyn FnMut(u64)) -> (Report, Vec<u64>) {
        let n = self.replicas.len();
        // Each replica has at most one iteration in flight: a tournament tree
        // over the replicas' end times (`IDLE` when none) yields them in
        // `(time, replica index)` order, one leaf-to-root walk per change.
        let mut ends = MinTree::new((0..n).map(|_| IDLE));
        let mut dirty: Vec<u32> = Vec::with_capacity(n);
        let mut is_dirty = vec![false; n];
        let mut events = 0u64;
        let mut now: Nanos = 0;
        loop {
            let t_end = ends.min().filter(|&(te, _)| te != IDLE).map(|(te, _)| te);
            let t_arr = self.workload.next_arrival();
            let t_kv = self.pd.as_ref().and_then(Runtime::next_event);
            // The earliest pending event (written out: the iterator form of
            // this min over three options costs a third of the loop).
            let t = match (t_end, t_arr) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let t = match (t, t_kv) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(t) = t else {
                break;
            };
            debug_assert!(t >= now, "time went backwards");
            events += 1;
            if events.is_multiple_of(8192) {
                progress(self.metrics.ended());
            }
            if self.metrics.samples_due(t) {
                self.metrics
                    .record_samples(t, self.replicas.iter().map(|r| (r.state.id, r.sample())));
            }
            now = t;
            if self.staleness > 0 && now >= self.next_refresh {
                let routed = self.is_changed.len();
                self.board
                    .set_all(self.replicas[..routed].iter().map(|r| Load::of(&r.state)));
                self.next_refresh = (now / self.staleness + 1) * self.staleness;
            }
            if let Some(pd) = self.pd.as_mut() {
                pd.adapt(now, &self.replicas, self.pools[0].model.as_ref());
            }
            while let Some((te, iu)) = ends.min() {
                if te != now {
                    break;
                }
                ends.set(iu, IDLE);
                // Hints (`crate::prefetch`): this replica's buffers all at
                // once (its own lines were asked for one event ago), and
                // the lines of the replica whose iteration ends next.
                self.replicas[iu].state.prefetch_working_set();
                if let Some((_, next)) = ends.min() {
                    crate::prefetch::prefetch(&self.replicas[next]);
                }
                let i = iu as u32;
                self.replicas[iu].finish_iteration(now, &mut self.metrics);
                if let Some(pd) = self.pd.as_mut() {
                    match self.pools[self.pool_of[iu] as usize].role {
                        Role::Prefill => pd.after_prefill(iu, now, &mut self.replicas),
                        Role::Decode => {
                            pd.admit(iu, now, &mut self.replicas, &mut self.metrics);
                        }
                        Role::Colocated => {}
                    }
                }
                if self.paranoid {
                    self.check(i);
                }
                self.observe(i);
                mark(&mut dirty, &mut is_dirty, i);
            }
            if let Some(pd) = self.pd.as_mut() {
                let (replicas, metrics) = (&mut self.replicas, &mut self.metrics);
                pd.land(now, replicas, metrics, &mut |d| {
                    mark(&mut dirty, &mut is_dirty, d)
                });
            }
            let mut t_next = t_arr;
            while t_next == Some(now) {
                let req = self.workload.take_request().expect("an arrival was announced");
                debug_assert_eq!(req.arrival, now, "the workload announced another time");
                let i = self.admit(req, now);
                self.observe(i);
                mark(&mut dirty, &mut is_dirty, i);
                t_next = self.workload.next_arrival();
            }
            for &i in &dirty {
                is_dirty[i as usize] = false;
                if let Some(end) = self.start(i as usize, now) {
                    // (An end at the clock's very limit stays an end.)
                    ends.set(i as usize, end.min(IDLE - 1));
                }
                if let Some(pd) = self.pd.as_mut()
                    && self.pools[self.pool_of[i as usize] as usize].role == Role::Prefill
                {
                    let at = self.replicas[i as usize].outputs_visible(now);
                    pd.reveal_first_tokens(i as usize, at, &mut self.replicas, &mut self.metrics);
                }
                self.observe(i);
                if self.paranoid {
                    self.check(i);
                }
            }
            dirty.clear();
            // The workload hears of this instant's first tokens, then its
            // completions, after the batches were formed (see
            // `workload::feedback`).
            if self.listening_first_tokens {
                self.metrics.take_first_tokens(&mut self.first_tokens);
                for t in &self.first_tokens {
                    self.workload.on_first_token(t);
                }
            }
            if self.listening {
                self.metrics.take_completions(&mut self.completions);
                for c in &self.completions {
                    debug_assert!(c.finish >= now, "a completion before the clock");
                    self.workload.on_complete(c);
                    if let Some(s) = self.workload.take_ended_session() {
                        self.router.session_over(s);
                    }
                }
            }
        }
        progress(self.metrics.ended());
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
            self.metrics.record_memory(
                &r.state.counters(),
                self.block_bytes[self.pool_of[r.state.id as usize] as usize],
            );
        }
        if let Some(pd) = &self.pd {
            assert!(!pd.pending(), "hand-offs left in flight");
            self.metrics.set_kv_bytes(pd.bytes_sent, pd.bytes_received);
        }
        (self.metrics.finish(self.info, now), self.routed)
    }

    /// Starts an iteration on idle replica `i` if it has work; returns its end.
    fn start(&mut self, i: usize, now: Nanos) -> Option<Nanos> {
        let r = &mut self.replicas[i];
        if r.state.busy() || !(r.state.has_work() || r.state.has_pending_outputs()) {
            return None;
        }
        let model = self.pools[self.pool_of[i] as usize].model.as_ref();
        let share = self.pd.as_ref().and_then(|pd| pd.share(i));
        let end = match share {
            Some(share) => r.start_iteration(now, &Partitioned { inner: model, share }, &mut self.metrics),
            None => r.start_iteration(now, model, &mut self.metrics),
        };
        if let Some(pd) = self.pd.as_mut() {
            pd.note_iteration(i, end.map_or(0, |e| e - now));
        }
        end
    }

    /// Replica `i`'s state changed: when reports are exact and the router
    /// routes to it, its report is due for a refresh before the next
    /// routing decision ([`Simulation::refresh_changed`]); a decode
    /// replica's measure, before the next hand-off's choice.
    fn observe(&mut self, i: u32) {
        if self.staleness == 0 && (i as usize) < self.is_changed.len() {
            mark(&mut self.changed, &mut self.is_changed, i);
        }
        // Decode replicas are chosen on exact state (`Runtime::pick_decode`).
        if let Some(pd) = self.pd.as_mut() {
            pd.decode_changed(i as usize);
        }
    }

    /// Takes the reports of the replicas changed since the last routing
    /// decision (in the order they changed; each report depends only on
    /// its own replica, so the order does not matter).
    fn refresh_changed(&mut self) {
        for &i in &self.changed {
            self.is_changed[i as usize] = false;
            self.board
                .set(i as usize, Load::of(&self.replicas[i as usize].state));
        }
        self.changed.clear();
    }

    fn check(&self, i: u32) {
        if let Err(e) = self.replicas[i as usize].state.check_invariants() {
            panic!("replica {i}: invariant violated: {e}");
        }
    }

    /// Routes an arrival to a replica of the first pool and hands it over;
    /// returns the replica index.
    fn admit(&mut self, req: RequestSpec, now: Nanos) -> u32 {
        self.refresh_changed();
        let entry = &self.pools[0];
        // The entry pool comes first: replicas 0..count, what the board holds.
        debug_assert_eq!(entry.first, 0);
        let (loads, index) = self.board.view();
        debug_assert!(
            self.staleness > 0
                || loads
                    .iter()
                    .zip(&self.replicas)
                    .all(|(l, r)| *l == Load::of(&r.state)),
            "an exact report that is not the replica's state"
        );
        let view = View {
            now,
            loads,
            index: Some(index),
            model: entry.model.as_ref(),
            limits: self.limits,
            block_size: self.block_size,
            slo_ttft: self.slo_ttft,
        };
        let i = self.router.route(&req, &view);
        self.routed[i] += 1;
        let full = req.prompt_tokens + req.output_tokens - 1;
        let decode_fits = req.output_tokens == 1
            || self
                .pd
                .as_ref()
                .is_none_or(|pd| pd.decode_can_hold(&self.replicas, full));
        let r = &mut self.replicas[i];
        let over = req.session.filter(|_| req.ends_session);
        if req.prompt_tokens as u64 + req.output_tokens as u64 > self.max_model_len as u64 {
            r.state
                .reject(req, now, RejectReason::ExceedsMaxModelLen, &mut self.metrics);
        } else if !decode_fits {
            r.state
                .reject(req, now, RejectReason::ExceedsKvCapacity, &mut self.metrics);
        } else {
            r.enqueue(req, now, &mut self.metrics);
        }
        if let Some(s) = over {
            self.router.session_over(s);
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
