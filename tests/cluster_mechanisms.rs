//! Cluster mechanisms on tiny hand-computed scenarios (exact times and
//! routing decisions with constant-time models): the first token of
//! disaggregated and semi-PD requests under async output processing, decode
//! admission under `max_num_seqs`, the refresh of stale load reports, exact
//! reports that follow requests' ends and same-instant arrivals, and the
//! decode-replica choice counting inbound hand-offs and ended requests.
//! Each assertion fails when its mechanism is removed.

mod common;

use common::{ListSource, plan};
use fleetsim::engine::Simulation;
use fleetsim::scenario::validate::Plan;
use fleetsim::workload::RequestSpec;

const DISAGG_1P1D: &[&str] = &[
    "cluster.mode=disaggregated",
    "cluster.prefill.replicas=1",
    "cluster.decode.replicas=1",
];

fn with(base: &[&str], extra: &[&str]) -> Plan {
    let mut v = base.to_vec();
    v.extend_from_slice(extra);
    plan(&v)
}

// ---------- first token: async output processing, as co-located ----------

/// Every iteration takes `.0` ns, of which `.1` are host time (scheduling
/// and launch, before the GPU work).
struct HostTime(u64, u64);

impl fleetsim::timing::TimeModel for HostTime {
    fn iteration(&self, _b: &fleetsim::timing::BatchShape) -> fleetsim::timing::IterationCost {
        fleetsim::timing::IterationCost {
            duration: self.0,
            flops: 0.0,
            hbm_bytes: 0.0,
            host: self.1,
            stage: self.0,
        }
    }
    fn peak_rates(&self) -> (f64, f64) {
        (1.0, 1.0)
    }
}

/// TTFTs (ns, by request id) of A (arrives at 0) and B (at 5 ms), both
/// prompt 100, output 3, with 10 ms iterations of which 2 ms host.
fn two_request_ttfts(p: &Plan) -> Vec<u64> {
    two_request_ttfts_of(p, 100)
}

/// One [`HostTime`] model per pool: 10 ms iterations, 2 ms of them host.
fn ten_ms_iterations(p: &Plan) -> Vec<Box<dyn fleetsim::timing::TimeModel>> {
    const MS: u64 = 1_000_000;
    p.pools
        .iter()
        .map(|_| Box::new(HostTime(10 * MS, 2 * MS)) as Box<dyn fleetsim::timing::TimeModel>)
        .collect()
}

/// [`two_request_ttfts`] with prompts of `prompt` tokens.
fn two_request_ttfts_of(p: &Plan, prompt: u32) -> Vec<u64> {
    const MS: u64 = 1_000_000;
    let models = ten_ms_iterations(p);
    let reqs = vec![
        RequestSpec::new(0, 0, prompt, 3),
        RequestSpec::new(1, 5 * MS, prompt, 3),
    ];
    let mut sim = Simulation::with_models(p, models, ListSource::boxed(reqs));
    sim.set_paranoid(true);
    let r = sim.run(&mut |_| {});
    assert_eq!(r.summary.completed, 2);
    let mut t: Vec<(u64, u64)> = r
        .requests
        .iter()
        .map(|q| (q.id, q.first_token - q.arrival))
        .collect();
    t.sort_unstable();
    t.into_iter().map(|x| x.1).collect()
}

#[test]
fn prefill_pool_first_token_follows_the_async_output_rule_of_colocated() {
    const MS: u64 = 1_000_000;
    // A's prefill runs 0–10 ms. At 10 ms the same replica launches B's
    // prefill (B arrived at 5 ms); A's token is processed while that
    // iteration runs: visible at 10 + 2 (host) = 12 ms. B's prefill ends at
    // 20 ms and nothing follows on that replica: visible at once, TTFT
    // 20 − 5 = 15 ms. Co-located, by the same rule, A's token shows once
    // the next iteration (B's prefill + A's decode) is launched, 12 ms; B's
    // once the one after (both decodes) is, at 22 ms: TTFT 17 ms.
    let colo = two_request_ttfts(&plan(&[]));
    assert_eq!(colo, [12 * MS, 17 * MS], "co-located");
    let inter = with(DISAGG_1P1D, &["cluster.kv_link=inter-node"]);
    let dis = two_request_ttfts(&inter);
    assert_eq!(dis, [12 * MS, 15 * MS], "disaggregated");
    // The same with 4,000-token prompts, whose 0.5 GB of KV (Llama-3-8B:
    // 128 KiB a token) takes over 2 ms on the inter-node link: each first
    // token becomes visible while its KV is still on its way, at the same
    // times.
    let long = two_request_ttfts_of(&inter, 4000);
    assert_eq!(long, [12 * MS, 15 * MS], "disaggregated, KV in flight");
    // Without async output processing a token shows at its iteration's end.
    let sync = two_request_ttfts(&with(DISAGG_1P1D, &["scheduler.async_output=false"]));
    assert_eq!(sync, [10 * MS, 15 * MS], "disaggregated, synchronous output");
    // Semi-PD (no bytes move, the hand-off is admitted at once): the
    // prefill worker has half the SMs, so its GPU part doubles: 2 + 2 × 8
    // = 18 ms. A: visible at 18 + 2 = 20 ms; B: prefill 18–36, idle after,
    // TTFT 36 − 5 = 31 ms.
    let semi = two_request_ttfts(&plan(&[
        "cluster.mode=semi-pd",
        "cluster.replicas=1",
        "cluster.semi_pd.prefill_fraction=0.5",
    ]));
    assert_eq!(semi, [20 * MS, 31 * MS], "semi-PD");
}

#[test]
fn decode_replica_admits_arrived_kv_only_while_its_batch_has_room() {
    // max_num_seqs = 2 on every replica; 10 ms iterations everywhere. The
    // prefill replica prefills A and B (0–10 ms), then C (10–20 ms). A and
    // B land first and fill the decode batch; C's KV lands (after 20 ms)
    // while both still decode (4 more tokens each), so it waits and is
    // admitted the instant A finished, not when its KV arrived.
    let p = with(
        DISAGG_1P1D,
        &["scheduler.max_num_seqs=2", "cluster.kv_link=inter-node"],
    );
    let ms = 1_000_000;
    let models: Vec<Box<dyn fleetsim::timing::TimeModel>> = vec![
        Box::new(common::ConstantTime(10 * ms)),
        Box::new(common::ConstantTime(10 * ms)),
    ];
    let reqs = (0..3).map(|i| RequestSpec::new(i, 0, 100, 5)).collect();
    let mut sim = Simulation::with_models(&p, models, ListSource::boxed(reqs));
    sim.set_paranoid(true);
    let r = sim.run(&mut |_| {});
    assert_eq!(r.summary.completed, 3);
    let t = |id| *r.transfers.iter().find(|t| t.id == id).unwrap();
    let fin = |id: u64| r.requests.iter().find(|q| q.id == id).unwrap().finish;
    let c = t(2);
    assert!(
        c.arrival < fin(0).min(fin(1)),
        "C's KV arrived while the batch was full"
    );
    assert_eq!(c.admitted, fin(0).min(fin(1)), "{c:?}");
    // A was admitted on arrival (the decode replica was idle) and started
    // decoding at once; B landed during that iteration and joined at its end.
    assert_eq!(t(0).admitted, t(0).arrival);
    assert_eq!(t(1).admitted, t(0).arrival + 10 * ms);
    // So A finished after 4 decode iterations, and C joined then.
    assert_eq!(c.admitted, t(0).arrival + 40 * ms);
}

// ---------- router load reports ----------

/// Runs `reqs` under `p` with constant `iteration` ns iterations, the
/// replica invariants checked after each; each request's replica, by id.
fn replicas_by_id(p: &Plan, iteration: u64, reqs: Vec<RequestSpec>) -> Vec<u32> {
    let mut sim = Simulation::with_source(
        p,
        Box::new(common::ConstantTime(iteration)),
        ListSource::boxed(reqs),
    );
    sim.set_paranoid(true);
    let r = sim.run(&mut |_| {});
    let mut picks: Vec<(u64, u32)> = r.requests.iter().map(|q| (q.id, q.replica)).collect();
    picks.sort_unstable();
    picks.into_iter().map(|x| x.1).collect()
}

#[test]
fn least_outstanding_sees_the_loads_of_the_last_refresh() {
    // Two replicas, reports refreshed every second, 10 ms iterations, each
    // request decoding 1000 tokens (10 s: all are outstanding to the end).
    // Arrivals at 0, 0.1, 1.5, 1.6, 1.7, 2.5 s. Refreshes happen at the
    // first event at or after each whole second.
    //   0.0 s: refreshed (0, 0) → replica 0.
    //   0.1 s: still (0, 0) as of 0 s → 0 again (exact would say 1).
    //   1.5 s: refreshed at 1.0 s: (2, 0) → 1.
    //   1.6, 1.7 s: still (2, 0) → 1, 1 (exact: 1, then a tie → 0).
    //   2.5 s: refreshed at 2.0 s: (2, 3) → 0.
    let p = plan(&[
        "cluster.replicas=2",
        "cluster.router=least-outstanding",
        "cluster.router_staleness=1.0",
    ]);
    let ms = 1_000_000;
    let at = [0, 100, 1500, 1600, 1700, 2500];
    let reqs = at
        .iter()
        .enumerate()
        .map(|(i, &t)| RequestSpec::new(i as u64, t * ms, 16, 1000))
        .collect();
    let picks = replicas_by_id(&p, 10 * ms, reqs);
    assert_eq!(picks, [0, 0, 1, 1, 1, 0]);
}

#[test]
fn exact_least_outstanding_sees_requests_end_and_same_instant_arrivals() {
    // Two replicas, exact reports, 10 ms iterations. A (1000 tokens to
    // decode) and B (2 tokens) arrive at 0; C and D at 1 s.
    //   A: (0, 0) → replica 0.   B: (1, 0) → 1.
    //   B's last token comes ~20 ms later: at 1 s the reports are (1, 0).
    //   C: (1, 0) → 1 — only if B's end reached the report (else a tie → 0).
    //   D, the same instant: (1, 1), a tie → 0 — only if C's arrival did.
    let p = plan(&["cluster.replicas=2", "cluster.router=least-outstanding"]);
    let ms = 1_000_000;
    let reqs = vec![
        RequestSpec::new(0, 0, 16, 1000),
        RequestSpec::new(1, 0, 16, 2),
        RequestSpec::new(2, 1000 * ms, 16, 1000),
        RequestSpec::new(3, 1000 * ms, 16, 1000),
    ];
    let picks = replicas_by_id(&p, 10 * ms, reqs);
    assert_eq!(picks, [0, 1, 1, 0]);
}

/// Runs `reqs` on one prefill replica (0) and two decode replicas (1, 2)
/// with `decode_router`, 10 ms iterations everywhere, invariants checked;
/// the report and the decode replica each request was handed to, by id.
fn one_prefill_two_decode(
    decode_router: &str,
    reqs: Vec<RequestSpec>,
) -> (fleetsim::metrics::Report, Vec<u32>) {
    let n = reqs.len() as u64;
    let router = format!("cluster.decode_router={decode_router}");
    let p = with(
        &[
            "cluster.mode=disaggregated",
            "cluster.prefill.replicas=1",
            "cluster.decode.replicas=2",
        ],
        &[&router],
    );
    let ms = 1_000_000;
    let models: Vec<Box<dyn fleetsim::timing::TimeModel>> = vec![
        Box::new(common::ConstantTime(10 * ms)),
        Box::new(common::ConstantTime(10 * ms)),
    ];
    let mut sim = Simulation::with_models(&p, models, ListSource::boxed(reqs));
    sim.set_paranoid(true);
    let r = sim.run(&mut |_| {});
    assert_eq!(r.summary.completed, n);
    let to = (0..n)
        .map(|id| r.transfers.iter().find(|t| t.id == id).unwrap().to)
        .collect();
    (r, to)
}

#[test]
fn decode_choice_counts_inbound_hand_offs_and_requests_that_ended() {
    // One prefill replica (0), two decode replicas (1, 2), decode router
    // least-outstanding (outstanding + hand-offs on their way), 10 ms
    // iterations. A (2,000 tokens to generate) and B (50) arrive at 0 and
    // are prefilled together; D (2) at 0.2 s; C (2) at 1 s.
    //   A: (0, 0) → 1.  B, same instant: (0 + 1 inbound, 0) → 2 — only if
    //   A's inbound hand-off counted.
    //   D at ~0.21 s: A and B decode, (1, 1), a tie → 1; D ends at once.
    //   B ends ~0.5 s. C at ~1.01 s: (1, 0) → 2 — only if B's end was seen
    //   (as of D's choice replica 2 had 1: a tie would send C to 1).
    let ms = 1_000_000;
    let reqs = vec![
        RequestSpec::new(0, 0, 100, 2000),
        RequestSpec::new(1, 0, 100, 50),
        RequestSpec::new(2, 200 * ms, 100, 2),
        RequestSpec::new(3, 1000 * ms, 100, 2),
    ];
    let (r, to) = one_prefill_two_decode("least-outstanding", reqs);
    let fin = |id: u64| r.requests.iter().find(|q| q.id == id).unwrap().finish;
    assert_eq!(to, [1, 2, 1, 2]);
    // The timeline the comment assumes.
    assert!(fin(2) < fin(1) && fin(1) < 1000 * ms && fin(0) > 1100 * ms);
}

#[test]
fn least_kv_decode_choice_weighs_held_blocks_in_tokens() {
    // One prefill replica (0), two decode replicas (1, 2), decode router
    // least-kv (KV tokens held, in whole 16-token blocks, + KV on its way),
    // 10 ms iterations. A (150-token prompt, 1,000 to generate) at 0 goes
    // to 1 (both empty). B (100 tokens) and C (10) arrive at 0.5 s and are
    // prefilled together, then handed off one after the other:
    //   B: replica 1 holds A's ~200 tokens (13 blocks = 208), 2 nothing → 2.
    //   C: 1 holds 208, 2 holds nothing but B's 101 tokens on their way:
    //   101 < 208 → 2. (Blocks not weighed in tokens, 13 or 13 + 16,
    //   would be less than 101 → 1.)
    let ms = 1_000_000;
    let reqs = vec![
        RequestSpec::new(0, 0, 150, 1000),
        RequestSpec::new(1, 500 * ms, 100, 1000),
        RequestSpec::new(2, 500 * ms, 10, 50),
    ];
    let (_, to) = one_prefill_two_decode("least-kv", reqs);
    assert_eq!(to, [1, 2, 2]);
}

#[test]
fn an_infinite_router_staleness_is_an_error_naming_the_key() {
    let s = common::scenario(&["cluster.router_staleness=inf"]);
    let e = fleetsim::scenario::validate::plan(&s).unwrap_err().to_string();
    assert!(
        e.contains("cluster.router_staleness") && e.contains("found inf"),
        "{e}"
    );
}

#[test]
fn a_first_token_is_revealed_while_its_kv_waits_for_room_at_the_decode_replica() {
    const MS: u64 = 1_000_000;
    // max_num_seqs = 1; iterations of 10 ms, 2 ms of them host. A (50
    // tokens to generate) is prefilled 0–10 ms and then holds the decode
    // replica's only seat for ~0.5 s. B (at 20 ms) is prefilled 20–30 ms;
    // its KV lands at once but waits for the seat. C (at 25 ms) is
    // prefilled from 30 ms, and as that iteration launches B's token is
    // processed: visible at 32 ms, TTFT 12 ms, while B still waits. C's
    // prefill ends at 40 ms with nothing after it: visible then, TTFT 15 ms.
    let p = with(DISAGG_1P1D, &["scheduler.max_num_seqs=1"]);
    let models = ten_ms_iterations(&p);
    let reqs = vec![
        RequestSpec::new(0, 0, 100, 50),
        RequestSpec::new(1, 20 * MS, 100, 3),
        RequestSpec::new(2, 25 * MS, 100, 3),
    ];
    let mut sim = Simulation::with_models(&p, models, ListSource::boxed(reqs));
    sim.set_paranoid(true);
    let r = sim.run(&mut |_| {});
    assert_eq!(r.summary.completed, 3);
    let rec = |id: u64| *r.requests.iter().find(|q| q.id == id).unwrap();
    let admitted = |id: u64| r.transfers.iter().find(|t| t.id == id).unwrap().admitted;
    assert!(admitted(1) > 40 * MS, "B waited for the seat past both reveals");
    assert_eq!(rec(1).first_token - rec(1).arrival, 12 * MS);
    assert_eq!(rec(2).first_token - rec(2).arrival, 15 * MS);
}
