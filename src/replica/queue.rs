//! The waiting queue of a replica: arrival (FIFO) order, plus per-client
//! and per-priority-class indexes so that fair and priority schedulers find
//! the request they want in O(1) however long the queue is.
//!
//! Entries are `(slot, generation)`; an entry is live while its slot is
//! queued with that generation. Taking a request out of the middle (or
//! moving it to the front) bumps its generation, leaving stale entries that
//! are dropped lazily when they reach the front of their deque — so every
//! deque's front is always live, and each operation is amortised O(1).
//!
//! The two indexes are kept only for a scheduler that reads them
//! ([`WaitIndexes`], from `Scheduler::waiting_indexes`): each costs every
//! arrival and admission a deque push and pop. Without one, its question
//! is answered by a scan of the queue, giving the same request.

use super::scheduler::WaitIndexes;
use super::state::Slot;
use std::collections::VecDeque;

type Entry = (Slot, u32);

/// What the queue knows of a slot (one place, so an arrival or an
/// admission touches one entry).
#[derive(Debug, Clone, Copy, Default)]
struct SlotEntry {
    /// Bumped each time the slot is queued; entries of older generations are stale.
    generation: u32,
    queued: bool,
    client: u32,
    priority: u32,
}

/// An entry is live while its slot is queued with the entry's generation.
fn is_live(slots: &[SlotEntry], e: &Entry) -> bool {
    let s = &slots[e.0 as usize];
    s.queued && s.generation == e.1
}

#[derive(Debug)]
pub struct WaitQueue {
    fifo: VecDeque<Entry>,
    /// Kept only with `indexes.by_client` / `indexes.by_priority`.
    by_client: Vec<VecDeque<Entry>>,
    by_priority: Vec<VecDeque<Entry>>,
    indexes: WaitIndexes,
    slots: Vec<SlotEntry>,
    client_count: Vec<u32>,
    len: usize,
}

impl Default for WaitQueue {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl WaitQueue {
    /// An empty queue keeping both indexes.
    pub fn new() -> Self {
        WaitQueue {
            fifo: VecDeque::new(),
            by_client: Vec::new(),
            by_priority: Vec::new(),
            indexes: WaitIndexes::BOTH,
            slots: Vec::new(),
            client_count: Vec::new(),
            len: 0,
        }
    }

    /// Keeps only these indexes (on an empty queue: a policy says what it
    /// reads before any request arrives).
    pub fn set_indexes(&mut self, indexes: WaitIndexes) {
        assert!(
            self.fifo.is_empty(),
            "the waiting queue's indexes are chosen while it is empty"
        );
        self.indexes = indexes;
    }

    /// Loads the front of the arrival order (a hint).
    pub fn prefetch_front(&self) {
        crate::prefetch::prefetch_at(self.fifo.as_slices().0, 0);
    }

    /// The indexes kept.
    pub fn indexes(&self) -> WaitIndexes {
        self.indexes
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn live(&self, e: &Entry) -> bool {
        is_live(&self.slots, e)
    }

    fn grow(&mut self, slot: Slot, client: u32, priority: u32) {
        let s = slot as usize;
        if self.slots.len() <= s {
            self.slots.resize(s + 1, SlotEntry::default());
        }
        if self.client_count.len() <= client as usize {
            self.client_count.resize(client as usize + 1, 0);
        }
        if self.indexes.by_client && self.by_client.len() <= client as usize {
            self.by_client.resize_with(client as usize + 1, VecDeque::new);
        }
        if self.indexes.by_priority && self.by_priority.len() <= priority as usize {
            self.by_priority.resize_with(priority as usize + 1, VecDeque::new);
        }
    }

    fn insert(&mut self, slot: Slot, client: u32, priority: u32, front: bool) {
        debug_assert!(!self.slots.get(slot as usize).is_some_and(|s| s.queued));
        self.grow(slot, client, priority);
        let s = &mut self.slots[slot as usize];
        *s = SlotEntry {
            generation: s.generation.wrapping_add(1),
            queued: true,
            client,
            priority,
        };
        let e = (slot, s.generation);
        let (c, p) = (client as usize, priority as usize);
        let by_client = self.indexes.by_client.then(|| &mut self.by_client[c]);
        let by_priority = self.indexes.by_priority.then(|| &mut self.by_priority[p]);
        for q in [Some(&mut self.fifo), by_client, by_priority]
            .into_iter()
            .flatten()
        {
            if front {
                q.push_front(e);
            } else {
                q.push_back(e);
            }
        }
        self.client_count[c] += 1;
        self.len += 1;
    }

    /// Queues a new arrival at the back.
    pub fn push_back(&mut self, slot: Slot, client: u32, priority: u32) {
        self.insert(slot, client, priority, false);
    }

    /// Queues a request at the front (a preempted one, or one moved ahead).
    pub fn push_front(&mut self, slot: Slot, client: u32, priority: u32) {
        self.insert(slot, client, priority, true);
    }

    /// Takes `slot` out of the queue.
    pub fn remove(&mut self, slot: Slot) {
        let s = &mut self.slots[slot as usize];
        debug_assert!(s.queued, "removing a request that is not waiting");
        s.queued = false;
        let (c, p) = (s.client as usize, s.priority as usize);
        self.client_count[c] -= 1;
        self.len -= 1;
        self.drop_stale(c, p);
    }

    /// Moves `slot` to the front of every order.
    pub fn promote(&mut self, slot: Slot) {
        let s = self.slots[slot as usize];
        self.remove(slot);
        self.push_front(slot, s.client, s.priority);
    }

    /// Pops stale entries off the fronts a removal may have exposed, so
    /// that every kept deque's front is live.
    fn drop_stale(&mut self, c: usize, p: usize) {
        let slots = &self.slots;
        let by_client = self.indexes.by_client.then(|| &mut self.by_client[c]);
        let by_priority = self.indexes.by_priority.then(|| &mut self.by_priority[p]);
        for q in [Some(&mut self.fifo), by_client, by_priority]
            .into_iter()
            .flatten()
        {
            while q.front().is_some_and(|e| !is_live(slots, e)) {
                q.pop_front();
            }
        }
    }

    /// The next request in queue order.
    pub fn front(&self) -> Option<Slot> {
        self.fifo.front().map(|e| e.0)
    }

    /// Waiting requests in queue order.
    pub fn iter(&self) -> impl Iterator<Item = Slot> + '_ {
        self.fifo.iter().filter(|e| self.live(e)).map(|e| e.0)
    }

    /// The first waiting request of `client` (O(1) with the per-client
    /// index, else a scan of the queue).
    pub fn front_of_client(&self, client: u32) -> Option<Slot> {
        if self.indexes.by_client {
            return self.by_client.get(client as usize)?.front().map(|e| e.0);
        }
        self.iter().find(|&s| self.slots[s as usize].client == client)
    }

    /// The first waiting request of the most urgent class (lowest number;
    /// O(classes) with the priority index, else a scan of the queue).
    pub fn front_by_priority(&self) -> Option<Slot> {
        if self.indexes.by_priority {
            return self.by_priority.iter().find_map(|q| q.front().map(|e| e.0));
        }
        // `min_by_key` keeps the first minimum: the oldest of the class.
        self.iter().min_by_key(|&s| self.slots[s as usize].priority)
    }

    /// Waiting requests per client id (index = client).
    pub fn per_client(&self) -> &[u32] {
        &self.client_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every choice of kept indexes gives the same answers.
    fn every_choice() -> [WaitIndexes; 4] {
        [(false, false), (true, false), (false, true), (true, true)].map(|(c, p)| WaitIndexes {
            by_client: c,
            by_priority: p,
        })
    }

    #[test]
    fn orders_and_indexes_stay_consistent() {
        for indexes in every_choice() {
            orders_and_indexes_stay_consistent_with(indexes);
        }
    }

    #[test]
    fn an_index_left_out_is_not_kept() {
        let mut q = WaitQueue::new();
        q.set_indexes(WaitIndexes {
            by_client: false,
            by_priority: true,
        });
        q.push_back(0, 3, 1);
        q.push_front(1, 2, 0);
        q.remove(0);
        assert!(q.by_client.is_empty(), "{:?}", q.by_client);
        assert_eq!(q.by_priority.len(), 2);
        // Both kept by default.
        let mut q = WaitQueue::new();
        q.push_back(0, 3, 1);
        assert_eq!((q.by_client.len(), q.by_priority.len()), (4, 2));
    }

    fn orders_and_indexes_stay_consistent_with(indexes: WaitIndexes) {
        let mut q = WaitQueue::new();
        q.set_indexes(indexes);
        q.push_back(0, 0, 1);
        q.push_back(1, 1, 0);
        q.push_back(2, 0, 0);
        assert_eq!(q.iter().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(q.front_by_priority(), Some(1));
        assert_eq!(q.front_of_client(0), Some(0));
        q.promote(2);
        assert_eq!(q.iter().collect::<Vec<_>>(), vec![2, 0, 1]);
        assert_eq!(
            (q.front(), q.front_of_client(0), q.front_by_priority()),
            (Some(2), Some(2), Some(2))
        );
        q.remove(2);
        assert_eq!(
            (q.front(), q.front_of_client(0), q.front_by_priority()),
            (Some(0), Some(0), Some(1))
        );
        q.remove(1);
        assert_eq!(q.front_by_priority(), Some(0));
        assert_eq!(q.front_of_client(1), None);
        assert_eq!(q.per_client(), &[1, 0]);
        assert_eq!(q.len(), 1);
        // A slot reused by a new request gets a fresh generation.
        q.push_front(1, 1, 0);
        assert_eq!(q.iter().collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(q.front_of_client(1), Some(1));
    }
}
