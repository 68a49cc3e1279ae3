//! Prefill/decode disaggregation and semi-PD: the replica pools of a
//! scenario, the hand-off of prefilled requests to decode replicas over the
//! modelled link, and semi-PD's compute partition.
//!
//! ## Modes (`cluster.mode`)
//! - **colocated**: one pool; every replica prefills and decodes (vLLM,
//!   Sarathi-Serve).
//! - **disaggregated** (DistServe: Zhong et al., OSDI'24; Splitwise: Patel
//!   et al., ISCA'24; P/D-Serve: Jin et al., 2024): a prefill pool and a
//!   decode pool, each with its own device type, TP, PP and replica count
//!   (`[cluster.prefill]`, `[cluster.decode]`; heterogeneous clusters mix
//!   device types). The router picks the prefill replica. When a prefill
//!   completes, its replica emits the first token and hands the request
//!   off; the decode replica is chosen by `cluster.decode_router` among the
//!   decode pool, counting KV already on its way there; the prompt's KV
//!   (`prompt × model.kv_bytes_per_token`) crosses the link
//!   (`super::link`: NVLink-class intra-node link when both replicas sit in
//!   one node, else the inter-node NIC; per-port FIFO contention). The
//!   decode replica admits the request into its decoding set when the KV
//!   has arrived, it is between iterations, and it has free blocks above
//!   the watermark (else the request waits there, in arrival order).
//!   Placement: replicas are laid out pool after pool on consecutive
//!   devices, `devices_per_node` to a node; pools of different device types
//!   are in different nodes.
//! - **semi-pd** (Hong et al., "semi-PD: Towards Efficient LLM Serving via
//!   Phase-Wise Disaggregated Computation and Unified Storage", 2025): each
//!   of `cluster.replicas` instances runs a prefill worker and a decode
//!   worker at the same time on the same devices, with a fraction `f` of
//!   the SMs for prefill and `1 − f` for decode (`Partitioned`: each
//!   worker also gets its SM share of the HBM bandwidth, so the two never
//!   use more than the device's peak together); memory is unified, so the
//!   hand-off moves no bytes and takes no time. The unified
//!   KV pool is split: the prefill worker gets what its largest batch needs
//!   (blocks for `max_model_len + max_num_batched_tokens` tokens, at most
//!   half), the decode worker the rest. With `adaptive`, every
//!   `adapt_interval` the fraction moves by `adapt_step` towards the phase
//!   under more SLO pressure: predicted TTFT of the prefill worker's
//!   backlog / `slo.ttft` against the decode worker's last step time /
//!   `slo.tpot` (semi-PD's SLO-aware dynamic partitioning).
//!
//! The first token is produced at the end of the prefill iteration and
//! becomes visible by the co-located rule: with async output processing
//! (vLLM ≥ 0.6) when the prefill replica's next iteration has been
//! scheduled and launched (its start + host time), or at once when it
//! idles (`Runtime::reveal_first_tokens`); the KV transfer starts at the
//! iteration's end either way.
//!
//! Simplifications: a prefill replica frees the request's KV at hand-off
//! (as if copied to a staging buffer); decode replicas recompute preempted
//! requests locally.

use super::Load;
use super::index::LazyTree;
use super::link::{Fabric, LinkSpec};
use super::predictive::predict_prefill_time;
use crate::catalog::{Catalog, DeviceSpec, Dtype, ModelSpec};
use crate::error::Result;
use crate::metrics::{Metrics, TransferRecord};
use crate::replica::handoff::Handoff;
use crate::replica::memory::{self, MemoryInputs, MemoryPlan};
use crate::replica::{Replica, ReplicaState, scheduler::Limits};
use crate::scenario::kinds::kinds;
use crate::scenario::validate::{
    apply_interconnect, check_parallel, key_error, positive, replica_count, resolve_calibration,
};
use crate::scenario::{PoolConfig, Scenario, SloConfig};
use crate::timing::collectives::Link;
use crate::timing::{AnalyticalModel, BatchShape, Calibration, IterationCost, ParallelConfig, TimeModel};
use crate::units::{Nanos, secs_to_nanos};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

kinds! {
    /// How a cluster's replicas divide the work (`cluster.mode`; module docs).
    pub enum ClusterMode {
        /// Every replica prefills and decodes.
        Colocated = "colocated",
        /// A prefill pool and a decode pool; KV moves over the modelled link.
        Disaggregated = "disaggregated",
        /// Each instance splits its compute between a prefill and a decode
        /// worker sharing its memory.
        SemiPd = "semi-pd",
    }
}

kinds! {
    /// How the decode replica of a prefilled request is chosen
    /// (`cluster.decode_router`, disaggregated mode).
    pub enum DecodeRouter {
        /// Fewest KV tokens held + arriving.
        LeastKv = "least-kv",
        /// Fewest requests running, waiting + arriving.
        LeastOutstanding = "least-outstanding",
    }
}

kinds! {
    /// Which link KV transfers use (`cluster.kv_link`, disaggregated mode).
    pub enum KvLink {
        /// The intra-node link when both replicas sit in one node, else the
        /// inter-node network.
        Auto = "auto",
        /// Always the intra-node (NVLink-class) link.
        IntraNode = "intra-node",
        /// Always the inter-node network.
        InterNode = "inter-node",
    }
}

/// `Runtime::pick_decode`'s measure of decode replica `k` in state `s`.
fn decode_key(
    router: DecodeRouter,
    inbound_tokens: &[u64],
    inbound_reqs: &[u32],
    k: usize,
    s: &ReplicaState,
) -> u64 {
    match router {
        DecodeRouter::LeastKv => s.kv().used() * s.block_size() as u64 + inbound_tokens[k],
        DecodeRouter::LeastOutstanding => s.outstanding() as u64 + inbound_reqs[k] as u64,
    }
}

/// What a pool's replicas do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Colocated,
    Prefill,
    Decode,
}

/// One pool of identical replicas, resolved.
#[derive(Debug, Clone)]
pub struct PoolPlan {
    pub role: Role,
    pub device: DeviceSpec,
    pub replicas: u32,
    pub tp: u32,
    pub pp: u32,
    pub devices_per_node: u32,
    pub memory: MemoryPlan,
    /// KV blocks of each replica (semi-PD: its share of the unified pool).
    pub kv_blocks: u64,
    pub calibration: Calibration,
    /// Semi-PD decode workers run on their instance's devices (not counted twice).
    pub shares_devices: bool,
}

impl PoolPlan {
    pub fn devices_per_replica(&self) -> u32 {
        self.tp * self.pp
    }
}

/// Devices of all pools.
pub(crate) fn total_devices(pools: &[PoolPlan]) -> u32 {
    pools
        .iter()
        .filter(|p| !p.shares_devices)
        .map(|p| p.replicas * p.devices_per_replica())
        .sum()
}

/// What the scenario's top level already resolved (pool 0 reuses it).
pub(crate) struct PoolInputs<'a> {
    pub model: &'a ModelSpec,
    pub device: &'a DeviceSpec,
    pub weight_dtype: Dtype,
    pub kv_dtype: Dtype,
    pub devices_per_node: u32,
    pub memory: MemoryPlan,
    pub calibration: Calibration,
    /// The scheduler's engine (whose host costs a pool's device applies).
    pub engine: &'a str,
    pub token_budget: u32,
    pub max_model_len: u32,
}

/// In disaggregated mode the top-level device, TP, PP and replica count
/// describe the prefill pool: returns the scenario with them filled in
/// (after checking the prefill pool's counts), or `None` in other modes.
pub(crate) fn top_level(s: &Scenario) -> Result<Option<Scenario>> {
    if s.cluster.mode != ClusterMode::Disaggregated {
        return Ok(None);
    }
    let p = &s.cluster.prefill;
    replica_count("cluster.prefill.replicas", p.replicas)?;
    positive("cluster.prefill.tp", p.tp)?;
    positive("cluster.prefill.pp", p.pp)?;
    let mut t = s.clone();
    t.cluster.replicas = p.replicas;
    t.cluster.tp = p.tp;
    t.cluster.pp = p.pp;
    if let Some(d) = &p.device {
        t.hardware.device = d.clone();
    }
    Ok(Some(t))
}

/// Resolves and checks the pools of a scenario (and the cluster keys that
/// only matter with pools).
pub(crate) fn plan_pools(s: &Scenario, catalog: &Catalog, base: &PoolInputs) -> Result<Vec<PoolPlan>> {
    let c = &s.cluster;
    if !(c.router_staleness.is_finite() && c.router_staleness >= 0.0) {
        return Err(key_error(
            "cluster.router_staleness",
            format!("must be ≥ 0 seconds (0 = exact), found {}", c.router_staleness),
        ));
    }
    let first = PoolPlan {
        role: Role::Colocated,
        device: base.device.clone(),
        replicas: c.replicas,
        tp: c.tp,
        pp: c.pp,
        devices_per_node: base.devices_per_node,
        memory: base.memory,
        kv_blocks: base.memory.num_blocks,
        calibration: base.calibration,
        shares_devices: false,
    };
    match c.mode {
        ClusterMode::Disaggregated => {
            let decode = plan_pool(s, catalog, base, "cluster.decode", &c.decode)?;
            Ok(vec![
                PoolPlan {
                    role: Role::Prefill,
                    ..first
                },
                PoolPlan {
                    role: Role::Decode,
                    ..decode
                },
            ])
        }
        ClusterMode::SemiPd => {
            let sp = &c.semi_pd;
            for (key, v) in [
                ("cluster.semi_pd.prefill_fraction", sp.prefill_fraction),
                ("cluster.semi_pd.min_fraction", sp.min_fraction),
                ("cluster.semi_pd.max_fraction", sp.max_fraction),
            ] {
                if !(v > 0.0 && v < 1.0) {
                    return Err(key_error(key, format!("must be in (0, 1), found {v}")));
                }
            }
            if sp.min_fraction > sp.max_fraction {
                return Err(key_error(
                    "cluster.semi_pd.min_fraction",
                    format!("{} exceeds max_fraction {}", sp.min_fraction, sp.max_fraction),
                ));
            }
            if !(sp.adapt_interval.is_finite() && sp.adapt_interval > 0.0) {
                return Err(key_error(
                    "cluster.semi_pd.adapt_interval",
                    format!("must be > 0 seconds, found {}", sp.adapt_interval),
                ));
            }
            if !(sp.adapt_step.is_finite() && sp.adapt_step > 0.0 && sp.adapt_step < 1.0) {
                return Err(key_error(
                    "cluster.semi_pd.adapt_step",
                    format!("must be in (0, 1), found {}", sp.adapt_step),
                ));
            }
            let total = base.memory.num_blocks;
            let bs = s.scheduler.block_size as u64;
            let want = (base.max_model_len as u64 + base.token_budget as u64).div_ceil(bs);
            let prefill_blocks = want.min(total / 2);
            if prefill_blocks == 0 {
                return Err(key_error(
                    "cluster.mode",
                    format!("semi-pd needs at least 2 KV blocks per instance, the plan has {total}"),
                ));
            }
            Ok(vec![
                PoolPlan {
                    role: Role::Prefill,
                    kv_blocks: prefill_blocks,
                    ..first.clone()
                },
                PoolPlan {
                    role: Role::Decode,
                    kv_blocks: total - prefill_blocks,
                    shares_devices: true,
                    ..first
                },
            ])
        }
        ClusterMode::Colocated => Ok(vec![first]),
    }
}

/// Resolves one `[cluster.<pool>]` table.
fn plan_pool(
    s: &Scenario,
    catalog: &Catalog,
    base: &PoolInputs,
    key: &str,
    p: &PoolConfig,
) -> Result<PoolPlan> {
    replica_count(&format!("{key}.replicas"), p.replicas)?;
    positive(&format!("{key}.tp"), p.tp)?;
    positive(&format!("{key}.pp"), p.pp)?;
    let device = match &p.device {
        None => base.device.clone(),
        Some(name) => {
            let mut d = catalog
                .device(name)
                .map_err(|e| key_error(&format!("{key}.device"), e.to_string()))?
                .clone();
            apply_interconnect(&mut d, &s.hardware.interconnect)?;
            d
        }
    };
    check_parallel(key, base.model, p.tp, p.pp)?;
    let sc = &s.scheduler;
    let memory = memory::plan(&MemoryInputs {
        model: base.model,
        device: &device,
        weight_dtype: base.weight_dtype,
        kv_dtype: base.kv_dtype,
        tp: p.tp,
        pp: p.pp,
        block_size: sc.block_size,
        gpu_memory_utilization: sc.gpu_memory_utilization,
        max_batch_tokens: base.token_budget,
        max_batch_seqs: sc
            .max_num_seqs
            .expect("the plan's scenario has its engine defaults"),
        activation_reserve: sc.activation_reserve_gib.map(|g| g * 1024.0 * 1024.0 * 1024.0),
    })?;
    let calibration = resolve_calibration(&device, base.engine, &s.hardware.calibration)?;
    let devices_per_node = s.hardware.devices_per_node.unwrap_or(device.devices_per_node);
    AnalyticalModel::new(
        base.model,
        &device,
        base.weight_dtype,
        base.kv_dtype,
        ParallelConfig {
            tp: p.tp,
            pp: p.pp,
            devices_per_node,
        },
        calibration,
    )?;
    Ok(PoolPlan {
        role: Role::Decode,
        device,
        replicas: p.replicas,
        tp: p.tp,
        pp: p.pp,
        devices_per_node,
        memory,
        kv_blocks: memory.num_blocks,
        calibration,
        shares_devices: false,
    })
}

/// A time model for one SM partition of a device (semi-PD): the worker
/// with a fraction `share` of the SMs gets `share` of the peak FLOP/s *and*
/// `share` of the HBM bandwidth, so the GPU part of every iteration takes
/// `1/share` as long; the host part is unchanged.
///
/// Why the bandwidth follows the SM share: semi-PD (Hong et al., "semi-PD",
/// 2025) splits the SMs between its two concurrently running workers (MPS
/// thread percentages, §4 — an SM partition, not a memory partition), and
/// both read the same HBM. Under load both workers run at once, and HBM
/// bandwidth goes to the SMs issuing loads about evenly, so a memory-bound
/// step (decode) of the worker with `share` of the SMs gets `share` of the
/// bandwidth and the two workers' shares sum to 1 — the device never
/// delivers more than its peak bandwidth in total. (A worker whose partner
/// is idle could draw more; the model takes the loaded case.)
pub(crate) struct Partitioned<'a> {
    pub inner: &'a dyn TimeModel,
    pub share: f64,
}

impl TimeModel for Partitioned<'_> {
    fn iteration(&self, batch: &BatchShape) -> IterationCost {
        let mut c = self.inner.iteration(batch);
        let gpu = c.duration.saturating_sub(c.host);
        c.duration = c.host + (gpu as f64 / self.share).round() as Nanos;
        c
    }
    fn stage_times(&self, batch: &BatchShape, out: &mut Vec<f64>) {
        self.inner.stage_times(batch, out);
        out.iter_mut().for_each(|t| *t /= self.share);
    }
    fn peak_rates(&self) -> (f64, f64) {
        self.inner.peak_rates()
    }
}

/// Where a replica sits: which device space (one per device type) and
/// node, and how many devices it has.
#[derive(Debug, Clone, Copy)]
struct Place {
    space: usize,
    /// Node index, or `u32::MAX` when the replica spans nodes.
    node: u32,
    devices: u32,
    pool: usize,
}

/// A hand-off in flight on the fabric.
#[derive(Debug, Clone)]
struct InFlight {
    h: Handoff,
    rec: TransferRecord,
}

/// The engine's state for disaggregated and semi-PD runs.
pub(crate) struct Runtime {
    semi_pd: bool,
    prefill_first: usize,
    decode_first: usize,
    decode_count: usize,
    pools: Vec<PoolPlan>,
    places: Vec<Place>,
    kv_link: KvLink,
    decode_router: DecodeRouter,
    kv_bytes_per_token: f64,
    max_num_seqs: u32,
    fabric: Fabric,
    /// Per decode replica: tokens and requests chosen for it, not yet admitted.
    inbound_tokens: Vec<u64>,
    inbound_reqs: Vec<u32>,
    /// The decode replicas by `pick_decode`'s measure: a replica is marked
    /// when its state (the engine: [`Runtime::decode_changed`]) or its
    /// inbound counts change, and re-read at the next choice — O(log
    /// decode replicas) per hand-off instead of a scan.
    decode_tree: LazyTree,
    /// Per decode replica: arrived hand-offs waiting for admission.
    landed: Vec<VecDeque<InFlight>>,
    heap: BinaryHeap<Reverse<(Nanos, u64, u32)>>,
    slab: Vec<Option<InFlight>>,
    free: Vec<u32>,
    seq: u64,
    buf: Vec<Handoff>,
    /// Per prefill replica: hand-offs of its last iteration whose first
    /// token is not visible yet (slab slot, request id, decode replica).
    awaiting: Vec<Vec<(u32, u64, u32)>>,
    /// KV bytes put on links / taken off them.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    // semi-PD
    fraction: Vec<f64>,
    adaptive: bool,
    interval: Nanos,
    step: f64,
    bounds: (f64, f64),
    next_adapt: Nanos,
    /// Duration of each decode worker's last iteration (0 when idle).
    last_decode: Vec<Nanos>,
    slo: SloConfig,
    limits: Limits,
}

impl Runtime {
    /// `None` for colocated plans.
    pub fn new(plan: &crate::scenario::validate::Plan) -> Option<Runtime> {
        let pools = &plan.pools;
        if pools.len() < 2 {
            return None;
        }
        let c = &plan.scenario.cluster;
        let (np, nd) = (pools[0].replicas as usize, pools[1].replicas as usize);
        let mut places = Vec::with_capacity(np + nd);
        let mut spaces: Vec<(String, u32)> = Vec::new();
        for (k, p) in pools.iter().enumerate() {
            let s = match spaces.iter().position(|s| s.0 == p.device.name) {
                Some(s) => s,
                None => {
                    spaces.push((p.device.name.clone(), 0));
                    spaces.len() - 1
                }
            };
            for _ in 0..p.replicas {
                let d = p.devices_per_replica();
                let start = spaces[s].1;
                let end = start + d - 1;
                let dpn = p.devices_per_node.max(1);
                let node = if start / dpn == end / dpn {
                    start / dpn
                } else {
                    u32::MAX
                };
                if !p.shares_devices {
                    spaces[s].1 += d;
                }
                places.push(Place {
                    space: s,
                    node,
                    devices: d,
                    pool: k,
                });
            }
        }
        let semi_pd = c.mode == ClusterMode::SemiPd;
        let sp = &c.semi_pd;
        Some(Runtime {
            semi_pd,
            prefill_first: 0,
            decode_first: np,
            decode_count: nd,
            pools: pools.clone(),
            places,
            kv_link: c.kv_link,
            decode_router: c.decode_router,
            kv_bytes_per_token: plan.model.kv_bytes_per_token(plan.kv_dtype),
            max_num_seqs: plan.limits.max_num_seqs,
            fabric: Fabric::new(np + nd),
            inbound_tokens: vec![0; nd],
            inbound_reqs: vec![0; nd],
            decode_tree: LazyTree::new(nd),
            landed: (0..nd).map(|_| VecDeque::new()).collect(),
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            seq: 0,
            buf: Vec::new(),
            awaiting: vec![Vec::new(); np],
            bytes_sent: 0,
            bytes_received: 0,
            fraction: vec![sp.prefill_fraction; if semi_pd { np } else { 0 }],
            adaptive: semi_pd && sp.adaptive,
            interval: secs_to_nanos(sp.adapt_interval).max(1),
            step: sp.adapt_step,
            bounds: (sp.min_fraction, sp.max_fraction),
            next_adapt: secs_to_nanos(sp.adapt_interval).max(1),
            last_decode: vec![0; nd],
            slo: plan.scenario.slo.clone(),
            limits: plan.limits,
        })
    }

    /// The compute share of replica `i` when it is a semi-PD worker.
    pub fn share(&self, i: usize) -> Option<f64> {
        if !self.semi_pd {
            return None;
        }
        Some(if i < self.decode_first {
            self.fraction[i - self.prefill_first]
        } else {
            1.0 - self.fraction[i - self.decode_first]
        })
    }

    /// Notes the duration of an iteration a decode worker started.
    pub fn note_iteration(&mut self, i: usize, duration: Nanos) {
        if i >= self.decode_first {
            self.last_decode[i - self.decode_first] = duration;
        }
    }

    /// The link a transfer from `from` to `to` uses.
    pub fn link(&self, from: usize, to: usize) -> LinkSpec {
        let (a, b) = (self.places[from], self.places[to]);
        let (pa, pb) = (&self.pools[a.pool], &self.pools[b.pool]);
        let intra = match self.kv_link {
            KvLink::IntraNode => true,
            KvLink::InterNode => false,
            KvLink::Auto => a.space == b.space && a.node != u32::MAX && a.node == b.node,
        };
        // Each of the `streams` ranks sends its KV shard to one peer device:
        // a device pair's link (on a fully connected mesh, one link of it).
        let (la, lb) = if intra {
            (
                Link::intra_node_group(&pa.device, &pa.calibration, 2),
                Link::intra_node_group(&pb.device, &pb.calibration, 2),
            )
        } else {
            (
                Link::inter_node(&pa.device, &pa.calibration),
                Link::inter_node(&pb.device, &pb.calibration),
            )
        };
        let streams = a.devices.min(b.devices) as f64;
        LinkSpec {
            bandwidth: streams * la.bandwidth.min(lb.bandwidth),
            latency: secs_to_nanos(la.latency.max(lb.latency)),
        }
    }

    /// Whether the decode pool could ever hold a request of `full_tokens` KV entries.
    pub fn decode_can_hold(&self, replicas: &[Replica], full_tokens: u32) -> bool {
        replicas[self.decode_first].state.can_ever_hold(full_tokens)
    }

    /// Replica `i`'s state changed (the engine calls this after every
    /// change): a decode replica's measure is re-read at the next choice.
    #[inline]
    pub fn decode_changed(&mut self, i: usize) {
        if !self.semi_pd && i >= self.decode_first {
            self.decode_tree.mark(i - self.decode_first);
        }
    }

    /// The decode replica for a hand-off from prefill replica `from`: the
    /// least by `decode_key`, the lowest index on ties.
    fn pick_decode(&mut self, from: usize, replicas: &[Replica]) -> usize {
        if self.semi_pd {
            return from - self.prefill_first;
        }
        let (router, first) = (self.decode_router, self.decode_first);
        let (tokens, reqs) = (&self.inbound_tokens, &self.inbound_reqs);
        let key = |k: usize| decode_key(router, tokens, reqs, k, &replicas[first + k].state);
        let best = self.decode_tree.argmin(key);
        debug_assert_eq!(
            best,
            super::argmin_by(self.decode_count, key),
            "a decode replica's measure changed unmarked"
        );
        best
    }

    /// After an iteration of prefill replica `i` ended at `now`: hands its
    /// completed prefills off (choosing decode replicas, scheduling transfers).
    pub fn after_prefill(&mut self, i: usize, now: Nanos, replicas: &mut [Replica]) {
        let mut buf = std::mem::take(&mut self.buf);
        replicas[i].state.take_handoffs(now, &mut buf);
        for h in buf.drain(..) {
            let k = self.pick_decode(i, replicas);
            let to = self.decode_first + k;
            let bytes = if self.semi_pd {
                0
            } else {
                (h.kv_tokens() as f64 * self.kv_bytes_per_token).round() as u64
            };
            let link = self.link(i, to);
            let sch = self.fabric.schedule(i, to, now, bytes as f64, link);
            self.bytes_sent += bytes;
            self.inbound_tokens[k] += h.kv_tokens() as u64;
            self.inbound_reqs[k] += 1;
            self.decode_tree.mark(k);
            let id = h.id();
            let pending = h.first_token().is_none();
            let f = InFlight {
                h,
                rec: TransferRecord {
                    id,
                    from: i as u32,
                    to: to as u32,
                    bytes,
                    ready: now,
                    start: sch.start,
                    arrival: sch.arrival,
                    admitted: 0,
                },
            };
            let slot = match self.free.pop() {
                Some(s) => {
                    self.slab[s as usize] = Some(f);
                    s
                }
                None => {
                    self.slab.push(Some(f));
                    (self.slab.len() - 1) as u32
                }
            };
            if pending {
                self.awaiting[i - self.prefill_first].push((slot, id, to as u32));
            }
            self.heap.push(Reverse((sch.arrival, self.seq, slot)));
            self.seq += 1;
        }
        self.buf = buf;
    }

    /// After prefill replica `i` ended an iteration and was started again
    /// (or went idle) at the same instant: the first tokens it handed off
    /// become visible at `at` (see the module docs), wherever the hand-off
    /// is now — on the link, landed, or (semi-PD, no bytes) admitted.
    pub fn reveal_first_tokens(
        &mut self,
        i: usize,
        at: Nanos,
        replicas: &mut [Replica],
        metrics: &mut Metrics,
    ) {
        let Some(list) = self.awaiting.get_mut(i.wrapping_sub(self.prefill_first)) else {
            return;
        };
        for (slot, id, to) in list.drain(..) {
            if let Some(f) = self.slab[slot as usize].as_mut().filter(|f| f.rec.id == id) {
                f.h.set_first_token(at, metrics);
                continue;
            }
            let k = to as usize - self.decode_first;
            if let Some(f) = self.landed[k].iter_mut().find(|f| f.rec.id == id) {
                f.h.set_first_token(at, metrics);
                continue;
            }
            replicas[to as usize]
                .state
                .set_handoff_first_token(id, at, metrics);
        }
    }

    /// Time of the next transfer arrival.
    pub fn next_event(&self) -> Option<Nanos> {
        self.heap.peek().map(|r| r.0.0)
    }

    /// Lands every transfer arriving at `now` (in request order) and admits
    /// what fits; `touched` gets each decode replica that admitted something.
    pub fn land(
        &mut self,
        now: Nanos,
        replicas: &mut [Replica],
        metrics: &mut Metrics,
        touched: &mut dyn FnMut(u32),
    ) {
        while let Some(&Reverse((t, _, slot))) = self.heap.peek() {
            if t != now {
                break;
            }
            self.heap.pop();
            let f = self.slab[slot as usize]
                .take()
                .expect("in-flight slot holds a transfer");
            self.free.push(slot);
            self.bytes_received += f.rec.bytes;
            let to = f.rec.to as usize;
            self.landed[to - self.decode_first].push_back(f);
            if self.admit(to, now, replicas, metrics) {
                touched(to as u32);
            }
        }
    }

    /// Admits landed hand-offs into decode replica `to` while they fit
    /// (FIFO); true if any was admitted.
    pub fn admit(&mut self, to: usize, now: Nanos, replicas: &mut [Replica], metrics: &mut Metrics) -> bool {
        if to < self.decode_first {
            return false;
        }
        let k = to - self.decode_first;
        let st = &mut replicas[to].state;
        let mut any = false;
        while let Some(f) = self.landed[k].front() {
            if !st.can_accept_handoff(&f.h) || st.num_running() as u32 >= self.max_num_seqs {
                break;
            }
            let mut f = self.landed[k].pop_front().expect("front exists");
            self.inbound_tokens[k] -= f.h.kv_tokens() as u64;
            st.accept_handoff(f.h, now);
            self.inbound_reqs[k] -= 1;
            self.decode_tree.mark(k);
            f.rec.admitted = now;
            metrics.record_transfer(f.rec);
            any = true;
        }
        any
    }

    /// Whether hand-offs are still in flight or waiting for admission.
    pub fn pending(&self) -> bool {
        !self.heap.is_empty() || self.landed.iter().any(|q| !q.is_empty())
    }

    /// Semi-PD's SLO-aware partition adaptation, run at event times.
    pub fn adapt(&mut self, now: Nanos, replicas: &[Replica], prefill_model: &dyn TimeModel) {
        if !self.adaptive || now < self.next_adapt {
            return;
        }
        while self.next_adapt <= now {
            self.next_adapt += self.interval;
        }
        let budget = self.limits.token_budget;
        for k in 0..self.fraction.len() {
            let f = self.fraction[k];
            let load = Load::of(&replicas[self.prefill_first + k].state);
            let ttft = predict_prefill_time(&load, 0, prefill_model, budget) / f;
            let dec = &replicas[self.decode_first + k].state;
            let tpot = if dec.num_decoding() > 0 {
                self.last_decode[k] as f64 * 1e-9
            } else {
                0.0
            };
            let pp = if self.slo.ttft > 0.0 {
                ttft / self.slo.ttft
            } else {
                0.0
            };
            let pd = if self.slo.tpot > 0.0 {
                tpot / self.slo.tpot
            } else {
                0.0
            };
            let nf = if pp > pd + 0.1 {
                f + self.step
            } else if pd > pp + 0.1 {
                f - self.step
            } else {
                f
            };
            self.fraction[k] = nf.clamp(self.bounds.0, self.bounds.1);
        }
    }
}
