//! The cost of swapping KV blocks between device and host memory
//! (preemption by swap, `scheduler.preemption = "swap"`).
//!
//! # Model
//!
//! Every device of the replica moves its own shard of each block over its
//! own host link (PCIe or C2C, `host_link_bandwidth` in the catalog), all
//! devices in parallel, so moving `n` blocks takes
//!
//! ```text
//! t = n · block_bytes / host_bw  +  calls · t_call
//! ```
//!
//! where `block_bytes` is one block's bytes on one device (all its layers)
//! and `t_call` the fixed cost of one copy call (driver launch and DMA set-up,
//! a few µs; `scheduler.swap_call_overhead`). vLLM's `swap_blocks` issues one
//! `cudaMemcpyAsync` per block, per layer, for keys and values separately
//! (`csrc/cache_kernels.cu`), so `calls = 2 · layers · n`; each copy is only
//! `block_bytes / (2·layers)` bytes (e.g. 32 KiB for Llama-3-8B), far below
//! what saturates PCIe, which is why vLLM prefers recompute.
//!
//! **FastSwitch** (Shen et al. 2024, "FastSwitch: Optimizing Context
//! Switching Efficiency in Fairness-aware LLM Serving") reduces this cost
//! three ways, all modelled when `scheduler.fastswitch = true`:
//! 1. block groups: KV is allocated in contiguous groups of
//!    `fastswitch_group_blocks` blocks, one copy per group per layer and K/V:
//!    `calls = 2 · layers · ⌈n / group⌉`;
//! 2. asynchronous swapping on a separate stream, overlapped with compute:
//!    the iteration takes `max(compute, swap)` instead of the sum;
//! 3. KV reuse: the host copy of a swapped-in request is kept, so swapping it
//!    out again only moves the blocks written since (host memory stays held).

use crate::scenario::kinds::kinds;

kinds! {
    /// What happens to a running request when KV blocks run out
    /// (`scheduler.preemption`).
    pub enum Preemption {
        /// Free its KV; it is prefilled again (prompt and generated tokens) later.
        Recompute = "recompute",
        /// Move its KV to host memory over the host link and bring it back
        /// later (the cost model above).
        Swap = "swap",
    }
}

/// Swap cost parameters of one replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwapModel {
    /// One block's bytes on one device (all its layers).
    pub block_bytes: f64,
    /// Host link bandwidth per device, bytes/s per direction.
    pub host_bandwidth: f64,
    /// Decoder layers on the most loaded device (copy calls are per layer).
    pub layers: u32,
    /// Fixed cost of one copy call, seconds.
    pub call_overhead: f64,
    /// Blocks per copy call (1 = vLLM; a FastSwitch block group otherwise).
    pub group_blocks: u32,
    /// Swaps overlap compute (FastSwitch) instead of adding to the iteration.
    pub overlap: bool,
    /// Host copies are kept after swap-in and reused (FastSwitch).
    pub reuse: bool,
    /// Host blocks available for swapped KV (per device).
    pub host_blocks: u64,
}

impl SwapModel {
    /// Seconds to move `blocks` blocks one way.
    pub fn time(&self, blocks: u64) -> f64 {
        if blocks == 0 {
            return 0.0;
        }
        let calls = 2.0 * self.layers as f64 * blocks.div_ceil(self.group_blocks.max(1) as u64) as f64;
        blocks as f64 * self.block_bytes / self.host_bandwidth + calls * self.call_overhead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(group: u32) -> SwapModel {
        SwapModel {
            block_bytes: 2.0 * 32.0 * 32768.0, // Llama-3-8B: 32 layers × (K+V) × 32 KiB
            host_bandwidth: 64e9,
            layers: 32,
            call_overhead: 4e-6,
            group_blocks: group,
            overlap: false,
            reuse: false,
            host_blocks: 1000,
        }
    }

    #[test]
    fn per_block_copies_are_call_bound_and_groups_fix_that() {
        let v = model(1);
        let bytes_time = 100.0 * v.block_bytes / v.host_bandwidth;
        // 100 blocks: 6,400 calls × 4 µs = 25.6 ms, against 6.6 ms of bytes.
        assert!((v.time(100) - (bytes_time + 6400.0 * 4e-6)).abs() < 1e-12);
        let f = model(32);
        assert!((f.time(100) - (bytes_time + 2.0 * 32.0 * 4.0 * 4e-6)).abs() < 1e-12);
        assert!(f.time(100) < 0.3 * v.time(100));
        assert_eq!(v.time(0), 0.0);
    }
}
