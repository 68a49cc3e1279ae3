//! Virtual Token Counter fair scheduling (Sheng et al., OSDI'24 "Fairness
//! in Serving Large Language Models"): each client has a counter of the
//! service it received, `w_in` per prompt token admitted plus `w_out` per
//! token generated (the paper's weighted tokens; defaults 1 and 2); the
//! next request admitted is the oldest one of the *least-served* client
//! with waiting requests. A client that was idle is lifted to the smallest
//! counter among clients with work, so it cannot bank credit while away
//! (Algorithm 2's counter lift; "active" = a request running or waiting). Batches are the chunked, decode-first
//! iterations of `chunked.rs`. When memory runs out, the running request of
//! the *most-served* client is preempted (newest first), so the heavy
//! client pays for memory pressure — the "with preemption" variant.
//! Per step: O(clients) for the counters and the choice (the replica keeps
//! a waiting queue per client).

use super::chunked::{admit_chunk, decode_and_continue};
use super::{Policy, Scheduler};
use crate::replica::state::ReplicaState;
use crate::units::Nanos;

pub struct Vtc {
    p: Policy,
    counters: Vec<f64>,
    /// Clients with a request waiting or running at the previous / this step.
    active_before: Vec<bool>,
    active_now: Vec<bool>,
}

impl Vtc {
    pub fn new(p: Policy) -> Self {
        Vtc {
            p,
            counters: Vec::new(),
            active_before: Vec::new(),
            active_now: Vec::new(),
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
    fn make_room(&mut self, st: &mut ReplicaState) {
        while st.num_decoding() > 0 && !st.decode_fits() {
            let counters = &self.counters;
            let served = |s| counters.get(st.view(s).client as usize).copied().unwrap_or(0.0);
            // Most-served client; newest of its requests (ties keep the later one).
            let victim = st.running().max_by(|&a, &b| served(a).total_cmp(&served(b)));
            match victim {
                Some(v) => st.preempt(v),
                None => break,
            }
        }
    }
}

impl Scheduler for Vtc {
    fn waiting_indexes(&self) -> super::WaitIndexes {
        // VTC serves the least-served client's oldest request.
        super::WaitIndexes {
            by_client: true,
            ..super::WaitIndexes::for_policy(&self.p)
        }
    }

    fn schedule(&mut self, st: &mut ReplicaState, now: Nanos) {
        // Charge the tokens the previous decode step generated.
        let w_out = self.p.vtc_weights.1;
        for (c, &n) in st.decoding_by_client().iter().enumerate() {
            *self.counter(c as u32) += w_out * n as f64;
        }
        // Counter lift (Algorithm 2): a client that had no request waiting or
        // running at the previous step and has one now starts from the least
        // counter among the clients that were active, so idle time earns no credit.
        self.active_now.iter_mut().for_each(|a| *a = false);
        for slot in st.running() {
            let c = st.view(slot).client as usize;
            if self.active_now.len() <= c {
                self.active_now.resize(c + 1, false);
            }
            self.active_now[c] = true;
        }
        for (c, &n) in st.waiting_per_client().iter().enumerate() {
            if self.active_now.len() <= c {
                self.active_now.resize(c + 1, false);
            }
            self.active_now[c] |= n > 0;
        }
        let active_min = (0..self.active_before.len())
            .filter(|&c| self.active_before[c])
            .map(|c| self.counters.get(c).copied().unwrap_or(0.0))
            .fold(f64::INFINITY, f64::min);
        for c in 0..self.active_now.len() {
            let was = self.active_before.get(c).copied().unwrap_or(false);
            if self.active_now[c] && !was && active_min.is_finite() {
                let x = self.counter(c as u32);
                *x = x.max(active_min);
            }
        }
        std::mem::swap(&mut self.active_now, &mut self.active_before);
        self.make_room(st);
        let mut budget = decode_and_continue(st, &self.p);
        loop {
            // The oldest request of the least-served client with one waiting (O(clients)).
            let counters = &self.counters;
            let served = |c: usize| counters.get(c).copied().unwrap_or(0.0);
            let Some(client) = (0..st.waiting_per_client().len())
                .filter(|&c| st.waiting_per_client()[c] > 0)
                .min_by(|&a, &b| served(a).total_cmp(&served(b)))
            else {
                break;
            };
            let head = st
                .waiting_of_client(client as u32)
                .expect("client has a waiting request");
            st.promote_waiting(head);
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
