//! fleetsim: a fast, deterministic discrete-event simulator of LLM serving fleets.
//!
//! The pipeline is `scenario` (TOML → [`scenario::Scenario`]) →
//! `scenario::validate::plan` (names resolved against the [`catalog`],
//! memory planned) → [`engine::Simulation`] (replicas, router, time model,
//! workload) → [`metrics::Report`] (summary, per-request records, time series).
//! See ARCHITECTURE.md for the code map and invariants.

pub mod bench;
pub mod catalog;
pub mod cluster;
pub mod engine;
pub mod error;
pub mod fidelity;
pub mod metrics;
pub mod output;
pub mod replica;
pub mod scenario;
pub mod search;
pub mod timing;
pub mod units;
pub mod workload;

pub use error::{Error, Result};

/// Loads nothing, runs a resolved plan with its own workload: the one-call API.
pub fn run_plan(plan: &scenario::validate::Plan, progress: &mut dyn FnMut(u64)) -> Result<metrics::Report> {
    Ok(engine::Simulation::new(plan)?.run(progress))
}

/// Like [`run_plan`], recording a trace (see [`output::trace`]) when `trace` is set.
pub fn run_plan_traced(
    plan: &scenario::validate::Plan,
    trace: Option<&output::trace::TraceOptions>,
    progress: &mut dyn FnMut(u64),
) -> Result<metrics::Report> {
    let mut sim = engine::Simulation::new(plan)?;
    if let Some(opts) = trace {
        sim.enable_trace(opts);
    }
    Ok(sim.run(progress))
}
