//! The periodic replica time series (`timeseries.csv`) in bounded memory.
//!
//! The engine snapshots every replica at instants `0, Δ, 2Δ, …` (Δ =
//! `metrics.sample_interval`). Replica state changes only at events, so
//! the instants between two events all see the same state: [`TimeSeries`]
//! takes them as one *span* and does O(replicas) work per span however many
//! instants it covers — a 10⁹ s idle gap in a trace costs as much as a
//! 1 s one.
//!
//! Invariants:
//! - **Bounded rows.** At most [`TimeSeries::capacity`] instants are kept
//!   per replica (`MAX_ROWS / replicas`, at least `MIN_INSTANTS`). When a
//!   span would exceed it, the kept interval doubles and every other kept
//!   instant is dropped, so the rows are always the instants at multiples
//!   of the *effective* interval `Δ·2^j` — evenly spaced, starting at 0.
//!   `summary.json`'s `sample_interval_s` is that effective interval.
//! - **Exact statistics.** The KV-utilisation mean and maximum in the
//!   summary are over every instant at the requested Δ, whether or not its
//!   row was kept (a span of k instants adds k × its utilisation).
//! - **Order.** Rows are pushed in (time, replica) order, which is the
//!   order `timeseries.csv` is written in.

use super::{ReplicaSample, Sample};
use crate::units::Nanos;

/// Rows kept over all replicas (56 bytes each: ≈ 14.7 MB at most).
pub const MAX_ROWS: u64 = 1 << 18;
/// Instants kept per replica however many replicas there are.
pub const MIN_INSTANTS: u64 = 64;

/// Spans of at most this many instants add their KV utilisation one
/// instant at a time (the same floating-point sum as sampling each instant);
/// longer ones add k × u.
const EXACT_SPAN: u64 = 64;

/// KV-utilisation statistics over every sampled instant of every replica.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KvStats {
    pub sum: f64,
    pub n: u64,
    pub max: f64,
}

impl KvStats {
    /// Mean utilisation, `None` when no replica with a KV pool was sampled.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// The bounded time series of one run (see the module doc).
#[derive(Debug, Clone)]
pub struct TimeSeries {
    /// The requested interval Δ (ns, ≥ 1).
    base: Nanos,
    /// The kept rows' interval, Δ·2^j.
    interval: Nanos,
    /// The next instant (multiple of `base`) not yet sampled.
    next: Nanos,
    capacity: u64,
    /// Instants kept (rows = instants × replicas).
    kept: u64,
    rows: Vec<Sample>,
    kv: KvStats,
    /// Every instant up to the end of representable time was sampled.
    exhausted: bool,
    /// Reused buffer of the states of one span.
    states: Vec<(u32, ReplicaSample)>,
}

impl TimeSeries {
    /// A series sampling `replicas` replicas every `interval` ns.
    pub fn new(interval: Nanos, replicas: u32) -> Self {
        let interval = interval.max(1);
        let capacity = (MAX_ROWS / u64::from(replicas.max(1))).max(MIN_INSTANTS);
        TimeSeries {
            base: interval,
            interval,
            next: 0,
            capacity,
            kept: 0,
            rows: Vec::new(),
            kv: KvStats::default(),
            exhausted: false,
            states: Vec::new(),
        }
    }

    /// A series keeping at most `capacity` instants per replica (tests).
    #[cfg(test)]
    fn with_capacity(interval: Nanos, replicas: u32, capacity: u64) -> Self {
        TimeSeries {
            capacity,
            ..Self::new(interval, replicas)
        }
    }

    /// Instants kept per replica at most.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// True when an instant at or before `t` has not been sampled yet.
    #[inline]
    pub fn due(&self, t: Nanos) -> bool {
        self.next <= t && !self.exhausted
    }

    /// Samples every instant from the next one up to `t` (inclusive), the
    /// replicas being in `states` throughout (replica order).
    pub fn record_span(&mut self, t: Nanos, states: impl Iterator<Item = (u32, ReplicaSample)>) {
        if !self.due(t) {
            return;
        }
        self.states.clear();
        self.states.extend(states);
        let k = (t - self.next) / self.base + 1;
        self.add_stats(k);
        let mut first = self.next.div_ceil(self.interval).saturating_mul(self.interval);
        let mut m = instants_in(first, t, self.interval);
        while self.kept + m > self.capacity {
            self.widen();
            first = self.next.div_ceil(self.interval).saturating_mul(self.interval);
            m = instants_in(first, t, self.interval);
        }
        for i in 0..m {
            let time = first + i * self.interval;
            self.rows.extend(
                self.states
                    .iter()
                    .map(|&(replica, state)| Sample { time, replica, state }),
            );
        }
        self.kept += m;
        match k.checked_mul(self.base).and_then(|d| self.next.checked_add(d)) {
            Some(next) => self.next = next,
            // Past the end of representable time: nothing later exists.
            None => self.exhausted = true,
        }
    }

    fn add_stats(&mut self, k: u64) {
        let kv = &mut self.kv;
        let util = |s: &ReplicaSample| {
            (s.kv_blocks_total > 0).then(|| s.kv_blocks_used as f64 / s.kv_blocks_total as f64)
        };
        if k <= EXACT_SPAN {
            for _ in 0..k {
                for (_, s) in &self.states {
                    if let Some(u) = util(s) {
                        kv.sum += u;
                        kv.n += 1;
                        kv.max = kv.max.max(u);
                    }
                }
            }
        } else {
            for (_, s) in &self.states {
                if let Some(u) = util(s) {
                    kv.sum += k as f64 * u;
                    kv.n += k;
                    kv.max = kv.max.max(u);
                }
            }
        }
    }

    /// Doubles the kept interval and drops the instants that are not
    /// multiples of the new one.
    fn widen(&mut self) {
        self.interval = self.interval.saturating_mul(2);
        let interval = self.interval;
        self.rows.retain(|s| s.time % interval == 0);
        self.kept = (self.rows.len() / self.states.len().max(1)) as u64;
    }

    /// The kept interval (ns): the spacing of the rows.
    pub fn interval(&self) -> Nanos {
        self.interval
    }

    /// The requested interval (ns).
    pub fn requested_interval(&self) -> Nanos {
        self.base
    }

    /// KV-utilisation statistics over every instant at the requested interval.
    pub fn kv_stats(&self) -> KvStats {
        self.kv
    }

    /// The kept rows, in (time, replica) order.
    pub fn into_rows(self) -> Vec<Sample> {
        self.rows
    }
}

/// Multiples of `step` in `[first, t]`, `first` being one.
fn instants_in(first: Nanos, t: Nanos, step: Nanos) -> u64 {
    if first > t { 0 } else { (t - first) / step + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(used: u64) -> ReplicaSample {
        ReplicaSample {
            kv_blocks_used: used,
            kv_blocks_total: 100,
            ..ReplicaSample::default()
        }
    }

    fn one(used: u64) -> impl Iterator<Item = (u32, ReplicaSample)> {
        std::iter::once((0, state(used)))
    }

    #[test]
    fn a_span_samples_each_instant_up_to_and_including_t() {
        let mut ts = TimeSeries::new(10, 1);
        ts.record_span(25, one(10)); // instants 0, 10, 20
        assert!(!ts.due(29));
        assert!(ts.due(30));
        ts.record_span(30, one(40)); // instant 30
        ts.record_span(30, one(90)); // nothing new
        let times: Vec<_> = ts.clone().into_rows().iter().map(|s| s.time).collect();
        assert_eq!(times, [0, 10, 20, 30]);
        let kv = ts.kv_stats();
        assert_eq!(kv.n, 4);
        assert!((kv.sum - (3.0 * 0.1 + 0.4)).abs() < 1e-12);
        assert_eq!(kv.max, 0.4);
    }

    #[test]
    fn rows_are_bounded_and_evenly_spaced_after_widening() {
        // 4 replicas → capacity max(2^18 / 4, 64) = 65,536 instants.
        let mut ts = TimeSeries::new(1, 4);
        assert_eq!(ts.capacity(), 65_536);
        let four = || (0..4).map(|r| (r, state(50)));
        ts.record_span(65_535, four()); // exactly full at interval 1
        assert_eq!(ts.interval(), 1);
        ts.record_span(65_536, four()); // one more: widen to 2
        assert_eq!(ts.interval(), 2);
        // A huge gap: the multiples of 2^13 in [0, 1e9] are 122,071 >
        // 65,536 instants, those of 2^14 are 61,036: widen to 2^14.
        ts.record_span(1_000_000_000, four());
        assert_eq!(ts.interval(), 1 << 14);
        let rows = ts.clone().into_rows();
        assert!(rows.len() as u64 <= 4 * ts.capacity());
        assert_eq!(rows.len(), 4 * 61_036);
        assert!(rows.iter().all(|s| s.time % (1 << 14) == 0));
        assert_eq!(rows.last().unwrap().time, 1_000_000_000 / (1 << 14) * (1 << 14));
        // (time, replica) order.
        assert!(
            rows.windows(2)
                .all(|w| (w[0].time, w[0].replica) < (w[1].time, w[1].replica))
        );
        // The statistics still count every requested instant.
        assert_eq!(ts.kv_stats().n, 4 * 1_000_000_001);
        assert!((ts.kv_stats().mean().unwrap() - 0.5).abs() < 1e-12);
    }

    /// One instant per span, 101 spans, room for 8 instants: the kept
    /// interval doubles whenever a ninth would be kept, ending at 16 (the
    /// multiples of 8 in 0..=100 are 13 > 8, those of 16 are 7), and no
    /// span ever leaves more than 8.
    #[test]
    fn many_short_spans_stay_within_capacity() {
        let mut ts = TimeSeries::with_capacity(1, 2, 8);
        let two = || (0..2).map(|r| (r, state(10)));
        for t in 0..=100 {
            ts.record_span(t, two());
            assert!(ts.rows.len() <= 2 * 8, "at {t}: {} rows", ts.rows.len());
        }
        assert_eq!(ts.interval(), 16);
        let times: Vec<u64> = ts.clone().into_rows().iter().step_by(2).map(|s| s.time).collect();
        assert_eq!(times, [0, 16, 32, 48, 64, 80, 96]);
        assert_eq!(ts.kv_stats().n, 2 * 101);
    }

    /// A short span adds its instants one by one, the float sum sampling
    /// each instant gives (0.1 six times is 0.6, while 6 × 0.1 is
    /// 0.6000000000000001); a long one adds k × u in one step (1000 × 0.1
    /// = 100, while 0.1 added 1000 times is 99.9999999999986).
    #[test]
    fn short_spans_sum_instant_by_instant_long_ones_multiply() {
        let mut short = TimeSeries::new(1, 1);
        short.record_span(5, one(10)); // 6 instants at u = 0.1
        assert_eq!(short.kv_stats().sum, 0.6);
        let mut long = TimeSeries::new(1, 1);
        long.record_span(999, one(10)); // 1000 instants
        assert_eq!(long.kv_stats().sum, 100.0);
    }

    #[test]
    fn a_long_span_weighs_its_state_by_its_instants() {
        let mut ts = TimeSeries::new(1, 1);
        ts.record_span(0, one(100)); // one instant at u = 1
        ts.record_span(999, one(0)); // 999 instants at u = 0
        assert_eq!(ts.kv_stats().n, 1000);
        assert!((ts.kv_stats().mean().unwrap() - 0.001).abs() < 1e-15);
        assert_eq!(ts.kv_stats().max, 1.0);
    }

    #[test]
    fn the_end_of_time_does_not_overflow() {
        let mut ts = TimeSeries::new(u64::MAX / 2, 1);
        ts.record_span(u64::MAX, one(1));
        assert!(!ts.due(u64::MAX));
        assert_eq!(ts.kv_stats().n, 3);
    }

    #[test]
    fn replicas_without_kv_pool_are_left_out_of_the_statistics() {
        let mut ts = TimeSeries::new(1, 2);
        ts.record_span(0, [(0, ReplicaSample::default()), (1, state(20))].into_iter());
        assert_eq!(ts.kv_stats().n, 1);
        assert_eq!(TimeSeries::new(1, 1).kv_stats().mean(), None);
    }
}
