//! The running requests (prefilling or decoding) of a replica, in admission
//! order, with O(1) admission, removal and newest-first access.
//!
//! A request leaves from anywhere in the order (it finishes, is preempted
//! or is handed off), so a vector would pay a scan and a shift of the whole
//! batch per departure — work that grows with the batch and, at fleet
//! scale, a run of cold cache lines per finished request. The list is
//! instead threaded through per-slot links (`prev`, `next`), kept in one
//! vector indexed by slot beside the slab.
//!
//! Invariants (checked by [`RunningList::check`]): following `next` from
//! the head visits exactly `len` members, each once, ending at the tail;
//! `prev` mirrors `next`; a slot is marked a member exactly when it is on
//! the list.

use super::slab::Slot;

/// "No neighbour" in a link.
const NIL: Slot = Slot::MAX;

#[derive(Debug, Clone, Copy)]
struct Link {
    prev: Slot,
    next: Slot,
    member: bool,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
    member: false,
};

#[derive(Debug)]
pub(crate) struct RunningList {
    links: Vec<Link>,
    head: Slot,
    tail: Slot,
    len: u32,
}

impl Default for RunningList {
    fn default() -> Self {
        RunningList {
            links: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl RunningList {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, slot: Slot) -> bool {
        self.links.get(slot as usize).is_some_and(|l| l.member)
    }

    /// Appends a newly admitted request (the newest).
    pub fn push_back(&mut self, slot: Slot) {
        let i = slot as usize;
        if self.links.len() <= i {
            self.links.resize(i + 1, UNLINKED);
        }
        debug_assert!(!self.links[i].member, "slot {slot} is already running");
        self.links[i] = Link {
            prev: self.tail,
            next: NIL,
            member: true,
        };
        match self.tail {
            NIL => self.head = slot,
            t => self.links[t as usize].next = slot,
        }
        self.tail = slot;
        self.len += 1;
    }

    /// Takes `slot` off the list; `false` if it was not on it.
    pub fn remove(&mut self, slot: Slot) -> bool {
        if !self.contains(slot) {
            return false;
        }
        let Link { prev, next, .. } = self.links[slot as usize];
        match prev {
            NIL => self.head = next,
            p => self.links[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.links[n as usize].prev = prev,
        }
        self.links[slot as usize] = UNLINKED;
        self.len -= 1;
        true
    }

    /// The most recently admitted request still running.
    pub fn newest(&self) -> Option<Slot> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// The members, oldest first (`.rev()` for newest first).
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            links: &self.links,
            front: self.head,
            back: self.tail,
            left: self.len,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        let mut seen = 0u32;
        let mut prev = NIL;
        let mut at = self.head;
        while at != NIL {
            let l = self
                .links
                .get(at as usize)
                .ok_or_else(|| format!("running list links to slot {at}, past its links"))?;
            if !l.member {
                return Err(format!(
                    "slot {at} is linked into the running list but not marked running"
                ));
            }
            if l.prev != prev {
                return Err(format!("slot {at} links back to {} instead of {prev}", l.prev));
            }
            seen += 1;
            if seen > self.len {
                return Err(format!("the running list is longer than its length {}", self.len));
            }
            prev = at;
            at = l.next;
        }
        if seen != self.len {
            return Err(format!(
                "the running list links {seen} requests, its length is {}",
                self.len
            ));
        }
        if prev != self.tail {
            return Err(format!(
                "the running list ends at {prev}, its tail is {}",
                self.tail
            ));
        }
        let marked = self.links.iter().filter(|l| l.member).count();
        if marked != seen as usize {
            return Err(format!(
                "{marked} slots are marked running, {seen} are on the list"
            ));
        }
        Ok(())
    }
}

/// Walks the list from both ends; `left` counts the members not yet yielded.
pub(crate) struct Iter<'a> {
    links: &'a [Link],
    front: Slot,
    back: Slot,
    left: u32,
}

impl Iterator for Iter<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let s = self.front;
        self.front = self.links[s as usize].next;
        Some(s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Slot> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let s = self.back;
        self.back = self.links[s as usize].prev;
        Some(s)
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(slots: &[Slot]) -> RunningList {
        let mut l = RunningList::default();
        for &s in slots {
            l.push_back(s);
        }
        l
    }

    fn order(l: &RunningList) -> Vec<Slot> {
        l.iter().collect()
    }

    #[test]
    fn keeps_admission_order_through_removals_anywhere() {
        let mut l = list(&[4, 0, 7, 2, 9]);
        assert_eq!(order(&l), [4, 0, 7, 2, 9]);
        assert!(l.remove(7)); // middle
        assert!(l.remove(4)); // head
        assert!(l.remove(9)); // tail
        assert_eq!(order(&l), [0, 2]);
        assert_eq!(l.iter().rev().collect::<Vec<_>>(), [2, 0]);
        assert_eq!((l.len(), l.newest()), (2, Some(2)));
        l.push_back(7);
        assert_eq!(order(&l), [0, 2, 7]);
        assert_eq!(l.newest(), Some(7));
        l.check().unwrap();
    }

    #[test]
    fn removing_a_non_member_changes_nothing() {
        let mut l = list(&[1, 3]);
        assert!(!l.remove(2));
        assert!(!l.remove(100));
        assert!(l.remove(3));
        assert!(!l.remove(3));
        assert_eq!(order(&l), [1]);
        assert!(l.contains(1) && !l.contains(3) && !l.contains(50));
        l.check().unwrap();
    }

    #[test]
    fn empties_and_refills() {
        let mut l = list(&[5]);
        assert!(l.remove(5));
        assert!(l.is_empty());
        assert_eq!((l.newest(), l.iter().next()), (None, None));
        l.push_back(5);
        l.push_back(1);
        assert_eq!(order(&l), [5, 1]);
        l.check().unwrap();
    }

    #[test]
    fn iterating_from_both_ends_meets_in_the_middle() {
        let l = list(&[1, 2, 3, 4]);
        let mut it = l.iter();
        assert_eq!(it.len(), 4);
        assert_eq!((it.next(), it.next_back()), (Some(1), Some(4)));
        assert_eq!((it.next_back(), it.next()), (Some(3), Some(2)));
        assert_eq!((it.next(), it.next_back()), (None, None));
    }

    /// The replica's own check runs the list's: a running request taken
    /// off the list (but still admitted) is reported.
    #[test]
    fn the_replicas_check_includes_the_lists() {
        use crate::metrics::Metrics;
        use crate::replica::state::{Admit, ReplicaState};
        use crate::scenario::config::{MetricsConfig, SloConfig};
        let plan = crate::scenario::validate::plan(&crate::scenario::load(None, &[]).unwrap()).unwrap();
        let mut st = ReplicaState::new(0, 100, plan.replica_options);
        let mut m = Metrics::new(1, &MetricsConfig::default(), &SloConfig::default());
        st.enqueue(crate::workload::RequestSpec::new(1, 0, 20, 4), 0, &mut m);
        assert_eq!(st.admit_head(1000, 0), Admit::Admitted(20));
        st.check_invariants().unwrap();
        st.running.links[0].member = false;
        let e = st.check_invariants().unwrap_err();
        assert!(e.contains("not marked running"), "{e}");
    }

    #[test]
    fn check_catches_broken_links() {
        let mut l = list(&[0, 1, 2]);
        l.links[2].prev = 0;
        assert!(l.check().unwrap_err().contains("links back"), "{:?}", l.check());
        let mut l = list(&[0, 1, 2]);
        l.len = 2;
        assert!(l.check().unwrap_err().contains("longer"), "{:?}", l.check());
        let mut l = list(&[0, 1, 2]);
        l.len = 4;
        assert!(l.check().unwrap_err().contains("links 3"), "{:?}", l.check());
        let mut l = list(&[0, 1]);
        l.links.push(Link {
            member: true,
            ..UNLINKED
        });
        assert!(
            l.check().unwrap_err().contains("3 slots are marked"),
            "{:?}",
            l.check()
        );
        let mut l = list(&[0, 1]);
        l.links[1].member = false;
        assert!(l.check().unwrap_err().contains("not marked"), "{:?}", l.check());
        let mut l = list(&[0, 1]);
        l.tail = 0;
        assert!(l.check().unwrap_err().contains("its tail"), "{:?}", l.check());
    }
}
