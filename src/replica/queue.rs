//! The waiting queue of a replica: arrival (FIFO) order, plus per-client
//! and per-priority-class indexes so that fair and priority schedulers find
//! the request they want in O(1) however long the queue is.
//!
//! Entries are `(slot, generation)`; an entry is live while its slot is
//! queued with that generation. Taking a request out of the middle (or
//! moving it to the front) bumps its generation, leaving stale entries that
//! are dropped lazily when they reach the front of their deque — so every
//! deque's front is always live, and each operation is amortised O(1).

use super::state::Slot;
use std::collections::VecDeque;

type Entry = (Slot, u32);

#[derive(Debug, Default)]
pub struct WaitQueue {
    fifo: VecDeque<Entry>,
    by_client: Vec<VecDeque<Entry>>,
    by_priority: Vec<VecDeque<Entry>>,
    /// Per slot: current generation, whether queued, its client and class.
    generation: Vec<u32>,
    queued: Vec<bool>,
    keys: Vec<(u32, u32)>,
    client_count: Vec<u32>,
    len: usize,
}

impl WaitQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn live(&self, e: &Entry) -> bool {
        self.queued[e.0 as usize] && self.generation[e.0 as usize] == e.1
    }

    fn grow(&mut self, slot: Slot, client: u32, priority: u32) {
        let s = slot as usize;
        if self.generation.len() <= s {
            self.generation.resize(s + 1, 0);
            self.queued.resize(s + 1, false);
            self.keys.resize(s + 1, (0, 0));
        }
        if self.by_client.len() <= client as usize {
            self.by_client.resize_with(client as usize + 1, VecDeque::new);
            self.client_count.resize(client as usize + 1, 0);
        }
        if self.by_priority.len() <= priority as usize {
            self.by_priority.resize_with(priority as usize + 1, VecDeque::new);
        }
    }

    fn insert(&mut self, slot: Slot, client: u32, priority: u32, front: bool) {
        debug_assert!(!self.queued.get(slot as usize).copied().unwrap_or(false));
        self.grow(slot, client, priority);
        let s = slot as usize;
        self.generation[s] = self.generation[s].wrapping_add(1);
        self.queued[s] = true;
        self.keys[s] = (client, priority);
        let e = (slot, self.generation[s]);
        let (c, p) = (client as usize, priority as usize);
        if front {
            self.fifo.push_front(e);
            self.by_client[c].push_front(e);
            self.by_priority[p].push_front(e);
        } else {
            self.fifo.push_back(e);
            self.by_client[c].push_back(e);
            self.by_priority[p].push_back(e);
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
        let s = slot as usize;
        debug_assert!(self.queued[s], "removing a request that is not waiting");
        self.queued[s] = false;
        let (c, p) = self.keys[s];
        self.client_count[c as usize] -= 1;
        self.len -= 1;
        self.drop_stale(c as usize, p as usize);
    }

    /// Moves `slot` to the front of every order.
    pub fn promote(&mut self, slot: Slot) {
        let (c, p) = self.keys[slot as usize];
        self.remove(slot);
        self.push_front(slot, c, p);
    }

    fn drop_stale(&mut self, c: usize, p: usize) {
        while let Some(e) = self.fifo.front() {
            if self.live(e) {
                break;
            }
            self.fifo.pop_front();
        }
        while let Some(e) = self.by_client[c].front() {
            if self.live(e) {
                break;
            }
            self.by_client[c].pop_front();
        }
        while let Some(e) = self.by_priority[p].front() {
            if self.live(e) {
                break;
            }
            self.by_priority[p].pop_front();
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

    /// The first waiting request of `client`.
    pub fn front_of_client(&self, client: u32) -> Option<Slot> {
        self.by_client.get(client as usize)?.front().map(|e| e.0)
    }

    /// The first waiting request of the most urgent class (lowest number).
    pub fn front_by_priority(&self) -> Option<Slot> {
        self.by_priority.iter().find_map(|q| q.front().map(|e| e.0))
    }

    /// Waiting requests per client id (index = client).
    pub fn per_client(&self) -> &[u32] {
        &self.client_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_indexes_stay_consistent() {
        let mut q = WaitQueue::new();
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
