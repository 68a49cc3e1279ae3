//! Prefix caching: KV blocks of prompt prefixes kept after their request
//! is done, shared by later requests with the same prefix, evicted
//! least-recently-used when memory is needed.
//!
//! This is vLLM's automatic prefix caching (block-hash chain; Kwon et al.
//! SOSP'23 §4.4 and vLLM's `PrefixCachingBlockAllocator`) and, with
//! longest-prefix-first admission, SGLang's RadixAttention (Zheng et al.
//! 2024): a prefix is cut into *units* (one KV block, or a trace's block
//! size such as Mooncake's 512 tokens), each named by a hash that
//! identifies it and everything before it ([`crate::workload::Prefix`]), so
//! a chain of hashes is a path in the radix tree.
//!
//! - An entry holds one unit's KV blocks and a reference count (running
//!   requests using it). Referenced entries are never evicted.
//! - Unreferenced entries stay cached (their blocks count as used in the
//!   pool) and sit in an LRU order; the allocator evicts from the LRU end
//!   when free blocks run short. A request releases its units deepest
//!   first, so the leaves of a chain are evicted before their parents.
//! - Lookups follow a request's chain from unit 0 and stop at the first
//!   miss (a unit whose parent was evicted is unreachable; it ages out).
//!
//! Costs: hash-map lookups per unit touched and O(log n) LRU updates; no
//! iteration over the whole cache. Deterministic: the map is only probed,
//! never iterated, and LRU ties are broken by entry index.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    refs: u32,
    blocks: u32,
    /// LRU stamp of the last release (valid while `refs == 0`).
    stamp: u64,
}

/// The cached prefix units of one replica.
#[derive(Debug, Default)]
pub struct PrefixCache {
    index: HashMap<u64, u32>,
    entries: Vec<Entry>,
    free_entries: Vec<u32>,
    /// Unreferenced entries by (stamp, entry index): first = least recently used.
    lru: BTreeSet<(u64, u32)>,
    clock: u64,
    /// Blocks held by all entries, and by the unreferenced (evictable) ones.
    blocks: u64,
    evictable: u64,
    /// Lifetime counters.
    pub hit_tokens: u64,
    pub queried_tokens: u64,
    pub evicted_blocks: u64,
}

impl PrefixCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Blocks held by cached units (referenced or not).
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Blocks that eviction could free now.
    pub fn evictable_blocks(&self) -> u64 {
        self.evictable
    }

    /// Leading units of `hashes` present in the cache (no side effects).
    pub fn lookup(&self, hashes: impl Iterator<Item = u64>) -> u32 {
        let mut n = 0;
        for h in hashes {
            if !self.index.contains_key(&h) {
                break;
            }
            n += 1;
        }
        n
    }

    /// References the unit `hash`, which must be cached.
    pub fn acquire(&mut self, hash: u64) {
        let i = self.index[&hash];
        let e = &mut self.entries[i as usize];
        if e.refs == 0 {
            self.lru.remove(&(e.stamp, i));
            self.evictable -= e.blocks as u64;
        }
        e.refs += 1;
    }

    /// Inserts a unit (its `blocks` move from the request to the cache)
    /// referenced once. Returns false, changing nothing, if it is already
    /// cached (the caller then acquires the existing one and frees its copy).
    pub fn insert(&mut self, hash: u64, blocks: u32) -> bool {
        if self.index.contains_key(&hash) {
            return false;
        }
        let e = Entry {
            hash,
            refs: 1,
            blocks,
            stamp: 0,
        };
        let i = match self.free_entries.pop() {
            Some(i) => {
                self.entries[i as usize] = e;
                i
            }
            None => {
                self.entries.push(e);
                (self.entries.len() - 1) as u32
            }
        };
        self.index.insert(hash, i);
        self.blocks += blocks as u64;
        true
    }

    /// Drops one reference to `hash`; at zero the unit becomes evictable,
    /// most recently used.
    pub fn release(&mut self, hash: u64) {
        let i = self.index[&hash];
        self.clock += 1;
        let e = &mut self.entries[i as usize];
        debug_assert!(e.refs > 0, "release of an unreferenced unit");
        e.refs -= 1;
        if e.refs == 0 {
            e.stamp = self.clock;
            self.lru.insert((e.stamp, i));
            self.evictable += e.blocks as u64;
        }
    }

    /// Evicts the least recently used unreferenced unit; returns its blocks
    /// (0 when nothing is evictable).
    pub fn evict_one(&mut self) -> u64 {
        let Some((_, i)) = self.lru.pop_first() else {
            return 0;
        };
        let e = self.entries[i as usize];
        self.index.remove(&e.hash);
        self.free_entries.push(i);
        self.blocks -= e.blocks as u64;
        self.evictable -= e.blocks as u64;
        self.evicted_blocks += e.blocks as u64;
        e.blocks as u64
    }

    /// Reference count of a cached unit (tests and invariant checks).
    pub fn refs(&self, hash: u64) -> Option<u32> {
        self.index.get(&hash).map(|&i| self.entries[i as usize].refs)
    }

    /// Σ refs over entries, and blocks (all, evictable) recomputed from the
    /// entries (invariant checks; O(entries); integer sums, so the map's
    /// iteration order cannot affect the result).
    pub fn totals(&self) -> (u64, u64, u64) {
        let (mut refs, mut blocks, mut evictable) = (0u64, 0u64, 0u64);
        for &i in self.index.values() {
            let e = &self.entries[i as usize];
            refs += e.refs as u64;
            blocks += e.blocks as u64;
            if e.refs == 0 {
                evictable += e.blocks as u64;
            }
        }
        (refs, blocks, evictable)
    }

    /// Counters' consistency (invariant checks).
    pub fn check(&self) -> Result<(), String> {
        let (_, blocks, evictable) = self.totals();
        if blocks != self.blocks || evictable != self.evictable {
            return Err(format!(
                "prefix cache: entries hold {blocks} blocks ({evictable} evictable), counters say {} ({})",
                self.blocks, self.evictable
            ));
        }
        if self.lru.len() != self.index.len() - self.referenced() {
            return Err("prefix cache: LRU list does not match the unreferenced entries".into());
        }
        Ok(())
    }

    fn referenced(&self) -> usize {
        self.index
            .values()
            .filter(|&&i| self.entries[i as usize].refs > 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_units_are_never_evicted_and_lru_goes_first() {
        let mut c = PrefixCache::new();
        assert!(c.insert(1, 2));
        assert!(c.insert(2, 2));
        assert!(!c.insert(1, 2), "already cached");
        assert_eq!((c.blocks(), c.evictable_blocks()), (4, 0));
        assert_eq!(c.evict_one(), 0, "everything referenced");
        c.release(2);
        c.release(1);
        assert_eq!(c.evictable_blocks(), 4);
        // 2 was released first: least recently used.
        assert_eq!(c.evict_one(), 2);
        assert_eq!(c.lookup([1u64, 2].into_iter()), 1);
        assert_eq!(
            c.lookup([2u64, 1].into_iter()),
            0,
            "a chain stops at the first miss"
        );
        c.acquire(1);
        assert_eq!(c.refs(1), Some(1));
        assert_eq!(c.evict_one(), 0);
        c.check().unwrap();
        c.release(1);
        assert_eq!(c.evict_one(), 2);
        assert_eq!((c.blocks(), c.evictable_blocks(), c.evicted_blocks), (0, 0, 4));
        c.check().unwrap();
    }

    #[test]
    fn the_check_catches_each_counter_drifting_alone() {
        let mut c = PrefixCache::new();
        c.insert(1, 3);
        c.insert(2, 2);
        c.release(2);
        c.check().unwrap();
        assert_eq!((c.refs(1), c.refs(2), c.refs(9)), (Some(1), Some(0), None));
        c.blocks += 1;
        assert!(c.check().is_err(), "blocks alone");
        c.blocks -= 1;
        c.evictable -= 1;
        assert!(c.check().is_err(), "evictable alone");
        c.evictable += 1;
        c.check().unwrap();
    }
}
