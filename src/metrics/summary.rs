//! The run summary: throughput, latency distributions, SLO attainment and
//! goodput, and utilisation, computed once at the end of a run from the
//! collected records and accumulators.
//!
//! Metric names follow vLLM's `benchmarks/benchmark_serving.py` wherever it
//! has one (`request_throughput`, `output_throughput`,
//! `total_token_throughput`, `request_goodput`, `mean_ttft_ms`,
//! `median_tpot_ms`, `p99_itl_ms`, `std_e2el_ms`, ...). Latencies are in
//! milliseconds, throughputs per second of simulated time.
//!
//! # Percentiles
//!
//! Per-request metrics (TTFT, TPOT, E2EL, queue delay) are exact: the values
//! are sorted and the `p`-th percentile is numpy's default
//! (`np.percentile(x, p)`, `method="linear"`): with `n` sorted values and
//! virtual index `h = (n−1)·p/100`, the result is
//! `x[⌊h⌋] + (h−⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])` (computed with numpy's `_lerp`
//! rounding). ITL percentiles use the same definition over the weighted
//! histogram of all gaps (see [`super::histogram`], relative error ≤ 1/128).
//! Standard deviations are population (numpy `std`, ddof = 0). Statistics of
//! an empty set are reported as 0 (as vLLM does).

use super::RunInfo;
use super::histogram::LogHistogram;
use crate::scenario::config::SloConfig;
use crate::units::{NANOS_PER_SEC, Nanos, nanos_to_secs};
use serde::ser::{Serialize, SerializeMap, Serializer};

pub(crate) const NANOS_PER_MS: f64 = 1e6;

/// numpy's linear-method virtual index for `n ≥ 1` values at percentile `p`
/// (clamped to 0..=100): the lower order statistic's rank and the fraction
/// towards the next one.
pub(crate) fn virtual_index(n: u64, p: f64) -> (u64, f64) {
    let q = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) } / 100.0;
    let h = (n - 1) as f64 * q;
    let lo = h.floor();
    if lo >= (n - 1) as f64 {
        (n - 1, 0.0)
    } else {
        (lo as u64, h - lo)
    }
}

/// numpy's `_lerp(a, b, t)`, extended so that an infinite `b` gives `b`
/// when `t > 0` and `a` when `t = 0` (numpy would give NaN for the latter).
pub(crate) fn lerp(a: f64, b: f64, t: f64) -> f64 {
    if t == 0.0 || a == b {
        return a;
    }
    if b.is_infinite() {
        return b;
    }
    let d = b - a;
    if t >= 0.5 { b - d * (1.0 - t) } else { a + d * t }
}

/// Sorts `values` ascending in [`f64::total_cmp`] order. Large slices use an
/// LSB radix sort of the bits (`radsort`, O(n)): its order is the same total
/// order (sign-flipped bits), and values equal under it are the same bits,
/// so the result is bit for bit what a comparison sort gives.
pub(crate) fn sort_values(values: &mut [f64]) {
    // Below this the comparison sort's lack of passes over the whole slice wins.
    const RADIX_FROM: usize = 512;
    if values.len() >= RADIX_FROM {
        radsort::sort(values);
    } else {
        values.sort_unstable_by(f64::total_cmp);
    }
}

/// `np.percentile(xs, p)` (linear interpolation) of an ascending slice; 0 when empty.
pub fn percentile_sorted(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let (lo, t) = virtual_index(xs.len() as u64, p);
    let lo = lo as usize;
    lerp(xs[lo], xs[(lo + 1).min(xs.len() - 1)], t)
}

/// Distribution of one latency metric, all values in milliseconds.
///
/// Serialised flat with vLLM's names: `mean_<metric>_ms`,
/// `median_<metric>_ms`, `p90_<metric>_ms`, `p95_<metric>_ms`,
/// `p99_<metric>_ms`, `max_<metric>_ms`, `std_<metric>_ms`. With no
/// samples (`count` = 0) every value is `null`: the fields hold 0, which
/// is not a latency anyone measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyStats {
    /// Metric name used in the serialised keys ("ttft", "tpot", ...).
    pub metric: &'static str,
    /// Number of samples (requests, or inter-token gaps for ITL).
    pub count: u64,
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// Population standard deviation (ddof = 0, like `np.std`).
    pub std: f64,
}

impl LatencyStats {
    /// Exact statistics of per-request values in ms (`values` is sorted in place).
    pub fn from_values(metric: &'static str, values: &mut [f64]) -> Self {
        sort_values(values);
        let n = values.len();
        let (mean, std) = if n == 0 {
            (0.0, 0.0)
        } else {
            let mean = values.iter().sum::<f64>() / n as f64;
            let var = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
            (mean, var.sqrt())
        };
        LatencyStats {
            metric,
            count: n as u64,
            mean,
            median: percentile_sorted(values, 50.0),
            p90: percentile_sorted(values, 90.0),
            p95: percentile_sorted(values, 95.0),
            p99: percentile_sorted(values, 99.0),
            max: values.last().copied().unwrap_or(0.0),
            std,
        }
    }

    /// Statistics from a nanosecond histogram (mean and max exact,
    /// percentiles within 1/128 relative error).
    pub fn from_histogram(metric: &'static str, h: &LogHistogram) -> Self {
        let ms = |ns: f64| ns / NANOS_PER_MS;
        LatencyStats {
            metric,
            count: h.count(),
            mean: ms(h.mean()),
            median: ms(h.percentile(50.0)),
            p90: ms(h.percentile(90.0)),
            p95: ms(h.percentile(95.0)),
            p99: ms(h.percentile(99.0)),
            max: ms(h.max().unwrap_or(0) as f64),
            std: ms(h.std()),
        }
    }
}

impl Serialize for LatencyStats {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.metric;
        let value = |v: f64| (self.count > 0).then_some(v);
        let mut map = s.serialize_map(Some(7))?;
        map.serialize_entry(&format!("mean_{m}_ms"), &value(self.mean))?;
        map.serialize_entry(&format!("median_{m}_ms"), &value(self.median))?;
        map.serialize_entry(&format!("p90_{m}_ms"), &value(self.p90))?;
        map.serialize_entry(&format!("p95_{m}_ms"), &value(self.p95))?;
        map.serialize_entry(&format!("p99_{m}_ms"), &value(self.p99))?;
        map.serialize_entry(&format!("max_{m}_ms"), &value(self.max))?;
        map.serialize_entry(&format!("std_{m}_ms"), &value(self.std))?;
        map.end()
    }
}

/// Rejected requests by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RejectedCounts {
    /// Prompt + output longer than max_model_len.
    pub exceeds_max_model_len: u64,
    /// KV cache of the request can never fit in a replica.
    pub exceeds_kv_capacity: u64,
}

/// KV-memory events of the run, summed over replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct MemorySummary {
    /// Prompt tokens served from the prefix cache / prompt tokens admitted
    /// (vLLM's prefix cache hit rate); 0 without prefix caching.
    pub prefix_cache_hit_rate: f64,
    pub prefix_hit_tokens: u64,
    /// Prompt tokens admitted (the hit rate's denominator).
    pub prefix_queried_tokens: u64,
    /// Cached blocks evicted to make room.
    pub prefix_evicted_blocks: u64,
    /// Preemptions by kind.
    pub preemptions_recompute: u64,
    pub preemptions_swap: u64,
    /// KV bytes moved device→host and host→device, summed over devices.
    pub swapped_out_bytes: f64,
    pub swapped_in_bytes: f64,
}

impl MemorySummary {
    /// The one-line account shown by the table and the report.
    pub fn line(&self) -> String {
        format!(
            "prefix cache hit rate {:.2}%, {} recompute / {} swap preemptions, {:.2} GB swapped out",
            100.0 * self.prefix_cache_hit_rate,
            self.preemptions_recompute,
            self.preemptions_swap,
            self.swapped_out_bytes / 1e9
        )
    }
}

/// One run-level SLO check: the `slo_percentile`-th value of a metric
/// against its threshold.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SloCheck {
    /// "ttft", "tpot" or "e2el".
    pub metric: &'static str,
    /// The threshold, ms.
    pub threshold_ms: f64,
    /// The percentile of the metric over completed requests plus rejected
    /// requests counted as infinitely slow, ms; `None` (JSON null) when the
    /// percentile falls on rejected requests (infinite) or there is no
    /// value at all (`samples` = 0 and nothing rejected).
    pub value_ms: Option<f64>,
    /// Completed requests the metric has a value for (TPOT: those with more
    /// than one output token); rejected requests not counted.
    pub samples: u64,
    /// `value_ms ≤ threshold_ms`. With no value at all the check holds only
    /// for TPOT when every completed request had a single token (vacuous,
    /// as in `slo_attainment`); nothing completed never meets an SLO.
    pub met: bool,
}

impl SloCheck {
    /// The metric has no value at all: nothing to judge (no completed
    /// request with a value and, `rejected` being the run's rejections,
    /// none counted as +∞ either), as opposed to +∞ from rejections.
    pub fn has_no_value(&self, rejected: u64) -> bool {
        self.value_ms.is_none() && self.samples == 0 && rejected == 0
    }
}

/// Load-balance figures of one replica.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplicaSummary {
    pub replica: u32,
    /// Requests that finished on this replica.
    pub completed: u64,
    /// Output tokens of those requests.
    pub output_tokens: u64,
    /// Iterations the replica ran.
    pub iterations: u64,
    /// Σ iteration time / duration (time past the run's end not counted).
    pub busy_fraction: f64,
}

/// Everything `summary.json` reports. Keys appear in field order; latency
/// statistics and run info are flattened into the top level.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The run's configuration facts (scenario, model, device, cluster shape,
    /// scheduler, router, seed, peak rates, KV geometry).
    #[serde(flatten)]
    pub run: RunInfo,
    /// Simulated end time of the run (time 0 is the start), seconds. Every
    /// throughput and utilisation is over this duration (vLLM: `duration`).
    pub duration_s: f64,
    /// Interval between `timeseries.csv` samples, seconds.
    pub sample_interval_s: f64,
    /// Requests that finished (vLLM: `completed`).
    pub completed: u64,
    /// Requests rejected without being served.
    pub rejected: u64,
    pub rejected_by_reason: RejectedCounts,
    /// Σ preemptions over all requests (each preemption recomputes or swaps).
    pub preemptions: u64,
    /// Prefix caching, swapping and preemptions by kind.
    pub memory: MemorySummary,
    /// Σ prompt tokens of completed requests (vLLM: `total_input_tokens`).
    pub total_input_tokens: u64,
    /// Σ output tokens of completed requests (vLLM: `total_output_tokens`).
    pub total_output_tokens: u64,
    /// completed / duration_s, req/s (vLLM: `request_throughput`).
    pub request_throughput: f64,
    /// Requests meeting every set SLO threshold / duration_s, req/s
    /// (DistServe's goodput; vLLM: `request_goodput`). With no threshold set
    /// it equals `request_throughput`.
    pub request_goodput: f64,
    /// total_output_tokens / duration_s, tokens/s (vLLM: `output_throughput`).
    pub output_throughput: f64,
    /// total_input_tokens / duration_s, tokens/s.
    pub input_throughput: f64,
    /// (input + output tokens) / duration_s, tokens/s (vLLM: `total_token_throughput`).
    pub total_token_throughput: f64,
    /// Time to first token = first_token − arrival, over completed requests (vLLM).
    #[serde(flatten)]
    pub ttft: LatencyStats,
    /// Time per output token = (finish − first_token) / (output_tokens − 1),
    /// over completed requests with more than one output token (vLLM).
    #[serde(flatten)]
    pub tpot: LatencyStats,
    /// Inter-token latency: every gap between consecutive tokens of a
    /// request, pooled over all requests (vLLM); from the histogram.
    #[serde(flatten)]
    pub itl: LatencyStats,
    /// End-to-end latency = finish − arrival, over completed requests (vLLM).
    #[serde(flatten)]
    pub e2el: LatencyStats,
    /// Queue delay = scheduled (first time in a batch) − arrival, over completed requests.
    #[serde(flatten)]
    pub queue_delay: LatencyStats,
    /// Percentile the run-level SLO checks use.
    pub slo_percentile: f64,
    /// TTFT threshold, ms (null = unset).
    pub slo_ttft_ms: Option<f64>,
    /// TPOT threshold, ms (null = unset).
    pub slo_tpot_ms: Option<f64>,
    /// E2E latency threshold, ms (null = unset).
    pub slo_e2el_ms: Option<f64>,
    /// Fraction of all requests (completed + rejected) that completed and met
    /// every set threshold (DistServe's SLO attainment; TPOT vacuously holds
    /// for single-token requests). 0 when there are no requests.
    pub slo_attainment: f64,
    /// Every set threshold holds at `slo_percentile`, rejected requests
    /// counting as infinitely slow, and at least one request completed.
    pub slo_met: bool,
    /// The per-metric checks behind `slo_met` (set thresholds only).
    pub slo_checks: Vec<SloCheck>,
    /// Iterations (forward passes) run, all replicas.
    pub iterations: u64,
    /// Model FLOPs utilisation: Σ flops / (peak_flops × duration_s).
    pub mfu: f64,
    /// Memory-bandwidth utilisation: Σ HBM bytes / (peak_hbm_bandwidth × duration_s).
    pub mbu: f64,
    /// Σ iteration time / (replicas × duration_s).
    pub busy_fraction: f64,
    /// Sequences per iteration, weighted by iteration duration.
    pub mean_batch_seqs: f64,
    /// Tokens per iteration (prefill chunk tokens + decodes), weighted by iteration duration.
    pub mean_batch_tokens: f64,
    /// Mean over all samples (every replica, every sample instant) of
    /// kv_blocks_used / kv_blocks_total; `null` when nothing was sampled.
    pub mean_kv_utilization: Option<f64>,
    /// Maximum of the same.
    pub max_kv_utilization: Option<f64>,
    pub per_replica: Vec<ReplicaSummary>,
    /// KV hand-offs of disaggregated / semi-PD runs (absent when colocated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_transfer: Option<super::transfer::KvTransferSummary>,
    /// What the run could not do as asked or found worth saying (a trace
    /// cut short by `workload.count`, a widened time series, nothing
    /// completed); also printed on stderr. Absent when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Per-replica accumulators kept by the collector.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplicaAcc {
    pub busy_ns: u64,
    pub last_end: Nanos,
    pub iterations: u64,
}

/// Run-wide iteration accumulators kept by the collector.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IterAcc {
    pub flops: f64,
    pub hbm_bytes: f64,
    /// Σ seqs × duration (ns).
    pub seqs_time: u128,
    /// Σ tokens × duration (ns).
    pub tokens_time: u128,
}

/// Everything `Summary::compute` needs from the collector.
pub(crate) struct Inputs<'a> {
    pub info: RunInfo,
    pub end: Nanos,
    pub sample_interval_s: f64,
    pub slo: &'a SloConfig,
    /// The requests' counts and latency accumulators.
    pub requests: &'a mut super::latency::RequestAcc,
    /// KV utilisation over every sampling instant (see `timeseries`).
    pub kv: super::timeseries::KvStats,
    pub itl: &'a LogHistogram,
    pub iter: IterAcc,
    pub replicas: &'a [ReplicaAcc],
    pub memory: MemorySummary,
}

fn per(x: f64, d: f64) -> f64 {
    if d > 0.0 { x / d } else { 0.0 }
}

impl Summary {
    /// "N completed, M rejected (…), K preemptions": the requests line of the
    /// table and the report.
    pub fn requests_line(&self) -> String {
        format!(
            "{} completed, {} rejected ({} > max_model_len, {} > KV capacity), {} preemptions",
            self.completed,
            self.rejected,
            self.rejected_by_reason.exceeds_max_model_len,
            self.rejected_by_reason.exceeds_kv_capacity,
            self.preemptions
        )
    }

    pub(crate) fn compute(inp: Inputs<'_>) -> Summary {
        let duration_s = nanos_to_secs(inp.end);
        let slo = inp.slo;

        let n_rep = inp.replicas.len();
        let acc = inp.requests;
        let (completed, preemptions) = (acc.completed, acc.preemptions);
        let (input_tokens, output_tokens, good) = (acc.input_tokens, acc.output_tokens, acc.good);
        let rejected = RejectedCounts {
            exceeds_max_model_len: acc.rejected_max_model_len,
            exceeds_kv_capacity: acc.rejected_kv_capacity,
        };
        let n = completed + acc.rejected();
        let n_rejected = acc.rejected();
        let ttft_stats = acc.ttft.stats();
        let tpot_stats = acc.tpot.stats();
        let e2el_stats = acc.e2el.stats();
        let queue_delay = acc.queue_delay.stats();
        let itl = LatencyStats::from_histogram("itl", inp.itl);

        // Run-level SLO checks: rejected requests are +∞ samples.
        let pct = if slo.percentile.is_nan() {
            0.0
        } else {
            slo.percentile.clamp(0.0, 100.0)
        };
        let mut checks = Vec::new();
        for (metric, thr_s, values) in [
            ("ttft", slo.ttft, &mut acc.ttft),
            ("tpot", slo.tpot, &mut acc.tpot),
            ("e2el", slo.e2e, &mut acc.e2el),
        ] {
            if thr_s <= 0.0 {
                continue;
            }
            let threshold_ms = thr_s * 1e3;
            let samples = values.count();
            let check = if samples + n_rejected == 0 {
                // No value to judge: an empty percentile is not 0 ms.
                SloCheck {
                    metric,
                    threshold_ms,
                    value_ms: None,
                    samples,
                    met: completed > 0,
                }
            } else {
                let value = values.percentile_with_infinite(pct, n_rejected);
                SloCheck {
                    metric,
                    threshold_ms,
                    value_ms: value.is_finite().then_some(value),
                    samples,
                    met: value <= threshold_ms,
                }
            };
            checks.push(check);
        }
        let slo_met = completed > 0 && checks.iter().all(|c| c.met);

        // Utilisation.
        let busy: Vec<u64> = inp
            .replicas
            .iter()
            .map(|r| r.busy_ns.saturating_sub(r.last_end.saturating_sub(inp.end)))
            .collect();
        let busy_total: u128 = busy.iter().map(|&b| b as u128).sum();
        let iter_time: u128 = inp.replicas.iter().map(|r| r.busy_ns as u128).sum();
        let per_replica = inp
            .replicas
            .iter()
            .enumerate()
            .map(|(i, r)| ReplicaSummary {
                replica: i as u32,
                completed: acc.per_replica_completed.get(i).copied().unwrap_or(0),
                output_tokens: acc.per_replica_output.get(i).copied().unwrap_or(0),
                iterations: r.iterations,
                busy_fraction: per(nanos_to_secs(busy[i]), duration_s),
            })
            .collect();
        let total_tokens = (input_tokens + output_tokens) as f64;
        let ms_thr = |s: f64| (s > 0.0).then_some(s * 1e3);

        Summary {
            duration_s,
            sample_interval_s: inp.sample_interval_s,
            completed,
            rejected: n_rejected,
            rejected_by_reason: rejected,
            preemptions,
            memory: inp.memory,
            total_input_tokens: input_tokens,
            total_output_tokens: output_tokens,
            request_throughput: per(completed as f64, duration_s),
            request_goodput: per(good as f64, duration_s),
            output_throughput: per(output_tokens as f64, duration_s),
            input_throughput: per(input_tokens as f64, duration_s),
            total_token_throughput: per(total_tokens, duration_s),
            ttft: ttft_stats,
            tpot: tpot_stats,
            itl,
            e2el: e2el_stats,
            queue_delay,
            slo_percentile: pct,
            slo_ttft_ms: ms_thr(slo.ttft),
            slo_tpot_ms: ms_thr(slo.tpot),
            slo_e2el_ms: ms_thr(slo.e2e),
            slo_attainment: if n > 0 { good as f64 / n as f64 } else { 0.0 },
            slo_met,
            slo_checks: checks,
            iterations: inp.replicas.iter().map(|r| r.iterations).sum(),
            mfu: per(inp.iter.flops, inp.info.peak_flops * duration_s),
            mbu: per(inp.iter.hbm_bytes, inp.info.peak_hbm_bandwidth * duration_s),
            busy_fraction: per(busy_total as f64 / NANOS_PER_SEC, n_rep as f64 * duration_s),
            mean_batch_seqs: per(inp.iter.seqs_time as f64, iter_time as f64),
            mean_batch_tokens: per(inp.iter.tokens_time as f64, iter_time as f64),
            mean_kv_utilization: inp.kv.mean(),
            max_kv_utilization: inp.kv.mean().map(|_| inp.kv.max),
            per_replica,
            kv_transfer: None,
            warnings: Vec::new(),
            run: inp.info,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::metrics::test_util::*;
    use crate::scenario::config::MetricsConfig;
    use crate::timing::{BatchShape, IterationCost};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// `sort_values` gives the bits a comparison sort in `total_cmp` order
    /// gives, on both sides of its radix threshold, with the values that
    /// order treats specially (signed zeros, infinities, NaNs, subnormals).
    #[test]
    fn sort_values_is_total_cmp_order() {
        let special = [
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::MIN_POSITIVE / 4.0,
            -f64::MIN_POSITIVE / 4.0,
            f64::MAX,
            f64::MIN,
        ];
        for n in [0usize, 1, 7, 511, 512, 513, 5000] {
            // A fixed pseudo-random mix of magnitudes, signs and duplicates.
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            let mut values: Vec<f64> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match i % 5 {
                        0 => special[(x % special.len() as u64) as usize],
                        1 => (x % 1000) as f64 / 8.0,
                        2 => -((x % 97) as f64) * 1e-3,
                        _ => f64::from_bits(x >> 2) * if x & 1 == 0 { 1.0 } else { -1.0 },
                    }
                })
                .collect();
            let mut want = values.clone();
            want.sort_by(f64::total_cmp);
            sort_values(&mut values);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&values), bits(&want), "{n} values");
        }
    }

    #[test]
    fn percentile_matches_numpy() {
        // numpy docs: a = [[10, 7, 4], [3, 2, 1]]; np.percentile(a, 50) == 3.5,
        // np.percentile(a, 50, axis=0) == [6.5, 4.5, 2.5].
        assert_eq!(percentile_sorted(&[1.0, 2.0, 3.0, 4.0, 7.0, 10.0], 50.0), 3.5);
        assert_eq!(percentile_sorted(&[3.0, 10.0], 50.0), 6.5);
        assert_eq!(percentile_sorted(&[1.0, 4.0], 50.0), 2.5);
        // h = (n-1)·p/100: [1,2,3,4] p90 → h = 2.7 → 3.7; [15,20,35,40,50] p40 → 29.
        assert!(close(percentile_sorted(&[1.0, 2.0, 3.0, 4.0], 90.0), 3.7));
        assert!(close(
            percentile_sorted(&[15.0, 20.0, 35.0, 40.0, 50.0], 40.0),
            29.0
        ));
        // From t = 0.5 on numpy interpolates back from the upper value,
        // b − (b − a)(1 − t): 0.17 to the last bit, where a + (b − a)t gives
        // 0.16999999999999998.
        assert_eq!(percentile_sorted(&[0.1, 0.2], 70.0), 0.17);
        assert_eq!(percentile_sorted(&[4.0, 7.0, 10.0], 25.0), 5.5);
        assert_eq!(percentile_sorted(&[4.0, 7.0, 10.0], 0.0), 4.0);
        assert_eq!(percentile_sorted(&[4.0, 7.0, 10.0], 100.0), 10.0);
        assert_eq!(percentile_sorted(&[5.0], 70.0), 5.0);
        assert_eq!(percentile_sorted(&[], 70.0), 0.0);
        // +inf (rejections): interpolating towards it is inf; landing exactly before it is finite.
        assert_eq!(percentile_sorted(&[1.0, f64::INFINITY], 50.0), f64::INFINITY);
        assert_eq!(percentile_sorted(&[1.0, 2.0, f64::INFINITY], 50.0), 2.0);
    }

    /// The standard deviation is numpy's two-pass one: latencies of about
    /// 10^9 ms spread by a few ms keep it (deviations −4/3, −1/3, 5/3:
    /// √(14/9) = 1.2472…), where Σx² − n·mean² cancels to nothing.
    #[test]
    fn std_of_large_values_with_a_small_spread_survives_cancellation() {
        let mut values = [1e9 + 3.0, 1e9, 1e9 + 1.0];
        let s = LatencyStats::from_values("e2el", &mut values);
        let want = (14.0f64 / 9.0).sqrt();
        assert!((s.std - want).abs() <= 1e-6 * want, "{}", s.std);
    }

    #[test]
    fn the_kv_memory_line_states_hits_preemptions_and_swap_volume() {
        let m = MemorySummary {
            prefix_cache_hit_rate: 0.25,
            prefix_hit_tokens: 100,
            prefix_queried_tokens: 400,
            preemptions_recompute: 3,
            preemptions_swap: 1,
            swapped_out_bytes: 1.5e9,
            ..MemorySummary::default()
        };
        assert_eq!(
            m.line(),
            "prefix cache hit rate 25.00%, 3 recompute / 1 swap preemptions, 1.50 GB swapped out"
        );
    }

    #[test]
    fn hand_example_throughput_latency_slo() {
        let s = small_report().summary;
        assert_eq!(s.duration_s, 10.0);
        assert_eq!((s.completed, s.rejected), (4, 1));
        assert_eq!(s.rejected_by_reason.exceeds_max_model_len, 1);
        assert_eq!(s.total_input_tokens, 650);
        assert_eq!(s.total_output_tokens, 74);
        assert!(close(s.request_throughput, 0.4));
        assert!(close(s.output_throughput, 7.4));
        assert!(close(s.input_throughput, 65.0));
        assert!(close(s.total_token_throughput, 72.4));

        // TTFT 100, 200, 300, 900 ms.
        assert_eq!(s.ttft.count, 4);
        assert!(close(s.ttft.mean, 375.0));
        assert!(close(s.ttft.median, 250.0));
        assert!(close(s.ttft.p90, 720.0));
        assert!(close(s.ttft.max, 900.0));
        // TPOT: 1000/20 = 50, 2000/40 = 50, 1100/10 = 110; the 1-token request is excluded.
        assert_eq!(s.tpot.count, 3);
        assert!(close(s.tpot.mean, 70.0));
        assert!(close(s.tpot.median, 50.0));
        assert!(close(s.tpot.max, 110.0));
        // E2EL 1100, 200, 2300, 2000; queue delay 5, 0, 20, 10.
        assert!(close(s.e2el.mean, 1400.0));
        assert!(close(s.queue_delay.mean, 8.75));
        assert!(close(s.queue_delay.max, 20.0));
        // ITL: 30×50 + 10×40 + 30×200 ms.
        assert_eq!(s.itl.count, 70);
        assert!(close(s.itl.mean, 7900.0 / 70.0));
        assert_eq!(s.itl.max, 200.0);
        // Each bucket holds one distinct gap here, so the histogram is exact.
        assert_eq!(s.itl.median, 50.0);
        assert_eq!(s.itl.p90, 200.0);

        // SLO ttft 500 ms, tpot 50 ms: requests 0, 1 (single token), 2 meet;
        // 3 (TTFT 900) and the rejected one do not.
        assert!(close(s.slo_attainment, 3.0 / 5.0));
        assert!(close(s.request_goodput, 0.3));
        assert_eq!(s.slo_ttft_ms, Some(500.0));
        assert_eq!(s.slo_tpot_ms, Some(50.0));
        assert_eq!(s.slo_e2el_ms, None);
        // p90 of TTFT over [100, 200, 300, 900, inf] lands between 900 and inf.
        assert_eq!(s.slo_checks.len(), 2);
        assert_eq!(s.slo_checks[0].metric, "ttft");
        assert_eq!(s.slo_checks[0].value_ms, None);
        assert!(!s.slo_met);

        // Utilisation: 4 iterations of 0.5 s, 1e15 flops and 1e12 bytes each.
        assert_eq!(s.iterations, 4);
        assert!(close(s.mfu, 4e15 / (2e15 * 10.0)));
        assert!(close(s.mbu, 4e12 / (6.7e12 * 10.0)));
        assert!(close(s.busy_fraction, 0.1));
        assert!(close(s.mean_batch_seqs, 4.0));
        assert!(close(s.mean_batch_tokens, 103.0));
        assert!(close(s.mean_kv_utilization.unwrap(), 0.3));
        assert!(close(s.max_kv_utilization.unwrap(), 0.6));
        assert_eq!(s.per_replica.len(), 2);
        assert_eq!(s.per_replica[0].completed, 2);
        assert_eq!(s.per_replica[0].output_tokens, 62);
        assert_eq!(s.per_replica[1].output_tokens, 12);
        assert!(close(s.per_replica[1].busy_fraction, 0.1));
    }

    fn slo(ttft: f64, tpot: f64, e2e: f64, percentile: f64) -> SloConfig {
        SloConfig {
            ttft,
            tpot,
            e2e,
            percentile,
        }
    }

    #[test]
    fn slo_met_at_percentile_and_rejections() {
        // Ten requests with TTFT 100..1000 ms, 10 tokens 10 ms apart, 1 s apart.
        let build = |slo: &SloConfig, rejected: u64| {
            let mut m = Metrics::new(1, &MetricsConfig::default(), slo);
            for i in 0..10u64 {
                let a = i * S;
                let first = a + (i + 1) * 100 * MS;
                m.record_request(finished(i, 0, a, a, first, first + 90 * MS, 10, 10));
            }
            for j in 0..rejected {
                m.record_request(rejected_rec(100 + j));
            }
            m.finish(info(), 20 * S).summary
        };
        fn rejected_rec(id: u64) -> crate::metrics::RequestRecord {
            rejected(id, 0, crate::metrics::RejectReason::ExceedsKvCapacity)
        }
        // p90 TTFT = 910 ms ≤ 950; TPOT 10 ms ≤ 10 ms; 9 of 10 meet TTFT 950.
        let s = build(&slo(0.95, 0.01, 0.0, 90.0), 0);
        assert!(s.slo_met);
        assert!(close(s.slo_checks[0].value_ms.unwrap(), 910.0));
        assert!(close(s.slo_attainment, 0.9));
        assert!(close(s.request_goodput, 9.0 / 20.0));
        // Tighter: p90 910 > 900 → missed.
        assert!(!build(&slo(0.9, 0.0, 0.0, 90.0), 0).slo_met);
        // Rejections count as infinite: 2 of 12 rejected pushes p90 onto them.
        let s = build(&slo(0.95, 0.0, 0.0, 90.0), 2);
        assert_eq!(s.rejected_by_reason.exceeds_kv_capacity, 2);
        assert!(!s.slo_met);
        assert_eq!(s.slo_checks[0].value_ms, None);
        assert!(close(s.slo_attainment, 9.0 / 12.0));
        // One rejection of 11: p90 rank h = 9.0 → the 10th value (1000 ms), finite.
        let s = build(&slo(1.0, 0.0, 0.0, 90.0), 1);
        assert!(close(s.slo_checks[0].value_ms.unwrap(), 1000.0));
        assert!(s.slo_met);
        // No thresholds: everything completed is good; goodput = throughput.
        let s = build(&slo(0.0, 0.0, 0.0, 90.0), 3);
        assert!(s.slo_checks.is_empty() && s.slo_met);
        assert_eq!(s.request_goodput, s.request_throughput);
        assert!(close(s.slo_attainment, 10.0 / 13.0));
        // E2E threshold: E2EL = TTFT + 90 ms.
        let s = build(&slo(0.0, 0.0, 0.5, 50.0), 0);
        assert!(close(s.slo_attainment, 0.4));
        assert!(!s.slo_met); // median E2EL = 640 ms
    }

    #[test]
    fn tpot_threshold_is_exact_and_single_token_requests_excluded() {
        let slo = slo(0.0, 0.02, 0.0, 99.0);
        let mut m = Metrics::new(1, &MetricsConfig::default(), &slo);
        // 3 tokens in 40 ms after the first: TPOT exactly 20 ms → meets.
        m.record_request(finished(0, 0, 0, 0, S, S + 40 * MS, 5, 3));
        // 1 ns slower → misses.
        m.record_request(finished(1, 0, 0, 0, S, S + 40 * MS + 1, 5, 3));
        // Single token: no TPOT, meets vacuously, even when it is returned
        // a second after its token (as a static batch returns it at its end).
        m.record_request(finished(2, 0, 0, 0, 5 * S, 6 * S, 5, 1));
        m.record_request(finished(3, 0, 0, 0, 7 * S, 7 * S, 5, 1));
        let s = m.finish(info(), 10 * S).summary;
        assert_eq!(s.tpot.count, 2);
        assert!(close(s.tpot.mean, 20.00000025));
        // Requests 0, 2 and 3 meet: judging only the single-token ones (or
        // only the longer ones) would give 2 of 4.
        assert!(close(s.slo_attainment, 3.0 / 4.0));
    }

    /// Two replicas' lifetime memory counters add up; bytes are each
    /// replica's blocks times its own block size; the hit rate is Σ hits /
    /// Σ queried tokens.
    #[test]
    fn memory_counters_sum_over_replicas() {
        use crate::replica::state::MemoryCounters;
        let mut m = Metrics::new(2, &MetricsConfig::default(), &SloConfig::default());
        let a = MemoryCounters {
            preemptions_recompute: 1,
            preemptions_swap: 2,
            swapped_out_blocks: 3,
            swapped_in_blocks: 4,
            prefix_hit_tokens: 30,
            prefix_queried_tokens: 100,
            prefix_evicted_blocks: 5,
        };
        let b = MemoryCounters {
            preemptions_recompute: 10,
            preemptions_swap: 20,
            swapped_out_blocks: 30,
            swapped_in_blocks: 40,
            prefix_hit_tokens: 20,
            prefix_queried_tokens: 400,
            prefix_evicted_blocks: 50,
        };
        m.record_memory(&a, 1_000.0);
        m.record_memory(&b, 10.0);
        let s = m.finish(info(), 10 * S).summary.memory;
        assert_eq!((s.preemptions_recompute, s.preemptions_swap), (11, 22));
        assert_eq!(s.swapped_out_bytes, 3_000.0 + 300.0);
        assert_eq!(s.swapped_in_bytes, 4_000.0 + 400.0);
        assert_eq!((s.prefix_hit_tokens, s.prefix_queried_tokens), (50, 500));
        assert_eq!(s.prefix_evicted_blocks, 55);
        assert_eq!(s.prefix_cache_hit_rate, 0.1);
        // Nothing queried: a rate of 0, not NaN.
        let m = Metrics::new(1, &MetricsConfig::default(), &SloConfig::default());
        assert_eq!(m.finish(info(), S).summary.memory.prefix_cache_hit_rate, 0.0);
    }

    #[test]
    fn a_threshold_without_values_is_not_judged_on_a_zero() {
        // Only single-token requests: TPOT has no value, holds vacuously.
        let build = |slo: &SloConfig, n: u64, rejected_n: u64| {
            let mut m = Metrics::new(1, &MetricsConfig::default(), slo);
            for i in 0..n {
                m.record_request(finished(i, 0, 0, 0, S, S, 5, 1));
            }
            for j in 0..rejected_n {
                let why = crate::metrics::RejectReason::ExceedsKvCapacity;
                m.record_request(rejected(100 + j, 0, why));
            }
            m.finish(info(), 10 * S).summary
        };
        let s = build(&slo(0.0, 0.001, 0.0, 90.0), 3, 0);
        let c = &s.slo_checks[0];
        assert_eq!((c.metric, c.samples, c.value_ms, c.met), ("tpot", 0, None, true));
        assert!(s.slo_met);
        // Nothing at all: no TTFT value, and an empty run meets no SLO (a
        // zero percentile would have read 0 ms ≤ 500 ms).
        let s = build(&slo(0.5, 0.001, 0.0, 90.0), 0, 0);
        for c in &s.slo_checks {
            assert_eq!((c.samples, c.value_ms, c.met), (0, None, false), "{}", c.metric);
        }
        assert!(!s.slo_met);
        // p90 of [1000, 1000, +inf] is +inf; samples count completions only.
        let s = build(&slo(0.5, 0.0, 0.0, 90.0), 2, 1);
        let c = &s.slo_checks[0];
        assert_eq!((c.samples, c.value_ms, c.met), (2, None, false));
        // Single-token completions and a rejection: TPOT's percentile is
        // over the rejection alone, +inf, missed (not vacuously met).
        let s = build(&slo(0.0, 0.001, 0.0, 90.0), 3, 1);
        let c = &s.slo_checks[0];
        assert_eq!((c.samples, c.value_ms, c.met), (0, None, false));
        // Only a rejection: +inf too, not "no value".
        let mut t = Metrics::new(1, &MetricsConfig::default(), &slo(0.5, 0.0, 0.0, 90.0));
        t.record_request(rejected(7, 0, crate::metrics::RejectReason::ExceedsKvCapacity));
        let table = t.finish(info(), 10 * S).table();
        assert!(
            table.contains("TTFT <= 500 ms: p90 inf (rejections) MISSED"),
            "{table}"
        );
    }

    #[test]
    fn preemptions_busy_clipping_and_empty_run() {
        let mut m = Metrics::new(2, &MetricsConfig::default(), &SloConfig::default());
        let mut r = finished(0, 1, 0, 0, MS, 2 * MS, 1, 2);
        r.preemptions = 3;
        m.record_request(r);
        let mut rej = rejected(1, 0, crate::metrics::RejectReason::ExceedsMaxModelLen);
        rej.preemptions = 0;
        assert_eq!(rej.outcome.status(), "rejected_exceeds_max_model_len");
        m.record_request(rej);
        let b = BatchShape {
            decode_seqs: 8,
            ..Default::default()
        };
        let c = IterationCost {
            duration: 500 * MS,
            flops: 0.0,
            hbm_bytes: 0.0,
            host: 0,
            stage: 500 * MS,
        };
        // 9.8 s + 0.5 s overruns the 10 s end by 0.3 s: only 0.2 s counts.
        m.record_iteration(1, 9 * S + 800 * MS, &b, &c);
        let s = m.finish(info(), 10 * S).summary;
        assert_eq!(s.preemptions, 3);
        assert!(close(s.per_replica[1].busy_fraction, 0.02));
        assert_eq!(s.per_replica[0].busy_fraction, 0.0);
        assert!(close(s.busy_fraction, 0.01));
        assert_eq!(s.mean_batch_seqs, 8.0);

        let empty = Metrics::new(1, &MetricsConfig::default(), &SloConfig::default());
        let s = empty.finish(info(), 0).summary;
        assert_eq!(s.request_throughput, 0.0);
        assert_eq!(s.slo_attainment, 0.0);
        assert!(!s.slo_met);
        assert_eq!(s.ttft.count, 0);
        // No samples: null, not a 0 nobody measured; and the run says why.
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"mfu\":0.0"));
        for key in [
            "mean_ttft_ms",
            "p99_tpot_ms",
            "max_itl_ms",
            "std_e2el_ms",
            "median_queue_delay_ms",
        ] {
            assert!(json.contains(&format!("\"{key}\":null")), "{key}: {json}");
        }
        assert!(json.contains("\"mean_kv_utilization\":null"), "{json}");
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("no request completed"), "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains("sent none"),
            "no request at all: {:?}",
            s.warnings
        );
        // A clock near its end is said to make every figure meaningless;
        // just below half its range it is not.
        let late = Metrics::new(1, &MetricsConfig::default(), &SloConfig::default());
        let s = late.finish(info(), u64::MAX / 2).summary;
        assert!(s.warnings[0].contains("584 years"), "{:?}", s.warnings);
        let early = Metrics::new(1, &MetricsConfig::default(), &SloConfig::default());
        let s = early.finish(info(), u64::MAX / 2 - 1).summary;
        assert!(
            !s.warnings.iter().any(|w| w.contains("584 years")),
            "{:?}",
            s.warnings
        );
        assert_eq!(crate::metrics::Outcome::Finished.status(), "finished");
    }
}
