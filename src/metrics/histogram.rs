//! A weighted, log-bucketed (HDR-style) histogram of integer durations,
//! used for inter-token latency, where a run can produce hundreds of
//! millions of samples that must not be stored one by one, and for the
//! per-request latencies of runs too long to keep every value.
//!
//! The precision is a type parameter `P`: [`LogHistogram`] (`P` = 8,
//! ITL, 1/128) and [`FineHistogram`] (`P` = 11, request latencies past
//! [`super::latency::EXACT_VALUES`], 1/1024 < 0.1 %). The numbers below are
//! for `P` = 8; replace 8 by `P` for the general case.
//!
//! # Layout
//!
//! Values below 2^[`PRECISION_BITS`] (256 ns) each have their own bucket and
//! are recorded exactly. Above that, every power-of-two range `[2^e, 2^(e+1))`
//! is split into 2^(PRECISION_BITS−1) = 128 equal sub-buckets, so a bucket
//! `[lo, lo + w)` has `w ≤ lo/128`. Each bucket keeps its total weight and
//! the exact (`u128`) weighted sum of its values. The whole `u64` range takes
//! [`NUM_BUCKETS`] (7,424) buckets, about 174 KiB, allocated once.
//!
//! # Error bound
//!
//! A bucket is represented by the mean of the values recorded in it, which
//! lies in `[lo, lo + w − 1]` like every value of the bucket; so any recorded
//! value is reproduced with relative error below `(w − 1)/lo < 1/128`
//! ([`MAX_RELATIVE_ERROR`] ≈ **0.78 %**, under the required 1 %), and exactly
//! when its bucket holds a single distinct value (common for simulated
//! iteration times). Quantiles are computed like numpy's default
//! (`method="linear"`) over the multiset of recorded values (a value
//! recorded with weight `w` counts `w` times): the two order statistics
//! around the virtual index are each reproduced within 1/128, and a linear
//! interpolation of two values each within relative error ε of the truth is
//! within ε of the true interpolation. Hence every quantile is within
//! **1/128 relative error** of the exact `np.percentile` of the same samples.
//! Count, minimum, maximum and mean are exact (the mean from an exact `u128`
//! sum); the standard deviation comes from a weighted Welford accumulator
//! (f64).

use crate::units::Nanos;

/// Bits of precision of [`LogHistogram`]: values below 2^PRECISION_BITS are
/// exact, and each power-of-two range above has 2^(PRECISION_BITS−1)
/// sub-buckets.
pub const PRECISION_BITS: u32 = 8;
/// Guaranteed bound on the relative error of any quantile of a
/// [`LogHistogram`]: 2^−(PRECISION_BITS−1) = 1/128.
pub const MAX_RELATIVE_ERROR: f64 = Histogram::<PRECISION_BITS>::MAX_RELATIVE_ERROR;
/// Number of buckets of a [`LogHistogram`] covering the whole `u64` range:
/// 2 × 128 exact ones below 256, then 128 per octave for the 56 octaves
/// from 2^8 to 2^64.
pub const NUM_BUCKETS: usize = Histogram::<PRECISION_BITS>::NUM_BUCKETS;

/// The ITL histogram: 1/128 relative error, 7,424 buckets (174 KiB).
pub type LogHistogram = Histogram<PRECISION_BITS>;
/// Request latencies of long runs: 1/1024 relative error (< 0.1 %),
/// 56,320 buckets (1.3 MiB).
pub type FineHistogram = Histogram<11>;

/// Weighted log-bucketed histogram of integer durations (nanoseconds, or
/// any integer unit) with `P` bits of precision. See the module
/// documentation for the layout and the 2^−(P−1) relative-error bound.
///
/// Recording is O(1) and never allocates; quantile queries are O(buckets).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram<const P: u32> {
    counts: Vec<u64>,
    /// Exact Σ weight·value per bucket.
    sums: Vec<u128>,
    total: u64,
    /// Exact Σ weight·value (saturating; overflows only beyond ~10^38 ns).
    sum: u128,
    min: Nanos,
    max: Nanos,
    /// Weighted Welford running mean and sum of squared deviations.
    w_mean: f64,
    w_m2: f64,
}

impl<const P: u32> Default for Histogram<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const P: u32> Histogram<P> {
    /// Values below this are exact (one bucket each).
    const EXACT: u64 = 1 << P;
    /// Sub-buckets per octave above `EXACT`.
    const HALF: u64 = Self::EXACT / 2;
    /// Buckets covering the whole `u64` range.
    pub const NUM_BUCKETS: usize = ((66 - P) as u64 * Self::HALF) as usize;
    /// Bound on the relative error of any quantile: 2^−(P−1).
    pub const MAX_RELATIVE_ERROR: f64 = 1.0 / (1u64 << (P - 1)) as f64;

    /// Index of the bucket holding `v`.
    #[inline]
    fn bucket_index(v: u64) -> usize {
        if v < Self::EXACT {
            v as usize
        } else {
            let e = 63 - v.leading_zeros(); // floor(log2 v) >= P
            let shift = e + 1 - P; // >= 1
            (shift as u64 * Self::HALF + (v >> shift)) as usize
        }
    }

    /// Lowest value and width of bucket `i`.
    #[inline]
    fn bucket_bounds(i: usize) -> (u64, u64) {
        let i = i as u64;
        if i < Self::EXACT {
            (i, 1)
        } else {
            let shift = i / Self::HALF - 1;
            let mantissa = i % Self::HALF + Self::HALF;
            (mantissa << shift, 1 << shift)
        }
    }

    pub fn new() -> Self {
        Histogram {
            counts: vec![0; Self::NUM_BUCKETS],
            sums: vec![0; Self::NUM_BUCKETS],
            total: 0,
            sum: 0,
            min: Nanos::MAX,
            max: 0,
            w_mean: 0.0,
            w_m2: 0.0,
        }
    }

    /// Records `weight` occurrences of `value` (O(1), no allocation).
    /// Recording with weight `w` is equivalent to `w` calls with weight 1
    /// (exactly for counts, quantiles, min, max and mean).
    #[inline]
    pub fn record(&mut self, value: Nanos, weight: u32) {
        if weight == 0 {
            return;
        }
        let w = weight as u64;
        let i = Self::bucket_index(value);
        self.counts[i] += w;
        self.sums[i] = self.sums[i].saturating_add(value as u128 * w as u128);
        self.total += w;
        self.sum = self.sum.saturating_add(value as u128 * w as u128);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        // Weighted Welford (West 1979).
        let x = value as f64;
        let wf = w as f64;
        let delta = x - self.w_mean;
        self.w_mean += delta * wf / self.total as f64;
        self.w_m2 += wf * delta * (x - self.w_mean);
    }

    /// Total weight recorded (number of samples).
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Exact Σ weight·value, nanoseconds.
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// Exact minimum (None when empty).
    pub fn min(&self) -> Option<Nanos> {
        (self.total > 0).then_some(self.min)
    }

    /// Exact maximum (None when empty).
    pub fn max(&self) -> Option<Nanos> {
        (self.total > 0).then_some(self.max)
    }

    /// Exact mean in nanoseconds (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// Population standard deviation (numpy `std`, ddof = 0) in nanoseconds
    /// (0 when empty).
    pub fn std(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.w_m2 / self.total as f64).max(0.0).sqrt()
        }
    }

    /// The representative of the `rank`-th smallest recorded value (`rank` < count).
    fn percentile_rank(&self, rank: u64) -> f64 {
        let mut cum = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            cum += c;
            // `cum` grows only at a non-empty bucket, so the first bucket
            // past `rank` holds values.
            if cum > rank {
                return self.representative(i);
            }
        }
        self.max as f64
    }

    /// Representative value of a non-empty bucket `i`: the mean of the
    /// values recorded in it (kept inside the bucket against rounding).
    fn representative(&self, i: usize) -> f64 {
        let (lo, width) = Self::bucket_bounds(i);
        let mean = self.sums[i] as f64 / self.counts[i] as f64;
        mean.clamp(lo as f64, (lo + (width - 1)) as f64)
    }

    /// The `p`-th percentile (`p` in 0..=100, clamped) in nanoseconds, with
    /// numpy's default linear interpolation between order statistics; within
    /// [`MAX_RELATIVE_ERROR`] of the exact value. 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        self.percentile_with_infinite(p, 0)
    }

    /// The `p`-th percentile of the recorded values plus `infinite` more
    /// values of +∞ (requests that were never served), as
    /// [`Histogram::percentile`]; +∞ when it falls among those.
    pub fn percentile_with_infinite(&self, p: f64, infinite: u64) -> f64 {
        let n = self.total + infinite;
        if n == 0 {
            return 0.0;
        }
        let (lo_rank, frac) = super::summary::virtual_index(n, p);
        let hi_rank = (lo_rank + 1).min(n - 1);
        if lo_rank >= self.total {
            return f64::INFINITY;
        }
        if hi_rank >= self.total {
            // The upper order statistic is +∞: numpy's lerp gives +∞ for
            // t > 0 and the lower one for t = 0 (see `summary::lerp`).
            let lo_val = self.percentile_rank(lo_rank);
            return super::summary::lerp(lo_val, f64::INFINITY, frac);
        }
        // One pass finds the buckets holding both order statistics.
        let mut cum = 0u64;
        let mut lo_val = None;
        let mut hi_val = 0.0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            cum += c;
            if lo_val.is_none() && cum > lo_rank {
                lo_val = Some(self.representative(i));
            }
            if cum > hi_rank {
                hi_val = self.representative(i);
                break;
            }
        }
        let lo_val = lo_val.unwrap_or(hi_val);
        super::summary::lerp(lo_val, hi_val, frac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::summary::percentile_sorted;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        let mut next = 0u64;
        for i in 0..NUM_BUCKETS {
            let (lo, w) = LogHistogram::bucket_bounds(i);
            assert_eq!(lo, next, "bucket {i}");
            assert_eq!(LogHistogram::bucket_index(lo), i);
            assert_eq!(LogHistogram::bucket_index(lo + (w - 1)), i);
            if lo >= 1 << PRECISION_BITS {
                assert!((w - 1) as f64 / lo as f64 <= MAX_RELATIVE_ERROR);
            }
            next = lo.wrapping_add(w);
        }
        assert_eq!(next, 0, "last bucket ends at u64::MAX");
        assert_eq!(LogHistogram::bucket_index(u64::MAX), NUM_BUCKETS - 1);
        assert_eq!(NUM_BUCKETS, 7424);
        let mut h = LogHistogram::new();
        h.record(u64::MAX, u32::MAX);
        h.record(u64::MAX, u32::MAX);
        assert_eq!(h.percentile(50.0), u64::MAX as f64);
    }

    #[test]
    fn single_values_exact_and_worst_case_within_bound() {
        let mut v = 1u64;
        while v < 1 << 50 {
            // A bucket holding one distinct value reproduces it exactly.
            let mut h = LogHistogram::new();
            h.record(v, 3);
            assert_eq!(h.percentile(37.0), v as f64);
            // Worst case: the quantile falls on the bucket's lowest value while
            // almost all the bucket's weight sits at its highest.
            let (lo, w) = LogHistogram::bucket_bounds(LogHistogram::bucket_index(v));
            let mut h = LogHistogram::new();
            h.record(lo, 1);
            h.record(lo + (w - 1), 1_000_000);
            h.record(lo.saturating_mul(4), 1_000_001);
            let got = h.percentile(0.0);
            assert_eq!(h.min(), Some(lo));
            let err = (got - lo as f64).abs() / lo as f64;
            assert!(err < MAX_RELATIVE_ERROR, "v={v} got={got} err={err}");
            v = v * 7 / 5 + 1;
        }
    }

    /// Deterministic xorshift so the test needs no RNG crate.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn check_against_exact(values: &[(u64, u32)]) {
        let mut h = LogHistogram::new();
        let mut expanded = Vec::new();
        for &(v, w) in values {
            h.record(v, w);
            expanded.extend(std::iter::repeat_n(v as f64, w as usize));
        }
        expanded.sort_by(f64::total_cmp);
        for p in [
            0.0, 0.1, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 100.0,
        ] {
            let exact = percentile_sorted(&expanded, p);
            let got = h.percentile(p);
            let err = (got - exact).abs() / exact;
            assert!(
                err <= MAX_RELATIVE_ERROR,
                "p{p}: exact {exact} got {got} err {err}"
            );
        }
        let exact_mean = expanded.iter().sum::<f64>() / expanded.len() as f64;
        assert!((h.mean() - exact_mean).abs() <= 1e-9 * exact_mean);
        let var = expanded.iter().map(|x| (x - exact_mean).powi(2)).sum::<f64>() / expanded.len() as f64;
        assert!((h.std() - var.sqrt()).abs() <= 1e-6 * var.sqrt().max(1.0));
        assert_eq!(h.count(), expanded.len() as u64);
        assert_eq!(h.max(), Some(*expanded.last().unwrap() as u64));
        assert_eq!(h.min(), Some(expanded[0] as u64));
    }

    #[test]
    fn uniform_1_to_1e6() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let values: Vec<(u64, u32)> = (0..200_000)
            .map(|_| (1 + xorshift(&mut s) % 1_000_000, 1))
            .collect();
        check_against_exact(&values);
    }

    #[test]
    fn weighted_log_uniform() {
        let mut s = 12345u64;
        let values: Vec<(u64, u32)> = (0..20_000)
            .map(|_| {
                let r = xorshift(&mut s);
                let exp = (r % 3000) as f64 / 100.0; // 1 .. e^30 ns
                (exp.exp() as u64, 1 + (r >> 40) as u32 % 17)
            })
            .collect();
        check_against_exact(&values);
    }

    #[test]
    fn weighted_equals_repeated() {
        let mut a = LogHistogram::new();
        let mut b = LogHistogram::new();
        for (v, w) in [(15_000_000u64, 7u32), (20_000_000, 3), (999, 1), (123_456_789, 5)] {
            a.record(v, w);
            for _ in 0..w {
                b.record(v, 1);
            }
        }
        assert_eq!(a.counts, b.counts);
        assert_eq!(a.count(), b.count());
        assert_eq!(a.sum(), b.sum());
        assert_eq!(a.mean(), b.mean());
        assert_eq!((a.min(), a.max()), (b.min(), b.max()));
        for p in [0.0, 33.0, 50.0, 90.0, 99.0, 100.0] {
            assert_eq!(a.percentile(p), b.percentile(p));
        }
        assert!((a.std() - b.std()).abs() <= 1e-9 * a.std());
    }

    #[test]
    fn the_fine_histogram_covers_u64_within_a_tenth_of_a_percent() {
        let mut next = 0u64;
        for i in 0..FineHistogram::NUM_BUCKETS {
            let (lo, w) = FineHistogram::bucket_bounds(i);
            assert_eq!(lo, next, "bucket {i}");
            assert_eq!(FineHistogram::bucket_index(lo + (w - 1)), i);
            if lo >= 1 << 11 {
                assert!((w - 1) as f64 / lo as f64 <= 0.001);
            }
            next = lo.wrapping_add(w);
        }
        assert_eq!(next, 0);
        assert_eq!(FineHistogram::NUM_BUCKETS, 56_320);
        const { assert!(FineHistogram::MAX_RELATIVE_ERROR < 0.001) };
        // Against exact percentiles of log-uniform values over 9 decades.
        let mut h = FineHistogram::new();
        let mut exact = Vec::new();
        let mut s = 777u64;
        for _ in 0..50_000 {
            let v = ((xorshift(&mut s) % 2000) as f64 / 100.0).exp() as u64 + 1;
            h.record(v, 1);
            exact.push(v as f64);
        }
        exact.sort_by(f64::total_cmp);
        for p in [0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            let (want, got) = (percentile_sorted(&exact, p), h.percentile(p));
            assert!((got - want).abs() / want <= 0.001, "p{p}: {want} vs {got}");
        }
    }

    /// Values never served count as +∞ at the top, exactly as appending
    /// `f64::INFINITY` to the sorted values does.
    #[test]
    fn infinite_values_sit_above_every_recorded_one() {
        let mut h = FineHistogram::new();
        let values = [10u64, 20, 30, 40];
        for v in values {
            h.record(v, 1);
        }
        let mut all: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        all.extend([f64::INFINITY; 2]);
        for p in [0.0, 20.0, 50.0, 59.0, 60.0, 61.0, 80.0, 100.0] {
            let (want, got) = (percentile_sorted(&all, p), h.percentile_with_infinite(p, 2));
            assert_eq!(got, want, "p{p}");
        }
        assert_eq!(h.percentile_with_infinite(50.0, 0), h.percentile(50.0));
        assert_eq!(
            FineHistogram::new().percentile_with_infinite(50.0, 3),
            f64::INFINITY
        );
    }

    #[test]
    fn mean_is_exact_and_empty_is_zero() {
        let mut h = LogHistogram::new();
        assert_eq!((h.mean(), h.std(), h.percentile(50.0)), (0.0, 0.0, 0.0));
        assert_eq!((h.min(), h.max()), (None, None));
        h.record(1, 1);
        h.record(2, 1);
        h.record(1_000_000_007, 2);
        assert_eq!(h.sum(), 2_000_000_017);
        assert_eq!(h.mean(), 2_000_000_017.0 / 4.0);
        h.record(5, 0);
        assert_eq!(h.count(), 4);
    }

    /// When the upper order statistic is one of the +∞ values, the lower
    /// one is the largest recorded value as its bucket represents it: 1,000
    /// and 1,002 share the bucket [1,000, 1,004) (width 4 from 2^9 on), so
    /// the median of {10, 1,000, 1,002, +∞, +∞} is that bucket's mean,
    /// 1,001; with a value alone in a higher bucket (5,000) and three +∞,
    /// the median (virtual index 3) is that value exactly.
    #[test]
    fn below_the_infinite_values_sits_the_top_buckets_representative() {
        let mut h = LogHistogram::new();
        for v in [10, 1000, 1002] {
            h.record(v, 1);
        }
        assert_eq!(h.percentile_with_infinite(50.0, 2), 1001.0);
        h.record(5000, 1);
        assert_eq!(h.percentile_with_infinite(50.0, 3), 5000.0);
    }
}
