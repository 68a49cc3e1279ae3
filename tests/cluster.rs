//! Cluster-level checks: routers, prefill/decode disaggregation with KV
//! transfer, semi-PD — each reproducing the direction of its source's result
//! — plus the invariants (every request routed once, KV bytes conserved)
//! and determinism.

mod common;

use common::{ListSource, plan};
use fleetsim::engine::{self, Simulation};
use fleetsim::metrics::Report;
use fleetsim::scenario::validate::Plan;
use fleetsim::timing::collectives::Link;
use fleetsim::workload::{self, RequestSpec};

fn run(p: &Plan) -> (Report, Vec<u64>) {
    let source = workload::build_source(&p.scenario.workload).unwrap();
    let mut sim = Simulation::new(p).unwrap();
    let _ = &source;
    sim.set_paranoid(true);
    sim.run_with_routing(&mut |_| {})
}

fn run_list(p: &Plan, reqs: Vec<RequestSpec>) -> Report {
    let mut sim = Simulation::with_source(p, engine::time_model(p).unwrap(), ListSource::boxed(reqs));
    sim.set_paranoid(true);
    sim.run(&mut |_| {})
}

fn with(base: &[&str], extra: &[&str]) -> Plan {
    let mut v = base.to_vec();
    v.extend_from_slice(extra);
    plan(&v)
}

const DISAGG_1P1D: &[&str] = &[
    "cluster.mode=disaggregated",
    "cluster.prefill.replicas=1",
    "cluster.decode.replicas=1",
];

// ---------- KV transfer over the link ----------

/// Expected isolated transfer time of `prompt` tokens between two TP-1
/// replicas over the inter-node link: bytes / bandwidth + latency.
fn isolated_transfer_ns(p: &Plan, prompt: u32) -> (u64, u64) {
    let bytes = (prompt as f64 * p.model.kv_bytes_per_token(p.kv_dtype)).round();
    let link = Link::inter_node(&p.pools[0].device, &p.pools[0].calibration);
    let ns = (bytes / link.bandwidth * 1e9).ceil() + (link.latency * 1e9).round();
    (bytes as u64, ns as u64)
}

#[test]
fn isolated_kv_transfer_takes_bytes_over_bandwidth_plus_latency() {
    let p = with(DISAGG_1P1D, &["cluster.kv_link=inter-node"]);
    let r = run_list(&p, vec![RequestSpec::new(0, 0, 2000, 8)]);
    let (bytes, ns) = isolated_transfer_ns(&p, 2000);
    assert_eq!(r.transfers.len(), 1);
    let t = r.transfers[0];
    assert_eq!(t.bytes, bytes);
    assert_eq!(t.transfer_ns(), ns, "{t:?}");
    assert_eq!((t.from, t.to), (0, 1));
    let rec = r.requests[0];
    assert_eq!(rec.replica, 1, "decoded on the decode replica");
    assert_eq!(rec.output_tokens, 8);
    eprintln!(
        "2000-token KV: {} MB in {:.3} ms over the inter-node link",
        bytes / 1_000_000,
        ns as f64 / 1e6
    );
}

#[test]
fn transfers_sharing_a_link_take_longer() {
    let p = with(DISAGG_1P1D, &["cluster.kv_link=inter-node"]);
    // Three prompts prefilled in one batch: their transfers leave the same
    // prefill replica for the same decode replica at the same instant.
    let reqs = (0..3).map(|i| RequestSpec::new(i, 0, 2000, 8)).collect();
    let r = run_list(&p, reqs);
    let (_, alone) = isolated_transfer_ns(&p, 2000);
    let mut times: Vec<u64> = r.transfers.iter().map(|t| t.transfer_ns()).collect();
    times.sort_unstable();
    assert_eq!(times[0], alone);
    let latency = (Link::inter_node(&p.pools[0].device, &p.pools[0].calibration).latency * 1e9).round() as u64;
    let data = alone - latency;
    assert_eq!(times[1], 2 * data + latency, "FIFO on the shared port");
    assert_eq!(times[2], 3 * data + latency);
}

#[test]
fn intra_node_link_is_faster_than_inter_node() {
    let reqs = || vec![RequestSpec::new(0, 0, 3000, 4)];
    let intra = run_list(&with(DISAGG_1P1D, &["hardware.devices_per_node=8"]), reqs());
    let inter = run_list(&with(DISAGG_1P1D, &["hardware.devices_per_node=1"]), reqs());
    let (a, b) = (intra.transfers[0].transfer_ns(), inter.transfers[0].transfer_ns());
    eprintln!("3000-token KV: NVLink {:.3} ms, network {:.3} ms", a as f64 / 1e6, b as f64 / 1e6);
    assert!(a * 5 < b, "NVLink {a} ns vs NIC {b} ns");
}

// ---------- invariants and determinism ----------

const DISAGG_MIXED: &[&str] = &[
    "cluster.mode=disaggregated",
    "cluster.prefill.replicas=2",
    "cluster.decode.replicas=3",
    "cluster.router=least-kv",
    "workload.count=1500",
    "workload.arrivals.rate=25",
    "workload.seed=11",
];

#[test]
fn every_request_is_routed_once_and_kv_bytes_sent_equal_received() {
    for extra in [
        &["cluster.decode_router=least-kv"][..],
        &["cluster.decode_router=least-outstanding", "scheduler.kind=sarathi"],
        // Tight decode memory: hand-offs wait for blocks, decodes preempt.
        &[
            "scheduler.gpu_memory_utilization=0.3",
            "scheduler.activation_reserve_gib=0.5",
        ],
    ] {
        let p = with(DISAGG_MIXED, extra);
        let (r, routed) = run(&p);
        let s = &r.summary;
        assert_eq!(routed.iter().sum::<u64>(), 1500, "{extra:?}");
        assert!(routed[2..].iter().all(|&n| n == 0), "only prefill replicas are routed to");
        assert_eq!(s.completed + s.rejected, 1500);
        let ids: Vec<u64> = r.requests.iter().map(|q| q.id).collect();
        assert_eq!(ids, (0..1500).collect::<Vec<_>>(), "one record per request");
        let kv = s.kv_transfer.as_ref().expect("disaggregated run reports transfers");
        assert_eq!(kv.kv_bytes_sent, kv.kv_bytes_received);
        assert!(kv.kv_bytes_sent > 0);
        let multi = r.requests.iter().filter(|q| q.is_finished() && q.output_tokens > 1).count();
        assert_eq!(kv.transfers as usize, multi, "one hand-off per multi-token request");
        for q in &r.requests {
            if q.output_tokens > 1 {
                assert!(q.replica >= 2, "request {} finished on decode replicas", q.id);
            }
        }
        assert_eq!(s.itl.count, s.total_output_tokens - s.completed, "{extra:?}");
        eprintln!(
            "{extra:?}: {} transfers, {:.1} GB, mean {:.3} ms, admission wait p99 {:.2} ms, {} preemptions",
            kv.transfers,
            kv.kv_bytes_sent as f64 / 1e9,
            kv.mean_transfer_ms,
            kv.p99_admission_wait_ms,
            s.preemptions
        );
    }
}

#[test]
fn runs_are_deterministic() {
    for extra in [
        &["cluster.router=power-of-two"][..],
        &["cluster.router=dualmap", "workload.prefix.kind=system", "workload.prefix.prompts=5"],
        &["cluster.router=random", "cluster.router_staleness=0.5"],
    ] {
        let p = with(DISAGG_MIXED, extra);
        let (a, ra) = run(&p);
        let (b, rb) = run(&p);
        assert_eq!(ra, rb);
        assert_eq!(a.requests, b.requests, "{extra:?}");
        assert_eq!(a.transfers, b.transfers);
        assert_eq!(
            serde_json::to_string(&a.summary).unwrap(),
            serde_json::to_string(&b.summary).unwrap()
        );
    }
}

#[test]
fn disaggregation_errors_name_the_key() {
    use fleetsim::scenario::{self, validate};
    let err = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        match scenario::load(None, &sets).and_then(|s| validate::plan(&s)) {
            Ok(_) => panic!("{sets:?} should fail"),
            Err(e) => e.to_string(),
        }
    };
    assert!(err(&["cluster.mode=disagregated"]).contains("did you mean `disaggregated`"));
    assert!(err(&["cluster.mode=disaggregated", "cluster.decode.replicas=0"]).contains("cluster.decode.replicas"));
    assert!(err(&["cluster.mode=disaggregated", "cluster.prefill.tp=3"]).contains("cluster.prefill.tp"));
    assert!(err(&["cluster.mode=disaggregated", "cluster.decode.device=H99"]).contains("cluster.decode.device"));
    assert!(err(&["cluster.decode_router=random"]).contains("cluster.decode_router"));
    assert!(err(&["cluster.semi_pd.prefill_fraction=1.5", "cluster.mode=semi-pd"]).contains("prefill_fraction"));
    assert!(err(&["cluster.router=dual-map"]).contains("did you mean `dualmap`"));
    assert!(err(&["cluster.router_staleness=-1"]).contains("cluster.router_staleness"));
    assert!(err(&["cluster.prefil.replicas=2"]).contains("prefill"));
}
