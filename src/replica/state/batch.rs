//! The batch a scheduler forms for one iteration, and what forming it did:
//! its prefill chunks, whether the decoding set takes a step, its shape for
//! the time model, and the preemptions, readmissions and swap I/O it
//! caused (for the trace and the iteration's price).
//!
//! Invariant: `shape` describes exactly `prefills` plus the decode step
//! (the replica adds both through one place each).

use super::slab::Slot;
use crate::timing::BatchShape;

#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// (slot, chunk tokens) of each prefill chunk, in the order added.
    pub prefills: Vec<(Slot, u32)>,
    /// Whether the decoding set runs a step in this iteration.
    pub decode: bool,
    pub shape: BatchShape,
    /// Ids of the requests preempted / readmitted while forming this batch.
    pub preempted: Vec<u64>,
    pub resumed: Vec<u64>,
    /// Seconds of swap I/O this batch's scheduling caused.
    pub swap_secs: f64,
}

impl Batch {
    /// Starts forming a new batch (keeps the buffers' capacity).
    pub fn clear(&mut self) {
        self.prefills.clear();
        self.decode = false;
        self.shape = BatchShape::default();
        self.preempted.clear();
        self.resumed.clear();
        self.swap_secs = 0.0;
    }

    /// Adds a chunk of `chunk` tokens of a prefill that has written `done`.
    pub fn add_prefill(&mut self, slot: Slot, done: u32, chunk: u32) {
        self.prefills.push((slot, chunk));
        self.shape.add_prefill_chunk(done as u64, chunk as u64);
    }

    /// Sequences in the batch.
    pub fn seqs(&self) -> u32 {
        self.shape.prefill_seqs + self.shape.decode_seqs
    }
}
