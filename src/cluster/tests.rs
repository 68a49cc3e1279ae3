use super::*;
use crate::timing::{BatchShape, IterationCost};
use crate::workload::Prefix;

struct PerToken;
impl TimeModel for PerToken {
    fn iteration(&self, b: &BatchShape) -> IterationCost {
        IterationCost {
            duration: 1_000 + 100 * b.total_tokens(),
            ..Default::default()
        }
    }
    fn peak_rates(&self) -> (f64, f64) {
        (1.0, 1.0)
    }
}

/// The built-in router called `name`.
fn build(name: &str, seed: u64, replicas: usize) -> Box<dyn Router> {
    let spec = builtin_routers()
        .into_iter()
        .find(|r| r.name == name)
        .expect("a built-in router");
    spec.build(&crate::registry::RouterArgs { seed, replicas })
}

fn view<'a>(loads: &'a [Load]) -> View<'a> {
    View {
        now: 0,
        loads,
        index: None,
        model: &PerToken,
        limits: Limits {
            max_num_seqs: 256,
            token_budget: 2048,
        },
        block_size: 16,
        slo_ttft: 0.0,
    }
}

fn req(id: u64, group: Option<u64>) -> RequestSpec {
    let mut r = RequestSpec::new(id, 0, 1024, 10);
    if let Some(g) = group {
        r.prefix = Prefix::Group {
            group: g,
            tokens: 512,
        };
    }
    r
}

fn load(waiting: u32, backlog: u64) -> Load {
    Load {
        waiting,
        prefill_backlog: backlog,
        ..Default::default()
    }
}

#[test]
fn every_router_name_builds_and_routes_in_range() {
    let loads = vec![load(3, 3000), load(0, 0), load(1, 500), load(2, 100)];
    for spec in builtin_routers() {
        let name = &spec.name;
        let mut r = build(name, 7, loads.len());
        for id in 0..50 {
            let i = r.route(&req(id, Some(id % 3)), &view(&loads));
            assert!(i < loads.len(), "{name} routed out of range");
        }
    }
}

#[test]
fn round_robin_cycles_and_least_routers_pick_the_minimum() {
    let loads = vec![load(3, 10), load(0, 9000), load(1, 0)];
    let mut rr = build("round-robin", 0, 3);
    let picks: Vec<usize> = (0..6).map(|i| rr.route(&req(i, None), &view(&loads))).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    assert_eq!(
        build("least-outstanding", 0, 3).route(&req(0, None), &view(&loads)),
        1
    );
    assert_eq!(build("least-kv", 0, 3).route(&req(0, None), &view(&loads)), 2);
}

#[test]
fn random_is_seeded_and_roughly_uniform() {
    let loads = vec![Load::default(); 4];
    let run = |seed| {
        let mut r = build("random", seed, 4);
        (0..4000)
            .map(|i| r.route(&req(i, None), &view(&loads)))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
    let mut counts = [0; 4];
    for i in run(1) {
        counts[i] += 1;
    }
    assert!(counts.iter().all(|&c| (850..1150).contains(&c)), "{counts:?}");
}

#[test]
fn power_of_two_never_picks_the_most_loaded_of_two() {
    let loads = vec![load(10, 0), load(0, 0)];
    let mut r = build("power-of-two", 3, 2);
    for i in 0..20 {
        assert_eq!(r.route(&req(i, None), &view(&loads)), 1);
    }
}

#[test]
fn prefix_affinity_is_sticky_per_prefix_and_spreads_prefixes() {
    let loads = vec![Load::default(); 8];
    let mut r = build("prefix-affinity", 0, 8);
    let mut homes = Vec::new();
    for g in 0..64u64 {
        let a = r.route(&req(2 * g, Some(g)), &view(&loads));
        let b = r.route(&req(2 * g + 1, Some(g)), &view(&loads));
        assert_eq!(a, b, "a prefix always goes to the same replica");
        homes.push(a);
    }
    homes.sort_unstable();
    homes.dedup();
    assert!(homes.len() >= 6, "64 prefixes spread over the ring: {homes:?}");
}

#[test]
fn dualmap_uses_two_candidates_and_prefers_the_cached_one() {
    let loads = vec![Load::default(); 8];
    let mut d = affinity::DualMap::new(8);
    let key = affinity::prefix_key(&req(0, Some(5)), 16).unwrap();
    let (a, b) = d.candidates(key);
    assert_ne!(a, b);
    let first = d.route(&req(0, Some(5)), &view(&loads));
    assert!(first == a || first == b);
    // Same load everywhere: the replica believed to hold the prefix wins.
    for id in 1..10 {
        assert_eq!(d.route(&req(id, Some(5)), &view(&loads)), first);
    }
    // The cached candidate gets a long backlog: the other candidate wins.
    let mut busy = loads.clone();
    busy[first] = load(5, 50_000);
    let other = if first == a { b } else { a };
    assert_eq!(d.route(&req(20, Some(5)), &view(&busy)), other);
}

#[test]
fn dualmap_leaves_its_pair_only_when_the_pair_is_hot_against_the_mean() {
    let mut d = affinity::DualMap::new(8);
    let r = req(0, Some(5));
    let (a, b) = d.candidates(affinity::prefix_key(&r, 16).unwrap());
    let spare = (0..8).find(|&i| i != a && i != b).unwrap();
    // Every replica holds 10 requests, `spare` 2: the mean is 72 / 8 = 9
    // and the pair's 10 is not over 2 · 9 + 1, so the request stays on the
    // pair (the least-outstanding replica would be `spare`).
    let mut even = vec![load(10, 0); 8];
    even[spare] = load(2, 0);
    let pick = d.route(&r, &view(&even));
    assert!(pick == a || pick == b, "{pick} left the pair {a}, {b}");
    // The pair at 30 each, the rest at 1 and `spare` idle: mean 65 / 8 =
    // 8.125, 30 > 2 · 8.125 + 1: a hotspot, so the least-outstanding replica.
    let mut hot = vec![load(1, 0); 8];
    (hot[a], hot[b], hot[spare]) = (load(30, 0), load(30, 0), load(0, 0));
    assert_eq!(d.route(&req(1, Some(5)), &view(&hot)), spare);
}

#[test]
fn dualmap_never_calls_a_pair_of_two_requests_a_hotspot() {
    // 16 replicas, all idle but the pair: with 2 requests each the mean
    // is 0.25 and 2 > 2 · 0.25 + 1, but a pair holding at most
    // HOTSPOT_FACTOR = 2 requests is never hot: the request stays. With 3
    // each (mean 0.375, 3 > 1.75) it moves to the first idle replica.
    for (held, stays) in [(2, true), (3, false)] {
        let mut d = affinity::DualMap::new(16);
        let r = req(0, Some(5));
        let (a, b) = d.candidates(affinity::prefix_key(&r, 16).unwrap());
        let mut loads = vec![Load::default(); 16];
        (loads[a], loads[b]) = (load(held, 0), load(held, 0));
        let idle = (0..16).find(|&i| i != a && i != b).unwrap();
        let pick = d.route(&r, &view(&loads));
        if stays {
            assert!(
                pick == a || pick == b,
                "{held} each: {pick} left the pair {a}, {b}"
            );
        } else {
            assert_eq!(pick, idle, "{held} each");
        }
    }
}

#[test]
fn dualmap_falls_back_when_both_candidates_miss_the_slo() {
    let mut loads = vec![load(1, 20_000); 8];
    loads[6] = Load::default();
    let mut d = affinity::DualMap::new(8);
    let (a, b) = d.candidates(affinity::prefix_key(&req(0, Some(9)), 16).unwrap());
    if a == 6 || b == 6 {
        loads.swap(6, (a.max(b) + 1) % 8);
    }
    let free = loads.iter().position(|l| l.prefill_backlog == 0).unwrap();
    let mut v = view(&loads);
    v.slo_ttft = 0.001; // 20k backlog tokens take ~2 ms here
    assert_eq!(d.route(&req(0, Some(9)), &v), free);
}

#[test]
fn predictive_picks_the_lowest_predicted_ttft() {
    // Replica 0: short queue of huge prompts; replica 1: more, tiny requests.
    let loads = vec![load(1, 30_000), load(6, 600)];
    let mut p = build("predictive", 0, 2);
    assert_eq!(p.route(&req(0, None), &view(&loads)), 1);
    // least-outstanding would have picked 0.
    assert_eq!(
        build("least-outstanding", 0, 2).route(&req(0, None), &view(&loads)),
        0
    );
}

/// Prices every part of a batch differently, so a prediction that drops or
/// doubles a part shows: 1 µs per iteration, 100 ns per prefill token,
/// 10 ns per decoding sequence, 1 ns per decode KV token.
struct ByPart;
impl TimeModel for ByPart {
    fn iteration(&self, b: &BatchShape) -> IterationCost {
        IterationCost {
            duration: 1_000 + 100 * b.prefill_tokens + 10 * b.decode_seqs as u64 + b.decode_kv_tokens,
            ..Default::default()
        }
    }
    fn peak_rates(&self) -> (f64, f64) {
        (1.0, 1.0)
    }
}

#[test]
fn a_prefill_prediction_is_whole_budget_chunks_then_the_rest_each_with_the_decodes() {
    let decoding = Load {
        decoding: 4,
        kv_tokens: 500,
        prefill_backlog: 3_000,
        ..Default::default()
    };
    let secs =
        |load: &Load, new: u64| (predictive::predict_prefill_time(load, new, &ByPart, 2048) * 1e9).round();
    // 4,096 tokens: two chunks of 2,048, each 1,000 + 204,800 + 40 + 500 ns.
    assert_eq!(secs(&decoding, 1_096), 412_680.0);
    // 5,000 tokens: the two chunks and a rest of 904 (1,000 + 90,400 + 540).
    assert_eq!(secs(&decoding, 2_000), 504_620.0);
    // KV held by prefilling requests only: no decode step, its KV unpriced.
    let prefilling = Load {
        decoding: 0,
        kv_tokens: 700,
        ..Default::default()
    };
    assert_eq!(secs(&prefilling, 100), 11_000.0);
    assert_eq!(secs(&Load::default(), 0), 0.0, "nothing to prefill takes no time");
}

#[test]
fn predictive_breaks_ties_toward_the_lowest_index() {
    let loads = vec![load(2, 700); 3];
    assert_eq!(build("predictive", 0, 3).route(&req(0, None), &view(&loads)), 0);
}

#[test]
fn session_affinity_keeps_a_client_on_its_first_replica() {
    let mut loads = vec![Load::default(); 3];
    let mut s = build("session-affinity", 0, 3);
    let mut r = req(0, None);
    r.client = 4;
    let home = s.route(&r, &view(&loads));
    loads[home] = load(50, 0);
    assert_eq!(s.route(&r, &view(&loads)), home);
    r.client = 5;
    assert_ne!(s.route(&r, &view(&loads)), home);
}

#[test]
fn session_affinity_routes_a_session_by_its_id_and_the_rest_by_client() {
    let mut loads = vec![Load::default(); 3];
    let mut s = build("session-affinity", 0, 3);
    // A turn of session 77.
    let mut turn = RequestSpec::new(0, 0, 1024, 10);
    turn.session = Some(77);
    let home = s.route(&turn, &view(&loads));
    assert_eq!(home, 0, "least-outstanding picks the first home");
    loads[0] = load(50, 0);
    assert_eq!(s.route(&turn, &view(&loads)), 0, "later turns follow");
    // Another session, same client 0: a new home (least-outstanding).
    turn.session = Some(78);
    assert_eq!(s.route(&turn, &view(&loads)), 1);
    // A request of no session (a system prompt's group is no session):
    // client 0 has no home yet, so least-outstanding (1), then it sticks.
    let sys = req(5, Some(3));
    assert_eq!(s.route(&sys, &view(&loads)), 1);
    loads[1] = load(60, 0);
    assert_eq!(s.route(&req(6, Some(4)), &view(&loads)), 1, "client 0 sticks");
}

#[test]
fn session_affinity_forgets_a_session_that_is_over() {
    let mut loads = vec![Load::default(); 3];
    let mut s = super::routers::SessionAffinity::default();
    let mut turn = RequestSpec::new(0, 0, 1024, 10);
    turn.session = Some(77);
    assert_eq!(s.route(&turn, &view(&loads)), 0);
    loads[0] = load(50, 0);
    assert_eq!(s.route(&turn, &view(&loads)), 0, "remembered");
    assert_eq!(s.remembered(), 1);
    s.session_over(77);
    assert_eq!(s.remembered(), 0);
    // Forgotten: placed afresh by least-outstanding.
    assert_eq!(s.route(&turn, &view(&loads)), 1);
    // A thousand sessions, each over after its turns: nothing is kept.
    for id in 1000..2000 {
        turn.session = Some(id);
        s.route(&turn, &view(&loads));
        s.route(&turn, &view(&loads));
        s.session_over(id);
    }
    assert_eq!(s.remembered(), 1, "only session 77, not over");
}

/// A step with given roofline figures: 1 ms host + max(compute, memory)
/// on a device of 1e15 FLOP/s and 1e12 B/s.
struct Roofline {
    flops: f64,
    bytes: f64,
}
impl TimeModel for Roofline {
    fn iteration(&self, _b: &BatchShape) -> IterationCost {
        let gpu = (self.flops / 1e15).max(self.bytes / 1e12);
        IterationCost {
            duration: 1_000_000 + (gpu * 1e9).round() as u64,
            flops: self.flops,
            hbm_bytes: self.bytes,
            host: 1_000_000,
            stage: 0,
        }
    }
    fn peak_rates(&self) -> (f64, f64) {
        (1e15, 1e12)
    }
}

#[test]
fn semi_pd_workers_split_hbm_bandwidth_by_their_sm_shares() {
    use disagg::Partitioned;
    let b = BatchShape::default();
    // A memory-bound decode step: 4 GB read (4 ms at the full 1 TB/s),
    // 1 GFLOP (1 µs of compute): 5 ms alone.
    let decode = Roofline {
        flops: 1e9,
        bytes: 4e9,
    };
    assert_eq!(decode.iteration(&b).duration, 5_000_000);
    // Prefill worker 40% of the SMs, decode worker 60%: the decode worker
    // reads at 0.6 TB/s, 4 GB in 6.667 ms, + 1 ms host. (Were a worker
    // with 60% of the SMs given the whole bandwidth, as two workers cannot
    // both have, the step would stay at 5 ms.)
    let on = |share| {
        Partitioned {
            inner: &decode,
            share,
        }
        .iteration(&b)
        .duration
    };
    assert_eq!(on(0.6), 1_000_000 + 6_666_667);
    // The prefill worker's own memory-bound step reads at 0.4 TB/s: 10 ms.
    // Together the two draw 4 GB / 10 ms + 4 GB / 6.667 ms = 1 TB/s: the peak.
    assert_eq!(on(0.4), 1_000_000 + 10_000_000);
    // Compute-bound: 4e12 FLOP = 4 ms at peak; with 40% of the SMs, 10 ms.
    let prefill = Roofline {
        flops: 4e12,
        bytes: 1e9,
    };
    assert_eq!(
        Partitioned {
            inner: &prefill,
            share: 0.4
        }
        .iteration(&b)
        .duration,
        11_000_000
    );
    // Half and half: each worker's decode step takes twice as long.
    assert_eq!(on(0.5), 1_000_000 + 8_000_000);
}

#[test]
fn a_semi_pd_workers_stages_slow_down_by_its_sm_share() {
    /// Two stages of 3 ms and 1 ms.
    struct TwoStages;
    impl TimeModel for TwoStages {
        fn iteration(&self, _b: &BatchShape) -> IterationCost {
            IterationCost::default()
        }
        fn stage_times(&self, _b: &BatchShape, out: &mut Vec<f64>) {
            out.clear();
            out.extend([3e-3, 1e-3]);
        }
        fn peak_rates(&self) -> (f64, f64) {
            (1.0, 1.0)
        }
    }
    let mut out = Vec::new();
    let worker = disagg::Partitioned {
        inner: &TwoStages,
        share: 0.25,
    };
    worker.stage_times(&BatchShape::default(), &mut out);
    // A quarter of the SMs: each stage 4 times as long.
    assert_eq!(out, [12e-3, 4e-3]);
}

#[test]
fn predictive_counts_the_prefix_it_believes_each_replica_holds() {
    // PerToken: an iteration of n tokens takes 1000 + 100 n ns; budget
    // 2048, so every prediction here is one iteration. Requests: 1024-token
    // prompts, group 5's first 512 tokens shared (32 blocks of 16).
    let mut p = build("predictive", 0, 2);
    // First request of group 5: replica 0's backlog is huge, so replica 1
    // (0 backlog + 1024 new) gets it, and the router notes group 5 there.
    let first = p.route(&req(0, Some(5)), &view(&[load(1, 5000), load(0, 0)]));
    assert_eq!(first, 1);
    // Now replica 1 has 300 backlog tokens, replica 0 none. Replica 0:
    // 1024 new tokens → 1000 + 102_400 ns. Replica 1: 300 + (1024 − 512
    // cached) = 812 → 1000 + 81_200 ns: replica 1 wins — only because of
    // its cached prefix (without it, 1324 tokens → 133_400 ns).
    let loads = [load(0, 0), load(1, 300)];
    assert_eq!(p.route(&req(1, Some(5)), &view(&loads)), 1);
    // A request of another group has no hit anywhere: replica 0.
    assert_eq!(p.route(&req(2, Some(6)), &view(&loads)), 0);
}

proptest::proptest! {
    /// Every built-in router answers the same through the engine's indexes
    /// (a `Board` keeping what the router asks for) as through scans of
    /// the same reports, over random report changes (few distinct values,
    /// so ties are common; loads high enough for DualMap's hotspots) and
    /// requests with and without shared prefixes and sessions, with a TTFT
    /// SLO tight enough for DualMap's fallback. The index would be wrong
    /// on a stale tree, a wrong tie-break or a wrong total.
    #[test]
    fn every_router_routes_the_same_with_and_without_indexes(
        n in 1usize..12,
        seed in 0u64..4,
        steps in proptest::collection::vec(
            (0usize..12, 0u32..4, 0u32..12, 0u64..3, 0u64..3, 0u64..6, proptest::bool::ANY),
            1..60,
        ),
    ) {
        for spec in builtin_routers() {
            let mut plain = spec.build(&crate::registry::RouterArgs { seed, replicas: n });
            let mut indexed = spec.build(&crate::registry::RouterArgs { seed, replicas: n });
            let mut loads = vec![Load::default(); n];
            let mut board = index::Board::new(loads.clone(), indexed.indexes());
            for (id, &(i, waiting, running, kv, backlog, group, session)) in steps.iter().enumerate() {
                let l = Load {
                    waiting,
                    running,
                    decoding: running,
                    kv_tokens: kv * 1000,
                    prefill_backlog: backlog * 4000,
                };
                loads[i % n] = l;
                board.set(i % n, l);
                let mut r = req(id as u64, (group < 4).then_some(group));
                if session {
                    r.session = Some(group);
                }
                let mut v = view(&loads);
                v.slo_ttft = 0.0005;
                let a = plain.route(&r, &v);
                let (bl, ix) = board.view();
                let mut w = view(bl);
                w.slo_ttft = 0.0005;
                w.index = Some(ix);
                let b = indexed.route(&r, &w);
                proptest::prop_assert_eq!(a, b, "{} at step {}", spec.name, id);
            }
        }
    }
}
