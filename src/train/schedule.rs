//! Pipeline schedules: the order in which each pipeline device runs its
//! forward (F), backward-input (B) and backward-weight (W) passes.
//!
//! A schedule is only an order. [`super::pipeline`] executes it — each
//! device runs its list strictly in order, each pass waiting on its
//! dependencies — so bubbles and peak activation memory are what the
//! execution shows, never a formula. The closed forms (`(p−1)/(m+p−1)` for
//! 1F1B and so on) are what the tests check the execution against.
//!
//! Layouts: `p` devices, `v` model chunks per device (virtual stages `p·v`),
//! `m` micro-batches. Virtual stage `s` holds layers `s·L/(p·v)…`; chunk
//! `c` of device `d` is virtual stage `c·p + d` (looped, Megatron's
//! interleaving) or, for ZB-V's V shape, `d` for chunk 0 and `2p−1−d` for
//! chunk 1, so the last virtual stage sits on device 0 again.
//!
//! Sources: GPipe (Huang et al., NeurIPS'19) — all forwards, then all
//! backwards; 1F1B (PipeDream-Flush, Narayanan et al., ICML'21) — device `d`
//! warms up with `p−d−1` forwards, then alternates; interleaved 1F1B
//! (Narayanan et al., SC'21, Megatron-LM's
//! `forward_backward_pipelining_with_interleaving` ordering); Zero Bubble
//! (Qi et al., ICLR'24) — B and W split, W filling what would be bubbles,
//! ZB-H1 within 1F1B's activation memory, ZB-H2 within about twice it,
//! ZB-V on the V layout within 1F1B's memory. The zero-bubble orders are
//! built, as the paper's heuristic does, by a greedy pass over the
//! estimated pass times (B first, then F while the memory limit allows,
//! else a pending W).
//!
//! Invariants of every list set: each `(micro-batch, virtual stage)` has
//! exactly one F and one B on the stage's device, and one W when B and W
//! are split; a device's F of a micro-batch precedes its B, which precedes
//! its W.

use crate::error::{Error, Result};
use crate::scenario::kinds::{Kind, kinds};

/// One of the three passes of a micro-batch through a virtual stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pass {
    /// Forward.
    F,
    /// Backward with respect to the inputs (with W folded in when the
    /// schedule does not split them).
    B,
    /// Backward with respect to the weights.
    W,
}

/// One pass of one micro-batch through one virtual stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    pub pass: Pass,
    pub micro_batch: u32,
    pub stage: u32,
}

/// How virtual stages map onto devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Chunk `c` of device `d` is stage `c·p + d`.
    Looped,
    /// Two chunks: `d` and `2p−1−d` (ZB-V).
    V,
}

/// The shape a schedule is laid on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Pipeline devices.
    pub p: u32,
    /// Chunks per device.
    pub v: u32,
    /// Micro-batches per iteration.
    pub m: u32,
    pub placement: Placement,
}

impl Layout {
    pub fn stages(&self) -> u32 {
        self.p * self.v
    }

    /// The device holding virtual stage `s`.
    pub fn device(&self, s: u32) -> u32 {
        match self.placement {
            Placement::Looped => s % self.p,
            Placement::V if s < self.p => s,
            Placement::V => 2 * self.p - 1 - s,
        }
    }
}

kinds! {
    /// `training.schedule`: the pipeline schedule.
    pub enum ScheduleKind {
        /// All forwards, then all backwards (GPipe): m micro-batches' activations held.
        Gpipe = "gpipe",
        /// One forward, one backward (PipeDream-Flush): at most p activations held.
        OneFOneB = "1f1b",
        /// 1F1B over `parallel.vpp` model chunks per device (Megatron-LM).
        Interleaved = "interleaved",
        /// Zero Bubble H1: B and W split, W fills bubbles, 1F1B's memory.
        ZbH1 = "zb-h1",
        /// Zero Bubble H2: more warm-up forwards within about twice 1F1B's memory.
        ZbH2 = "zb-h2",
        /// Zero Bubble V: two chunks per device in a V, 1F1B's memory.
        Zbv = "zbv",
    }
}

impl ScheduleKind {
    /// Whether backward-weight passes are separate tasks.
    pub fn splits_backward(self) -> bool {
        matches!(self, ScheduleKind::ZbH1 | ScheduleKind::ZbH2 | ScheduleKind::Zbv)
    }

    /// The layout this schedule runs on with `p` devices, `vpp` chunks
    /// requested and `m` micro-batches; explains a combination it cannot run.
    pub fn layout(self, p: u32, vpp: u32, m: u32) -> Result<Layout> {
        let bad = |msg: String| Err(Error::config("key `training.schedule`", msg));
        if p == 0 || m == 0 || vpp == 0 {
            return bad(format!(
                "needs at least one device, chunk and micro-batch (pp = {p}, vpp = {vpp}, micro-batches = {m})"
            ));
        }
        let (v, placement) = match self {
            ScheduleKind::Interleaved => {
                if !m.is_multiple_of(p) {
                    return bad(format!(
                        "`interleaved` needs the micro-batch count to be a multiple of `parallel.pp` \
                         (as Megatron-LM does); found {m} micro-batches on {p} stages"
                    ));
                }
                (vpp, Placement::Looped)
            }
            ScheduleKind::Zbv => (2, Placement::V),
            _ if vpp != 1 => {
                return bad(format!(
                    "`parallel.vpp = {vpp}` needs `schedule = \"interleaved\"` (`{}` runs one chunk per device)",
                    self.name()
                ));
            }
            _ => (1, Placement::Looped),
        };
        Ok(Layout { p, v, m, placement })
    }
}

/// Estimated pass times per virtual stage, the zero-bubble orders' input.
#[derive(Debug, Clone, PartialEq)]
pub struct PassTimes {
    /// Forward.
    pub f: Vec<f64>,
    /// Backward-input (with W folded in when not split).
    pub b: Vec<f64>,
    /// Backward-weight (0 when folded into B).
    pub w: Vec<f64>,
    /// Activation (forward) or gradient (backward) transfer from stage `s`
    /// to its neighbour; used only between stages on different devices.
    pub send: Vec<f64>,
}

impl PassTimes {
    /// How long `pass` takes at virtual stage `s`.
    pub fn of(&self, pass: Pass, s: usize) -> f64 {
        match pass {
            Pass::F => self.f[s],
            Pass::B => self.b[s],
            Pass::W => self.w[s],
        }
    }
}

/// The lists of every device, in execution order.
pub fn lists(kind: ScheduleKind, layout: Layout, times: &PassTimes) -> Vec<Vec<Task>> {
    match kind {
        ScheduleKind::Gpipe => gpipe(layout),
        ScheduleKind::OneFOneB | ScheduleKind::Interleaved => interleaved(layout),
        // Qi et al. bound the peak over the pipeline: 1F1B's is the first
        // device's p micro-batches; ZB-H2's 2p − 1 warm-up forwards and
        // the first steady one hold 2p.
        ScheduleKind::ZbH1 => with_deferred_w(layout, times, |d| layout.p - d - 1, layout.p as f64),
        ScheduleKind::ZbH2 => {
            with_deferred_w(layout, times, |d| 2 * (layout.p - d) - 1, (2 * layout.p) as f64)
        }
        ScheduleKind::Zbv => zero_bubble(layout, times, layout.p as f64),
    }
}

fn task(pass: Pass, micro_batch: u32, stage: u32) -> Task {
    Task {
        pass,
        micro_batch,
        stage,
    }
}

fn gpipe(l: Layout) -> Vec<Vec<Task>> {
    (0..l.p)
        .map(|d| {
            let mut list: Vec<Task> = (0..l.m).map(|mb| task(Pass::F, mb, d)).collect();
            list.extend((0..l.m).map(|mb| task(Pass::B, mb, d)));
            list
        })
        .collect()
}

/// 1F1B (`v = 1`) and its interleaved form: device `d` warms up with
/// `(p−d−1)·2 + (v−1)·p` forwards (`p−d−1` when `v = 1`), alternates one
/// forward and one backward, then drains. The k-th forward of a device
/// is micro-batch `(k / (p·v))·p + k mod p` on chunk `(k / p) mod v`; the
/// k-th backward the same micro-batch on chunk `v−1−(k / p) mod v`.
fn interleaved(l: Layout) -> Vec<Vec<Task>> {
    let (p, v) = (l.p, l.v);
    interleaved_with_warmup(l, |d| {
        if v == 1 {
            p - d - 1
        } else {
            (p - d - 1) * 2 + (v - 1) * p
        }
    })
}

/// The interleaved order with device `d` warming up with `warmup(d)`
/// forwards (capped at its `m·v`).
fn interleaved_with_warmup(l: Layout, warmup: impl Fn(u32) -> u32) -> Vec<Vec<Task>> {
    let (p, v, m) = (l.p, l.v, l.m);
    let total = m * v;
    let group = p * v;
    let forward = |d: u32, k: u32| {
        let (mb, chunk) = if v == 1 {
            (k, 0)
        } else {
            ((k / group) * p + k % p, (k / p) % v)
        };
        task(Pass::F, mb, chunk * p + d)
    };
    let backward = |d: u32, k: u32| {
        let (mb, chunk) = if v == 1 {
            (k, 0)
        } else {
            ((k / group) * p + k % p, v - 1 - (k / p) % v)
        };
        task(Pass::B, mb, chunk * p + d)
    };
    (0..p)
        .map(|d| {
            let warmup = warmup(d).min(total);
            let mut list = Vec::with_capacity(2 * total as usize);
            list.extend((0..warmup).map(|k| forward(d, k)));
            for k in 0..total - warmup {
                list.push(forward(d, warmup + k));
                list.push(backward(d, k));
            }
            list.extend((total - warmup..total).map(|k| backward(d, k)));
            list
        })
        .collect()
}

/// ZB-H1 and ZB-H2 (one chunk per device): the forwards and backward-inputs
/// in 1F1B's order with `warmup(d)` warm-up forwards, and each device's
/// backward-weights placed, as Qi et al.'s heuristic does, where they cost
/// nothing: a free device runs its next F or B once ready (an F only while
/// its held activations stay within `limit`); else, if the next one is
/// not ready for at least a W's time (or its input is not even being
/// computed yet), or memory is full, its oldest pending W; else it waits.
fn with_deferred_w(l: Layout, t: &PassTimes, warmup: impl Fn(u32) -> u32, limit: f64) -> Vec<Vec<Task>> {
    let p = l.p as usize;
    let m = l.m as usize;
    let stages = l.stages() as usize;
    let order = interleaved_with_warmup(l, warmup);
    let idx = |mb: usize, s: usize| mb * stages + s;
    let mut f_end = vec![f64::NAN; m * stages];
    let mut b_end = vec![f64::NAN; m * stages];
    let mut next = vec![0usize; p];
    let mut pending_w: Vec<std::collections::VecDeque<Task>> = vec![Default::default(); p];
    let mut free_at = vec![0.0f64; p];
    let mut held = vec![0.0f64; p];
    let mut stuck: Vec<Option<f64>> = vec![None; p];
    let mut lists: Vec<Vec<Task>> = vec![Vec::new(); p];
    let left = |d: usize, next: &[usize], w: &[std::collections::VecDeque<Task>]| {
        order[d].len() - next[d] + w[d].len()
    };
    while let Some(now) = (0..p)
        .filter(|&d| left(d, &next, &pending_w) > 0)
        .map(|d| free_at[d])
        .min_by(f64::total_cmp)
    {
        let Some(d) =
            (0..p).find(|&d| left(d, &next, &pending_w) > 0 && free_at[d] == now && stuck[d].is_none())
        else {
            if !wake_stuck(&mut stuck, &mut free_at, now, |o| left(o, &next, &pending_w) > 0) {
                debug_assert!(false, "zero-bubble order deadlocked");
                break;
            }
            continue;
        };
        let head = order[d].get(next[d]).copied();
        let ready = head.map(|x| {
            let (mb, s) = (x.micro_batch as usize, x.stage as usize);
            match x.pass {
                Pass::F if s == 0 => 0.0,
                Pass::F => f_end[idx(mb, s - 1)] + t.send[s - 1],
                _ if s + 1 == stages => f_end[idx(mb, s)],
                _ => super::pipeline::nan_max(b_end[idx(mb, s + 1)] + t.send[s], f_end[idx(mb, s)]),
            }
        });
        let memory_full = head.is_some_and(|x| x.pass == Pass::F && held[d] + 1.0 > limit + 1e-9);
        let run_head = matches!(ready, Some(r) if r <= now) && !memory_full;
        let w_fits = match (head, ready) {
            (None, _) => true,
            (Some(_), Some(r)) => r.is_nan() || memory_full || r - now >= t.w[d] - 1e-12,
            (Some(_), None) => true,
        };
        let task = if run_head {
            next[d] += 1;
            head
        } else if w_fits {
            pending_w[d].pop_front()
        } else {
            None
        };
        let Some(task) = task else {
            stuck[d] = Some(ready.filter(|r| *r > now).unwrap_or(f64::INFINITY));
            continue;
        };
        let (mb, s) = (task.micro_batch as usize, task.stage as usize);
        let end = now + t.of(task.pass, s);
        match task.pass {
            Pass::F => {
                f_end[idx(mb, s)] = end;
                held[d] += 1.0;
            }
            Pass::B => {
                b_end[idx(mb, s)] = end;
                pending_w[d].push_back(self::task(Pass::W, task.micro_batch, task.stage));
            }
            Pass::W => held[d] -= 1.0,
        }
        free_at[d] = end;
        lists[d].push(task);
    }
    lists
}

/// ZB-V's order: a greedy run over the estimated times. A free device
/// starts, in this order of preference, a ready B (lowest micro-batch,
/// then the later stage), a ready F, or its oldest pending W; else it
/// waits for the next dependency. A micro-batch is admitted to a device
/// (its first chunk's F) only while fewer than `limit` are on it, each
/// counted until its first chunk's W (its last pass there).
fn zero_bubble(l: Layout, t: &PassTimes, limit: f64) -> Vec<Vec<Task>> {
    let stages = l.stages() as usize;
    let m = l.m as usize;
    let idx = |mb: usize, s: usize| mb * stages + s;
    let mut f_end = vec![f64::NAN; m * stages];
    let mut b_end = vec![f64::NAN; m * stages];
    // Per stage, micro-batches pass in order: the next one of each pass to
    // run (W's follow B's order, so `next_w ≤ next_b ≤ next_f`).
    let mut next_f = vec![0usize; stages];
    let mut next_b = vec![0usize; stages];
    let mut next_w = vec![0usize; stages];
    let mut free_at = vec![0.0f64; l.p as usize];
    // Micro-batches admitted to each device and not yet done with it.
    let mut admitted = vec![0.0f64; l.p as usize];
    let mut lists: Vec<Vec<Task>> = vec![Vec::new(); l.p as usize];
    let dev_stages: Vec<Vec<usize>> = (0..l.p)
        .map(|d| (0..stages).filter(|&s| l.device(s as u32) == d).collect())
        .collect();
    let first_stage: Vec<usize> = dev_stages.iter().map(|ss| ss[0]).collect();
    let hop = |from: usize, to: usize| {
        if l.device(from as u32) == l.device(to as u32) {
            0.0
        } else {
            t.send[from.min(to)]
        }
    };
    // Ready time of F / B of (mb, s), NaN while a dependency is pending.
    let f_ready = |f_end: &[f64], mb: usize, s: usize| {
        if s == 0 {
            0.0
        } else {
            f_end[idx(mb, s - 1)] + hop(s - 1, s)
        }
    };
    let b_ready = |f_end: &[f64], b_end: &[f64], mb: usize, s: usize| {
        if s + 1 == stages {
            f_end[idx(mb, s)]
        } else {
            super::pipeline::nan_max(b_end[idx(mb, s + 1)] + hop(s + 1, s), f_end[idx(mb, s)])
        }
    };
    let mut left: Vec<usize> = dev_stages.iter().map(|ss| ss.len() * m * 3).collect();
    // A device that found nothing to start at its free time: the next time
    // one of its dependencies is ready (infinite if none is scheduled yet).
    let mut stuck: Vec<Option<f64>> = vec![None; l.p as usize];
    // Time order: the device free earliest decides (lowest index on
    // ties); every pass ending by then is known, so what is ready by
    // then is final.
    while let Some(now) = (0..l.p as usize)
        .filter(|&d| left[d] > 0)
        .map(|d| free_at[d])
        .min_by(f64::total_cmp)
    {
        let Some(d) = (0..l.p as usize).find(|&d| left[d] > 0 && free_at[d] == now && stuck[d].is_none())
        else {
            // Every device free now has nothing to start: each waits for its
            // next dependency or the next end of a pass, whichever is first.
            if !wake_stuck(&mut stuck, &mut free_at, now, |o| left[o] > 0) {
                debug_assert!(false, "zero-bubble greedy deadlocked");
                break;
            }
            continue;
        };
        let mut wake = f64::INFINITY;
        let mut ready_b: Option<(usize, usize)> = None;
        let mut ready_f: Option<(usize, usize)> = None;
        let mut oldest_w: Option<(f64, usize, usize)> = None;
        for &s in &dev_stages[d] {
            // Only the next micro-batch of each pass is a candidate.
            if let Some(mb) = Some(next_f[s]).filter(|&mb| mb < m) {
                let r = f_ready(&f_end, mb, s);
                // A micro-batch enters a device at its first chunk, and is
                // admitted only if all its chunks' activations fit: a later
                // chunk's forward never waits on memory (it could wait
                // forever, the memory it needs freed only by its own W).
                let fits = s != first_stage[d] || admitted[d] + 1.0 <= limit + 1e-9;
                if r <= now && fits {
                    ready_f = earlier(ready_f, (mb, s));
                } else if r > now && fits {
                    wake = wake.min(r);
                }
            }
            if let Some(mb) = Some(next_b[s]).filter(|&mb| mb < m) {
                let r = b_ready(&f_end, &b_end, mb, s);
                if r <= now {
                    ready_b = earlier(ready_b, (mb, s));
                } else if r > now {
                    wake = wake.min(r);
                }
            }
            if let Some(mb) = Some(next_w[s]).filter(|&mb| mb < next_b[s]) {
                let key = (b_end[idx(mb, s)], mb, s);
                if oldest_w.is_none_or(|w| (key.0, key.1) < (w.0, w.1)) {
                    oldest_w = Some(key);
                }
            }
        }
        let pick = match (ready_b, ready_f, oldest_w) {
            (Some((mb, s)), _, _) => Some((Pass::B, mb, s)),
            (None, Some((mb, s)), _) => Some((Pass::F, mb, s)),
            (None, None, Some((_, mb, s))) => Some((Pass::W, mb, s)),
            (None, None, None) => None,
        };
        let Some((pass, mb, s)) = pick else {
            // Nothing to start now; decided once every device free now has
            // had its turn (their passes end later, so nothing here changes).
            stuck[d] = Some(wake);
            continue;
        };
        let i = idx(mb, s);
        let end = now + t.of(pass, s);
        match pass {
            Pass::F => {
                f_end[i] = end;
                next_f[s] += 1;
                if s == first_stage[d] {
                    admitted[d] += 1.0;
                }
            }
            Pass::B => {
                b_end[i] = end;
                next_b[s] += 1;
            }
            Pass::W => {
                next_w[s] += 1;
                // The first chunk's W is a micro-batch's last on the device.
                if s == first_stage[d] {
                    admitted[d] -= 1.0;
                }
            }
        }
        free_at[d] = end;
        left[d] -= 1;
        lists[d].push(task(pass, mb as u32, s as u32));
    }
    lists
}

/// The candidate with the lower micro-batch (then the later stage, which
/// is nearer the end of its pass through the pipeline).
fn earlier(best: Option<(usize, usize)>, c: (usize, usize)) -> Option<(usize, usize)> {
    match best {
        Some(b) if (b.0, std::cmp::Reverse(b.1)) <= (c.0, std::cmp::Reverse(c.1)) => Some(b),
        _ => Some(c),
    }
}

/// Every device stuck at `now` (nothing to start) waits until its next
/// dependency is ready or the next pass of a device with work left
/// (`has_work`) ends, whichever is first. False when none can move: the
/// order would wait forever.
fn wake_stuck(
    stuck: &mut [Option<f64>],
    free_at: &mut [f64],
    now: f64,
    has_work: impl Fn(usize) -> bool,
) -> bool {
    let next_end = (0..free_at.len())
        .filter(|&o| has_work(o) && free_at[o] > now)
        .map(|o| free_at[o])
        .fold(f64::INFINITY, f64::min);
    let mut moved = false;
    for (d, s) in stuck.iter_mut().enumerate() {
        if let Some(w) = s.take() {
            let to = w.min(next_end);
            if to.is_finite() && to > now {
                free_at[d] = to;
                moved = true;
            }
        }
    }
    moved
}
