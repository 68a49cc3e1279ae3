//! `predictive`: route to the replica whose predicted time to first token
//! is lowest, the prediction made with the simulator's own time model from
//! the replica's reported queue (Block: Da et al., "Block: Balancing Load in
//! LLM Serving with Context, Knowledge and Predictive Scheduling", 2025,
//! which predicts each instance's latency by simulating its queue).

use super::affinity::PrefixIndex;
use super::{Indexes, Load, Router, View};
use crate::timing::{BatchShape, TimeModel};
use crate::units::nanos_to_secs;
use crate::workload::RequestSpec;

/// Predicted TTFT, seconds, of a request needing `new_tokens` prefill tokens
/// on a replica reporting `load` (see [`predict_prefill_time`]).
pub fn predict_ttft(load: &Load, new_tokens: u64, view: &View) -> f64 {
    predict_prefill_time(load, new_tokens, view.model, view.limits.token_budget)
}

/// Seconds until a replica reporting `load` has prefilled its backlog and
/// then `new_tokens` more: iterations of at most `budget` tokens, each also
/// carrying the current decoding set (which chunked-prefill schedulers
/// interleave and prefill-first ones stall — either way the decodes cost
/// time in the window). O(1): two time-model calls.
pub fn predict_prefill_time(load: &Load, new_tokens: u64, model: &dyn TimeModel, budget: u32) -> f64 {
    let tokens = load.prefill_backlog + new_tokens;
    let budget = budget.max(1) as u64;
    let with_decode = |chunk: u64| {
        let mut b = BatchShape::default();
        if chunk > 0 {
            b.add_prefill_chunk(0, chunk);
        }
        b.decode_seqs = load.decoding;
        b.decode_kv_tokens = if load.decoding > 0 { load.kv_tokens } else { 0 };
        if b.is_empty() {
            0
        } else {
            model.iteration(&b).duration
        }
    };
    let full = tokens / budget;
    let rest = tokens % budget;
    let mut t = 0u64;
    if full > 0 {
        t += full * with_decode(budget);
    }
    if rest > 0 {
        t += with_decode(rest);
    }
    nanos_to_secs(t)
}

/// The `predictive` router: lowest predicted TTFT, counting the prompt
/// tokens the router believes are cached on each replica (its approximate
/// prefix index of what it routed). Ties go to the lowest index.
#[derive(Default)]
pub struct Predictive {
    index: PrefixIndex,
}

impl Router for Predictive {
    fn route(&mut self, req: &RequestSpec, view: &View) -> usize {
        let mut best = 0;
        let mut best_t = f64::INFINITY;
        for (i, l) in view.loads.iter().enumerate() {
            let hit = self.index.hit_tokens(req, i as u32, view.block_size);
            let t = predict_ttft(l, (req.prompt_tokens - hit) as u64, view);
            if t < best_t {
                best = i;
                best_t = t;
            }
        }
        self.index.record(req, best as u32, view.block_size);
        best
    }

    fn indexes(&self) -> Indexes {
        Indexes::NONE
    }
}
