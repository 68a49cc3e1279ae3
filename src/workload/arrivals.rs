//! Arrival processes: the gaps between consecutive requests
//! (`workload.arrivals.kind`, one [`ArrivalKind`] each).

use crate::scenario::kinds::kinds;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};

kinds! {
    /// The arrival process (`workload.arrivals.kind`).
    pub enum ArrivalKind {
        /// Exponential gaps with mean `1/rate` (memoryless arrivals).
        Poisson = "poisson",
        /// Gamma-distributed gaps with mean `1/rate` and coefficient of
        /// variation `cv` (shape `k = 1/cv²`, scale `1/(rate·k)`): `cv > 1`
        /// gives bursts, `cv = 1` is Poisson, `cv < 1` is smoother — the
        /// bursty-arrival model of e.g. AlpaServe and DistServe.
        Gamma = "gamma",
        /// Every gap exactly `1/rate`.
        Constant = "constant",
        /// The trace's own timestamps, shifted so the first request arrives
        /// at 0 and divided by `rate_scale`.
        Trace = "trace",
    }
}

/// A synthetic arrival process (trace timestamps are handled by the source).
#[derive(Debug, Clone)]
pub enum Arrivals {
    Poisson { rate: f64 },
    Gamma(Gamma<f64>),
    Constant { gap: f64 },
}

impl Arrivals {
    /// The next inter-arrival gap in seconds.
    pub fn gap(&self, rng: &mut ChaCha8Rng) -> f64 {
        match self {
            Arrivals::Poisson { rate } => {
                // Inverse-CDF sampling: −ln(U)/λ with U in (0, 1].
                let u: f64 = 1.0 - rng.random::<f64>();
                -u.ln() / rate
            }
            Arrivals::Gamma(g) => g.sample(rng),
            Arrivals::Constant { gap } => *gap,
        }
    }
}
