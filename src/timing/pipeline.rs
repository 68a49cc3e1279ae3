//! Pipeline-parallel micro-batching (vLLM's virtual engines).
//!
//! With pipeline parallelism of degree `pp`, vLLM runs `pp` virtual engines
//! per replica, each with its own scheduler and `1/pp` of the KV blocks
//! (`Scheduler.__init__`: `num_gpu_blocks //= pipeline_parallel_size`), so
//! up to `pp` batches are in the pipeline at once, each in a different
//! stage (Huang et al. 2019, "GPipe"; Narayanan et al. 2019, "PipeDream").
//! The engine models each virtual engine as a replica of its own; this
//! wrapper prices its iterations. An iteration's tokens come out after the
//! full pipeline latency `L` (every stage, the hand-offs, the host part),
//! and the same virtual engine cannot start its next batch before its
//! previous one has left — nor before the other `pp − 1` engines have had
//! their turn at the busiest stage, which each holds for `s_gpu` (its
//! stage's GPU time). The host part `h` (scheduling, input preparation) of
//! one engine runs on the CPU while the other engines' batches occupy the
//! GPUs (vLLM's engines overlap it), so it is not multiplied by `pp`; it is
//! in `L`. A virtual engine's iterations follow each other every
//!
//! ```text
//! period = max(L, pp · s_gpu)      (s_gpu = busiest stage − h)
//! ```
//!
//! With balanced stages `pp · s_gpu ≈ L − h` and the pipeline is full; with
//! an unbalanced split the slowest stage sets the pace. The model assumes
//! the engines take turns evenly (they do when all are busy, the case that
//! limits throughput); when some are idle it is pessimistic by at most
//! `pp · s_gpu − L`.

use super::{BatchShape, IterationCost, TimeModel};

/// One virtual engine's view of a replica's time model.
pub struct Pipelined {
    pub inner: Box<dyn TimeModel>,
    /// Virtual engines sharing the pipeline (= pp).
    pub engines: u32,
}

impl TimeModel for Pipelined {
    fn iteration(&self, batch: &BatchShape) -> IterationCost {
        let mut c = self.inner.iteration(batch);
        // The busiest stage's GPU time: the host part overlaps other engines' GPU work.
        let stage_gpu = c.stage.min(c.duration).saturating_sub(c.host);
        c.duration = c.duration.max(stage_gpu * self.engines as u64);
        c
    }

    fn stage_times(&self, batch: &BatchShape, out: &mut Vec<f64>) {
        self.inner.stage_times(batch, out);
    }

    fn peak_rates(&self) -> (f64, f64) {
        self.inner.peak_rates()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(IterationCost);
    impl TimeModel for Fixed {
        fn iteration(&self, _b: &BatchShape) -> IterationCost {
            self.0
        }
        fn peak_rates(&self) -> (f64, f64) {
            (3.0e15, 2.0e12)
        }
        fn stage_times(&self, _b: &BatchShape, out: &mut Vec<f64>) {
            out.clear();
            out.extend([0.004, 0.006]);
        }
    }

    /// A virtual engine reports the pipeline's stages and peaks unchanged
    /// (the trace's per-stage track and the summary's utilisation read them).
    #[test]
    fn a_virtual_engine_reports_the_inner_models_stages_and_peaks() {
        let m = Pipelined {
            inner: Box::new(Fixed(IterationCost::default())),
            engines: 2,
        };
        assert_eq!(m.peak_rates(), (3.0e15, 2.0e12));
        let mut out = vec![1.0];
        m.stage_times(&BatchShape::default(), &mut out);
        assert_eq!(out, [0.004, 0.006]);
    }

    /// The host part is not serialised `pp` times: with latency 100, a
    /// busiest stage of 40 of which 10 is host work, four engines take
    /// turns at 30 of GPU time each: period max(100, 4·30) = 120 (not
    /// 4·40 = 160); with a stage of 30 (20 GPU), max(100, 80) = 100.
    #[test]
    fn host_overhead_overlaps_other_engines_gpu_work() {
        let cost = |duration, stage, host| IterationCost {
            duration,
            stage,
            host,
            ..Default::default()
        };
        let b = BatchShape::default();
        let period = |c: IterationCost, engines| {
            Pipelined {
                inner: Box::new(Fixed(c)),
                engines,
            }
            .iteration(&b)
            .duration
        };
        assert_eq!(period(cost(100, 40, 10), 4), 120);
        assert_eq!(period(cost(100, 30, 10), 4), 100);
        // pp = 2, host 25 of a 60 stage: 2·35 = 70 < 100.
        assert_eq!(period(cost(100, 60, 25), 2), 100);
        assert_eq!(period(cost(100, 60, 0), 2), 120);
    }

    #[test]
    fn period_is_the_pipeline_latency_or_pp_turns_at_the_slowest_stage() {
        let cost = |duration, stage| IterationCost {
            duration,
            stage,
            ..Default::default()
        };
        let b = BatchShape::default();
        // Balanced: 4 stages of 25 → the latency.
        let m = Pipelined {
            inner: Box::new(Fixed(cost(100, 25))),
            engines: 4,
        };
        assert_eq!(m.iteration(&b).duration, 100);
        // One slow stage of 40: four turns at it take 160.
        let m = Pipelined {
            inner: Box::new(Fixed(cost(100, 40))),
            engines: 4,
        };
        assert_eq!(m.iteration(&b).duration, 160);
    }
}
