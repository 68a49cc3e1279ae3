//! Indexes over the load reports routers see, so that a router needing the
//! least-loaded replica finds it in O(1) and the engine keeps it current in
//! O(log replicas) per changed report, instead of scanning every replica
//! per arrival.
//!
//! - [`MinTree`]: a tournament tree over `u64` keys; the winner of a tie is
//!   the lowest index, exactly as a linear scan keeping the first strict
//!   minimum (`super::argmin`) — so routing through it gives the same
//!   replica, and the same simulation, as the scan did.
//! - [`LazyTree`]: a `MinTree` whose keys are re-read on the next question
//!   after being marked changed (the decode-replica choice of
//!   disaggregated runs, whose measure is read from the replicas' state).
//! - [`Board`]: the engine's copy of the [`Load`] of every replica the
//!   router chooses among (the first pool), with indexes over them: fewest
//!   outstanding requests, least KV load, and the sum of outstanding
//!   requests — those the router says it uses ([`Indexes`]: keeping an
//!   index it never reads would cost every event for nothing).
//!   Loads change only through the board, so the indexes cannot drift from
//!   the reports (`View`'s methods check it in debug builds against a scan).
//!
//! Cost: a changed report costs one leaf-to-root walk per tree, which stops
//! as soon as a node's winner is unchanged (a report whose key did not move
//! costs one comparison); nothing allocates after construction.

use super::Load;

/// A tournament (winner) tree over `n` keys: `argmin` in O(1), `set` in
/// O(log n). Invariant: every internal node holds the (key, index) of the
/// smallest key in its subtree, the lowest index among equal keys.
#[derive(Debug, Clone)]
pub struct MinTree {
    /// Node 1 is the root, node k's children are 2k and 2k + 1, and leaf i
    /// is node `size + i`; padding leaves past `n` hold `(u64::MAX, u32::MAX)`.
    nodes: Vec<(u64, u32)>,
    /// Leaves: a power of two ≥ n (at least 1).
    size: usize,
    n: usize,
}

/// The winner of two subtrees, `left` covering lower indices than `right`:
/// `right` only when strictly smaller, so ties go to the lower index (and
/// a padding leaf never beats a real one, whose index is lower).
#[inline]
fn winner(left: (u64, u32), right: (u64, u32)) -> (u64, u32) {
    if right.0 < left.0 { right } else { left }
}

impl MinTree {
    /// A tree over `keys` (index = position), built in O(n).
    pub fn new(keys: impl ExactSizeIterator<Item = u64>) -> MinTree {
        let n = keys.len();
        assert!(n < u32::MAX as usize, "too many keys for a MinTree");
        let size = n.next_power_of_two().max(1);
        let mut nodes = vec![(u64::MAX, u32::MAX); 2 * size];
        for (i, k) in keys.enumerate() {
            nodes[size + i] = (k, i as u32);
        }
        let mut t = MinTree { nodes, size, n };
        t.rebuild();
        t
    }

    /// Recomputes every internal node from the leaves, O(n).
    fn rebuild(&mut self) {
        for k in (1..self.size).rev() {
            self.nodes[k] = winner(self.nodes[2 * k], self.nodes[2 * k + 1]);
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Index of the smallest key, the lowest index among equal ones (0 when
    /// empty, as a scan would answer).
    #[inline]
    pub fn argmin(&self) -> usize {
        if self.n == 0 { 0 } else { self.nodes[1].1 as usize }
    }

    /// The smallest key and its index (the lowest index among equal keys),
    /// `None` when empty.
    #[inline]
    pub fn min(&self) -> Option<(u64, usize)> {
        (self.n > 0).then(|| (self.nodes[1].0, self.nodes[1].1 as usize))
    }

    /// The key of leaf `i`.
    #[cfg(test)]
    pub fn key(&self, i: usize) -> u64 {
        assert!(i < self.n, "MinTree index {i} out of range (len {})", self.n);
        self.nodes[self.size + i].0
    }

    /// Sets the key of leaf `i`, O(log n); stops climbing at the first
    /// node whose winner is unchanged (its ancestors cannot change either).
    #[inline]
    pub fn set(&mut self, i: usize, key: u64) {
        assert!(i < self.n, "MinTree index {i} out of range (len {})", self.n);
        let mut k = self.size + i;
        if self.nodes[k].0 == key {
            return;
        }
        self.nodes[k].0 = key;
        k /= 2;
        while k >= 1 {
            let w = winner(self.nodes[2 * k], self.nodes[2 * k + 1]);
            if self.nodes[k] == w {
                return;
            }
            self.nodes[k] = w;
            k /= 2;
        }
    }

    /// Sets every key at once (`keys` yields exactly `len()` of them), O(n).
    pub fn set_all(&mut self, keys: impl Iterator<Item = u64>) {
        let mut count = 0;
        for (i, k) in keys.enumerate() {
            self.nodes[self.size + i].0 = k;
            count += 1;
        }
        assert_eq!(count, self.n, "set_all needs one key per leaf");
        self.rebuild();
    }
}

/// A [`MinTree`] whose keys are read lazily: [`LazyTree::mark`] notes that
/// a leaf's key may have changed, and [`LazyTree::argmin`] re-reads the
/// marked leaves (each once) before answering — so the answer is the
/// argmin of the keys at the time of the question, at a cost of one read
/// per leaf changed since the last one rather than one per change.
#[derive(Debug, Clone)]
pub struct LazyTree {
    tree: MinTree,
    changed: Vec<u32>,
    is_changed: Vec<bool>,
}

impl LazyTree {
    /// A tree of `n` leaves, every one marked (read at the first question).
    pub fn new(n: usize) -> LazyTree {
        LazyTree {
            tree: MinTree::new(std::iter::repeat_n(0, n)),
            changed: (0..n as u32).collect(),
            is_changed: vec![true; n],
        }
    }

    /// Leaf `i`'s key may have changed.
    #[inline]
    pub fn mark(&mut self, i: usize) {
        if !self.is_changed[i] {
            self.is_changed[i] = true;
            self.changed.push(i as u32);
        }
    }

    /// The leaf of the smallest `key(leaf)`, the lowest among equal keys,
    /// re-reading the marked leaves first (the others' keys must not have
    /// changed since they were read).
    pub fn argmin(&mut self, key: impl Fn(usize) -> u64) -> usize {
        for &i in &self.changed {
            self.is_changed[i as usize] = false;
            self.tree.set(i as usize, key(i as usize));
        }
        self.changed.clear();
        self.tree.argmin()
    }
}

/// Which indexes a router asks its `View` for ([`super::Router::indexes`]);
/// the engine keeps only those current. A question whose index is not kept
/// is answered by a scan, with the same answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indexes {
    /// [`super::View::least_outstanding`].
    pub least_outstanding: bool,
    /// [`super::View::least_kv_load`].
    pub least_kv_load: bool,
    /// [`super::View::total_outstanding`].
    pub total_outstanding: bool,
}

impl Indexes {
    pub const ALL: Indexes = Indexes {
        least_outstanding: true,
        least_kv_load: true,
        total_outstanding: true,
    };
    pub const NONE: Indexes = Indexes {
        least_outstanding: false,
        least_kv_load: false,
        total_outstanding: false,
    };
}

/// What the indexes of a `Board` answer, over the replicas the router
/// chooses among (what `View::loads` holds); `None` for an index not kept.
#[derive(Debug, Clone)]
pub struct LoadIndex {
    len: usize,
    outstanding: Option<MinTree>,
    kv_load: Option<MinTree>,
    total_outstanding: Option<u64>,
}

impl LoadIndex {
    fn new(loads: &[Load], wants: Indexes) -> LoadIndex {
        LoadIndex {
            len: loads.len(),
            outstanding: wants
                .least_outstanding
                .then(|| MinTree::new(loads.iter().map(Load::outstanding))),
            kv_load: wants
                .least_kv_load
                .then(|| MinTree::new(loads.iter().map(Load::kv_load))),
            total_outstanding: wants
                .total_outstanding
                .then(|| loads.iter().map(Load::outstanding).sum()),
        }
    }

    /// The replica with the fewest waiting + running requests (lowest index on ties).
    #[inline]
    pub fn least_outstanding(&self) -> Option<usize> {
        self.outstanding.as_ref().map(MinTree::argmin)
    }

    /// The replica with the least KV held + prompt tokens to prefill (lowest index on ties).
    #[inline]
    pub fn least_kv_load(&self) -> Option<usize> {
        self.kv_load.as_ref().map(MinTree::argmin)
    }

    /// Σ outstanding requests over the replicas.
    #[inline]
    pub fn total_outstanding(&self) -> Option<u64> {
        self.total_outstanding
    }

    /// Replicas indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Replica `i`'s report changed from `old` to `new`.
    #[inline]
    fn update(&mut self, i: usize, old: &Load, new: &Load) {
        if let Some(t) = self.total_outstanding.as_mut() {
            *t = *t - old.outstanding() + new.outstanding();
        }
        if let Some(t) = self.outstanding.as_mut() {
            t.set(i, new.outstanding());
        }
        if let Some(t) = self.kv_load.as_mut() {
            t.set(i, new.kv_load());
        }
    }

    /// Every report changed: rebuilds what is kept, O(n).
    fn rebuild(&mut self, loads: &[Load]) {
        if let Some(t) = self.total_outstanding.as_mut() {
            *t = loads.iter().map(Load::outstanding).sum();
        }
        if let Some(t) = self.outstanding.as_mut() {
            t.set_all(loads.iter().map(Load::outstanding));
        }
        if let Some(t) = self.kv_load.as_mut() {
            t.set_all(loads.iter().map(Load::kv_load));
        }
    }
}

/// The engine's load reports of the replicas the router chooses among
/// (the first pool), with the [`LoadIndex`] over them.
#[derive(Debug, Clone)]
pub struct Board {
    loads: Vec<Load>,
    index: LoadIndex,
    /// Whether any index is kept (else `set` only stores the report).
    indexed: bool,
}

impl Board {
    /// A board of `loads`, keeping the indexes `wants`.
    pub fn new(loads: Vec<Load>, wants: Indexes) -> Board {
        let index = LoadIndex::new(&loads, wants);
        Board {
            loads,
            index,
            indexed: wants != Indexes::NONE,
        }
    }

    /// The reports and their index (what a `View` holds).
    pub fn view(&self) -> (&[Load], &LoadIndex) {
        (&self.loads, &self.index)
    }

    /// Replaces replica `i`'s report, O(log n).
    #[inline]
    pub fn set(&mut self, i: usize, load: Load) {
        let old = std::mem::replace(&mut self.loads[i], load);
        if self.indexed && old != load {
            self.index.update(i, &old, &load);
        }
    }

    /// Replaces every report (`loads` yields one per replica, in order) and
    /// rebuilds the index in O(n): a stale-report refresh.
    pub fn set_all(&mut self, loads: impl Iterator<Item = Load>) {
        let mut count = 0;
        for (slot, l) in self.loads.iter_mut().zip(loads) {
            *slot = l;
            count += 1;
        }
        assert_eq!(count, self.loads.len(), "set_all needs one report per replica");
        self.index.rebuild(&self.loads);
    }
}

#[cfg(test)]
mod tests;
