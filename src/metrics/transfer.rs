//! KV-transfer records of disaggregated runs (see `cluster::disagg`).

use super::latency::LatencyAcc;
use super::summary::NANOS_PER_MS;
use crate::units::Nanos;
use serde::Serialize;

/// One request's KV hand-off from a prefill replica to a decode replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferRecord {
    pub id: u64,
    /// Prefill replica (sender) and decode replica (receiver).
    pub from: u32,
    pub to: u32,
    /// KV bytes moved (0 in semi-PD: memory is shared).
    pub bytes: u64,
    /// Prefill done; the transfer was requested.
    pub ready: Nanos,
    /// The data started to move (its link ports were free).
    pub start: Nanos,
    /// The last byte arrived (latency included).
    pub arrival: Nanos,
    /// The decode replica took the request into its decoding set.
    pub admitted: Nanos,
}

impl TransferRecord {
    /// Transfer time: arrival − ready (queueing on the link included).
    pub fn transfer_ns(&self) -> Nanos {
        self.arrival - self.ready
    }
}

/// `kv_transfer` in `summary.json` (disaggregated and semi-PD runs only).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KvTransferSummary {
    /// Requests handed from a prefill to a decode replica.
    pub transfers: u64,
    /// KV bytes put on links by prefill replicas / taken off by decode replicas.
    pub kv_bytes_sent: u64,
    pub kv_bytes_received: u64,
    /// Transfer time (prefill end → KV arrived), ms: mean, p50, p99.
    pub mean_transfer_ms: f64,
    pub p50_transfer_ms: f64,
    pub p99_transfer_ms: f64,
    /// Wait for decode admission after arrival (memory, batch limit), ms: mean, p99.
    pub mean_admission_wait_ms: f64,
    pub p99_admission_wait_ms: f64,
}

impl KvTransferSummary {
    /// The one-line account shown by the table and the report.
    pub fn line(&self) -> String {
        format!(
            "{} hand-offs, {:.2} GB, transfer mean {:.3} ms / p99 {:.3} ms, admission wait p99 {:.3} ms",
            self.transfers,
            self.kv_bytes_sent as f64 / 1e9,
            self.mean_transfer_ms,
            self.p99_transfer_ms,
            self.p99_admission_wait_ms
        )
    }
}

/// The `kv_transfer` statistics, accumulated one hand-off at a time in
/// bounded memory (exact up to 2^20 hand-offs, within 0.1 % beyond: see
/// `metrics::latency`). Percentiles are numpy's linear ones, like every
/// other latency percentile fleetsim reports.
#[derive(Debug, Clone)]
pub(crate) struct TransferAcc {
    transfer: LatencyAcc,
    admission_wait: LatencyAcc,
}

impl Default for TransferAcc {
    fn default() -> Self {
        TransferAcc {
            transfer: LatencyAcc::new("transfer", NANOS_PER_MS),
            admission_wait: LatencyAcc::new("admission_wait", NANOS_PER_MS),
        }
    }
}

impl TransferAcc {
    /// Adds one hand-off; O(1).
    pub fn record(&mut self, r: &TransferRecord) {
        let ms = |ns: Nanos| ns as f64 / NANOS_PER_MS;
        self.transfer.record(ms(r.transfer_ns()));
        self.admission_wait.record(ms(r.admitted - r.arrival));
    }

    /// The summary; `sent` and `received` count the bytes of every
    /// transfer started / landed.
    pub fn summarize(&mut self, sent: u64, received: u64) -> KvTransferSummary {
        let t = self.transfer.stats();
        let w = self.admission_wait.stats();
        KvTransferSummary {
            transfers: t.count,
            kv_bytes_sent: sent,
            kv_bytes_received: received,
            mean_transfer_ms: t.mean,
            p50_transfer_ms: t.median,
            p99_transfer_ms: t.p99,
            mean_admission_wait_ms: w.mean,
            p99_admission_wait_ms: w.p99,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three hand-offs of 2, 4 and 6 ms that waited 0, 1 and 2 ms for
    /// admission: means 4 and 1 ms; numpy's p99 of [2, 4, 6] is at index
    /// 1.98, 4 + 0.98 × 2 = 5.96 ms, and of [0, 1, 2] 1.98 ms.
    #[test]
    fn hand_offs_summarise_to_hand_computed_figures() {
        let mut acc = TransferAcc::default();
        for (i, (t, w)) in [(2u64, 0u64), (6, 2), (4, 1)].into_iter().enumerate() {
            let ms = 1_000_000;
            acc.record(&TransferRecord {
                id: i as u64,
                from: 0,
                to: 1,
                bytes: 10,
                ready: 5 * ms,
                start: 5 * ms,
                arrival: (5 + t) * ms,
                admitted: (5 + t + w) * ms,
            });
        }
        let s = acc.summarize(30, 20);
        assert_eq!((s.transfers, s.kv_bytes_sent, s.kv_bytes_received), (3, 30, 20));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(
            close(s.mean_transfer_ms, 4.0) && close(s.p50_transfer_ms, 4.0),
            "{s:?}"
        );
        assert!(close(s.p99_transfer_ms, 5.96), "{s:?}");
        assert!(
            close(s.mean_admission_wait_ms, 1.0) && close(s.p99_admission_wait_ms, 1.98),
            "{s:?}"
        );
        assert_eq!(
            s.line(),
            "3 hand-offs, 0.00 GB, transfer mean 4.000 ms / p99 5.960 ms, admission wait p99 1.980 ms"
        );
    }
}
