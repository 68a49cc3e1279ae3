//! Executes a pipeline schedule: each device runs its list of passes
//! strictly in order, a pass starting when its device is free and its
//! inputs have arrived — the forward of a micro-batch after the previous
//! stage's forward and the activation transfer, its backward-input after
//! the next stage's backward-input and the gradient transfer (the last
//! stage's after its own forward), its backward-weight after its
//! backward-input. Bubbles and peak activation memory are what this
//! execution gives.
//!
//! Transfers take their time without occupying the device (they run on
//! the link's copy engine); links are not contended (one pipeline's
//! neighbours exchange one message at a time in every schedule here).
//!
//! Invariants: every pass runs once, after its dependencies; a device runs
//! one pass at a time, in its list's order; the result depends only on the
//! lists and the times (no hash order, no threads).

use super::schedule::{Layout, Pass, PassTimes, Task};
use crate::error::{Error, Result};

/// One pass as it ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ran {
    pub task: Task,
    pub start: f64,
    pub end: f64,
}

/// The execution of one iteration's schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Per device, its passes in the order they ran.
    pub devices: Vec<Vec<Ran>>,
    /// From the first pass's start (0) to the last pass's end.
    pub span: f64,
    /// The longest time any one device spends on the iteration, from its
    /// first pass's start to its last pass's end: the period at which
    /// iterations repeat when a device starts the next one as soon as its
    /// own part of this one is done (each stage steps its own optimizer;
    /// Qi et al.'s post-validation removes the global synchronisation
    /// before it). For GPipe, 1F1B and interleaved 1F1B it equals the span
    /// (the first device starts first and ends last); the zero-bubble
    /// schedules' later devices start later and end no later.
    pub period: f64,
    /// Per device, the most activations it held at once, in whole-stage
    /// units (a micro-batch's activations of all the device's layers = 1;
    /// a chunk of `v` holds `1/v`): held from a forward's start to the end
    /// of the last backward pass needing them (W when split, else B).
    pub peak_activations: Vec<f64>,
}

impl Timeline {
    /// Busy time of device `d`.
    pub fn busy(&self, d: usize) -> f64 {
        self.devices[d].iter().map(|r| r.end - r.start).sum()
    }

    /// Idle share of the devices' time over the period:
    /// `1 − Σ busy / (p · period)` (Qi et al.'s bubble rate, which divides by
    /// the longest stage's time).
    pub fn bubble_fraction(&self) -> f64 {
        let p = self.devices.len() as f64;
        if self.period <= 0.0 {
            return 0.0;
        }
        let busy: f64 = (0..self.devices.len()).map(|d| self.busy(d)).sum();
        (1.0 - busy / (p * self.period)).max(0.0)
    }
}

/// Runs `lists` (one per device) on `layout` with pass times `t`; `split`
/// says whether W passes are separate (else B includes them). Errors if a
/// list set is not a valid schedule (a pass missing, twice, on the wrong
/// device, or an order that waits on itself).
pub fn execute(layout: &Layout, lists: &[Vec<Task>], t: &PassTimes, split: bool) -> Result<Timeline> {
    let stages = layout.stages() as usize;
    let m = layout.m as usize;
    let p = layout.p as usize;
    let bad = |msg: String| Err(Error::Infeasible(format!("pipeline schedule: {msg}")));
    if lists.len() != p {
        return bad(format!("{} device lists for {p} devices", lists.len()));
    }
    let idx = |mb: usize, s: usize| mb * stages + s;
    let mut seen = vec![[false; 3]; m * stages];
    for (d, list) in lists.iter().enumerate() {
        for task in list {
            let (mb, s) = (task.micro_batch as usize, task.stage as usize);
            if mb >= m || s >= stages || layout.device(task.stage) as usize != d {
                return bad(format!("{task:?} listed on device {d}"));
            }
            if task.pass == Pass::W && !split {
                return bad(format!("{task:?}: W passes are folded into B in this schedule"));
            }
            let k = task.pass as usize;
            if std::mem::replace(&mut seen[idx(mb, s)][k], true) {
                return bad(format!("{task:?} listed twice"));
            }
        }
    }
    let passes = if split { 3 } else { 2 };
    if let Some(i) = seen.iter().position(|s| s[..passes].iter().any(|x| !x)) {
        return bad(format!(
            "micro-batch {} misses a pass at stage {}",
            i / stages,
            i % stages
        ));
    }

    let hop = |from: usize, to: usize| {
        if layout.device(from as u32) == layout.device(to as u32) {
            0.0
        } else {
            t.send[from.min(to)]
        }
    };
    let mut f_end = vec![f64::NAN; m * stages];
    let mut b_end = vec![f64::NAN; m * stages];
    let mut next = vec![0usize; p];
    let mut free_at = vec![0.0f64; p];
    let mut held = vec![0.0f64; p];
    let mut peak = vec![0.0f64; p];
    let unit = 1.0 / layout.v as f64;
    let mut ran: Vec<Vec<Ran>> = lists.iter().map(|l| Vec::with_capacity(l.len())).collect();
    let total: usize = lists.iter().map(Vec::len).sum();
    let mut done = 0;
    // Sweep the devices, running every head of list whose inputs are known;
    // a sweep without progress means the order waits on itself.
    while done < total {
        let mut progressed = false;
        for d in 0..p {
            while let Some(task) = lists[d].get(next[d]) {
                let (mb, s) = (task.micro_batch as usize, task.stage as usize);
                let i = idx(mb, s);
                let ready = match task.pass {
                    Pass::F if s == 0 => 0.0,
                    Pass::F => f_end[idx(mb, s - 1)] + hop(s - 1, s),
                    Pass::B if s + 1 == stages => f_end[i],
                    // (`f64::max` would drop a NaN, an input not yet known.)
                    Pass::B => nan_max(b_end[idx(mb, s + 1)] + hop(s + 1, s), f_end[i]),
                    Pass::W => b_end[i],
                };
                if ready.is_nan() {
                    break;
                }
                let start = ready.max(free_at[d]);
                let end = start + t.of(task.pass, s);
                match task.pass {
                    Pass::F => {
                        f_end[i] = end;
                        held[d] += unit;
                        peak[d] = peak[d].max(held[d]);
                    }
                    Pass::B => {
                        b_end[i] = end;
                        if !split {
                            held[d] -= unit;
                        }
                    }
                    Pass::W => held[d] -= unit,
                }
                free_at[d] = end;
                ran[d].push(Ran {
                    task: *task,
                    start,
                    end,
                });
                next[d] += 1;
                done += 1;
                progressed = true;
            }
        }
        if !progressed {
            let stuck: Vec<String> = (0..p)
                .filter_map(|d| lists[d].get(next[d]).map(|t| format!("device {d} at {t:?}")))
                .collect();
            return bad(format!("the order waits on itself ({})", stuck.join(", ")));
        }
    }
    let span = free_at.iter().copied().fold(0.0, f64::max);
    let period = ran
        .iter()
        .filter_map(|r| Some(r.last()?.end - r.first()?.start))
        .fold(0.0, f64::max);
    Ok(Timeline {
        devices: ran,
        span,
        period,
        peak_activations: peak,
    })
}

/// The later of two times, NaN (not known yet) if either is.
pub(crate) fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}
