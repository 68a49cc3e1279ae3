//! fleetsim: a fast, deterministic discrete-event simulator of LLM serving fleets.
//!
//! The pipeline is `scenario` (TOML → [`scenario::Scenario`]) →
//! `scenario::validate::plan` (names resolved against the [`catalog`],
//! memory planned) → [`engine::Simulation`] (replicas, router, time model,
//! workload) → [`metrics::Report`] (summary, per-request records, time series).
//! See ARCHITECTURE.md for the code map and invariants.
//!
//! The library needs none of the command line's crates: depend on it with
//! `default-features = false` (the `cli` feature builds the `fleetsim`
//! binary). [`prelude`] holds the API a library user needs.
//!
//! # Run a scenario
//!
//! Load the built-in default scenario (or a TOML file), override keys as
//! `--set` does, plan it, run it and read the summary:
//!
//! ```
//! use fleetsim::prelude::*;
//!
//! let sets = ["workload.count=64".to_string(), "cluster.replicas=2".to_string()];
//! let scenario = load(None, &sets)?;
//! let plan = plan(&scenario)?;
//! let report = run_plan(&plan, &mut |_| {})?;
//! assert_eq!(report.summary.completed + report.summary.rejected, 64);
//! assert!(report.summary.ttft.mean > 0.0);
//! # Ok::<(), fleetsim::Error>(())
//! ```
//!
//! # Drive the engine with your own workload
//!
//! A [`Workload`](workload::feedback::Workload) hears how each of its
//! requests ended, so it can send the next one in a closed loop. Here one
//! client sends three requests back to back:
//!
//! ```
//! use fleetsim::prelude::*;
//!
//! struct BackToBack { sent: u64, free_at: Option<Nanos> }
//!
//! impl Workload for BackToBack {
//!     fn next_arrival(&mut self) -> Option<Nanos> {
//!         if self.sent < 3 { self.free_at } else { None }
//!     }
//!     fn take_request(&mut self) -> Option<RequestSpec> {
//!         let at = self.next_arrival()?;
//!         self.free_at = None; // busy until this request ends
//!         self.sent += 1;
//!         Some(RequestSpec::new(self.sent - 1, at, 512, 32))
//!     }
//!     fn on_complete(&mut self, c: &Completion) {
//!         self.free_at = Some(c.finish);
//!     }
//!     fn listens(&self) -> bool { true }
//! }
//!
//! let plan = plan(&load(None, &[])?)?;
//! let model = fleetsim::engine::time_model(&plan)?;
//! let workload = Box::new(BackToBack { sent: 0, free_at: Some(0) });
//! let report = Simulation::with_workload(&plan, vec![model], workload).run(&mut |_| {});
//! let r = &report.requests;
//! assert_eq!(r.len(), 3);
//! assert_eq!(r[1].arrival, r[0].finish, "sent when the previous one ended");
//! # Ok::<(), fleetsim::Error>(())
//! ```

/// What a library user needs: load and plan a scenario, run it, read the
/// report; and the traits to bring a workload or a time model of one's own.
pub mod prelude {
    pub use crate::engine::Simulation;
    pub use crate::metrics::{Report, RequestRecord, Summary};
    pub use crate::scenario::validate::{Plan, plan};
    pub use crate::scenario::{Scenario, load};
    pub use crate::timing::{BatchShape, IterationCost, TimeModel};
    pub use crate::units::Nanos;
    pub use crate::workload::feedback::{Completion, FirstToken, Workload};
    pub use crate::workload::{Prefix, RequestSource, RequestSpec};
    pub use crate::{Error, Result, run_plan};
}

#[doc(hidden)]
pub mod bench;
pub mod catalog;
pub mod cluster;
pub mod engine;
mod error;
#[doc(hidden)]
pub mod fidelity;
pub mod metrics;
#[doc(hidden)]
pub mod output;
mod prefetch;
pub mod registry;
pub mod replica;
pub mod scenario;
#[doc(hidden)]
pub mod search;
pub mod timing;
#[doc(hidden)]
pub mod train;
pub mod units;
pub mod workload;

pub use error::{Error, Result};

/// Loads nothing, runs a resolved plan with its own workload: the one-call API.
pub fn run_plan(plan: &scenario::validate::Plan, progress: &mut dyn FnMut(u64)) -> Result<metrics::Report> {
    Ok(engine::Simulation::new(plan)?.run(progress))
}

/// Like [`run_plan`], recording a trace (see [`output::trace`]) when
/// `trace` is set and doing with request records what `records` says.
#[doc(hidden)]
pub fn run_plan_traced(
    plan: &scenario::validate::Plan,
    trace: Option<&output::trace::TraceOptions>,
    records: &metrics::Records,
    progress: &mut dyn FnMut(u64),
) -> Result<metrics::Report> {
    let mut sim = engine::Simulation::new(plan)?;
    sim.set_records(records)?;
    if let Some(opts) = trace {
        sim.enable_trace(opts);
    }
    Ok(sim.run(progress))
}
