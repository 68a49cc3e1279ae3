//! Queueing theory checks: with one server, a fixed service time and Poisson
//! arrivals the simulator must reproduce the M/D/1 mean wait
//! (Pollaczek–Khinchine); burstier arrivals must wait longer.

mod common;

use common::{ConstantTime, plan};
use fleetsim::engine::Simulation;
use fleetsim::workload;

/// Mean queueing delay (s) of a single replica serving one request at a
/// time, each a single prefill iteration of exactly `service_s`.
fn mean_wait(arrivals: &str, cv: f64, rate: f64, service_s: f64, count: u64) -> f64 {
    let kind = format!("workload.arrivals.kind={arrivals}");
    let rate = format!("workload.arrivals.rate={rate}");
    let cv = format!("workload.arrivals.cv={cv}");
    let count = format!("workload.count={count}");
    let p = plan(&[
        "scheduler.max_num_seqs=1",
        "workload.prompt.kind=fixed",
        "workload.prompt.value=100",
        "workload.output.kind=fixed",
        "workload.output.value=1",
        "workload.seed=12345",
        &kind,
        &rate,
        &cv,
        &count,
    ]);
    let source = workload::build_source(&p.scenario.workload).unwrap();
    let model = Box::new(ConstantTime((service_s * 1e9) as u64));
    let report = Simulation::with_source(&p, model, source).run(&mut |_| {});
    assert_eq!(report.summary.completed, p.scenario.workload.count);
    report.summary.queue_delay.mean / 1e3
}

#[test]
fn md1_mean_wait_matches_pollaczek_khinchine() {
    // ρ = λ·D = 0.5; Wq = ρ·D / (2(1 − ρ)) = 0.5 s for D = 1 s.
    let (rate, d) = (0.5, 1.0);
    let rho = rate * d;
    let expected = rho * d / (2.0 * (1.0 - rho));
    let got = mean_wait("poisson", 1.0, rate, d, 400_000);
    let err = (got - expected).abs() / expected;
    assert!(
        err < 0.03,
        "M/D/1 mean wait {got:.4} s vs P-K {expected:.4} s ({:.2}% off)",
        err * 100.0
    );
}

#[test]
fn burstier_arrivals_wait_longer() {
    let w1 = mean_wait("gamma", 1.0, 0.5, 1.0, 50_000);
    let w2 = mean_wait("gamma", 2.0, 0.5, 1.0, 50_000);
    let w4 = mean_wait("gamma", 4.0, 0.5, 1.0, 50_000);
    assert!(w1 < w2 && w2 < w4, "waits by cv 1/2/4: {w1:.3} {w2:.3} {w4:.3}");
    // Kingman: Wq ≈ ρ/(1−ρ) · (ca² + cs²)/2 · D; cs = 0 ⇒ ratio ≈ ca².
    assert!(
        w2 / w1 > 2.5,
        "cv=2 should wait ~4× longer than cv=1: {w1:.3} vs {w2:.3}"
    );
}

#[test]
fn constant_arrivals_below_capacity_never_wait() {
    let w = mean_wait("constant", 1.0, 0.9, 1.0, 10_000);
    assert_eq!(w, 0.0);
}
