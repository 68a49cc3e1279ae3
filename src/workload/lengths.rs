//! Token-length distributions for prompts and outputs (one
//! [`LengthKind`] each).

use crate::scenario::kinds::kinds;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Zipf};

kinds! {
    /// A token-length distribution (`workload.prompt.kind`,
    /// `workload.output.kind`, `workload.sessions.turns.kind`, …).
    pub enum LengthKind {
        /// Always `value`.
        Fixed = "fixed",
        /// Integers in `min..=max`, equally likely.
        Uniform = "uniform",
        /// `round(median · e^(sigma·Z))`, Z standard normal, clamped to
        /// `[min, max]` — request lengths of production traces are close to
        /// lognormal (e.g. the Azure LLM inference traces, Patel et al.
        /// "Splitwise", ISCA'24).
        LogNormal = "lognormal",
        /// `min + rank − 1` with rank ∈ 1..=(max−min+1) drawn with
        /// P(rank) ∝ rank^−exponent: many short requests, a heavy tail.
        Zipf = "zipf",
        /// Empirical: the lengths of a trace row sampled uniformly with
        /// replacement (drawn by the source, which keeps a row's prompt and
        /// output together).
        Trace = "trace",
    }
}

#[derive(Debug, Clone)]
pub enum Lengths {
    Fixed(u32),
    Uniform {
        min: u32,
        max: u32,
    },
    LogNormal {
        median: f64,
        sigma: f64,
        min: u32,
        max: u32,
    },
    Zipf {
        min: u32,
        dist: Zipf<f64>,
    },
    /// Drawn from the trace by the source.
    Trace,
}

/// `median · e^(sigma·Z)`, Z standard normal.
pub fn lognormal(median: f64, sigma: f64, rng: &mut ChaCha8Rng) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    median * (sigma * z).exp()
}

impl Lengths {
    /// One length (≥ 1). Not called for `Trace`.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> u32 {
        let v = match self {
            Lengths::Fixed(v) => *v,
            Lengths::Uniform { min, max } => rng.random_range(*min..=*max),
            Lengths::LogNormal {
                median,
                sigma,
                min,
                max,
            } => {
                (lognormal(*median, *sigma, rng)
                    .round()
                    .clamp(*min as f64, *max as f64)) as u32
            }
            Lengths::Zipf { min, dist } => min + dist.sample(rng) as u32 - 1,
            Lengths::Trace => unreachable!("trace lengths are drawn by the source"),
        };
        v.max(1)
    }
}
