//! The decoding set: every sequence that emits one token per decode step,
//! advanced together in O(1) per step whatever its size.
//!
//! The set keeps a step counter `S` and, for each member, the step `s0` at
//! which it joined and its KV length `kv0` and generated count `g0` then
//! (stored by the caller in its [`Req`](super::slab::Req)). At step `S` a
//! member's KV length is `kv0 + S − s0`. What a step needs is kept as
//! running sums, updated only when a member joins or leaves:
//! - `kv_sum` = Σ KV lengths (decode attention reads these);
//! - new blocks needed = members whose KV length is a multiple of the block
//!   size: `(kv0 − s0 + S) mod B = 0`, so a count per residue
//!   `(kv0 − s0) mod B` answers it in O(1);
//! - finishes come from a min-heap keyed by the step at which
//!   `g0 + S − s0` reaches the requested output length;
//! - inter-token gaps: members whose last token came at the same time form
//!   a cohort; a step records one gap per cohort (weight = its size).
//!
//! Invariants (checked by [`DecodeSet::check`] against the members'
//! `(kv0, s0, client)`): `len`, `kv_sum`, the residue counts, the per-client
//! counts and the cohort sizes all equal what the members give, and the
//! finish heap holds exactly one entry per member.

use super::slab::Slot;
use crate::metrics::Metrics;
use crate::units::Nanos;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What the set needs of a sequence when it joins or leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    /// KV length at decode entry (`kv0`).
    pub kv0: u32,
    /// Decode step at decode entry (`s0`).
    pub step0: u64,
    pub client: u32,
}

#[derive(Debug)]
pub(crate) struct DecodeSet {
    block_size: u32,
    step: u64,
    len: u32,
    kv_sum: u64,
    by_client: Vec<u32>,
    residue: Vec<u32>,
    finish_heap: BinaryHeap<Reverse<(u64, Slot)>>,
    /// (time of the members' last token, members), oldest first.
    cohorts: Vec<(Nanos, u32)>,
    last_step_end: Nanos,
}

impl DecodeSet {
    pub fn new(block_size: u32) -> DecodeSet {
        DecodeSet {
            block_size,
            step: 0,
            len: 0,
            kv_sum: 0,
            by_client: Vec::new(),
            residue: vec![0; block_size as usize],
            finish_heap: BinaryHeap::new(),
            cohorts: Vec::new(),
            last_step_end: 0,
        }
    }

    /// Loads what a step's end reads first: the finish heap's top, the
    /// residue count of the next step, the cohorts (a hint).
    pub fn prefetch_working_set(&self) {
        crate::prefetch::prefetch_at(self.finish_heap.as_slice(), 0);
        let b = self.block_size as u64;
        crate::prefetch::prefetch_at(&self.residue, ((b - (self.step + 1) % b) % b) as usize);
        crate::prefetch::prefetch_at(&self.cohorts, 0);
    }

    /// The decode step counter `S` (steps completed so far).
    pub fn step(&self) -> u64 {
        self.step
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    /// Σ KV lengths of the members now.
    pub fn kv_sum(&self) -> u64 {
        self.kv_sum
    }

    /// Members per client id (index = client).
    pub fn by_client(&self) -> &[u32] {
        &self.by_client
    }

    /// A member's KV length now.
    pub fn kv_of(&self, kv0: u32, step0: u64) -> u32 {
        kv0 + (self.step - step0) as u32
    }

    /// Tokens a member has generated in this decode run.
    pub fn steps_since(&self, step0: u64) -> u32 {
        (self.step - step0) as u32
    }

    /// When a member's last token came: the last step's end if it took part
    /// in one, else its decode entry (prefill end or swap-in).
    pub fn last_token_of(&self, step0: u64, decode_entry: Nanos) -> Nanos {
        if self.step > step0 {
            self.last_step_end
        } else {
            decode_entry
        }
    }

    fn residue_of(&self, kv0: u32, step0: u64) -> usize {
        let b = self.block_size as u64;
        ((kv0 as u64 % b + b - step0 % b) % b) as usize
    }

    /// Members whose KV fills a block this step: each needs a new block
    /// for the next token (paged memory).
    pub fn blocks_needed(&self) -> u64 {
        let b = self.block_size as u64;
        self.residue[((b - self.step % b) % b) as usize] as u64
    }

    /// Adds `slot` with KV length `kv0` and `remaining` tokens still to
    /// generate; its last token came at `last`. Returns its `s0`.
    pub fn join(&mut self, slot: Slot, kv0: u32, client: u32, remaining: u32, last: Nanos) -> u64 {
        let step = self.step;
        let res = self.residue_of(kv0, step);
        self.residue[res] += 1;
        self.len += 1;
        self.kv_sum += kv0 as u64;
        let c = client as usize;
        if self.by_client.len() <= c {
            self.by_client.resize(c + 1, 0);
        }
        self.by_client[c] += 1;
        self.finish_heap.push(Reverse((step + remaining as u64, slot)));
        match self.cohorts.iter_mut().rev().find(|c| c.0 == last) {
            Some(c) => c.1 += 1,
            None => self.cohorts.push((last, 1)),
        }
        step
    }

    /// Takes a member out before it finishes (preemption, hand-off). Its
    /// cohort is the one of `last` ([`DecodeSet::last_token_of`]).
    pub fn leave(&mut self, slot: Slot, m: Member, last: Nanos) {
        self.drop_sums(m);
        self.finish_heap.retain(|&Reverse((_, s))| s != slot);
        self.remove_from_cohort(last);
    }

    fn drop_sums(&mut self, m: Member) {
        let kv = self.kv_of(m.kv0, m.step0);
        let res = self.residue_of(m.kv0, m.step0);
        self.residue[res] -= 1;
        self.len -= 1;
        self.kv_sum -= kv as u64;
        self.by_client[m.client as usize] -= 1;
    }

    fn remove_from_cohort(&mut self, time: Nanos) {
        if let Some(i) = self.cohorts.iter().position(|c| c.0 == time) {
            self.cohorts[i].1 -= 1;
            if self.cohorts[i].1 == 0 {
                self.cohorts.remove(i);
            }
        } else {
            debug_assert!(false, "decoding request without a cohort");
        }
    }

    /// A decode step ended at `now`: records one inter-token gap per cohort
    /// and advances every member by one token (they now form one cohort).
    /// Members that reached their output length are then taken with
    /// [`DecodeSet::pop_finished`].
    pub fn complete_step(&mut self, now: Nanos, metrics: &mut Metrics) {
        for &(t, n) in &self.cohorts {
            metrics.record_itl(now - t, n);
        }
        self.cohorts.clear();
        if self.len > 0 {
            self.cohorts.push((now, self.len));
        }
        self.last_step_end = now;
        self.kv_sum += self.len as u64;
        self.step += 1;
    }

    /// The next member whose last step finished it, if any, in order of
    /// finishing step then slot. The caller passes its [`Member`] to
    /// [`DecodeSet::remove_finished`].
    pub fn pop_finished(&mut self) -> Option<Slot> {
        let &Reverse((at, slot)) = self.finish_heap.peek()?;
        if at > self.step {
            return None;
        }
        self.finish_heap.pop();
        Some(slot)
    }

    /// Takes out a member [`DecodeSet::pop_finished`] returned (its last
    /// token came from the step that just ended).
    pub fn remove_finished(&mut self, m: Member) {
        self.drop_sums(m);
        let now = self.last_step_end;
        self.remove_from_cohort(now);
    }

    /// Checks the running sums against the members' entries.
    pub fn check(&self, members: impl Iterator<Item = Member>) -> Result<(), String> {
        let mut len = 0u32;
        let mut kv_sum = 0u64;
        let mut residue = vec![0u32; self.residue.len()];
        let mut by_client = vec![0u32; self.by_client.len()];
        for m in members {
            if m.step0 > self.step {
                return Err(format!(
                    "member joined at step {} after step {}",
                    m.step0, self.step
                ));
            }
            len += 1;
            kv_sum += self.kv_of(m.kv0, m.step0) as u64;
            residue[self.residue_of(m.kv0, m.step0)] += 1;
            match by_client.get_mut(m.client as usize) {
                Some(n) => *n += 1,
                None => return Err(format!("client {} decoding but never counted", m.client)),
            }
        }
        if len != self.len || kv_sum != self.kv_sum {
            return Err(format!(
                "decode sums: {len} seqs / {kv_sum} KV tokens recomputed, {} / {} kept",
                self.len, self.kv_sum
            ));
        }
        if residue != self.residue {
            return Err(format!(
                "decode residues {residue:?} recomputed, {:?} kept",
                self.residue
            ));
        }
        if by_client != self.by_client {
            return Err(format!(
                "decoding by client {by_client:?} recomputed, {:?} kept",
                self.by_client
            ));
        }
        if self.finish_heap.len() != self.len as usize {
            return Err(format!(
                "finish heap holds {} entries, {} decoding",
                self.finish_heap.len(),
                self.len
            ));
        }
        if let Some(c) = self.cohorts.iter().find(|c| c.1 == 0) {
            return Err(format!("an empty cohort (last token at {})", c.0));
        }
        let cohort_total: u32 = self.cohorts.iter().map(|c| c.1).sum();
        if cohort_total != self.len {
            return Err(format!(
                "cohorts hold {cohort_total} sequences, {} decoding",
                self.len
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::scenario::config::{MetricsConfig, SloConfig};

    fn metrics() -> Metrics {
        Metrics::new(1, &MetricsConfig::default(), &SloConfig::default())
    }

    /// (gaps recorded, Σ gaps ns).
    fn itl(m: &Metrics) -> (u64, u128) {
        (m.itl_histogram().count(), m.itl_histogram().sum())
    }

    fn member(set: &DecodeSet, kv0: u32, client: u32) -> Member {
        Member {
            kv0,
            step0: set.step(),
            client,
        }
    }

    #[test]
    fn sums_follow_joins_steps_and_finishes() {
        let mut m = metrics();
        let mut set = DecodeSet::new(4);
        // Slot 0: 6 KV entries, 2 tokens to go; slot 1: 8 entries, 1 to go.
        let a = member(&set, 6, 0);
        let b = member(&set, 8, 2);
        set.join(0, 6, 0, 2, 100);
        set.join(1, 8, 2, 1, 100);
        assert_eq!((set.len(), set.kv_sum()), (2, 14));
        assert_eq!(set.by_client(), &[1, 0, 1]);
        // 8 fills two blocks exactly; 6 does not.
        assert_eq!(set.blocks_needed(), 1);
        set.check([a, b].into_iter()).unwrap();
        set.complete_step(150, &mut m);
        assert_eq!(set.kv_sum(), 16);
        // Slot 1 finished after one step; slot 0 has one more to go.
        assert_eq!(set.pop_finished(), Some(1));
        assert_eq!(set.pop_finished(), None);
        set.remove_finished(b);
        assert_eq!((set.len(), set.kv_sum()), (1, 7));
        assert_eq!(set.kv_of(6, 0), 7);
        // 7 → 8 at the next step: slot 0 needs a block now? 7 mod 4 ≠ 0.
        assert_eq!(set.blocks_needed(), 0);
        set.check([a].into_iter()).unwrap();
        set.complete_step(200, &mut m);
        assert_eq!(set.kv_of(6, 0), 8);
        assert_eq!(set.blocks_needed(), 1);
        assert_eq!(set.pop_finished(), Some(0));
        set.remove_finished(a);
        assert_eq!((set.len(), set.kv_sum()), (0, 0));
        set.check(std::iter::empty()).unwrap();
    }

    /// A block size that does not divide 2⁶⁴ and a member joining after
    /// step 0: 6-token blocks, joins at step 5 with 7 KV entries. Its KV at
    /// step S is 7 + S − 5, a multiple of 6 at S = 10 and 16 only.
    #[test]
    fn block_boundaries_follow_the_join_step_for_any_block_size() {
        let mut m = metrics();
        let mut set = DecodeSet::new(6);
        for t in 1..=5 {
            set.complete_step(t, &mut m);
        }
        assert_eq!(set.step(), 5);
        set.join(0, 7, 0, 20, 5);
        let mut needs = Vec::new();
        for t in 6..=17 {
            if set.blocks_needed() == 1 {
                needs.push(set.step());
            }
            set.complete_step(t, &mut m);
        }
        assert_eq!(needs, vec![10, 16]);
        set.check(
            [Member {
                kv0: 7,
                step0: 5,
                client: 0,
            }]
            .into_iter(),
        )
        .unwrap();
    }

    #[test]
    fn one_gap_per_cohort_weighted_by_its_size() {
        let mut m = metrics();
        let mut set = DecodeSet::new(16);
        set.join(0, 10, 0, 5, 100);
        set.join(1, 10, 0, 5, 100);
        set.join(2, 10, 0, 5, 130);
        set.complete_step(200, &mut m);
        // Gaps of 100 (×2) and 70 (×1).
        assert_eq!(itl(&m), (3, 270));
        set.complete_step(260, &mut m);
        assert_eq!(itl(&m), (6, 270 + 3 * 60));
    }

    #[test]
    fn leaving_removes_the_member_from_its_cohort_and_the_heap() {
        let mut m = metrics();
        let mut set = DecodeSet::new(16);
        set.join(0, 10, 1, 5, 100);
        let b = member(&set, 20, 1);
        set.join(1, 20, 1, 1, 120);
        // Slot 1 leaves before any step: its cohort is its decode entry.
        assert_eq!(set.last_token_of(b.step0, 120), 120);
        set.leave(1, b, 120);
        set.complete_step(200, &mut m);
        assert_eq!(itl(&m), (1, 100));
        // Its finish entry went with it: nothing finishes at step 1.
        assert_eq!(set.pop_finished(), None);
        assert_eq!(set.by_client(), &[0, 1]);
        set.check(
            [Member {
                kv0: 10,
                step0: 0,
                client: 1,
            }]
            .into_iter(),
        )
        .unwrap();
        // After a step, a member's last token is the step's end.
        assert_eq!(set.last_token_of(0, 100), 200);
    }

    #[test]
    fn a_step_with_nobody_decoding_leaves_no_cohort() {
        let mut m = metrics();
        let mut set = DecodeSet::new(16);
        set.complete_step(100, &mut m);
        set.check(std::iter::empty()).unwrap();
        // A member joining after it is timed from its own entry (150).
        set.join(0, 10, 0, 5, 150);
        set.complete_step(200, &mut m);
        assert_eq!(itl(&m), (1, 50));
    }

    #[test]
    fn check_catches_a_member_the_sums_do_not_count() {
        let mut set = DecodeSet::new(4);
        set.join(0, 5, 0, 3, 0);
        let a = Member {
            kv0: 5,
            step0: 0,
            client: 0,
        };
        let e = set.check([a, a].into_iter()).unwrap_err();
        assert!(e.contains("decode sums: 2 seqs"), "{e}");
        let e = set.check([Member { kv0: 6, ..a }].into_iter()).unwrap_err();
        assert!(e.contains("6 KV tokens recomputed"), "{e}");
        // Same count and KV sum, other residues.
        set.join(1, 7, 0, 3, 0);
        let (b, c) = (Member { kv0: 7, ..a }, Member { kv0: 6, ..a });
        set.check([a, b].into_iter()).unwrap();
        let e = set.check([c, c].into_iter()).unwrap_err();
        assert!(e.contains("decode residues"), "{e}");
        let e = set.check([a, Member { client: 1, ..b }].into_iter()).unwrap_err();
        assert!(e.contains("never counted"), "{e}");
    }
}
