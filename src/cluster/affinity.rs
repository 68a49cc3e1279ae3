//! Cache-aware routers: `prefix-affinity` (consistent hashing of the
//! leading prefix) and `dualmap` (two hash candidates, load- and
//! cache-aware choice, SLO fallback, hotspot rebalancing), plus the
//! router-side approximate prefix index they and `predictive` use.

use super::predictive::predict_ttft;
use super::routers::LEAST_OUTSTANDING;
use super::{Indexes, Router, View};
use crate::workload::{RequestSpec, mix64};
use std::collections::HashMap;

/// Virtual nodes per replica on a hash ring (smooths the key split).
const VNODES: u32 = 64;
/// The index forgets everything when it holds this many unit hashes
/// (bounds memory on long runs; deterministic).
const INDEX_CAP: usize = 1 << 20;

/// A consistent-hashing ring (Karger et al., STOC'97): each replica owns
/// `VNODES` points; a key goes to the first point at or after its hash.
/// Adding or removing a replica moves only ~1/n of the keys.
pub struct Ring {
    points: Vec<(u64, u32)>,
}

impl Ring {
    pub fn new(replicas: usize, salt: u64) -> Ring {
        let mut points = Vec::with_capacity(replicas * VNODES as usize);
        for r in 0..replicas as u64 {
            for v in 0..VNODES as u64 {
                points.push((mix64(salt ^ mix64(r << 16 | v)), r as u32));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// Position on the ring of `h` (index of the owning point).
    fn position(&self, h: u64) -> usize {
        self.points.partition_point(|p| p.0 < h) % self.points.len()
    }

    /// The replica owning hash `h`.
    pub fn lookup(&self, h: u64) -> usize {
        self.points[self.position(h)].1 as usize
    }

    /// The first replica other than `not` clockwise from `h`.
    pub fn lookup_other(&self, h: u64, not: usize) -> usize {
        let mut p = self.position(h);
        for _ in 0..self.points.len() {
            let r = self.points[p].1 as usize;
            if r != not {
                return r;
            }
            p = (p + 1) % self.points.len();
        }
        not
    }
}

/// Leading prefix units that form the routing key.
pub const KEY_UNITS: u32 = 2;

/// The routing key of a request's prefix: the chained hash of its first
/// [`KEY_UNITS`] shareable units (or fewer, when it has fewer) — deep
/// enough to look past a fleet-wide system prompt (Mooncake's traces start
/// almost every prompt with the same block), shallow enough that the turns
/// of one conversation and the users of one system prompt share a key.
/// `None` when nothing is shared.
pub fn prefix_key(req: &RequestSpec, block_size: u32) -> Option<u64> {
    let units = req.prefix.units(req.prompt_tokens, block_size);
    (units > 0).then(|| req.prefix.unit_hash(units.min(KEY_UNITS) - 1))
}

/// The router's approximate picture of the replicas' prefix caches, built
/// from what it routed (as SGLang's cache-aware router keeps an
/// approximate radix tree): for each prefix unit, the last two replicas it
/// was sent to. Eviction on the replicas is not seen, so hits are
/// over-estimated under memory pressure — as in a real router.
#[derive(Default)]
pub struct PrefixIndex {
    units: HashMap<u64, [u32; 2]>,
}

const NOBODY: u32 = u32::MAX;

impl PrefixIndex {
    /// Prompt tokens the router believes `replica` has cached for `req`
    /// (whole leading units, at most prompt − 1: the last token is always computed).
    pub fn hit_tokens(&self, req: &RequestSpec, replica: u32, block_size: u32) -> u32 {
        let n = req.prefix.units(req.prompt_tokens, block_size);
        let mut j = 0;
        while j < n {
            match self.units.get(&req.prefix.unit_hash(j)) {
                Some(rs) if rs.contains(&replica) => j += 1,
                _ => break,
            }
        }
        (j * req.prefix.unit_tokens(block_size)).min(req.prompt_tokens - 1)
    }

    /// Notes that `req` was sent to `replica`.
    pub fn record(&mut self, req: &RequestSpec, replica: u32, block_size: u32) {
        if self.units.len() >= INDEX_CAP {
            self.units.clear();
        }
        for j in 0..req.prefix.units(req.prompt_tokens, block_size) {
            let e = self.units.entry(req.prefix.unit_hash(j)).or_insert([NOBODY; 2]);
            if e[0] != replica {
                *e = [replica, e[0]];
            }
        }
    }
}

/// `prefix-affinity`: consistent hashing of the leading prefix ([`prefix_key`]), so
/// every request sharing a system prompt or session lands on the replica
/// that cached it (cache-affinity routing as in Preble, Srivatsa et al.
/// ICLR'25, and the "prefix hash" policy of llm-d / vLLM production stack).
/// Requests without a shared prefix go to the least-outstanding replica.
/// Nothing bounds a hot prefix's replica's load: that is its weakness.
pub struct PrefixAffinity {
    ring: Ring,
}

impl PrefixAffinity {
    pub fn new(replicas: usize) -> Self {
        PrefixAffinity {
            ring: Ring::new(replicas, 0xAFF1),
        }
    }
}

impl Router for PrefixAffinity {
    fn route(&mut self, req: &RequestSpec, view: &View) -> usize {
        match prefix_key(req, view.block_size) {
            Some(k) => self.ring.lookup(k),
            None => view.least_outstanding(),
        }
    }

    fn indexes(&self) -> Indexes {
        LEAST_OUTSTANDING
    }
}

/// A candidate is a hotspot when its outstanding requests exceed this
/// multiple of the cluster mean (+1).
const HOTSPOT_FACTOR: f64 = 2.0;

/// `dualmap` (Yuan et al., "DualMap: Enabling Both Cache Affinity and Load
/// Balancing for Distributed LLM Serving", 2025): each request's prefix key
/// is hashed by two independent hash functions to two candidate replicas
/// (the power of two choices applied to cache affinity, so a prefix's cache
/// lives on at most two replicas). Of the two it picks the one with the
/// lower predicted TTFT, counting the prompt tokens the router believes it
/// has cached (its approximate prefix index) and its reported prefill
/// backlog, priced by the time model.
/// - **SLO-aware fallback**: when both candidates' predicted TTFT exceed the
///   TTFT SLO, the request goes to the replica with the lowest predicted
///   TTFT overall (ignoring affinity).
/// - **Hotspot rebalancing**: when both candidates of a key are hotspots
///   (outstanding > 2 × mean + 1), the key is remapped (re-salted) to a new
///   pair of candidates for later requests.
///
/// Requests without a shared prefix hash their id (plain power of two).
pub struct DualMap {
    rings: [Ring; 2],
    index: PrefixIndex,
    /// Key → remap generation (hotspot rebalancing).
    salt: HashMap<u64, u64>,
}

impl DualMap {
    pub fn new(replicas: usize) -> Self {
        DualMap {
            rings: [Ring::new(replicas, 0xD0A1), Ring::new(replicas, 0xD0A2)],
            index: PrefixIndex::default(),
            salt: HashMap::new(),
        }
    }

    /// The two candidates of `key` (distinct when there are two replicas).
    pub fn candidates(&self, key: u64) -> (usize, usize) {
        let g = self.salt.get(&key).copied().unwrap_or(0);
        let h = mix64(key ^ g.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let a = self.rings[0].lookup(h);
        let b = self.rings[1].lookup_other(mix64(h ^ 0xB), a);
        (a, b)
    }
}

impl Router for DualMap {
    fn route(&mut self, req: &RequestSpec, view: &View) -> usize {
        let key = prefix_key(req, view.block_size).unwrap_or_else(|| mix64(req.id ^ 0x1D));
        let (a, b) = self.candidates(key);
        let cost = |idx: &PrefixIndex, i: usize| {
            let hit = idx.hit_tokens(req, i as u32, view.block_size);
            predict_ttft(&view.loads[i], (req.prompt_tokens - hit) as u64, view)
        };
        let (ta, tb) = (cost(&self.index, a), cost(&self.index, b));
        let mut pick = if tb < ta { b } else { a };
        if view.slo_ttft > 0.0 && ta > view.slo_ttft && tb > view.slo_ttft {
            let mut best_t = f64::INFINITY;
            for i in 0..view.loads.len() {
                let t = cost(&self.index, i);
                if t < best_t {
                    best_t = t;
                    pick = i;
                }
            }
        }
        let (oa, ob) = (view.loads[a].outstanding(), view.loads[b].outstanding());
        let floor = oa.min(ob) as f64;
        // Only compute the mean when the pair is loaded enough to be hot.
        if floor > HOTSPOT_FACTOR {
            let mean = view.total_outstanding() as f64 / view.loads.len() as f64;
            if floor > HOTSPOT_FACTOR * mean + 1.0 {
                *self.salt.entry(key).or_insert(0) += 1;
                if view.loads[pick].outstanding() as f64 > HOTSPOT_FACTOR * mean + 1.0 {
                    pick = view.least_outstanding();
                }
            }
        }
        self.index.record(req, pick as u32, view.block_size);
        pick
    }

    fn indexes(&self) -> Indexes {
        Indexes {
            total_outstanding: true,
            ..LEAST_OUTSTANDING
        }
    }
}
