//! The Chrome trace-event / Perfetto JSON trace (`fleetsim run --trace FILE.json`).
//!
//! This module owns the optional [`TraceRecorder`] that the engine feeds
//! while it runs (held by `crate::metrics::Metrics` as an
//! `Option<Box<_>>`, `None` unless tracing was asked for, so a normal run
//! pays one `if let` per iteration and nothing else) and the writer that
//! turns it, with the run's request records, into a trace-event file that
//! opens in ui.perfetto.dev and chrome://tracing.
//!
//! # What the file contains
//! JSON object format: `{"displayTimeUnit", "otherData", "traceEvents"}`.
//! Timestamps (`ts`) and durations (`dur`) are microseconds of simulated
//! time, written exactly from integer nanoseconds (up to 3 decimals).
//! One **process per replica** (`pid` = replica index + 1, named
//! "replica N"), with these tracks:
//! - thread 1 "iterations": one complete (`X`) event per iteration, named
//!   `prefill`, `decode` or `mixed`, args `prefill_seqs`, `prefill_tokens`,
//!   `decode_seqs`, `context_tokens` (KV tokens the decodes attend to),
//!   `batch_tokens`, `preempted` (requests preempted while this batch was
//!   formed), `resumed` (preempted requests readmitted into it), `host_us`
//!   (the CPU scheduling/launch part at the start);
//! - threads 10 + i "PP stage i" (only when `pp > 1`): the iteration's GPU
//!   part (duration − host) split into `pp` consecutive stage spans in
//!   proportion to the stages' times as the time model prices them
//!   ([`crate::timing::TimeModel::stage_times`]: the analytical model's
//!   layers per stage, the first stage's embedding, the last stage's LM
//!   head and sampling, the hand-offs; the profile model likewise from its
//!   measured operators); equal spans for a model that prices only whole
//!   iterations;
//! - counters (`C`): "KV blocks used" (`used`) and "queue" (`waiting`,
//!   `running`), sampled at every iteration start and whenever the replica
//!   goes idle, written only when a value changed;
//! - thread 2 "rejected": an instant event per rejected request (with reason);
//! - threads 1000 + k "requests k": request lanes. Each kept finished
//!   request is a parent `X` span "request ID" from arrival to finish,
//!   with consecutive child spans that tile it exactly: `queued` (arrival →
//!   first scheduled), `prefill` (→ first token), `decode` (→ finish), and
//!   `preempted` (preemption → readmission) where a preemption happened;
//!   after a readmission the span is `prefill` again if the first token was
//!   not yet out, else `decode` (which then includes the recompute). A
//!   disaggregated request has `transfer` (prefill done → its KV arrived at
//!   the decode replica) between its prefill and its decode.
//!   Zero-length phases are left out. The children's durations add up to
//!   the request's E2E latency (`finish − arrival`) exactly. Lanes are
//!   assigned greedily (requests by arrival, lowest free lane), so a replica
//!   has as many lanes as its peak number of requests in the system.
//!
//! # Bounding the size
//! [`TraceOptions::window`] `[START, END)` (seconds of simulated time)
//! keeps iteration spans and counter values that overlap the window (plus
//! each replica's counter values as of START) and the whole lifecycle of
//! every request whose `[arrival, finish]` overlaps it.
//! [`TraceOptions::max_requests`] `N` then keeps, of those requests taken in
//! id order, every k-th (the 1st, (k+1)-th, ...), with `k = ⌈n / N⌉`, so at
//! most `N` lifecycles; iterations and counters are not sampled. What was
//! kept is written to `otherData.fleetsim`.

use crate::error::{Error, Result};
use crate::metrics::{Outcome, ReplicaSample, Report, RequestRecord};
use crate::timing::{BatchShape, IterationCost, TimeModel};
use crate::units::{Nanos, secs_to_nanos};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io::Write;
use std::path::Path;

/// What a trace keeps (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceOptions {
    /// Simulated-time window `[start, end)` in seconds; `None` keeps the whole run.
    pub window: Option<(f64, f64)>,
    /// Keep at most this many request lifecycles (every k-th by id).
    pub max_requests: Option<u64>,
}

impl TraceOptions {
    /// Parses a `--trace-window` value `START:END` in seconds; either side
    /// may be empty (`:30` is `0:30`, `100:` runs to the end).
    pub fn parse_window(s: &str) -> Result<(f64, f64)> {
        let bad = |why: &str| {
            Error::config(
                "--trace-window",
                format!(
                    "`{s}` {why}; expected START:END in seconds of simulated time, e.g. 10:20, :30 or 100:"
                ),
            )
        };
        let (a, b) = s.split_once(':').ok_or_else(|| bad("has no `:`"))?;
        let num = |x: &str, default: f64| -> Result<f64> {
            let x = x.trim();
            if x.is_empty() {
                return Ok(default);
            }
            let v: f64 = x.parse().map_err(|_| bad(&format!("has `{x}`, not a number")))?;
            if v.is_nan() || v < 0.0 {
                return Err(bad("has a negative or NaN bound"));
            }
            Ok(v)
        };
        let (start, end) = (num(a, 0.0)?, num(b, f64::INFINITY)?);
        if end <= start {
            return Err(bad("ends before it starts"));
        }
        Ok((start, end))
    }
}

/// One iteration, as recorded.
#[derive(Debug, Clone, Copy)]
struct IterSpan {
    replica: u32,
    start: Nanos,
    dur: Nanos,
    host: Nanos,
    prefill_seqs: u32,
    prefill_tokens: u64,
    decode_seqs: u32,
    context_tokens: u64,
    preempted: u32,
    resumed: u32,
}

/// Splits `gpu` ns into `pp` consecutive spans in proportion to the
/// stages' priced times `stages` (equal spans when the model prices no
/// stages, or prices them all at 0), pushed onto `out`; they add up to
/// `gpu` exactly (boundaries are rounded, not the spans).
fn split_stages(gpu: Nanos, pp: usize, stages: &[f64], out: &mut Vec<Nanos>) {
    let total: f64 = stages.iter().sum();
    let priced = stages.len() == pp && total > 0.0 && total.is_finite();
    let mut before = 0.0;
    let mut edge = 0;
    for i in 0..pp {
        let next = if i + 1 == pp {
            gpu
        } else if priced {
            before += stages.get(i).copied().unwrap_or(0.0);
            ((gpu as f64 * before / total).round() as Nanos).min(gpu)
        } else {
            gpu / pp as u64 * (i as u64 + 1)
        };
        out.push(next - edge);
        edge = next;
    }
}

/// Counter values of one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    waiting: u32,
    running: u32,
    kv_used: u64,
}

#[derive(Debug, Clone, Copy)]
struct CounterPoint {
    replica: u32,
    time: Nanos,
    level: Level,
}

/// A request was preempted (`resumed == false`) or readmitted at `time`.
#[derive(Debug, Clone, Copy)]
struct PreemptEvent {
    id: u64,
    time: Nanos,
    resumed: bool,
}

/// Collects what the trace needs while the engine runs. All methods are
/// amortised O(1) plus O(preemptions); only iterations and counter changes
/// inside the window are stored.
#[derive(Debug, Clone)]
pub struct TraceRecorder {
    start: Nanos,
    end: Nanos,
    window_s: (f64, f64),
    max_requests: Option<u64>,
    pp: u32,
    iterations: Vec<IterSpan>,
    counters: Vec<CounterPoint>,
    /// Last value seen (any time) and last value written, per replica.
    seen: Vec<Option<Level>>,
    emitted: Vec<Option<Level>>,
    /// Every preemption and readmission of the run (rare; kept whole so that
    /// lifecycles crossing the window are complete).
    preemptions: Vec<PreemptEvent>,
    /// `pp` stage spans per stored iteration (when `pp > 1`), in order.
    stage_spans: Vec<Nanos>,
    /// The time model's stage times of the iteration being recorded.
    stage_scratch: Vec<f64>,
}

impl TraceRecorder {
    /// A recorder for `replicas` replicas of `pp` pipeline stages each.
    pub fn new(opts: &TraceOptions, replicas: u32, pp: u32) -> Self {
        let (a, b) = opts.window.unwrap_or((0.0, f64::INFINITY));
        let end = if b.is_finite() {
            secs_to_nanos(b)
        } else {
            Nanos::MAX
        };
        let n = replicas as usize;
        TraceRecorder {
            start: secs_to_nanos(a),
            end,
            window_s: (a, b),
            max_requests: opts.max_requests,
            pp: pp.max(1),
            iterations: Vec::new(),
            counters: Vec::new(),
            seen: vec![None; n],
            emitted: vec![None; n],
            preemptions: Vec::new(),
            stage_spans: Vec::new(),
            stage_scratch: Vec::new(),
        }
    }

    /// `replica` started an iteration at `start` with batch `batch` priced
    /// `cost` by `model` (which also gives its stages' times); `preempted` /
    /// `resumed` are the ids of the requests preempted and readmitted while
    /// the batch was formed; `state` is the replica right after scheduling.
    #[allow(clippy::too_many_arguments)]
    pub fn iteration(
        &mut self,
        replica: u32,
        start: Nanos,
        batch: &BatchShape,
        cost: &IterationCost,
        model: &dyn TimeModel,
        preempted: &[u64],
        resumed: &[u64],
        state: &ReplicaSample,
    ) {
        self.preemptions(start, preempted, resumed);
        let dur = cost.duration.max(1);
        if start < self.end && start.saturating_add(dur) > self.start {
            if self.pp > 1 {
                model.stage_times(batch, &mut self.stage_scratch);
                let gpu = dur - cost.host.min(dur);
                split_stages(gpu, self.pp as usize, &self.stage_scratch, &mut self.stage_spans);
            }
            self.iterations.push(IterSpan {
                replica,
                start,
                dur,
                host: cost.host.min(dur),
                prefill_seqs: batch.prefill_seqs,
                prefill_tokens: batch.prefill_tokens,
                decode_seqs: batch.decode_seqs,
                context_tokens: batch.decode_kv_tokens,
                preempted: preempted.len() as u32,
                resumed: resumed.len() as u32,
            });
        }
        self.counter(replica, start, state);
    }

    /// `replica` went idle at `now` (after scheduling found nothing to run).
    pub fn idle(
        &mut self,
        replica: u32,
        now: Nanos,
        preempted: &[u64],
        resumed: &[u64],
        state: &ReplicaSample,
    ) {
        self.preemptions(now, preempted, resumed);
        self.counter(replica, now, state);
    }

    fn preemptions(&mut self, time: Nanos, preempted: &[u64], resumed: &[u64]) {
        for (ids, resumed) in [(preempted, false), (resumed, true)] {
            for &id in ids {
                self.preemptions.push(PreemptEvent { id, time, resumed });
            }
        }
    }

    fn counter(&mut self, replica: u32, time: Nanos, s: &ReplicaSample) {
        let r = replica as usize;
        if time >= self.end || r >= self.seen.len() {
            return;
        }
        let level = Level {
            waiting: s.queued,
            running: s.running,
            kv_used: s.kv_blocks_used,
        };
        if time < self.start {
            self.seen[r] = Some(level);
            return;
        }
        if self.emitted[r].is_none()
            && let Some(prev) = self.seen[r]
            && time > self.start
        {
            self.push_counter(replica, self.start, prev);
        }
        if self.emitted[r] != Some(level) {
            self.push_counter(replica, time, level);
        }
        self.seen[r] = Some(level);
    }

    fn push_counter(&mut self, replica: u32, time: Nanos, level: Level) {
        self.emitted[replica as usize] = Some(level);
        self.counters.push(CounterPoint { replica, time, level });
    }

    /// Iteration spans kept (for tests and size estimates).
    pub fn iterations_kept(&self) -> usize {
        self.iterations.len()
    }
}

/// Microseconds from nanoseconds, exact (no trailing zeros after the point).
struct Us(Nanos);

impl fmt::Display for Us {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 1000, self.0 % 1000);
        match frac {
            0 => write!(f, "{whole}"),
            _ if frac % 100 == 0 => write!(f, "{whole}.{}", frac / 100),
            _ if frac % 10 == 0 => write!(f, "{whole}.{:02}", frac / 10),
            _ => write!(f, "{whole}.{frac:03}"),
        }
    }
}

/// Milliseconds from nanoseconds, exact.
struct Ms(Nanos);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 1_000_000, self.0 % 1_000_000);
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let s = format!("{frac:06}");
            write!(f, "{whole}.{}", s.trim_end_matches('0'))
        }
    }
}

const TID_ITER: u32 = 1;
const TID_REJECTED: u32 = 2;
const TID_STAGE0: u32 = 10;
const TID_LANE0: u32 = 1000;

/// The phases of a finished request: consecutive `(name, start, end)` spans
/// tiling `[arrival, finish]` (see the module docs). `pre` holds the
/// request's preemption events in chronological order; `transfer` the
/// (prefill done, KV arrived) times of a disaggregated request, whose
/// `transfer` phase then sits between its prefill and its decode.
fn phases(
    r: &RequestRecord,
    pre: &[PreemptEvent],
    transfer: Option<(Nanos, Nanos)>,
) -> Vec<(&'static str, Nanos, Nanos)> {
    #[derive(Clone, Copy)]
    enum Ev {
        Sched,
        Preempt,
        Resume,
        First,
        SendKv,
        KvArrived,
    }
    let (a, e) = (r.arrival, r.finish.max(r.arrival));
    let mut evs: Vec<(Nanos, u8, Ev)> = Vec::with_capacity(pre.len() + 2);
    evs.push((r.scheduled, 0, Ev::Sched));
    for p in pre {
        evs.push((p.time, 1, if p.resumed { Ev::Resume } else { Ev::Preempt }));
    }
    evs.push((r.first_token, 2, Ev::First));
    if let Some((ready, arrived)) = transfer {
        evs.push((ready, 3, Ev::SendKv));
        evs.push((arrived, 4, Ev::KvArrived));
    }
    evs.sort_by_key(|&(t, rank, _)| (t, rank)); // stable: preemptions keep their order
    let mut out = Vec::with_capacity(evs.len() + 1);
    let mut cur: (&'static str, Nanos) = ("queued", a);
    let (mut first_out, mut preempted) = (false, false);
    let mut switch = |cur: &mut (&'static str, Nanos), name: &'static str, t: Nanos| {
        let t = t.clamp(cur.1, e);
        if name != cur.0 {
            if t > cur.1 {
                out.push((cur.0, cur.1, t));
            }
            *cur = (name, t);
        }
    };
    for (t, _, ev) in evs {
        match ev {
            Ev::Sched => switch(&mut cur, "prefill", t),
            Ev::Preempt => {
                preempted = true;
                switch(&mut cur, "preempted", t);
            }
            Ev::Resume => {
                preempted = false;
                switch(&mut cur, if first_out { "decode" } else { "prefill" }, t);
            }
            Ev::First => {
                first_out = true;
                if !preempted {
                    switch(&mut cur, "decode", t);
                }
            }
            Ev::SendKv => switch(&mut cur, "transfer", t),
            Ev::KvArrived => switch(&mut cur, "decode", t),
        }
    }
    if e > cur.1 {
        out.push((cur.0, cur.1, e));
    }
    out
}

/// Writes the trace of `report` (which must come from a run with tracing
/// enabled) to `path`.
pub fn write_trace(report: &Report, path: &Path) -> Result<()> {
    super::create_parent(path)?;
    super::atomic::write_with(path, |w| render(report, w))
}

/// The trace of `report` as a string (tests; small runs).
pub fn trace_json(report: &Report) -> String {
    let mut v = Vec::new();
    render(report, &mut v).expect("writing to memory");
    String::from_utf8(v).expect("trace is UTF-8")
}

/// Writes the trace-event JSON. A report without a recorder gives a trace
/// with the requests only (every lifecycle, no iterations or counters).
pub fn render(report: &Report, w: &mut dyn Write) -> std::io::Result<()> {
    let info = &report.summary.run;
    let default_rec;
    let rec = match report.trace.as_deref() {
        Some(r) => r,
        None => {
            default_rec = TraceRecorder::new(&TraceOptions::default(), info.replicas, info.pp);
            &default_rec
        }
    };
    let n_rep = info.replicas.max(rec.seen.len() as u32);

    // Requests: window, then every k-th by id.
    let in_window: Vec<&RequestRecord> = report
        .requests
        .iter()
        .filter(|r| r.arrival < rec.end && r.finish.max(r.arrival) >= rec.start)
        .collect();
    let step = match rec.max_requests {
        Some(0) => usize::MAX,
        Some(n) => in_window.len().div_ceil(n as usize).max(1),
        None => 1,
    };
    let kept: Vec<&RequestRecord> = if step == usize::MAX {
        Vec::new()
    } else {
        in_window.iter().copied().step_by(step).collect()
    };
    let mut pre = rec.preemptions.clone();
    pre.sort_by_key(|p| p.id); // stable: chronological within a request

    let json_str = |s: &str| serde_json::to_string(s).expect("string serialises");
    let window_end = if rec.window_s.1.is_finite() {
        serde_json::to_string(&rec.window_s.1).expect("finite float")
    } else {
        "null".to_string()
    };
    writeln!(
        w,
        "{{\"displayTimeUnit\":\"ms\",\"otherData\":{{\"fleetsim\":{{\"scenario\":{},\"model\":{},\"device\":{},\
         \"replicas\":{},\"tp\":{},\"pp\":{},\"window_s\":[{},{}],\"requests_total\":{},\
         \"requests_in_window\":{},\"requests_kept\":{},\"request_sampling_step\":{},\"iterations_kept\":{},\
         \"pp_stages\":\"each iteration's GPU time split in proportion to the time model's stage times (equally where it prices none)\"}}}},\"traceEvents\":[",
        json_str(&info.scenario),
        json_str(&info.model),
        json_str(&info.device),
        info.replicas,
        info.tp,
        info.pp,
        serde_json::to_string(&rec.window_s.0).expect("finite float"),
        window_end,
        report.requests.len(),
        in_window.len(),
        kept.len(),
        if step == usize::MAX { 0 } else { step },
        rec.iterations.len(),
    )?;
    let mut first = true;
    let mut sep = |w: &mut dyn Write| -> std::io::Result<()> {
        if first {
            first = false;
            Ok(())
        } else {
            w.write_all(b",\n")
        }
    };
    let meta = |w: &mut dyn Write, pid: u32, tid: u32, what: &str, arg: &str| -> std::io::Result<()> {
        write!(
            w,
            "{{\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"ts\":0,\"name\":\"{what}\",\"args\":{{{arg}}}}}"
        )
    };

    // Metadata: processes and their fixed threads.
    for r in 0..n_rep {
        let pid = r + 1;
        sep(w)?;
        meta(w, pid, 0, "process_name", &format!("\"name\":\"replica {r}\""))?;
        sep(w)?;
        meta(w, pid, 0, "process_sort_index", &format!("\"sort_index\":{r}"))?;
        let mut threads = vec![
            (TID_ITER, "iterations".to_string()),
            (TID_REJECTED, "rejected".to_string()),
        ];
        if rec.pp > 1 {
            threads.extend((0..rec.pp).map(|i| (TID_STAGE0 + i, format!("PP stage {i}"))));
        }
        for (tid, name) in threads {
            sep(w)?;
            meta(w, pid, tid, "thread_name", &format!("\"name\":\"{name}\""))?;
            sep(w)?;
            meta(w, pid, tid, "thread_sort_index", &format!("\"sort_index\":{tid}"))?;
        }
    }

    // Iterations and PP stages.
    let mut spans = rec.stage_spans.chunks(rec.pp as usize);
    for it in &rec.iterations {
        let pid = it.replica + 1;
        let name = match (it.prefill_seqs > 0, it.decode_seqs > 0) {
            (true, true) => "mixed",
            (true, false) => "prefill",
            _ => "decode",
        };
        sep(w)?;
        write!(
            w,
            "{{\"ph\":\"X\",\"cat\":\"iteration\",\"name\":\"{name}\",\"pid\":{pid},\"tid\":{TID_ITER},\"ts\":{},\"dur\":{},\
             \"args\":{{\"prefill_seqs\":{},\"prefill_tokens\":{},\"decode_seqs\":{},\"context_tokens\":{},\
             \"batch_tokens\":{},\"preempted\":{},\"resumed\":{},\"host_us\":{}}}}}",
            Us(it.start),
            Us(it.dur),
            it.prefill_seqs,
            it.prefill_tokens,
            it.decode_seqs,
            it.context_tokens,
            it.prefill_tokens + it.decode_seqs as u64,
            it.preempted,
            it.resumed,
            Us(it.host),
        )?;
        if rec.pp > 1 {
            let mut t = it.start + it.host;
            for (i, &d) in spans.next().into_iter().flatten().enumerate() {
                if d > 0 {
                    sep(w)?;
                    write!(
                        w,
                        "{{\"ph\":\"X\",\"cat\":\"pp-stage\",\"name\":\"stage {i}\",\"pid\":{pid},\"tid\":{},\"ts\":{},\"dur\":{}}}",
                        TID_STAGE0 + i as u32,
                        Us(t),
                        Us(d),
                    )?;
                }
                t += d;
            }
        }
    }

    // Counters.
    for c in &rec.counters {
        let pid = c.replica + 1;
        sep(w)?;
        write!(
            w,
            "{{\"ph\":\"C\",\"name\":\"KV blocks used\",\"pid\":{pid},\"tid\":0,\"ts\":{},\"args\":{{\"used\":{}}}}}",
            Us(c.time),
            c.level.kv_used
        )?;
        sep(w)?;
        write!(
            w,
            "{{\"ph\":\"C\",\"name\":\"queue\",\"pid\":{pid},\"tid\":0,\"ts\":{},\"args\":{{\"waiting\":{},\"running\":{}}}}}",
            Us(c.time),
            c.level.waiting,
            c.level.running
        )?;
    }

    // Requests: rejections as instants, finished requests on lanes.
    let mut per_replica: Vec<Vec<&RequestRecord>> = vec![Vec::new(); n_rep as usize];
    for r in &kept {
        match r.outcome {
            Outcome::Rejected(reason) => {
                sep(w)?;
                write!(
                    w,
                    "{{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"request\",\"name\":\"rejected\",\"pid\":{},\"tid\":{TID_REJECTED},\"ts\":{},\
                     \"args\":{{\"id\":{},\"reason\":\"{}\",\"prompt_tokens\":{}}}}}",
                    r.replica + 1,
                    Us(r.finish),
                    r.id,
                    reason.name(),
                    r.prompt_tokens
                )?;
            }
            Outcome::Finished => {
                if let Some(v) = per_replica.get_mut(r.replica as usize) {
                    v.push(r);
                }
            }
        }
    }
    for (rep, reqs) in per_replica.iter_mut().enumerate() {
        let pid = rep as u32 + 1;
        reqs.sort_by_key(|r| (r.arrival, r.id));
        let mut busy: BinaryHeap<Reverse<(Nanos, u32)>> = BinaryHeap::new();
        let mut free: BinaryHeap<Reverse<u32>> = BinaryHeap::new();
        let mut lanes = 0u32;
        for r in reqs.iter() {
            while let Some(&Reverse((end, lane))) = busy.peek() {
                if end >= r.arrival {
                    break;
                }
                busy.pop();
                free.push(Reverse(lane));
            }
            let lane = match free.pop() {
                Some(Reverse(l)) => l,
                None => {
                    let l = lanes;
                    lanes += 1;
                    let tid = TID_LANE0 + l;
                    sep(w)?;
                    meta(w, pid, tid, "thread_name", &format!("\"name\":\"requests {l}\""))?;
                    sep(w)?;
                    meta(w, pid, tid, "thread_sort_index", &format!("\"sort_index\":{tid}"))?;
                    l
                }
            };
            let finish = r.finish.max(r.arrival);
            busy.push(Reverse((finish, lane)));
            let tid = TID_LANE0 + lane;
            let lo = pre.partition_point(|p| p.id < r.id);
            let hi = pre.partition_point(|p| p.id <= r.id);
            sep(w)?;
            write!(
                w,
                "{{\"ph\":\"X\",\"cat\":\"request\",\"name\":\"request {}\",\"pid\":{pid},\"tid\":{tid},\"ts\":{},\"dur\":{},\
                 \"args\":{{\"id\":{},\"client\":{},\"prompt_tokens\":{},\"output_tokens\":{},\"preemptions\":{},\
                 \"ttft_ms\":{},\"e2el_ms\":{}}}}}",
                r.id,
                Us(r.arrival),
                Us(finish - r.arrival),
                r.id,
                r.client,
                r.prompt_tokens,
                r.output_tokens,
                r.preemptions,
                Ms(r.first_token.saturating_sub(r.arrival)),
                Ms(finish - r.arrival),
            )?;
            let transfer = report
                .transfers
                .binary_search_by_key(&r.id, |t| t.id)
                .ok()
                .map(|i| (report.transfers[i].ready, report.transfers[i].arrival));
            for (name, a, b) in phases(r, &pre[lo..hi], transfer) {
                sep(w)?;
                write!(
                    w,
                    "{{\"ph\":\"X\",\"cat\":\"request-phase\",\"name\":\"{name}\",\"pid\":{pid},\"tid\":{tid},\"ts\":{},\"dur\":{},\
                     \"args\":{{\"id\":{}}}}}",
                    Us(a),
                    Us(b - a),
                    r.id
                )?;
            }
        }
    }
    w.write_all(b"\n]}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_spans_follow_the_priced_stages_and_tile_the_gpu_time() {
        let split = |gpu, pp, stages: &[f64]| {
            let mut v = Vec::new();
            split_stages(gpu, pp, stages, &mut v);
            v
        };
        // 1 : 2 of 10 ns: the boundary at round(10/3) = 3.
        assert_eq!(split(10, 2, &[1.0, 2.0]), [3, 7]);
        assert_eq!(split(1000, 3, &[1.0, 1.0, 2.0]), [250, 250, 500]);
        // Unpriced (or priced for another stage count, or all zero): equal,
        // the remainder in the last.
        assert_eq!(split(10, 3, &[]), [3, 3, 4]);
        assert_eq!(split(10, 3, &[1.0, 1.0]), [3, 3, 4]);
        assert_eq!(split(10, 2, &[0.0, 0.0]), [5, 5]);
    }

    fn rec(arrival: Nanos, sched: Nanos, first: Nanos, finish: Nanos) -> RequestRecord {
        RequestRecord {
            id: 1,
            client: 0,
            session: None,
            program: None,
            replica: 0,
            arrival,
            scheduled: sched,
            first_token: first,
            finish,
            prompt_tokens: 10,
            output_tokens: 5,
            preemptions: 0,
            cached_tokens: 0,
            outcome: Outcome::Finished,
        }
    }

    fn total(p: &[(&str, Nanos, Nanos)]) -> Nanos {
        p.iter().map(|x| x.2 - x.1).sum()
    }

    #[test]
    fn phases_tile_the_lifecycle() {
        let r = rec(100, 150, 400, 1000);
        let p = phases(&r, &[], None);
        assert_eq!(
            p,
            vec![("queued", 100, 150), ("prefill", 150, 400), ("decode", 400, 1000)]
        );
        // Scheduled on arrival: no zero-length queued span.
        let p = phases(&rec(100, 100, 400, 1000), &[], None);
        assert_eq!(p[0], ("prefill", 100, 400));
        // Preempted while decoding, readmitted later.
        let pre = [
            PreemptEvent {
                id: 1,
                time: 500,
                resumed: false,
            },
            PreemptEvent {
                id: 1,
                time: 700,
                resumed: true,
            },
        ];
        let p = phases(&r, &pre, None);
        assert_eq!(
            p,
            vec![
                ("queued", 100, 150),
                ("prefill", 150, 400),
                ("decode", 400, 500),
                ("preempted", 500, 700),
                ("decode", 700, 1000)
            ]
        );
        // Preempted just before the first token became visible (async output).
        let pre = [
            PreemptEvent {
                id: 1,
                time: 390,
                resumed: false,
            },
            PreemptEvent {
                id: 1,
                time: 600,
                resumed: true,
            },
        ];
        let p = phases(&r, &pre, None);
        assert_eq!(
            p,
            vec![
                ("queued", 100, 150),
                ("prefill", 150, 390),
                ("preempted", 390, 600),
                ("decode", 600, 1000)
            ]
        );
        // Preempted during prefill: prefill again after readmission.
        let pre = [
            PreemptEvent {
                id: 1,
                time: 200,
                resumed: false,
            },
            PreemptEvent {
                id: 1,
                time: 300,
                resumed: true,
            },
        ];
        let p = phases(&r, &pre, None);
        assert_eq!(p[2], ("preempted", 200, 300));
        assert_eq!(p[3], ("prefill", 300, 400));
        for p in [phases(&r, &pre, None), phases(&r, &[], None)] {
            assert_eq!(total(&p), 900);
        }
    }

    #[test]
    fn microseconds_are_exact() {
        assert_eq!(Us(0).to_string(), "0");
        assert_eq!(Us(1_234_000).to_string(), "1234");
        assert_eq!(Us(1_234_500).to_string(), "1234.5");
        assert_eq!(Us(1_234_050).to_string(), "1234.05");
        assert_eq!(Us(1_234_567).to_string(), "1234.567");
        assert_eq!(Ms(1_500_000).to_string(), "1.5");
        assert_eq!(Ms(2_000_000).to_string(), "2");
    }

    #[test]
    fn window_parsing() {
        assert_eq!(TraceOptions::parse_window("10:20").unwrap(), (10.0, 20.0));
        assert_eq!(TraceOptions::parse_window(":30").unwrap(), (0.0, 30.0));
        assert_eq!(TraceOptions::parse_window("5:").unwrap(), (5.0, f64::INFINITY));
        for bad in ["10", "20:10", "a:b", "-1:3", "5:5"] {
            let e = TraceOptions::parse_window(bad).unwrap_err().to_string();
            assert!(e.contains("--trace-window"), "{e}");
        }
    }

    #[test]
    fn counters_start_at_the_window_and_skip_repeats() {
        let opts = TraceOptions {
            window: Some((1.0, 2.0)),
            max_requests: None,
        };
        let mut t = TraceRecorder::new(&opts, 1, 1);
        let s = |q: u32| ReplicaSample {
            queued: q,
            ..Default::default()
        };
        t.idle(0, 500_000_000, &[], &[], &s(3));
        t.idle(0, 1_500_000_000, &[], &[], &s(4));
        t.idle(0, 1_600_000_000, &[], &[], &s(4));
        t.idle(0, 2_500_000_000, &[], &[], &s(5));
        let got: Vec<(Nanos, u32)> = t.counters.iter().map(|c| (c.time, c.level.waiting)).collect();
        assert_eq!(got, vec![(1_000_000_000, 3), (1_500_000_000, 4)]);
    }
}
