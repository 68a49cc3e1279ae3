//! A weighted, log-bucketed (HDR-style) histogram of nanosecond durations,
//! used for inter-token latency, where a run can produce hundreds of
//! millions of samples that must not be stored one by one.
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

/// Bits of precision: values below 2^PRECISION_BITS are exact, and each
/// power-of-two range above has 2^(PRECISION_BITS−1) sub-buckets.
pub const PRECISION_BITS: u32 = 8;
/// Guaranteed bound on the relative error of any quantile: 2^−(PRECISION_BITS−1) = 1/128.
pub const MAX_RELATIVE_ERROR: f64 = 1.0 / (1u64 << (PRECISION_BITS - 1)) as f64;

const EXACT: u64 = 1 << PRECISION_BITS; // 256: values below are exact
const HALF: u64 = EXACT / 2; // 128 sub-buckets per octave
/// Number of buckets covering the whole `u64` range: 2 × 128 exact ones
/// below 256, then 128 per octave for the 56 octaves from 2^8 to 2^64.
pub const NUM_BUCKETS: usize = ((66 - PRECISION_BITS) as u64 * HALF) as usize;

/// Weighted log-bucketed histogram of durations in nanoseconds. See the
/// module documentation for the layout and the 1/128 relative-error bound.
///
/// Recording is O(1) and never allocates; quantile queries are O(buckets).
#[derive(Debug, Clone, PartialEq)]
pub struct LogHistogram {
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

impl Default for LogHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Index of the bucket holding `v`.
#[inline]
fn bucket_index(v: u64) -> usize {
    if v < EXACT {
        v as usize
    } else {
        let e = 63 - v.leading_zeros(); // floor(log2 v) >= PRECISION_BITS
        let shift = e + 1 - PRECISION_BITS; // >= 1
        (shift as u64 * HALF + (v >> shift)) as usize
    }
}

/// Lowest value and width of bucket `i`.
#[inline]
fn bucket_bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < EXACT {
        (i, 1)
    } else {
        let shift = i / HALF - 1;
        let mantissa = i % HALF + HALF;
        (mantissa << shift, 1 << shift)
    }
}

impl LogHistogram {
    pub fn new() -> Self {
        LogHistogram {
            counts: vec![0; NUM_BUCKETS],
            sums: vec![0; NUM_BUCKETS],
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
        let i = bucket_index(value);
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

    /// Representative value of a non-empty bucket `i`: the mean of the
    /// values recorded in it (kept inside the bucket against rounding).
    fn representative(&self, i: usize) -> f64 {
        let (lo, width) = bucket_bounds(i);
        let mean = self.sums[i] as f64 / self.counts[i] as f64;
        mean.clamp(lo as f64, (lo + (width - 1)) as f64)
    }

    /// The `p`-th percentile (`p` in 0..=100, clamped) in nanoseconds, with
    /// numpy's default linear interpolation between order statistics; within
    /// [`MAX_RELATIVE_ERROR`] of the exact value. 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let (lo_rank, frac) = super::summary::virtual_index(self.total, p);
        let hi_rank = (lo_rank + 1).min(self.total - 1);
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
            let (lo, w) = bucket_bounds(i);
            assert_eq!(lo, next, "bucket {i}");
            assert_eq!(bucket_index(lo), i);
            assert_eq!(bucket_index(lo + (w - 1)), i);
            if lo >= EXACT {
                assert!((w - 1) as f64 / lo as f64 <= MAX_RELATIVE_ERROR);
            }
            next = lo.wrapping_add(w);
        }
        assert_eq!(next, 0, "last bucket ends at u64::MAX");
        assert_eq!(bucket_index(u64::MAX), NUM_BUCKETS - 1);
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
            let (lo, w) = bucket_bounds(bucket_index(v));
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
    fn mean_is_exact_and_empty_is_zero() {
        let mut h = LogHistogram::new();
        assert_eq!((h.mean(), h.std(), h.percentile(50.0)), (0.0, 0.0, 0.0));
        assert_eq!(h.max(), None);
        h.record(1, 1);
        h.record(2, 1);
        h.record(1_000_000_007, 2);
        assert_eq!(h.sum(), 2_000_000_017);
        assert_eq!(h.mean(), 2_000_000_017.0 / 4.0);
        h.record(5, 0);
        assert_eq!(h.count(), 4);
    }
}
