//! When a replica's outputs become visible to the client: first tokens and
//! finished responses.
//!
//! - Synchronous engines make an iteration's tokens visible at its end.
//! - With async output processing (vLLM ≥ 0.6) the engine processes an
//!   iteration's outputs while the next iteration runs on the GPU, so they
//!   become visible at the next iteration's start plus its host part, or at
//!   the end of their own iteration when no iteration follows: outputs wait
//!   here until [`OutputTiming::flush`].
//! - A static batch (FasterTransformer) returns every response only when
//!   the whole batch ends: finished records are held until
//!   [`OutputTiming::release_held`].
//!
//! Invariants (checked by [`OutputTiming::check`]): a slot waits for its
//! first token at most once, only while it is in use, and only while its
//! first token is unset.

use super::slab::{NONE, Phase, RequestSlab, Slot};
use crate::metrics::{Metrics, RequestRecord};
use crate::units::Nanos;

#[derive(Debug, Default)]
pub(crate) struct OutputTiming {
    async_output: bool,
    static_batch: bool,
    /// Requests whose first token the previous iteration produced, not yet visible.
    pending_first: Vec<Slot>,
    /// Requests the previous iteration finished, not yet visible.
    pending_done: Vec<RequestRecord>,
    /// Finished members of the static batch in flight.
    held: Vec<RequestRecord>,
}

impl OutputTiming {
    pub fn new(async_output: bool, static_batch: bool) -> OutputTiming {
        OutputTiming {
            async_output,
            static_batch,
            ..OutputTiming::default()
        }
    }

    /// A request's first token was produced at `now`: returns the time it
    /// is visible, or `NONE` while it waits for the next flush.
    pub fn first_token(&mut self, slot: Slot, now: Nanos) -> Nanos {
        if self.async_output {
            self.pending_first.push(slot);
            NONE
        } else {
            now
        }
    }

    /// The request in `slot` leaves before its first token was flushed
    /// (finished, or handed off carrying its pending token).
    pub fn forget_first_token(&mut self, slot: Slot) {
        if let Some(i) = self.pending_first.iter().position(|&s| s == slot) {
            self.pending_first.remove(i);
        }
    }

    /// A request finished at `rec.finish`: recorded now, or held by the
    /// static batch, or pending until the next flush.
    pub fn deliver(&mut self, rec: RequestRecord, metrics: &mut Metrics) {
        if self.static_batch {
            self.held.push(rec);
        } else if self.async_output {
            self.pending_done.push(rec);
        } else {
            metrics.record_request(rec);
        }
    }

    /// The static batch ended at `now`: every held response returns now
    /// (or at the next flush with async output processing).
    pub fn release_held(&mut self, now: Nanos, metrics: &mut Metrics) {
        for i in 0..self.held.len() {
            let mut rec = self.held[i];
            rec.finish = now;
            if self.async_output {
                self.pending_done.push(rec);
            } else {
                if rec.first_token == NONE {
                    rec.first_token = now;
                    metrics.record_first_token(rec.id, rec.client, now);
                }
                metrics.record_request(rec);
            }
        }
        self.held.clear();
    }

    /// Makes the tokens and completions waiting for output processing
    /// visible at `now`.
    pub fn flush(&mut self, now: Nanos, slab: &mut RequestSlab, metrics: &mut Metrics) {
        for i in 0..self.pending_first.len() {
            let r = slab.get_mut(self.pending_first[i]);
            r.first_token = now;
            metrics.record_first_token(r.spec.id, r.spec.client, now);
        }
        self.pending_first.clear();
        for mut rec in self.pending_done.drain(..) {
            if rec.first_token == NONE {
                rec.first_token = now;
                metrics.record_first_token(rec.id, rec.client, now);
            }
            rec.finish = now;
            metrics.record_request(rec);
        }
    }

    /// Whether outputs of a finished iteration still wait to be made visible.
    pub fn has_pending(&self) -> bool {
        !self.pending_first.is_empty() || !self.pending_done.is_empty()
    }

    pub fn check(&self, slab: &RequestSlab) -> Result<(), String> {
        for (i, &s) in self.pending_first.iter().enumerate() {
            let r = slab.get(s);
            if r.phase == Phase::Free || r.first_token != NONE {
                return Err(format!(
                    "slot {s} waits for its first token in phase {:?} with first token {}",
                    r.phase, r.first_token
                ));
            }
            if self.pending_first[..i].contains(&s) {
                return Err(format!("slot {s} waits for its first token twice"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::slab::Req;
    use super::*;
    use crate::metrics::Metrics;
    use crate::scenario::config::{MetricsConfig, SloConfig};
    use crate::workload::{Prefix, RequestSpec};

    fn metrics() -> Metrics {
        Metrics::new(1, &MetricsConfig::default(), &SloConfig::default())
    }

    fn record(id: u64, first_token: Nanos, finish: Nanos) -> RequestRecord {
        crate::metrics::test_util::finished(id, 0, 0, 0, first_token, finish, 10, 5)
    }

    fn finished(m: Metrics) -> Vec<(u64, Nanos, Nanos)> {
        m.records()
            .iter()
            .map(|r| (r.id, r.first_token, r.finish))
            .collect()
    }

    #[test]
    fn synchronous_outputs_are_visible_at_once() {
        let mut m = metrics();
        let mut out = OutputTiming::new(false, false);
        assert_eq!(out.first_token(0, 70), 70);
        out.deliver(record(1, 70, 90), &mut m);
        assert!(!out.has_pending());
        assert_eq!(finished(m), vec![(1, 70, 90)]);
    }

    #[test]
    fn async_outputs_wait_for_the_flush() {
        let mut m = metrics();
        let mut slab = RequestSlab::default();
        let spec = RequestSpec::new(3, 0, 4, 2);
        let s = slab.insert(Req::waiting(&spec), Prefix::None, (None, None));
        let mut out = OutputTiming::new(true, false);
        assert_eq!(out.first_token(s, 70), NONE);
        out.check(&slab).unwrap();
        out.deliver(record(1, 40, 90), &mut m);
        out.deliver(record(2, NONE, 90), &mut m);
        assert!(out.has_pending());
        out.flush(95, &mut slab, &mut m);
        assert!(!out.has_pending());
        assert_eq!(slab.get(s).first_token, 95);
        // Finish times move to the flush; a first token produced in the
        // same iteration as the finish too.
        assert_eq!(finished(m), vec![(1, 40, 95), (2, 95, 95)]);
        // Its first token is set now: waiting for it again is an error.
        out.pending_first.push(s);
        assert!(out.check(&slab).unwrap_err().contains("first token 95"));
    }

    #[test]
    fn a_request_leaving_forgets_its_pending_first_token() {
        let mut m = metrics();
        let mut slab = RequestSlab::default();
        let spec = RequestSpec::new(3, 0, 4, 2);
        let s = slab.insert(Req::waiting(&spec), Prefix::None, (None, None));
        let mut out = OutputTiming::new(true, false);
        out.first_token(s, 70);
        out.forget_first_token(s);
        assert!(!out.has_pending());
        slab.get_mut(s).first_token = 80;
        out.flush(95, &mut slab, &mut m);
        assert_eq!(slab.get(s).first_token, 80);
    }

    #[test]
    fn a_static_batch_returns_its_responses_when_it_ends() {
        let mut m = metrics();
        let mut out = OutputTiming::new(false, true);
        out.deliver(record(1, 30, 50), &mut m);
        out.deliver(record(2, NONE, 60), &mut m);
        assert!(m.records().is_empty());
        out.release_held(100, &mut m);
        assert_eq!(finished(m), vec![(1, 30, 100), (2, 100, 100)]);

        let mut m = metrics();
        let mut slab = RequestSlab::default();
        let mut out = OutputTiming::new(true, true);
        out.deliver(record(1, 30, 50), &mut m);
        out.release_held(100, &mut m);
        assert!(m.records().is_empty());
        out.flush(104, &mut slab, &mut m);
        assert_eq!(finished(m), vec![(1, 30, 104)]);
    }
}
