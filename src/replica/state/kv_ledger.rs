//! Where every KV block of a replica is: the device pool, the prefix cache
//! that holds some of the pool's blocks, and the host swap space.
//!
//! The ledger knows blocks, not requests: it turns token counts into blocks
//! for the replica's memory mode, makes room by evicting unreferenced cached
//! prefixes (LRU) before anyone has to be preempted, and moves a request's
//! prefix units in and out of the cache. Which request owns which blocks is
//! kept by the requests themselves (see the `state` module docs); the
//! replica checks that the two agree.
//!
//! Invariants (checked by [`KvLedger::check`]): the pool never hands out
//! more blocks than it has; the cache's own structure is consistent and its
//! reference count equals the references running requests hold; host swap
//! space in use stays within its capacity.

use super::super::memory::KvPool;
use super::super::prefix_cache::PrefixCache;
use super::super::swap::SwapModel;
use super::KvMode;
use crate::workload::Prefix;

/// A request's prefix cut into cache units: how many whole units its
/// prompt holds, and one unit's size in tokens and in blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PrefixShape {
    pub units: u32,
    pub unit_tokens: u32,
    pub unit_blocks: u32,
}

#[derive(Debug)]
pub(crate) struct KvLedger {
    pool: KvPool,
    mode: KvMode,
    block_size: u32,
    cache: Option<PrefixCache>,
    swap: Option<SwapModel>,
    host_used: u64,
}

impl KvLedger {
    pub fn new(
        blocks: u64,
        watermark: f64,
        block_size: u32,
        mode: KvMode,
        prefix_caching: bool,
        swap: Option<SwapModel>,
    ) -> KvLedger {
        KvLedger {
            pool: KvPool::new(blocks, watermark),
            mode,
            block_size,
            cache: prefix_caching.then(PrefixCache::new),
            swap,
            host_used: 0,
        }
    }

    pub fn pool(&self) -> &KvPool {
        &self.pool
    }

    pub fn paged(&self) -> bool {
        self.mode == KvMode::Paged
    }

    pub fn cache(&self) -> Option<&PrefixCache> {
        self.cache.as_ref()
    }

    /// Blocks held by the prefix cache.
    pub fn cache_blocks(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.blocks())
    }

    /// Cached blocks no running request references (evictable on demand).
    pub fn evictable(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.evictable_blocks())
    }

    /// Blocks that could be allocated now for an admission: free plus
    /// evictable, less the watermark.
    pub fn admittable(&self) -> u64 {
        (self.pool.free() + self.evictable()).saturating_sub(self.pool.watermark())
    }

    pub fn blocks_for(&self, tokens: u32) -> u64 {
        tokens.div_ceil(self.block_size) as u64
    }

    /// Blocks a request of `tokens` KV entries is given at admission: in
    /// reserved mode the maximum sequence length, whatever it needs now.
    pub fn reserved_blocks(&self, tokens: u32) -> u64 {
        match self.mode {
            KvMode::Reserve { tokens: max } => self.blocks_for(max.max(tokens)),
            KvMode::Paged => self.blocks_for(tokens),
        }
    }

    /// Makes `blocks` allocatable now, evicting unreferenced cached prefixes
    /// if needed, keeping `reserve` blocks free beyond them (the watermark
    /// for admissions, 0 for running requests). Returns whether it succeeded.
    pub fn make_free(&mut self, blocks: u64, reserve: u64) -> bool {
        while self.pool.free() < blocks + reserve {
            let freed = self.cache.as_mut().map_or(0, |c| c.evict_one());
            if freed == 0 {
                return false;
            }
            self.pool.release(freed);
        }
        true
    }

    /// [`KvLedger::make_free`] with the admission watermark kept free.
    pub fn make_free_for_admission(&mut self, blocks: u64) -> bool {
        self.make_free(blocks, self.pool.watermark())
    }

    pub fn allocate(&mut self, blocks: u64) {
        self.pool.allocate(blocks);
    }

    pub fn release(&mut self, blocks: u64) {
        self.pool.release(blocks);
    }

    // ----- prefix units -----

    /// How `prefix` (of a `prompt_tokens`-token prompt) is cut into cache
    /// units; no units when caching is off, memory is not paged or a unit
    /// is not a whole number of blocks.
    pub fn prefix_shape(&self, prefix: &Prefix, prompt_tokens: u32) -> PrefixShape {
        if self.cache.is_none() {
            return PrefixShape::default();
        }
        let unit = prefix.unit_tokens(self.block_size);
        if unit == 0 || !unit.is_multiple_of(self.block_size) {
            return PrefixShape::default();
        }
        PrefixShape {
            units: prefix.units(prompt_tokens, self.block_size),
            unit_tokens: unit,
            unit_blocks: unit / self.block_size,
        }
    }

    /// Leading units of `prefix` found in the cache, capped so that at
    /// least one of the `prefill_target` tokens is computed (vLLM and
    /// SGLang always compute the last prompt token).
    pub fn hit_units(&self, prefix: &Prefix, prompt_tokens: u32, prefill_target: u32) -> u32 {
        if !self.paged() {
            return 0;
        }
        let shape = self.prefix_shape(prefix, prompt_tokens);
        let Some(cache) = &self.cache else { return 0 };
        if shape.units == 0 {
            return 0;
        }
        let hit = cache.lookup((0..shape.units).map(|j| prefix.unit_hash(j)));
        hit.min((prefill_target - 1) / shape.unit_tokens)
    }

    /// Counts an admission's prompt against the cache's hit rate.
    pub fn count_lookup(&mut self, prompt_tokens: u32, hit_tokens: u32) {
        if let Some(cache) = &mut self.cache {
            cache.queried_tokens += prompt_tokens as u64;
            cache.hit_tokens += hit_tokens as u64;
        }
    }

    /// References units `0..units` of `prefix`.
    pub fn acquire(&mut self, prefix: &Prefix, units: u32) {
        if let Some(cache) = &mut self.cache {
            for j in 0..units {
                cache.acquire(prefix.unit_hash(j));
            }
        }
    }

    /// Drops the references to units `0..units`, deepest first (so a
    /// chain's leaves are evicted before its root).
    pub fn release_units(&mut self, prefix: &Prefix, units: u32) {
        if let Some(cache) = &mut self.cache {
            for j in (0..units).rev() {
                cache.release(prefix.unit_hash(j));
            }
        }
    }

    /// Hands units `from..shape.units` of a request's just-computed prompt
    /// to the cache: each becomes a shared, referenced entry; a unit
    /// someone else cached meanwhile is shared and this copy freed.
    /// Returns the blocks that moved from the request to the cache.
    pub fn publish_prompt(&mut self, prefix: &Prefix, shape: PrefixShape, from: u32) -> u32 {
        if shape.units <= from || !self.paged() {
            return 0;
        }
        let Some(cache) = &mut self.cache else { return 0 };
        let mut freed = 0u64;
        for j in from..shape.units {
            let h = prefix.unit_hash(j);
            if !cache.insert(h, shape.unit_blocks) {
                cache.acquire(h);
                freed += shape.unit_blocks as u64;
            }
        }
        self.pool.release(freed);
        (shape.units - from) * shape.unit_blocks
    }

    /// At a request's end, the full blocks of its sequence beyond its prompt
    /// that its prefix declares shareable (a session turn's answer, which
    /// the next turn's prompt repeats) join the cache, as vLLM caches every
    /// full block, generated ones included. `kv` is the sequence's computed
    /// KV length; units `0..from` are already the request's references.
    /// Returns (units referenced now, blocks the cache took over from the
    /// request); a unit someone cached meanwhile is shared instead, and the
    /// request's copy is freed with the rest of its blocks.
    pub fn publish_sequence(
        &mut self,
        prefix: &Prefix,
        prompt_tokens: u32,
        kv: u32,
        from: u32,
    ) -> (u32, u64) {
        let shape = self.prefix_shape(prefix, prompt_tokens);
        if shape.unit_blocks == 0 || !self.paged() {
            return (from, 0);
        }
        let Some(cache) = &mut self.cache else {
            return (from, 0);
        };
        let units = prefix.sequence_units(prompt_tokens, kv, self.block_size);
        if units <= from {
            return (from, 0);
        }
        let mut moved = 0u64;
        for j in from..units {
            let h = prefix.unit_hash(j);
            if cache.insert(h, shape.unit_blocks) {
                moved += shape.unit_blocks as u64;
            } else {
                cache.acquire(h);
            }
        }
        (units, moved)
    }

    // ----- host swap space -----

    /// Takes `blocks` of host swap space if the replica swaps and the host
    /// has room. Returns whether it did.
    pub fn take_host(&mut self, blocks: u64) -> bool {
        match self.swap {
            Some(s) if self.host_used + blocks <= s.host_blocks => {
                self.host_used += blocks;
                true
            }
            _ => false,
        }
    }

    pub fn free_host(&mut self, blocks: u64) {
        self.host_used -= blocks;
    }

    /// Checks the pool, the cache's structure and references (`refs` =
    /// units running requests reference), and the host space.
    pub fn check(&self, refs: u64) -> Result<(), String> {
        if self.pool.used() > self.pool.total() {
            return Err(format!(
                "KV blocks used {} exceed capacity {}",
                self.pool.used(),
                self.pool.total()
            ));
        }
        if let Some(c) = &self.cache {
            c.check()?;
            let (cache_refs, _, _) = c.totals();
            if cache_refs != refs {
                return Err(format!(
                    "prefix cache holds {cache_refs} references, running requests {refs}"
                ));
            }
        }
        if let Some(swap) = self.swap
            && self.host_used > swap.host_blocks
        {
            return Err(format!(
                "host swap space: {} blocks used of {}",
                self.host_used, swap.host_blocks
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paged(blocks: u64, caching: bool) -> KvLedger {
        KvLedger::new(blocks, 0.0, 16, KvMode::Paged, caching, None)
    }

    #[test]
    fn blocks_round_up_and_reserved_mode_takes_the_maximum() {
        let l = paged(10, false);
        assert_eq!((l.blocks_for(1), l.blocks_for(16), l.blocks_for(17)), (1, 1, 2));
        assert_eq!(l.reserved_blocks(33), 3);
        let r = KvLedger::new(10, 0.0, 16, KvMode::Reserve { tokens: 100 }, false, None);
        assert_eq!(r.reserved_blocks(33), 7);
        assert_eq!(r.reserved_blocks(130), 9);
        assert!(!r.paged());
    }

    #[test]
    fn making_room_evicts_unreferenced_units_only() {
        let mut l = paged(4, true);
        let p = Prefix::Group { group: 1, tokens: 64 };
        let shape = l.prefix_shape(&p, 64);
        assert_eq!(
            shape,
            PrefixShape {
                units: 4,
                unit_tokens: 16,
                unit_blocks: 1
            }
        );
        // A request computed 4 blocks and published its first 3 units.
        l.allocate(4);
        assert_eq!(l.publish_prompt(&p, PrefixShape { units: 3, ..shape }, 0), 3);
        assert_eq!((l.cache_blocks(), l.evictable()), (3, 0));
        assert!(!l.make_free(1, 0));
        // It ends: its references go, deepest first; its own block is freed.
        l.release_units(&p, 3);
        l.release(1);
        assert_eq!((l.pool().free(), l.evictable()), (1, 3));
        assert_eq!(l.admittable(), 4);
        assert!(l.make_free(3, 0));
        assert_eq!((l.pool().free(), l.cache_blocks()), (3, 1));
        // The root survived: a lookup still hits unit 0 only.
        assert_eq!(l.hit_units(&p, 64, 64), 1);
        l.check(0).unwrap();
    }

    #[test]
    fn a_full_hit_still_computes_one_token() {
        let mut l = paged(8, true);
        let p = Prefix::Group { group: 2, tokens: 32 };
        let shape = l.prefix_shape(&p, 32);
        l.allocate(2);
        l.publish_prompt(&p, shape, 0);
        l.release_units(&p, 2);
        // 32-token prompt: both units cached, but the last token is computed.
        assert_eq!(l.hit_units(&p, 32, 32), 1);
        assert_eq!(l.hit_units(&p, 32, 33), 2);
        l.count_lookup(32, 16);
        assert_eq!(
            l.cache().map(|c| (c.queried_tokens, c.hit_tokens)),
            Some((32, 16))
        );
    }

    #[test]
    fn publishing_a_unit_cached_meanwhile_shares_it_and_frees_the_copy() {
        let mut l = paged(8, true);
        let p = Prefix::Group { group: 3, tokens: 32 };
        let shape = l.prefix_shape(&p, 32);
        l.allocate(2);
        assert_eq!(l.publish_prompt(&p, shape, 0), 2);
        // A second request computed the same two units concurrently.
        l.allocate(2);
        assert_eq!(l.publish_prompt(&p, shape, 0), 2);
        assert_eq!((l.pool().used(), l.cache_blocks()), (2, 2));
        l.check(4).unwrap();
        assert!(l.check(3).unwrap_err().contains("holds 4 references"));
    }

    #[test]
    fn a_finished_turn_caches_its_answer_blocks() {
        let mut l = paged(16, true);
        // History of 64 tokens shared; the prompt is 40 tokens long.
        let p = Prefix::Group { group: 4, tokens: 64 };
        let shape = l.prefix_shape(&p, 40);
        assert_eq!(shape.units, 2);
        l.allocate(4);
        l.publish_prompt(&p, shape, 0);
        // It generated up to 60 KV entries: 3 full blocks, one more unit.
        assert_eq!(l.publish_sequence(&p, 40, 60, 2), (3, 1));
        assert_eq!(l.publish_sequence(&p, 40, 60, 3), (3, 0));
        assert_eq!(l.cache_blocks(), 3);
    }

    #[test]
    fn no_units_without_caching_or_with_odd_units() {
        let l = paged(8, false);
        let p = Prefix::Group { group: 5, tokens: 64 };
        assert_eq!(l.prefix_shape(&p, 64), PrefixShape::default());
        assert_eq!(l.hit_units(&p, 64, 64), 0);
        let l = paged(8, true);
        let odd = Prefix::Blocks {
            ids: vec![1, 2].into(),
            unit_tokens: 24,
        };
        assert_eq!(l.prefix_shape(&odd, 48), PrefixShape::default());
    }

    #[test]
    fn host_space_is_bounded() {
        let swap = SwapModel {
            block_bytes: 1.0,
            host_bandwidth: 1.0,
            layers: 1,
            call_overhead: 0.0,
            group_blocks: 1,
            overlap: false,
            reuse: false,
            host_blocks: 5,
        };
        let mut l = KvLedger::new(8, 0.0, 16, KvMode::Paged, false, Some(swap));
        assert!(l.take_host(3));
        assert!(!l.take_host(3));
        assert!(l.take_host(2));
        l.free_host(4);
        assert!(l.take_host(4));
        l.check(0).unwrap();
        assert!(!paged(8, false).take_host(1));
    }
}
