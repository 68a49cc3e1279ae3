//! KV-transfer records of disaggregated runs (see `cluster::disagg`).

use crate::units::{Nanos, nanos_to_secs};
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

fn pct(sorted: &[Nanos], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    nanos_to_secs(sorted[i]) * 1e3
}

fn mean(v: &[Nanos]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        nanos_to_secs(v.iter().sum::<Nanos>()) * 1e3 / v.len() as f64
    }
}

/// Summarises the transfers (sorted by id) of a run; `sent` and `received`
/// count the bytes of every transfer started / landed.
pub fn summarize(records: &[TransferRecord], sent: u64, received: u64) -> KvTransferSummary {
    let mut t: Vec<Nanos> = records.iter().map(TransferRecord::transfer_ns).collect();
    let mut w: Vec<Nanos> = records.iter().map(|r| r.admitted - r.arrival).collect();
    t.sort_unstable();
    w.sort_unstable();
    KvTransferSummary {
        transfers: records.len() as u64,
        kv_bytes_sent: sent,
        kv_bytes_received: received,
        mean_transfer_ms: mean(&t),
        p50_transfer_ms: pct(&t, 50.0),
        p99_transfer_ms: pct(&t, 99.0),
        mean_admission_wait_ms: mean(&w),
        p99_admission_wait_ms: pct(&w, 99.0),
    }
}
