use super::*;
use crate::cluster::argmin;
use proptest::prelude::*;

fn tree(keys: &[u64]) -> MinTree {
    MinTree::new(keys.iter().copied())
}

/// Every internal node holds the winner of its children (the invariant
/// `set`'s early stop relies on).
fn check(t: &MinTree) {
    for k in 1..t.size {
        assert_eq!(t.nodes[k], winner(t.nodes[2 * k], t.nodes[2 * k + 1]), "node {k}");
    }
}

#[test]
fn argmin_is_the_lowest_index_of_the_smallest_key() {
    // keys 5 3 3 7: the smallest is 3, at 1 and 2 → 1.
    let mut t = tree(&[5, 3, 3, 7]);
    assert_eq!(t.argmin(), 1);
    // 5 9 3 7 → 2.
    t.set(1, 9);
    assert_eq!(t.argmin(), 2);
    // 5 9 9 7 → 0.
    t.set(2, 9);
    assert_eq!(t.argmin(), 0);
    // 7 9 9 7: a tie between 0 and 3 → 0.
    t.set(0, 7);
    assert_eq!(t.argmin(), 0);
    // 8 9 9 7 → 3.
    t.set(0, 8);
    assert_eq!(t.argmin(), 3);
    // 8 9 9 8: a tie between 0 and 3 again → 0.
    t.set(3, 8);
    assert_eq!(t.argmin(), 0);
    assert_eq!((t.key(0), t.key(1), t.key(2), t.key(3)), (8, 9, 9, 8));
    check(&t);
}

#[test]
fn a_winner_whose_key_moves_keeps_its_ancestors_current() {
    // 1 5 → 0 wins with key 1; raising it to 2 keeps index 0 as the
    // winner but its key must reach the root: 2 5 then 2 2 (tie → 0),
    // then 3 2 → 1.
    let mut t = tree(&[1, 5]);
    t.set(0, 2);
    assert_eq!(t.nodes[1], (2, 0));
    t.set(1, 2);
    assert_eq!(t.argmin(), 0);
    t.set(0, 3);
    assert_eq!(t.argmin(), 1);
    check(&t);
}

#[test]
fn sizes_that_are_not_powers_of_two_never_pick_padding() {
    // Three leaves, padded to four: the padding leaf (index 3) holds
    // u64::MAX, so all-MAX keys still answer 0, as a scan would.
    let mut t = tree(&[u64::MAX; 3]);
    assert_eq!(t.argmin(), 0);
    t.set(2, 4);
    assert_eq!(t.argmin(), 2);
    t.set(1, 4);
    assert_eq!(t.argmin(), 1);
    t.set(0, u64::MAX - 1);
    assert_eq!(t.argmin(), 1);
    // Five leaves (eight slots): the last real one wins alone.
    let t = tree(&[9, 9, 9, 9, 1]);
    assert_eq!(t.argmin(), 4);
    check(&t);
}

#[test]
fn one_and_zero_keys() {
    let mut t = tree(&[7]);
    assert_eq!(t.argmin(), 0);
    t.set(0, 0);
    assert_eq!((t.argmin(), t.key(0)), (0, 0));
    let e = tree(&[]);
    assert!(e.is_empty());
    assert_eq!(e.argmin(), 0);
    assert_eq!(argmin(&[], Load::outstanding), 0);
}

#[test]
fn set_all_rebuilds_every_node() {
    let mut t = tree(&[1, 2, 3, 4, 5]);
    t.set_all([6, 5, 4, 4, 9].into_iter());
    assert_eq!(t.argmin(), 2);
    check(&t);
}

fn load(waiting: u32, running: u32, kv_tokens: u64, backlog: u64) -> Load {
    Load {
        waiting,
        running,
        decoding: running,
        kv_tokens,
        prefill_backlog: backlog,
    }
}

#[test]
fn board_answers_follow_its_reports() {
    let mut b = Board::new(
        vec![load(2, 1, 100, 0), load(0, 3, 50, 10), load(1, 1, 80, 0)],
        Indexes::ALL,
    );
    let (loads, ix) = b.view();
    assert_eq!(loads.len(), 3);
    // Outstanding 3 3 2 → 2; KV load 100 60 80 → 1; Σ outstanding 8.
    assert_eq!(answers(ix), (Some(2), Some(1), Some(8)));
    // Replica 0 empties: outstanding 0 3 2 → 0, KV 0 60 80 → 0, Σ 5.
    b.set(0, load(0, 0, 0, 0));
    assert_eq!(b.view().0[0], load(0, 0, 0, 0));
    assert_eq!(answers(b.view().1), (Some(0), Some(0), Some(5)));
    // The same report again changes nothing.
    b.set(0, load(0, 0, 0, 0));
    assert_eq!(answers(b.view().1), (Some(0), Some(0), Some(5)));
    // A refresh of every report: outstanding 4 1 1 → 1 (tie, lowest), KV 5 5 5 → 0, Σ 6.
    b.set_all([load(4, 0, 5, 0), load(0, 1, 5, 0), load(1, 0, 0, 5)].into_iter());
    assert_eq!(answers(b.view().1), (Some(1), Some(0), Some(6)));
}

fn answers(ix: &LoadIndex) -> (Option<usize>, Option<usize>, Option<u64>) {
    (ix.least_outstanding(), ix.least_kv_load(), ix.total_outstanding())
}

#[test]
fn a_board_keeps_only_the_indexes_asked_for() {
    // Only the KV-load tree: the other questions have no answer (the view
    // scans), and updates keep the one kept current: KV 10 20 → 0, then 30 20 → 1.
    let wants = Indexes {
        least_kv_load: true,
        ..Indexes::NONE
    };
    let mut b = Board::new(vec![load(0, 1, 10, 0), load(5, 0, 20, 0)], wants);
    assert_eq!(answers(b.view().1), (None, Some(0), None));
    b.set(0, load(0, 1, 30, 0));
    assert_eq!(answers(b.view().1), (None, Some(1), None));
    // No index at all: reports are still stored.
    let mut b = Board::new(vec![load(0, 1, 10, 0)], Indexes::NONE);
    b.set(0, load(3, 0, 0, 0));
    assert_eq!(b.view().0[0], load(3, 0, 0, 0));
    assert_eq!(answers(b.view().1), (None, None, None));
    // The index covers every replica on the board.
    assert_eq!((b.view().1.len(), b.view().1.is_empty()), (1, false));
    let empty = Board::new(Vec::new(), Indexes::ALL);
    assert_eq!((empty.view().1.len(), empty.view().1.is_empty()), (0, true));
}

proptest! {
    /// Any sequence of updates, with few distinct keys so that ties are
    /// common: the tree answers what a linear scan answers, after each one.
    #[test]
    fn tree_agrees_with_a_scan(
        n in 1usize..40,
        ops in prop::collection::vec((0usize..40, 0u64..4), 0..200),
    ) {
        let mut keys = vec![2u64; n];
        let mut t = tree(&keys);
        for (i, k) in ops {
            let i = i % n;
            keys[i] = k;
            t.set(i, k);
            let scan = keys.iter().enumerate().fold((0, u64::MAX), |b, (j, &v)| if v < b.1 { (j, v) } else { b }).0;
            prop_assert_eq!(t.argmin(), scan);
        }
        check(&t);
    }

    /// The board's three answers against scans of its reports, through
    /// single updates and whole refreshes.
    #[test]
    fn board_agrees_with_scans(
        n in 1usize..24,
        ops in prop::collection::vec((0usize..24, 0u32..3, 0u32..3, 0u64..3, 0u64..3, any::<bool>()), 0..120),
    ) {
        let mut loads = vec![Load::default(); n];
        let mut b = Board::new(loads.clone(), Indexes::ALL);
        for (i, w, r, kv, backlog, refresh) in ops {
            let l = load(w, r, kv, backlog);
            if refresh {
                // Every report moves by the same update, rotated.
                for (j, x) in loads.iter_mut().enumerate() {
                    *x = load((w + j as u32) % 3, r, (kv + j as u64) % 3, backlog);
                }
                b.set_all(loads.iter().copied());
            } else {
                loads[i % n] = l;
                b.set(i % n, l);
            }
            let (view, ix) = b.view();
            prop_assert_eq!(view, &loads[..]);
            prop_assert_eq!(ix.least_outstanding(), Some(argmin(view, Load::outstanding)));
            prop_assert_eq!(ix.least_kv_load(), Some(argmin(view, Load::kv_load)));
            prop_assert_eq!(ix.total_outstanding(), Some(view.iter().map(Load::outstanding).sum::<u64>()));
        }
    }
}

#[test]
fn a_lazy_tree_reads_marked_keys_at_the_next_question_only() {
    let mut keys = [5u64, 3, 4];
    // Every leaf starts marked: 5 3 4 → 1.
    let mut t = LazyTree::new(3);
    assert_eq!(t.argmin(|i| keys[i]), 1);
    // Leaf 2 drops to 1 but is not marked: the tree still answers 1.
    keys[2] = 1;
    assert_eq!(t.argmin(|i| keys[i]), 1);
    // Marked (twice: read once): 5 3 1 → 2.
    t.mark(2);
    t.mark(2);
    assert_eq!(t.argmin(|i| keys[i]), 2);
    // Leaves 0 and 2 change, both marked: 1 3 1, a tie → 0.
    keys[0] = 1;
    t.mark(0);
    assert_eq!(t.argmin(|i| keys[i]), 0);
    let reads = std::cell::Cell::new(0);
    let _ = t.argmin(|i| {
        reads.set(reads.get() + 1);
        keys[i]
    });
    assert_eq!(reads.get(), 0, "nothing marked, nothing read");
}

#[test]
fn min_is_the_smallest_key_with_its_lowest_index() {
    let mut t = tree(&[9, 4, 6, 4]);
    assert_eq!(t.min(), Some((4, 1)));
    t.set(1, 8);
    assert_eq!(t.min(), Some((4, 3)));
    t.set(3, u64::MAX);
    assert_eq!(t.min(), Some((6, 2)));
    assert_eq!(tree(&[]).min(), None);
    assert_eq!(tree(&[u64::MAX]).min(), Some((u64::MAX, 0)));
}

proptest! {
    /// Used as the engine's queue of iteration ends (one key per replica,
    /// `u64::MAX` when idle; take the minimum, then give that replica its
    /// next end), the tree yields the order a min-heap of `(time, index)`
    /// pairs does.
    #[test]
    fn as_an_event_queue_it_pops_in_time_then_index_order(
        first in proptest::collection::vec(0u64..50, 1..12),
        steps in proptest::collection::vec((0u64..20, any::<bool>()), 0..60),
    ) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut t = tree(&first);
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> =
            first.iter().enumerate().map(|(i, &k)| Reverse((k, i))).collect();
        for (delay, goes_idle) in steps {
            let Some(Reverse((now, i))) = heap.pop() else { break };
            prop_assert_eq!(t.min(), Some((now, i)));
            if goes_idle {
                t.set(i, u64::MAX);
            } else {
                t.set(i, now + delay);
                heap.push(Reverse((now + delay, i)));
            }
        }
        let rest = heap.into_sorted_vec().into_iter().rev().map(|r| r.0).next();
        prop_assert_eq!(t.min().filter(|m| m.0 != u64::MAX), rest);
    }
}
