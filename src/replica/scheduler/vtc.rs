//! Virtual Token Counter fair scheduling (Sheng et al., OSDI'24 "Fairness
//! in Serving Large Language Models"): each client has a counter of the
//! service it received, `w_in` per prompt token admitted plus `w_out` per
//! token generated (the paper's weighted tokens; defaults 1 and 2); the
//! next request admitted is the oldest one of the *least-served* client
//! with waiting requests. A client that was idle is lifted to the smallest
//! counter among clients with work, so it cannot bank credit while away
//! (Algorithm 2's counter lift). Batches are the chunked, decode-first
//! iterations of `chunked.rs`. When memory runs out, the running request of
//! the *most-served* client is preempted (newest first), so the heavy
//! client pays for memory pressure — the "with preemption" variant.
//! Per step: O(clients) for the counters; the choice scans at most
//! `scheduler.window` waiting requests.

use super::chunked::{admit_chunk, decode_and_continue};
use super::{Policy, Scheduler, promote_min_by};
use crate::replica::state::ReplicaState;
use crate::units::Nanos;

pub struct Vtc {
    p: Policy,
    counters: Vec<f64>,
}

impl Vtc {
    pub fn new(p: Policy) -> Self {
        Vtc {
            p,
            counters: Vec::new(),
        }
    }

    fn counter(&mut self, client: u32) -> &mut f64 {
        let c = client as usize;
        if self.counters.len() <= c {
            self.counters.resize(c + 1, 0.0);
        }
        &mut self.counters[c]
    }

    /// Preempts from the most-served client until the decode step fits.
    fn make_room(&mut self, st: &mut ReplicaState, now: Nanos) {
        while st.num_decoding() > 0 && !st.decode_fits() {
            let counters = &self.counters;
            let served = |s| counters.get(st.view(s).client as usize).copied().unwrap_or(0.0);
            // Most-served client; newest of its requests (ties keep the later one).
            let victim = st
                .running()
                .iter()
                .copied()
                .max_by(|&a, &b| served(a).total_cmp(&served(b)));
            match victim {
                Some(v) => st.preempt(v, now),
                None => break,
            }
        }
    }
}

impl Scheduler for Vtc {
    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        // Charge the tokens the previous decode step generated.
        let w_out = self.p.vtc_weights.1;
        for (c, &n) in st.decoding_by_client().iter().enumerate() {
            *self.counter(c as u32) += w_out * n as f64;
        }
        // Counter lift for clients with waiting requests and none decoding.
        let active_min = st
            .decoding_by_client()
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(c, _)| self.counters.get(c).copied().unwrap_or(0.0))
            .fold(f64::INFINITY, f64::min);
        if active_min.is_finite() {
            for slot in st.waiting().take(self.p.window) {
                let c = st.view(slot).client;
                if st.decoding_by_client().get(c as usize).is_none_or(|&n| n == 0) {
                    let x = self.counter(c);
                    *x = x.max(active_min);
                }
            }
        }
        self.make_room(st, now);
        let mut budget = decode_and_continue(st, &self.p, now);
        loop {
            let counters = &self.counters;
            promote_min_by(st, self.p.window, |st, s| {
                let x = counters.get(st.view(s).client as usize).copied().unwrap_or(0.0);
                // Least-served client first; ties keep queue order.
                (x * 1e6) as i128
            });
            let Some(head) = st.peek_waiting() else { break };
            let v = st.view(head);
            match admit_chunk(st, &self.p, budget, now) {
                Some(left) => {
                    budget = left;
                    *self.counter(v.client) += self.p.vtc_weights.0 * v.prompt_tokens as f64;
                }
                None => break,
            }
        }
    }
}
