//! Policies by name: the one place a scheduler's, a router's or a time
//! model's name, its defaults and its constructor live.
//!
//! A scenario names its scheduler (`scheduler.kind`) and router
//! (`cluster.router`); planning looks them up here (an unknown name is an
//! error naming the key, with the closest name suggested) and the plan
//! carries the entry, so nothing downstream matches on strings. The
//! built-in policies are registered by [`Registry::builtin`]; a library
//! user adds their own and plans with [`crate::scenario::validate::plan_with`]:
//!
//! ```
//! use fleetsim::prelude::*;
//! use fleetsim::cluster::{Router, View};
//! use fleetsim::registry::{Registry, RouterSpec};
//!
//! /// Always the last replica.
//! struct Last;
//! impl Router for Last {
//!     fn route(&mut self, _req: &RequestSpec, view: &View) -> usize {
//!         view.loads.len() - 1
//!     }
//! }
//!
//! let mut registry = Registry::builtin();
//! registry.register_router(RouterSpec::new("last", "every request to the last replica", |_| Box::new(Last)))?;
//! let sets = ["cluster.router=last".to_string(), "cluster.replicas=3".to_string(), "workload.count=20".to_string()];
//! let plan = fleetsim::scenario::validate::plan_with(&load(None, &sets)?, &registry)?;
//! let report = run_plan(&plan, &mut |_| {})?;
//! assert!(report.requests.iter().all(|r| r.replica == 2));
//! # Ok::<(), fleetsim::Error>(())
//! ```
//!
//! Invariant: names are unique within a registry (registering a taken name
//! is an error), and lookups never depend on registration order except for
//! the order names are listed in messages.

use crate::cluster::Router;
use crate::cluster::disagg::PoolPlan;
use crate::error::{Error, Result};
use crate::replica::scheduler::{Policy, Scheduler};
use crate::scenario::validate::Plan;
use crate::scenario::validate::unknown_name;
use crate::timing::TimeModel;
use std::fmt;
use std::sync::Arc;

/// How a scheduler fills an iteration's token budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// Whole prompts in one iteration: the budget defaults to
    /// max(max_model_len, 2048) and must hold max_model_len.
    WholePrompt,
    /// Chunked prefill within a budget.
    Chunked(DefaultBudget),
}

/// The token budget of a chunked scheduler when `max_num_batched_tokens` is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultBudget {
    /// This many tokens (vLLM V1 and SGLang default to 8,192).
    Tokens(u32),
    /// `scheduler.chunk_size` (Sarathi-Serve), which also caps a set budget.
    ChunkSize,
}

/// How a scheduler lays out KV memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvLayout {
    /// Blocks allocated as sequences grow (vLLM's paged attention).
    Paged,
    /// The maximum length reserved per request up front (Orca, FasterTransformer).
    ReserveMaxLen,
    /// Paged, with blocks allocated for each scheduled chunk rather than
    /// for the whole prompt at admission, and no admission watermark (vLLM
    /// V1's `KVCacheManager.allocate_slots`).
    PagedPerChunk,
}

/// Whether prefix caching is on when `scheduler.prefix_caching` is unset,
/// and whether the policy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    Off,
    On,
    /// On, and the policy cannot run without it (SGLang's order).
    Required,
}

type BuildScheduler = dyn Fn(&Policy) -> Box<dyn Scheduler> + Send + Sync;
type BuildTimeModel = dyn Fn(&Plan, &PoolPlan) -> Result<Box<dyn TimeModel>> + Send + Sync;
type BuildRouter = dyn Fn(&RouterArgs) -> Box<dyn Router> + Send + Sync;

/// A scheduler: its name, defaults and constructor.
#[derive(Clone)]
pub struct SchedulerSpec {
    pub name: String,
    /// One line for help texts.
    pub summary: String,
    pub batching: Batching,
    pub kv: KvLayout,
    /// Static request-level batches whose members return when the batch ends.
    pub static_batch: bool,
    pub caching: Caching,
    /// The serving engine whose host-side costs apply (a key of a catalog
    /// device's `[device.engines.*]` tables; see
    /// [`crate::timing::Calibration`]'s host keys). Default
    /// [`BASE_ENGINE`]: the device's own calibration.
    pub engine: String,
    /// Whether the engine can preempt by swapping to host memory
    /// (`scheduler.preemption = "swap"`); vLLM V1 and SGLang only recompute.
    pub can_swap: bool,
    build: Arc<BuildScheduler>,
}

/// The engine a device's base `[device.calibration]` was fitted with
/// (vLLM 0.6, V0 engine, for the fitted devices).
pub const BASE_ENGINE: &str = "vllm-v0";

impl SchedulerSpec {
    /// A paged, chunked scheduler with an 8,192-token default budget and
    /// prefix caching off by default; adjust the public fields as needed.
    pub fn new(
        name: &str,
        summary: &str,
        build: impl Fn(&Policy) -> Box<dyn Scheduler> + Send + Sync + 'static,
    ) -> Self {
        SchedulerSpec {
            name: name.to_string(),
            summary: summary.to_string(),
            batching: Batching::Chunked(DefaultBudget::Tokens(8192)),
            kv: KvLayout::Paged,
            static_batch: false,
            caching: Caching::Off,
            engine: BASE_ENGINE.to_string(),
            can_swap: true,
            build: Arc::new(build),
        }
    }

    /// With this batching (and its default token budget).
    pub fn batching(mut self, b: Batching) -> Self {
        self.batching = b;
        self
    }

    /// With this KV layout.
    pub fn kv(mut self, kv: KvLayout) -> Self {
        self.kv = kv;
        self
    }

    /// With this prefix-caching default.
    pub fn caching(mut self, c: Caching) -> Self {
        self.caching = c;
        self
    }

    /// Run on this engine's host costs (see [`SchedulerSpec::engine`]).
    pub fn engine(mut self, name: &str) -> Self {
        self.engine = name.to_string();
        self
    }

    /// Preemption by recompute only (see [`SchedulerSpec::can_swap`]).
    pub fn recompute_only(mut self) -> Self {
        self.can_swap = false;
        self
    }

    /// Static request-level batches (responses return when the batch ends).
    pub fn static_batches(mut self) -> Self {
        self.static_batch = true;
        self
    }

    /// A scheduler instance for one replica.
    pub fn build(&self, p: &Policy) -> Box<dyn Scheduler> {
        (self.build)(p)
    }
}

impl fmt::Debug for SchedulerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchedulerSpec")
            .field("name", &self.name)
            .field("batching", &self.batching)
            .field("kv", &self.kv)
            .field("static_batch", &self.static_batch)
            .field("caching", &self.caching)
            .field("engine", &self.engine)
            .field("can_swap", &self.can_swap)
            .finish_non_exhaustive()
    }
}

/// What a router is built with.
#[derive(Debug, Clone, Copy)]
pub struct RouterArgs {
    /// `workload.seed`: randomised routers derive their own stream from it.
    pub seed: u64,
    /// Replicas it routes among.
    pub replicas: usize,
}

/// A router: its name and constructor.
#[derive(Clone)]
pub struct RouterSpec {
    pub name: String,
    pub summary: String,
    build: Arc<BuildRouter>,
}

impl RouterSpec {
    pub fn new(
        name: &str,
        summary: &str,
        build: impl Fn(&RouterArgs) -> Box<dyn Router> + Send + Sync + 'static,
    ) -> Self {
        RouterSpec {
            name: name.to_string(),
            summary: summary.to_string(),
            build: Arc::new(build),
        }
    }

    /// A router instance for one run.
    pub fn build(&self, args: &RouterArgs) -> Box<dyn Router> {
        (self.build)(args)
    }
}

impl fmt::Debug for RouterSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterSpec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An iteration time model (`hardware.time_model`): its name and how a
/// pool's model is built from the plan.
#[derive(Clone)]
pub struct TimeModelSpec {
    pub name: String,
    pub summary: String,
    build: Arc<BuildTimeModel>,
}

impl TimeModelSpec {
    pub fn new(
        name: &str,
        summary: &str,
        build: impl Fn(&Plan, &PoolPlan) -> Result<Box<dyn TimeModel>> + Send + Sync + 'static,
    ) -> Self {
        TimeModelSpec {
            name: name.to_string(),
            summary: summary.to_string(),
            build: Arc::new(build),
        }
    }

    /// The time model of one pool of `plan`.
    pub fn build(&self, plan: &Plan, pool: &PoolPlan) -> Result<Box<dyn TimeModel>> {
        (self.build)(plan, pool)
    }
}

impl fmt::Debug for TimeModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeModelSpec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The schedulers, routers and time models a scenario may name.
#[derive(Debug, Clone)]
pub struct Registry {
    schedulers: Vec<Arc<SchedulerSpec>>,
    routers: Vec<Arc<RouterSpec>>,
    time_models: Vec<Arc<TimeModelSpec>>,
}

impl Registry {
    /// The built-in policies.
    pub fn builtin() -> Registry {
        Registry {
            schedulers: crate::replica::scheduler::builtin()
                .into_iter()
                .map(Arc::new)
                .collect(),
            routers: crate::cluster::builtin_routers()
                .into_iter()
                .map(Arc::new)
                .collect(),
            time_models: crate::engine::builtin_time_models()
                .into_iter()
                .map(Arc::new)
                .collect(),
        }
    }

    /// Adds a time model; its name must be new.
    pub fn register_time_model(&mut self, spec: TimeModelSpec) -> Result<()> {
        add_unique("time model", &mut self.time_models, spec, |s| &s.name)
    }

    /// The time model called `name`; the error names `key` and suggests the closest name.
    pub fn time_model(&self, key: &str, name: &str) -> Result<Arc<TimeModelSpec>> {
        lookup(key, name, &self.time_models, |s| &s.name)
    }

    /// Adds a scheduler; its name must be new.
    pub fn register_scheduler(&mut self, spec: SchedulerSpec) -> Result<()> {
        add_unique("scheduler", &mut self.schedulers, spec, |s| &s.name)
    }

    /// Adds a router; its name must be new.
    pub fn register_router(&mut self, spec: RouterSpec) -> Result<()> {
        add_unique("router", &mut self.routers, spec, |s| &s.name)
    }

    /// Names of the schedulers, in registration order.
    pub fn scheduler_names(&self) -> Vec<&str> {
        self.schedulers.iter().map(|s| s.name.as_str()).collect()
    }

    /// Names of the routers, in registration order.
    pub fn router_names(&self) -> Vec<&str> {
        self.routers.iter().map(|s| s.name.as_str()).collect()
    }

    /// The scheduler called `name`; the error names `key` and suggests the closest name.
    pub fn scheduler(&self, key: &str, name: &str) -> Result<Arc<SchedulerSpec>> {
        lookup(key, name, &self.schedulers, |s| &s.name)
    }

    /// The router called `name`; the error names `key` and suggests the closest name.
    pub fn router(&self, key: &str, name: &str) -> Result<Arc<RouterSpec>> {
        lookup(key, name, &self.routers, |s| &s.name)
    }
}

/// Adds `spec` unless its name is taken.
fn add_unique<T>(kind: &str, all: &mut Vec<Arc<T>>, spec: T, name_of: impl Fn(&T) -> &String) -> Result<()> {
    if all.iter().any(|s| name_of(s) == name_of(&spec)) {
        return Err(Error::config(
            format!("{kind} registry"),
            format!("a {kind} named `{}` is already registered", name_of(&spec)),
        ));
    }
    all.push(Arc::new(spec));
    Ok(())
}

/// The entry called `name` (else the scenario's usual error: the key, the
/// closest name, every name).
fn lookup<T>(key: &str, name: &str, all: &[Arc<T>], name_of: impl Fn(&T) -> &String) -> Result<Arc<T>> {
    match all.iter().find(|s| name_of(s) == name) {
        Some(s) => Ok(s.clone()),
        None => {
            let names: Vec<&str> = all.iter().map(|s| name_of(s).as_str()).collect();
            Err(unknown_name(key, name, &names))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_listed_in_registration_order() {
        let mut r = Registry::builtin();
        let s = r.scheduler_names();
        assert_eq!(s.len(), 9);
        assert_eq!(&s[..3], ["vllm", "sarathi", "vllm-v1"]);
        let routers = r.router_names();
        assert_eq!(routers.len(), 9);
        assert_eq!((routers[0], routers[8]), ("random", "session-affinity"));
        let vllm = r.scheduler("k", "vllm").unwrap().as_ref().clone();
        r.register_scheduler(SchedulerSpec {
            name: "mine".into(),
            ..vllm
        })
        .unwrap();
        assert_eq!(r.scheduler_names().last(), Some(&"mine"));
        let rr = r.router("k", "round-robin").unwrap().as_ref().clone();
        r.register_router(RouterSpec {
            name: "mine".into(),
            ..rr
        })
        .unwrap();
        assert_eq!(r.router_names().last(), Some(&"mine"));
        let tm = r.time_model("k", "analytical").unwrap().as_ref().clone();
        assert!(r.register_time_model(tm.clone()).is_err(), "a taken name");
        r.register_time_model(TimeModelSpec {
            name: "mine".into(),
            ..tm
        })
        .unwrap();
        assert_eq!(r.time_model("k", "mine").unwrap().name, "mine");
    }

    #[test]
    fn lookups_suggest_the_closest_name_and_names_are_unique() {
        let mut r = Registry::builtin();
        assert_eq!(r.scheduler("scheduler.kind", "sarathi").unwrap().name, "sarathi");
        let e = r.scheduler("scheduler.kind", "sarath").unwrap_err().to_string();
        assert!(e.contains("scheduler.kind") && e.contains("sarathi"), "{e}");
        let e = r
            .time_model("hardware.time_model", "analytic")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hardware.time_model") && e.contains("`analytical`"),
            "{e}"
        );
        let e = r
            .router("cluster.router", "round-robbin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster.router") && e.contains("round-robin"), "{e}");
        let dup = r.scheduler("k", "vllm").unwrap().as_ref().clone();
        assert!(r.register_scheduler(dup).is_err());
        let first = r.router("k", "random").unwrap().as_ref().clone();
        assert!(r.register_router(first).is_err());
    }
}
