//! The request slab: every request a replica holds, in a slot that is
//! reused once the request leaves.
//!
//! A slot holds the hot per-request state ([`Req`], `Copy`, touched by every
//! scheduling operation) and, in separate vectors, the cold parts read only
//! at admission or when the request is recorded: its prefix identity (not
//! `Copy`) and its (session, program) ids.
//!
//! Invariants (checked by [`RequestSlab::check`]):
//! - a slot is either in use (phase ≠ [`Phase::Free`]) or on the free list,
//!   never both, and no slot is on the free list twice;
//! - a free slot holds no prefix (its `Arc` of block ids is dropped at once).

use crate::units::Nanos;
use crate::workload::{Prefix, RequestSpec};

/// Index of a request in the replica's slab.
pub type Slot = u32;

/// "Not yet" for a timestamp.
pub(crate) const NONE: Nanos = Nanos::MAX;

/// Where a request is in its life on this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Free,
    Waiting,
    Prefilling,
    Decoding,
    /// Preempted by swap: KV on the host, waiting to be swapped back in.
    Swapped,
}

/// The numbers of a [`RequestSpec`] the replica keeps per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub id: u64,
    pub arrival: Nanos,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    pub client: u32,
    pub priority: u32,
}

impl Meta {
    pub fn of(s: &RequestSpec) -> Meta {
        Meta {
            id: s.id,
            arrival: s.arrival,
            prompt_tokens: s.prompt_tokens,
            output_tokens: s.output_tokens,
            client: s.client,
            priority: s.priority,
        }
    }
}

/// A request's (session, program) ids.
pub(crate) type Identity = (Option<u64>, Option<u64>);

/// The hot per-request state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Req {
    pub spec: Meta,
    pub phase: Phase,
    pub scheduled: Nanos,
    pub first_token: Nanos,
    /// Time of the last emitted token (kept while not decoding).
    pub last_token: Nanos,
    /// Tokens generated (while decoding: at decode entry, `g0`).
    pub generated: u32,
    /// KV entries the current prefill must reach (prompt + generated).
    pub prefill_target: u32,
    /// KV entries written so far by the current prefill (while decoding:
    /// `kv0`; while swapped: the KV length on the host).
    pub prefilled: u32,
    /// Blocks owned while prefilling (and throughout in reserved mode).
    pub blocks: u32,
    /// Leading prefix units this request references in the cache, and their blocks.
    pub shared_units: u32,
    pub shared_blocks: u32,
    /// Prompt tokens served from the prefix cache at its first admission.
    pub cached_tokens: u32,
    /// Blocks of a retained host copy (FastSwitch KV reuse).
    pub host_copy: u32,
    pub preemptions: u32,
    /// Decode step counter at decode entry (`s0`).
    pub step0: u64,
    /// Time of decode entry (the first token of this decode run).
    pub decode_entry: Nanos,
}

impl Req {
    /// A request that has not been scheduled yet.
    pub fn waiting(spec: &RequestSpec) -> Req {
        Req {
            spec: Meta::of(spec),
            phase: Phase::Waiting,
            scheduled: NONE,
            first_token: NONE,
            last_token: NONE,
            generated: 0,
            prefill_target: spec.prompt_tokens,
            prefilled: 0,
            blocks: 0,
            shared_units: 0,
            shared_blocks: 0,
            cached_tokens: 0,
            host_copy: 0,
            preemptions: 0,
            step0: 0,
            decode_entry: 0,
        }
    }
}

/// The slots of one replica.
#[derive(Debug, Default)]
pub(crate) struct RequestSlab {
    reqs: Vec<Req>,
    prefixes: Vec<Prefix>,
    identity: Vec<Identity>,
    free: Vec<Slot>,
}

impl RequestSlab {
    /// Stores a request in a free slot (or a new one) and returns it.
    pub fn insert(&mut self, req: Req, prefix: Prefix, identity: Identity) -> Slot {
        debug_assert!(req.phase != Phase::Free);
        match self.free.pop() {
            Some(s) => {
                let i = s as usize;
                self.reqs[i] = req;
                self.prefixes[i] = prefix;
                self.identity[i] = identity;
                s
            }
            None => {
                self.reqs.push(req);
                self.prefixes.push(prefix);
                self.identity.push(identity);
                (self.reqs.len() - 1) as Slot
            }
        }
    }

    /// Frees a slot, returning its prefix (the caller may hand it on).
    pub fn remove(&mut self, slot: Slot) -> Prefix {
        let i = slot as usize;
        debug_assert!(self.reqs[i].phase != Phase::Free, "freeing a free slot");
        self.reqs[i].phase = Phase::Free;
        self.free.push(slot);
        std::mem::take(&mut self.prefixes[i])
    }

    /// Loads a slot's hot state (a hint).
    pub fn prefetch(&self, slot: Slot) {
        crate::prefetch::prefetch_at(&self.reqs, slot as usize);
    }

    pub fn get(&self, slot: Slot) -> &Req {
        &self.reqs[slot as usize]
    }

    pub fn get_mut(&mut self, slot: Slot) -> &mut Req {
        &mut self.reqs[slot as usize]
    }

    pub fn prefix(&self, slot: Slot) -> &Prefix {
        &self.prefixes[slot as usize]
    }

    pub fn identity(&self, slot: Slot) -> Identity {
        self.identity[slot as usize]
    }

    /// Requests in use.
    pub fn len(&self) -> usize {
        self.reqs.len() - self.free.len()
    }

    pub fn check(&self) -> Result<(), String> {
        let mut on_free_list = vec![false; self.reqs.len()];
        for &s in &self.free {
            let i = s as usize;
            if on_free_list[i] {
                return Err(format!("slot {s} is on the free list twice"));
            }
            on_free_list[i] = true;
            if self.reqs[i].phase != Phase::Free {
                return Err(format!(
                    "slot {s} is on the free list in phase {:?}",
                    self.reqs[i].phase
                ));
            }
            if !matches!(self.prefixes[i], Prefix::None) {
                return Err(format!("free slot {s} still holds a prefix"));
            }
        }
        for (i, r) in self.reqs.iter().enumerate() {
            if r.phase == Phase::Free && !on_free_list[i] {
                return Err(format!("slot {i} is free but not on the free list"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: u64) -> RequestSpec {
        RequestSpec::new(id, 0, 10, 3)
    }

    #[test]
    fn freed_slots_are_reused_last_freed_first() {
        let mut slab = RequestSlab::default();
        let a = slab.insert(Req::waiting(&spec(1)), Prefix::None, (None, None));
        let b = slab.insert(Req::waiting(&spec(2)), Prefix::None, (Some(7), None));
        let c = slab.insert(Req::waiting(&spec(3)), Prefix::None, (None, None));
        assert_eq!((a, b, c), (0, 1, 2));
        slab.remove(a);
        slab.remove(c);
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.insert(Req::waiting(&spec(4)), Prefix::None, (None, None)), c);
        assert_eq!(
            slab.insert(Req::waiting(&spec(5)), Prefix::None, (None, Some(9))),
            a
        );
        assert_eq!(slab.insert(Req::waiting(&spec(6)), Prefix::None, (None, None)), 3);
        assert_eq!(slab.get(a).spec.id, 5);
        assert_eq!(slab.identity(a), (None, Some(9)));
        assert_eq!(slab.identity(b), (Some(7), None));
        assert_eq!(slab.len(), 4);
        slab.check().unwrap();
    }

    #[test]
    fn remove_hands_back_the_prefix_and_leaves_none() {
        let mut slab = RequestSlab::default();
        let p = Prefix::Group { group: 3, tokens: 32 };
        let s = slab.insert(Req::waiting(&spec(1)), p.clone(), (None, None));
        assert_eq!(slab.prefix(s), &p);
        assert_eq!(slab.remove(s), p);
        assert_eq!(slab.get(s).phase, Phase::Free);
        slab.check().unwrap();
    }

    #[test]
    fn check_catches_a_slot_in_use_on_the_free_list() {
        let mut slab = RequestSlab::default();
        let s = slab.insert(Req::waiting(&spec(1)), Prefix::None, (None, None));
        slab.remove(s);
        slab.check().unwrap();
        // Reviving the slot without taking it off the free list.
        slab.get_mut(s).phase = Phase::Waiting;
        let e = slab.check().unwrap_err();
        assert!(e.contains("on the free list in phase Waiting"), "{e}");
        slab.get_mut(s).phase = Phase::Free;
        slab.free.push(s);
        assert!(slab.check().unwrap_err().contains("twice"));
        slab.free.pop();
        slab.free.pop();
        assert!(slab.check().unwrap_err().contains("not on the free list"));
    }
}
