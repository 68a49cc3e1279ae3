//! Helpers shared by the integration tests.
#![allow(dead_code)]

use fleetsim::scenario::{self, Scenario, validate};
use fleetsim::timing::{BatchShape, IterationCost, TimeModel};
use fleetsim::units::Nanos;
use fleetsim::workload::{RequestSource, RequestSpec};
use std::path::PathBuf;

/// A scenario from `--set` style overrides on the built-in default.
pub fn scenario(sets: &[&str]) -> Scenario {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    scenario::load(None, &sets).expect("test scenario loads")
}

pub fn plan(sets: &[&str]) -> validate::Plan {
    validate::plan(&scenario(sets)).expect("test scenario is valid")
}

/// Every iteration takes the same time, whatever the batch.
pub struct ConstantTime(pub Nanos);

impl TimeModel for ConstantTime {
    fn iteration(&self, _b: &BatchShape) -> IterationCost {
        IterationCost {
            duration: self.0,
            flops: 0.0,
            hbm_bytes: 0.0,
            host: 0,
            stage: self.0,
        }
    }
    fn peak_rates(&self) -> (f64, f64) {
        (1.0, 1.0)
    }
}

/// Replays a fixed list of requests.
pub struct ListSource(pub std::vec::IntoIter<RequestSpec>);

impl ListSource {
    pub fn boxed(v: Vec<RequestSpec>) -> Box<dyn RequestSource> {
        Box::new(ListSource(v.into_iter()))
    }
}

impl RequestSource for ListSource {
    fn next_request(&mut self) -> Option<RequestSpec> {
        self.0.next()
    }
}

/// Says that the running test skips part or all of its work and why, as
/// `skipping TEST: REASON` (libtest names each test's thread after the
/// test); `.ci/run` collects these lines so a CI log shows what did not run.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    eprintln!("skipping {}: {reason}", thread.name().unwrap_or("(unnamed test)"));
}

/// The shared data folder beside the project, if present.
pub fn shared_dir() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared"));
    if p.is_dir() {
        Some(p)
    } else {
        skip("../shared (public traces and measurements) is not present beside the project");
        None
    }
}

/// Runs the `fleetsim` binary at `exe` (pass `env!("CARGO_BIN_EXE_fleetsim")`).
pub fn fleetsim(exe: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(exe)
        .args(args)
        .output()
        .expect("run fleetsim")
}

/// Runs, expects exit code 2 and an error mentioning every `needle`.
pub fn expect_error(exe: &str, args: &[&str], needles: &[&str]) {
    let out = fleetsim(exe, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "args {args:?}: stderr: {err}");
    assert!(!err.contains("panicked"), "panic instead of an error: {err}");
    for n in needles {
        assert!(err.contains(n), "error for {args:?} should mention `{n}`: {err}");
    }
}

/// Overrides that make a replica run short of KV memory (preemptions happen).
pub const TIGHT_MEMORY: &[&str] = &[
    "scheduler.gpu_memory_utilization=0.24",
    "scheduler.activation_reserve_gib=0.5",
    "workload.count=600",
    "workload.arrivals.rate=50",
    "workload.prompt.kind=uniform",
    "workload.prompt.min=200",
    "workload.prompt.max=1500",
    "workload.output.kind=uniform",
    "workload.output.min=200",
    "workload.output.max=1000",
];
