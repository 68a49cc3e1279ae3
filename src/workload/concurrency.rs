//! Fixed-concurrency clients: vLLM's benchmark mode
//! (`benchmarks/benchmark_serving.py --max-concurrency C`).
//!
//! `C` clients start at t = 0 and each sends its next request the moment
//! its previous one ends (finishes or is rejected), until `workload.count`
//! requests were sent (or `workload.duration` has passed). Lengths,
//! prefixes and tenants come from the rest of `[workload]` as for open-loop
//! runs. With `workload.arrivals.kind` set, requests are also paced by that
//! arrival process, as the script's `--request-rate` does together with
//! `--max-concurrency`: request `i` is sent at
//! `max(its time in the arrival process, when a client is free)`. Without
//! it the rate is unlimited (`--request-rate inf`, the script's default).
//! A request's latency counts from when it is sent, as the script's does.
//!
//! Clients are interchangeable, so the state is a min-heap of the times at
//! which each client is (or becomes) free: at most `C` entries, O(log C)
//! per request, no allocation once built.

use super::feedback::{Completion, Workload};
use super::{RequestSource, RequestSpec};
use crate::units::Nanos;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub struct FixedConcurrency {
    /// Lengths, prefixes and tenants; its arrival times are the pacing
    /// times when `paced`.
    source: Box<dyn RequestSource>,
    paced: bool,
    /// When each idle client is free (clients with a request in flight
    /// are absent until it ends).
    free: BinaryHeap<Reverse<Nanos>>,
    next: Option<RequestSpec>,
    pulled: bool,
    /// No request is sent after this time.
    duration: Option<Nanos>,
}

impl FixedConcurrency {
    /// `clients` ≥ 1 clients drawing their requests from `source`.
    pub fn new(source: Box<dyn RequestSource>, clients: u32, paced: bool, duration: Option<Nanos>) -> Self {
        FixedConcurrency {
            source,
            paced,
            free: (0..clients).map(|_| Reverse(0)).collect(),
            next: None,
            pulled: false,
            duration,
        }
    }

    /// The send time of the next request, if a client is free for it.
    fn send_time(&mut self) -> Option<Nanos> {
        if !self.pulled {
            self.next = self.source.next_request();
            self.pulled = true;
        }
        let paced_at = if self.paced {
            self.next.as_ref()?.arrival
        } else {
            self.next.as_ref()?;
            0
        };
        let t = paced_at.max(self.free.peek()?.0);
        if self.duration.is_some_and(|d| t > d) {
            self.next = None;
            return None;
        }
        Some(t)
    }
}

impl Workload for FixedConcurrency {
    fn next_arrival(&mut self) -> Option<Nanos> {
        self.send_time()
    }

    fn take_request(&mut self) -> Option<RequestSpec> {
        let t = self.send_time()?;
        self.free.pop();
        self.pulled = false;
        let mut r = self.next.take()?;
        r.arrival = t;
        Some(r)
    }

    fn on_complete(&mut self, c: &Completion) {
        self.free.push(Reverse(c.finish));
    }

    fn listens(&self) -> bool {
        true
    }

    fn notes(&self) -> Vec<String> {
        self.source.notes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests 0..n whose own (pacing) times are `10·i`.
    struct Paced(u64, u64);
    impl RequestSource for Paced {
        fn next_request(&mut self) -> Option<RequestSpec> {
            (self.0 < self.1).then(|| {
                self.0 += 1;
                RequestSpec::new(self.0 - 1, (self.0 - 1) * 10, 5, 1)
            })
        }
    }

    use crate::workload::feedback::Completion;

    /// The clients pass on their source's warnings (the run prints them and
    /// writes them into the summary).
    #[test]
    fn the_sources_notes_reach_the_run() {
        let w = FixedConcurrency::new(Box::new(crate::workload::tests::Noted), 2, false, None);
        assert_eq!(w.notes(), ["cut short"]);
    }

    #[test]
    fn two_clients_send_at_zero_then_one_per_completion() {
        let mut w = FixedConcurrency::new(Box::new(Paced(0, 4)), 2, false, None);
        assert!(w.listens());
        let sent: Vec<_> = (0..2).map(|_| w.take_request().unwrap()).collect();
        assert_eq!(
            sent.iter().map(|r| (r.id, r.arrival)).collect::<Vec<_>>(),
            [(0, 0), (1, 0)]
        );
        assert_eq!(w.next_arrival(), None, "both clients wait for an answer");
        w.on_complete(&Completion::done(1, 70));
        assert_eq!(w.next_arrival(), Some(70));
        let r = w.take_request().unwrap();
        assert_eq!((r.id, r.arrival), (2, 70));
        w.on_complete(&Completion::done(0, 90));
        w.on_complete(&Completion::done(2, 95));
        assert_eq!(w.take_request().map(|r| (r.id, r.arrival)), Some((3, 90)));
        assert_eq!(w.next_arrival(), None, "count reached");
    }

    #[test]
    fn a_rate_cap_delays_a_free_client_until_the_requests_own_time() {
        // Paced: request i is due at 10·i; one client, answers take 3.
        let mut w = FixedConcurrency::new(Box::new(Paced(0, 3)), 1, true, None);
        assert_eq!(w.take_request().map(|r| r.arrival), Some(0));
        w.on_complete(&Completion::done(0, 3));
        assert_eq!(w.next_arrival(), Some(10), "free at 3, due at 10");
        assert_eq!(w.take_request().map(|r| r.arrival), Some(10));
        w.on_complete(&Completion::done(1, 25));
        assert_eq!(w.next_arrival(), Some(25), "due at 20, free at 25");
    }

    #[test]
    fn nothing_is_sent_after_the_duration() {
        let mut w = FixedConcurrency::new(Box::new(Paced(0, 9)), 1, false, Some(50));
        assert!(w.take_request().is_some());
        w.on_complete(&Completion::done(0, 50));
        assert_eq!(w.next_arrival(), Some(50), "at the limit: still sent");
        assert!(w.take_request().is_some());
        w.on_complete(&Completion::done(1, 51));
        assert_eq!(w.next_arrival(), None);
        assert_eq!(w.take_request(), None);
    }
}
