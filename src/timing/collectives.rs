//! Cost models of the communication a replica does inside one iteration.
//!
//! - **All-reduce**: bandwidth term of a ring (Patarasuk & Yuan 2009,
//!   "Bandwidth optimal all-reduce algorithms for clusters of
//!   workstations", JPDC 69(2)): a reduce-scatter then an all-gather, each
//!   device sending and receiving `2·(n−1)/n · S` bytes; latency term of
//!   `⌈log2 n⌉` hops (tree / one-shot protocols for the small messages where
//!   latency matters, see [`ring_all_reduce`]), so
//!   `t = 2·(n−1)/n · S / B + ⌈log2 n⌉ · α` with `B` the per-device link
//!   bandwidth (one direction) and `α` the per-hop latency.
//! - **Reduce-scatter / all-gather** (ZeRO's gradient and parameter
//!   collectives, [`reduce_scatter`] / [`all_gather`]): each is one half of
//!   the ring all-reduce's bandwidth term, `(n−1)/n · S / B`, plus
//!   `⌈log2 n⌉ · α` (recursive halving / doubling take `log2 n` steps,
//!   Thakur, Rabenseifner & Gropp 2005, IJHPCA 19(1)), so the pair moves
//!   an all-reduce's bytes and pays its latency term twice.
//! - **Gather to one rank** (the TP logits gather before sampling): the root
//!   receives `(n−1)/n · S` bytes; `t = (n−1)/n · S / B + α`.
//! - **Point-to-point send/recv** (pipeline-stage hand-off): `t = S / B + α`.
//!
//! `B` is the datasheet link bandwidth times a calibrated link efficiency
//! (see [`Link::intra_node_group`] / [`Link::inter_node`]); on a fully
//! connected mesh a group of `n` devices reaches only `n − 1` links each
//! ([`DeviceSpec::intra_node_group_bandwidth`]).

use super::calibration::Calibration;
use crate::catalog::DeviceSpec;

/// One class of link as collectives see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Effective bandwidth per device per direction, bytes/s.
    pub bandwidth: f64,
    /// Per-step latency, seconds.
    pub latency: f64,
}

impl Link {
    /// The intra-node fabric (NVLink/xGMI/PCIe) at its calibrated
    /// efficiency, as a collective over all of a node's devices sees it.
    pub fn intra_node(device: &DeviceSpec, cal: &Calibration) -> Link {
        Link::intra_node_group(device, cal, device.devices_per_node)
    }

    /// The intra-node fabric as a group of `n` devices sees it (`n = 2`: a
    /// point-to-point transfer between two devices).
    pub fn intra_node_group(device: &DeviceSpec, cal: &Calibration, n: u32) -> Link {
        Link {
            bandwidth: device.intra_node_group_bandwidth(n) * cal.intra_node_link_efficiency,
            latency: device.intra_node_latency,
        }
    }

    /// The inter-node network (per-device NIC) at its calibrated efficiency.
    pub fn inter_node(device: &DeviceSpec, cal: &Calibration) -> Link {
        Link {
            bandwidth: device.inter_node_bandwidth * cal.inter_node_link_efficiency,
            latency: device.inter_node_latency,
        }
    }
}

/// All-reduce of `bytes` over `n` devices; 0 for `n ≤ 1`.
///
/// Bandwidth term of a ring (each device sends and receives
/// `2(n−1)/n · bytes`, Patarasuk & Yuan 2009); latency term of
/// `⌈log2 n⌉` hops, because for the small messages where latency matters
/// NCCL switches to tree/LL protocols and vLLM to its one-shot custom
/// all-reduce rather than walking a `2(n−1)`-step ring. (Measured NCCL
/// small-message all-reduce on DGX H100 — 8, 10, 14 µs on 2, 4, 8 GPUs,
/// APEX+ profiles — grows far slower than `2(n−1)`.)
#[inline]
pub fn ring_all_reduce(bytes: f64, n: u32, link: Link) -> f64 {
    let (per_byte, fixed) = ring_all_reduce_coefficients(n, link);
    per_byte * bytes + fixed
}

/// Linear form of [`ring_all_reduce`] in the message size:
/// `(seconds per byte, fixed seconds)`, so callers can precompute it.
pub fn ring_all_reduce_coefficients(n: u32, link: Link) -> (f64, f64) {
    if n <= 1 {
        return (0.0, 0.0);
    }
    let steps = 2.0 * (n - 1) as f64;
    let hops = (n as f64).log2().ceil();
    (steps / n as f64 / link.bandwidth, hops * link.latency)
}

/// Reduce-scatter of a `bytes`-sized tensor over `n` devices (each ends
/// with the reduced `bytes / n` shard); 0 for `n ≤ 1`.
///
/// `(n−1)/n · bytes / B + ⌈log2 n⌉ · α`: half a [`ring_all_reduce`]'s
/// bandwidth term, and its latency term.
#[inline]
pub fn reduce_scatter(bytes: f64, n: u32, link: Link) -> f64 {
    half_all_reduce(bytes, n, link)
}

/// All-gather of a `bytes`-sized tensor held as `n` shards of `bytes / n`
/// (each device ends with all of it); 0 for `n ≤ 1`. Same cost as
/// [`reduce_scatter`].
#[inline]
pub fn all_gather(bytes: f64, n: u32, link: Link) -> f64 {
    half_all_reduce(bytes, n, link)
}

fn half_all_reduce(bytes: f64, n: u32, link: Link) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let hops = (n as f64).log2().ceil();
    (n - 1) as f64 / n as f64 * bytes / link.bandwidth + hops * link.latency
}

/// Gather of an `bytes`-sized tensor (split evenly over `n` ranks) to one rank; 0 for `n ≤ 1`.
#[inline]
pub fn gather(bytes: f64, n: u32, link: Link) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    (n - 1) as f64 / n as f64 * bytes / link.bandwidth + link.latency
}

/// Point-to-point transfer of `bytes`.
#[inline]
pub fn send_recv(bytes: f64, link: Link) -> f64 {
    bytes / link.bandwidth + link.latency
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: Link = Link {
        bandwidth: 100e9,
        latency: 3e-6,
    };

    #[test]
    fn all_reduce_is_ring_bandwidth_plus_log2_hops() {
        // 8 devices, 64 MB: ring bandwidth term 2·7/8·64e6/100e9, log2(8) = 3 latency hops.
        let t = ring_all_reduce(64e6, 8, LINK);
        assert!((t - (1.75 * 64e6 / 100e9 + 3.0 * 3e-6)).abs() < 1e-15);
        // Two devices exchange half the message each way: S/B + one hop.
        assert!((ring_all_reduce(1e6, 2, LINK) - (1e6 / 100e9 + 3e-6)).abs() < 1e-15);
        assert_eq!(ring_all_reduce(1e9, 1, LINK), 0.0);
        // Large-n limit: bandwidth term tends to 2·S/B.
        let big = ring_all_reduce(1e9, 1024, Link { latency: 0.0, ..LINK });
        assert!((big / (2.0 * 1e9 / 100e9) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn coefficients_reproduce_the_formula() {
        for n in [1, 2, 4, 8, 16] {
            let (per_byte, fixed) = ring_all_reduce_coefficients(n, LINK);
            for bytes in [0.0, 8192.0, 1e8] {
                let direct = ring_all_reduce(bytes, n, LINK);
                assert!((per_byte * bytes + fixed - direct).abs() <= 1e-12 * direct.max(1e-9));
            }
        }
    }

    #[test]
    fn reduce_scatter_and_all_gather_are_each_half_an_all_reduces_bandwidth() {
        // 4 devices, 8 MB: 3/4 · 8e6 / 100e9 = 60 µs, plus log2(4) = 2 hops of 3 µs.
        assert!((reduce_scatter(8e6, 4, LINK) - (60e-6 + 6e-6)).abs() < 1e-15);
        assert!((all_gather(8e6, 4, LINK) - (60e-6 + 6e-6)).abs() < 1e-15);
        // 5 devices: ⌈log2 5⌉ = 3 hops; 4/5 · 1e6 / 100e9 = 8 µs.
        assert!((all_gather(1e6, 5, LINK) - (8e-6 + 9e-6)).abs() < 1e-15);
        // Without latency the pair costs exactly one all-reduce.
        let free = Link { latency: 0.0, ..LINK };
        let pair = reduce_scatter(8e6, 4, free) + all_gather(8e6, 4, free);
        assert!((pair - ring_all_reduce(8e6, 4, free)).abs() < 1e-15);
        assert_eq!(reduce_scatter(8e6, 1, LINK), 0.0);
        assert_eq!(all_gather(8e6, 0, LINK), 0.0);
    }

    #[test]
    fn gather_and_send_recv() {
        assert!((gather(4e6, 4, LINK) - (0.75 * 4e6 / 100e9 + 3e-6)).abs() < 1e-15);
        assert_eq!(gather(4e6, 1, LINK), 0.0);
        assert!((send_recv(1e6, LINK) - (1e-5 + 3e-6)).abs() < 1e-15);
    }
}
