//! Cluster level: the router that sends each arriving request to one
//! replica (`routers`, `affinity`, `predictive`), prefill/decode
//! disaggregation and semi-PD ([`disagg`]) and the KV-transfer link model
//! (`link`).
//!
//! A router sees only what a real one could: each replica's queue length,
//! prefill backlog and KV use as *reported* ([`Load`], refreshed every
//! `cluster.router_staleness` seconds, or exact when 0), what it routed
//! itself (cache-aware routers keep an approximate prefix index of that,
//! as SGLang's router does), and the simulator's time model for
//! predictions — never the future or a replica's cache directly.
//!
//! Cost: a router that needs the least-loaded replica asks the [`View`]
//! ([`View::least_outstanding`], [`View::least_kv_load`],
//! [`View::total_outstanding`]), which the engine answers from indexes it
//! keeps current as reports change (`index`: O(1) per question, O(log
//! replicas) per changed report), with the same tie-breaking as a scan.

pub(crate) mod affinity;
pub mod disagg;
pub(crate) mod index;
pub(crate) mod link;
pub(crate) mod predictive;
pub(crate) mod routers;

pub use index::{Indexes, LoadIndex};

use crate::registry::RouterSpec;
use crate::replica::ReplicaState;
use crate::replica::scheduler::Limits;
use crate::timing::TimeModel;
use crate::units::Nanos;
use crate::workload::{RequestSpec, mix64};

/// What a replica reports to the router (a copy, possibly stale).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Requests waiting for admission.
    pub waiting: u32,
    /// Requests admitted (prefilling or decoding).
    pub running: u32,
    /// Requests in the decoding set.
    pub decoding: u32,
    /// KV tokens held (blocks in use × block size).
    pub kv_tokens: u64,
    /// Prefill tokens still to compute: waiting prompts plus the rest of
    /// partially prefilled ones.
    pub prefill_backlog: u64,
}

impl Load {
    /// The replica's current state as a report.
    pub fn of(s: &ReplicaState) -> Load {
        let kv_tokens = s.kv().used() * s.block_size() as u64;
        let waiting_prompts = s.kv_load_tokens() - kv_tokens;
        let partial: u64 = s
            .prefilling()
            .iter()
            .map(|&slot| s.prefill_remaining(slot) as u64)
            .sum();
        Load {
            waiting: s.num_waiting() as u32,
            running: s.num_running() as u32,
            decoding: s.num_decoding(),
            kv_tokens,
            prefill_backlog: waiting_prompts + partial,
        }
    }

    /// Waiting + running requests.
    pub fn outstanding(&self) -> u64 {
        (self.waiting + self.running) as u64
    }

    /// KV tokens held plus prompt tokens still to prefill (`least-kv`'s measure).
    pub fn kv_load(&self) -> u64 {
        self.kv_tokens + self.prefill_backlog
    }
}

/// Everything a router may look at when it routes one request.
pub struct View<'a> {
    pub now: Nanos,
    /// Reports of the replicas it routes among (index = its answer).
    pub loads: &'a [Load],
    /// Indexes over exactly `loads` (the engine's); `None`: the methods
    /// below scan `loads` instead (hand-made views), with the same answers.
    pub index: Option<&'a LoadIndex>,
    /// The time model of those replicas (for TTFT predictions).
    pub model: &'a dyn TimeModel,
    pub limits: Limits,
    /// KV block size, tokens (prefix units of group prefixes).
    pub block_size: u32,
    /// TTFT SLO, seconds (0 = none).
    pub slo_ttft: f64,
}

impl View<'_> {
    /// The replica with the fewest waiting + running requests; ties go to
    /// the lowest index.
    #[inline]
    pub fn least_outstanding(&self) -> usize {
        self.checked_argmin(
            self.index.and_then(LoadIndex::least_outstanding),
            Load::outstanding,
        )
    }

    /// The replica with the least KV held + prompt tokens to prefill
    /// ([`Load::kv_load`]); ties go to the lowest index.
    #[inline]
    pub fn least_kv_load(&self) -> usize {
        self.checked_argmin(self.index.and_then(LoadIndex::least_kv_load), Load::kv_load)
    }

    /// The index's answer when it keeps one (checked against a scan in
    /// debug builds), else the scan's.
    #[inline]
    fn checked_argmin(&self, indexed: Option<usize>, key: fn(&Load) -> u64) -> usize {
        match indexed {
            Some(i) => {
                debug_assert_eq!(i, argmin(self.loads, key), "a stale index");
                i
            }
            None => argmin(self.loads, key),
        }
    }

    /// Σ outstanding requests over `loads`.
    #[inline]
    pub fn total_outstanding(&self) -> u64 {
        let scan = || self.loads.iter().map(Load::outstanding).sum();
        match self.index.and_then(LoadIndex::total_outstanding) {
            Some(t) => {
                debug_assert_eq!(t, scan(), "a stale index");
                t
            }
            None => scan(),
        }
    }
}

/// Picks the replica (an index into `view.loads`) for a request.
pub trait Router: Send {
    fn route(&mut self, req: &RequestSpec, view: &View) -> usize;

    /// Which of the view's indexed questions ([`View::least_outstanding`],
    /// [`View::least_kv_load`], [`View::total_outstanding`]) this router
    /// asks, so that the engine keeps only those indexes current. Any
    /// answer is correct (an unkept index is replaced by a scan); the
    /// default, all of them, is the fast choice for a router that asks.
    fn indexes(&self) -> Indexes {
        Indexes::ALL
    }

    /// No later request of `session` will be routed: its last turn was
    /// routed (`RequestSpec::ends_session`), or the workload ended it early
    /// (`Workload::take_ended_session`: a closed-loop session whose turn
    /// was refused). A router that remembers sessions forgets this one, so
    /// that its memory is bounded by the sessions in progress, not by all
    /// sessions ever seen.
    fn session_over(&mut self, _session: u64) {}
}

/// The built-in routers, in the order help texts list them (see
/// [`crate::registry`]). Randomised routers draw from their own ChaCha
/// stream derived from `workload.seed`.
pub(crate) fn builtin_routers() -> Vec<RouterSpec> {
    use routers::*;
    vec![
        RouterSpec::new("random", "uniformly at random", |a| Box::new(Random::new(a.seed))),
        RouterSpec::new("round-robin", "in turn", |_| Box::new(RoundRobin::default())),
        RouterSpec::new("least-outstanding", "fewest waiting + running requests", |_| {
            Box::new(LeastBy(Measure::Outstanding))
        }),
        RouterSpec::new("least-kv", "least KV held plus prompt tokens to prefill", |_| {
            Box::new(LeastBy(Measure::KvLoad))
        }),
        RouterSpec::new("power-of-two", "the less loaded of two random replicas", |a| {
            Box::new(PowerOfTwo::new(a.seed))
        }),
        RouterSpec::new(
            "prefix-affinity",
            "the replica holding the longest prefix (SGLang's router)",
            |a| Box::new(affinity::PrefixAffinity::new(a.replicas)),
        ),
        RouterSpec::new(
            "dualmap",
            "two hashed candidates, the better cached and loaded (DualMap)",
            |a| Box::new(affinity::DualMap::new(a.replicas)),
        ),
        RouterSpec::new("predictive", "the least predicted TTFT (Block-style)", |_| {
            Box::new(predictive::Predictive::default())
        }),
        RouterSpec::new(
            "session-affinity",
            "each session (else client) on its first replica",
            |_| Box::new(SessionAffinity::default()),
        ),
    ]
}

/// The seed of the router's random stream (independent of the workload's streams).
pub(crate) fn router_seed(seed: u64) -> u64 {
    mix64(seed ^ 0x524F_5554_4552_5321)
}

/// Index of the smallest `key` over the loads; ties go to the lowest index
/// (what [`index::MinTree`] answers without the scan).
pub(crate) fn argmin(loads: &[Load], key: impl Fn(&Load) -> u64) -> usize {
    argmin_by(loads.len(), |i| key(&loads[i]))
}

/// The `i < n` with the least `key(i)`, the lowest on ties (0 when `n` is 0).
pub(crate) fn argmin_by(n: usize, key: impl Fn(usize) -> u64) -> usize {
    let mut best = 0;
    let mut best_v = u64::MAX;
    for i in 0..n {
        let v = key(i);
        if v < best_v {
            best = i;
            best_v = v;
        }
    }
    best
}

#[cfg(test)]
mod tests;
