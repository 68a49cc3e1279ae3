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

/// 1 ms per iteration plus 0.1 ms per prefill token (µs-exact).
struct PerPrefillToken;

impl fleetsim::timing::TimeModel for PerPrefillToken {
    fn iteration(&self, b: &fleetsim::timing::BatchShape) -> fleetsim::timing::IterationCost {
        let d = MS + b.prefill_tokens * 100_000;
        fleetsim::timing::IterationCost {
            duration: d,
            stage: d,
            ..Default::default()
        }
    }
    fn peak_rates(&self) -> (f64, f64) {
        (1.0, 1.0)
    }
}

fn run_with(sets: &[&str], model: Box<dyn fleetsim::timing::TimeModel>) -> Report {
    let p = plan(sets);
    let w = workload::build(&p.scenario.workload).expect("workload builds");
    let mut sim = Simulation::with_workload(&p, vec![model], w);
    sim.set_paranoid(true);
    sim.run(&mut |_| {})
}

const TWO_TURNS: &[&str] = &[
    "workload.sessions.users=1",
    "workload.sessions.turns.kind=fixed",
    "workload.sessions.turns.value=2",
    "workload.sessions.think_time.kind=fixed",
    "workload.sessions.think_time.value=1",
    "workload.sessions.new_tokens.kind=fixed",
    "workload.sessions.new_tokens.value=16",
    "workload.count=2",
    "workload.prompt.kind=fixed",
    "workload.prompt.value=32",
    "workload.output.kind=fixed",
    "workload.output.value=17",
    "scheduler.async_output=false",
];

/// One user, two turns, one replica with prefix caching, 16-token blocks,
/// iterations of 1 ms + 0.1 ms per prefill token. Turn 1: 32-token prompt,
/// prefill 4.2 ms (TTFT), 16 decodes: done at 20.2 ms; its KV holds
/// 32 + 16 = 48 tokens, 3 full blocks, which stay cached. After a 1 s think
/// time turn 2 (at 1020.2 ms) sends the history (32 + 17) plus 16 new
/// tokens: 65, of which 48 are cached, so its prefill computes 17 (the
/// new 16 and the answer's last token, whose KV was never computed):
/// TTFT 1 + 1.7 = 2.7 ms. Without prefix caching it computes all 65: 7.5 ms.
#[test]
fn a_sessions_next_turn_computes_only_what_is_new() {
    let on = [TWO_TURNS, &["scheduler.prefix_caching=true"]].concat();
    let r = run_with(&on, Box::new(PerPrefillToken));
    let (t1, t2) = (&r.requests[0], &r.requests[1]);
    assert_eq!((t1.session, t2.session), (Some(0), Some(0)));
    assert_eq!(t1.ttft_ns(), Some(4_200_000));
    assert_eq!(t1.finish, 20_200_000);
    assert_eq!(t2.arrival, 1_020_200_000);
    assert_eq!(t2.prompt_tokens, 65);
    assert_eq!(t2.cached_tokens, 48);
    assert_eq!(t2.ttft_ns(), Some(2_700_000));
    let off = [TWO_TURNS, &["scheduler.prefix_caching=false"]].concat();
    let r = run_with(&off, Box::new(PerPrefillToken));
    assert_eq!(r.requests[1].cached_tokens, 0);
    assert_eq!(r.requests[1].ttft_ns(), Some(7_500_000));
}

/// Many closed-loop users, varied lengths, two replicas, three seeds:
/// every turn after a session's first is sent exactly its think time
/// (fixed 0.5 s) after the previous turn ended, and its cached prefix is
/// exactly the full blocks of that history (prompt + answer − its last
/// token), while every first turn has no hit: hits only ever come from
/// earlier, completed turns of the same session.
#[test]
fn closed_loop_turns_wait_for_their_answers_and_hit_only_their_history() {
    for seed in [1, 2, 3] {
        let s = format!("workload.seed={seed}");
        let r = run(
            &[
                "workload.sessions.users=12",
                "workload.sessions.turns.kind=uniform",
                "workload.sessions.turns.min=1",
                "workload.sessions.turns.max=5",
                "workload.sessions.think_time.kind=fixed",
                "workload.sessions.think_time.value=0.5",
                "workload.sessions.new_tokens.kind=uniform",
                "workload.sessions.new_tokens.min=1",
                "workload.sessions.new_tokens.max=200",
                "workload.prompt.kind=uniform",
                "workload.prompt.min=1",
                "workload.prompt.max=400",
                "workload.output.kind=uniform",
                "workload.output.min=1",
                "workload.output.max=100",
                "workload.count=300",
                "cluster.replicas=2",
                "cluster.router=session-affinity",
                "scheduler.prefix_caching=true",
                &s,
            ],
            5 * MS,
        );
        let mut by_session: std::collections::BTreeMap<u64, Vec<&RequestRecord>> = Default::default();
        for rec in &r.requests {
            by_session
                .entry(rec.session.expect("every turn has a session"))
                .or_default()
                .push(rec);
        }
        assert!(by_session.len() > 12, "users started new sessions");
        for turns in by_session.values() {
            assert_eq!(
                turns[0].cached_tokens, 0,
                "seed {seed}: a first turn hit the cache"
            );
            for w in turns.windows(2) {
                let (prev, next) = (w[0], w[1]);
                assert_eq!(
                    next.arrival,
                    prev.finish + 500 * MS,
                    "seed {seed}: turn {}",
                    next.id
                );
                let history = prev.prompt_tokens + prev.output_tokens;
                assert!(next.prompt_tokens > history);
                assert_eq!(
                    next.cached_tokens,
                    (history - 1) / 16 * 16,
                    "seed {seed}: turn {}",
                    next.id
                );
            }
        }
    }
}

/// session-affinity keeps each session on one replica and spreads
/// sessions over the replicas: eight users on four replicas.
#[test]
fn session_affinity_keeps_closed_loop_sessions_home_and_spreads_them() {
    let r = run(
        &[
            "workload.sessions.users=8",
            "workload.sessions.think_time.kind=fixed",
            "workload.sessions.think_time.value=0.1",
            "workload.count=200",
            "cluster.replicas=4",
            "cluster.router=session-affinity",
        ],
        5 * MS,
    );
    let mut home: std::collections::BTreeMap<u64, u32> = Default::default();
    for rec in &r.requests {
        let h = *home.entry(rec.session.unwrap()).or_insert(rec.replica);
        assert_eq!(h, rec.replica, "session {:?} moved", rec.session);
    }
    let used: std::collections::BTreeSet<u32> = home.values().copied().collect();
    assert_eq!(used.len(), 4, "sessions spread over every replica: {used:?}");
}

/// Open-loop session starts follow `workload.arrivals`: constant, 2/s,
/// with one-turn sessions: turn i is sent at 0.5·i s.
#[test]
fn open_loop_sessions_start_on_the_arrival_process() {
    let r = run(
        &[
            "workload.sessions.users=0",
            "workload.sessions.turns.kind=fixed",
            "workload.sessions.turns.value=1",
            "workload.arrivals.kind=constant",
            "workload.arrivals.rate=2",
            "workload.count=6",
        ],
        5 * MS,
    );
    let at: Vec<Nanos> = r.requests.iter().map(|r| r.arrival).collect();
    assert_eq!(at, (0..6).map(|i| i * 500 * MS).collect::<Vec<_>>());
    let sessions: Vec<Option<u64>> = r.requests.iter().map(|r| r.session).collect();
    assert_eq!(sessions, (0..6).map(Some).collect::<Vec<_>>());
}

/// A request keeps its session through a prefill → decode hand-off, and the
/// closed loop runs across disaggregated pools.
#[test]
fn sessions_survive_disaggregation() {
    let r = run(
        &[
            "cluster.mode=disaggregated",
            "cluster.prefill.replicas=1",
            "cluster.decode.replicas=2",
            "workload.sessions.users=6",
            "workload.sessions.think_time.kind=fixed",
            "workload.sessions.think_time.value=0.2",
            "workload.count=60",
        ],
        5 * MS,
    );
    assert_eq!(r.requests.len(), 60);
    assert!(r.requests.iter().all(|rec| rec.session.is_some()));
    let sessions: std::collections::BTreeSet<u64> = r.requests.iter().filter_map(|r| r.session).collect();
    assert!(sessions.len() >= 6);
}

/// `workload.duration` bounds the send times of fixed-concurrency clients
/// and `workload.count` their number, whichever comes first: one client,
/// 20 ms per request, a 50 ms duration: sent at 0, 20 and 40 ms (60 > 50);
/// with count 2 as well, only two.
#[test]
fn fixed_concurrency_stops_at_the_duration_or_the_count() {
    let base = [
        "workload.concurrency=1",
        "workload.prompt.kind=fixed",
        "workload.prompt.value=16",
        "workload.output.kind=fixed",
        "workload.output.value=2",
        "scheduler.async_output=false",
        "workload.duration=0.05",
    ];
    let sends = |extra: &[&str]| -> Vec<Nanos> {
        let sets = [&base[..], extra].concat();
        run(&sets, 10 * MS)
            .requests
            .iter()
            .map(|r| r.arrival / MS)
            .collect()
    };
    assert_eq!(sends(&["workload.count=0"]), [0, 20, 40]);
    assert_eq!(sends(&["workload.count=2"]), [0, 20]);
}

/// Open-loop session starts interleave with the turns already under way:
/// a start every second (constant arrivals), two turns per session, 10 ms
/// per request (16-token prompt, 1 token out), a think time of 0.99 s, so
/// each second turn is ready exactly when the next session starts: the
/// ready turn goes first. A duration of 2.5 s stops both.
#[test]
fn open_loop_session_starts_and_later_turns_interleave_in_time_order() {
    let base = [
        "workload.sessions.users=0",
        "workload.sessions.turns.kind=fixed",
        "workload.sessions.turns.value=2",
        "workload.sessions.think_time.kind=fixed",
        "workload.sessions.think_time.value=0.99",
        "workload.arrivals.kind=constant",
        "workload.arrivals.rate=1",
        "workload.prompt.kind=fixed",
        "workload.prompt.value=16",
        "workload.output.kind=fixed",
        "workload.output.value=1",
        "workload.count=6",
        "scheduler.async_output=false",
    ];
    let order = |extra: &[&str]| -> Vec<(u64, Nanos)> {
        let sets = [&base[..], extra].concat();
        let r = run(&sets, 10 * MS);
        r.requests
            .iter()
            .map(|r| (r.session.unwrap(), r.arrival / MS))
            .collect()
    };
    let want = [(0, 0), (0, 1000), (1, 1000), (1, 2000), (2, 2000), (2, 3000)];
    assert_eq!(order(&[]), want);
    assert_eq!(order(&["workload.duration=2.5"]), want[..5]);
    // workload.max_tokens caps every turn's answer.
    let capped = run(
        &[&base[..], &["workload.output.value=50", "workload.max_tokens=5"]].concat(),
        10 * MS,
    );
    assert!(capped.requests.iter().all(|r| r.output_tokens == 5));
}

/// Logs what the engine tells a workload, around the workload it wraps.
struct Listener {
    inner: Box<dyn fleetsim::workload::feedback::Workload>,
    log: std::rc::Rc<std::cell::RefCell<Vec<(char, u64, Nanos)>>>,
}

impl fleetsim::workload::feedback::Workload for Listener {
    fn next_arrival(&mut self) -> Option<Nanos> {
        self.inner.next_arrival()
    }
    fn take_request(&mut self) -> Option<fleetsim::workload::RequestSpec> {
        self.inner.take_request()
    }
    fn on_complete(&mut self, c: &fleetsim::workload::feedback::Completion) {
        self.log.borrow_mut().push(('c', c.id, c.finish));
        self.inner.on_complete(c);
    }
    fn listens(&self) -> bool {
        true
    }
    fn on_first_token(&mut self, t: &fleetsim::workload::feedback::FirstToken) {
        self.log.borrow_mut().push(('f', t.id, t.at));
    }
    fn listens_first_tokens(&self) -> bool {
        true
    }
}

/// Every iteration 4 ms, of which 1 ms is host work (so async output
/// processing shows tokens 1 ms after the next launch).
struct HostTime;

impl fleetsim::timing::TimeModel for HostTime {
    fn iteration(&self, _b: &fleetsim::timing::BatchShape) -> fleetsim::timing::IterationCost {
        fleetsim::timing::IterationCost {
            duration: 4 * MS,
            flops: 0.0,
            hbm_bytes: 0.0,
            host: MS,
            stage: 4 * MS,
        }
    }
    fn peak_rates(&self) -> (f64, f64) {
        (1.0, 1.0)
    }
}

/// The workload hears each request's first token exactly once, at the time
/// its record shows, and before its end — synchronous and async output,
/// static batches (whose responses return at the batch's end) and
/// disaggregated pools (where the first token is revealed on the prefill
/// side while the KV travels). Outputs of 1 to 6 tokens, so some requests
/// finish in their prefill iteration.
#[test]
fn the_workload_hears_every_first_token_before_its_end() {
    let common = [
        "workload.concurrency=6",
        "workload.count=60",
        "workload.prompt.kind=uniform",
        "workload.prompt.min=16",
        "workload.prompt.max=200",
        "workload.output.kind=uniform",
        "workload.output.min=1",
        "workload.output.max=6",
    ];
    let variants: [&[&str]; 6] = [
        &["scheduler.async_output=true"],
        &["scheduler.async_output=false"],
        &["scheduler.kind=fastertransformer", "scheduler.async_output=true"],
        &["scheduler.kind=fastertransformer", "scheduler.async_output=false"],
        &[
            "cluster.mode=disaggregated",
            "cluster.prefill.replicas=1",
            "cluster.decode.replicas=2",
            "scheduler.async_output=true",
        ],
        &["cluster.mode=semi-pd", "scheduler.async_output=true"],
    ];
    for extra in variants {
        let sets: Vec<&str> = common.iter().chain(extra.iter()).copied().collect();
        let p = plan(&sets);
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let w = Listener {
            inner: workload::build(&p.scenario.workload).expect("workload builds"),
            log: log.clone(),
        };
        let models: Vec<Box<dyn fleetsim::timing::TimeModel>> = (0..p.pools.len())
            .map(|_| Box::new(HostTime) as Box<dyn fleetsim::timing::TimeModel>)
            .collect();
        let mut sim = Simulation::with_workload(&p, models, Box::new(w));
        sim.set_paranoid(true);
        let r = sim.run(&mut |_| {});
        let log = log.borrow();
        assert_eq!(r.requests.len(), 60, "{extra:?}");
        let mut async_seen = false;
        for rec in &r.requests {
            let firsts: Vec<usize> = (0..log.len())
                .filter(|&i| log[i].0 == 'f' && log[i].1 == rec.id)
                .collect();
            assert_eq!(
                firsts.len(),
                1,
                "{extra:?}: request {} heard {} first tokens",
                rec.id,
                firsts.len()
            );
            let f = firsts[0];
            assert_eq!(log[f].2, rec.first_token, "{extra:?}: request {}", rec.id);
            let end = log
                .iter()
                .position(|e| e.0 == 'c' && e.1 == rec.id)
                .expect("its end is heard");
            assert!(
                f < end,
                "{extra:?}: request {} ended before its first token was heard",
                rec.id
            );
            async_seen |= rec.first_token % (4 * MS) != 0;
        }
        // With async output the first tokens show 1 ms into the next iteration.
        assert_eq!(
            async_seen,
            extra.contains(&"scheduler.async_output=true"),
            "{extra:?}"
        );
    }
}

/// What a router heard, in order: a routed request's session, or that a
/// session is over.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Heard {
    Routed(Option<u64>),
    Over(u64),
}

/// Sends everything to replica 0 and logs what it hears.
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<Heard>>>);

impl fleetsim::cluster::Router for Recorder {
    fn route(&mut self, req: &fleetsim::workload::RequestSpec, _v: &fleetsim::cluster::View) -> usize {
        self.0.lock().unwrap().push(Heard::Routed(req.session));
        0
    }
    fn session_over(&mut self, session: u64) {
        self.0.lock().unwrap().push(Heard::Over(session));
    }
}

/// Runs `sets` with cluster.router = a [`Recorder`]; what it heard.
fn heard(sets: &[&str]) -> (Report, Vec<Heard>) {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut registry = fleetsim::registry::Registry::builtin();
    let shared = log.clone();
    registry
        .register_router(fleetsim::registry::RouterSpec::new(
            "recorder",
            "logs",
            move |_| Box::new(Recorder(shared.clone())),
        ))
        .unwrap();
    let mut sets = sets.to_vec();
    sets.push("cluster.router=recorder");
    let p = fleetsim::scenario::validate::plan_with(&common::scenario(&sets), &registry).unwrap();
    let w = workload::build(&p.scenario.workload).expect("workload builds");
    let mut sim = Simulation::with_workload(&p, vec![Box::new(ConstantTime(5 * MS))], w);
    sim.set_paranoid(true);
    let r = sim.run(&mut |_| {});
    let log = log.lock().unwrap().clone();
    (r, log)
}

/// Routers are told once per session that it is over, after its last
/// routed turn, so one that remembers sessions forgets each: closed-loop
/// sessions of 1–6 turns whose prompts grow past max_model_len (2,048:
/// 1,000-token first prompts, 200 new tokens and 100-token answers per
/// turn: turn k needs 1,100 + 300·(k − 1) tokens, 2,000 at k = 4 and
/// 2,300 at k = 5), so sessions of up to 4 turns end at their planned
/// last turn and longer ones at their refused fifth.
#[test]
fn a_router_hears_once_per_session_that_it_is_over() {
    let (r, log) = heard(&[
        "workload.sessions.users=6",
        "workload.sessions.turns.kind=uniform",
        "workload.sessions.turns.min=1",
        "workload.sessions.turns.max=6",
        "workload.sessions.think_time.kind=fixed",
        "workload.sessions.think_time.value=0.01",
        "workload.sessions.new_tokens.kind=fixed",
        "workload.sessions.new_tokens.value=200",
        "workload.prompt.kind=fixed",
        "workload.prompt.value=1000",
        "workload.output.kind=fixed",
        "workload.output.value=100",
        "model.max_model_len=2048",
        "workload.count=300",
    ]);
    let refused = r.requests.iter().filter(|q| !q.is_finished()).count();
    assert!(refused > 0, "some sessions end at a refused turn");
    let mut over = std::collections::BTreeMap::new();
    for (at, h) in log.iter().enumerate() {
        match *h {
            Heard::Over(s) => assert!(over.insert(s, at).is_none(), "session {s} over twice"),
            Heard::Routed(Some(s)) => assert!(!over.contains_key(&s), "session {s} routed after it was over"),
            Heard::Routed(None) => panic!("a closed-loop turn without a session"),
        }
    }
    let sessions: std::collections::BTreeSet<u64> = r.requests.iter().filter_map(|q| q.session).collect();
    // Every session is over but those the count cut short (at most one in
    // progress per user when the last turn was sent).
    assert!(over.keys().all(|s| sessions.contains(s)));
    // A refused turn ends its session, which the router hears of.
    for q in r.requests.iter().filter(|q| !q.is_finished()) {
        let s = q.session.unwrap();
        assert!(
            over.contains_key(&s),
            "session {s} ended at a refused turn unheard"
        );
    }
    assert!(
        over.len() + 6 >= sessions.len(),
        "{} of {} over",
        over.len(),
        sessions.len()
    );
}

/// Open-loop sessions (`prefix.kind = "sessions"`, short enough that no
/// turn is refused): each conversation is over once its last turn is
/// routed, and no later turn has its id.
#[test]
fn open_loop_sessions_are_over_after_their_last_turn() {
    let (_, log) = heard(&[
        "workload.prefix.kind=sessions",
        "workload.prefix.turns=3",
        "workload.prefix.sessions=4",
        "workload.prompt.kind=fixed",
        "workload.prompt.value=100",
        "workload.output.kind=fixed",
        "workload.output.value=50",
        "workload.count=200",
    ]);
    let mut routed = std::collections::BTreeMap::<u64, u32>::new();
    let mut over = std::collections::BTreeSet::new();
    for h in &log {
        match *h {
            Heard::Routed(Some(s)) => {
                assert!(!over.contains(&s), "session {s} routed after it was over");
                *routed.entry(s).or_default() += 1;
            }
            Heard::Over(s) => {
                assert_eq!(routed.get(&s), Some(&3), "session {s} over after its 3rd turn");
                assert!(over.insert(s), "session {s} over twice");
            }
            Heard::Routed(None) => panic!("a turn without a session"),
        }
    }
    // All but the (at most 4) conversations in progress at the end.
    assert!(
        over.len() + 4 >= routed.len(),
        "{} of {}",
        over.len(),
        routed.len()
    );
}

/// Workloads without sessions (fixed-concurrency clients, which listen to
/// completions) never tell the router a session is over.
#[test]
fn sessionless_workloads_report_no_session_over() {
    let (r, log) = heard(&["workload.concurrency=4", "workload.count=20"]);
    assert_eq!(r.summary.completed, 20);
    assert_eq!(log.len(), 20);
    assert!(log.iter().all(|h| *h == Heard::Routed(None)), "{log:?}");
}
