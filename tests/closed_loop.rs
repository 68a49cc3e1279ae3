//! Closed-loop workloads: the engine tells the workload when requests end
//! and the workload's next requests depend on it (fixed-concurrency
//! clients as vLLM's benchmark runs them, closed-loop multi-turn sessions).

mod common;

use common::{ConstantTime, plan};
use fleetsim::engine::Simulation;
use fleetsim::metrics::{Report, RequestRecord};
use fleetsim::units::Nanos;
use fleetsim::workload;

const MS: Nanos = 1_000_000;

fn run(sets: &[&str], iteration: Nanos) -> Report {
    let p = plan(sets);
    let w = workload::build(&p.scenario.workload).expect("workload builds");
    let models: Vec<Box<dyn fleetsim::timing::TimeModel>> = (0..p.pools.len())
        .map(|_| Box::new(ConstantTime(iteration)) as Box<dyn fleetsim::timing::TimeModel>)
        .collect();
    let mut sim = Simulation::with_workload(&p, models, w);
    sim.set_paranoid(true);
    sim.run(&mut |_| {})
}

/// Requests in flight (sent, not yet ended) at `t`: arrival ≤ t < finish.
fn in_flight(recs: &[RequestRecord], t: Nanos) -> usize {
    recs.iter().filter(|r| r.arrival <= t && t < r.finish).count()
}

/// Every instant at which the number in flight can change.
fn instants(recs: &[RequestRecord]) -> Vec<Nanos> {
    let mut ts: Vec<Nanos> = recs.iter().flat_map(|r| [r.arrival, r.finish]).collect();
    ts.sort_unstable();
    ts.dedup();
    ts
}

/// `C` clients in lockstep on one replica, every iteration 10 ms, prompts
/// of 64 and outputs of 8 tokens (tokens visible at once): each request
/// takes a prefill and 7 decodes, E2E = 80 ms exactly. Four clients, 40
/// requests: 10 rounds of 80 ms, so throughput = 40 / 0.8 s = 50 req/s =
/// C / E2E (Little's law), and every request is scheduled the instant it is
/// sent (C ≤ max_num_seqs, memory to spare).
#[test]
fn fixed_concurrency_obeys_littles_law_exactly_with_no_queueing() {
    let r = run(
        &[
            "workload.concurrency=4",
            "workload.count=40",
            "workload.prompt.kind=fixed",
            "workload.prompt.value=64",
            "workload.output.kind=fixed",
            "workload.output.value=8",
            "scheduler.async_output=false",
        ],
        10 * MS,
    );
    let recs = &r.requests;
    assert_eq!(recs.len(), 40);
    for rec in recs {
        assert_eq!(rec.e2el_ns(), Some(80 * MS), "request {}", rec.id);
        assert_eq!(rec.queue_delay_ns(), Some(0), "request {}", rec.id);
    }
    let end = recs.iter().map(|r| r.finish).max().unwrap();
    assert_eq!(end, 800 * MS);
    assert_eq!(r.summary.request_throughput, 50.0);
    // Request k·4 + j is sent when round k starts: 80·k ms.
    for rec in recs {
        assert_eq!(rec.arrival, (rec.id / 4) * 80 * MS, "request {}", rec.id);
    }
}

/// With lengths that vary (lognormal prompts and outputs), async output,
/// two replicas and a router, the number in flight never exceeds C and
/// equals C at every instant before the last request is sent.
#[test]
fn fixed_concurrency_keeps_exactly_c_in_flight_while_requests_remain() {
    for seed in [1, 2, 3] {
        let s = format!("workload.seed={seed}");
        let r = run(
            &[
                "workload.concurrency=5",
                "workload.count=200",
                "cluster.replicas=2",
                "cluster.router=round-robin",
                &s,
            ],
            7 * MS,
        );
        let recs = &r.requests;
        assert_eq!(recs.len(), 200);
        let last_send = recs.iter().map(|r| r.arrival).max().unwrap();
        for t in instants(recs) {
            let n = in_flight(recs, t);
            assert!(n <= 5, "seed {seed}: {n} in flight at {t}");
            if t < last_send {
                assert_eq!(n, 5, "seed {seed}: {n} in flight at {t} with requests left");
            }
        }
    }
}

/// A rate cap paces the clients (`--request-rate` with
/// `--max-concurrency`): one client, requests due every 100 ms (constant
/// arrivals at 10/s), each taking 20 ms: sent on their own times, not back
/// to back; without the cap, back to back every 20 ms.
#[test]
fn a_rate_cap_paces_fixed_concurrency_clients() {
    let base = [
        "workload.concurrency=1",
        "workload.count=5",
        "workload.prompt.kind=fixed",
        "workload.prompt.value=16",
        "workload.output.kind=fixed",
        "workload.output.value=2",
        "scheduler.async_output=false",
    ];
    let sends = |extra: &[&str]| -> Vec<Nanos> {
        let sets = [&base[..], extra].concat();
        run(&sets, 10 * MS)
            .requests
            .iter()
            .map(|r| r.arrival / MS)
            .collect()
    };
    assert_eq!(sends(&[]), [0, 20, 40, 60, 80]);
    assert_eq!(
        sends(&["workload.arrivals.kind=constant", "workload.arrivals.rate=10"]),
        [0, 100, 200, 300, 400]
    );
}

/// A rejected request frees its client too (the benchmark counts a failed
/// request as done): one client and prompts of 100–3000 tokens with
/// max_model_len 2048, so some are rejected; all 30 are still sent.
#[test]
fn a_rejected_request_frees_its_client() {
    let r = run(
        &[
            "workload.concurrency=1",
            "workload.count=30",
            "workload.prompt.kind=uniform",
            "workload.prompt.min=100",
            "workload.prompt.max=3000",
            "workload.output.kind=fixed",
            "workload.output.value=1",
            "model.max_model_len=2048",
            "scheduler.async_output=false",
        ],
        10 * MS,
    );
    let rejected = r.requests.iter().filter(|r| !r.is_finished()).count();
    assert!(rejected > 0, "the workload has prompts over max_model_len");
    assert_eq!(r.requests.len(), 30, "every request was sent");
}
