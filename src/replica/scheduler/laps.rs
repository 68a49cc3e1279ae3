//! Length-aware prefill scheduling (LAPS-style): short prompts are not left
//! waiting behind long ones. Under FCFS a 16k-token prompt occupies the
//! prefill budget for many iterations (or, without chunking, one very long
//! one) and every short request queued behind it waits; length-aware
//! schedulers keep long prefills in a separate queue and serve short ones
//! first (cf. Sarathi-Serve's analysis of prefill–decode interference and
//! the shortest-job-first line of work such as Fu et al. 2024 "Efficient
//! LLM Scheduling by Learning to Rank").
//!
//! On top of the chunked, decode-first iteration (see `chunked.rs`):
//! 1. decodes and continuing *short* prefills first;
//! 2. waiting short requests (prompt ≤ `scheduler.laps_threshold`) are
//!    admitted ahead of long ones, FCFS among them, looking at the first
//!    `scheduler.window` waiting requests;
//! 3. continuing long prefills and then new long ones take what budget is left.
//!
//! **Batching window** (`scheduler.laps_window` seconds, default 0): when
//! nothing else is running, short prefills are held until the oldest has
//! waited that long or enough have queued to fill the budget, so they run as
//! one batch rather than one iteration each.

use super::chunked::admit_chunk;
use super::{Policy, Scheduler, promote_min_by, resume_swapped};
use crate::replica::state::{ReplicaState, Slot};
use crate::units::Nanos;

pub struct Laps {
    p: Policy,
}

impl Laps {
    pub fn new(p: Policy) -> Self {
        Laps { p }
    }
}

fn is_short(st: &ReplicaState, p: &Policy, slot: Slot) -> bool {
    st.view(slot).prompt_tokens <= p.laps_threshold
}

impl Scheduler for Laps {
    fn waiting_indexes(&self) -> super::WaitIndexes {
        super::WaitIndexes::for_policy(&self.p)
    }

    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        let p = &self.p;
        resume_swapped(st, p);
        st.make_room_for_decode();
        st.add_decode_step();
        let mut budget = (p.limits.token_budget as u64).saturating_sub(st.batch_tokens());
        let mut held = false;
        // Continuing prefills: short ones first, then long ones (admission order within each).
        for want_short in [true, false] {
            let mut i = 0;
            while budget > 0 && i < st.prefilling().len() {
                let slot = st.prefilling()[i];
                i += 1;
                if is_short(st, p, slot) != want_short {
                    continue;
                }
                let chunk = (st.prefill_remaining(slot) as u64).min(budget) as u32;
                st.add_chunk(slot, chunk);
                budget -= chunk as u64;
            }
            if want_short {
                (budget, held) = self.admit_short(st, budget, now);
            }
        }
        // Long requests get what is left, FCFS (short ones the batching
        // window holds back stay queued: the earliest long one in the
        // window goes to the head, and admission stops at a short one).
        loop {
            if held {
                promote_min_by(st, p.window, |st, s| is_short(st, p, s));
                if st.peek_waiting().is_some_and(|s| is_short(st, p, s)) {
                    break;
                }
            }
            match admit_chunk(st, p, budget, now) {
                Some(left) => budget = left,
                None => break,
            }
        }
    }
}

impl Laps {
    /// Admits short requests; returns the budget left and whether the
    /// batching window holds them back.
    fn admit_short(&self, st: &mut ReplicaState, mut budget: u64, now: Nanos) -> (u64, bool) {
        let p = &self.p;
        if p.laps_window > 0 && st.batch_seqs() == 0 {
            // Batching window: wait for company unless the oldest short has waited enough.
            let (mut oldest, mut tokens) = (Nanos::MAX, 0u64);
            for slot in st.waiting().take(p.window) {
                if is_short(st, p, slot) {
                    oldest = oldest.min(st.view(slot).arrival);
                    tokens += st.prefill_remaining(slot) as u64;
                }
            }
            if oldest != Nanos::MAX && tokens < budget && now < oldest.saturating_add(p.laps_window) {
                st.wait_until(oldest + p.laps_window);
                return (budget, true);
            }
        }
        loop {
            // The earliest short request in the window goes to the head.
            promote_min_by(st, p.window, |st, s| !is_short(st, p, s));
            match st.peek_waiting() {
                Some(s) if is_short(st, p, s) => {}
                _ => return (budget, false),
            }
            match admit_chunk(st, p, budget, now) {
                Some(left) => budget = left,
                None => return (budget, false),
            }
        }
    }
}
