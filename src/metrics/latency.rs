//! Per-request statistics accumulated as requests end, in memory that does
//! not grow with the number of requests beyond [`EXACT_VALUES`].
//!
//! `RequestAcc` keeps the counts and sums the summary reports (completed,
//! rejected by reason, preemptions, tokens, per-replica figures, requests
//! meeting the SLO) and one `LatencyAcc` per latency metric (TTFT, TPOT,
//! E2E, queue delay).
//!
//! Invariants of a `LatencyAcc`:
//! - **Exact up to [`EXACT_VALUES`] values** (2^20 = 1,048,576): every value
//!   is kept (milliseconds, `f64`) and the statistics are numpy's over them
//!   (`LatencyStats::from_values`), bit for bit what keeping every request
//!   gave.
//! - **Beyond, bounded**: the values move into a [`FineHistogram`] (integer
//!   nanoseconds, or picoseconds for TPOT; 1.3 MiB) and are freed. Count,
//!   maximum and mean stay exact (the mean a running sum in arrival order
//!   at the end of each request; the standard deviation a Welford
//!   accumulator); every percentile — and each SLO check's percentile with
//!   rejected requests as +∞ — is within 1/1024 < **0.1 %** relative error
//!   of the exact one (see `histogram`).

use super::histogram::FineHistogram;
use super::summary::{LatencyStats, NANOS_PER_MS, lerp, virtual_index};
use super::{Outcome, RejectReason, RequestRecord};
use crate::scenario::config::SloConfig;
use crate::units::{Nanos, secs_to_nanos};

/// Values of one metric kept one by one (exact percentiles) before the
/// accumulator switches to its histogram.
pub const EXACT_VALUES: usize = 1 << 20;

/// The statistics of one latency metric (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct LatencyAcc {
    metric: &'static str,
    /// Histogram units per millisecond (1e6: nanoseconds; 1e9: picoseconds).
    units_per_ms: f64,
    /// The values, ms, while there are at most `EXACT_VALUES` of them.
    values: Vec<f64>,
    /// All values once there were more (then `values` is empty).
    hist: Option<Box<FineHistogram>>,
    count: u64,
    sum_ms: f64,
    max_ms: f64,
    /// Welford running mean and sum of squared deviations, ms.
    mean_ms: f64,
    m2: f64,
    /// `values` is sorted (after `stats`).
    sorted: bool,
}

impl LatencyAcc {
    pub fn new(metric: &'static str, units_per_ms: f64) -> Self {
        LatencyAcc {
            metric,
            units_per_ms,
            values: Vec::new(),
            hist: None,
            count: 0,
            sum_ms: 0.0,
            max_ms: 0.0,
            mean_ms: 0.0,
            m2: 0.0,
            sorted: false,
        }
    }

    /// The histogram unit nearest to `ms`.
    fn units(&self, ms: f64) -> u64 {
        (ms * self.units_per_ms).round() as u64
    }

    /// Records one value (ms, ≥ 0); O(1). While values are kept, only the
    /// push, the sum and the maximum are paid; the Welford accumulator for
    /// the standard deviation starts at the switch to the histogram (over
    /// the kept values, in the order they came).
    pub fn record(&mut self, ms: f64) {
        self.count += 1;
        self.sum_ms += ms;
        self.max_ms = self.max_ms.max(ms);
        self.sorted = false;
        if self.hist.is_none() {
            if self.values.len() < EXACT_VALUES {
                self.values.push(ms);
                return;
            }
            let mut h = Box::new(FineHistogram::new());
            let values = std::mem::take(&mut self.values);
            for (i, &v) in values.iter().enumerate() {
                h.record(self.units(v), 1);
                self.welford(v, i as u64 + 1);
            }
            self.hist = Some(h);
        }
        self.welford(ms, self.count);
        let u = self.units(ms);
        if let Some(h) = self.hist.as_mut() {
            h.record(u, 1);
        }
    }

    /// Adds `x`, the `n`-th value, to the running mean and M2 (Welford).
    fn welford(&mut self, x: f64, n: u64) {
        let delta = x - self.mean_ms;
        self.mean_ms += delta / n as f64;
        self.m2 += delta * (x - self.mean_ms);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The metric's statistics (exact, or within 0.1 % past `EXACT_VALUES`).
    pub fn stats(&mut self) -> LatencyStats {
        match &self.hist {
            None => {
                self.sorted = true;
                LatencyStats::from_values(self.metric, &mut self.values)
            }
            Some(h) => {
                let ms = |u: f64| u / self.units_per_ms;
                LatencyStats {
                    metric: self.metric,
                    count: self.count,
                    mean: self.sum_ms / self.count as f64,
                    median: ms(h.percentile(50.0)),
                    p90: ms(h.percentile(90.0)),
                    p95: ms(h.percentile(95.0)),
                    p99: ms(h.percentile(99.0)),
                    max: self.max_ms,
                    std: (self.m2 / self.count as f64).max(0.0).sqrt(),
                }
            }
        }
    }

    /// The `p`-th percentile, ms, of the values plus `infinite` values of
    /// +∞ (rejected requests), as numpy would give over the whole list.
    pub fn percentile_with_infinite(&mut self, p: f64, infinite: u64) -> f64 {
        if let Some(h) = &self.hist {
            return h.percentile_with_infinite(p, infinite) / self.units_per_ms;
        }
        if !self.sorted {
            super::summary::sort_values(&mut self.values);
            self.sorted = true;
        }
        let n = self.values.len() as u64 + infinite;
        if n == 0 {
            return 0.0;
        }
        let (lo, t) = virtual_index(n, p);
        let at = |i: u64| self.values.get(i as usize).copied().unwrap_or(f64::INFINITY);
        lerp(at(lo), at((lo + 1).min(n - 1)), t)
    }
}

/// Everything the summary needs from the requests, accumulated one
/// request at a time (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct RequestAcc {
    thr_ttft: Option<Nanos>,
    thr_tpot: Option<Nanos>,
    thr_e2e: Option<Nanos>,
    pub completed: u64,
    pub rejected_max_model_len: u64,
    pub rejected_kv_capacity: u64,
    pub preemptions: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Finished requests that met every per-request SLO threshold.
    pub good: u64,
    pub per_replica_completed: Vec<u64>,
    pub per_replica_output: Vec<u64>,
    pub ttft: LatencyAcc,
    pub tpot: LatencyAcc,
    pub e2el: LatencyAcc,
    pub queue_delay: LatencyAcc,
}

fn threshold(s: f64) -> Option<Nanos> {
    (s > 0.0).then(|| secs_to_nanos(s))
}

impl RequestAcc {
    pub fn new(slo: &SloConfig, replicas: u32) -> Self {
        RequestAcc {
            thr_ttft: threshold(slo.ttft),
            thr_tpot: threshold(slo.tpot),
            thr_e2e: threshold(slo.e2e),
            completed: 0,
            rejected_max_model_len: 0,
            rejected_kv_capacity: 0,
            preemptions: 0,
            input_tokens: 0,
            output_tokens: 0,
            good: 0,
            per_replica_completed: vec![0; replicas as usize],
            per_replica_output: vec![0; replicas as usize],
            ttft: LatencyAcc::new("ttft", NANOS_PER_MS),
            // TPOT is a fraction of a nanosecond per token: picoseconds.
            tpot: LatencyAcc::new("tpot", NANOS_PER_MS * 1e3),
            e2el: LatencyAcc::new("e2el", NANOS_PER_MS),
            queue_delay: LatencyAcc::new("queue_delay", NANOS_PER_MS),
        }
    }

    /// Rejected requests.
    pub fn rejected(&self) -> u64 {
        self.rejected_max_model_len + self.rejected_kv_capacity
    }

    /// Adds one finished or rejected request; O(1).
    pub fn record(&mut self, r: &RequestRecord) {
        self.preemptions += r.preemptions as u64;
        match r.outcome {
            Outcome::Rejected(RejectReason::ExceedsMaxModelLen) => {
                self.rejected_max_model_len += 1;
                return;
            }
            Outcome::Rejected(RejectReason::ExceedsKvCapacity) => {
                self.rejected_kv_capacity += 1;
                return;
            }
            Outcome::Finished => {}
        }
        self.completed += 1;
        self.input_tokens += r.prompt_tokens as u64;
        self.output_tokens += r.output_tokens as u64;
        // A finished request was served by one of the run's replicas.
        let rep = r.replica as usize;
        self.per_replica_completed[rep] += 1;
        self.per_replica_output[rep] += r.output_tokens as u64;
        let ms = |ns: Nanos| ns as f64 / NANOS_PER_MS;
        let (t, e) = (r.ttft_ns().unwrap_or(0), r.e2el_ns().unwrap_or(0));
        self.ttft.record(ms(t));
        self.e2el.record(ms(e));
        self.queue_delay.record(ms(r.queue_delay_ns().unwrap_or(0)));
        if let Some(x) = r.tpot_ns() {
            self.tpot.record(x / NANOS_PER_MS);
        }
        // TPOT ≤ thr  ⇔  decode_time ≤ thr · (output − 1), exact in integers.
        let tpot_ok = match (self.thr_tpot, r.output_tokens) {
            (Some(thr), out) if out > 1 => {
                let decode = r.finish.saturating_sub(r.first_token) as u128;
                decode <= thr as u128 * (out - 1) as u128
            }
            _ => true,
        };
        if self.thr_ttft.is_none_or(|thr| t <= thr) && self.thr_e2e.is_none_or(|thr| e <= thr) && tpot_ok {
            self.good += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::summary::percentile_sorted;

    fn xorshift(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    /// Up to `EXACT_VALUES` the statistics are those of the kept values;
    /// one more switches to the histogram: count, max and mean stay exact
    /// and every percentile is within 0.1 %.
    #[test]
    fn exact_then_within_a_tenth_of_a_percent() {
        // The floor: percentiles exact up to at least 1M requests.
        assert_eq!(EXACT_VALUES, 1_048_576);
        let mut acc = LatencyAcc::new("ttft", NANOS_PER_MS);
        let mut all = Vec::with_capacity(EXACT_VALUES + 1000);
        let mut s = 99u64;
        for i in 0..EXACT_VALUES + 1000 {
            // Log-uniform over 1 µs .. 22 s, in whole nanoseconds.
            let ns = ((xorshift(&mut s) % 1700) as f64 / 100.0).exp().round() as u64 + 1000;
            let ms = ns as f64 / NANOS_PER_MS;
            acc.record(ms);
            all.push(ms);
            if i == 1000 {
                assert!(acc.hist.is_none(), "values are kept one by one up to 2^20");
            }
            if i + 1 == EXACT_VALUES {
                let mut sorted = all.clone();
                let exact = LatencyStats::from_values("ttft", &mut sorted);
                assert_eq!(acc.clone().stats(), exact, "exact below the switch");
                assert!(acc.hist.is_none());
            }
            if i == EXACT_VALUES {
                assert!(
                    acc.hist.is_some() && acc.values.is_empty(),
                    "the 2^20 + 1-th value moves them all into the histogram"
                );
            }
        }
        assert!(
            acc.hist.is_some() && acc.values.capacity() == 0,
            "the values were freed"
        );
        all.sort_by(f64::total_cmp);
        let got = acc.stats();
        let want = LatencyStats::from_values("ttft", &mut all);
        assert_eq!(got.count, want.count);
        assert_eq!(got.max, want.max);
        assert!((got.mean - want.mean).abs() <= 1e-9 * want.mean);
        assert!((got.std - want.std).abs() <= 1e-6 * want.std);
        for (g, w) in [
            (got.median, want.median),
            (got.p90, want.p90),
            (got.p95, want.p95),
            (got.p99, want.p99),
        ] {
            assert!((g - w).abs() / w <= 0.001, "{g} vs {w}");
        }
        let rejected = 5000;
        let mut with_inf = all.clone();
        with_inf.extend(std::iter::repeat_n(f64::INFINITY, rejected));
        for p in [50.0, 90.0, 99.0, 99.6, 99.9] {
            let (g, w) = (
                acc.percentile_with_infinite(p, rejected as u64),
                percentile_sorted(&with_inf, p),
            );
            assert!(g == w || (g - w).abs() / w <= 0.001, "p{p}: {g} vs {w}");
        }
    }

    /// In exact mode the SLO percentile with rejections equals numpy's over
    /// the values with +∞ appended.
    #[test]
    fn exact_percentile_with_rejections_matches_the_appended_list() {
        let mut acc = LatencyAcc::new("e2el", NANOS_PER_MS);
        for v in [5.0, 1.0, 3.0] {
            acc.record(v);
        }
        for (p, inf) in [(50.0, 0), (50.0, 1), (60.0, 2), (40.0, 2), (100.0, 1), (0.0, 9)] {
            let mut all = vec![1.0, 3.0, 5.0];
            all.extend(std::iter::repeat_n(f64::INFINITY, inf as usize));
            assert_eq!(
                acc.percentile_with_infinite(p, inf),
                percentile_sorted(&all, p),
                "p{p} inf {inf}"
            );
        }
        assert_eq!(LatencyAcc::new("x", 1.0).percentile_with_infinite(50.0, 0), 0.0);
    }
}
