//! Metrics: per-request records, streaming histograms, summaries and the
//! writers of `summary.json`, `requests.csv`, `timeseries.csv` and the
//! summary table.
//!
//! The engine feeds a `Metrics` collector during the run and calls
//! `Metrics::finish` once at the end, which returns a [`Report`]:
//!
//! - `Metrics::record_request`: one [`RequestRecord`] per finished or
//!   rejected request, into the summary's accumulators ([`latency`]: exact
//!   up to 2^20 values, within 0.1 % beyond) and then kept, dropped or
//!   streamed to `requests.csv` as [`Records`] says;
//! - `Metrics::record_itl`: inter-token gaps, into a log-bucketed
//!   [`LogHistogram`] (never stored one by one);
//! - `Metrics::record_iteration`: per-iteration time, FLOPs, bytes and
//!   batch size, into O(1) accumulators;
//! - `Metrics::record_samples`: periodic replica snapshots
//!   (`timeseries.csv`), kept in bounded memory by [`timeseries`].
//!
//! Module layout: [`histogram`] (the ITL histogram and its error bound),
//! [`summary`] (every metric's definition), `writers` (`summary.json` and
//! the CSV files), `table` (the terminal table).
//!
//! Determinism: the collector uses no hash maps and no wall-clock time;
//! records are sorted by id and samples by (time, replica) before anything is
//! written, and numbers are formatted by deterministic routines (serde_json's
//! shortest round-trip floats, fixed-point decimals in the CSV files), so
//! identical inputs give byte-identical files.

pub mod histogram;
pub mod latency;
mod stream;
#[doc(hidden)]
pub mod summary;
mod table;
pub mod timeseries;
mod transfer;
mod writers;

pub use histogram::LogHistogram;
pub use stream::Records;
pub use summary::{LatencyStats, MemorySummary, RejectedCounts, ReplicaSummary, SloCheck, Summary};
pub use transfer::{KvTransferSummary, TransferRecord};

use crate::output::trace::TraceRecorder;
use crate::scenario::config::{MetricsConfig, SloConfig};
use crate::timing::{BatchShape, IterationCost};
use crate::units::Nanos;
use crate::workload::feedback::{Completion, FirstToken};
use latency::RequestAcc;
use serde::Serialize;
use stream::RequestStream;
use summary::{IterAcc, ReplicaAcc};
use timeseries::TimeSeries;

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Prompt + output exceed the model's (or engine's) maximum context.
    ExceedsMaxModelLen,
    /// The request's KV cache can never fit in the replica's KV capacity.
    ExceedsKvCapacity,
}

impl RejectReason {
    /// Snake-case name used in outputs ("exceeds_max_model_len", "exceeds_kv_capacity").
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::ExceedsMaxModelLen => "exceeds_max_model_len",
            RejectReason::ExceedsKvCapacity => "exceeds_kv_capacity",
        }
    }
}

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Rejected(RejectReason),
}

impl Outcome {
    /// The `status` column of `requests.csv`: "finished",
    /// "rejected_exceeds_max_model_len" or "rejected_exceeds_kv_capacity".
    pub fn status(self) -> &'static str {
        match self {
            Outcome::Finished => "finished",
            Outcome::Rejected(RejectReason::ExceedsMaxModelLen) => "rejected_exceeds_max_model_len",
            Outcome::Rejected(RejectReason::ExceedsKvCapacity) => "rejected_exceeds_kv_capacity",
        }
    }
}

/// The life of one request, recorded when it finishes or is rejected.
/// Times are absolute simulated times; for rejected requests only
/// `arrival` and `finish` (the rejection time) are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: u64,
    pub client: u32,
    /// The workload's session and program ids (see `RequestSpec`).
    pub session: Option<u64>,
    pub program: Option<u64>,
    pub replica: u32,
    pub arrival: Nanos,
    /// First time a scheduler put the request in a batch.
    pub scheduled: Nanos,
    pub first_token: Nanos,
    pub finish: Nanos,
    pub prompt_tokens: u32,
    /// Tokens generated (equals the requested output tokens when finished).
    pub output_tokens: u32,
    pub preemptions: u32,
    /// Prompt tokens served from the prefix cache at first admission.
    pub cached_tokens: u32,
    pub outcome: Outcome,
}

impl RequestRecord {
    pub fn is_finished(&self) -> bool {
        self.outcome == Outcome::Finished
    }

    /// Time to first token, first_token − arrival (finished requests only; vLLM).
    pub fn ttft_ns(&self) -> Option<Nanos> {
        self.is_finished()
            .then(|| self.first_token.saturating_sub(self.arrival))
    }

    /// Time per output token, (finish − first_token) / (output_tokens − 1),
    /// for finished requests with more than one output token (vLLM).
    pub fn tpot_ns(&self) -> Option<f64> {
        (self.is_finished() && self.output_tokens > 1)
            .then(|| self.finish.saturating_sub(self.first_token) as f64 / (self.output_tokens - 1) as f64)
    }

    /// End-to-end latency, finish − arrival (finished requests only; vLLM).
    pub fn e2el_ns(&self) -> Option<Nanos> {
        self.is_finished()
            .then(|| self.finish.saturating_sub(self.arrival))
    }

    /// Queue delay, scheduled − arrival (finished requests only).
    pub fn queue_delay_ns(&self) -> Option<Nanos> {
        self.is_finished()
            .then(|| self.scheduled.saturating_sub(self.arrival))
    }
}

/// State of one replica at a sampling instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaSample {
    /// Requests waiting for admission.
    pub queued: u32,
    /// Requests admitted (holding KV blocks).
    pub running: u32,
    pub kv_blocks_used: u64,
    pub kv_blocks_total: u64,
    /// Sequences in the iteration in flight (0 when idle).
    pub batch_seqs: u32,
    /// Tokens in the iteration in flight (0 when idle).
    pub batch_tokens: u32,
    /// KV blocks held by the prefix cache (part of `kv_blocks_used`).
    pub cache_blocks: u64,
}

/// One row of `timeseries.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub time: Nanos,
    pub replica: u32,
    pub state: ReplicaSample,
}

/// Facts about the run that the summary reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunInfo {
    pub scenario: String,
    pub model: String,
    pub device: String,
    pub replicas: u32,
    pub tp: u32,
    pub pp: u32,
    pub devices: u32,
    /// The cluster pool by pool with its device count (`Plan::shape`).
    pub cluster: String,
    pub scheduler: String,
    pub router: String,
    pub seed: u64,
    /// Peak FLOP/s and HBM bytes/s of the whole cluster (for MFU / MBU).
    pub peak_flops: f64,
    pub peak_hbm_bandwidth: f64,
    pub kv_blocks_per_replica: u64,
    pub block_size: u32,
    /// Virtual engines per replica (pipeline micro-batches in flight); each
    /// counts as a replica in `replicas` and in the per-replica figures.
    pub virtual_engines: u32,
}

/// The run's metrics collector. All `record_*` methods are O(1) and
/// allocate only through amortised pushes of request records and samples.
#[derive(Debug)]
pub(crate) struct Metrics {
    slo: SloConfig,
    /// The summary's per-request counts and latency statistics.
    requests: RequestAcc,
    /// Every record (`Records::Keep` only).
    records: Vec<RequestRecord>,
    keep_records: bool,
    /// `requests.csv` being written (`Records::Stream` only).
    stream: Option<Box<RequestStream>>,
    series: TimeSeries,
    itl: LogHistogram,
    iter: IterAcc,
    replicas: Vec<ReplicaAcc>,
    /// Every hand-off (`Records::Keep` only: requests.csv and the trace).
    transfers: Vec<TransferRecord>,
    /// The `kv_transfer` statistics of every hand-off.
    transfer_stats: transfer::TransferAcc,
    /// KV bytes sent and received (disaggregated / semi-PD runs).
    kv_bytes: Option<(u64, u64)>,
    /// The trace recorder, when a trace was asked for (`None`: no cost).
    trace: Option<Box<TraceRecorder>>,
    memory: MemorySummary,
    /// Ends of requests not yet delivered to a listening workload (`None`:
    /// the workload does not listen, nothing is collected).
    outbox: Option<Vec<Completion>>,
    /// First tokens not yet delivered to a workload that listens to them.
    first_tokens: Option<Vec<FirstToken>>,
    /// Warnings for the summary (`Summary::warnings`).
    warnings: Vec<String>,
}

impl Metrics {
    pub fn new(num_replicas: u32, cfg: &MetricsConfig, slo: &SloConfig) -> Self {
        Metrics {
            slo: slo.clone(),
            requests: RequestAcc::new(slo, num_replicas),
            records: Vec::new(),
            keep_records: true,
            stream: None,
            series: TimeSeries::new(crate::units::secs_to_nanos(cfg.sample_interval), num_replicas),
            itl: LogHistogram::new(),
            iter: IterAcc::default(),
            replicas: vec![ReplicaAcc::default(); num_replicas as usize],
            transfers: Vec::new(),
            transfer_stats: transfer::TransferAcc::default(),
            kv_bytes: None,
            trace: None,
            memory: MemorySummary::default(),
            outbox: None,
            first_tokens: None,
            warnings: Vec::new(),
        }
    }

    /// Adds a warning to the summary (in the order given).
    pub fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    /// Chooses what becomes of request records (before the run starts);
    /// `Records::Stream` creates its temporary file.
    pub fn set_records(&mut self, records: &Records) -> crate::error::Result<()> {
        self.keep_records = *records == Records::Keep;
        self.stream = match records {
            Records::Stream(path) => Some(Box::new(RequestStream::create(path)?)),
            _ => None,
        };
        Ok(())
    }

    /// Collects every request's end for the workload from now on.
    pub fn collect_completions(&mut self) {
        self.outbox.get_or_insert_with(Vec::new);
    }

    /// Moves the collected completions into `into` (cleared first); the two
    /// buffers trade places, so neither allocates once both have grown.
    pub fn take_completions(&mut self, into: &mut Vec<Completion>) {
        into.clear();
        if let Some(out) = self.outbox.as_mut() {
            std::mem::swap(out, into);
        }
    }

    /// Collects every request's first token for the workload from now on.
    pub fn collect_first_tokens(&mut self) {
        self.first_tokens.get_or_insert_with(Vec::new);
    }

    /// Request `id` of `client` showed its first token at `at` (a no-op
    /// unless first tokens are collected).
    #[inline]
    pub fn record_first_token(&mut self, id: u64, client: u32, at: Nanos) {
        if let Some(out) = self.first_tokens.as_mut() {
            out.push(FirstToken { id, client, at });
        }
    }

    /// Moves the collected first tokens into `into` (cleared first),
    /// trading buffers as [`Metrics::take_completions`] does.
    pub fn take_first_tokens(&mut self, into: &mut Vec<FirstToken>) {
        into.clear();
        if let Some(out) = self.first_tokens.as_mut() {
            std::mem::swap(out, into);
        }
    }

    /// Turns tracing on: the engine's hooks feed `rec` from now on.
    pub fn set_trace(&mut self, rec: TraceRecorder) {
        self.trace = Some(Box::new(rec));
    }

    /// The trace recorder, if tracing is on (the hooks' one cheap check).
    #[inline]
    pub fn tracer(&mut self) -> Option<&mut TraceRecorder> {
        self.trace.as_deref_mut()
    }

    /// A request finished or was rejected.
    pub fn record_request(&mut self, rec: RequestRecord) {
        if let Some(out) = self.outbox.as_mut() {
            out.push(Completion {
                id: rec.id,
                client: rec.client,
                session: rec.session,
                program: rec.program,
                first_token: rec.first_token,
                finish: rec.finish,
                output_tokens: rec.output_tokens,
                finished: rec.is_finished(),
            });
        }
        self.requests.record(&rec);
        if self.keep_records {
            self.records.push(rec);
        } else if let Some(st) = self.stream.as_mut() {
            st.push(rec);
        }
    }

    /// Requests recorded so far (finished or rejected).
    #[inline]
    pub fn ended(&self) -> u64 {
        self.requests.completed + self.requests.rejected()
    }

    /// `weight` requests each saw inter-token gap `gap` (one call per cohort
    /// per iteration; O(1)).
    #[inline]
    pub fn record_itl(&mut self, gap: Nanos, weight: u32) {
        self.itl.record(gap, weight);
    }

    /// The inter-token gaps recorded so far.
    #[cfg(test)]
    pub(crate) fn itl_histogram(&self) -> &LogHistogram {
        &self.itl
    }

    /// The requests recorded so far, in recording order.
    #[cfg(test)]
    pub(crate) fn records(&self) -> &[RequestRecord] {
        &self.records
    }

    /// An iteration of `replica` that started at `start` ended; O(1).
    /// Panics if `replica` is not below the `num_replicas` given to `new`.
    pub fn record_iteration(&mut self, replica: u32, start: Nanos, batch: &BatchShape, cost: &IterationCost) {
        let d = cost.duration;
        let acc = &mut self.replicas[replica as usize];
        acc.busy_ns += d;
        acc.iterations += 1;
        acc.last_end = acc.last_end.max(start.saturating_add(d));
        let seqs = (batch.prefill_seqs + batch.decode_seqs) as u128;
        self.iter.seqs_time += seqs * d as u128;
        self.iter.tokens_time += batch.total_tokens() as u128 * d as u128;
        self.iter.flops += cost.flops;
        self.iter.hbm_bytes += cost.hbm_bytes;
    }

    /// True when a sampling instant at or before `t` is still to be taken
    /// (the engine's one cheap check per event).
    #[inline]
    pub fn samples_due(&self, t: Nanos) -> bool {
        self.series.due(t)
    }

    /// Periodic snapshots: every sampling instant up to `t` sees the
    /// replicas in `states` (replica order); O(replicas) however many
    /// instants that is (see [`timeseries`]).
    pub fn record_samples(&mut self, t: Nanos, states: impl Iterator<Item = (u32, ReplicaSample)>) {
        self.series.record_span(t, states);
    }

    /// A prefilled request's KV reached its decode replica and was admitted.
    pub fn record_transfer(&mut self, rec: TransferRecord) {
        if let Some(st) = self.stream.as_mut() {
            st.transfer(rec.id, rec.transfer_ns());
        }
        self.transfer_stats.record(&rec);
        if self.keep_records {
            self.transfers.push(rec);
        }
    }

    /// Total KV bytes put on and taken off links (marks the run as disaggregated).
    pub fn set_kv_bytes(&mut self, sent: u64, received: u64) {
        self.kv_bytes = Some((sent, received));
    }

    /// Adds a replica's lifetime memory counters (at the end of the run);
    /// `block_bytes` is one KV block's bytes summed over the replica's devices.
    pub fn record_memory(&mut self, c: &crate::replica::state::MemoryCounters, block_bytes: f64) {
        let m = &mut self.memory;
        m.prefix_hit_tokens += c.prefix_hit_tokens;
        m.prefix_evicted_blocks += c.prefix_evicted_blocks;
        m.preemptions_recompute += c.preemptions_recompute;
        m.preemptions_swap += c.preemptions_swap;
        m.swapped_out_bytes += c.swapped_out_blocks as f64 * block_bytes;
        m.swapped_in_bytes += c.swapped_in_blocks as f64 * block_bytes;
        m.prefix_queried_tokens += c.prefix_queried_tokens;
    }

    /// Ends the run at simulated time `end` and computes the summary.
    pub fn finish(mut self, info: RunInfo, end: Nanos) -> Report {
        // Keys are unique (one record per request id, one sample per
        // replica per instant, one transfer per request), so an unstable
        // sort gives the one order there is, in place.
        self.records.sort_unstable_by_key(|r| r.id);
        self.transfers.sort_unstable_by_key(|t| t.id);
        let m = &mut self.memory;
        m.prefix_cache_hit_rate = if m.prefix_queried_tokens > 0 {
            m.prefix_hit_tokens as f64 / m.prefix_queried_tokens as f64
        } else {
            0.0
        };
        let mut summary = Summary::compute(summary::Inputs {
            info,
            end,
            sample_interval_s: crate::units::nanos_to_secs(self.series.interval()),
            slo: &self.slo,
            requests: &mut self.requests,
            kv: self.series.kv_stats(),
            itl: &self.itl,
            iter: self.iter,
            replicas: &self.replicas,
            memory: self.memory,
        });
        if self.series.interval() != self.series.requested_interval() {
            let (kept, asked) = (self.series.interval(), self.series.requested_interval());
            self.warnings.push(format!(
                "timeseries.csv keeps one sample every {} s, not every {} s (metrics.sample_interval), \
                 to stay within {} instants per replica; the summary's KV utilisation still counts every {} s instant",
                crate::units::nanos_to_secs(kept),
                crate::units::nanos_to_secs(asked),
                self.series.capacity(),
                crate::units::nanos_to_secs(asked),
            ));
        }
        if end >= Nanos::MAX / 2 {
            self.warnings.push(format!(
                "the simulated clock reached {:.0} years, near the end of its range (584 years): \
                 iterations are priced far too long (check [hardware.calibration] and the device), \
                 so no figure here is meaningful",
                crate::units::nanos_to_secs(end) / (365.25 * 86400.0)
            ));
        }
        if summary.completed == 0 {
            self.warnings.push(if summary.rejected > 0 {
                format!(
                    "no request completed: all {} were rejected, so every latency is n/a",
                    summary.rejected
                )
            } else {
                "no request completed (the workload sent none), so every latency is n/a".to_string()
            });
        }
        summary.warnings = std::mem::take(&mut self.warnings);
        summary.kv_transfer = self
            .kv_bytes
            .map(|(sent, received)| self.transfer_stats.summarize(sent, received));
        let requests_file = self
            .stream
            .map(|st| st.finish().map(|(partial, _)| partial).map_err(|e| e.to_string()));
        Report {
            summary,
            requests_file,
            requests: self.records,
            samples: self.series.into_rows(),
            itl: self.itl,
            transfers: self.transfers,
            trace: self.trace,
        }
    }
}

/// The outcome of a run: the summary plus the raw rows of the CSV files.
#[derive(Debug)]
pub struct Report {
    pub summary: Summary,
    /// Every request, sorted by id (empty unless records were kept:
    /// [`Records::Keep`], the default).
    pub requests: Vec<RequestRecord>,
    /// With [`Records::Stream`]: the finished temporary `requests.csv`
    /// (the first `write_dir` moves it into place), or the write error.
    pub(crate) requests_file: Option<std::result::Result<std::path::PathBuf, String>>,
    /// Every replica snapshot, sorted by (time, replica).
    pub samples: Vec<Sample>,
    /// Histogram of all inter-token gaps, ns.
    pub itl: LogHistogram,
    /// KV hand-offs (disaggregated / semi-PD runs), sorted by request id
    /// (kept with [`Records::Keep`] only, like `requests`).
    pub transfers: Vec<TransferRecord>,
    /// What the trace recorder collected (runs with tracing on only).
    #[doc(hidden)]
    pub trace: Option<Box<TraceRecorder>>,
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    pub fn info() -> RunInfo {
        RunInfo {
            scenario: "test".into(),
            model: "Llama-3-8B".into(),
            device: "H100-SXM".into(),
            replicas: 2,
            tp: 1,
            pp: 1,
            devices: 2,
            cluster: "2 replica(s) x TP1 x PP1 on H100-SXM = 2 device(s)".into(),
            scheduler: "vllm".into(),
            router: "round-robin".into(),
            seed: 7,
            peak_flops: 2.0e15,
            peak_hbm_bandwidth: 6.7e12,
            kv_blocks_per_replica: 1000,
            block_size: 16,
            virtual_engines: 1,
        }
    }

    pub const S: Nanos = 1_000_000_000;
    pub const MS: Nanos = 1_000_000;

    #[allow(clippy::too_many_arguments)]
    pub fn finished(
        id: u64,
        replica: u32,
        arrival: Nanos,
        scheduled: Nanos,
        first: Nanos,
        finish: Nanos,
        prompt: u32,
        output: u32,
    ) -> RequestRecord {
        RequestRecord {
            id,
            client: 0,
            session: None,
            program: None,
            replica,
            arrival,
            scheduled,
            first_token: first,
            finish,
            prompt_tokens: prompt,
            output_tokens: output,
            preemptions: 0,
            cached_tokens: 0,
            outcome: Outcome::Finished,
        }
    }

    pub fn rejected(id: u64, arrival: Nanos, reason: RejectReason) -> RequestRecord {
        RequestRecord {
            id,
            client: 1,
            session: None,
            program: None,
            replica: 0,
            arrival,
            scheduled: 0,
            first_token: 0,
            finish: arrival,
            prompt_tokens: 9000,
            output_tokens: 0,
            preemptions: 0,
            cached_tokens: 0,
            outcome: Outcome::Rejected(reason),
        }
    }

    /// A small run: 2 replicas, 4 finished + 1 rejected requests, some ITL,
    /// iterations and samples; ends at 10 s.
    pub fn small_report() -> Report {
        let slo = SloConfig {
            ttft: 0.5,
            tpot: 0.05,
            e2e: 0.0,
            percentile: 90.0,
        };
        let mut m = Metrics::new(2, &MetricsConfig::default(), &slo);
        m.record_request(finished(
            3,
            1,
            2 * S,
            2 * S + 10 * MS,
            2 * S + 900 * MS,
            4 * S,
            200,
            11,
        ));
        m.record_request(finished(0, 0, 0, 5 * MS, 100 * MS, 1100 * MS, 100, 21));
        m.record_request(rejected(4, 3 * S, RejectReason::ExceedsMaxModelLen));
        m.record_request(RequestRecord {
            session: Some(7),
            program: Some(3),
            ..finished(1, 1, 0, 0, 200 * MS, 200 * MS, 50, 1)
        });
        m.record_request(finished(
            2,
            0,
            S,
            S + 20 * MS,
            S + 300 * MS,
            3 * S + 300 * MS,
            300,
            41,
        ));
        m.record_itl(50 * MS, 30);
        m.record_itl(40 * MS, 10);
        m.record_itl(200 * MS, 30);
        for (rep, start) in [(0u32, 0), (1, 0), (0, S), (1, 2 * S)] {
            let mut b = BatchShape::default();
            b.add_prefill_chunk(0, 100);
            b.decode_seqs = 3;
            let cost = IterationCost {
                duration: 500 * MS,
                flops: 1e15,
                hbm_bytes: 1e12,
                host: 0,
                stage: 500 * MS,
            };
            m.record_iteration(rep, start, &b, &cost);
        }
        for t in 0..3u64 {
            m.record_samples(
                t * S,
                (0..2u32).map(|rep| {
                    let s = ReplicaSample {
                        queued: t as u32,
                        running: 2,
                        kv_blocks_used: 100 * (t + 1) * (rep as u64 + 1),
                        kv_blocks_total: 1000,
                        batch_seqs: 4,
                        batch_tokens: 103,
                        cache_blocks: 0,
                    };
                    (rep, s)
                }),
            );
        }
        m.finish(info(), 10 * S)
    }
}
