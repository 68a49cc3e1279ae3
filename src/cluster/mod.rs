//! Cluster level: the router that sends each arriving request to one
//! replica. A router sees only what a real one could: each replica's queue
//! and KV occupancy at the moment of arrival, never the future.

use crate::replica::{Replica, ReplicaState};
use crate::workload::RequestSpec;

/// Scenario names of the routers (`cluster.router`).
pub const ROUTER_NAMES: &[&str] = &["round-robin", "least-outstanding", "least-kv"];

/// Picks the replica index for a request.
pub trait Router: Send {
    fn route(&mut self, req: &RequestSpec, replicas: &[Replica]) -> usize;
}

/// Builds the router called `name` (validated beforehand).
pub fn build(name: &str) -> Box<dyn Router> {
    match name {
        "round-robin" => Box::new(RoundRobin { next: 0 }),
        "least-outstanding" => Box::new(LeastBy(|r: &ReplicaState| r.outstanding() as u64)),
        "least-kv" => Box::new(LeastBy(|r: &ReplicaState| r.kv_load_tokens())),
        other => unreachable!("router `{other}` passed validation"),
    }
}

/// Replicas in turn, regardless of load.
struct RoundRobin {
    next: usize,
}

impl Router for RoundRobin {
    fn route(&mut self, _req: &RequestSpec, replicas: &[Replica]) -> usize {
        let i = self.next % replicas.len();
        self.next = (i + 1) % replicas.len();
        i
    }
}

/// Join-the-shortest-queue on a load measure; ties go to the lowest index
/// (deterministic). `least-outstanding` measures waiting + running requests;
/// `least-kv` measures KV tokens held plus prompt tokens waiting.
struct LeastBy(fn(&ReplicaState) -> u64);

impl Router for LeastBy {
    fn route(&mut self, _req: &RequestSpec, replicas: &[Replica]) -> usize {
        let mut best = 0;
        let mut best_load = u64::MAX;
        for (i, r) in replicas.iter().enumerate() {
            let load = (self.0)(&r.state);
            if load < best_load {
                best = i;
                best_load = load;
            }
        }
        best
    }
}
