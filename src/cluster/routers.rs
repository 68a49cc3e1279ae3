//! Load-balancing routers that ignore request content.

use super::{Indexes, Router, View, router_seed};
use crate::workload::RequestSpec;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// `random`: a uniformly random replica per request (the baseline of
/// Mitzenmacher's balls-into-bins analysis; its queues are those of
/// independent M/G/1 servers).
pub struct Random {
    rng: ChaCha8Rng,
}

impl Random {
    pub fn new(seed: u64) -> Self {
        Random {
            rng: ChaCha8Rng::seed_from_u64(router_seed(seed)),
        }
    }
}

impl Router for Random {
    fn route(&mut self, _req: &RequestSpec, view: &View) -> usize {
        self.rng.random_range(0..view.loads.len())
    }

    fn indexes(&self) -> Indexes {
        Indexes::NONE
    }
}

/// `round-robin`: replicas in turn, regardless of load (vLLM production
/// stack / Kubernetes service default).
#[derive(Default)]
pub struct RoundRobin {
    next: usize,
}

impl Router for RoundRobin {
    fn route(&mut self, _req: &RequestSpec, view: &View) -> usize {
        let n = view.loads.len();
        let i = self.next % n;
        self.next = (i + 1) % n;
        i
    }

    fn indexes(&self) -> Indexes {
        Indexes::NONE
    }
}

/// `least-outstanding` / `least-kv`: join-the-shortest-queue (Winston 1977;
/// Gupta et al. 2007 for processor sharing) on a load measure: waiting +
/// running requests, or KV tokens held + prompt tokens still to prefill.
/// Ties go to the lowest index (deterministic). The view answers from the
/// engine's index in O(1) (see [`super::index`]).
pub struct LeastBy(pub Measure);

/// The load measure a [`LeastBy`] router minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// [`super::Load::outstanding`]: waiting + running requests.
    Outstanding,
    /// [`super::Load::kv_load`]: KV tokens held + prompt tokens to prefill.
    KvLoad,
}

impl Router for LeastBy {
    fn route(&mut self, _req: &RequestSpec, view: &View) -> usize {
        match self.0 {
            Measure::Outstanding => view.least_outstanding(),
            Measure::KvLoad => view.least_kv_load(),
        }
    }

    fn indexes(&self) -> Indexes {
        Indexes {
            least_outstanding: self.0 == Measure::Outstanding,
            least_kv_load: self.0 == Measure::KvLoad,
            ..Indexes::NONE
        }
    }
}

/// Only [`View::least_outstanding`].
pub(crate) const LEAST_OUTSTANDING: Indexes = Indexes {
    least_outstanding: true,
    ..Indexes::NONE
};

/// `power-of-two`: sample two distinct replicas uniformly, send to the one
/// with fewer outstanding requests (Mitzenmacher, "The Power of Two Choices
/// in Randomized Load Balancing", IEEE TPDS 2001; Vvedenskaya et al. 1996).
/// Two samples cut the maximum queue from Θ(log n / log log n) to
/// Θ(log log n) at O(1) cost per request.
pub struct PowerOfTwo {
    rng: ChaCha8Rng,
}

impl PowerOfTwo {
    pub fn new(seed: u64) -> Self {
        PowerOfTwo {
            rng: ChaCha8Rng::seed_from_u64(router_seed(seed) ^ 2),
        }
    }
}

impl Router for PowerOfTwo {
    fn route(&mut self, _req: &RequestSpec, view: &View) -> usize {
        let n = view.loads.len();
        if n == 1 {
            return 0;
        }
        let a = self.rng.random_range(0..n);
        let mut b = self.rng.random_range(0..n - 1);
        if b >= a {
            b += 1;
        }
        let (la, lb) = (view.loads[a].outstanding(), view.loads[b].outstanding());
        if lb < la || (lb == la && b < a) { b } else { a }
    }

    fn indexes(&self) -> Indexes {
        Indexes::NONE
    }
}

/// `session-affinity`: every request of a session goes to the replica its
/// first request went to, which was the least-outstanding one then (sticky
/// sessions, as in Kubernetes `sessionAffinity: ClientIP` or the vLLM
/// production stack's session router). Keeps a session's KV history on
/// one replica.
///
/// The session is the request's session id when the workload gives one
/// (`RequestSpec::session`: multi-turn sessions, open- or closed-loop),
/// else the client / tenant id (`RequestSpec::client`).
#[derive(Default)]
pub struct SessionAffinity {
    /// client id → replica + 1 (0 = not seen yet).
    home: Vec<u32>,
    /// session id → replica (looked up, never iterated).
    conversations: HashMap<u64, u32>,
}

impl Router for SessionAffinity {
    fn route(&mut self, req: &RequestSpec, view: &View) -> usize {
        let n = view.loads.len();
        if let Some(s) = req.session {
            let home = *self
                .conversations
                .entry(s)
                .or_insert_with(|| view.least_outstanding() as u32);
            return home as usize % n;
        }
        let c = req.client as usize;
        if c >= self.home.len() {
            self.home.resize(c + 1, 0);
        }
        match self.home[c] {
            0 => {
                let i = view.least_outstanding();
                self.home[c] = i as u32 + 1;
                i
            }
            h => (h - 1) as usize % n,
        }
    }

    fn indexes(&self) -> Indexes {
        LEAST_OUTSTANDING
    }

    fn session_over(&mut self, session: u64) {
        self.conversations.remove(&session);
    }
}

impl SessionAffinity {
    /// Sessions it remembers (for tests of its memory bound).
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.conversations.len()
    }
}
